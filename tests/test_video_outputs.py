"""faces/video_outputs.py: reading ahead in bounded memory, and a clip's files written frame by frame."""
import json
import threading

import cv2
import numpy as np
import pytest

from faces.photo_files import Job
from faces.video_files import VideoReader
from faces import video_outputs


def test_read_ahead_gives_every_item_in_order_and_holds_at_most_AHEAD_more():
    produced = []

    def items():
        for index in range(50):
            produced.append(index)
            yield index

    taken = []
    for item in video_outputs.read_ahead(items()):
        taken.append(item)
        # The reader may hold AHEAD items in the queue and one in hand, never the whole stream.
        assert len(produced) <= len(taken) + video_outputs.AHEAD + 1
    assert taken == list(range(50))


def test_read_ahead_raises_the_readers_error_after_the_items_before_it():
    def items():
        yield from range(3)
        raise ValueError("damaged")

    taken = []
    with pytest.raises(ValueError, match="damaged"):
        for item in video_outputs.read_ahead(items()):
            taken.append(item)
    assert taken == [0, 1, 2]


def test_read_ahead_stopped_early_ends_its_thread_and_closes_the_stream():
    closed = threading.Event()

    def items():
        try:
            yield from range(1000)
        finally:
            closed.set()

    before = threading.active_count()
    stream = video_outputs.read_ahead(items())
    assert next(stream) == 0
    stream.close()
    assert closed.wait(5) and threading.active_count() == before


class Face:
    """What ClipOutputs needs of a tracked face."""

    def __init__(self, track_id, box):
        self.track_id, self.box = track_id, box

    def summary(self):
        return {"track_id": self.track_id, "box": list(self.box)}


def write(tmp_path, num_classes, classes, faces, **flags):
    job = Job(tmp_path / "clip.avi", tmp_path / "out" / "clip")
    outputs = video_outputs.ClipOutputs(job, 30.0, classes[0].shape, num_classes, **flags)
    for index, (mask, faces_) in enumerate(zip(classes, faces)):
        outputs.write(index, np.zeros((*mask.shape, 3), np.uint8), mask, faces_)
    outputs.close()
    return tmp_path / "out"


def test_a_3_class_mask_video_holds_class_id_times_127_and_its_frames_the_ids(tmp_path):
    classes = np.zeros((3, 64, 96), np.uint8)
    classes[:, :, 32:64], classes[:, :, 64:] = 1, 2
    out = write(tmp_path, 3, list(classes), [[]] * 3, overlay=False, faces_json=False, frames=True)
    decoded = list(VideoReader(out / "clip_mask.mp4").frames())
    assert len(decoded) == 3
    levels = [int(np.median(decoded[1][:, start:start + 32, 0])) for start in (0, 32, 64)]
    assert levels == pytest.approx([0, 127, 254], abs=3)
    assert np.array_equal(cv2.imread(str(out / "clip_masks" / "000002.png"), cv2.IMREAD_UNCHANGED), classes[2])


def test_json_lists_every_frame_and_the_overlay_numbers_the_tracks(tmp_path):
    classes = [np.zeros((64, 96), np.uint8) for _ in range(4)]
    faces = [[Face(3, (10, 10, 40, 40))], [], [Face(3, (12, 10, 42, 40)), Face(4, (50, 10, 80, 40))], []]
    out = write(tmp_path, 1, classes, faces, overlay=True, faces_json=True, frames=False)
    document = json.loads((out / "clip_faces.json").read_text())
    assert document["video"].endswith("clip.avi") and (document["width"], document["height"]) == (96, 64)
    assert [frame["frame"] for frame in document["frames"]] == [0, 1, 2, 3]
    assert [[face["track_id"] for face in frame["faces"]] for frame in document["frames"]] == [[3], [], [3, 4], []]
    assert len(list(VideoReader(out / "clip_overlay.mp4").frames())) == 4
    assert sorted(p.name for p in out.iterdir()) == ["clip_faces.json", "clip_mask.mp4", "clip_overlay.mp4"]
