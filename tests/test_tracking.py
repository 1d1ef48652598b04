"""faces/tracking.py: the geometry of the turned patches, and the Tracker on small clips of real LFW faces
(data128_128) moving on a plain background."""
import math

import cv2
import numpy as np
import pytest

from faces import face_detection
from faces import tracking
from video_clips import NAMES, frame_of, moving_clip, placement


def test_roll_is_the_eye_line_and_rotation_makes_it_level():
    landmarks = np.array([[10.0, 10.0], [20.0, 20.0], [15, 18], [12, 25], [20, 28]])
    angle = tracking.roll(landmarks)
    assert angle == pytest.approx(math.pi / 4)
    level = tracking.rotation(angle) @ (landmarks[1] - landmarks[0])
    assert level == pytest.approx([math.hypot(10, 10), 0.0])


def test_turned_square_box():
    assert tracking.turned_square_box(np.array([50.0, 40.0]), 20, 0.0) == pytest.approx((40, 30, 60, 50))
    x0, y0, x1, y1 = tracking.turned_square_box(np.array([50.0, 40.0]), 20, math.pi / 4)
    assert (x1 - x0, y1 - y0) == pytest.approx((20 * math.sqrt(2), 20 * math.sqrt(2)))


def test_without_duplicates_keeps_the_earlier_of_two_tracks_on_one_face():
    def face(x):
        return face_detection.Face((x - 20, 0, x + 20, 40), 0.99, np.zeros((5, 2)))

    pairs = [("first", face(50)), ("second", face(55)), ("elsewhere", face(200))]
    assert [track for track, _ in tracking.without_duplicates(pairs)] == ["first", "elsewhere"]


def moved_landmarks(landmarks, centre, side, angle):
    """Landmarks of a 128x128 picture moved as the clip moves it."""
    move = placement(centre, side, angle)
    return landmarks @ move[:, :2].T + move[:, 2]


@pytest.fixture
def searches(monkeypatch):
    """The frames (by index within the test's calls) on which the full search ran."""
    calls = []
    search = face_detection.detect_faces

    def counted(*args, **kwargs):
        calls.append(len(calls))
        return search(*args, **kwargs)

    monkeypatch.setattr(face_detection, "detect_faces", counted)
    return calls


def test_a_moving_face_keeps_one_track_searched_for_every_detect_every_frames(real_data, searches):
    start, end, side = (110, 120), (210, 130), 150
    frames, _ = moving_clip(real_data, [(NAMES[0], start, end, side, 0.0)], frames=40)
    # Where MTCNN puts the landmarks on the still LFW picture, moved as the clip moves it.
    (still,) = face_detection.detect_faces(cv2.imread(str(real_data / "inputs" / f"{NAMES[0]}.jpg")),
                                           min_face=face_detection.MTCNN_MIN_FACE)
    truths = [moved_landmarks(still.landmarks, np.add(start, index / 39 * np.subtract(end, start)), side, 0.0)
              for index in range(40)]
    searches.clear()
    tracker = tracking.Tracker()
    errors = []
    for frame, truth in zip(frames, truths):
        faces = tracker.step(frame)
        assert [face.track_id for face in faces] == [1]
        errors.append(np.linalg.norm(faces[0].landmarks - truth, axis=1).mean())
    assert len(searches) == math.ceil(40 / tracking.DETECT_EVERY)
    # Within 5% of the picture's side.
    assert max(errors) < 0.05 * side


def test_the_turned_patch_alone_follows_a_face_tilting_to_70_degrees(real_data):
    tracker = tracking.Tracker(detect_every=1000)  # one search, on the first frame
    for index in range(50):
        angle = 70.0 * index / 49
        frame, _ = frame_of(real_data, [(NAMES[0], (160, 120), 150, angle)])
        faces = tracker.step(frame)
        assert [face.track_id for face in faces] == [1], f"frame {index}, {angle:.0f} degrees"
    # On screen (y down) a picture turned counter-clockwise has its right eye higher: a negative roll.
    assert math.degrees(tracking.roll(faces[0].landmarks)) == pytest.approx(-70, abs=6)


