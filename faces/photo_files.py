"""The photos infer.py reads: the files of its INPUTs, where their outputs go, and reading one photo.

A folder contributes its files (hidden ones excepted, subfolders with --recursive); each file becomes a
Job naming the path its outputs start with. Reading goes through image_file, which refuses truncated
and corrupt files, and gives 8-bit pixels whatever the file's depth.
"""
import os
from pathlib import Path

import cv2
import numpy as np

import image_file
from runs.config import UsageError

# Keeps any 16-bit depth and applies EXIF orientation; alpha is dropped (IMREAD_UNCHANGED would keep it
# and ignore the orientation, so the mask would not line up with the photo as viewers show it).
READ_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


class Job:
    """One input file and the path its outputs start with (`out/sub/name`, + `_mask.png` ...)."""

    def __init__(self, source, target):
        self.source, self.target = source, target


def plan(inputs, out, recursive, skip):
    """Jobs for every file of `inputs`; `skip(source, reason)` gets those that cannot have outputs of their own.

    A folder contributes all its files (hidden ones excepted) and, with `recursive`, those of its
    subfolders, except the output folder itself. Files that are not images are kept: decoding them
    is how they are found out and reported. When two files would share outputs (`a.jpg`, `a.png`),
    the later keeps its extension in the output name (`a.png_mask.png`).
    """
    missing = [str(p) for p in inputs if not Path(p).exists()]
    if missing:
        raise UsageError(f"no such file or folder: {', '.join(missing)}; pass image files or folders of images")
    jobs, taken = [], set()
    for source, relative in listed_files(inputs, out, recursive):
        target = out / relative.parent / relative.stem
        if target in taken:
            target = out / relative
        if target in taken:
            skip(source, "its outputs would overwrite those of another input; segment it separately")
            continue
        taken.add(target)
        jobs.append(Job(source, target))
    if not jobs:
        hint = "" if recursive else " (--recursive descends into subfolders)"
        raise UsageError(f"no files to segment in {', '.join(map(str, inputs))}{hint}")
    return jobs


def listed_files(inputs, out, recursive):
    """(file, path relative to its INPUT folder) in sorted order; a file INPUT is relative to its folder."""
    out_folder = out.resolve()
    for given in map(Path, inputs):
        if not given.is_dir():
            yield given, Path(given.name)
            continue
        for folder, subfolders, files in os.walk(given):
            subfolders[:] = sorted(d for d in subfolders if recursive and not d.startswith(".")
                                   and (Path(folder) / d).resolve() != out_folder)
            for name in sorted(files):
                if not name.startswith("."):
                    yield Path(folder) / name, (Path(folder) / name).relative_to(given)


def read_image(path):
    """(8-bit gray or BGR image, None), or (None, why the file cannot be read): image_file refuses
    truncated and corrupt files, which OpenCV alone would half-decode."""
    try:
        image = image_file.read_image(path, READ_FLAGS)
    except image_file.ImageFileError as error:
        return None, f"{error.problem}; re-export or re-download it"
    if image.size == 0:
        return None, "an empty image"
    return to_8bit(image), None


def to_8bit(image):
    """Integer pixels scaled from their type's range to 0..255 (16-bit / 257); float pixels taken as 0..1."""
    if image.dtype == np.uint8:
        return image
    top = np.iinfo(image.dtype).max if np.issubdtype(image.dtype, np.integer) else 1.0
    return np.clip(np.rint(image.astype(np.float32) * (255.0 / top)), 0, 255).astype(np.uint8)
