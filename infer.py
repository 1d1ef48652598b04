"""Segment photos with a trained model: `python infer.py INPUT [INPUT ...]`.

INPUT is an image or a folder of images. For every image `<name>_mask.png` (and with --prob and
--overlay `<name>_prob.png` and `<name>_overlay.png`) is written under --out, keeping the folder
structure, at the size of the input photo. Reads top-down: the command line, segment() which runs
the pipeline, then reading images for the model and writing its answers back at photo size.
"""
import argparse
import os
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from config import COMPUTE_DTYPES, UsageError
from evaluation import load_trained, predict

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "pretrained"
DEFAULT_OUT = "out"
DEFAULT_BATCH_SIZE = 64
# Overlay colors in OpenCV's BGR order, indexed by class id: background untouched, face green, hair red.
PALETTE = np.array([[0, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
OVERLAY_ALPHA = 0.4
# Decoding and PNG encoding release the GIL, so threads overlap them with the model.
WORKERS = max(2, os.cpu_count() or 2)
# Keeps any 16-bit depth and applies EXIF orientation; alpha is dropped (IMREAD_UNCHANGED would keep it
# and ignore the orientation, so the mask would not line up with the photo as viewers show it).
READ_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Segment faces in images with a trained model. Writes <name>_mask.png per image "
                    "(0/255 for a face model, class ids 0 background / 1 face / 2 hair for a 3-class model).")
    flag = parser.add_argument
    flag("inputs", nargs="+", metavar="INPUT", help="image file or folder of images")
    flag("--model-dir", default=str(DEFAULT_MODEL_DIR),
         help="pretrained/ or a training run folder save/<description>/<timestamp>/ (default: pretrained/)")
    flag("--out", default=DEFAULT_OUT, help=f"output folder; folder structure is kept (default: {DEFAULT_OUT}/)")
    flag("--threshold", type=float, default=0.5, help="face probability threshold of a 1-class model (default: 0.5)")
    flag("--overlay", action="store_true", help="also write <name>_overlay.png, the mask tinted over the photo")
    flag("--prob", action="store_true", help="also write <name>_prob.png, the probabilities as 8-bit images")
    flag("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
         help=f"images per forward pass (default: {DEFAULT_BATCH_SIZE})")
    flag("--recursive", action="store_true", help="descend into subfolders of folder INPUTs")
    flag("--tta", default="none", choices=("none", "flip"), help="flip averages with the mirrored image (2x slower)")
    flag("--precision", default="fp32", choices=tuple(COMPUTE_DTYPES), help="bf16 runs convolutions in bfloat16")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        summary = segment(args.inputs, args.model_dir, args.out, args.threshold, args.overlay, args.prob,
                          args.batch_size, args.recursive, args.tta, args.precision)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"segmented {summary['images']} images, {len(summary['failed'])} failed, "
          f"{summary['images_per_second']:.1f} images/s -> {summary['out']}")
    return 1 if summary["failed"] else 0


def warn(message):
    print(message, file=sys.stderr)


def segment(inputs, model_dir=DEFAULT_MODEL_DIR, out=DEFAULT_OUT, threshold=0.5, overlay=False, prob=False,
            batch_size=DEFAULT_BATCH_SIZE, recursive=False, tta="none", precision="fp32", log=warn):
    """Segment every image of `inputs` (files or folders) and write the results under `out`.

    Unreadable files are reported through `log` and skipped. Returns a summary dict: `images` written,
    `failed` paths, `seconds` and `images_per_second` from the first read to the last write (model
    loading excluded), and `out`. Raises UsageError for a missing input, model or output folder.
    """
    if not 0.0 <= threshold <= 1.0:
        raise UsageError(f"--threshold {threshold} is not a probability: pass a value from 0 to 1")
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size} must be at least 1")
    out = Path(out)
    failed = []

    def skip(source, reason):
        log(f"skipped {source}: {reason}")
        failed.append(str(source))

    jobs = plan(inputs, out, recursive, skip)
    model, config = load_trained(model_dir, precision)
    size = input_size(config)
    try:
        model.check_size(*size)
    except ValueError as error:
        raise UsageError(f"{Path(model_dir) / 'config.json'}: {error}") from None
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create the output folder {out} ({error.strerror}): pass another --out") from None
    forward = compiled_forward(model, size, tta)
    write = Writer(overlay, prob, threshold)

    started = time.perf_counter()
    written = 0
    with ThreadPoolExecutor(WORKERS) as readers, ThreadPoolExecutor(WORKERS) as writers:
        pending = deque()

        def finish_oldest():
            nonlocal written
            job, future = pending.popleft()
            problem = future.result()
            if problem:
                skip(job.source, problem)
            else:
                written += 1

        for batch in decoded_batches(readers, jobs, batch_size, size, overlay, skip):
            probabilities = forward(np.stack([photo.model_input for photo in batch])).numpy()
            for photo, probs in zip(batch, probabilities):
                pending.append((photo.job, writers.submit(write, photo, probs)))
            # Bounded so a huge folder does not pile up decoded photos waiting for the disk.
            while len(pending) > 2 * batch_size:
                finish_oldest()
        while pending:
            finish_oldest()
    seconds = time.perf_counter() - started
    return {"images": written, "failed": failed, "seconds": seconds,
            "images_per_second": written / seconds if seconds > 0 else 0.0, "out": f"{out}/"}