def test_a_face_that_leaves_is_dropped_and_found_again_under_a_new_id(real_data):
    tracker = tracking.Tracker()
    seen = []
    for index in range(45):
        gone = 15 <= index < 25
        frame, _ = frame_of(real_data, [] if gone else [(NAMES[0], (160, 120), 150, 0.0)])
        seen.append([face.track_id for face in tracker.step(frame)])
    assert seen[:15] == [[1]] * 15
    assert seen[16:25] == [[]] * 9  # dropped at once: ONet is not sure of the background
    back = next(index for index in range(25, 45) if seen[index])
    assert back - 25 < tracking.DETECT_EVERY
    assert seen[back:] == [[2]] * (45 - back)


def test_two_faces_keep_their_own_ids(real_data):
    paths = [(NAMES[0], (70, 120), (110, 110), 110, 10.0), (NAMES[1], (250, 120), (210, 130), 110, -10.0)]
    frames, _ = moving_clip(real_data, paths, frames=30)
    tracker = tracking.Tracker()
    sides = {}
    for frame in frames:
        faces = tracker.step(frame)
        assert sorted(face.track_id for face in faces) == [1, 2]
        for face in faces:
            sides.setdefault(face.track_id, set()).add(face.centre[0] < 160)
    assert all(len(left) == 1 for left in sides.values()) and sides[1] != sides[2]


def test_reset_and_a_frame_of_another_size_start_a_new_stream(real_data):
    frame, _ = frame_of(real_data, [(NAMES[0], (160, 120), 150, 0.0)])
    tracker = tracking.Tracker()
    tracker.step(frame)
    tracker.reset()
    assert [face.track_id for face in tracker.step(frame)] == [1]
    larger = cv2.copyMakeBorder(frame, 0, 40, 0, 40, cv2.BORDER_CONSTANT, value=(120, 120, 120))
    assert [face.track_id for face in tracker.step(larger)] == [1]
    assert [face.track_id for face in tracker.step(frame)] == [1]


def test_no_face_no_track():
    tracker = tracking.Tracker()
    for _ in range(8):
        assert tracker.step(np.full((240, 320, 3), 120, np.uint8)) == []
    assert tracker.tracks == [] and tracker.next_id == 1


def test_a_lost_track_brings_the_next_search_to_the_next_frame(real_data, searches):
    tracker = tracking.Tracker(detect_every=1000)
    face = [(NAMES[0], (160, 120), 150, 0.0)]
    for index in range(8):
        frame, _ = frame_of(real_data, [] if index == 3 else face)
        tracker.step(frame)
    # The first frame's search; the face gone on frame 3 drops its track, so frame 4 searches and finds it.
    assert searches == [0, 1]
    assert [track.track_id for track in tracker.tracks] == [2]


def test_the_turned_passes_run_on_every_turned_every_th_search(real_data, monkeypatch):
    turned = []
    search = face_detection.detect_faces
    monkeypatch.setattr(face_detection, "detect_faces", lambda *args: turned.append(args[3]) or search(*args))
    tracker = tracking.Tracker(detect_every=2)
    frame, _ = frame_of(real_data, [(NAMES[0], (160, 120), 150, 0.0)])
    for _ in range(2 * 3 * tracking.TURNED_EVERY):
        tracker.step(frame)
    assert turned == [index % tracking.TURNED_EVERY == 0 for index in range(3 * tracking.TURNED_EVERY)]
    assert tracking.Tracker(tilted_faces=False).tilted_faces is False


def test_a_fast_face_is_followed_where_its_motion_takes_it(real_data):
    """22 pixels a frame, a fifth of the face's size: ONet on the patch where the face was loses it (on
    every fourth frame, without the motion), on the patch where its motion takes it does not."""
    tracker = tracking.Tracker(detect_every=1000)
    frames, _ = moving_clip(real_data, [(NAMES[0], (60, 120), (60 + 11 * 22, 120), 110, 0.0)], frames=12)
    ids = [[face.track_id for face in tracker.step(frame)] for frame in frames]
    assert ids == [[1]] * 12
