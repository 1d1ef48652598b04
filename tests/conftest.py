"""Shared fixtures: small synthetic face folders in the LFW part-labels layout."""
import os
import tempfile
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# `--precision auto` keeps its verdicts in a scratch folder of this test session, not the user's cache.
os.environ.setdefault("FACE_SEGMENTATION_CACHE", tempfile.mkdtemp(prefix="precision-cache-"))


def user_environment():
    """os.environ as a user's shell has it, for a subprocess whose standard error is checked: without the
    TF_CPP_MIN_LOG_LEVEL set above for the tests, which would hide TensorFlow's warnings."""
    return {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}


def synthetic_face(rng, size):
    """A noisy gray image with a bright elliptical face, a darker hair cap, and both masks."""
    yy, xx = np.mgrid[:size, :size]
    cy, cx = size / 2 + rng.uniform(-size / 10, size / 10, 2)
    ry, rx = size * rng.uniform(0.25, 0.35), size * rng.uniform(0.18, 0.28)
    face = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    hair = (((yy - cy + ry * 0.4) / (ry * 1.05)) ** 2 + ((xx - cx) / (rx * 1.15)) ** 2 <= 1) & ~face & (yy < cy)
    image = rng.normal(90, 20, (size, size))
    image[face] = rng.normal(190, 15, face.sum())
    image[hair] = rng.normal(40, 10, hair.sum())
    return np.clip(image, 0, 255).astype(np.uint8), face, hair


def make_face_folder(folder, persons=6, per_person=2, size=64, seed=0):
    """Write inputs/, targets/ and targets_face_only/ like data128_128 and return the folder."""
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    for sub in ("inputs", "targets", "targets_face_only"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for p in range(persons):
        for k in range(per_person):
            name = f"Person_{p:02d}_{k + 1:04d}.jpg"
            image, face, hair = synthetic_face(rng, size)
            cv2.imwrite(str(folder / "inputs" / name), image)
            cv2.imwrite(str(folder / "targets" / name), ((face | hair) * 255).astype(np.uint8))
            cv2.imwrite(str(folder / "targets_face_only" / name), (face * 255).astype(np.uint8))
    return folder


@pytest.fixture
def face_folder(tmp_path):
    return make_face_folder(tmp_path / "faces")


REAL_DATA = ROOT / "data128_128"


def tilted_scene(real_data, name, angle):
    """(640x480 gray scene, its face mask, the LFW picture, the transform picture -> scene): the
    picture `name` enlarged to 200 pixels, turned by `angle` degrees and centred on a plain background."""
    picture = cv2.imread(str(real_data / "inputs" / f"{name}.jpg"), cv2.IMREAD_GRAYSCALE)
    target = cv2.imread(str(real_data / "targets_face_only" / f"{name}.jpg"), cv2.IMREAD_GRAYSCALE)
    turn = cv2.getRotationMatrix2D((63.5, 63.5), angle, 200 / 128)
    turn[:, 2] += np.array([320, 240]) - 63.5
    scene = np.where(cv2.warpAffine(np.ones_like(picture), turn, (640, 480)) > 0,
                     cv2.warpAffine(picture, turn, (640, 480)), np.uint8(120))
    return scene, cv2.warpAffine(target, turn, (640, 480)) > 127, picture, turn


@pytest.fixture
def real_data():
    if not (REAL_DATA / "inputs").is_dir():
        pytest.skip("data128_128/inputs is missing (it is committed): restore it with git checkout -- data128_128")
    return REAL_DATA


# A network small enough for a training step in milliseconds, on the 64x64 synthetic faces.
TINY = ["--arch", "C3,8,2C3,8,1M2", "--batch-size", "4"]


def run_folders(out):
    """The run folders training wrote under `out` for the TINY network, oldest first."""
    return sorted(p for p in (out / "C3,8,2C3,8,1M2").iterdir() if p.is_dir())


def scalars(run_dir, tag):
    """{step: value} of a TensorBoard scalar in a run folder's logs."""
    import tensorflow as tf  # here, so that conftest does not cost every test process a TensorFlow import
    values = {}
    for path in sorted((run_dir / "logs").glob("events.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return values
