"""infer.py: the file pipeline on a tiny model trained on synthetic 64x64 faces (MTCNN finds no face
in them, so the default mode writes all-background masks and --whole-image is today's resize) and,
for a folder of every image format, with the pretrained model on a real photo (docs/astronaut.png);
the face pipeline with the pretrained model on that photo and LFW test faces."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

import convolutional_autoencoder as ca
from faces import photo_outputs
import infer
from runs import auto_precision
from runs.evaluation import load_trained, predict
from conftest import ROOT, make_face_folder, synthetic_face, tilted_scene, user_environment

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


ASTRONAUT = ROOT / "docs" / "astronaut.png"
# The face's box in docs/astronaut.png (x0, y0, x1, y1), as drawn by hand around forehead to chin.
ASTRONAUT_FACE = (180, 60, 268, 175)


def inside_share(mask, box, margin=0.25):
    """Share of the mask's pixels inside `box` widened by `margin` of its size on each side."""
    x0, y0, x1, y1 = box
    dx, dy = margin * (x1 - x0), margin * (y1 - y0)
    ys, xs = np.nonzero(mask)
    return np.mean((xs >= x0 - dx) & (xs <= x1 + dx) & (ys >= y0 - dy) & (ys <= y1 + dy))


def write_good_images(folder):
    """docs/astronaut.png in many formats and sizes; returns {file name: (height, width)}."""
    folder.mkdir(parents=True, exist_ok=True)
    color = cv2.imread(str(ASTRONAUT))
    gray = cv2.cvtColor(color, cv2.COLOR_BGR2GRAY)
    images = {
        "gray.png": gray,
        "rgb.jpg": color,
        "rgba.png": cv2.cvtColor(color, cv2.COLOR_BGR2BGRA),
        "deep.png": gray.astype(np.uint16) * 257,
        "small.png": cv2.resize(gray, (256, 200), interpolation=cv2.INTER_AREA),
        "large.jpg": cv2.resize(color, (800, 1000)),
        "bitmap.bmp": color,
        "scan.tif": gray,
        "frame.ppm": color,
    }
    for name, image in images.items():
        assert cv2.imwrite(str(folder / name), image), name
    return {name: image.shape[:2] for name, image in images.items()}


def test_mixed_folder_masks_the_face_of_every_image_at_its_size_and_names_the_bad_files(tmp_path, capsys):
    shapes = write_good_images(tmp_path / "photos")
    (tmp_path / "photos" / "corrupt.jpg").write_bytes(np.random.default_rng(1).bytes(2000))
    (tmp_path / "photos" / "notes.txt").write_text("not an image")
    status = infer.main([str(tmp_path / "photos"), "--model-dir", str(ROOT / "pretrained"),
                         "--out", str(tmp_path / "out"), "--batch-size", "4"])
    captured = capsys.readouterr()
    assert status == 1
    assert "corrupt.jpg" in captured.err and "notes.txt" in captured.err
    assert "segmented 9 images (9 faces), 2 failed" in captured.out and "no face found" not in captured.out
    for name, (height, width) in shapes.items():
        mask = cv2.imread(str(tmp_path / "out" / f"{name.rsplit('.', 1)[0]}_mask.png"), cv2.IMREAD_UNCHANGED)
        assert mask is not None, name
        assert mask.shape == (height, width), name
        assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 255}, name
        # The mask lies on the face, wherever the photo's size put it, and covers much of it.
        x0, y0, x1, y1 = ASTRONAUT_FACE
        box = (x0 * width / 512, y0 * height / 512, x1 * width / 512, y1 * height / 512)
        assert inside_share(mask, box) > 0.95, name
        assert np.count_nonzero(mask) > 0.5 * (box[2] - box[0]) * (box[3] - box[1]), name
    assert not list((tmp_path / "out").glob(".*.tmp"))


