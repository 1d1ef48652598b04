"""Video files read and written as streams of frames with OpenCV's FFmpeg: memory does not grow with a
clip's length.

Reading refuses what would otherwise pass silently: a file FFmpeg cannot open, one without frames,
one that ends before the frame count its container announces (truncated or damaged: the frames before
the damage are given first), and a frame of another size than the first. Clips are written as MPEG-4
Part 2 (`mp4v`), the encoder the opencv-python wheels carry (H.264 is not in them), through a
temporary file renamed into place, so an existing output is never half-written.
"""
import os
import threading
from pathlib import Path

import cv2

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm")
# FFmpeg's own complaints about damaged data would reach standard error line by line; damage is
# reported once, by VideoReader. Read when OpenCV first starts FFmpeg, so set before any capture.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
# Containers without a frame count (Matroska, WebM) have it estimated from the duration, which can be
# off by one: only a clip ending more frames short than this counts as cut short.
COUNT_TOLERANCE = 1
FOURCC = "mp4v"
DEFAULT_FPS = 30.0


def is_video(path):
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


class VideoFileError(Exception):
    """A video that cannot be (fully) read; the message says what is wrong, the caller names the file."""


class VideoReader:
    """The frames of a video file (BGR uint8) and its `fps`; raises VideoFileError for what cannot be read."""

    def __init__(self, path):
        self.path = Path(path)
        # OpenCV warns on standard error about a file FFmpeg cannot open; it is reported here instead.
        level = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
        try:
            self.capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
        finally:
            cv2.utils.logging.setLogLevel(level)
        if not self.capture.isOpened():
            raise VideoFileError("not a video FFmpeg can read, or a damaged one (an MP4 or MOV cut short loses its "
                                 "index, which is written last); re-export or re-download it")
        fps = self.capture.get(cv2.CAP_PROP_FPS)
        self.fps = fps if fps > 0 else DEFAULT_FPS
        self.frame_count = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT))

    def frames(self):
        """Yield each frame in order; VideoFileError once the frames before a problem are given."""
        count, shape = 0, None
        try:
            while True:
                ok, frame = self.capture.read()
                if not ok:
                    break
                if shape is None:
                    shape = frame.shape
                elif frame.shape != shape:
                    raise VideoFileError(
                        f"its frame size changes from {size_of(shape)} to {size_of(frame.shape)} at frame {count}; "
                        f"the {count} frames before are segmented; re-encode it at one size")
                yield frame
                count += 1
        finally:
            self.capture.release()
        if count == 0:
            raise VideoFileError("it holds no frames")
        if count < self.frame_count - COUNT_TOLERANCE:
            raise VideoFileError(f"it ends after {count} of the {self.frame_count} frames it announces (truncated or "
                                 f"damaged); the {count} frames before are segmented; re-export or re-download it")


def size_of(shape):
    return f"{shape[1]}x{shape[0]}"


class VideoWriter:
    """An mp4v clip of `fps` and (width, height) `size` written frame by frame (`color` False for gray
    frames) to a temporary file, renamed into place by close()."""

    def __init__(self, path, fps, size, color=True):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # The temporary name keeps the extension: FFmpeg picks the container from it.
        self.temporary = self.path.with_name(
            f".{self.path.stem}.{os.getpid()}.{threading.get_ident()}.tmp{self.path.suffix}")
        self.writer = cv2.VideoWriter(str(self.temporary), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*FOURCC), fps, size,
                                      [cv2.VIDEOWRITER_PROP_IS_COLOR, int(color)])
        if not self.writer.isOpened():
            self.temporary.unlink(missing_ok=True)
            raise OSError(0, "FFmpeg cannot write an mp4v video there", str(self.path))

    def write(self, frame):
        self.writer.write(frame)

    def close(self):
        """Finish the clip and rename it into place."""
        self.writer.release()
        os.replace(self.temporary, self.path)
