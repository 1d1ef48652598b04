"""The project's one image reader: an image file is decoded only once it is known to be whole.

OpenCV decodes a truncated JPEG with a "Premature end of JPEG file" warning and grey where the data
ends, and reads a PNG cut short as far as it goes; a training set or a segmented photo silently gets
the damage. So the bytes are checked first, by the structure of their format: a JPEG's markers must
reach its end-of-image marker (FFD9), a PNG's chunks its IEND chunk with every checksum right, a BMP
or a binary PGM/PPM must be as long as its header says. That walks the file once, a small fraction
of decoding it. Other formats (TIFF) rely on OpenCV's decoder alone.
"""
import struct
import zlib

import cv2
import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# After FF in a JPEG, bytes that start no length-counted segment: a stuffed 00, TEM, restarts D0-D7.
_NOT_SEGMENTS = frozenset([0x00, 0x01, *range(0xD0, 0xD8)])


class ImageFileError(ValueError):
    """An image file that cannot be used; the message names the file and the problem (`problem` holds
    the latter alone), and the caller adds what to do about it."""

    def __init__(self, name, problem):
        super().__init__(f"cannot read image {name}: {problem}")
        self.problem = problem


def read_image(path, flags=cv2.IMREAD_GRAYSCALE):
    """The image in the file at `path`, decoded by OpenCV with `flags` (cv2.IMREAD_*), once its bytes
    are known to be whole; ImageFileError otherwise."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise ImageFileError(path, error.strerror) from None
    return decode_image(data, path, flags)


def decode_image(data, name, flags=cv2.IMREAD_GRAYSCALE):
    """`data`, the bytes of an image file (`name` names it in errors), decoded as read_image does."""
    problem = damage(data)
    if problem is None:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
        problem = "not an image OpenCV can decode" if image is None else None
    if problem is not None:
        raise ImageFileError(name, problem)
    return image


def damage(data):
    """What is wrong with the bytes of a JPEG, PNG, BMP or binary PGM/PPM file (None if nothing)."""
    if not data:
        return "the file is empty"
    if data[:2] == b"\xff\xd8":
        return _jpeg_damage(data)
    if data[:8] == PNG_SIGNATURE:
        return _png_damage(data)
    if data[:2] == b"BM" and len(data) >= 6:
        declared = struct.unpack("<I", data[2:6])[0]
        return f"it ends after {len(data)} of its {declared} bytes (truncated)" if len(data) < declared else None
    if data[:2] in (b"P5", b"P6"):
        return _pnm_damage(data)
    return None


def _jpeg_damage(data):
    """Walk the JPEG's marker segments and entropy-coded scans to its end-of-image marker.

    Bytes after EOI are allowed (some cameras append a preview or a video there); an EXIF thumbnail's
    own EOI lies inside a length-counted segment, so it cannot pass for the image's.
    """
    position, end = 2, len(data)
    while True:
        position = data.find(b"\xff", position)  # memchr: far faster than a regular expression here
        while 0 <= position < end - 1 and data[position + 1] == 0xFF:  # fill bytes before a marker
            position += 1
        if position < 0 or position >= end - 1:
            return "it ends before its end-of-image marker (truncated)"
        marker = data[position + 1]
        if marker == 0xD9:
            return None
        if marker in _NOT_SEGMENTS:
            position += 2
            continue
        if position + 4 > end:
            return "it ends inside a marker segment (truncated)"
        length = struct.unpack(">H", data[position + 2:position + 4])[0]
        if length < 2:
            return f"a marker segment has the impossible length {length} (corrupt)"
        position += 2 + length
        if position > end:
            return "it ends inside a marker segment (truncated)"


def _png_damage(data):
    """Walk the PNG's chunks to IEND, checking each chunk's CRC."""
    position, end = len(PNG_SIGNATURE), len(data)
    while position + 8 <= end:
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        stop = position + 12 + length
        if stop > end:
            break
        if zlib.crc32(data[position + 4:stop - 4]) != struct.unpack(">I", data[stop - 4:stop])[0]:
            return f"its {kind.decode('latin-1')} chunk fails its checksum (corrupt)"
        if kind == b"IEND":
            return None
        position = stop
    return "it ends before its IEND chunk (truncated)"


def _pnm_damage(data):
    """Binary PGM (P5) / PPM (P6): the header's width, height and maximum give the pixel bytes."""
    fields, position = [], 2
    while len(fields) < 3:
        while position < len(data) and (data[position:position + 1].isspace() or data[position] == ord("#")):
            if data[position] == ord("#"):
                position = data.find(b"\n", position)
                if position < 0:
                    return "its header is cut short (truncated)"
            position += 1
        start = position
        while position < len(data) and data[position:position + 1].isdigit():
            position += 1
        if start == position:
            return "its header is cut short (truncated)"
        fields.append(int(data[start:position]))
    width, height, maximum = fields
    needed = width * height * (3 if data[:2] == b"P6" else 1) * (2 if maximum > 255 else 1)
    pixels = len(data) - position - 1
    return f"it holds {pixels} of its {needed} pixel bytes (truncated)" if pixels < needed else None
