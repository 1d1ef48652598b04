"""benchmarks/export_check.py on a tiny run: every accuracy and speed is measured and the table printed."""
import json
import sys

import convolutional_autoencoder as ca
from conftest import ROOT, make_face_folder

import export_check

ARCH = "C3,8,2M2C3,8,1M2"


def test_tiny_run_scores_four_ways_and_times_both_tflite_models(tmp_path, capsys):
    faces = make_face_folder(tmp_path / "faces", persons=10, size=64)
    assert ca.main(["--data", str(faces), "--arch", ARCH, "--max-steps", "2", "--batch-size", "4",
                    "--eval-every", "2", "--tta", "flip", "--out", str(tmp_path / "save")]) == 0
    (run,) = (tmp_path / "save" / ARCH).iterdir()
    capsys.readouterr()
    status = export_check.main(["--model-dir", str(run), "--calibration-images", "4", "--timing-images", "2",
                                "--rounds", "1", "--warmup", "1", "--json-out", str(tmp_path / "check.json")])
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
    assert all(rate > 0 for rates in speed.values() for rate in rates.values())
    assert result["int8_speedup"] == speed["tflite_int8"]["1"] / speed["tflite_float32"]["1"]
    assert result["file_mb"]["model_int8.tflite"] > 0 and result["file_mb"]["model.onnx"] > 0
    assert "| TFLite int8 |" in table and "| ONNX (ONNX Runtime) |" in table and "int8 against float32 TFLite" in table
    assert "ONNX Runtime against the SavedModel: pixel accuracy" in table and "img/s, 64 per call" in table


def test_missing_model_dir_is_one_sentence(tmp_path, capsys):
    assert export_check.main(["--model-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nowhere does not exist" in err
