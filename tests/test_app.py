"""app.py's command line: a mistake is one sentence on standard error and a non-zero exit, before serving."""
import socket
import subprocess
import sys

from conftest import ROOT, user_environment


def run_app(*args):
    return subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, capture_output=True, text=True,
                          env=user_environment(), timeout=300)


def one_sentence(result):
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_port_in_use_is_refused_before_the_models_load():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_app("--port", str(port))
    assert result.returncode == 1
    assert one_sentence(result) == (f"error: cannot serve on 127.0.0.1:{port} (Address already in use): "
                                    "pass another --port or --host")


def test_not_a_port():
    result = run_app("--port", "70000")
    assert result.returncode == 2
    assert one_sentence(result) == "error: --port 70000 is not a port: pass 1-65535"


def test_wrong_model_dir(tmp_path):
    result = run_app("--model-dir", str(tmp_path / "nowhere"))
    assert result.returncode == 2
    message = one_sentence(result)
    assert message.startswith("error: ") and str(tmp_path / "nowhere") in message
    assert result.stdout == ""  # nothing served


def test_ctrl_c_waits_for_the_page_to_close_only_so_long():
    """A webcam queues many frames, which page.close() would wait for: app.py gives it CLOSE_SECONDS."""
    import threading
    import app

    class Page:
        def __init__(self):
            self.release = threading.Event()

        def close(self):
            self.release.wait(30)

    stuck = Page()
    assert app.closed(stuck, seconds=0.2) is False
    stuck.release.set()
    quick = Page()
    quick.release.set()
    assert app.closed(quick, seconds=5) is True


def test_the_demo_process_takes_ctrl_c_even_when_started_with_it_ignored():
    """A background job (nohup, `&`, a CI runner's shell) starts with SIGINT ignored, and its children inherit
    that: DemoProcess's child must get it back, or stop() cannot stop app.py."""
    import signal
    from demo.process import takes_ctrl_c
    ask = [sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)"]
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        inherited = subprocess.run(ask, capture_output=True, text=True, timeout=60).stdout.strip()
        restored = subprocess.run(ask, capture_output=True, text=True, timeout=60, preexec_fn=takes_ctrl_c).stdout
    finally:
        signal.signal(signal.SIGINT, before)
    assert inherited == "False" and restored.strip() == "True"
