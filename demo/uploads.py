"""What the page accepts as a photo: a whole, decodable image of sensible size, read as infer.py reads files.

An upload is the user's file, so everything wrong with it is their mistake, told in one sentence. The
size is read from the header before decoding (Pillow opens lazily): a 30000x30000 PNG compresses to a
few megabytes but would decode to 2.7 GB, and a server shared by several visitors must not try.
"""
import io
import struct
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from faces import face_detection
from faces.photo_files import READ_FLAGS, to_8bit
import image_file

MAX_MEGAPIXELS = 50  # a 48-megapixel phone photo fits; decoding and masks then take about 1 GB
MAX_UPLOAD_BYTES = 100 * 2 ** 20
# MTCNN's smallest face, so an image that cannot hold one is refused rather than answered with "no face".
MIN_SIDE = face_detection.SMALLEST_FACE


class UploadError(ValueError):
    """An upload the page refuses; the message is the sentence shown to the user."""


def read_upload(path, name=None):
    """The photo in the uploaded file at `path` as 8-bit gray or BGR, as infer.py would read it from disk;
    UploadError, naming the file as the user called it (`name`), otherwise."""
    name = name or Path(path).name
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_UPLOAD_BYTES + 1)
    except OSError as error:
        raise UploadError(f"{name} could not be read ({error.strerror}): upload it again") from None
    if len(data) > MAX_UPLOAD_BYTES:
        raise UploadError(f"{name} is larger than {MAX_UPLOAD_BYTES // 2 ** 20} MB: upload a smaller photo")
    if not data:
        raise UploadError(f"{name} is empty: upload a photo (JPEG, PNG, BMP, WebP or TIFF)")
    width, height = header_size(data, name)
    if width * height > MAX_MEGAPIXELS * 1e6:
        raise UploadError(f"{name} is {width}x{height} pixels, more than the {MAX_MEGAPIXELS} megapixels this page "
                          "takes: resize it, or run infer.py on it")
    if min(width, height) < MIN_SIDE:
        raise UploadError(f"{name} is {width}x{height} pixels, too small to hold a face: upload a photo at least "
                          f"{MIN_SIDE} pixels on each side")
    try:
        image = image_file.decode_image(data, name, READ_FLAGS)
    except image_file.ImageFileError as error:
        raise UploadError(f"{name} cannot be read: {error.problem}; re-export or re-download it") from None
    return to_8bit(np.ascontiguousarray(image))


def header_size(data, name):
    """(width, height) from the image's header alone; UploadError for bytes that are no image."""
    if len(data) >= 24 and data[:8] == image_file.PNG_SIGNATURE and data[12:16] == b"IHDR":
        # Read here, not by Pillow, which refuses the most compressible of images before saying its size.
        return struct.unpack(">II", data[16:24])
    try:
        with warnings.catch_warnings():
            # Pillow warns, then refuses, above its own pixel limit; the limit above is the page's.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                return image.size
    except Image.DecompressionBombError:
        raise UploadError(f"{name} has more pixels than the {MAX_MEGAPIXELS} megapixels this page takes: resize it, "
                          "or run infer.py on it") from None
    except (Image.UnidentifiedImageError, OSError, ValueError, SyntaxError):
        raise UploadError(f"{name} is not an image: upload a photo (JPEG, PNG, BMP, WebP or TIFF)") from None
