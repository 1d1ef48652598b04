"""Segment the faces in photos with a trained model: `python infer.py INPUT [INPUT ...]`.

INPUT is an image, a video (.mp4 .avi .mov .mkv .webm) or a folder of them. Every face in a photo is
found (MTCNN, faces/face_detection.py), framed the way the LFW training images frame faces
(faces/face_alignment.py), segmented, and its probabilities are put back into the photo; with --whole-image
the photo itself is resized to the model's input, which is right only for photos already framed like
LFW. For every image `<name>_mask.png` (and with --prob, --overlay, --crops, --json more files) is
written under --out, keeping the folder structure, at the size of the input photo. Reads top-down: the
command line, the Python API segment_faces(), segment() which runs the pipeline over files. Its parts
live beside it: faces/framing.py (photo -> model inputs -> photo), faces/photo_files.py (finding and reading the
photos) and faces/photo_outputs.py (the files written for each photo). A video's faces are tracked from
frame to frame instead (VideoSegmenter, faces/), its masks written as `<name>_mask.mp4`.
"""
import argparse
import functools
import os
import sys
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import quiet_tensorflow  # noqa: F401  (before TensorFlow: it starts without its C++ start-up lines)
import tensorflow as tf

from faces import face_detection
from faces.framing import Framer, classes_of
from faces.photo_files import plan, read_image, to_8bit
from faces.photo_outputs import Writer
from faces import video_files, video_outputs, video_segmenter
from runs.config import PRECISIONS, UsageError, input_size
from runs.evaluation import load_trained, predict
from runs import export
from runs.run_folder import RUN_FOLDERS

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent / "pretrained"
# infer.py also runs an export, which the other commands do not.
MODEL_DIRS = f"{RUN_FOLDERS}, or an export (convolutional_autoencoder.py export)"
DEFAULT_OUT = "out"
DEFAULT_BATCH_SIZE = 64
# Decoding, detection and PNG encoding release the GIL, so threads overlap them with the model.
WORKERS = max(2, os.cpu_count() or 2)
NO_FACE_NAMES_SHOWN = 10


def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Segment the faces in photos with a trained model. Writes <name>_mask.png per image (0/255 "
                    "for a face model, class ids 0 background / 1 face / 2 hair for a 3-class model).")
    flag = parser.add_argument
    flag("inputs", nargs="+", metavar="INPUT",
         help="image or video file (.mp4 .avi .mov .mkv .webm: <name>_mask.mp4), or folder of them")
    flag("--model-dir", default=str(DEFAULT_MODEL_DIR),
         help="pretrained/, a training run folder save/<description>/<timestamp>/, or an export folder (its "
              "SavedModel, or its model.onnx in ONNX Runtime when it holds only that) (default: pretrained/)")
    flag("--out", default=DEFAULT_OUT, help=f"output folder; folder structure is kept (default: {DEFAULT_OUT}/)")
    flag("--whole-image", action="store_true",
         help="resize each whole image to the model's input instead of finding faces: for photos framed like LFW")
    flag("--min-face", type=float, default=face_detection.DEFAULT_MIN_FACE,
         help=f"smallest face searched for, in pixels of its box side (default: {face_detection.DEFAULT_MIN_FACE})")
    flag("--min-confidence", type=float, default=face_detection.DEFAULT_MIN_CONFIDENCE,
         help=f"detections less sure than this are ignored (default: {face_detection.DEFAULT_MIN_CONFIDENCE})")
    flag("--tilted-faces", action=argparse.BooleanOptionalAction, default=None,
         help=f"also search each photo turned by -25 and +25 degrees, for faces of {face_detection.TURNED_MIN_FACE} "
              "pixels or more tilted by 20-30 degrees that the upright search misses (default: on, unless "
              "--whole-image); --no-tilted-faces searches upright only, about 1.6x the photos per second")
    flag("--threshold", type=float, default=0.5, help="face probability threshold of a 1-class model (default: 0.5)")
    flag("--overlay", action="store_true",
         help="also write <name>_overlay.png: the mask tinted over the photo, each face's box and number")
    flag("--prob", action="store_true", help="also write <name>_prob.png, the probabilities as 8-bit images")
    flag("--crops", action="store_true",
         help="also write <name>_face<k>_crop.png and <name>_face<k>_crop_mask.png: what the model saw of face k "
              "and its mask")
    flag("--json", action="store_true",
         help="also write <name>_faces.json: box, landmarks, confidence and mask area of each face (for a video "
              "per frame, with each face's track id); a video's --overlay is <name>_overlay.mp4")
    flag("--frames", action="store_true",
         help="for a video, also write each frame's mask as <name>_masks/<frame>.png (lossless; <name>_mask.mp4 "
              "is MPEG-4)")
    flag("--batch-size", type=int, default=DEFAULT_BATCH_SIZE,
         help=f"faces (or images) per forward pass (default: {DEFAULT_BATCH_SIZE})")
    flag("--recursive", action="store_true", help="descend into subfolders of folder INPUTs")
    flag("--tta", default="none", choices=("none", "flip"), help="flip averages with the mirrored image (2x slower)")
    flag("--precision", default="auto", choices=PRECISIONS,
         help="auto (default): the faster of fp32 and bf16 for this model on this CPU (fp32 without native "
              "bf16), measured once and cached; an export runs as it was exported")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        summary = segment(args.inputs, args.model_dir, args.out, args.threshold, args.overlay, args.prob,
                          args.batch_size, args.recursive, args.tta, args.precision, whole_image=args.whole_image,
                          min_face=args.min_face, min_confidence=args.min_confidence, crops=args.crops,
                          faces_json=args.json, tilted_faces=args.tilted_faces, frames=args.frames)
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(summary["precision"])
    count, videos = summary["faces"], summary["videos"]
    faces = "" if args.whole_image else f" ({count} face{'' if count == 1 else 's'})"
    done, rates = [], []
    if summary["images"] or not videos:
        done.append(f"{summary['images']} images{faces}")
        rates.append(f"{summary['images_per_second']:.1f} images/s")
    if videos:
        done.append(f"{videos} video{'' if videos == 1 else 's'} ({summary['frames']} frames, "
                    f"{summary['tracks']} face{'' if summary['tracks'] == 1 else 's'} tracked)")
        rates.append(f"{summary['frames_per_second']:.1f} frames/s")
    print(f"segmented {' and '.join(done)}, {len(summary['failed'])} failed, {', '.join(rates)} -> {summary['out']}")
    if summary["no_face"]:
        names = summary["no_face"][:NO_FACE_NAMES_SHOWN]
        more = len(summary["no_face"]) - len(names)
        print(f"no face found in {len(summary['no_face'])} {'inputs' if videos else 'images'} (their masks are all "
              "background): "
              f"{', '.join(names)}{f' and {more} more' if more else ''}")
    return 1 if summary["failed"] else 0


