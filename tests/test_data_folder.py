"""data_folder.py: the three target kinds, grayscale reading, and every problem named or left out."""
import cv2
import numpy as np
import pytest

from data_folder import DataError, load_folder


def test_targets_face_face_hair_and_three_classes(face_folder):
    names, images, face = load_folder(face_folder, "face")
    _, _, face_hair = load_folder(face_folder, "face_hair")
    _, _, classes = load_folder(face_folder, "classes3")
    assert images.dtype == np.uint8 and images.shape == (12, 64, 64)
    assert set(np.unique(face)) == {0, 1} and set(np.unique(classes)) == {0, 1, 2}
    assert np.all(face <= face_hair)
    np.testing.assert_array_equal(classes == 1, face == 1)
    np.testing.assert_array_equal(classes == 2, (face_hair == 1) & (face == 0))
    truth = cv2.imread(str(face_folder / "targets_face_only" / f"{names[0]}.jpg"), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(face[0], truth > 127)


def test_color_inputs_are_read_as_grayscale(face_folder):
    """A colour input whose three channels differ is read as its luminance (0.299 R + 0.587 G + 0.114 B),
    not as one of its channels."""
    path = face_folder / "inputs" / "Person_00_0001.jpg"
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE).astype(np.float64)
    color = np.stack([gray * 0.3, gray, 255 - gray], axis=-1).round().astype(np.uint8)  # B, G, R
    cv2.imwrite(str(path), color)
    names, images, _ = load_folder(face_folder)
    image = images[names.index("Person_00_0001")].astype(np.float64)
    assert image.shape == gray.shape
    written = cv2.imread(str(path)).astype(np.float64)  # as decoded: JPEG moved the channels a little
    luminance = written @ [0.114, 0.587, 0.299]
    assert np.abs(image - luminance).max() <= 2
    assert all(np.abs(image - written[..., c]).mean() > 20 for c in range(3))


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(DataError, match=r"data folder .*nowhere does not exist.*git checkout -- data128_128"):
        load_folder(tmp_path / "nowhere")


def refused_then_left_out(folder, name, message):
    """load_folder refuses `folder` with `message`; with --skip-bad it leaves `name` out and says so."""
    with pytest.raises(DataError, match=message):
        load_folder(folder)
    logged = []
    names, _, _ = load_folder(folder, skip_bad=True, log=logged.append)
    assert name not in names and len(names) == 11
    assert any(name in line for line in logged)


def test_input_without_target_is_named_and_can_be_skipped(face_folder):
    (face_folder / "targets_face_only" / "Person_01_0002.jpg").unlink()
    refused_then_left_out(face_folder, "Person_01_0002",
                          r"Person_01_0002 has no file in .*targets_face_only.*--skip-bad")


def test_target_without_input_is_named(face_folder):
    (face_folder / "inputs" / "Person_02_0001.jpg").unlink()
    with pytest.raises(DataError, match=r"Person_02_0001 has no file in .*inputs"):
        load_folder(face_folder)


def test_corrupt_image_is_named(face_folder):
    (face_folder / "inputs" / "Person_03_0001.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match=r"cannot read image .*Person_03_0001.jpg"):
        load_folder(face_folder)


def test_truncated_image_is_named_and_can_be_skipped(face_folder):
    path = face_folder / "targets_face_only" / "Person_03_0001.jpg"
    path.write_bytes(path.read_bytes()[:-2])  # all but the end-of-image marker: OpenCV alone reads it
    assert cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) is not None
    refused_then_left_out(face_folder, "Person_03_0001", r"cannot read image .*Person_03_0001.jpg: it ends before its "
                          r"end-of-image marker \(truncated\); replace or remove the file.*--skip-bad")


def test_size_mismatch_is_named(face_folder):
    cv2.imwrite(str(face_folder / "targets_face_only" / "Person_04_0001.jpg"), np.zeros((32, 32), np.uint8))
    with pytest.raises(DataError, match=r"Person_04_0001: input and targets differ in size"):
        load_folder(face_folder)
