"""runs/progress.py: the epoch's progress line and the stop request (training's SIGINT test runs it for real)."""
import io
import os
import signal

from runs.progress import Progress, StopRequest


def test_progress_of_a_resumed_epoch_averages_the_steps_taken_here():
    stream = io.StringIO()
    progress = Progress(epoch=3, epochs=10, steps=5, done=3, stream=stream)
    progress.update(0.5, 32)
    progress.update(0.3, 22)
    line = stream.getvalue()
    assert line.startswith("\repoch 4/10 [####################] 5/5 loss 0.4000 ") and line.endswith("ETA 0s\n")


def test_a_stop_request_is_the_signal_name_and_the_old_handlers_come_back():
    before = signal.getsignal(signal.SIGTERM)
    with StopRequest() as stop:
        assert stop.reason is None
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop.reason == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is before