def warn(message):
    print(message, file=sys.stderr)


# ---------------------------------------------------------------------------------------------
# The Python API: one photo in memory
# ---------------------------------------------------------------------------------------------

def segment_faces(image, model_dir=DEFAULT_MODEL_DIR, threshold=0.5, min_face=face_detection.DEFAULT_MIN_FACE,
                  min_confidence=face_detection.DEFAULT_MIN_CONFIDENCE, tta="none", precision="auto",
                  whole_image=False, tilted_faces=True):
    """(mask, faces) of one photo (gray [H, W] or BGR [H, W, 3], any depth), as infer.py computes them.

    `mask` is [H, W] uint8: 0/1 for a face model, class ids for a 3-class model. `faces` lists a
    FramedFace per face found, most confident first, with its crop, the crop's probabilities and mask
    area. `tilted_faces=False` searches upright only (infer.py --no-tilted-faces). The model is loaded
    once per (model_dir, precision).
    """
    forward, size, num_classes = loaded_model(str(model_dir), precision, tta)
    framer = Framer(size, whole_image, min_face, min_confidence, tilted_faces)
    inputs, faces = framer.frame(to_8bit(image))
    probabilities = in_batches(forward, inputs, DEFAULT_BATCH_SIZE, num_classes)
    photo_probs = framer.unframe(image.shape[:2], probabilities, faces, num_classes)
    for face in faces:
        face.measure(threshold)
    return classes_of(photo_probs, threshold), faces


def loaded_model(model_dir, precision, tta):
    """(compiled forward, input size, number of classes) of a run folder or an export, loaded once per
    process."""
    return loaded(model_dir, precision, tta)[:3]


def precision_line(model_dir, precision, tta):
    """The line saying which precision the model of loaded_model runs in, and why."""
    return loaded(model_dir, precision, tta)[3]


@functools.cache
def loaded(model_dir, precision, tta):
    """loaded_model's three and the precision_line."""
    if export.is_export(model_dir):
        if tta != "none":
            raise UsageError(f"{model_dir} is an export, which already holds its run's test-time augmentation: "
                             "drop --tta")
        onnx = not (Path(model_dir) / "saved_model.pb").is_file()
        runs_it = f"ONNX Runtime runs its {export.ONNX_FILE}" if onnx else "TensorFlow runs its SavedModel"
        return (*export.load_exported(model_dir), f"precision: fp32 (an export: {runs_it} as exported)")
    model, config = load_trained(model_dir, precision, kinds=MODEL_DIRS)
    size = input_size(config)
    try:
        model.check_size(*size)
    except ValueError as error:
        raise UsageError(f"{Path(model_dir) / 'config.json'}: {error}") from None
    line = f"precision: {config['precision']}{config['precision_note']}"
    return compiled_forward(model, size, tta), size, model.num_classes, line


class VideoSegmenter(video_segmenter.VideoSegmenter):
    """The stream object for video and webcam frames: `step(frame) -> (mask, faces)`, faces tracked from
    frame to frame, each with a `track_id` (faces/video_segmenter.py), on the model of `model_dir`,
    loaded once per process. `settings`: threshold, min_face, min_confidence, tilted_faces,
    detect_every, fps."""

    def __init__(self, model_dir=DEFAULT_MODEL_DIR, precision="auto", tta="none", **settings):
        super().__init__(*loaded_model(str(model_dir), precision, tta), **settings)


