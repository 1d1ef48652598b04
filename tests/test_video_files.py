"""faces/video_files.py: clips read and written as streams, and what it says about files it cannot read."""
import cv2
import numpy as np
import pytest

from faces import video_files
from faces.video_files import VideoFileError, VideoReader, VideoWriter
from video_clips import write_clip


def clip_frames(count=40, shape=(120, 160)):
    """Frames of a bright disc moving on noise."""
    rng = np.random.default_rng(0)
    frames = []
    for index in range(count):
        frame = rng.integers(0, 40, (*shape, 3), dtype=np.uint8)
        cv2.circle(frame, (20 + 3 * index, 60), 20, (200, 180, 160), -1)
        frames.append(frame)
    return frames


def test_is_video_by_extension():
    assert all(video_files.is_video(f"clip{ext}") for ext in (".mp4", ".AVI", ".mov", ".mkv", ".webm"))
    assert not video_files.is_video("photo.png") and not video_files.is_video("mp4")


@pytest.mark.parametrize("extension", video_files.VIDEO_EXTENSIONS)
def test_every_container_reads_back_with_its_frame_count_and_rate(tmp_path, extension):
    frames = clip_frames(12)
    write_clip(tmp_path / f"clip{extension}", frames, fps=25.0)
    video = VideoReader(tmp_path / f"clip{extension}")
    read = list(video.frames())
    assert video.fps == pytest.approx(25.0) and len(read) == 12
    assert read[0].shape == frames[0].shape
    assert np.abs(read[5].astype(int) - frames[5]).mean() < 10


def test_writer_renames_into_place_only_when_closed(tmp_path):
    path = tmp_path / "out" / "mask.mp4"
    writer = VideoWriter(path, 30.0, (160, 120), color=False)
    for index in range(10):
        writer.write(np.full((120, 160), 255 * (index % 2), np.uint8))
    assert not path.exists()
    writer.close()
    assert [p.name for p in path.parent.iterdir()] == ["mask.mp4"]
    read = list(VideoReader(path).frames())
    assert len(read) == 10 and read[0].shape == (120, 160, 3)
    assert read[1].mean() > 200 and read[2].mean() < 50


def test_a_clip_cut_short_gives_its_frames_then_says_so(tmp_path, capfd):
    path = write_clip(tmp_path / "cut.avi", clip_frames(40))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    frames = []
    with pytest.raises(VideoFileError, match=r"ends after \d+ of the 40 frames it announces \(truncated or damaged\)"):
        for frame in VideoReader(path).frames():
            frames.append(frame)
    assert 10 < len(frames) < 30
    assert capfd.readouterr().err == ""  # FFmpeg's complaints about the damage are not passed on


def test_not_a_video_and_an_mp4_cut_short_cannot_be_opened(tmp_path, capfd):
    (tmp_path / "notes.mp4").write_text("not a video")
    with pytest.raises(VideoFileError, match="not a video FFmpeg can read, or a damaged one"):
        VideoReader(tmp_path / "notes.mp4")
    path = write_clip(tmp_path / "cut.mp4", clip_frames(20))
    path.write_bytes(path.read_bytes()[:-2000])  # the index (moov atom) goes last
    with pytest.raises(VideoFileError, match="an MP4 or MOV cut short loses its index"):
        VideoReader(path)
    assert capfd.readouterr().err == ""


def test_a_clip_without_frames(tmp_path):
    writer = cv2.VideoWriter(str(tmp_path / "empty.avi"), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"mp4v"), 30.0,
                             (160, 120))
    writer.release()
    with pytest.raises(VideoFileError, match="it holds no frames"):
        list(VideoReader(tmp_path / "empty.avi").frames())


class ChangingCapture:
    """A capture whose frames change size after three (OpenCV's own FFmpeg reader scales such frames)."""

    def __init__(self):
        self.index = 0

    def read(self):
        self.index += 1
        return True, np.zeros((120, 160, 3) if self.index <= 3 else (60, 80, 3), np.uint8)

    def release(self):
        pass


def test_a_frame_size_change_stops_after_the_frames_before(tmp_path):
    video = VideoReader(write_clip(tmp_path / "clip.mp4", clip_frames(5)))
    video.capture = ChangingCapture()
    frames = video.frames()
    assert [next(frames).shape for _ in range(3)] == [(120, 160, 3)] * 3
    with pytest.raises(VideoFileError, match="its frame size changes from 160x120 to 80x60 at frame 3"):
        next(frames)
