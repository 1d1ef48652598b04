"""benchmarks/bench.py at a tiny size: every figure is the median of its rounds with their spread, the
figures agree with each other (GFLOP/s = FLOPs x images/s), ours and the TF1-graph peer take turns,
and a target counts as met only beyond the spread."""
import importlib.util
import json
import sys

import numpy as np
import pytest

from conftest import ROOT, make_face_folder

import bench
from runs import cpu_features

TINY = ["--size", "64", "--batch-size", "4", "--steps", "1", "--warmup", "1", "--folder-images", "8",
        "--arch", "C3,8,2C3,8,1M2", "--matmul-size", "256", "--matmul-seconds", "0.1", "--repeats", "2"]
SPREADS = ("train_img_per_s", "infer_img_per_s", "folder_img_per_s", "peak_rss_mb", "train_gflop_per_s",
           "infer_gflop_per_s", "matmul_peak_gflop_per_s")
RATIOS = ("folder_ratio", "train_fraction_of_peak", "infer_fraction_of_peak")
APPROX = dict(rel=2e-3)  # figures are rounded to 4 significant digits


def check_ratio(ratio, numerators, denominators):
    assert ratio["median"] == pytest.approx(np.median(numerators) / np.median(denominators), **APPROX)
    assert ratio["min"] == pytest.approx(min(numerators) / max(denominators), **APPROX)
    assert ratio["max"] == pytest.approx(max(numerators) / min(denominators), **APPROX)


