"""Find faces in a photo with MTCNN (Zhang et al. 2016, the `mtcnn` package): per face a box, a
confidence and five landmarks, in the photo's pixels.

The networks are built once per process (`networks()`), their weights ship inside the wheel. Photos
are resized for detection only: small faces are not searched for (--min-face), and a very large
photo is searched at MAX_DETECTION_SIDE, so a 8000x8000 photo costs what a 1600x1600 one does.
Tilted faces get a second look turned upright (second_looks), and with --tilted-faces the whole photo is
searched turned too (turned_faces).
"""
import functools

import cv2
import numpy as np
import tensorflow as tf

DEFAULT_MIN_FACE = 40
DEFAULT_MIN_CONFIDENCE = 0.9
# Detections between this and --min-confidence get a second look turned upright (second_looks).
CANDIDATE_CONFIDENCE = 0.5
SECOND_LOOK_TILTS = (-25.0, 25.0)
SECOND_LOOK_SIDE = 96  # pixels of the patch, which spans SECOND_LOOK_SPAN candidate boxes
SECOND_LOOK_SPAN = 2.0
# MTCNN's first two stages only propose regions for the last one (ONet), whose confidence decides.
# mtcnn's defaults (PNet 0.6, RNet 0.7) drop faces tilted by 15-30 degrees before ONet and the
# second look ever see them. With these looser ones `python benchmarks/in_the_wild.py --split
# validation` finds 398 of its 400 faces instead of 388; ONet's threshold, which decides, is
# unchanged, yet a little more clutter gets through it (2 detections off the faces, 0 before; and
# the rim of the astronaut's helmet in a 16x blown-up docs/astronaut.png: tests/test_infer.py).
# See docs/in_the_wild_validation.txt.
PNET_THRESHOLD = 0.4
RNET_THRESHOLD = 0.3
# PNet's window: no smaller face can be found (the photo is enlarged for detection down to it).
SMALLEST_FACE = 12
# mtcnn 1.0 builds its image pyramid as if min_face_size were 20: with a larger value the smallest
# level falls below PNet's 12x12 window and Keras raises. So detection always runs at 20 and the
# photo is resized instead, which is the same search and also what makes large photos fast.
MTCNN_MIN_FACE = 20
# Short side below which photos are not shrunk for speed: landmarks on a 50-pixel LFW face keep
# their precision, and a small photo is cheap anyway.
MIN_DETECTION_SIDE = 256
MAX_DETECTION_SIDE = 1600
# --tilted-faces: the photo is also searched turned by each of these angles (degrees), for faces of
# at least TURNED_MIN_FACE pixels. Faces tilted 20-30 degrees often never reach ONet upright, so the
# second look never sees them. Turned passes find more clutter than the upright one, so only their
# surest faces are kept (ONet's confidence in the second look). See turned_faces().
TURNED_PASSES = (-25.0, 25.0)
TURNED_MIN_FACE = 80
TURNED_CONFIDENCE = 0.95
# Landmark order of mtcnn: the eye and mouth corner on the image's left come first.
LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


class Face:
    """A detected face: `box` (x0, y0, x1, y1), `confidence`, `landmarks` [5, 2] (x, y) in LANDMARKS order."""

    def __init__(self, box, confidence, landmarks):
        self.box, self.confidence, self.landmarks = box, confidence, landmarks

    @property
    def centre(self):
        x0, y0, x1, y1 = self.box
        return (x0 + x1) / 2, (y0 + y1) / 2

    @property
    def size(self):
        """The longer side of the box in pixels."""
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, y1 - y0)


@functools.cache
def networks():
    """The MTCNN detector with each stage's network traced by tf.function (4x faster than mtcnn's eager calls)."""
    from mtcnn import MTCNN
    from mtcnn.stages import StageONet, StagePNet, StageRNet

    def traced(stage_class):
        stage = stage_class()
        # StageBase keeps its network in `_model`; reduce_retracing traces PNet once for all pyramid sizes.
        network = tf.function(stage.model, reduce_retracing=True)

        def run(patches):
            # When no candidate is left for RNet or ONet, mtcnn lets the network fail on the empty batch and
            # takes the InvalidArgumentError for "no faces found". Traced, that failure also writes a
            # "Local rendezvous is aborting" warning to standard error, so it is raised here instead.
            if patches.shape[0] == 0:
                raise tf.errors.InvalidArgumentError(None, None, "no face candidates left")
            return network(patches)

        stage._model = run
        return stage

    return MTCNN(stages=[traced(StagePNet), traced(StageRNet), traced(StageONet)])


