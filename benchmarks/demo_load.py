"""Load on the browser demo: several API clients at once, as visitors pressing Segment together.

`python benchmarks/demo_load.py` starts `python app.py` on a free port (or takes --url), then
--clients threads each send --photos photos through `/segment` with gradio_client, all at once. It
prints one JSON line and a table: requests answered and failed, the median and 95th-percentile
latency, the server's peak memory, and whether the server still answers a photo afterwards.
The photos alternate between docs/astronaut.png (512x512, one face) and docs/group.png (960x480, four).
"""
import argparse
import json
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from demo.process import DemoProcess  # noqa: E402
from runs import cpu_features  # noqa: E402

PHOTOS = (ROOT / "docs" / "astronaut.png", ROOT / "docs" / "group.png")


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Send many photos at once through the demo's /segment API.")
    parser.add_argument("--clients", type=int, default=6, help="clients sending at the same time (default: 6)")
    parser.add_argument("--photos", type=int, default=10, help="photos each client sends, one after another "
                                                              "(default: 10)")
    parser.add_argument("--url", help="a running demo to load instead of starting app.py (then no peak memory)")
    return parser.parse_args(argv)


def load(url, clients, photos):
    """(latencies in seconds of the answered requests, failure messages, wall seconds) of the whole load."""
    from gradio_client import Client, handle_file
    latencies, failures, lock = [], [], threading.Lock()
    ready = threading.Barrier(clients)

    def visitor(number):
        client = Client(url, verbose=False)
        ready.wait()  # all clients connected: then everyone sends at once
        for k in range(photos):
            photo = PHOTOS[(number + k) % len(PHOTOS)]
            started = time.perf_counter()
            try:
                overlay, mask_png, _, summary = client.predict(handle_file(str(photo)), api_name="/segment")
                if not (os.path.exists(overlay) and os.path.exists(mask_png) and "found" in summary):
                    raise RuntimeError(f"incomplete answer for {photo.name}: {summary!r}")
            except Exception as error:  # each failure is counted and shown, not raised
                with lock:
                    failures.append(f"{photo.name}: {error}")
                continue
            with lock:
                latencies.append(time.perf_counter() - started)

    threads = [threading.Thread(target=visitor, args=(n,)) for n in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies, failures, time.perf_counter() - started


def still_answers(url):
    from gradio_client import Client, handle_file
    try:
        _, _, _, summary = Client(url, verbose=False).predict(handle_file(str(PHOTOS[0])), api_name="/segment")
    except Exception:
        return False
    return summary.startswith("1 face found")


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.clients < 1 or args.photos < 1:
        print("error: --clients and --photos must be at least 1", file=sys.stderr)
        return 2
    load_before = os.getloadavg()[0]  # what else the machine was doing: read before the server starts
    server = None if args.url else DemoProcess()
    url = args.url or server.url
    try:
        latencies, failures, seconds = load(url, args.clients, args.photos)
        answers_after = still_answers(url)
        peak = server.peak_memory_mib() if server else None
    finally:
        if server:
            server.stop()
    cpu = cpu_features.cpu_name()
    bf16 = cpu_features.has_native_bf16()
    result = {"benchmark": "demo_load", "cpu": cpu, "cores": os.cpu_count(),
              "load_average_at_start": load_before, "clients": args.clients, "photos_per_client": args.photos,
              "requests": args.clients * args.photos, "answered": len(latencies), "failed": len(failures),
              "failures": failures[:5], "median_latency_s": float(np.median(latencies)) if latencies else None,
              "p95_latency_s": float(np.percentile(latencies, 95)) if latencies else None,
              "photos_per_second": len(latencies) / seconds, "server_peak_rss_mib": peak,
              "answers_afterwards": answers_after, "native_bf16": bf16}
    print(json.dumps(result))
    rows = [("requests (clients x photos)", f"{result['requests']} ({args.clients} x {args.photos})"),
            ("answered / failed", f"{result['answered']} / {result['failed']}"),
            ("median latency (s)", f"{result['median_latency_s']:.2f}" if latencies else "-"),
            ("95th-percentile latency (s)", f"{result['p95_latency_s']:.2f}" if latencies else "-"),
            ("photos/s, all clients", f"{result['photos_per_second']:.2f}"),
            ("server peak memory (MiB)", f"{peak:.0f}" if peak else "-"),
            ("server answers afterwards", "yes" if answers_after else "NO")]
    print(f"\n{cpu}, {os.cpu_count()} cores, {'native' if bf16 else 'no'} bf16\n\n| | |\n|---|---|")
    print("\n".join(f"| {name} | {value} |" for name, value in rows))
    return 0 if not failures and answers_after else 1


if __name__ == "__main__":
    sys.exit(main())
