"""Segment the faces in photos with a trained model: `python infer.py INPUT [INPUT ...]`.

INPUT is an image or a folder of images. Every face in a photo is found (MTCNN, face_detection.py),
framed the way the LFW training images frame faces (face_alignment.py), segmented, and its
probabilities are put back into the photo; with --whole-image the photo itself is resized to the
model's input, which is right only for photos already framed like LFW. For every image
`<name>_mask.png` (and with --prob, --overlay, --crops, --json more files) is written under --out,
keeping the folder structure, at the size of the input photo. Reads top-down: the command line, the
Python API segment_faces(), segment() which runs the pipeline over files, framing, reading, writing.
"""
import argparse
import functools
import json
import os
import sys
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import quiet_tensorflow  # noqa: F401  (before TensorFlow: it starts without its C++ start-up lines)
import tensorflow as tf

import export
import face_alignment
import image_file
import face_detection
from config import PRECISIONS, UsageError, input_size
from evaluation import load_trained, predict
from run_folder import RUN_FOLDERS

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "pretrained"
# infer.py also runs an export, which the other commands do not.
MODEL_DIRS = f"{RUN_FOLDERS}, or an export (convolutional_autoencoder.py export)"
DEFAULT_OUT = "out"
DEFAULT_BATCH_SIZE = 64
# Overlay colors in OpenCV's BGR order, indexed by class id: background untouched, face green, hair red.
PALETTE = np.array([[0, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
OVERLAY_ALPHA = 0.4
BOX_COLOR = (0, 255, 255)
# Decoding, detection and PNG encoding release the GIL, so threads overlap them with the model.
WORKERS = max(2, os.cpu_count() or 2)
# Keeps any 16-bit depth and applies EXIF orientation; alpha is dropped (IMREAD_UNCHANGED would keep it
# and ignore the orientation, so the mask would not line up with the photo as viewers show it).
READ_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR
NO_FACE_NAMES_SHOWN = 10


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Segment the faces in photos with a trained model. Writes <name>_mask.png per image (0/255 "
                    "for a face model, class ids 0 background / 1 face / 2 hair for a 3-class model).")
    flag = parser.add_argument
    flag("inputs", nargs="+", metavar="INPUT", help="image file or folder of images")
    flag("--model-dir", default=str(DEFAULT_MODEL_DIR),
         help="pretrained/ or a training run folder save/<description>/<timestamp>/ (default: pretrained/)")
    flag("--out", default=DEFAULT_OUT, help=f"output folder; folder structure is kept (default: {DEFAULT_OUT}/)")
    flag("--whole-image", action="store_true",
         help="resize each whole image to the model's input instead of finding faces: for photos framed like LFW")
    flag("--min-face", type=float, default=face_detection.DEFAULT_MIN_FACE,
         help=f"smallest face searched for, in pixels of its box side (default: {face_detection.DEFAULT_MIN_FACE})")
    flag("--min-confidence", type=float, default=face_detection.DEFAULT_MIN_CONFIDENCE,
         help=f"detections less sure than this are ignored (default: {face_detection.DEFAULT_MIN_CONFIDENCE})")
    flag("--threshold", type=float, default=0.5, help="face probability threshold of a 1-class model (default: 0.5)")
    flag("--overlay", action="store_true",
         help="also write <name>_overlay.png: the mask tinted over the photo, each face's box and number")
    flag("--prob", action="store_true", help="also write <name>_prob.png, the probabilities as 8-bit images")
    flag("--crops", action="store_true",
         help="also write <name>_face<k>_crop.png and <name>_face<k>_crop_mask.png: what the model saw of face k "
              "and its mask")
    flag("--json", action="store_true",
         help="also write <name>_faces.json: box, landmarks, confidence and mask area of each face")
    flag("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
         help=f"faces (or images) per forward pass (default: {DEFAULT_BATCH_SIZE})")
    flag("--recursive", action="store_true", help="descend into subfolders of folder INPUTs")
    flag("--tta", default="none", choices=("none", "flip"), help="flip averages with the mirrored image (2x slower)")
    flag("--precision", default="auto", choices=PRECISIONS,
         help="auto (default): bf16 where the CPU has it natively (AVX512-BF16, AMX), else fp32; "
              "an export runs as it was exported")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        summary = segment(args.inputs, args.model_dir, args.out, args.threshold, args.overlay, args.prob,
                          args.batch_size, args.recursive, args.tta, args.precision, whole_image=args.whole_image,
                          min_face=args.min_face, min_confidence=args.min_confidence, crops=args.crops,
                          faces_json=args.json)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    count = summary["faces"]
    faces = "" if args.whole_image else f" ({count} face{'' if count == 1 else 's'})"
    print(f"segmented {summary['images']} images{faces}, {len(summary['failed'])} failed, "
          f"{summary['images_per_second']:.1f} images/s -> {summary['out']}")
    if summary["no_face"]:
        names = summary["no_face"][:NO_FACE_NAMES_SHOWN]
        more = len(summary["no_face"]) - len(names)
        print(f"no face found in {len(summary['no_face'])} images (their masks are all background): "
              f"{', '.join(names)}{f' and {more} more' if more else ''}")
    return 1 if summary["failed"] else 0


def warn(message):
    print(message, file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# The Python API: one photo in memory
# ---------------------------------------------------------------------------------------------

def segment_faces(image, model_dir=DEFAULT_MODEL_DIR, threshold=0.5, min_face=face_detection.DEFAULT_MIN_FACE,
                  min_confidence=face_detection.DEFAULT_MIN_CONFIDENCE, tta="none", precision="auto",
                  whole_image=False):
    """(mask, faces) of one photo (gray [H, W] or BGR [H, W, 3], any depth), as infer.py computes them.

    `mask` is [H, W] uint8: 0/1 for a face model, class ids for a 3-class model. `faces` lists a
    FramedFace per face found, most confident first, with its crop, the crop's probabilities and mask
    area. The model is loaded once per (model_dir, precision).
    """
    forward, size, num_classes = loaded_model(str(model_dir), precision, tta)
    framer = Framer(size, whole_image, min_face, min_confidence)
    inputs, faces = framer.frame(to_8bit(image))
    probabilities = in_batches(forward, inputs, DEFAULT_BATCH_SIZE, num_classes)
    photo_probs = framer.unframe(image.shape[:2], probabilities, faces, num_classes)
    for face in faces:
        face.measure(threshold)
    return classes_of(photo_probs, threshold), faces


@functools.cache
def loaded_model(model_dir, precision, tta):
    """(compiled forward, input size, number of classes) of a run folder or an export, loaded once per
    process."""
    if export.is_export(model_dir):
        if tta != "none":
            raise UsageError(f"{model_dir} is an export, which already holds its run's test-time augmentation: "
                             "drop --tta")
        return export.load_exported(model_dir)
    model, config = load_trained(model_dir, precision, kinds=MODEL_DIRS)
    size = input_size(config)
    try:
        model.check_size(*size)
    except ValueError as error:
        raise UsageError(f"{Path(model_dir) / 'config.json'}: {error}") from None
    return compiled_forward(model, size, tta), size, model.num_classes


# ---------------------------------------------------------------------------------------------
# The command line's pipeline: folders of files
# ---------------------------------------------------------------------------------------------

def segment(inputs, model_dir=DEFAULT_MODEL_DIR, out=DEFAULT_OUT, threshold=0.5, overlay=False, prob=False,
            batch_size=DEFAULT_BATCH_SIZE, recursive=False, tta="none", precision="auto", log=warn, *,
            whole_image=False, min_face=face_detection.DEFAULT_MIN_FACE,
            min_confidence=face_detection.DEFAULT_MIN_CONFIDENCE, crops=False, faces_json=False):
    """Segment every image of `inputs` (files or folders) and write the results under `out`.

    Unreadable files are reported through `log` and skipped. Returns a summary dict: `images` written,
    `faces` found in them, `no_face` (images without a face, default mode), `failed` paths, `seconds`
    and `images_per_second` from the first read to the last write (model loading excluded), and `out`.
    Raises UsageError for a missing input, model or output folder, or a bad setting.
    """
    if not 0.0 <= threshold <= 1.0:
        raise UsageError(f"--threshold {threshold} is not a probability: pass a value from 0 to 1")
    if not 0.0 <= min_confidence <= 1.0:
        raise UsageError(f"--min-confidence {min_confidence} is not a probability: pass a value from 0 to 1")
    if min_face < face_detection.SMALLEST_FACE:
        raise UsageError(f"--min-face {min_face} is below what MTCNN can find: "
                            f"pass at least {face_detection.SMALLEST_FACE} pixels")
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size} must be at least 1")
    if whole_image and (crops or faces_json):
        raise UsageError("--crops and --json describe the faces found, and --whole-image finds none: drop one")
    out = Path(out)
    failed = []

    def skip(source, reason):
        log(f"skipped {source}: {reason}")
        failed.append(str(source))

    jobs = plan(inputs, out, recursive, skip)
    forward, size, num_classes = loaded_model(str(model_dir), precision, tta)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create the output folder {out} ({error.strerror}): pass another --out") from None
    framer = Framer(size, whole_image, min_face, min_confidence)
    if not whole_image:
        face_detection.networks()  # built here, not by the first reader threads at once
    write = Writer(framer, num_classes, overlay, prob, threshold, crops, faces_json)

    started = time.perf_counter()
    written, faces, no_face = 0, 0, []
    with ThreadPoolExecutor(WORKERS) as readers, ThreadPoolExecutor(WORKERS) as writers:
        pending = deque()

        def finish_oldest():
            nonlocal written, faces
            photo, future = pending.popleft()
            problem = future.result()
            if problem:
                skip(photo.job.source, problem)
                return
            written += 1
            faces += len(photo.faces)
            if not whole_image and not photo.faces:
                no_face.append(str(photo.job.source))

        for batch in framed_batches(readers, jobs, batch_size, framer, overlay, skip):
            probabilities = in_batches(forward, np.concatenate([photo.inputs for photo in batch]), batch_size,
                                       num_classes)
            for photo in batch:
                mine, probabilities = probabilities[:len(photo.inputs)], probabilities[len(photo.inputs):]
                pending.append((photo, writers.submit(write, photo, mine)))
            # Bounded so a huge folder does not pile up decoded photos waiting for the disk.
            while len(pending) > 2 * batch_size:
                finish_oldest()
        while pending:
            finish_oldest()
    seconds = time.perf_counter() - started
    return {"images": written, "faces": faces, "no_face": no_face, "failed": failed, "seconds": seconds,
            "images_per_second": written / seconds if seconds > 0 else 0.0, "out": f"{out}/"}


def in_batches(forward, inputs, batch_size, num_classes):
    """Probabilities [N, h, w, C] of model inputs uint8 [N, h, w], at most `batch_size` per forward pass."""
    chunks = [forward(inputs[i:i + batch_size, ..., None]).numpy() for i in range(0, len(inputs), batch_size)]
    return np.concatenate(chunks) if chunks else np.zeros((0, *inputs.shape[1:], num_classes), np.float32)


def compiled_forward(model, size, tta):
    """Batched forward pass uint8 [N, height, width, 1] -> probabilities, traced once for any N."""

    @tf.function(input_signature=[tf.TensorSpec([None, *size, 1], tf.uint8)])
    def forward(images):
        return predict(model, tf.cast(images, tf.float32) / 255.0, tta)

    forward.get_concrete_function()
    return forward


# ---------------------------------------------------------------------------------------------
# Framing: a photo into model inputs, their probabilities back into the photo
# ---------------------------------------------------------------------------------------------

class FramedFace:
    """A detected face (box, confidence, landmarks; face_detection.Face), its aligned `crop`, the
    `transform` photo -> crop, and once segmented its crop `probabilities`, where they land in the
    photo (`pasted`: x0, y0, region probabilities) and `mask_area` (photo pixels not background)."""

    def __init__(self, face, crop, transform):
        self.box, self.confidence, self.landmarks = face.box, face.confidence, face.landmarks
        self.crop, self.transform = crop, transform
        self.probabilities, self.pasted, self.mask_area = None, None, None

    def measure(self, threshold):
        self.mask_area = int(np.count_nonzero(classes_of(self.pasted[2], threshold)))

    def summary(self):
        """What --json writes for the face."""
        return {"box": [round(v, 1) for v in self.box], "confidence": round(self.confidence, 4),
                "landmarks": {name: [round(float(v), 1) for v in point]
                              for name, point in zip(face_detection.LANDMARKS, self.landmarks)},
                "mask_area": self.mask_area}


class Framer:
    """How a photo becomes model inputs and their probabilities a photo's: each face found aligned
    to the template (default), or the whole photo resized (`whole_image`, for LFW-framed photos)."""

    def __init__(self, size, whole_image=False, min_face=face_detection.DEFAULT_MIN_FACE,
                 min_confidence=face_detection.DEFAULT_MIN_CONFIDENCE):
        self.size, self.whole_image = size, whole_image
        self.min_face, self.min_confidence = min_face, min_confidence

    def frame(self, image):
        """(model inputs uint8 [N, height, width], [FramedFace]) of an 8-bit gray or BGR photo."""
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self.whole_image:
            height, width = gray.shape
            # Area averaging avoids aliasing when shrinking; OpenCV only averages when both sides shrink.
            shrinking = height >= self.size[0] and width >= self.size[1]
            resized = cv2.resize(gray, self.size[::-1], interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
            return resized[None], []
        faces = [FramedFace(face, *face_alignment.aligned_crop(gray, face.landmarks, self.size))
                 for face in face_detection.detect_faces(image, self.min_face, self.min_confidence)]
        inputs = np.stack([face.crop for face in faces]) if faces else np.zeros((0, *self.size), np.uint8)
        return inputs, faces

    def unframe(self, shape, probabilities, faces, num_classes):
        """Probabilities [H, W, C] at the photo's `shape` from those of its model inputs [N, h, w, C]."""
        if self.whole_image:
            height, width = shape
            # The probabilities, not the classes, are resized, so mask edges fall between the model's pixels.
            resized = cv2.resize(probabilities[0], (width, height), interpolation=cv2.INTER_LINEAR)
            return resized.reshape(height, width, num_classes)  # cv2.resize drops a single channel axis
        for face, probs in zip(faces, probabilities):
            face.probabilities = probs
            face.pasted = face_alignment.pasted(probs, face.transform, shape)
        return face_alignment.combine(shape, num_classes, [face.pasted for face in faces])


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
    """A framed input: its job, original height and width, its model inputs [N, h, w] and FramedFaces,
    and the 8-bit color photo when an overlay needs it."""

    def __init__(self, job, shape, inputs, faces, color):
        self.job, self.shape, self.inputs, self.faces, self.color = job, shape, inputs, faces, color


def framed_batches(pool, jobs, batch_size, framer, keep_color, skip):
    """Lists of framed Photos in job order, each holding `batch_size` model inputs or photos or more
    (but the last); the next photos are read and framed in `pool` while the model runs."""
    jobs = iter(jobs)
    ahead = deque()
    batch, inputs = [], 0
    while True:
        while len(ahead) < 2 * batch_size:
            job = next(jobs, None)
            if job is None:
                break
            ahead.append((job, pool.submit(read_photo, job, framer, keep_color)))
        if not ahead:
            break
        job, future = ahead.popleft()
        photo, problem = future.result()
        if problem:
            skip(job.source, problem)
            continue
        batch.append(photo)
        inputs += len(photo.inputs)
        # Photos without faces count too, so a folder of them does not pile up in memory.
        if max(inputs, len(batch)) >= batch_size:
            yield batch
            batch, inputs = [], 0
    if batch:
        yield batch


def read_photo(job, framer, keep_color):
    """(Photo, None) for a job's file, or (None, the reason it cannot be read)."""
    image, problem = read_image(job.source)
    if problem:
        return None, problem
    inputs, faces = framer.frame(image)
    color = None
    if keep_color:
        color = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    return Photo(job, image.shape[:2], inputs, faces, color), None


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


# ---------------------------------------------------------------------------------------------
# Writing: probabilities back at photo size
# ---------------------------------------------------------------------------------------------

class Writer:
    """Writes a Photo's mask (and probability, overlay, crop and JSON files) at the photo's size."""

    def __init__(self, framer, num_classes, overlay=False, prob=False, threshold=0.5, crops=False, faces_json=False):
        self.framer, self.num_classes = framer, num_classes
        self.overlay, self.prob, self.threshold = overlay, prob, threshold
        self.crops, self.faces_json = crops, faces_json

    def __call__(self, photo, probabilities):
        """None when written, else the reason it could not be; `probabilities` are those of photo.inputs."""
        probs = self.framer.unframe(photo.shape, probabilities, photo.faces, self.num_classes)
        for face in photo.faces:
            face.measure(self.threshold)
        classes = classes_of(probs, self.threshold)
        outputs = {"mask": self.mask_image(classes)}
        if self.prob:
            # Three classes show as blue background, green face, red hair (BGR order = class order).
            outputs["prob"] = np.rint(probs * 255).astype(np.uint8)
        if self.overlay:
            outputs["overlay"] = overlay_image(photo.color, classes, photo.faces)
        if self.crops:
            for number, face in enumerate(photo.faces, 1):
                outputs[f"face{number}_crop"] = face.crop
                outputs[f"face{number}_crop_mask"] = self.mask_image(classes_of(face.probabilities, self.threshold))
        try:
            for kind, image in outputs.items():
                write_png(Path(f"{photo.job.target}_{kind}.png"), image)
            if self.faces_json:
                document = {"photo": str(photo.job.source), "height": photo.shape[0], "width": photo.shape[1],
                            "faces": [face.summary() for face in photo.faces]}
                text = json.dumps(document, indent=1) + "\n"
                write_atomically(Path(f"{photo.job.target}_faces.json"), text.encode())
        except OSError as error:
            return f"cannot write {error.filename} ({error.strerror})"
        return None

    def mask_image(self, classes):
        """0/255 for a face model, class ids for a 3-class model."""
        return classes * 255 if self.num_classes == 1 else classes


def overlay_image(color, classes, faces):
    """The photo with its mask tinted in, and each face's box and number."""
    tinted = cv2.addWeighted(color, 1 - OVERLAY_ALPHA, PALETTE[classes], OVERLAY_ALPHA, 0)
    image = np.where(classes[..., None] > 0, tinted, color)
    thickness = max(1, round(max(color.shape[:2]) / 500))
    for number, face in enumerate(faces, 1):
        x0, y0, x1, y1 = (round(v) for v in face.box)
        cv2.rectangle(image, (x0, y0), (x1, y1), BOX_COLOR, thickness)
        cv2.putText(image, str(number), (x0 + 2 * thickness, y0 + 14 * thickness), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5 * thickness, BOX_COLOR, thickness, cv2.LINE_AA)
    return image


def classes_of(probs, threshold):
    """metrics.predicted_classes for one photo [H, W, C] in numpy: an eager TF op per photo costs
    more than writing the photo's outputs."""
    if probs.shape[-1] == 1:
        return (probs[..., 0] >= threshold).astype(np.uint8)
    return probs.argmax(axis=-1).astype(np.uint8)


def write_png(path, image):
    """Encode and write atomically."""
    ok, encoded = cv2.imencode(".png", image)
    if not ok:
        raise OSError(0, "PNG encoding failed", str(path))
    write_atomically(path, encoded.tobytes())


def write_atomically(path, data):
    """Write through a temporary file in the same folder, so an existing output is never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(temporary, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


if __name__ == "__main__":
    sys.exit(main())