def detection_scale(height, width, min_face):
    """Factor the photo is resized by for detection: a face of `min_face` pixels becomes MTCNN_MIN_FACE,
    unless that would shrink the short side below MIN_DETECTION_SIDE or leave the long side above MAX_DETECTION_SIDE."""
    scale = MTCNN_MIN_FACE / min_face
    scale = max(scale, min(1.0, MIN_DETECTION_SIDE / min(height, width)))
    return min(scale, MAX_DETECTION_SIDE / max(height, width))


def detect_faces(photo, min_face=DEFAULT_MIN_FACE, min_confidence=DEFAULT_MIN_CONFIDENCE, tilted=False):
    """Faces of at least `min_face` pixels (box side) and `min_confidence` in an 8-bit photo
    (gray [H, W] or BGR [H, W, 3]), most confident first. With `tilted` the photo is also searched
    turned by each of TURNED_PASSES, for faces tilted too far for the upright search (more than twice
    the time)."""
    height, width = photo.shape[:2]
    scale = detection_scale(height, width, min_face)
    small = (round(height * scale), round(width * scale))
    if min(small) < MTCNN_MIN_FACE:
        return []
    rgb = cv2.cvtColor(photo, cv2.COLOR_GRAY2RGB if photo.ndim == 2 else cv2.COLOR_BGR2RGB)
    if scale != 1.0:
        rgb = cv2.resize(rgb, small[::-1], interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    to_photo = resized_back(small, height, width)
    (found,) = mtcnn_faces([rgb], min(min_confidence, CANDIDATE_CONFIDENCE))
    faces = [face for face in found if face.confidence >= min_confidence]
    # A candidate centred on a face already found is that face again, seen off-centre: its second
    # look would find the same face a second time.
    unsure = [face for face in found if face.confidence < min_confidence and not on_a_face(face, faces)]
    for face in second_looks(rgb, unsure):
        if face is not None and face.confidence >= min_confidence and not on_a_face(face, faces):
            faces.append(face)
    if tilted:
        faces += turned_faces(rgb, scale, faces, min_face, min_confidence)
    faces = [moved(face, to_photo) for face in faces]
    return sorted((face for face in faces if face.size >= min_face), key=lambda face: -face.confidence)


def turned_faces(rgb, photo_scale, found, min_face, min_confidence):
    """Faces in `rgb` (the photo resized by `photo_scale`) that are not in `found`, found with it turned
    by each of TURNED_PASSES; in `rgb`'s pixels. The turned image is searched for faces of at least
    TURNED_MIN_FACE photo pixels (or `min_face` when larger), at the scale that makes them MTCNN's
    smallest, which is what keeps the passes cheap. Each new face is seen again in `rgb` (a second look
    turned like its pass) for its landmarks and confidence, and kept when at least TURNED_CONFIDENCE."""
    height, width = rgb.shape[:2]
    scale = min(1.0, MTCNN_MIN_FACE / (max(min_face, TURNED_MIN_FACE) * photo_scale))
    small = (max(1, round(height * scale)), max(1, round(width * scale)))
    if min(small) < MTCNN_MIN_FACE:
        return []
    searched = cv2.resize(rgb, small[::-1], interpolation=cv2.INTER_AREA) if scale < 1 else rgb
    to_rgb = resized_back(small, height, width)
    # A candidate centred on a turned canvas's replicated border is no face of the photo, and one on
    # a face already found upright needs no second look.
    candidates = [(moved(candidate, to_rgb), angle)
                  for angle, faces in zip(TURNED_PASSES, turned_passes(searched, TURNED_PASSES, CANDIDATE_CONFIDENCE))
                  for candidate in faces]
    candidates = [(candidate, angle) for candidate, angle in candidates
                  if covers((0, 0, width, height), candidate.centre) and not on_a_face(candidate, found)]
    new = []
    for (candidate, _), face in zip(candidates, looks(rgb, candidates)):
        # A face found in both passes is kept as first found.
        if face is not None and face.confidence >= max(min_confidence, TURNED_CONFIDENCE) and not on_a_face(
                candidate, new):
            new.append(face)
    return new


def turned_passes(rgb, angles, min_confidence):
    """MTCNN's faces in `rgb` turned by each of `angles` (degrees counter-clockwise) on a canvas large
    enough to hold all of it, one list per angle, in `rgb`'s pixels. The turned copies go through MTCNN
    as one batch, which costs less than one by one."""
    height, width = rgb.shape[:2]
    turned, backs = [], []
    for angle in angles:
        transform = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), angle, 1.0)
        cos, sin = abs(transform[0, 0]), abs(transform[0, 1])
        canvas = (round(width * cos + height * sin), round(width * sin + height * cos))
        transform[:, 2] += (np.array(canvas) - (width, height)) / 2
        turned.append(cv2.warpAffine(rgb, transform, canvas, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        backs.append(cv2.invertAffineTransform(transform))
    return [[moved(face, back) for face in faces] for faces, back in zip(mtcnn_faces(turned, min_confidence), backs)]


def resized_back(small, height, width):
    """2x3 transform from the pixels of a height x width image resized to `small` (height, width) back to
    its own (cv2.resize maps pixel centres; the scale was rounded per side)."""
    factors = np.array([width / small[1], height / small[0]])
    return np.hstack([np.diag(factors), (0.5 * factors - 0.5)[:, None]])


def on_a_face(face, faces):
    """Whether the centre of `face` lies in the box of any of `faces`."""
    return any(covers(other.box, face.centre) for other in faces)


def covers(box, point):
    """Whether `point` (x, y) lies in `box` (x0, y0, x1, y1)."""
    x0, y0, x1, y1 = box
    return x0 <= point[0] <= x1 and y0 <= point[1] <= y1


def mtcnn_faces(images, min_confidence):
    """MTCNN's faces in each of a list of RGB images of one size, one list per image, in its pixels.
    The images go through the three networks as one batch, which costs less than one by one."""
    if not images:
        return []
    rows = networks().detect_faces(list(images), output_type="numpy", box_format="xyxy", min_face_size=MTCNN_MIN_FACE,
                                   threshold_pnet=PNET_THRESHOLD, threshold_rnet=RNET_THRESHOLD,
                                   threshold_onet=min_confidence)
    faces = [[] for _ in images]
    for row in rows:
        faces[int(row[0])].append(Face(tuple(row[1:5].tolist()), float(row[5]),
                                       np.stack([row[6:11], row[11:16]], axis=1)))
    return faces


def second_looks(rgb, candidates):
    """Each candidate seen again turned upright by each of SECOND_LOOK_TILTS, as the most confident face
    found at the candidate's centre (in `rgb`'s pixels), or None. MTCNN was trained on upright faces:
    a tilted one gets a low confidence and misplaced landmarks until it is turned back."""
    seen = looks(rgb, [(candidate, angle) for candidate in candidates for angle in SECOND_LOOK_TILTS])
    step = len(SECOND_LOOK_TILTS)
    per_candidate = [seen[index:index + step] for index in range(0, len(seen), step)]
    return [max((face for face in faces if face is not None), key=lambda face: face.confidence, default=None)
            for faces in per_candidate]


def looks(rgb, candidates):
    """For each (candidate, angle): the most confident face (at least CANDIDATE_CONFIDENCE) at the
    candidate's centre, in `rgb`'s pixels, when a patch around it is turned by `angle` degrees
    (counter-clockwise), or None. The patches go through MTCNN as one batch."""
    if not candidates:
        return []
    patches, transforms = [], []
    for candidate, angle in candidates:
        centre = candidate.centre
        transform = cv2.getRotationMatrix2D(centre, angle, SECOND_LOOK_SIDE / (SECOND_LOOK_SPAN * candidate.size))
        transform[:, 2] += SECOND_LOOK_SIDE / 2 - np.array(centre)
        patches.append(cv2.warpAffine(rgb, transform, (SECOND_LOOK_SIDE, SECOND_LOOK_SIDE), flags=cv2.INTER_LINEAR,
                                      borderMode=cv2.BORDER_REPLICATE))
        transforms.append(transform)
    found = []
    for faces, transform in zip(mtcnn_faces(patches, CANDIDATE_CONFIDENCE), transforms):
        best = None
        for face in faces:
            px0, py0, px1, py1 = face.box
            if px0 <= SECOND_LOOK_SIDE / 2 <= px1 and py0 <= SECOND_LOOK_SIDE / 2 <= py1 and (
                    best is None or face.confidence > best.confidence):
                best = face
        found.append(None if best is None else moved(best, cv2.invertAffineTransform(transform)))
    return found


def moved(face, transform):
    """The face through a 2x3 transform; the box becomes the upright box around the moved one."""
    def through(points):
        return points @ transform[:, :2].T + transform[:, 2]

    x0, y0, x1, y1 = face.box
    corners = through(np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]]))
    box = (*corners.min(axis=0).tolist(), *corners.max(axis=0).tolist())
    return Face(box, face.confidence, through(face.landmarks))