# ---------------------------------------------------------------------------------------------
# The command line's pipeline: folders of files
# ---------------------------------------------------------------------------------------------

def segment(inputs, model_dir=DEFAULT_MODEL_DIR, out=DEFAULT_OUT, threshold=0.5, overlay=False, prob=False,
            batch_size=DEFAULT_BATCH_SIZE, recursive=False, tta="none", precision="auto", log=warn, *,
            whole_image=False, min_face=face_detection.DEFAULT_MIN_FACE,
            min_confidence=face_detection.DEFAULT_MIN_CONFIDENCE, crops=False, faces_json=False, tilted_faces=None,
            frames=False):
    """Segment every image and video of `inputs` (files or folders) and write the results under `out`.

    Faces are also searched for turned (`tilted_faces`) unless it is False; True is a usage error with
    `whole_image`, like the other face options.

    Unreadable files are reported through `log` and skipped. Returns a summary dict: `images` written,
    `faces` found in them, `no_face` (images without a face, default mode), `failed` paths, `seconds`
    and `images_per_second` from the first read to the last write (model loading excluded), `out`, and
    `precision`, the line saying which precision ran and why (precision_line);
    for the videos (faces/video_outputs.py) `videos`, `frames`, `tracks` and `frames_per_second`.
    Raises UsageError for a missing input, model or output folder, or a bad setting.
    """
    check_settings(threshold, min_confidence, min_face, batch_size, whole_image,
                   about_faces=(("--crops", crops), ("--json", faces_json), ("--tilted-faces", tilted_faces is True)))
    out = Path(out)
    failed = []

    def skip(source, reason):
        log(f"skipped {source}: {reason}")
        failed.append(str(source))

    jobs = plan(inputs, out, recursive, skip)
    jobs, videos = photos_and_videos(jobs, whole_image, prob or crops, skip, log)
    forward, size, num_classes = loaded_model(str(model_dir), precision, tta)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"cannot create the output folder {out} ({error.strerror}): pass another --out") from None
    framer = Framer(size, whole_image, min_face, min_confidence, tilted_faces is not False)
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
    clips = {"videos": 0, "frames": 0, "tracks": 0, "no_face": [], "seconds": 0.0}
    if videos:
        segmenter = VideoSegmenter(model_dir, precision, tta, threshold=threshold, min_face=min_face,
                                   min_confidence=min_confidence, tilted_faces=tilted_faces is not False)
        clips = video_outputs.segment_videos(videos, segmenter, overlay, faces_json, frames, skip)
    return {"images": written, "faces": faces, "no_face": no_face + clips["no_face"], "failed": failed,
            "seconds": seconds, "images_per_second": written / seconds if seconds > 0 else 0.0, "out": f"{out}/",
            "precision": precision_line(str(model_dir), precision, tta),
            "videos": clips["videos"], "frames": clips["frames"], "tracks": clips["tracks"],
            "frames_per_second": clips["frames"] / clips["seconds"] if clips["seconds"] > 0 else 0.0}


def photos_and_videos(jobs, whole_image, photo_only_flags, skip, log):
    """(photo jobs, video jobs): videos are skipped with --whole-image, which finds no faces to track."""
    videos = [job for job in jobs if video_files.is_video(job.source)]
    jobs = [job for job in jobs if not video_files.is_video(job.source)]
    if whole_image:
        for job in videos:
            skip(job.source, "a video's faces are found and tracked, and --whole-image finds none: "
                             "segment it without --whole-image")
        videos = []
    if videos and photo_only_flags:
        log("note: --prob and --crops concern photos; videos get their mask, --overlay, --json and --frames")
    return jobs, videos


def check_settings(threshold, min_confidence, min_face, batch_size, whole_image, about_faces):
    """UsageError for a setting segment() cannot run with; `about_faces`: (flag, given) of the options
    that concern the faces found, which --whole-image does not look for."""
    if not 0.0 <= threshold <= 1.0:
        raise UsageError(f"--threshold {threshold} is not a probability: pass a value from 0 to 1")
    if not 0.0 <= min_confidence <= 1.0:
        raise UsageError(f"--min-confidence {min_confidence} is not a probability: pass a value from 0 to 1")
    if min_face < face_detection.SMALLEST_FACE:
        raise UsageError(f"--min-face {min_face} is below what MTCNN can find: "
                         f"pass at least {face_detection.SMALLEST_FACE} pixels")
    if batch_size < 1:
        raise UsageError(f"--batch-size {batch_size} must be at least 1")
    about_faces = [flag for flag, given in about_faces if given]
    if whole_image and about_faces:
        raise UsageError(f"{' and '.join(about_faces)} concern{'s' if len(about_faces) == 1 else ''} the faces found, "
                         "and --whole-image finds none: drop one")


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


if __name__ == "__main__":
    sys.exit(main())
