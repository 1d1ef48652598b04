"""demo/segmentation.py: the page's photos and webcam frames give exactly what infer.py gives."""
import json
import os
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from demo.segmentation import FACE, FACE_HAIR, KEEP_OUTPUTS_SECONDS, LiveView, Segmenter
from faces.photo_outputs import overlay_image
import infer

from conftest import ROOT

ASTRONAUT = ROOT / "docs" / "astronaut.png"
GROUP = ROOT / "docs" / "group.png"


@pytest.fixture(scope="module")
def segmenter(tmp_path_factory):
    return Segmenter(outputs=tmp_path_factory.mktemp("demo-outputs"))


@pytest.fixture(scope="module")
def infer_outputs(tmp_path_factory):
    """What infer.py writes for the two example photos, with the face and the face + hair model."""
    out = tmp_path_factory.mktemp("infer-out")
    for label, model_dir in ((FACE, infer.DEFAULT_MODEL_DIR), (FACE_HAIR, infer.DEFAULT_MODEL_DIR / "classes3")):
        infer.segment([ASTRONAUT, GROUP], model_dir, out / label, overlay=True, faces_json=True, log=print)
    return out


def test_both_models_offered_and_the_given_one_first(segmenter):
    assert segmenter.labels == [FACE, FACE_HAIR]
    assert segmenter.num_classes == {FACE: 1, FACE_HAIR: 3}
    three_first = Segmenter(infer.DEFAULT_MODEL_DIR / "classes3", outputs=segmenter.outputs)
    assert three_first.model_dirs[FACE_HAIR] == infer.DEFAULT_MODEL_DIR / "classes3"
    assert three_first.model_dirs[FACE] == infer.DEFAULT_MODEL_DIR


@pytest.mark.parametrize("label", [FACE, FACE_HAIR])
@pytest.mark.parametrize("photo", [ASTRONAUT, GROUP], ids=["astronaut", "group"])
def test_photo_outputs_are_infer_outputs(segmenter, infer_outputs, label, photo):
    image = cv2.imread(str(photo))
    overlay, mask_path, json_path, summary = segmenter.photo(image, photo.name, label)
    written = infer_outputs / label / photo.stem
    expected_mask = cv2.imread(f"{written}_mask.png", cv2.IMREAD_UNCHANGED)
    mask = cv2.imread(mask_path, cv2.IMREAD_UNCHANGED)
    assert mask.shape == image.shape[:2]
    # The same pipeline on the same CPU; only a face's batch neighbours differ (infer.py batches a folder).
    assert np.mean(mask != expected_mask) < 1e-3
    assert set(np.unique(mask)) == ({0, 255} if label == FACE else {0, 1, 2})
    expected_overlay = cv2.imread(f"{written}_overlay.png")
    assert Path(overlay).parent == Path(mask_path).parent == Path(json_path).parent  # the request's own folder
    assert np.mean(np.any(cv2.imread(overlay) != expected_overlay, axis=-1)) < 1e-3
    faces = json.loads(open(json_path).read())
    expected = json.loads(open(f"{written}_faces.json").read())
    assert (faces["height"], faces["width"]) == (expected["height"], expected["width"])
    assert faces["photo"] == photo.name
    assert [f["box"] for f in faces["faces"]] == [f["box"] for f in expected["faces"]]
    count = len(expected["faces"])
    assert count == (1 if photo == ASTRONAUT else 4)
    assert summary.startswith(f"{count} face{'' if count == 1 else 's'} found in ")


def test_the_tint_lies_on_the_face(segmenter):
    image = cv2.imread(str(ASTRONAUT))
    overlay, mask_path, _, _ = segmenter.photo(image, "astronaut.png", FACE)
    mask = cv2.imread(mask_path, cv2.IMREAD_GRAYSCALE) > 0
    changed = np.any(cv2.imread(overlay) != image, axis=-1)
    assert mask.sum() > 0.02 * mask.size  # the face fills a good part of this portrait
    assert changed[mask].mean() > 0.95  # tinted where the mask is
    assert changed[~mask].mean() < 0.01  # and elsewhere only the box and its number


