"""infer.py on videos: a folder of clips and a photo with the pretrained model, its files, its summary
line, and the one sentence per video it cannot read fully (no traceback, the others still segmented)."""
import json
import subprocess
import sys

import cv2
import numpy as np
import pytest

import infer
from conftest import REAL_DATA, ROOT, user_environment
from faces.video_files import VideoFileError, VideoReader
from video_clips import NAMES, moving_clip, write_clip

TWO_FACES = [(NAMES[0], (80, 120), (110, 110), 120, 10.0), (NAMES[1], (240, 120), (215, 130), 120, -10.0)]
FRAMES = 30


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """A folder with a good clip, a clip cut short, a text file and an empty clip with video names, and a
    photo; and the good clip's true masks."""
    if not (REAL_DATA / "inputs").is_dir():
        pytest.skip("data128_128/inputs is missing (it is committed): restore it with git checkout -- data128_128")
    folder = tmp_path_factory.mktemp("clips")
    frames, truths = moving_clip(REAL_DATA, TWO_FACES, frames=FRAMES)
    write_clip(folder / "two.mp4", frames)
    cut = write_clip(folder / "cut.avi", frames)
    cut.write_bytes(cut.read_bytes()[:len(cut.read_bytes()) // 2])
    (folder / "notes.mkv").write_text("not a video")
    cv2.VideoWriter(str(folder / "empty.avi"), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*"mp4v"), 30.0,
                    (320, 240)).release()
    cv2.imwrite(str(folder / "photo.png"), frames[0])
    return folder, truths, kept_frames(cut)


def kept_frames(path):
    """How many frames a damaged clip gives before its error."""
    kept = []
    with pytest.raises(VideoFileError):
        kept.extend(VideoReader(path).frames())
    return len(kept)


def test_a_folder_of_videos_and_a_photo_from_the_command_line(clips, tmp_path):
    folder, truths, kept = clips
    out = tmp_path / "out"
    result = subprocess.run([sys.executable, str(ROOT / "infer.py"), str(folder), "--out", str(out), "--overlay",
                             "--json", "--frames", "--precision", "fp32"],
                            capture_output=True, text=True, env=user_environment(), cwd=ROOT)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    problems = {line.split(":")[0].removeprefix("skipped ").rsplit("/", 1)[-1]: line
                for line in result.stderr.splitlines() if line.startswith("skipped ")}
    assert sorted(problems) == ["cut.avi", "empty.avi", "notes.mkv"]
    assert "truncated or damaged" in problems["cut.avi"] and "frames before are segmented" in problems["cut.avi"]
    assert "it holds no frames" in problems["empty.avi"]
    assert "not a video FFmpeg can read" in problems["notes.mkv"]
    # Nothing but those lines: no FFmpeg or OpenCV chatter about the damaged files.
    assert len(result.stderr.strip().splitlines()) == 3, result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    assert 0 < kept < FRAMES
    assert summary.startswith(f"segmented 1 images (2 faces) and 2 videos ({FRAMES + kept} frames, ")
    assert "4 faces tracked), 3 failed" in summary and "frames/s" in summary

    masks = list(VideoReader(out / "two_mask.mp4").frames())
    assert len(masks) == FRAMES and masks[0].shape == (240, 320, 3)
    assert len(list(VideoReader(out / "two_overlay.mp4").frames())) == FRAMES
    assert len(list(VideoReader(out / "cut_mask.mp4").frames())) == kept
    frames = [cv2.imread(str(out / "two_masks" / f"{index:06d}.png"), cv2.IMREAD_UNCHANGED) for index in range(FRAMES)]
    for video_mask, png, truth in zip(masks, frames, truths):
        assert set(np.unique(png)) <= {0, 255}
        assert np.count_nonzero((png > 0) & truth) / np.count_nonzero((png > 0) | truth) > 0.8
        # The MPEG-4 mask is lossy yet thresholds back to the lossless one but at a few edge pixels.
        assert np.count_nonzero((video_mask[..., 0] >= 128) != (png > 0)) < 0.01 * png.size
    document = json.loads((out / "two_faces.json").read_text())
    assert len(document["frames"]) == FRAMES and document["fps"] == 30.0
    assert all(sorted(face["track_id"] for face in frame["faces"]) == [1, 2] for frame in document["frames"])
    assert (out / "photo_mask.png").exists() and not (out / "notes_mask.mp4").exists()


def test_the_written_masks_are_the_stream_objects(clips, tmp_path):
    folder, _, _ = clips
    summary = infer.segment([folder / "two.mp4"], out=tmp_path, precision="fp32", frames=True, log=print)
    assert (summary["videos"], summary["frames"], summary["tracks"], summary["failed"]) == (1, FRAMES, 2, [])
    assert summary["frames_per_second"] > 0
    segmenter = infer.VideoSegmenter(precision="fp32")
    for index, (_, mask, _) in enumerate(segmenter.clip(folder / "two.mp4")):
        assert np.array_equal(cv2.imread(str(tmp_path / "two_masks" / f"{index:06d}.png"), cv2.IMREAD_UNCHANGED),
                              mask * 255)


def test_whole_image_skips_videos_with_a_sentence(clips, tmp_path):
    folder, _, _ = clips
    said = []
    summary = infer.segment([folder / "two.mp4", folder / "photo.png"], out=tmp_path, precision="fp32",
                            whole_image=True, log=said.append)
    assert summary["images"] == 1 and summary["videos"] == 0 and summary["failed"] == [str(folder / "two.mp4")]
    assert said == [f"skipped {folder / 'two.mp4'}: a video's faces are found and tracked, and --whole-image finds "
                    "none: segment it without --whole-image"]
