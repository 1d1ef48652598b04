"""faces/video_segmenter.py through infer.VideoSegmenter: the pretrained model on small clips of real LFW
faces (data128_128) moving on a plain background."""
import cv2
import numpy as np
import pytest

from faces import photo_outputs
import infer
from video_clips import NAMES, frame_of, moving_clip, write_clip

TWO_FACES = [(NAMES[0], (80, 120), (110, 110), 120, 10.0), (NAMES[1], (240, 120), (215, 130), 120, -10.0)]


def iou(mask, truth):
    return np.count_nonzero((mask > 0) & truth) / np.count_nonzero((mask > 0) | truth)


@pytest.fixture(scope="module")
def segmenter():
    return infer.VideoSegmenter(precision="fp32")


def test_masks_follow_two_moving_faces_each_with_its_track_id(real_data, segmenter):
    frames, truths = moving_clip(real_data, TWO_FACES, frames=24)
    segmenter.reset()
    for frame, truth in zip(frames, truths):
        mask, faces = segmenter.step(frame)
        assert mask.shape == frame.shape[:2] and mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
        assert sorted(face.track_id for face in faces) == [1, 2]
        assert iou(mask, truth) > 0.8
        for face in faces:
            assert face.summary()["track_id"] == face.track_id
            assert 0 < face.mask_area < np.count_nonzero(mask)
    assert segmenter.tracks_started == 2


def test_the_first_frame_is_segmented_as_a_photo(real_data, segmenter):
    """A track starts on the search's own landmarks, unsmoothed: the same mask as segment_faces."""
    frame, _ = frame_of(real_data, [(NAMES[0], (160, 120), 150, 15.0)])
    segmenter.reset()
    mask, faces = segmenter.step(frame)
    photo_mask, photo_faces = infer.segment_faces(frame, precision="fp32")
    assert np.array_equal(mask, photo_mask)
    assert np.allclose(faces[0].landmarks, photo_faces[0].landmarks)


def test_gray_frames_give_the_masks_of_their_color_copies(real_data, segmenter):
    frames, _ = moving_clip(real_data, TWO_FACES, frames=8)
    gray = infer.VideoSegmenter(precision="fp32")
    segmenter.reset()
    for frame in frames:
        assert np.array_equal(gray.step(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))[0], segmenter.step(frame)[0])


def test_reset_starts_the_ids_again_and_no_face_gives_an_empty_mask(real_data, segmenter):
    frame, _ = frame_of(real_data, [(NAMES[0], (160, 120), 150, 0.0)])
    segmenter.reset()
    segmenter.step(frame)
    segmenter.reset()
    assert [face.track_id for face in segmenter.step(frame)[1]] == [1]
    mask, faces = segmenter.step(np.full_like(frame, 120))
    assert faces == [] and not mask.any()


def test_clip_gives_each_decoded_frame_with_the_mask_step_gives_it(real_data, segmenter, tmp_path):
    frames, _ = moving_clip(real_data, TWO_FACES, frames=12)
    path = write_clip(tmp_path / "clip.avi", frames)
    decoded, masks = [], []
    for frame, mask, faces in segmenter.clip(path):
        decoded.append(frame)
        masks.append(mask)
        assert len(faces) == 2
    assert len(decoded) == 12
    fresh = infer.VideoSegmenter(precision="fp32")
    for frame, mask in zip(decoded, masks):
        assert np.array_equal(fresh.step(frame)[0], mask)


def test_overlay_numbers_each_face_by_its_track_id(real_data, segmenter):
    frame, _ = frame_of(real_data, [(NAMES[0], (160, 120), 150, 0.0)])
    segmenter.reset()
    mask, faces = segmenter.step(frame)
    numbered = photo_outputs.overlay_image(frame, mask, faces)
    assert np.array_equal(photo_outputs.overlay_image(frame, mask, faces, numbers=[1]), numbered)
    assert not np.array_equal(photo_outputs.overlay_image(frame, mask, faces, numbers=[7]), numbered)


class CountingForward:
    """A stand-in model: each call gives every crop the same probability, 0.2 more than the last call's,
    and records the batch size."""

    def __init__(self):
        self.batches = []

    def __call__(self, crops):
        self.batches.append(len(crops))
        value = 0.2 * len(self.batches)
        return DoneTensor(np.full((*crops.shape[:3], 1), value, np.float32))


class DoneTensor:
    def __init__(self, array):
        self.array = array

    def numpy(self):
        return self.array


def test_the_model_runs_every_segment_every_frames_and_averages_each_track(real_data):
    from faces.video_segmenter import VideoSegmenter
    forward = CountingForward()
    segmenter = VideoSegmenter(forward, (128, 128), 1, segment_every=2, probability_weight=0.5)
    frames, _ = moving_clip(real_data, TWO_FACES[:1], frames=5)
    crops = []
    for frame in frames:
        faces = segmenter.step(frame)[1]
        crops.append(float(faces[0].probabilities.mean()))
    # Frames 0, 2, 4 run the model (0.2, 0.4, 0.6 from the stand-in); 1 and 3 paste the track's last average.
    assert forward.batches == [1, 1, 1]
    assert crops == pytest.approx([0.2, 0.2, 0.3, 0.3, 0.45])


def test_a_new_track_is_segmented_on_its_first_frame_even_between_model_frames(real_data):
    from faces.video_segmenter import VideoSegmenter
    forward = CountingForward()
    segmenter = VideoSegmenter(forward, (128, 128), 1, segment_every=1000, detect_every=1)
    empty = np.full((240, 320, 3), 120, np.uint8)
    segmenter.step(empty)  # frame 0: the model's frame, and no face
    frame, _ = frame_of(real_data, [(NAMES[0], (160, 120), 150, 0.0)])
    faces = segmenter.step(frame)[1]
    assert forward.batches == [1] and faces[0].probabilities.mean() == pytest.approx(0.2)


def test_a_frame_of_another_size_starts_the_averages_again(real_data):
    """The tracker starts a new stream, whose track 1 is another face than the old track 1."""
    from faces.video_segmenter import VideoSegmenter
    forward = CountingForward()
    segmenter = VideoSegmenter(forward, (128, 128), 1, segment_every=2, probability_weight=0.5)
    frame, _ = frame_of(real_data, [(NAMES[0], (160, 120), 150, 0.0)])
    segmenter.step(frame)
    larger = cv2.copyMakeBorder(frame, 0, 40, 0, 40, cv2.BORDER_CONSTANT, value=(120, 120, 120))
    faces = segmenter.step(larger)[1]
    # Frame 0 of the new stream: the model runs (0.4) and nothing of the old track 1 (0.2) is averaged in.
    assert [face.track_id for face in faces] == [1] and forward.batches == [1, 1]
    assert faces[0].probabilities.mean() == pytest.approx(0.4)
