"""The browser demo: `python app.py` serves a page on http://127.0.0.1:7860 to segment photos and the webcam.

The page (demo/page.py) runs the same infer.segment_faces() and overlay drawing as infer.py, on the
shipped face model or --model-dir, and the shipped face + hair model. Nothing is fetched from the
internet, at start or in use: Gradio's telemetry and version check are off and its fonts come with it.
The photo button is also an API endpoint:
`gradio_client.Client("http://127.0.0.1:7860/").predict(handle_file("photo.jpg"), api_name="/segment")`.
"""
import argparse
import os
import socket
import sys
import threading
import time

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"  # before gradio is imported: no telemetry, no version check
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import quiet_tensorflow  # noqa: E402,F401  (before TensorFlow: it starts without its C++ start-up lines)

import infer  # noqa: E402
from runs.config import PRECISIONS, UsageError  # noqa: E402

# Ctrl-C waits this long for the page to close; webcam frames still queued are then dropped, not waited for.
CLOSE_SECONDS = 10

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 7860


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Serve the browser demo: photos and the webcam, segmented.")
    flag = parser.add_argument
    flag("--host", default=DEFAULT_HOST,
         help=f"address to serve on (default: {DEFAULT_HOST}, this machine only; 0.0.0.0 for the network)")
    flag("--port", type=int, default=DEFAULT_PORT, help=f"port (default: {DEFAULT_PORT})")
    flag("--model-dir", default=str(infer.DEFAULT_MODEL_DIR),
         help="the face model: pretrained/ (default), a run folder or an export; the shipped face + hair model "
              "(pretrained/classes3) is offered beside it")
    flag("--precision", default="auto", choices=PRECISIONS, help="as infer.py's --precision (default: auto)")
    flag("--share", action="store_true",
         help="also ask Gradio for a public link (needs the internet; off by default)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not 0 < args.port < 65536:
        print(f"error: --port {args.port} is not a port: pass 1-65535", file=sys.stderr)
        return 2
    problem = port_problem(args.host, args.port)
    if problem:
        print(f"error: cannot serve on {args.host}:{args.port} ({problem}): pass another --port or --host",
              file=sys.stderr)
        return 1
    from demo.page import build
    from demo.segmentation import Segmenter
    try:
        segmenter = Segmenter(args.model_dir, args.precision)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    first = next(iter(segmenter.model_dirs.values()))  # model_dir's own model
    print(infer.precision_line(str(first), args.precision, "none"), flush=True)
    page = build(segmenter)
    page.queue(max_size=64)
    try:
        page.launch(server_name=args.host, server_port=args.port, share=args.share, quiet=True, show_error=True,
                    ssr_mode=False, prevent_thread_lock=True, max_file_size="100mb")
    except OSError as error:
        print(f"error: cannot serve on {args.host}:{args.port} ({error}): pass another --port or --host",
              file=sys.stderr)
        return 1
    print(f"serving the demo on http://{args.host}:{args.port} ({', '.join(segmenter.labels)}); Ctrl-C stops it",
          flush=True)
    if page.share_url:
        print(f"public link: {page.share_url}", flush=True)
    try:
        # Not page.block_thread(): on Ctrl-C it closes the server itself, waiting for every queued frame.
        while page.is_running:
            time.sleep(0.1)
    except KeyboardInterrupt:
        pass
    finally:
        if not closed(page):
            print("stopped; requests still queued were dropped", file=sys.stderr, flush=True)
    return 0


def closed(page, seconds=CLOSE_SECONDS):
    """Whether the page closed within `seconds` (it waits for the requests in its queue, and a webcam
    queues many frames)."""
    closing = threading.Thread(target=page.close, daemon=True)
    closing.start()
    closing.join(seconds)
    return not closing.is_alive()


def port_problem(host, port):
    """Why the page cannot be served at host:port (None if it can), found before the models are loaded."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            return error.strerror or str(error)
    return None


if __name__ == "__main__":
    status = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Without waiting for the threads Gradio and the webcam stream leave behind (not daemons): once the
    # page is closed nothing they do is wanted, and waiting for them kept Ctrl-C from ending the process.
    os._exit(status)
