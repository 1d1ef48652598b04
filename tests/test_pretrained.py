"""The shipped models in pretrained/: they load, and on the real data they score what their metrics.json says."""
import json

import pytest

import convolutional_autoencoder as ca
from conftest import ROOT

PRETRAINED = ROOT / "pretrained"
MODELS = [PRETRAINED, PRETRAINED / "classes3"]
BASE = PRETRAINED / "base"  # the 100-epoch run pretrained/ was fine-tuned from


@pytest.mark.parametrize("model_dir", [*MODELS, BASE], ids=lambda p: p.name)
def test_shipped_model_reproduces_its_test_scores(model_dir, real_data):
    metrics = json.loads((model_dir / "metrics.json").read_text())
    config = json.loads((model_dir / "config.json").read_text())
    result = ca.evaluate(model_dir, str(real_data))
    assert result["images"] == len(json.loads((model_dir / "split.json").read_text())["test"])
    for name in (*ca.METRIC_NAMES, "class_iu"):
        assert result[name] == pytest.approx(metrics["test"][name], abs=1e-6), name
    assert result["classes"] == ca.CLASS_NAMES[config["targets"]]


def test_shipped_models_are_the_documented_kinds():
    face, classes3 = (ca.read_json(m / "config.json") for m in MODELS)
    assert face["targets"] == "face" and classes3["targets"] == "classes3"
    assert face["model"]["num_classes"] == 1 and classes3["model"]["num_classes"] == 3
    # Both chose their checkpoint on validation and were tested once, on the same person-disjoint split.
    splits = [ca.read_json(m / "split.json") for m in (*MODELS, BASE)]
    assert splits[0] == splits[1] == splits[2]
    # pretrained/ is pretrained/base fine-tuned on unaugmented images, and better on validation.
    assert face["init_from"] == "pretrained/base" and not face["augment"]
    assert ca.read_json(PRETRAINED / "metrics.json")["validation"]["pixel_accuracy"] > \
        ca.read_json(BASE / "metrics.json")["validation"]["pixel_accuracy"]
    for m in (*MODELS, BASE):
        metrics = ca.read_json(m / "metrics.json")
        assert {"step", "validation", "test"} <= set(metrics)


def test_infer_uses_pretrained_by_default_and_the_3_class_model_writes_class_ids(real_data, tmp_path):
    import cv2
    import numpy as np

    import infer

    names = ca.read_json(PRETRAINED / "split.json")["test"][:4]
    photos = tmp_path / "photos"
    photos.mkdir()
    files = {name: next((real_data / "inputs").glob(f"{name}.*")) for name in names}  # the split holds stems
    for path in files.values():
        (photos / path.name).symlink_to(path)
    assert infer.main([str(photos), "--out", str(tmp_path / "face")]) == 0
    assert infer.main([str(photos), "--model-dir", str(PRETRAINED / "classes3"), "--out", str(tmp_path / "three")]) == 0
    for name, path in files.items():
        face = cv2.imread(str(tmp_path / "face" / f"{name}_mask.png"), cv2.IMREAD_GRAYSCALE)
        three = cv2.imread(str(tmp_path / "three" / f"{name}_mask.png"), cv2.IMREAD_GRAYSCALE)
        truth = cv2.imread(str(real_data / "targets_face_only" / path.name), cv2.IMREAD_GRAYSCALE) > 127
        assert set(np.unique(face)) <= {0, 255} and set(np.unique(three)) <= {0, 1, 2}
        assert ((face == 255) == truth).mean() > 0.9
        assert ((three == 1) == truth).mean() > 0.85


def test_evaluate_finds_the_base_run_from_any_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert [p.resolve() for p in ca.init_chain(PRETRAINED)] == [BASE.resolve()]
