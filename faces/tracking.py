"""Faces followed from frame to frame, each with a track id that stays while it is followed.

MTCNN's full search (face_detection.detect_faces) runs on the first frame and then every DETECT_EVERY
frames, and only starts tracks: each face it finds that no track is on becomes one. On every other
frame each track is followed by MTCNN's last stage (ONet) alone: a square patch around where its face
should be (its last box moved on by its last motion, a tenth smaller: FOLLOW_SCALE), turned upright by
the face's roll, gives its new box, landmarks and a confidence for the cost of one small network on a
48x48 patch instead of the whole image pyramid; a second pass on the patch around that box centres the
face (FOLLOW_PASSES). A track lost between searches brings the next search forward to the next frame.
ONet was trained on upright faces, so the turned patch also follows faces tilted further than the
upright search finds. A track whose face ONet is no longer sure of (FOLLOW_CONFIDENCE) is dropped; its
face is found again by a later search, under a new id. The landmarks, which frame the face for the
model, are smoothed over time with a One Euro filter (smoothing.py).

Patches are taken from the frame resized as face_detection resizes it for its search, so ONet sees a
face at the resolution it sees it there.
"""
import cv2
import numpy as np

from faces import face_detection
from faces.smoothing import OneEuroFilter

# Frames between full searches: a new face (or one coming back) is found within this many frames of
# being findable, at 30 frames/s a fifth of a second.
DETECT_EVERY = 6
# ONet's confidence under which a followed face counts as lost.
FOLLOW_CONFIDENCE = 0.5
# ONet passes per followed face and frame: the first looks where the face should be, the second at the
# box the first found, where the face sits in the middle of the patch as ONet was trained to see it.
FOLLOW_PASSES = 2
# ... but only for faces the first pass found moved by more than this share of their size: a face that
# is where it was expected sits in the middle of its patch already.
REFINE_SHIFT = 0.05
# With tilted_faces, the search of every TURNED_EVERY-th search also turns the frame (-25 and +25
# degrees), which doubles its cost; the first search always does. Tracks follow faces as they tilt,
# so only faces entering the picture tilted wait for it.
TURNED_EVERY = 3
# One Euro settings for the landmarks: cutoff in Hz when still, and how fast it rises with speed in
# face sizes per second.
MIN_CUTOFF = 1.0
BETA = 10.0
DEFAULT_FPS = 30.0
PATCH_SIDE = 48  # ONet's input
# Side of ONet's patch over the side of the face's last box. ONet, fed a square of its own box, settles
# on a framing of its own; on the validation clips a patch a tenth smaller kept the masks closest to a full
# search's (python benchmarks/video.py --split validation --follow-scale 0.85, 0.9, 0.95 or 1).
FOLLOW_SCALE = 0.9
# Gray of the patch beyond the frame's edge: 0 once MTCNN normalises pixels, as its crop_and_resize pads.
OUTSIDE = 127.5


class TrackedFace(face_detection.Face):
    """A face in one frame (box, confidence, landmarks, smoothed), and the `track_id` of its track."""

    def __init__(self, box, confidence, landmarks, track_id):
        super().__init__(box, confidence, landmarks)
        self.track_id = track_id


class Track:
    """A face being followed: its id, where to look for it next (`centre`, `side` of the upright square,
    `angle` of its roll in radians, in frame pixels), and the filter of its landmarks."""

    def __init__(self, track_id, face):
        """A track on a face a search found: looked for next in the square of its box, upright as its eyes."""
        x0, y0, x1, y1 = face.box
        self.track_id, self.centre, self.side = track_id, np.array(face.centre), max(x1 - x0, y1 - y0)
        self.angle = roll(face.landmarks)
        self.motion = np.zeros(2)  # of the centre over the last frame
        self.smoother = OneEuroFilter(MIN_CUTOFF, BETA)

    def predict(self):
        """Move the square on by the last frame's motion: where the face should be now."""
        self.last_centre = self.centre
        self.centre = self.predicted = self.centre + self.motion

    def moved(self):
        """Record the motion once the face is found."""
        self.motion = self.centre - self.last_centre

    def box(self):
        """The upright box around the track's turned square."""
        return turned_square_box(self.centre, self.side, self.angle)


