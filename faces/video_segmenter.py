"""The stream object: frames in, each frame's mask and tracked faces out, as segment_faces gives a photo's.

Faces come from the Tracker (tracking.py) instead of a full search per frame; each is framed on its
smoothed landmarks, segmented and pasted back exactly as a photo's faces are (faces/framing.py). infer.py
builds it on a model directory (infer.VideoSegmenter); here it takes the loaded model itself, so that
the arrows stay one way (infer -> faces).
"""
import cv2
import numpy as np

from faces import face_alignment
from faces import face_detection
from faces.framing import Framer, FramedFace, classes_of
from faces import tracking, video_files


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
                 detect_every=tracking.DETECT_EVERY, fps=tracking.DEFAULT_FPS):
        self.forward, self.size, self.num_classes, self.threshold = forward, size, num_classes, threshold
        self.framer = Framer(size)
        self.tracker = tracking.Tracker(min_face, min_confidence, tilted_faces, detect_every, fps)

    def reset(self):
        """Forget the tracks: the next frame starts a new stream."""
        self.tracker.reset()

    @property
    def tracks_started(self):
        """How many tracks this stream has started (its last track id)."""
        return self.tracker.next_id - 1

    def step(self, frame, time=None):
        """(mask, faces) of an 8-bit BGR [H, W, 3] or gray [H, W] frame; `time` in seconds (default:
        frame index / fps) paces the landmark smoothing."""
        faces = self.tracker.step(frame, time)
        gray = frame if frame.ndim == 2 else cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
        framed = [FramedTrack(face, *face_alignment.aligned_crop(gray, face.landmarks, self.size)) for face in faces]
        if framed:
            probabilities = self.forward(np.stack([face.crop for face in framed])[..., None]).numpy()
        else:
            probabilities = np.zeros((0, *self.size, self.num_classes), np.float32)
        photo_probs = self.framer.unframe(gray.shape, probabilities, framed, self.num_classes)
        for face in framed:
            face.measure(self.threshold)
        return classes_of(photo_probs, self.threshold), framed

    def clip(self, path):
        """(frame, mask, faces) for each frame of the video file at `path`, read as a stream, as a new
        stream. Raises video_files.VideoFileError (after the frames before the damage) for a file that
        is not a video, holds no frames, is cut short or changes its frame size."""
        self.reset()
        video = video_files.VideoReader(path)
        for index, frame in enumerate(video.frames()):
            yield (frame, *self.step(frame, index / video.fps))