def test_tiny_run_gives_consistent_figures_for_both_precisions_and_the_tf1_peer(tmp_path, capsys):
    data = make_face_folder(tmp_path / "faces", size=64)
    status = bench.main([*TINY, "--data", str(data), "--peers", "--json-out", str(tmp_path / "bench.json")])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    line, tables = captured.out.split("\n", 1)
    result = json.loads(line)
    assert json.loads((tmp_path / "bench.json").read_text()) == result
    # C3,8,2 on 64x64 -> 32x32: 2*32*32*3*3*8*(1 in + 1 back); C3,8,1 at 32x32: 2*32*32*3*3*8*(8 + 8).
    flops = result["flops_per_image"]
    assert flops == {"forward": 294912 + 2359296, "train": 3 * (294912 + 2359296)}
    for precision in ("fp32", "bf16"):
        row = result[precision]
        for key in SPREADS:
            figure = row[key]
            assert len(figure["values"]) == 2 and figure["values"][0] > 0, (precision, key)
            assert figure["min"] == min(figure["values"]) <= figure["median"] <= figure["max"] == max(figure["values"])
            assert figure["median"] == pytest.approx(np.mean(figure["values"]), **APPROX)  # the median of two
        # GFLOP/s = FLOPs x images/s, round by round; shares of the peak and the folder ratio from the rounds.
        for kind, count in (("train", flops["train"]), ("infer", flops["forward"])):
            rates = row[f"{kind}_img_per_s"]["values"]
            gflops = row[f"{kind}_gflop_per_s"]["values"]
            assert gflops == pytest.approx([count * rate / 1e9 for rate in rates], **APPROX)
            check_ratio(row[f"{kind}_fraction_of_peak"], gflops, row["matmul_peak_gflop_per_s"]["values"])
        check_ratio(row["folder_ratio"], row["folder_img_per_s"]["values"], row["infer_img_per_s"]["values"])
    assert min(result["load_s"]["values"]) > 0 and result["data"] == str(data)
    peer = result["peers"]["tf1_graph"]
    assert len(peer["train_img_per_s"]["values"]) == 2 and peer["train_img_per_s"]["min"] > 0
    check_ratio(result["ratios"]["tf1_graph"]["train_bf16"], result["bf16"]["train_img_per_s"]["values"],
                peer["train_img_per_s"]["values"])
    assert set(result["ratios"]["tf1_graph"]) == {"train_fp32", "train_bf16", "infer_fp32", "infer_bf16"}
    skipped = any(note.startswith(f"peer_torch.py skipped: {sys.executable} has no torch") for note in result["notes"])
    assert (result["peers"]["torch"] is None) == skipped == (not bench.has_torch(sys.executable))
    model, flags = cpu_features.read_cpu()
    assert result["machine"]["cpu"] == model
    assert result["machine"]["bf16_flags"] == [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    assert result["machine"]["bf16_native"] == cpu_features.has_native_bf16()
    assert result["faster"] == {kind: max(("fp32", "bf16"), key=lambda p: result[p][f"{kind}_img_per_s"]["median"])
                                for kind in ("train", "infer")}
    judged = {t["target"]: t for t in result["targets"]}
    assert judged["training fp32 >= 1.0x TF1-graph peer"]["met"] is None  # the peers run another network
    folder = judged["folder fp32 >= 0.8x raw inference fp32"]
    assert folder["worst_case"] == result["fp32"]["folder_ratio"]["min"]
    assert folder["met"] == (folder["worst_case"] >= 0.8)
    assert judged["training bf16 peak RSS at batch 100 <= 3072 MiB"]["met"] is None  # batch 4
    assert "| training (img/s) |" in tables and "| tf1_graph |" in tables and "## Targets" in tables
    assert "median (min-max) of 2 rounds" in tables and "worst case over the 2 rounds" in tables
    assert f"CPU: {model}, " in tables and f"native bf16: {'yes' if cpu_features.has_native_bf16() else 'no'}" in tables


def test_rounds_interleave_ours_and_the_peers_and_drop_a_failing_peer(monkeypatch):
    calls = []
    monkeypatch.setattr(bench, "run_measure", lambda args, precision, folder, data: calls.append(precision) or {})

    def peer(python, script, args, notes):
        calls.append(script)
        return None if script == "torch.py" and calls.count("torch.py") == 2 else {"impl": script}

    monkeypatch.setattr(bench, "run_peer", peer)
    args = bench.parse_args(["--repeats", "3"])
    measured, peers = bench.rounds(args, None, None, {"tf1_graph": ("py", "tf1.py"), "torch": ("py", "torch.py")}, [])
    assert calls == ["fp32", "bf16", "tf1.py", "torch.py", "torch.py", "tf1.py", "bf16", "fp32",
                     "fp32", "bf16", "tf1.py"]
    assert [len(measured[p]) for p in ("fp32", "bf16")] == [3, 3]
    assert len(peers["tf1_graph"]) == 3 and peers["torch"] == []


def test_a_target_is_met_only_beyond_the_spread():
    ours, peer = [10.0, 11.0, 12.0], [9.0, 10.0, 10.5]
    ratio = bench.ratio_spread(ours, peer)
    assert ratio == {"median": 1.1, "min": pytest.approx(10 / 10.5, **APPROX), "max": pytest.approx(12 / 9, **APPROX)}
    row = bench.target_row("training fp32 >= 1.0x TF1-graph peer", ratio, ">=", 1.0, None)
    assert row["value"] == 1.1 and row["worst_case"] == ratio["min"] and row["met"] is False
    assert bench.target_row("x", bench.ratio_spread([11.0, 12.0], peer), ">=", 1.0, None)["met"] is True
    memory = bench.spread([2000.0, 3000.0, 3100.0])
    assert memory["median"] == 3000 and bench.target_row("RSS", memory, "<=", 3072, None)["met"] is False
    assert bench.target_row("RSS", memory, "<=", 3072, "not judged: batch 4")["met"] is None


def test_table_states_whether_bf16_is_native_and_which_precision_was_faster():
    with_bf16 = {"cpu": "AMD EPYC 9R14", "cores": 2, "bf16_flags": ["avx512_bf16"], "bf16_native": True}
    without = {"cpu": "Intel(R) Xeon(R) CPU @ 2.50GHz", "cores": 2, "bf16_flags": [], "bf16_native": False}
    assert bench.bf16_line(with_bf16, {"train": "bf16", "infer": "fp32"}) == (
        "CPU: AMD EPYC 9R14, 2 cores; native bf16: yes (avx512_bf16); the faster here, which `--precision auto` "
        "measures and runs: bf16 for training, fp32 for inference.")
    assert bench.bf16_line(without, {"train": "fp32", "infer": "fp32"}) == (
        "CPU: Intel(R) Xeon(R) CPU @ 2.50GHz, 2 cores; native bf16: no (none of avx512_bf16, amx_bf16: bf16 is "
        "emulated); `--precision auto` runs fp32 here without measuring.")


def figures(train, infer):
    return {"train_img_per_s": bench.spread(train), "infer_img_per_s": bench.spread(infer)}


def test_bf16_targets_are_judged_only_where_bf16_is_the_faster():
    peer = figures([10.0, 10.0], [10.0, 10.0])
    result = {"fp32": figures([20.0, 21.0], [40.0, 41.0]), "bf16": figures([30.0, 31.0], [20.0, 21.0]),
              "peers": {"tf1_graph": peer}, "config": {"batch_size": 100}}
    for precision in ("fp32", "bf16"):
        result[precision].update(folder_ratio=bench.ratio_spread([1.0], [1.0]), peak_rss_mb=bench.spread([1.0]))
    result["faster"] = bench.faster(result)
    assert result["faster"] == {"train": "bf16", "infer": "fp32"}
    result["ratios"] = bench.ratios(result)
    judged = {t["target"]: t for t in bench.targets(result, comparable=True)}
    assert judged["training bf16 >= 1.5x TF1-graph peer"]["met"] is True  # bf16 trains faster: judged
    slower = judged["raw inference bf16 >= 1.8x TF1-graph peer"]
    assert slower["met"] is None and "bf16 infers slower than fp32" in slower["not_judged"]
    assert judged["training fp32 >= 1.0x TF1-graph peer"]["met"] is True


def test_missing_torch_python_is_named(tmp_path, capsys):
    assert bench.main([*TINY, "--peers", "--torch-python", str(tmp_path / "nowhere" / "python")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(tmp_path / "nowhere" / "python") in err


def test_torch_is_looked_for_in_the_given_python(tmp_path):
    (tmp_path / "site" / "torch").mkdir(parents=True)
    (tmp_path / "site" / "torch" / "__init__.py").write_text("")
    python = tmp_path / "python-with-torch"
    python.write_text(f'#!/bin/sh\nPYTHONPATH={tmp_path / "site"} exec {sys.executable} "$@"\n')
    python.chmod(0o755)
    assert bench.has_torch(str(python))
    assert bench.has_torch(sys.executable) == (importlib.util.find_spec("torch") is not None)