class Tracker:
    """Finds and follows the faces of a stream of frames; `step(frame)` gives each frame's TrackedFaces."""

    def __init__(self, min_face=face_detection.DEFAULT_MIN_FACE, min_confidence=face_detection.DEFAULT_MIN_CONFIDENCE,
                 tilted_faces=True, detect_every=DETECT_EVERY, fps=DEFAULT_FPS):
        self.min_face, self.min_confidence, self.tilted_faces = min_face, min_confidence, tilted_faces
        self.detect_every, self.fps = detect_every, fps
        self.reset()

    def reset(self):
        """Forget every track (a new stream); track ids start again from 1."""
        self.tracks, self.frames, self.next_id, self.shape = [], 0, 1, None
        self.since_search, self.searches = None, 0  # frames since the last full search (None: none yet)

    def step(self, frame, time=None):
        """TrackedFaces of an 8-bit BGR or gray frame, most confident first. `time` in seconds (default:
        the frame's index over `fps`) paces the smoothing. A frame of another size than the last starts
        a new stream."""
        if frame.shape[:2] != self.shape:
            self.reset()
            self.shape = frame.shape[:2]
        time = self.frames / self.fps if time is None else time
        height, width = self.shape
        scale = face_detection.detection_scale(height, width, self.min_face)
        rgb = cv2.cvtColor(frame, cv2.COLOR_GRAY2RGB if frame.ndim == 2 else cv2.COLOR_BGR2RGB)
        small = cv2.resize(rgb, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)

        for track in self.tracks:
            track.predict()
        found = follow(small, scale, self.tracks)
        for track in self.tracks:
            track.moved()
        kept = [(track, face) for track, face in zip(self.tracks, found)
                if face.confidence >= FOLLOW_CONFIDENCE and face_detection.covers((0, 0, width, height), face.centre)]
        kept = without_duplicates(kept)
        if self.search_due():
            kept = self.searched(frame, kept)
            self.since_search, self.searches = 0, self.searches + 1
        elif len(kept) < len(self.tracks):
            self.since_search = self.detect_every - 1  # a face lost: search the next frame
        self.since_search += 1
        self.tracks = [track for track, _ in kept]
        self.frames += 1

        faces = []
        for track, face in kept:
            landmarks = track.smoother(face.landmarks, time, scale=track.side).reshape(face.landmarks.shape)
            faces.append(TrackedFace(face.box, face.confidence, landmarks, track.track_id))
        return sorted(faces, key=lambda face: -face.confidence)

    def search_due(self):
        """Whether this frame gets a full search: the first, every detect_every-th after the last search,
        and the one after a track was lost."""
        return self.since_search is None or self.since_search >= self.detect_every

    def searched(self, frame, kept):
        """The (track, face) pairs after a full search of `frame`: a new track on each face no track is on."""
        turned = self.tilted_faces and self.searches % TURNED_EVERY == 0
        for face in face_detection.detect_faces(frame, self.min_face, self.min_confidence, turned):
            if not face_detection.on_a_face(face, [known for _, known in kept]):
                kept.append((Track(self.next_id, face), face))
                self.next_id += 1
        return kept


def roll(landmarks):
    """The angle (radians, clockwise on screen) of the line from the left eye to the right eye."""
    (lx, ly), (rx, ry) = landmarks[0], landmarks[1]
    return float(np.arctan2(ry - ly, rx - lx))


def rotation(angle):
    """The 2x2 matrix turning frame vectors into the face's upright frame (its eye line horizontal)."""
    cos, sin = np.cos(angle), np.sin(angle)
    return np.array([[cos, sin], [-sin, cos]])


