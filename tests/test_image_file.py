"""The checked image reader: whole files decode as OpenCV reads them, damaged ones fail naming the file."""
import cv2
import numpy as np
import pytest

from conftest import synthetic_face
from image_file import ImageFileError, damage, decode_image, read_image


@pytest.fixture
def face():
    return synthetic_face(np.random.default_rng(0), 96)[0]


def encoded(image, suffix, *params):
    ok, data = cv2.imencode(suffix, image, list(params))
    assert ok
    return data.tobytes()


@pytest.mark.parametrize("suffix, params", [
    (".jpg", ()), (".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)), (".jpg", (cv2.IMWRITE_JPEG_RST_INTERVAL, 1)),
    (".png", ()), (".bmp", ()), (".pgm", ()), (".ppm", ())])
def test_whole_files_read_as_opencv_reads_them(tmp_path, face, suffix, params):
    image = face if suffix != ".ppm" else cv2.cvtColor(face, cv2.COLOR_GRAY2BGR)
    path = tmp_path / f"face{suffix}"
    path.write_bytes(encoded(image, suffix, *params))
    np.testing.assert_array_equal(read_image(path), cv2.imread(str(path), cv2.IMREAD_GRAYSCALE))
    np.testing.assert_array_equal(read_image(path, cv2.IMREAD_COLOR), cv2.imread(str(path), cv2.IMREAD_COLOR))


@pytest.mark.parametrize("suffix, params", [
    (".jpg", ()), (".jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)), (".png", ()), (".bmp", ()), (".pgm", ())])
@pytest.mark.parametrize("kept", [200, -2])
def test_truncated_files_fail_naming_the_file(tmp_path, face, suffix, params, kept):
    data = encoded(face, suffix, *params)
    path = tmp_path / f"cut{suffix}"
    path.write_bytes(data[:kept])
    # OpenCV alone reads a JPEG that lacks only its end (with a warning): the reader checks first.
    if suffix == ".jpg" and kept < 0:
        assert cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) is not None
    with pytest.raises(ImageFileError, match=rf"cannot read image {path}: .*\(truncated\)$"):
        read_image(path)


def test_a_jpeg_cut_after_its_thumbnail_is_truncated(face):
    # An EXIF thumbnail is a whole JPEG, EOI marker included, inside the photo's APP1 segment.
    thumbnail = encoded(face[::4, ::4], ".jpg")
    app1 = b"\xff\xe1" + (2 + 6 + len(thumbnail)).to_bytes(2, "big") + b"Exif\x00\x00" + thumbnail
    photo = encoded(face, ".jpg")
    with_thumbnail = photo[:2] + app1 + photo[2:]
    assert damage(with_thumbnail) is None
    assert "truncated" in damage(with_thumbnail[:len(app1) + 300])


def test_bytes_after_the_end_of_a_jpeg_are_allowed(face):
    # Phones append previews or a video after the image's EOI marker.
    data = encoded(face, ".jpg") + b"\x00\x01trailing video"
    np.testing.assert_array_equal(decode_image(data, "photo.jpg"), decode_image(encoded(face, ".jpg"), "x"))


def test_a_png_with_a_damaged_chunk_fails_its_checksum(face):
    data = bytearray(encoded(face, ".png"))
    data[60] ^= 0xFF  # inside the first IDAT chunk
    with pytest.raises(ImageFileError, match=r"cannot read image faces/a.png: its IDAT chunk fails its checksum"):
        decode_image(bytes(data), "faces/a.png")


def test_missing_empty_and_non_image_files_are_named(tmp_path):
    with pytest.raises(ImageFileError, match=rf"cannot read image {tmp_path / 'none.jpg'}: No such file"):
        read_image(tmp_path / "none.jpg")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageFileError, match=r"empty.png: the file is empty"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "text.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(ImageFileError, match=r"text.jpg: not an image OpenCV can decode"):
        read_image(tmp_path / "text.jpg")