def test_good_folder_exits_0(model_dir, tmp_path, capsys):
    write_good_images(tmp_path / "photos")
    assert infer.main([str(tmp_path / "photos"), "--model-dir", str(model_dir), "--out", str(tmp_path / "out")]) == 0
    assert capsys.readouterr().err == ""


def test_the_command_line_says_first_which_precision_ran_and_why(model_dir, tmp_path, capsys, monkeypatch):
    write_good_images(tmp_path / "photos")
    assert infer.main([str(tmp_path / "photos"), "--model-dir", str(model_dir), "--precision", "bf16",
                       "--out", str(tmp_path / "out")]) == 0
    precision, summary = capsys.readouterr().out.splitlines()
    assert precision == "precision: bf16" and summary.startswith("segmented ")
    # A CPU with native bf16 on which bf16 is the slower (as on some Xeons), with a cache of its own.
    monkeypatch.setattr(auto_precision.cpu_features, "read_cpu", lambda *_: ("Test CPU", {"avx512_bf16"}))
    monkeypatch.setattr(auto_precision, "time_both", lambda *_: {"fp32": 1.0, "bf16": 2.0})
    monkeypatch.setenv(auto_precision.CACHE_ENV, str(tmp_path / "cache"))
    infer.loaded.cache_clear()
    assert infer.main([str(tmp_path / "photos"), "--model-dir", str(model_dir), "--out", str(tmp_path / "out")]) == 0
    precision = capsys.readouterr().out.splitlines()[0]
    assert precision.startswith("precision: fp32 (auto: bf16's forward pass took 2.00x fp32's time on this CPU; ")
    infer.loaded.cache_clear()  # the model of this fake CPU is not for the other tests


def test_mask_follows_the_probabilities_resized_to_the_photo(model_dir, tmp_path):
    """The mask at photo size is the thresholded, bilinearly resized model output, not a resized mask."""
    photo = face((128, 96), seed=3)
    cv2.imwrite(str(tmp_path / "photo.png"), photo)
    # fp32 on both sides: on a CPU with native bf16, `auto` would run bf16, whose rounding can flip a pixel
    # whose probability lies near the threshold, which is not what this test is about.
    summary = infer.segment([tmp_path / "photo.png"], model_dir, tmp_path / "out", threshold=0.5, prob=True,
                            whole_image=True, precision="fp32")
    assert summary["images"] == 1 and summary["failed"] == []
    model, _ = load_trained(model_dir, "fp32")
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


