"""A data folder: inputs/ (grayscale faces), targets/ (face+hair masks) and targets_face_only/ (face
masks), the same file name in all three (data128_128/README.md); listed, read and checked, every
problem named in one sentence (or, with --skip-bad, the file left out and named).
"""
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np

from image_file import ImageFileError, read_image

INPUTS, FACE_HAIR, FACE_ONLY = "inputs", "targets", "targets_face_only"
TARGET_KINDS = ("face", "face_hair", "classes3")
# What each class id of a target kind stands for (the class order of per-class scores).
CLASS_NAMES = {"face": ("background", "face"), "face_hair": ("background", "face+hair"),
               "classes3": ("background", "face", "hair")}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".ppm", ".pgm")


class DataError(Exception):
    """A problem with the user's data, explained in one sentence."""


def _read_gray(path):
    try:
        return read_image(path, cv2.IMREAD_GRAYSCALE)
    except ImageFileError as error:
        raise DataError(f"{error}; replace or remove the file") from None


def _images_by_stem(folder):
    if not folder.is_dir():
        raise DataError(f"folder {folder} does not exist: point --data at a folder with inputs/ and its "
                        "target folders, laid out like data128_128/ (see data128_128/README.md)")
    files = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            files.setdefault(path.stem, path)
    return files


def list_folder(folder, target_kind="face", skip_bad=False, log=print):
    """The files of every input with its targets in `folder`, found by name without reading pixels.

    Returns {name: (input path, target paths...)} in name order, the paths as read_example takes
    them. Inputs without targets and targets without inputs raise DataError naming the files, or
    with `skip_bad` are listed through `log` and left out.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist: pass --data FOLDER, a folder laid out like "
                        "data128_128/ (restore that one with `git checkout -- data128_128`; `python "
                        "prepare_data.py --out FOLDER` builds others)")
    needed = {"face": (INPUTS, FACE_ONLY), "face_hair": (INPUTS, FACE_HAIR),
              "classes3": (INPUTS, FACE_ONLY, FACE_HAIR)}[target_kind]
    subfolders = {sub: _images_by_stem(folder / sub) for sub in needed}
    files, problems = {}, []
    for stem in sorted(set.union(*(set(subfolders[s]) for s in needed))):
        missing = [s for s in needed if stem not in subfolders[s]]
        if missing:
            problems.append(f"{stem} has no file in {', '.join(str(folder / s) for s in missing)}")
        else:
            files[stem] = tuple(subfolders[sub][stem] for sub in needed)
    _report(folder, problems, skip_bad, log)
    if not files:
        raise DataError(f"{folder} holds no usable input/target pairs: see data128_128/README.md for the layout")
    return files


def read_example(paths, target_kind="face"):
    """Input image and label map, uint8 [H, W], of one name's files from list_folder.

    Labels are 0/1 for `face` (face vs rest) and `face_hair` (face+hair vs background), and
    0 background / 1 face / 2 hair for `classes3`; target images are thresholded at 127. An
    unreadable image or a size mismatch raises DataError naming the file.
    """
    arrays = [_read_gray(path) for path in paths]
    if len({a.shape for a in arrays}) > 1:
        raise DataError(f"{Path(paths[0]).stem}: input and targets differ in size "
                        f"({', '.join('x'.join(map(str, a.shape)) for a in arrays)})")
    masks = [a > 127 for a in arrays[1:]]
    if target_kind == "classes3":
        face, face_hair = masks
        label = np.where(face, 1, np.where(face_hair, 2, 0))
    else:
        label = masks[0]
    return arrays[0], label.astype(np.uint8)


def load_folder(folder, target_kind="face", skip_bad=False, log=print):
    """Read every input with its label map (see read_example) from `folder`.

    Returns (names, images uint8 [N, H, W], labels uint8 [N, H, W]). Inputs without targets,
    targets without inputs, unreadable images and size mismatches raise DataError naming the
    files, or with `skip_bad` are listed through `log` and left out.
    """
    files = list_folder(folder, target_kind, skip_bad, log)
    with ThreadPoolExecutor(8) as pool:
        read = list(pool.map(lambda paths: _try_read(paths, target_kind), files.values()))
    _report(folder, [r for r in read if isinstance(r, str)], skip_bad, log)
    names = [name for name, r in zip(files, read) if not isinstance(r, str)]
    pairs = [r for r in read if not isinstance(r, str)]
    if not names:
        raise DataError(f"{folder} holds no usable input/target pairs: see data128_128/README.md for the layout")
    if len({image.shape for image, _ in pairs}) > 1:
        raise DataError(f"{folder}: images have different sizes; prepare them at one size with prepare_data.py --size")
    return names, np.stack([image for image, _ in pairs]), np.stack([label for _, label in pairs])


def _report(folder, problems, skip_bad, log):
    if problems and not skip_bad:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise DataError(f"{folder}: {shown}. Fix or remove these files, or pass --skip-bad to leave them out")
    for problem in problems:
        log(f"skipped: {problem}")


def _try_read(paths, target_kind):
    try:
        return read_example(paths, target_kind)
    except DataError as error:
        return str(error)


