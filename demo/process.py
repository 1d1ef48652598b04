"""`python app.py` as a child process on a free port, for the browser test and the load benchmark: started,
waited for until it prints its address, its output collected, stopped as Ctrl-C stops it."""
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port(host="127.0.0.1"):
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def takes_ctrl_c():
    """In the child before it runs: SIGINT back to its default. Started from a background job (nohup, `&`, a CI
    runner's shell) a process inherits SIGINT ignored; Python then raises no KeyboardInterrupt, and Ctrl-C (or
    DemoProcess.stop) would not stop app.py."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class DemoProcess:
    """app.py serving on 127.0.0.1 at a free port; `url`, `process`, and its `stdout` / `stderr` lines."""

    def __init__(self, args=(), env=None, start_seconds=300):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process = subprocess.Popen([sys.executable, "app.py", "--port", str(self.port), *args], cwd=ROOT,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                        preexec_fn=takes_ctrl_c)
        self.stdout, self.stderr = [], []
        for stream, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr)):
            threading.Thread(target=lambda s=stream, out=lines: out.extend(iter(s.readline, "")), daemon=True).start()
        deadline = time.monotonic() + start_seconds
        while not any("serving the demo on" in line for line in self.stdout):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.process.kill()
                raise RuntimeError(f"app.py did not start: {''.join(self.stderr)[-2000:]}")
            time.sleep(0.2)

    def peak_memory_mib(self):
        """The server's peak resident memory so far (Linux: VmHWM)."""
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return None

    def stop(self, seconds=60):
        """SIGINT, as Ctrl-C: the exit status (None if it had to be killed)."""
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return None