def test_a_folder_that_is_no_model_names_what_infer_takes(tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), face((64, 64)))
    (tmp_path / "photos").mkdir()
    assert infer.main([str(tmp_path / "a.png"), "--model-dir", str(tmp_path / "photos"),
                       "--out", str(tmp_path / "out")]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "photos has no config.json" in line and "pretrained/" in line and "or an export" in line
    assert not (tmp_path / "out").exists()


def test_missing_input_exits_2_from_the_command_line(model_dir, tmp_path):
    result = subprocess.run([sys.executable, str(ROOT / "infer.py"), str(tmp_path / "missing.jpg"),
                             "--model-dir", str(model_dir), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 2
    assert "missing.jpg" in result.stderr and "Traceback" not in result.stderr


def test_photos_without_faces_leave_standard_error_empty_from_the_command_line(model_dir, tmp_path):
    # When no candidate is left for MTCNN's second or third stage, its traced network used to fail on the
    # empty batch with a "Local rendezvous is aborting" warning on standard error (face_detection.networks).
    cv2.imwrite(str(tmp_path / "plain.png"), np.full((480, 640, 3), 128, np.uint8))
    cv2.imwrite(str(tmp_path / "noise.png"), np.random.default_rng(0).integers(0, 256, (480, 640, 3), np.uint8))
    result = subprocess.run([sys.executable, str(ROOT / "infer.py"), "plain.png", "noise.png",
                             "--model-dir", str(model_dir), "--out", str(tmp_path / "out")],
                            capture_output=True, text=True, cwd=tmp_path, env=user_environment())
    assert result.returncode == 0 and result.stderr == ""
    assert "no face found in 2 images" in result.stdout


def test_bad_settings_are_usage_errors(model_dir, tmp_path, capsys):
    cv2.imwrite(str(tmp_path / "a.png"), face((64, 64)))
    for flags, named in ((["--min-confidence", "1.5"], "--min-confidence"), (["--min-face", "3"], "--min-face"),
                         (["--whole-image", "--json"], "--whole-image"),
                         (["--whole-image", "--tilted-faces"], "--tilted-faces"),
                         (["--whole-image", "--no-tilted-faces", "--crops"], "--crops")):
        assert infer.main([str(tmp_path / "a.png"), "--model-dir", str(model_dir), "--out", str(tmp_path / "out"),
                           *flags]) == 2
        assert named in capsys.readouterr().err


def test_truncated_jpeg_is_named_and_skipped(model_dir, tmp_path, capsys):
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(face((64, 64)), cv2.COLOR_GRAY2BGR))
    (tmp_path / "cut.jpg").write_bytes(encoded.tobytes()[: len(encoded) // 2])
    (tmp_path / "whole.jpg").write_bytes(encoded.tobytes() + b"\0\0")  # bytes after the end marker are fine
    (tmp_path / "motion.jpg").write_bytes(encoded.tobytes() + bytes(5000))  # a video may follow the image
    assert infer.main([str(tmp_path / name) for name in ("cut.jpg", "whole.jpg", "motion.jpg")] +
                      ["--model-dir", str(model_dir), "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "cut.jpg: it ends before its end-of-image marker (truncated)" in err and "whole.jpg" not in err and "motion.jpg" not in err
    assert "Traceback" not in err
    assert not (tmp_path / "out" / "cut_mask.png").exists() and (tmp_path / "out" / "whole_mask.png").exists()


# ---------------------------------------------------------------------------------------------
# The face pipeline with the pretrained model
# ---------------------------------------------------------------------------------------------

def test_segment_faces_finds_the_face_of_an_ordinary_photo_and_masks_only_it():
    photo = cv2.imread(str(ASTRONAUT))
    mask, faces = infer.segment_faces(photo)
    assert mask.shape == photo.shape[:2] and len(faces) == 1
    (found,) = faces
    assert abs(found.box[0] - ASTRONAUT_FACE[0]) < 15 and abs(found.box[2] - ASTRONAUT_FACE[2]) < 15
    assert found.crop.shape == (128, 128) and found.probabilities.shape == (128, 128, 1)
    assert found.mask_area == np.count_nonzero(mask) > 4000
    assert inside_share(mask, ASTRONAUT_FACE) > 0.95
    whole, _ = infer.segment_faces(photo, whole_image=True)
    assert inside_share(whole, ASTRONAUT_FACE) < 0.7, "the resized whole photo spills far beyond the face"


def test_every_kind_of_photo_gets_the_same_face(tmp_path):
    """Gray, 16-bit, RGBA, 8000x8000 and a tilted copy: the face is found, the mask lines up with the photo."""
    photo = cv2.imread(str(ASTRONAUT))
    reference, reference_faces = infer.segment_faces(photo)
    gray = cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY)
    for name, variant in {"gray": gray, "16-bit": photo.astype(np.uint16) * 257,
                          "rgba": cv2.cvtColor(photo, cv2.COLOR_BGR2BGRA)[..., :3]}.items():
        mask, faces = infer.segment_faces(variant)
        assert len(faces) == 1, name
        assert np.mean(mask == reference) > 0.995, name
    huge = cv2.resize(photo, (8000, 8000), interpolation=cv2.INTER_LINEAR)
    mask, faces = infer.segment_faces(huge)
    # The most confident face is the astronaut's. The looser first MTCNN stages (faces/face_detection.py) also
    # let the rim of her helmet through at 0.94 in this 16x blown-up copy: a known false detection,
    # small enough (0.1% of the photo) to leave the mask as it is.
    assert mask.shape == (8000, 8000) and 1 <= len(faces) <= 2 and faces[0].confidence > 0.99
    np.testing.assert_allclose(faces[0].box, np.array(reference_faces[0].box) * 8000 / 512, atol=8000 / 512 * 15)
    small = cv2.resize(mask, (512, 512), interpolation=cv2.INTER_AREA)
    assert np.mean(small == reference) > 0.99
    turn = cv2.getRotationMatrix2D((224, 118), 28, 1.0)
    tilted = cv2.warpAffine(photo, turn, (512, 512), borderMode=cv2.BORDER_REFLECT)
    mask, faces = infer.segment_faces(tilted)
    assert len(faces) == 1
    expected = cv2.warpAffine(reference, turn, (512, 512), flags=cv2.INTER_NEAREST)
    assert np.count_nonzero(mask & expected) / np.count_nonzero(mask | expected) > 0.85


def test_a_scene_of_two_test_faces_gets_both_masks(real_data):
    """Two LFW test faces, scaled, tilted and placed on a plain background: each found and segmented."""
    test = json.loads((ROOT / "pretrained" / "split.json").read_text())["test"]
    scene = np.full((480, 640), 90, np.uint8)
    truth = np.zeros((480, 640), bool)
    for name, centre, angle, side in ((test[0], (170, 240), 20, 220), (test[5], (470, 230), -15, 250)):
        image = cv2.imread(str(real_data / "inputs" / f"{name}.jpg"), cv2.IMREAD_GRAYSCALE)
        target = cv2.imread(str(real_data / "targets_face_only" / f"{name}.jpg"), cv2.IMREAD_GRAYSCALE)
        move = cv2.getRotationMatrix2D((63.5, 63.5), angle, side / 128)
        move[:, 2] += np.array(centre) - 63.5
        cover = cv2.warpAffine(np.ones((128, 128), np.uint8), move, (640, 480)) > 0
        scene[cover] = cv2.warpAffine(image, move, (640, 480))[cover]
        truth |= cv2.warpAffine(target, move, (640, 480)) > 127
    mask, faces = infer.segment_faces(scene)
    assert len(faces) == 2
    assert np.count_nonzero((mask > 0) & truth) / np.count_nonzero((mask > 0) | truth) > 0.8


def test_command_line_writes_boxes_crops_and_json_and_names_photos_without_a_face(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    cv2.imwrite(str(tmp_path / "in" / "astronaut.jpg"), cv2.imread(str(ASTRONAUT)))
    cv2.imwrite(str(tmp_path / "in" / "noise.png"), np.random.default_rng(0).integers(0, 255, (300, 400), np.uint8))
    cv2.imwrite(str(tmp_path / "in" / "speck.png"), np.full((9, 7, 3), 128, np.uint8))
    out = tmp_path / "out"
    assert infer.main([str(tmp_path / "in"), "--out", str(out), "--overlay", "--crops", "--json"]) == 0
    printed = capsys.readouterr().out
    assert "segmented 3 images (1 face), 0 failed" in printed
    assert "no face found in 2 images" in printed and "noise.png" in printed and "speck.png" in printed
    mask = cv2.imread(str(out / "astronaut_mask.png"), cv2.IMREAD_UNCHANGED)
    assert mask.shape == (512, 512) and set(np.unique(mask)) == {0, 255}
    assert not cv2.imread(str(out / "noise_mask.png"), cv2.IMREAD_UNCHANGED).any()
    assert cv2.imread(str(out / "speck_mask.png"), cv2.IMREAD_UNCHANGED).shape == (9, 7)
    faces = json.loads((out / "astronaut_faces.json").read_text())["faces"]
    assert len(faces) == 1 and faces[0]["mask_area"] == np.count_nonzero(mask)
    assert list(faces[0]["landmarks"]) == ["left_eye", "right_eye", "nose", "mouth_left", "mouth_right"]
    assert json.loads((out / "noise_faces.json").read_text())["faces"] == []
    crop = cv2.imread(str(out / "astronaut_face1_crop.png"), cv2.IMREAD_UNCHANGED)
    crop_mask = cv2.imread(str(out / "astronaut_face1_crop_mask.png"), cv2.IMREAD_UNCHANGED)
    assert crop.shape == crop_mask.shape == (128, 128)
    assert 0.1 < np.mean(crop_mask == 255) < 0.6
    overlay = cv2.imread(str(out / "astronaut_overlay.png"))
    x0, y0, x1, _ = (round(v) for v in faces[0]["box"])
    assert (overlay[y0, x0 + 5:x1 - 5] == photo_outputs.BOX_COLOR).all(axis=-1).mean() > 0.9  # the box's top edge


def test_tilted_faces_finds_and_segments_a_face_the_upright_search_misses(real_data, tmp_path, capsys):
    """By default (and with --tilted-faces) a face turned 28 degrees is found and segmented; the upright
    search alone (--no-tilted-faces) misses it."""
    scene, truth, _, _ = tilted_scene(real_data, "Alice_Fisher_0001", 28)
    cv2.imwrite(str(tmp_path / "tilted.png"), scene)
    for flags, count in ((["--no-tilted-faces"], 0), (["--tilted-faces"], 1), ([], 1)):
        out = tmp_path / f"out{len(flags)}{count}"
        assert infer.main([str(tmp_path / "tilted.png"), "--out", str(out), "--json", *flags]) == 0
        assert f"({count} face{'' if count == 1 else 's'})" in capsys.readouterr().out
        assert len(json.loads((out / "tilted_faces.json").read_text())["faces"]) == count
    mask = cv2.imread(str(out / "tilted_mask.png"), cv2.IMREAD_UNCHANGED) > 0
    assert np.count_nonzero(mask & truth) / np.count_nonzero(mask | truth) > 0.8


def test_three_class_model_keeps_each_pixel_of_the_most_confident_face():
    """Two astronauts side by side, whose framed regions overlap: each pixel takes the classes of the
    face surer it is not background there (face_alignment.combine); painting one face over the other
    would give another mask."""
    photo = cv2.imread(str(ASTRONAUT))
    mask, faces = infer.segment_faces(photo, ROOT / "pretrained" / "classes3")
    assert len(faces) == 1 and faces[0].probabilities.shape == (128, 128, 3)
    assert set(np.unique(mask)) == {0, 1, 2}
    assert inside_share(mask == 1, ASTRONAUT_FACE) > 0.95

    crop = photo[20:230, 150:300]
    pair = np.full((260, 340, 3), 110, np.uint8)
    pair[20:230, 20:170], pair[20:230, 170:320] = crop, crop[:, ::-1]
    mask, faces = infer.segment_faces(pair, ROOT / "pretrained" / "classes3")
    assert len(faces) == 2
    each = np.zeros((2, *pair.shape[:2], 3), np.float32)  # each face's probabilities at photo size
    each[..., 0] = 1.0
    for probabilities, (x0, y0, region) in zip(each, (face.pasted for face in faces)):
        probabilities[y0:y0 + region.shape[0], x0:x0 + region.shape[1]] = region
    sure = each[..., 1:].sum(axis=-1)  # how sure each face is that a pixel is not background
    surest = sure.argmax(axis=0)
    np.testing.assert_array_equal(mask, np.take_along_axis(each, surest[None, ..., None], 0)[0].argmax(axis=-1))
    classes = each.argmax(axis=-1)
    contested = (sure > 0).all(axis=0) & (classes[0] != classes[1])
    assert (contested & (surest == 0)).sum() > 500 and (contested & (surest == 1)).sum() > 500
    for top in (0, 1):
        assert (np.where(sure[top] > 0, classes[top], classes[1 - top]) != mask).sum() > 500
