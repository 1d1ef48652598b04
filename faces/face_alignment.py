"""Frame a detected face the way LFW frames it, and put the model's answer for it back into the photo.

A similarity transform (rotation, uniform scale, shift) maps the face's five landmarks onto the
template of faces/face_template.json, the mean landmarks of the training images: the crop shows the face
where, how large and how upright the model has seen faces in training. The probabilities for the crop
go back through the inverse transform. Transforms are 2x3 matrices mapping photo pixels to crop pixels.
"""
import functools
import json
from pathlib import Path

import cv2
import numpy as np

TEMPLATE_PATH = Path(__file__).resolve().parent / "face_template.json"
# A few photo pixels around the face's region, so area averaging and bilinear sampling at its edge
# see real neighbours.
MARGIN = 2
# How much larger than the template a face is framed. 1 is the mean framing of the training images;
# the model segments a slightly larger face a little better. Chosen on the validation split with
# `python benchmarks/in_the_wild.py --split validation --zoom Z`: face IoU 0.858 / 0.860 / 0.864 for
# Z = 1 / 1.05 / 1.1 (docs/in_the_wild_validation.txt).
ZOOM = 1.1


@functools.cache
def template(path=TEMPLATE_PATH):
    """The five template landmarks [5, 2] as fractions (u, v) of the frame's width and height."""
    landmarks = json.loads(Path(path).read_text())["landmarks"]
    return np.array(list(landmarks.values()), np.float64)


def template_points(size, path=TEMPLATE_PATH, zoom=None):
    """The template in pixels of a (height, width) frame, spread about its centre by `zoom` (default ZOOM)."""
    points = template(path)
    centre = points.mean(axis=0)
    points = centre + (ZOOM if zoom is None else zoom) * (points - centre)
    return points * np.array([size[1], size[0]]) - 0.5


def similarity_transform(source, target):
    """The least-squares similarity [2, 3] mapping points `source` [N, 2] onto `target` (Umeyama 1991)."""
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    src, dst = source - source_mean, target - target_mean
    u, singular, vt = np.linalg.svd(dst.T @ src / len(source))
    # A reflection is no way to frame a face: flip the weakest axis instead.
    sign = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rotation = u @ sign @ vt
    scale = (singular * np.diag(sign)).sum() / src.var(axis=0).sum()
    linear = scale * rotation
    return np.hstack([linear, (target_mean - linear @ source_mean)[:, None]])


def scale_of(transform):
    """How much the transform enlarges lengths (< 1: the photo is shrunk into the crop)."""
    return float(np.sqrt(abs(np.linalg.det(transform[:, :2]))))


def footprint(transform, size, shape):
    """(x0, y0, x1, y1): the photo region, clipped to the photo of `shape`, that the crop of `size` shows."""
    height, width = size
    corners = np.array([[-0.5, -0.5], [width - 0.5, -0.5], [-0.5, height - 0.5], [width - 0.5, height - 0.5]])
    inverse = cv2.invertAffineTransform(transform)
    points = corners @ inverse[:, :2].T + inverse[:, 2]
    x0, y0 = np.floor(points.min(axis=0)).astype(int) - MARGIN
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + MARGIN + 1
    return max(x0, 0), max(y0, 0), min(x1, shape[1]), min(y1, shape[0])


def shifted(transform, x0, y0):
    """The transform for a region of the photo whose top left pixel is (x0, y0)."""
    return np.hstack([transform[:, :2], (transform[:, 2] + transform[:, :2] @ [x0, y0])[:, None]])


def aligned_crop(gray, landmarks, size):
    """(crop uint8 [height, width], transform photo -> crop) framing the face of `landmarks` like the template.

    Shrinking is done by area averaging first (as prepare_data.py made the training images from the
    LFW photos), so a large face is not aliased by the bilinear warp; outside the photo is black, as
    at the edges of the funneled LFW images.
    """
    transform = similarity_transform(landmarks, template_points(size))
    x0, y0, x1, y1 = footprint(transform, size, gray.shape)
    if x1 <= x0 or y1 <= y0:
        return np.zeros(size, np.uint8), transform
    region, local = gray[y0:y1, x0:x1], shifted(transform, x0, y0)
    scale = scale_of(transform)
    if scale < 0.5:
        small = (max(1, round((x1 - x0) * scale * 2)), max(1, round((y1 - y0) * scale * 2)))
        factors = np.array([small[0] / (x1 - x0), small[1] / (y1 - y0)])
        region = cv2.resize(region, small, interpolation=cv2.INTER_AREA)
        # local maps region pixels; the smaller region's pixel p is region pixel (p + 0.5) / factor - 0.5.
        local = np.hstack([local[:, :2] / factors, (local[:, 2] + local[:, :2] @ (0.5 / factors - 0.5))[:, None]])
    crop = cv2.warpAffine(region, local, size[::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    return crop, transform


def pasted(probabilities, transform, shape):
    """(x0, y0, region probabilities [h, w, C]): the crop's probabilities [H, W, C] warped back into
    the photo of `shape`, over the region the crop covers; 0 where the crop does not reach."""
    size = probabilities.shape[:2]
    x0, y0, x1, y1 = footprint(transform, size, shape)
    if x1 <= x0 or y1 <= y0:
        return 0, 0, np.zeros((0, 0, probabilities.shape[-1]), np.float32)
    region = cv2.warpAffine(probabilities, shifted(transform, x0, y0), (x1 - x0, y1 - y0),
                            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT)
    return x0, y0, region.reshape(y1 - y0, x1 - x0, probabilities.shape[-1])


def foreground(probabilities):
    """Probability of anything but background: the face channel of a 1-class model, 1 - background else."""
    if probabilities.shape[-1] == 1:
        return probabilities[..., 0]
    return probabilities[..., 1:].sum(axis=-1)


def combine(shape, num_classes, faces):
    """Probabilities [H, W, C] of a photo of `shape` from each face's (x0, y0, region): per pixel those of
    the face most sure it is not background, so overlapping faces do not blur into each other."""
    combined = np.zeros((*shape, num_classes), np.float32)
    if num_classes > 1:
        combined[..., 0] = 1.0
    for x0, y0, region in faces:
        h, w = region.shape[:2]
        current = combined[y0:y0 + h, x0:x0 + w]
        better = foreground(region) > foreground(current)
        current[better] = region[better]
    return combined
