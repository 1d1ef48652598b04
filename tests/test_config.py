"""runs/config.py: the checks of a training configuration (each flag that cannot train is refused in one
sentence), the precision `auto` picks, and that a run records and reports the one that ran."""
import json
import re

import pytest

import convolutional_autoencoder as ca
from runs import config
from runs.config import DEFAULTS, UsageError, check
from conftest import TINY, run_folders
from runs.run_folder import read_json


def cpu(monkeypatch, tmp_path, flags, bf16_seconds=0.5):
    """This CPU as one with `flags`, where bf16 takes `bf16_seconds` per call to fp32's 1 s; a cache of its own."""
    monkeypatch.setenv(config.auto_precision.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.setattr(config.auto_precision.cpu_features, "read_cpu", lambda *_: ("Test CPU", set(flags)))
    monkeypatch.setattr(config.auto_precision, "time_both", lambda *_: {"fp32": 1.0, "bf16": bf16_seconds})


def test_an_explicit_precision_is_kept_with_nothing_to_explain():
    assert config.resolve_precision("fp32") == ("fp32", "") and config.resolve_precision("bf16") == ("bf16", "")


@pytest.mark.parametrize("flags, bf16_seconds, expected", [
    ([], 0.5, "fp32"), (["avx512_bf16"], 0.5, "bf16"), (["avx512_bf16"], 2.0, "fp32")])
def test_training_and_evaluate_run_and_report_the_precision_auto_chose(face_folder, tmp_path, monkeypatch, capsys,
                                                                       flags, bf16_seconds, expected):
    cpu(monkeypatch, tmp_path, flags, bf16_seconds)
    out = tmp_path / "save"
    assert ca.main(["--data", str(face_folder), *TINY, "--max-steps", "1", "--precision", "auto",
                    "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"precision: {expected} (auto: " in printed
    assert ("training step took" in printed) == bool(flags)  # training times its own step
    [run] = run_folders(out)
    assert read_json(run / "config.json")["precision"] == expected  # the one that ran, not "auto"

    assert ca.main(["evaluate", "--model-dir", str(run), "--data", str(face_folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["precision"] == expected and result["precision_note"].startswith(" (auto: ")
    assert ca.main(["evaluate", "--model-dir", str(run), "--data", str(face_folder), "--precision", "fp32"]) == 0
    assert "\nprecision: fp32\n" in capsys.readouterr().out


def test_auto_builds_the_model_in_the_chosen_dtype(face_folder, tmp_path, monkeypatch):
    from runs.evaluation import load_trained
    out = tmp_path / "save"
    assert ca.main(["--data", str(face_folder), *TINY, "--max-steps", "1", "--out", str(out)]) == 0
    [run] = run_folders(out)
    cpu(monkeypatch, tmp_path, ["amx_bf16"])
    model, run_config = load_trained(run)
    assert run_config["precision"] == "bf16" and model.compute_dtype.name == "bfloat16"
    assert "forward pass took 0.50x" in run_config["precision_note"]
    model, run_config = load_trained(run, "fp32")
    assert run_config["precision"] == "fp32" and model.compute_dtype.name == "float32"


def test_input_size_reads_the_run_config():
    assert config.input_size({}) == (128, 128)
    assert config.input_size({"image_size": 64}) == (64, 64)
    assert config.input_size({"image_size": [96, 64]}) == (96, 64)


@pytest.mark.parametrize("override, message", [
    ({"batch_size": 0}, "--batch-size 0 must be at least 1"),
    ({"eval_every": 0}, "--eval-every 0 must be at least 1"),
    ({"epochs": 0}, "--epochs 0 must be at least 1"),
    ({"max_steps": 0}, "--max-steps 0 must be at least 1"),
    ({"lr": -1.0}, "--lr -1.0 must be a positive number"),
    ({"lr": 0.0}, "--lr 0.0 must be a positive number"),
    ({"lr": float("nan")}, "--lr nan must be a positive number"),
    ({"max_minutes": 0.0}, "--max-minutes 0.0 must be a positive number"),
    ({"seed": -1}, "--seed -1 must be 0 or more"),
    ({"epochs": 2, "clean_epochs": 3}, "--clean-epochs 3 is not a number of epochs of this run"),
    ({"clean_epochs": -1}, "--clean-epochs -1 is not a number of epochs of this run"),
])
def test_flags_that_cannot_train_are_refused_naming_the_flag(override, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        check({**DEFAULTS, **override})


def test_descriptions_the_model_cannot_build_are_refused():
    with pytest.raises(ValueError, match=r"cannot read architecture description 'C7,64' at character 0"):
        check({**DEFAULTS, "arch": "C7,64"})
    with pytest.raises(ValueError, match=r"a linear output needs a description that starts with a convolution"):
        check({**DEFAULTS, "arch": "M2C3,8,1", "linear_output": True})


def test_the_reference_recipe_and_its_optional_limits_pass():
    check(DEFAULTS)
    check({**DEFAULTS, "max_steps": 1, "max_minutes": 0.5, "clean_epochs": DEFAULTS["epochs"], "seed": 0})
