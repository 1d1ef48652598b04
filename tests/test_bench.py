"""benchmarks/bench.py at a tiny size: every number is measured and printed, the TF1-graph peer beside it runs."""
import importlib.util
import json
import sys

from conftest import ROOT, make_face_folder

sys.path.insert(0, str(ROOT / "benchmarks"))
import bench  # noqa: E402
import cpu_features  # noqa: E402

TINY = ["--size", "64", "--batch-size", "4", "--steps", "1", "--warmup", "1", "--folder-images", "8",
        "--arch", "C3,8,2C3,8,1M2", "--matmul-size", "256", "--matmul-seconds", "0.1"]
PER_PRECISION = ("train_img_per_s", "infer_img_per_s", "folder_img_per_s", "folder_ratio", "peak_rss_mb",
                 "train_gflop_per_s", "infer_gflop_per_s", "matmul_peak_gflop_per_s",
                 "train_fraction_of_peak", "infer_fraction_of_peak")


def test_tiny_run_measures_both_precisions_and_the_tf1_peer(tmp_path, capsys):
    data = make_face_folder(tmp_path / "faces", size=64)
    status = bench.main([*TINY, "--data", str(data), "--peers", "--json-out", str(tmp_path / "bench.json")])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    line, tables = captured.out.split("\n", 1)
    result = json.loads(line)
    assert json.loads((tmp_path / "bench.json").read_text()) == result
    for precision in ("fp32", "bf16"):
        for key in PER_PRECISION:
            assert result[precision][key] > 0, (precision, key)
    assert result["load_s"] > 0 and result["data"] == str(data)
    # C3,8,2 on 64x64 -> 32x32: 2*32*32*3*3*8*(1 in + 1 back); C3,8,1 at 32x32: 2*32*32*3*3*8*(8 + 8).
    assert result["flops_per_image"] == {"forward": 294912 + 2359296, "train": 3 * (294912 + 2359296)}
    assert result["peers"]["tf1_graph"]["train_img_per_s"] > 0
    assert result["peers"]["torch"] is None  # this environment has no torch
    assert any(note.startswith(f"peer_torch.py skipped: {sys.executable} has no torch") for note in result["notes"])
    model, flags = cpu_features.read_cpu()
    assert result["machine"]["cpu"] == model
    assert result["machine"]["bf16_flags"] == [f for f in ("avx512_bf16", "amx_bf16") if f in flags]
    assert result["machine"]["bf16_native"] == cpu_features.has_native_bf16()
    assert result["machine"]["auto_precision"] == ("bf16" if cpu_features.has_native_bf16() else "fp32")
    assert set(result["ratios"]["tf1_graph"]) == {"train_fp32", "train_bf16", "infer_fp32", "infer_bf16"}
    judged = {t["target"]: t for t in result["targets"]}
    assert judged["training fp32 >= 1.0x TF1-graph peer"]["met"] is None  # the peers run another network
    assert isinstance(judged["folder fp32 >= 0.8x raw inference fp32"]["met"], bool)
    assert judged["training bf16 peak RSS at batch 100 <= 3072 MiB"]["met"] is None  # batch 4
    assert "| training (img/s) |" in tables and "| tf1_graph |" in tables and "## Targets" in tables
    assert f"CPU: {model}, " in tables and f"native bf16: {'yes' if cpu_features.has_native_bf16() else 'no'}" in tables


def test_table_states_whether_bf16_is_native():
    with_bf16 = {"cpu": "AMD EPYC 9R14", "cores": 2, "bf16_flags": ["avx512_bf16"], "bf16_native": True,
                 "auto_precision": "bf16"}
    without = {"cpu": "Intel(R) Xeon(R) CPU @ 2.50GHz", "cores": 2, "bf16_flags": [], "bf16_native": False,
               "auto_precision": "fp32"}
    assert bench.bf16_line(with_bf16) == ("CPU: AMD EPYC 9R14, 2 cores; native bf16: yes (avx512_bf16); "
                                          "`--precision auto` runs bf16 here.")
    assert bench.bf16_line(without) == ("CPU: Intel(R) Xeon(R) CPU @ 2.50GHz, 2 cores; native bf16: no (none of "
                                        "avx512_bf16, amx_bf16: bf16 is emulated); `--precision auto` runs fp32 here.")


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
