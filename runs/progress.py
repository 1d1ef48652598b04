"""What a training run shows and hears on the terminal: the progress line of each epoch, and
SIGINT / SIGTERM turned into a request to stop after the current step (resumably)."""
import signal
import sys
import time


class Progress:
    """One line per epoch: a bar, the mean loss, images per second and the time left.

    `done` steps of the epoch were taken before (a resumed run); the mean loss, speed and time left
    are of the steps taken here.
    """

    def __init__(self, epoch, epochs, steps, done=0, stream=sys.stderr):
        self.epoch, self.epochs, self.steps, self.stream = epoch, epochs, steps, stream
        self.tty = stream.isatty()
        self.started, self.skipped, self.done, self.images, self.loss_sum = time.perf_counter(), done, done, 0, 0.0

    def update(self, loss, images):
        self.done += 1
        self.images += images
        self.loss_sum += loss
        if self.tty or self.done == self.steps:
            elapsed, taken = time.perf_counter() - self.started, self.done - self.skipped
            rate = self.images / elapsed
            left = elapsed / taken * (self.steps - self.done)
            bar = "#" * (20 * self.done // self.steps)
            self.stream.write(f"\repoch {self.epoch + 1}/{self.epochs} [{bar:<20}] {self.done}/{self.steps} "
                              f"loss {self.loss_sum / taken:.4f}  {rate:.1f} img/s  ETA {left:.0f}s")
            if self.done == self.steps or not self.tty:
                self.stream.write("\n")
            self.stream.flush()


class StopRequest:
    """Turns SIGINT / SIGTERM into a flag the training loop checks after each step."""

    def __init__(self):
        self.reason = None
        self.previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.reason = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
