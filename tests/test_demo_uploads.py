"""demo/uploads.py: every kind of bad upload is refused in one sentence naming the file, before decoding."""
import struct
import zlib

import cv2
import numpy as np
import pytest

from demo.uploads import MAX_MEGAPIXELS, MIN_SIDE, UploadError, read_upload
from faces.photo_files import read_image


def png_of_zeros(path, width, height):
    """A valid gray PNG of `width` x `height` black pixels, compressed row by row (never held whole)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte 0, then the row
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "photo.jpg"
    cv2.imwrite(str(path), rng.integers(0, 255, (96, 128, 3), dtype=np.uint8))
    return path


def refusal(path, name=None):
    with pytest.raises(UploadError) as caught:
        read_upload(path, name)
    return str(caught.value)


def test_a_photo_reads_as_infer_reads_it(photo):
    image = read_upload(photo)
    expected, problem = read_image(photo)
    assert problem is None
    np.testing.assert_array_equal(image, expected)
    assert image.shape == (96, 128, 3) and image.dtype == np.uint8


def test_16_bit_and_gray_photos_read_as_infer_reads_them(tmp_path):
    path = tmp_path / "deep.png"
    cv2.imwrite(str(path), np.linspace(0, 65535, 64 * 64).reshape(64, 64).astype(np.uint16))
    image = read_upload(path)
    np.testing.assert_array_equal(image, read_image(path)[0])
    assert image.dtype == np.uint8 and image.ndim == 2 and image.max() == 255


def test_text_posing_as_a_jpeg(tmp_path):
    path = tmp_path / "holiday.jpg"
    path.write_text("this is not a photo\n")
    assert refusal(path) == "holiday.jpg is not an image: upload a photo (JPEG, PNG, BMP, WebP or TIFF)"


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    assert refusal(path).startswith("empty.png is empty")


def test_truncated_jpeg_named_as_the_visitor_named_it(photo, tmp_path):
    data = photo.read_bytes()
    path = tmp_path / "upload-1234"
    path.write_bytes(data[: len(data) // 2])
    message = refusal(path, "my photo.jpg")
    assert message.startswith("my photo.jpg cannot be read: it ends before its end-of-image marker (truncated)")


def test_tiny_image(tmp_path):
    path = tmp_path / "dot.png"
    cv2.imwrite(str(path), np.zeros((1, 1, 3), np.uint8))
    assert refusal(path) == (f"dot.png is 1x1 pixels, too small to hold a face: upload a photo at least "
                             f"{MIN_SIDE} pixels on each side")


def test_huge_png_refused_by_its_header(tmp_path):
    path = png_of_zeros(tmp_path / "huge.png", 30000, 30000)
    assert path.stat().st_size < 5 * 2 ** 20  # small on disk: only the header tells
    message = refusal(path)
    assert message == (f"huge.png is 30000x30000 pixels, more than the {MAX_MEGAPIXELS} megapixels this page takes: "
                       "resize it, or run infer.py on it")


def test_just_under_the_limit_is_read(tmp_path):
    path = png_of_zeros(tmp_path / "wide.png", 4000, 3000)
    assert read_upload(path).shape == (3000, 4000)


def test_missing_file(tmp_path):
    assert refusal(tmp_path / "gone.jpg").startswith("gone.jpg could not be read (No such file or directory)")