def turned_square_box(centre, side, angle):
    """The upright box (x0, y0, x1, y1) around a square of `side` centred on `centre`, turned by `angle`."""
    corners = np.array([[-1, -1], [1, -1], [-1, 1], [1, 1]]) * side / 2
    points = centre + corners @ rotation(angle)
    return (*points.min(axis=0).tolist(), *points.max(axis=0).tolist())


def follow(small, scale, tracks):
    """Each track's face in `small` (the frame resized by `scale`) as ONet sees it on the track's turned
    square: a Face in frame pixels whose box is the upright box around ONet's, and updates each track's
    square to ONet's box (made square, as MTCNN squares RNet's boxes for ONet)."""
    if not tracks:
        return []
    faces = follow_once(small, scale, tracks)
    for _ in range(FOLLOW_PASSES - 1):
        again = [k for k, track in enumerate(tracks)
                 if np.hypot(*(track.centre - track.predicted)) > REFINE_SHIFT * track.side]
        for k, face in zip(again, follow_once(small, scale, [tracks[k] for k in again]) if again else []):
            faces[k] = face
    return faces


def follow_once(small, scale, tracks):
    """One ONet pass of follow() over every track, in one batch."""
    patches, squares = [], []
    for track in tracks:
        # MTCNN's own pixel conventions, in `small`'s pixels: the box [x0, x1] is sampled at x0 + i (x1 - x0) / 47.
        centre = (track.centre + 0.5) * scale - 0.5
        side = track.side * scale * FOLLOW_SCALE
        turn = rotation(track.angle)
        stretch = (PATCH_SIDE - 1) / side
        transform = np.hstack([stretch * turn, (-stretch * turn @ centre + (PATCH_SIDE - 1) / 2)[:, None]])
        patches.append(cv2.warpAffine(small, transform, (PATCH_SIDE, PATCH_SIDE), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_CONSTANT, borderValue=(OUTSIDE,) * 3))
        squares.append((centre, side, turn))
    onet = face_detection.networks().get_stage(stage_id=3)._model
    offsets, landmarks, scores = (output.numpy() for output in
                                  onet((np.stack(patches).astype(np.float32) - 127.5) / 128))
    faces = []
    for track, (centre, side, turn), offset, marks, score in zip(tracks, squares, offsets, landmarks, scores):
        # mtcnn's adjust_bboxes and adjust_landmarks on the box (-side/2, -side/2, side/2, side/2) of the
        # face's upright frame, whose width it counts as side + 1.
        width = side + 1
        x0, y0, x1, y1 = np.array([-side / 2, -side / 2, side / 2, side / 2]) + offset * width
        upright = np.stack([marks[:5], marks[5:]], axis=1) * width - side / 2 - 1
        to_small = turn.T  # the upright frame back to `small`'s pixels, about `centre`
        points = centre + upright @ to_small.T
        middle = centre + to_small @ [(x0 + x1) / 2, (y0 + y1) / 2]
        new_side = max(x1 - x0, y1 - y0)
        # From `small`'s pixels to the frame's (cv2.resize maps pixel centres).
        track.centre, track.side = (middle + 0.5) / scale - 0.5, new_side / scale
        box = track.box()  # ONet's box is upright in the patch, turned by the angle it was looked at
        landmarks_frame = (points + 0.5) / scale - 0.5
        track.angle = roll(landmarks_frame)
        faces.append(face_detection.Face(box, float(score[1]), landmarks_frame))
    return faces


def without_duplicates(pairs):
    """(track, face) pairs without the later tracks that follow a face an earlier one follows (two tracks
    that drifted onto one face): a face centred in another's box."""
    kept = []
    for track, face in pairs:
        if not face_detection.on_a_face(face, [other for _, other in kept]):
            kept.append((track, face))
    return kept
