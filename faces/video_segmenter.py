"""The stream object: frames in, each frame's mask and tracked faces out, as segment_faces gives a photo's.

Faces come from the Tracker (tracking.py) instead of a full search per frame; each is framed on its
smoothed landmarks and pasted back as a photo's faces are (faces/framing.py). The model runs on every
SEGMENT_EVERY-th frame (and on a new track's first): a face's crop is aligned to the template, so it
changes little from one frame to the next, and in between its last probabilities are pasted on the
face where it is now. Each track's crop probabilities are averaged over time (PROBABILITY_WEIGHT of
the newest), which steadies the mask's edge. infer.py
builds it on a model directory (infer.VideoSegmenter); here it takes the loaded model itself, so that
the arrows stay one way (infer -> faces).
"""
import cv2
import numpy as np

from faces import face_alignment
from faces import face_detection
from faces.framing import Framer, FramedFace, classes_of
from faces import tracking, video_files

# The model runs on every SEGMENT_EVERY-th frame of the stream (and on a new track's first).
SEGMENT_EVERY = 2
# Weight of the newest crop probabilities in each track's running average.
PROBABILITY_WEIGHT = 0.5


class FramedTrack(FramedFace):
    """A FramedFace of one frame, with the `track_id` of the face's track."""

    def __init__(self, face, crop, transform):
        super().__init__(face, crop, transform)
        self.track_id = face.track_id

    def summary(self):
        """What --json writes for the face in a frame."""
        return {"track_id": self.track_id, **super().summary()}


class VideoSegmenter:
    """`step(frame)` -> (mask, faces) for each frame of a stream, faces tracked from frame to frame.

    `forward`, `size`, `num_classes` are a loaded model (infer.loaded_model). The mask is [H, W] uint8,
    0/1 for a face model and class ids for a 3-class one; `faces` are FramedTracks (box, landmarks,
    confidence, track_id, crop, probabilities, mask_area), most confident first.
    """

    def __init__(self, forward, size, num_classes, threshold=0.5, min_face=face_detection.DEFAULT_MIN_FACE,
                 min_confidence=face_detection.DEFAULT_MIN_CONFIDENCE, tilted_faces=True,
                 detect_every=tracking.DETECT_EVERY, fps=tracking.DEFAULT_FPS, segment_every=None,
                 probability_weight=None):
        self.forward, self.size, self.num_classes, self.threshold = forward, size, num_classes, threshold
        self.segment_every = SEGMENT_EVERY if segment_every is None else segment_every
        self.probability_weight = PROBABILITY_WEIGHT if probability_weight is None else probability_weight
        self.framer = Framer(size)
        self.tracker = tracking.Tracker(min_face, min_confidence, tilted_faces, detect_every, fps)
        self.reset()

    def reset(self):
        """Forget the tracks: the next frame starts a new stream."""
        self.tracker.reset()
        self.probabilities = {}  # track id -> its averaged crop probabilities

    @property
    def tracks_started(self):
        """How many tracks this stream has started (its last track id)."""
        return self.tracker.next_id - 1

    def step(self, frame, time=None):
        """(mask, faces) of an 8-bit BGR [H, W, 3] or gray [H, W] frame; `time` in seconds (default:
        frame index / fps) paces the landmark smoothing."""
        faces = self.tracker.step(frame, time)
        index = self.tracker.frames - 1  # within the stream: the tracker starts a new one when the size changes
        if index == 0:
            self.probabilities = {}  # a new stream's track ids start again from 1
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        framed = [FramedTrack(face, *face_alignment.aligned_crop(gray, face.landmarks, self.size)) for face in faces]
        photo_probs = self.framer.unframe(gray.shape, self.crop_probabilities(framed, index), framed,
                                          self.num_classes)
        for face in framed:
            face.measure(self.threshold)
        return classes_of(photo_probs, self.threshold), framed

    def crop_probabilities(self, framed, index):
        """[N, h, w, C] probabilities of the faces' crops on the stream's frame `index`: the model's on
        the frames it runs (on a new track's crop on any frame), averaged with the track's earlier ones;
        the track's last otherwise."""
        if index % self.segment_every == 0:
            run = framed
        else:
            run = [face for face in framed if face.track_id not in self.probabilities]
        if run:
            fresh = self.forward(np.stack([face.crop for face in run])[..., None]).numpy()
            for face, probs in zip(run, fresh):
                earlier = self.probabilities.get(face.track_id)
                self.probabilities[face.track_id] = (probs if earlier is None else
                                                     earlier + self.probability_weight * (probs - earlier))
        self.probabilities = {face.track_id: self.probabilities[face.track_id] for face in framed}
        if not framed:
            return np.zeros((0, *self.size, self.num_classes), np.float32)
        return np.stack([self.probabilities[face.track_id] for face in framed])

    def clip(self, path):
        """(frame, mask, faces) for each frame of the video file at `path`, read as a stream, as a new
        stream. Raises video_files.VideoFileError (after the frames before the damage) for a file that
        is not a video, holds no frames, is cut short or changes its frame size."""
        self.reset()
        video = video_files.VideoReader(path)
        for index, frame in enumerate(video.frames()):
            yield (frame, *self.step(frame, index / video.fps))
