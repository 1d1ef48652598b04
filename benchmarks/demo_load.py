"""Load on the browser demo: several API clients at once, as visitors pressing Segment together.

`python benchmarks/demo_load.py` starts `python app.py` on a free port (or takes --url), then, in each of
--rounds rounds against that same server, --clients threads each send --photos photos through `/segment`
with gradio_client, all at once. It prints one JSON line and a table: photos/s per round and their median
(min-max), requests answered and failed over all rounds, the median and 95th-percentile latency over all
requests (and per round in the JSON), the server's peak memory after all rounds, and whether the server
still answers a photo at the end. The photos alternate between docs/astronaut.png (512x512, one face) and
docs/group.png (960x480, four).
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

from bench import spread, spread_cell  # noqa: E402
from demo.process import DemoProcess  # noqa: E402
from runs import cpu_features  # noqa: E402

PHOTOS = (ROOT / "docs" / "astronaut.png", ROOT / "docs" / "group.png")


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Send many photos at once through the demo's /segment API.")
    parser.add_argument("--clients", type=int, default=6, help="clients sending at the same time (default: 6)")
    parser.add_argument("--photos", type=int, default=10, help="photos each client sends, one after another "
                                                              "(default: 10)")
    parser.add_argument("--rounds", type=int, default=3, help="times the whole load runs against the same server; "
                                                              "photos/s is their median (default: 3)")
    parser.add_argument("--url", help="a running demo to load instead of starting app.py (then no peak memory)")
    return parser.parse_args(argv)


def load(url, clients, photos):
    """(latencies in seconds of the answered requests, failure messages, wall seconds) of one round of load."""
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


def latency_figures(latencies):
    """{"median_latency_s", "p95_latency_s"} of some latencies, None when none was answered."""
    if not latencies:
        return {"median_latency_s": None, "p95_latency_s": None}
    return {"median_latency_s": float(np.median(latencies)), "p95_latency_s": float(np.percentile(latencies, 95))}


def summarize(rounds):
    """The figures of the load from each round's (latencies, failures, seconds): per round its answered, failed,
    photos/s (answered / wall seconds) and latencies; over the rounds photos/s as spread (median, min, max),
    answered and failed in all, and the latencies of every request pooled."""
    per_round = [{"round": n + 1, "answered": len(latencies), "failed": len(failures), "seconds": seconds,
                  "photos_per_second": len(latencies) / seconds, **latency_figures(latencies)}
                 for n, (latencies, failures, seconds) in enumerate(rounds)]
    rates = [r["photos_per_second"] for r in per_round]
    failures = [failure for _, round_failures, _ in rounds for failure in round_failures]
    return {"answered": sum(r["answered"] for r in per_round), "failed": len(failures), "failures": failures[:5],
            **latency_figures([latency for latencies, _, _ in rounds for latency in latencies]),
            "photos_per_second": spread(rates), "rounds": per_round}


def table(result):
    """The markdown table of the JSON line's figures, under a line naming the CPU and the rounds."""
    def seconds(key):
        return "-" if result[key] is None else f"{result[key]:.2f}"

    clients, photos, rounds = result["clients"], result["photos_per_client"], len(result["rounds"])
    peak = result["server_peak_rss_mib"]
    rows = [("requests (rounds x clients x photos)", f"{result['requests']} ({rounds} x {clients} x {photos})"),
            ("answered / failed, all rounds", f"{result['answered']} / {result['failed']}"),
            ("photos/s, all clients, median (min-max) of the rounds",
             spread_cell(result["photos_per_second"], "{:.2f}")),
            ("photos/s of each round", ", ".join(f"{r['photos_per_second']:.2f}" for r in result["rounds"])),
            ("median latency, all requests (s)", seconds("median_latency_s")),
            ("95th-percentile latency, all requests (s)", seconds("p95_latency_s")),
            ("server peak memory after all rounds (MiB)", f"{peak:.0f}" if peak else "-"),
            ("server answers at the end", "yes" if result["answers_afterwards"] else "NO")]
    bf16 = "native" if result["native_bf16"] else "no"
    return "\n".join([f"{result['cpu']}, {result['cores']} cores, {bf16} bf16; {rounds} rounds against one server",
                      "", "| | |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)])


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if min(args.clients, args.photos, args.rounds) < 1:
        print("error: --clients, --photos and --rounds must each be at least 1", file=sys.stderr)
        return 2
    load_before = os.getloadavg()[0]  # what else the machine was doing: read before the server starts
    server = None if args.url else DemoProcess()
    url = args.url or server.url
    try:
        rounds = [load(url, args.clients, args.photos) for _ in range(args.rounds)]
        answers_after = still_answers(url)
        peak = server.peak_memory_mib() if server else None
    finally:
        if server:
            server.stop()
    result = {"benchmark": "demo_load", "cpu": cpu_features.cpu_name(), "cores": os.cpu_count(),
              "load_average_at_start": load_before, "clients": args.clients, "photos_per_client": args.photos,
              "requests": args.rounds * args.clients * args.photos, **summarize(rounds),
              "server_peak_rss_mib": peak, "answers_afterwards": answers_after,
              "native_bf16": cpu_features.has_native_bf16()}
    print(json.dumps(result))
    print(f"\n{table(result)}")
    return 0 if not result["failed"] and answers_after else 1


if __name__ == "__main__":
    sys.exit(main())