def test_whole_image_mode_and_upright_search(segmenter):
    lfw = cv2.imread(str(ROOT / "data128_128" / "inputs" / "Aaron_Sorkin_0001.jpg"))
    expected, _ = infer.segment_faces(lfw, whole_image=True)
    _, mask_path, json_path, summary = segmenter.photo(lfw, "lfw.jpg", FACE, whole_image=True)
    np.testing.assert_array_equal(cv2.imread(mask_path, cv2.IMREAD_GRAYSCALE), expected * 255)
    assert json.loads(open(json_path).read())["faces"] == []
    assert summary.startswith("whole image segmented in ")
    group = cv2.imread(str(GROUP))
    upright, _ = infer.segment_faces(group, tilted_faces=False)
    _, mask_path, _, _ = segmenter.photo(group, "group.png", FACE, tilted_faces=False)
    np.testing.assert_array_equal(cv2.imread(mask_path, cv2.IMREAD_GRAYSCALE), upright * 255)


def test_gray_photo(segmenter):
    gray = cv2.imread(str(ASTRONAUT), cv2.IMREAD_GRAYSCALE)
    overlay, mask_path, _, summary = segmenter.photo(gray, "gray.png", FACE)
    assert cv2.imread(overlay, cv2.IMREAD_UNCHANGED).shape == (*gray.shape, 3)
    assert summary.startswith("1 face found")


def test_live_frames_are_tracked_as_infer_tracks_a_clip(segmenter):
    rgb = cv2.cvtColor(cv2.imread(str(ASTRONAUT)), cv2.COLOR_BGR2RGB)
    bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
    view = LiveView(segmenter)
    stream = infer.VideoSegmenter()
    for _ in range(3):
        overlay, status = view.frame(rgb)
        mask, faces = stream.step(bgr)
    # Smoothing is paced by the frames' times, which differ; the face and its track do not.
    assert [face.track_id for face in faces] == [1]
    expected = cv2.cvtColor(overlay_image(bgr, mask, faces, [1]), cv2.COLOR_BGR2RGB)
    assert np.mean(np.any(overlay != expected, axis=-1)) < 0.01
    assert status.startswith("1 face found in ") and status.endswith(" frames/s")
    hair, _ = view.frame(rgb, FACE_HAIR)  # another model: a new stream
    assert view.stream.num_classes == 3 and not np.array_equal(hair, overlay)


def test_old_downloads_are_removed(segmenter):
    old = segmenter.fresh_folder()
    (old / "x_mask.png").write_bytes(b"x")
    past = time.time() - KEEP_OUTPUTS_SECONDS - 1
    os.utime(old, (past, past))
    recent = segmenter.fresh_folder()
    newer = segmenter.fresh_folder()
    assert not old.exists() and recent.exists() and newer.exists() and recent != newer


def test_each_photo_and_frame_gets_files_of_its_own(segmenter):
    """Gradio rewrites an array's file under a name made from its content, so two identical answers at once
    would truncate a file being downloaded: the page hands it distinct files instead (GRADIO_FILES)."""
    image = cv2.imread(str(ASTRONAUT))
    first, second = (segmenter.photo(image, "astronaut.png", FACE)[0] for _ in range(2))
    assert first != second and Path(first).name == Path(second).name == "astronaut_overlay.png"
    assert open(first, "rb").read() == open(second, "rb").read()  # the same answer, in two files
    view = LiveView(segmenter)
    rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    paths = [view.frame_file(view.frame(rgb)[0]) for _ in range(4)]
    assert len(set(paths)) == 4 and [Path(p).exists() for p in paths] == [False, False, True, True]
    overlay, _ = view.frame(rgb)
    shown = cv2.imread(view.frame_file(overlay))
    def error(expected):
        return np.abs(shown.astype(int) - expected).mean()
    assert error(cv2.cvtColor(overlay, cv2.COLOR_RGB2BGR)) < 4 and error(overlay) > 8  # a JPEG of it, not swapped
