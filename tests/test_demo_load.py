"""benchmarks/demo_load.py: the rounds summarized (photos/s per round and their spread, latencies pooled over
every request), and main running every round against one server, with the load and the server faked."""
import json

import pytest

import demo_load

# (latencies, failures, wall seconds) of three made-up rounds: 4, 3 and 4 answered photos.
ROUNDS = [([1.0, 2.0, 3.0, 4.0], [], 2.0),
          ([5.0, 6.0, 7.0], ["group.png: timed out"], 1.0),
          ([0.5, 0.5, 0.5, 0.5], [], 4.0)]


def test_summarize_gives_photos_per_second_per_round_and_their_median_min_and_max():
    summary = demo_load.summarize(ROUNDS)
    assert [r["photos_per_second"] for r in summary["rounds"]] == [2.0, 3.0, 1.0]
    assert summary["photos_per_second"] == {"median": 2.0, "min": 1.0, "max": 3.0, "values": [2.0, 3.0, 1.0]}


def test_summarize_pools_latencies_and_counts_over_every_round_and_keeps_each_rounds_own():
    summary = demo_load.summarize(ROUNDS)
    assert (summary["answered"], summary["failed"], summary["failures"]) == (11, 1, ["group.png: timed out"])
    # 11 latencies pooled, sorted 0.5 x4 then 1..7: the median is the 6th, the 95th percentile halfway from 6 to 7.
    assert summary["median_latency_s"] == 2.0
    assert summary["p95_latency_s"] == pytest.approx(6.5)
    first, second, _ = summary["rounds"]
    assert (first["median_latency_s"], first["p95_latency_s"]) == (2.5, pytest.approx(3.85))
    assert (second["answered"], second["failed"], second["median_latency_s"]) == (3, 1, 6.0)


def test_a_round_with_nothing_answered_counts_as_zero_photos_per_second():
    summary = demo_load.summarize([([], ["astronaut.png: refused"], 3.0), ([1.0, 1.0], [], 1.0)])
    assert summary["photos_per_second"]["min"] == 0.0 and summary["rounds"][0]["median_latency_s"] is None
    assert summary["median_latency_s"] == 1.0


class FakeServer:
    """DemoProcess's stand-in: counts how many were started and stopped."""
    started = stopped = 0

    def __init__(self):
        FakeServer.started += 1
        self.url = "http://fake/"

    def peak_memory_mib(self):
        return 900.0

    def stop(self):
        FakeServer.stopped += 1


def test_main_runs_every_round_against_one_server_and_prints_json_then_the_table(monkeypatch, capsys):
    rounds = iter(ROUNDS)
    monkeypatch.setattr(demo_load, "DemoProcess", FakeServer)
    monkeypatch.setattr(demo_load, "load", lambda url, clients, photos: next(rounds))
    monkeypatch.setattr(demo_load, "still_answers", lambda url: True)
    assert demo_load.main(["--clients", "2", "--photos", "2", "--rounds", "3"]) == 1  # one request failed
    assert (FakeServer.started, FakeServer.stopped) == (1, 1)
    line, table = capsys.readouterr().out.split("\n", 1)
    result = json.loads(line)
    assert (result["requests"], len(result["rounds"]), result["server_peak_rss_mib"]) == (12, 3, 900.0)
    assert "| photos/s, all clients, median (min-max) of the rounds | 2.00 (1.00-3.00) |" in table
    assert "| photos/s of each round | 2.00, 3.00, 1.00 |" in table
    assert "| answered / failed, all rounds | 11 / 1 |" in table


def test_rounds_below_one_is_one_clear_sentence(capsys):
    assert demo_load.main(["--rounds", "0"]) == 2
    assert capsys.readouterr().err == "error: --clients, --photos and --rounds must each be at least 1\n"
