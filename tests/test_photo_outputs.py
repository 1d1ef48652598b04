"""faces/photo_outputs.py: the files written for a photo, at its size (whole-image framing, no model needed)."""
import cv2
import numpy as np

from faces import framing
from faces import photo_files
from faces import photo_outputs
import infer


def test_overlay_tints_the_mask_green_and_leaves_the_rest(tmp_path):
    gray = np.full((4, 4, 3), 100, np.uint8)
    photo = infer.Photo(photo_files.Job(tmp_path / "x.png", tmp_path / "x"), (4, 4), None, [], gray)
    probs = np.zeros((1, 4, 4, 1), np.float32)
    probs[:, :2] = 1.0
    assert photo_outputs.Writer(framing.Framer((4, 4), whole_image=True), 1, overlay=True)(photo, probs) is None
    overlay = cv2.imread(str(tmp_path / "x_overlay.png"))
    assert (overlay[2:] == 100).all()
    assert (overlay[:2, :, 1] > 150).all() and (overlay[:2, :, [0, 2]] < 100).all()


def test_three_classes_mask_holds_class_ids_and_overlay_colors_each_class(tmp_path):
    gray = np.full((3, 2, 3), 100, np.uint8)
    photo = infer.Photo(photo_files.Job(tmp_path / "x.png", tmp_path / "x"), (3, 2), None, [], gray)
    probs = np.eye(3, dtype=np.float32)[[[[0, 0], [1, 1], [2, 2]]]]
    assert photo_outputs.Writer(framing.Framer((3, 2), whole_image=True), 3, overlay=True, prob=True)(photo, probs) is None
    mask = cv2.imread(str(tmp_path / "x_mask.png"), cv2.IMREAD_UNCHANGED)
    np.testing.assert_array_equal(mask, [[0, 0], [1, 1], [2, 2]])
    overlay = cv2.imread(str(tmp_path / "x_overlay.png"))
    assert (overlay[0] == 100).all()
    assert overlay[1, 0, 1] > overlay[1, 0, 2] and overlay[2, 0, 2] > overlay[2, 0, 1]
    assert cv2.imread(str(tmp_path / "x_prob.png")).shape == (3, 2, 3)
