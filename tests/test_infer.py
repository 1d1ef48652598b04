"""infer.py on a tiny model trained once per module on synthetic 64x64 faces."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

import convolutional_autoencoder as ca
import infer
from evaluation import load_trained, predict
from metrics import predicted_classes
from conftest import ROOT, make_face_folder, synthetic_face

ARCH = "C3,8,2C3,8,1M2"


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("tiny")
    folder = make_face_folder(tmp / "faces", persons=10, size=64)
    assert ca.main(["--data", str(folder), "--arch", ARCH, "--max-steps", "2", "--batch-size", "4",
                    "--eval-every", "2", "--out", str(tmp / "save")]) == 0
    (run,) = (tmp / "save" / ARCH).iterdir()
    config = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**config, "image_size": [64, 64]}))
    return run


def face(size, seed=0):
    """A synthetic gray face photo of height x width `size`."""
    image, _, _ = synthetic_face(np.random.default_rng(seed), max(size))
    return cv2.resize(image, size[::-1])


def write_good_images(folder):
    """Images of many formats and sizes; returns {file name: (height, width)}."""
    folder.mkdir(parents=True, exist_ok=True)
    gray = face((64, 64))
    color = cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR)
    images = {
        "gray.png": gray,
        "rgb.jpg": color,
        "rgba.png": cv2.cvtColor(color, cv2.COLOR_BGR2BGRA),
        "deep.png": gray.astype(np.uint16) * 257,
        "small.png": face((37, 61)),
        "large.jpg": cv2.cvtColor(face((1000, 800)), cv2.COLOR_GRAY2BGR),
        "bitmap.bmp": color,
        "scan.tif": gray,
        "frame.ppm": color,
    }
    for name, image in images.items():
        assert cv2.imwrite(str(folder / name), image), name
    return {name: image.shape[:2] for name, image in images.items()}


def test_mixed_folder_masks_every_image_at_its_size_and_names_the_bad_files(model_dir, tmp_path, capsys):
    shapes = write_good_images(tmp_path / "photos")
    (tmp_path / "photos" / "corrupt.jpg").write_bytes(np.random.default_rng(1).bytes(2000))
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    status = infer.main([str(tmp_path / "photos"), "--model-dir", str(model_dir), "--out", str(tmp_path / "out"),
                         "--batch-size", "4"])
    captured = capsys.readouterr()
    assert status == 1
    assert "corrupt.jpg" in captured.err and "notes.txt" in captured.err
    assert "segmented 9 images, 2 failed" in captured.out
    for name, shape in shapes.items():
        mask = cv2.imread(str(tmp_path / "out" / f"{name.rsplit('.', 1)[0]}_mask.png"), cv2.IMREAD_UNCHANGED)
        assert mask is not None, name
        assert mask.shape == shape, name
        assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 255}, name
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_good_folder_exits_0(model_dir, tmp_path, capsys):
    write_good_images(tmp_path / "photos")
    assert infer.main([str(tmp_path / "photos"), "--model-dir", str(model_dir), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().err == ""


def test_mask_follows_the_probabilities_resized_to_the_photo(model_dir, tmp_path):
    """The mask at photo size is the thresholded, bilinearly resized model output, not a resized mask."""
    photo = face((128, 96), seed=3)
    cv2.imwrite(str(tmp_path / "photo.png"), photo)
    summary = infer.segment([tmp_path / "photo.png"], model_dir, tmp_path / "out", threshold=0.5, prob=True)
    assert summary["images"] == 1 and summary["failed"] == []
    model, _ = load_trained(model_dir)
    model_input = cv2.resize(photo, (64, 64), interpolation=cv2.INTER_AREA)
    probs = predict(model, model_input[None, ..., None].astype(np.float32) / 255.0).numpy()[0]
    expected = cv2.resize(probs, (96, 128), interpolation=cv2.INTER_LINEAR) >= 0.5
    mask = cv2.imread(str(tmp_path / "out" / "photo_mask.png"), cv2.IMREAD_UNCHANGED)
    assert np.mean((mask == 255) == expected) > 0.999
    prob = cv2.imread(str(tmp_path / "out" / "photo_prob.png"), cv2.IMREAD_UNCHANGED)
    assert prob.shape == (128, 96)
    assert np.abs(prob / 255.0 - cv2.resize(probs, (96, 128))).max() < 0.01


def test_recursive_keeps_the_structure_and_overlay_prob_have_the_photo_size(model_dir, tmp_path):
    root = tmp_path / "photos"
    (root / "sub" / "deeper").mkdir(parents=True)
    cv2.imwrite(str(root / "a.png"), face((50, 70)))
    cv2.imwrite(str(root / "sub" / "b.jpg"), face((64, 64)))
    cv2.imwrite(str(root / "sub" / "deeper" / "c.png"), cv2.cvtColor(face((90, 40)), cv2.COLOR_GRAY2BGR))
    out = tmp_path / "out"
    assert infer.main([str(root), "--model-dir", str(model_dir), "--out", str(out), "--recursive",
                       "--overlay", "--prob"]) == 0
    for stem, shape in {"a": (50, 70), "sub/b": (64, 64), "sub/deeper/c": (90, 40)}.items():
        assert cv2.imread(str(out / f"{stem}_mask.png"), cv2.IMREAD_UNCHANGED).shape == shape
        assert cv2.imread(str(out / f"{stem}_prob.png"), cv2.IMREAD_UNCHANGED).shape == shape
        overlay = cv2.imread(str(out / f"{stem}_overlay.png"), cv2.IMREAD_UNCHANGED)
        assert overlay.shape == (*shape, 3)


def test_without_recursive_only_the_top_level(model_dir, tmp_path):
    root = tmp_path / "photos"
    (root / "sub").mkdir(parents=True)
    cv2.imwrite(str(root / "a.png"), face((64, 64)))
    cv2.imwrite(str(root / "sub" / "b.png"), face((64, 64)))
    summary = infer.segment([root], model_dir, tmp_path / "out")
    assert summary["images"] == 1
    assert not (tmp_path / "out" / "sub").exists()


def test_output_folder_inside_the_input_is_not_read_back(model_dir, tmp_path):
    cv2.imwrite(str(tmp_path / "a.png"), face((64, 64)))
    for _ in range(2):
        summary = infer.segment([tmp_path], model_dir, tmp_path / "out", recursive=True)
        assert summary["images"] == 1 and summary["failed"] == []


def test_overlay_tints_the_mask_green_and_leaves_the_rest(tmp_path):
    photo = infer.Photo(infer.Job(tmp_path / "x.png", tmp_path / "x"), (4, 4), None, np.full((4, 4, 3), 100, np.uint8))
    probs = np.zeros((4, 4, 1), np.float32)
    probs[:2] = 1.0
    assert infer.Writer(overlay=True, prob=False, threshold=0.5)(photo, probs) is None
    overlay = cv2.imread(str(tmp_path / "x_overlay.png"))
    assert (overlay[2:] == 100).all()
    assert (overlay[:2, :, 1] > 150).all() and (overlay[:2, :, [0, 2]] < 100).all()


def test_three_classes_mask_holds_class_ids_and_overlay_colors_each_class(tmp_path):
    photo = infer.Photo(infer.Job(tmp_path / "x.png", tmp_path / "x"), (3, 2), None, np.full((3, 2, 3), 100, np.uint8))
    probs = np.eye(3, dtype=np.float32)[[[0, 0], [1, 1], [2, 2]]]
    assert infer.Writer(overlay=True, prob=True, threshold=0.5)(photo, probs) is None
    mask = cv2.imread(str(tmp_path / "x_mask.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(mask, [[0, 0], [1, 1], [2, 2]])
    overlay = cv2.imread(str(tmp_path / "x_overlay.png"))
    assert (overlay[0] == 100).all()
    assert overlay[1, 0, 1] > overlay[1, 0, 2] and overlay[2, 0, 2] > overlay[2, 0, 1]
    assert cv2.imread(str(tmp_path / "x_prob.png")).shape == (3, 2, 3)


def test_input_size_reads_the_run_config():
    assert infer.input_size({}) == (128, 128)
    assert infer.input_size({"image_size": 64}) == (64, 64)
    assert infer.input_size({"image_size": [96, 64]}) == (96, 64)


def test_to_8bit_scales_16_bit_and_float_ranges():
    np.testing.assert_array_equal(infer.to_8bit(np.array([0, 257, 65535], np.uint16)), [0, 1, 255])
    np.testing.assert_array_equal(infer.to_8bit(np.array([0.0, 0.5, 1.0, 2.0], np.float32)), [0, 128, 255, 255])


def test_same_stem_in_one_folder_keeps_both_outputs(model_dir, tmp_path):
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "a.png"), face((64, 64)))
    cv2.imwrite(str(tmp_path / "in" / "a.jpg"), face((32, 32)))
    assert infer.segment([tmp_path / "in"], model_dir, tmp_path / "out")["images"] == 2
    assert cv2.imread(str(tmp_path / "out" / "a_mask.png")).shape[:2] == (32, 32)
    assert cv2.imread(str(tmp_path / "out" / "a.png_mask.png")).shape[:2] == (64, 64)


def test_missing_model_dir_is_a_usage_error(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), face((64, 64)))
    assert infer.main([str(tmp_path / "a.png"), "--model-dir", str(tmp_path / "nowhere"),
                       "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "nowhere does not exist" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_missing_input_exits_2_from_the_command_line(model_dir, tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "infer.py"), str(tmp_path / "missing.jpg"),
                             "--model-dir", str(model_dir), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert "missing.jpg" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("num_classes", [1, 3])
def test_classes_follow_the_evaluation_rule(num_classes):
    probs = np.random.default_rng(0).random((5, 7, num_classes)).astype(np.float32)
    probs[0, 0, 0] = 0.3
    np.testing.assert_array_equal(infer.classes_of(probs, 0.3), predicted_classes(probs[None], 0.3)[0])
