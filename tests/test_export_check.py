"""benchmarks/export_check.py: its speeds are the median (min-max) of alternating rounds, a format counts as faster
only beyond that spread, and on a tiny run every accuracy and speed is measured and the table printed."""
import json

import numpy as np
import pytest

import convolutional_autoencoder as ca
from conftest import make_face_folder

import export_check

ARCH = "C3,8,2M2C3,8,1M2"


def test_tiny_run_scores_four_ways_and_times_both_tflite_models(tmp_path, capsys):
    faces = make_face_folder(tmp_path / "faces", persons=10, size=64)
    assert ca.main(["--data", str(faces), "--arch", ARCH, "--max-steps", "2", "--batch-size", "4",
                    "--eval-every", "2", "--tta", "flip", "--out", str(tmp_path / "save")]) == 0
    (run,) = (tmp_path / "save" / ARCH).iterdir()
    capsys.readouterr()
    status = export_check.main(["--model-dir", str(run), "--calibration-images", "4", "--timing-images", "2",
                                "--rounds", "2", "--warmup", "1", "--json-out", str(tmp_path / "check.json")])
    captured = capsys.readouterr()
    assert status == 0, captured.err
    line, table = captured.out.split("\n", 1)
    result = json.loads(line)
    assert json.loads((tmp_path / "check.json").read_text()) == result
    split = json.loads((run / "split.json").read_text())
    assert result["images"] == len(split["test"]) and result["data"] == str(faces)
    accuracy = result["pixel_accuracy"]
    assert set(accuracy) == {"evaluate", "saved_model", "tflite_float32", "tflite_int8", "onnx"}
    assert all(0 < value <= 1 for value in accuracy.values())
    # The SavedModel runs the same TensorFlow graph as evaluate.
    assert abs(accuracy["saved_model"] - accuracy["evaluate"]) < 1e-9 and result["equal_to_4_decimals"]["saved_model"]
    assert abs(result["int8_loss_points"] - 100 * (accuracy["tflite_float32"] - accuracy["tflite_int8"])) < 1e-9
    assert result["onnx_minus_saved_model"] == accuracy["onnx"] - accuracy["saved_model"]
    assert result["onnx_met"] == (abs(result["onnx_minus_saved_model"]) <= 0.0005)
    speed = result["img_per_s"]
    assert {kind: sorted(rates) for kind, rates in speed.items()} == {
        "saved_model": ["1", "64"], "onnx": ["1", "64"], "tflite_float32": ["1"], "tflite_int8": ["1"]}
    figures = [figure for rates in speed.values() for figure in rates.values()]
    assert all(len(f["values"]) == 2 and 0 < f["min"] <= f["median"] <= f["max"] for f in figures)
    int8, float32 = speed["tflite_int8"]["1"]["values"], speed["tflite_float32"]["1"]["values"]
    assert result["int8_speedup"]["min"] == pytest.approx(min(int8) / max(float32), rel=1e-3)
    assert result["int8_speedup"]["median"] == pytest.approx(np.median(int8) / np.median(float32), rel=1e-3)
    assert set(result["float32_fastest"]) == {"1", "64"}
    assert result["file_mb"]["model_int8.tflite"] > 0 and result["file_mb"]["model.onnx"] > 0
    assert "| TFLite int8 |" in table and "| ONNX (ONNX Runtime) |" in table and "int8 against float32 TFLite" in table
    assert "ONNX Runtime against the SavedModel: pixel accuracy" in table and "img/s, 64 per call" in table
    assert "median (min-max) of 2 alternating rounds" in table and "float32 formats, one image per call" in table


def test_missing_model_dir_is_one_sentence(tmp_path, capsys):
    assert export_check.main(["--model-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere does not exist" in err


class FakeClock:
    """perf_counter for speeds(): time moves only when a fake call takes its scripted seconds."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_speeds_are_median_min_max_of_interleaved_rounds(monkeypatch):
    monkeypatch.setattr(export_check, "BATCH", 4)
    clock, order = FakeClock(), []
    # Seconds per image in rounds 1, 2, 3 of each format and batch: 4 images in 4 calls or 1.
    seconds = {("saved_model", 1): [0.25, 1.0, 0.5], ("saved_model", 4): [0.125, 0.0625, 0.25],
               ("tflite_int8", 1): [0.1, 0.05, 0.2]}

    def fake(kind):
        def call(batch):
            order.append((kind, len(batch)))
            calls_so_far = sum(1 for done in order if done == (kind, len(batch)))
            clock.now += len(batch) * seconds[kind, len(batch)][(calls_so_far - 1) * len(batch) // 4]
            return batch
        return call

    images = np.zeros((4, 2, 2, 1), np.uint8)
    speed = export_check.speeds({"saved_model": fake("saved_model"), "tflite_int8": fake("tflite_int8")}, images,
                                rounds=3, warmup=0, clock=clock)
    assert speed == {
        "saved_model": {"1": {"median": 2.0, "min": 1.0, "max": 4.0, "values": [4.0, 1.0, 2.0]},
                        "4": {"median": 8.0, "min": 4.0, "max": 16.0, "values": [8.0, 16.0, 4.0]}},
        "tflite_int8": {"1": {"median": 10.0, "min": 5.0, "max": 20.0, "values": [10.0, 20.0, 5.0]}}}
    # Every format and batch once per round, in turn; TFLite takes one image per call only.
    one_round = [("saved_model", 1)] * 4 + [("tflite_int8", 1)] * 4 + [("saved_model", 4)]
    assert order == one_round * 3


def figure(low, high):
    return {"median": (low + high) / 2, "min": low, "max": high}


def test_a_format_is_the_fastest_only_beyond_the_spread():
    speed = {"saved_model": {"1": figure(40, 44), "64": figure(50, 54)},
             "onnx": {"1": figure(33, 36), "64": figure(53, 56)}, "tflite_float32": {"1": figure(30, 34)}}
    kinds = export_check.FLOAT32_FORMATS
    assert export_check.fastest(speed, kinds, "1") == "saved_model"
    assert export_check.speed_order(speed, kinds, "1") == (
        "SavedModel (TensorFlow) > ONNX (ONNX Runtime) ~ TFLite float32")
    # ONNX's median is the higher at 64 per call, but its slowest round is below the SavedModel's fastest.
    assert export_check.fastest(speed, kinds, "64") is None
    assert export_check.speed_order(speed, kinds, "64") == "ONNX (ONNX Runtime) ~ SavedModel (TensorFlow)"


def test_no_rounds_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_info:
        export_check.main(["--rounds", "0"])
    assert exit_info.value.code == 2 and "--rounds must be at least 1" in capsys.readouterr().err