def input_size(config):
    """(height, width) of the images the model was trained on; runs that do not record it used data128_128."""
    size = config.get("image_size", 128)
    return (size, size) if isinstance(size, int) else tuple(size)


def compiled_forward(model, size, tta):
    """Batched forward pass uint8 [N, height, width, 1] -> probabilities, traced once for any N."""

    @tf.function(input_signature=[tf.TensorSpec([None, *size, 1], tf.uint8)])
    def forward(images):
        return predict(model, tf.cast(images, tf.float32) / 255.0, tta)

    forward.get_concrete_function()
    return forward


# ---------------------------------------------------------------------------------------------
# Finding the images
# ---------------------------------------------------------------------------------------------

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


# ---------------------------------------------------------------------------------------------
# Reading: photos in, model inputs out
# ---------------------------------------------------------------------------------------------

class Photo:
    """A decoded input: its job, original height and width, the model input, and the 8-bit color photo."""

    def __init__(self, job, shape, model_input, color):
        self.job, self.shape, self.model_input, self.color = job, shape, model_input, color


def decoded_batches(pool, jobs, batch_size, size, keep_color, skip):
    """Batches of decoded Photos in job order; the next batch decodes in `pool` while the model runs."""
    jobs = iter(jobs)
    ahead = deque()
    batch = []
    while True:
        while len(ahead) < 2 * batch_size:
            job = next(jobs, None)
            if job is None:
                break
            ahead.append((job, pool.submit(read_photo, job, size, keep_color)))
        if not ahead:
            break
        job, future = ahead.popleft()
        photo = future.result()
        if photo is None:
            skip(job.source, "not a readable image")
            continue
        batch.append(photo)
        if len(batch) == batch_size:
            yield batch
            batch = []
    if batch:
        yield batch


def read_photo(job, size, keep_color):
    """The Photo of a job's file, or None when OpenCV cannot decode it."""
    try:
        image = cv2.imread(str(job.source), READ_FLAGS)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        return None
    image = to_8bit(image)
    if image.ndim == 2:
        gray, color = image, (cv2.cvtColor(image, cv2.COLOR_GRAY2BGR) if keep_color else None)
    else:
        gray, color = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), image
    height, width = gray.shape
    if (height, width) != size:
        # Area averaging avoids aliasing when shrinking; OpenCV only averages when both sides shrink.
        shrinking = height >= size[0] and width >= size[1]
        gray = cv2.resize(gray, size[::-1], interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
    return Photo(job, (height, width), gray[..., None], color)


def to_8bit(image):
    """Integer pixels scaled from their type's range to 0..255 (16-bit / 257); float pixels taken as 0..1."""
    if image.dtype == np.uint8:
        return image
    top = np.iinfo(image.dtype).max if np.issubdtype(image.dtype, np.integer) else 1.0
    return np.clip(np.rint(image.astype(np.float32) * (255.0 / top)), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------
# Writing: probabilities back at photo size
# ---------------------------------------------------------------------------------------------

class Writer:
    """Writes a Photo's mask (and probability and overlay images) at the photo's size.

    The probabilities, not the classes, are resized back (bilinear), then thresholded, so mask edges
    fall between the model's pixels instead of following its blocky grid.
    """

    def __init__(self, overlay, prob, threshold):
        self.overlay, self.prob, self.threshold = overlay, prob, threshold

    def __call__(self, photo, probs):
        """None when written, else the reason it could not be."""
        height, width = photo.shape
        num_classes = probs.shape[-1]
        if probs.shape[:2] != (height, width):
            probs = cv2.resize(probs, (width, height), interpolation=cv2.INTER_LINEAR)
            probs = probs.reshape(height, width, num_classes)  # cv2.resize drops a single channel axis
        classes = classes_of(probs, self.threshold)
        outputs = {"mask": classes * 255 if num_classes == 1 else classes}
        if self.prob:
            # Three classes show as blue background, green face, red hair (BGR order = class order).
            outputs["prob"] = np.rint(probs * 255).astype(np.uint8)
        if self.overlay:
            tinted = cv2.addWeighted(photo.color, 1 - OVERLAY_ALPHA, PALETTE[classes], OVERLAY_ALPHA, 0)
            outputs["overlay"] = np.where(classes[..., None] > 0, tinted, photo.color)
        try:
            for kind, image in outputs.items():
                write_png(Path(f"{photo.job.target}_{kind}.png"), image)
        except OSError as error:
            return f"cannot write {error.filename} ({error.strerror})"
        return None


def classes_of(probs, threshold):
    """metrics.predicted_classes for one photo [H, W, C] in numpy: an eager TF op per photo costs
    more than writing the photo's outputs."""
    if probs.shape[-1] == 1:
        return (probs[..., 0] >= threshold).astype(np.uint8)
    return probs.argmax(axis=-1).astype(np.uint8)


def write_png(path, image):
    """Write through a temporary file in the same folder, so an existing output is never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OSError(0, "PNG encoding failed", str(path))
    temporary = path.parent / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(temporary, "wb") as f:
            f.write(encoded.tobytes())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


if __name__ == "__main__":
    sys.exit(main())
