"""How well and how fast infer.py segments faces in ordinary photos, not LFW crops.

Scenes are built from the test split (never seen in training): each test picture in which MTCNN finds
exactly one face, and infer's detector never a second one when the picture is enlarged and tilted as
scenes show it (LFW labels only the central person, so people behind would count as errors), is
scaled to a random side of at least --min-side pixels, tilted by up to --max-tilt degrees and placed
on a synthetic background without faces, two pictures per scene, alternately 640x480 and 800x600;
its face mask is moved the same way. Face IoU of the scene masks, mean over scenes, for:

    default       infer's pipeline: detect, align to the template, segment, paste back
    whole_image   infer --whole-image: the scene resized to the model's input
    exact         each picture segmented at its original LFW framing, its probabilities moved like
                  the picture: the best any framing can do with this model

and, as face_iou_all_found, the default and exact means over only the scenes where every face was
found, which separates what missed faces cost from what the framing of found ones costs.

Then the LFW-framed test pictures themselves through the default mode, --whole-image, and the default
mode keeping only the central face (pixel accuracy against the face masks), and photos/s of
`infer.segment` on a folder of 640x480 two-face scenes (JPEG) in both modes, model loading and the
first photos' warm-up excluded.
Prints one JSON line, then a markdown table.

    python benchmarks/in_the_wild.py                       # 200 scenes, the whole test split, 60 photos for speed
    python benchmarks/in_the_wild.py --split validation    # for choosing detection or framing settings
    python benchmarks/in_the_wild.py --split validation --pnet-threshold 0.6 --rnet-threshold 0.7 --zoom 1
    python benchmarks/in_the_wild.py --split validation --scenes 1000 --turned-confidence 0.9
    python benchmarks/in_the_wild.py --scenes 1000 --no-tilted-faces   # infer.py --no-tilted-faces
    python benchmarks/in_the_wild.py --pictures 8 --scenes 2 --speed-photos 2     # a smoke run

Settings are chosen on the validation split, so that the test split's figures stay an honest estimate.
"""
import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import quiet_tensorflow  # noqa: E402,F401  (before TensorFlow: it starts without its C++ start-up lines)
import face_alignment  # noqa: E402
import face_detection  # noqa: E402
import face_template  # noqa: E402
import infer  # noqa: E402

SCENE_SIZES = ((480, 640), (600, 800))  # (height, width)
FACES_PER_SCENE = 2
MAX_SIDE = 320
CHECK_TILT = 20.0  # degrees either way a picture is turned when searched for a second face (single_face)
TARGETS = {"default_face_iou": 0.88, "gap_to_exact": 0.01, "lfw_accuracy_drop_points": 0.3, "photos_per_second": 5.0}


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Face IoU and speed of infer.py on scenes made from the test split.")
    flag = parser.add_argument
    flag("--model-dir", default=str(ROOT / "pretrained"), help="model and its split.json (default: pretrained/)")
    flag("--data", default=str(ROOT / "data128_128"), help="data folder (default: data128_128/)")
    flag("--split", default="test", choices=("test", "validation"),
         help="pictures of this split of the model's split.json (default: test)")
    flag("--scenes", type=int, default=200, help="scenes for the face IoU (default: 200)")
    flag("--pictures", type=int, default=None, help="use only the first N pictures of the split (default: all)")
    flag("--speed-photos", type=int, default=60, help="640x480 scenes timed per mode (default: 60)")
    flag("--min-side", type=int, default=160, help="smallest side of a placed picture, pixels (default: 160)")
    flag("--max-tilt", type=float, default=30.0, help="largest tilt, degrees (default: 30)")
    flag("--zoom", type=float, default=None,
         help=f"frame faces this much larger than the template (default: face_alignment.ZOOM, {face_alignment.ZOOM})")
    flag("--pnet-threshold", type=float, default=None,
         help=f"MTCNN's first stage threshold (default: face_detection.PNET_THRESHOLD, {face_detection.PNET_THRESHOLD})")
    flag("--rnet-threshold", type=float, default=None,
         help=f"MTCNN's second stage threshold (default: face_detection.RNET_THRESHOLD, {face_detection.RNET_THRESHOLD})")
    flag("--tilted-faces", action=argparse.BooleanOptionalAction, default=True,
         help="the default mode also searches each photo turned by -25 and +25 degrees, as infer.py does "
              "(default: on; --no-tilted-faces as infer.py --no-tilted-faces)")
    flag("--turned-confidence", type=float, default=None,
         help="the confidence a face found turned needs "
              f"(default: face_detection.TURNED_CONFIDENCE, {face_detection.TURNED_CONFIDENCE})")
    flag("--tta", default="none", choices=("none", "flip"),
         help="test-time augmentation of every mode, exact framing included (default: none, infer.py's default)")
    flag("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.turned_confidence is not None and not args.tilted_faces:
        parser.error("--turned-confidence applies to the turned search: drop --no-tilted-faces")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with settings_of(args):
        return measure(args)


@contextlib.contextmanager
def settings_of(args):
    """face_alignment.ZOOM and face_detection's thresholds set from `args` (those given), then restored."""
    given = {(face_alignment, "ZOOM"): args.zoom, (face_detection, "PNET_THRESHOLD"): args.pnet_threshold,
             (face_detection, "RNET_THRESHOLD"): args.rnet_threshold,
             (face_detection, "TURNED_CONFIDENCE"): args.turned_confidence}
    saved = {(module, name): getattr(module, name) for module, name in given}
    try:
        for (module, name), value in given.items():
            if value is not None:
                setattr(module, name, value)
        yield
    finally:
        for (module, name), value in saved.items():
            setattr(module, name, value)


def measure(args):
    model_dir, data = Path(args.model_dir), Path(args.data)
    if not (data / "inputs").is_dir():
        raise SystemExit(f"error: {data}/inputs does not exist; prepare the data (python prepare_data.py)")
    names = json.loads((model_dir / "split.json").read_text())[args.split][:args.pictures]
    rng = np.random.default_rng(args.seed)
    pictures = {name: read_pair(data, name) for name in names}
    single = [name for name, (image, _) in pictures.items() if single_face(image, args)]
    if len(single) < FACES_PER_SCENE:
        raise SystemExit(f"error: fewer than {FACES_PER_SCENE} single-face pictures in {data}; is it the LFW data?")

    forward, size, _ = infer.loaded_model(str(model_dir), "fp32", args.tta)
    ious = {"default": [], "whole_image": [], "exact": []}
    found = placed = extra = 0
    all_found = []
    for index in range(args.scenes):
        scene, truth, placements = make_scene(rng, SCENE_SIZES[index % 2], pictures, single, args)
        mask, faces = infer.segment_faces(scene, model_dir, tta=args.tta, tilted_faces=args.tilted_faces)
        ious["default"].append(iou(mask > 0, truth))
        whole = infer.segment_faces(scene, model_dir, tta=args.tta, whole_image=True)[0]
        ious["whole_image"].append(iou(whole > 0, truth))
        ious["exact"].append(iou(exact_mask(forward, pictures, placements, scene.shape[:2]), truth))
        hits = [any(inside(face, placement) for face in faces) for placement in placements]
        found, placed = found + sum(hits), placed + len(hits)
        all_found.append(all(hits))
        extra += sum(not any(inside(face, placement) for placement in placements) for face in faces)

    accuracy = {mode: lfw_accuracy(pictures, names, model_dir, mode, args.tta, args.tilted_faces)
                for mode in ("default", "whole_image", "central")}
    speed = {mode: photos_per_second(rng, pictures, single, args, model_dir, mode == "whole_image")
             for mode in ("default", "whole_image")}

    mean = {mode: float(np.mean(values)) for mode, values in ious.items()}
    # A missed face scores no overlap in its scene: the same means over the scenes where every face was
    # found separate what detection misses cost from what framing found faces costs.
    when_found = {mode: float(np.mean(np.array(values)[all_found])) if any(all_found) else None
                  for mode, values in ious.items() if mode != "whole_image"}
    result = {
        "scenes": args.scenes, "split": args.split, "single_face_pictures": len(single), "pictures": len(names),
        "face_iou": mean, "face_iou_all_found": {"scenes": sum(all_found), **when_found},
        "faces_found": found, "faces_placed": placed, "extra_detections": extra,
        "lfw_pixel_accuracy": accuracy, "photos_per_second_640x480": speed,
        "settings": {"min_side": args.min_side, "max_side": MAX_SIDE, "max_tilt": args.max_tilt, "seed": args.seed,
                     "model_dir": str(args.model_dir), "zoom": face_alignment.ZOOM, "tta": args.tta,
                     "tilted_faces": args.tilted_faces, "turned_confidence": face_detection.TURNED_CONFIDENCE,
                     "pnet_threshold": face_detection.PNET_THRESHOLD, "rnet_threshold": face_detection.RNET_THRESHOLD,
                     "cpus": os.cpu_count(),
                     "load_average": os.getloadavg()[0]},
    }
    result["targets"] = {
        "default_face_iou >= 0.88": bool(mean["default"] >= TARGETS["default_face_iou"]),
        "exact - default <= 0.01": bool(mean["exact"] - mean["default"] <= TARGETS["gap_to_exact"]),
        "lfw accuracy drop <= 0.3 points":
            bool(100 * (accuracy["whole_image"] - accuracy["default"]) <= TARGETS["lfw_accuracy_drop_points"]),
        "default photos/s >= 5": bool(speed["default"] >= TARGETS["photos_per_second"]),
    }
    print(json.dumps(result))
    print(table(result))
    return 0


def read_pair(data, name):
    image = cv2.imread(str(data / "inputs" / f"{name}.jpg"), cv2.IMREAD_GRAYSCALE)
    mask = cv2.imread(str(data / "targets_face_only" / f"{name}.jpg"), cv2.IMREAD_GRAYSCALE)
    if image is None or mask is None:
        raise SystemExit(f"error: cannot read {name}.jpg in {data}/inputs and targets_face_only; rebuild the data")
    return image, mask > 127


def single_face(image, args):
    """Whether MTCNN finds one face in the picture as LFW frames it, and infer's detector never more than
    one as scenes show it: at the smallest, middle and largest side, upright and tilted by CHECK_TILT
    either way, on a plain canvas. LFW labels only the central person; a person behind, small or cut
    by the picture's edge at 128 pixels, is often found once the picture is enlarged and would count
    as an error. A picture in which infer's detector finds no face stays: its misses count."""
    if len(face_detection.detect_faces(image, min_face=face_detection.MTCNN_MIN_FACE)) != 1:
        return False
    largest = max(args.min_side, MAX_SIDE)
    tilt = min(CHECK_TILT, args.max_tilt)
    return all(len(face_detection.detect_faces(shown(image, side, angle))) <= 1
               for side in (args.min_side, (args.min_side + largest) / 2, largest) for angle in (0.0, -tilt, tilt))


def shown(image, side, angle):
    """The picture scaled to `side`, turned by `angle` degrees, in the middle of a plain gray canvas."""
    canvas = round(side * 1.8)
    transform = placement_transform(image.shape, side, angle, ((canvas - 1) / 2, (canvas - 1) / 2))
    cover = cv2.warpAffine(np.ones(image.shape, np.float32), transform, (canvas, canvas)) > 0.5
    turned = cv2.warpAffine(image, transform, (canvas, canvas), flags=cv2.INTER_LINEAR)
    return np.where(cover, turned, 120).astype(np.uint8)


def background(rng, shape):
    """Faceless clutter: smooth shading at a few scales, some flat shapes, sensor noise."""
    height, width = shape
    image = np.zeros(shape, np.float32)
    for cells, weight in ((3, 60), (12, 25), (48, 10)):
        field = rng.normal(0, 1, (cells, cells * width // height)).astype(np.float32)
        image += weight * cv2.resize(field, (width, height), interpolation=cv2.INTER_CUBIC)
    image += 120
    for _ in range(rng.integers(3, 8)):
        centre = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        axes = (int(rng.integers(10, width // 4)), int(rng.integers(10, height // 4)))
        cv2.ellipse(image, centre, axes, float(rng.uniform(0, 180)), 0, 360, float(rng.uniform(0, 255)), -1)
    image += rng.normal(0, 4, shape)
    return np.clip(image, 0, 255).astype(np.uint8)


def make_scene(rng, shape, pictures, names, args):
    """(BGR scene, face mask, [(name, transform picture -> scene)]): FACES_PER_SCENE pictures inside
    the scene whose tilted squares do not overlap."""
    height, width = shape
    for _ in range(1000):
        covers, placements = [], []
        for name in rng.choice(names, FACES_PER_SCENE, replace=False):
            side = rng.uniform(args.min_side, max(args.min_side, min(MAX_SIDE, min(shape) / 1.5)))
            angle = rng.uniform(-args.max_tilt, args.max_tilt)
            reach = side * (abs(np.cos(np.radians(angle))) + abs(np.sin(np.radians(angle)))) / 2
            if 2 * reach > min(shape):
                break
            centre = (rng.uniform(reach, width - reach), rng.uniform(reach, height - reach))
            transform = placement_transform(pictures[name][0].shape, side, angle, centre)
            cover = cv2.warpAffine(np.ones(pictures[name][0].shape, np.float32), transform, (width, height)) > 0.5
            if any((cover & other).any() for other in covers):
                break
            covers.append(cover)
            placements.append((name, transform))
        if len(placements) == FACES_PER_SCENE:
            break
    else:
        raise SystemExit(f"error: {FACES_PER_SCENE} pictures of side >= {args.min_side} do not fit {width}x{height}")
    scene = background(rng, shape)
    truth = np.zeros(shape, bool)
    for (name, transform), cover in zip(placements, covers):
        image, mask = pictures[name]
        scene = np.where(cover, cv2.warpAffine(image, transform, (width, height), flags=cv2.INTER_LINEAR), scene)
        moved = cv2.warpAffine(mask.astype(np.float32), transform, (width, height), flags=cv2.INTER_LINEAR)
        truth |= moved >= 0.5
    return cv2.cvtColor(scene, cv2.COLOR_GRAY2BGR), truth, placements


def placement_transform(picture_shape, side, angle, centre):
    """Picture pixels -> scene pixels: scaled to `side`, turned by `angle` degrees, centred on `centre`."""
    height, width = picture_shape
    transform = cv2.getRotationMatrix2D(((width - 1) / 2, (height - 1) / 2), angle, side / width)
    transform[:, 2] += np.array(centre) - np.array([(width - 1) / 2, (height - 1) / 2])
    return transform


def exact_mask(forward, pictures, placements, shape):
    """The scene's mask when each picture is segmented at its own framing and its probabilities are moved."""
    probability = np.zeros(shape, np.float32)
    for name, transform in placements:
        probs = forward(pictures[name][0][None, ..., None]).numpy()[0, ..., 0]
        moved = cv2.warpAffine(probs, transform, shape[::-1], flags=cv2.INTER_LINEAR)
        probability = np.maximum(probability, moved)
    return probability >= 0.5


def iou(prediction, truth):
    union = np.count_nonzero(prediction | truth)
    return np.count_nonzero(prediction & truth) / union if union else 1.0


def inside(face, placement):
    """Whether a detection's box centre lies on a placed picture."""
    _, transform = placement
    u, v = cv2.invertAffineTransform(transform) @ [*face.centre, 1]
    return 0 <= u < 128 and 0 <= v < 128


def lfw_accuracy(pictures, names, model_dir, mode, tta, tilted_faces):
    """Pixel accuracy of the face masks of LFW-framed test pictures. Mode "central" is the default mode
    keeping only the face nearest the picture's centre: LFW labels no one else, so a person behind,
    found and segmented, counts as an error in "default"."""
    correct = total = 0
    for name in names:
        image, truth = pictures[name]
        mask, faces = infer.segment_faces(image, model_dir, tta=tta, whole_image=mode == "whole_image",
                                          tilted_faces=tilted_faces and mode != "whole_image")
        if mode == "central":
            central = [face_template.central_face(faces, *image.shape[:2])] if faces else []
            mask = face_alignment.combine(image.shape, 1, [face.pasted for face in central])[..., 0] >= 0.5
        correct += np.count_nonzero((mask > 0) == truth)
        total += truth.size
    return correct / total


def photos_per_second(rng, pictures, single, args, model_dir, whole_image):
    """infer.segment's own rate on a folder of 640x480 two-face JPEG scenes, after a warm-up folder."""
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for kind, count in (("warmup", 2), ("timed", args.speed_photos)):
            (folder / kind).mkdir()
            for index in range(count):
                scene, _, _ = make_scene(rng, SCENE_SIZES[0], pictures, single, args)
                cv2.imwrite(str(folder / kind / f"{index:04d}.jpg"), scene)
        rates = []
        for kind in ("warmup", "timed"):
            summary = infer.segment([folder / kind], model_dir, folder / f"out_{kind}", whole_image=whole_image,
                                    tta=args.tta, log=lambda message: None,
                                    tilted_faces=args.tilted_faces and not whole_image)
            rates.append(summary["images_per_second"])
    return rates[-1]


def table(result):
    iou_, acc, speed = result["face_iou"], result["lfw_pixel_accuracy"], result["photos_per_second_640x480"]
    rows = [
        "| | default (detect + align) | --whole-image | exact LFW framing | default, central face only |",
        "|---|---|---|---|---|",
        f"| face IoU, {result['scenes']} scenes of 2 {result['split']} faces "
        f"| {iou_['default']:.3f} | {iou_['whole_image']:.3f} | {iou_['exact']:.3f} | |",
        f"| pixel accuracy, {result['pictures']} LFW-framed {result['split']} pictures "
        f"| {100 * acc['default']:.2f}% | {100 * acc['whole_image']:.2f}% | | {100 * acc['central']:.2f}% |",
        f"| photos/s, 640x480 scenes with 2 faces | {speed['default']:.1f} | {speed['whole_image']:.1f} | | |",
    ]
    when_found = result["face_iou_all_found"]
    found_line = (f" Over the {when_found['scenes']} scenes where every face was found, face IoU "
                  f"{when_found['default']:.3f} default and {when_found['exact']:.3f} at exact framing."
                  if when_found["scenes"] else "")
    tilted = "" if result["settings"]["tilted_faces"] else " (default mode with --no-tilted-faces)"
    notes = (f"\nFaces found{tilted}: {result['faces_found']} of {result['faces_placed']} placed, "
             f"{result['extra_detections']} detections elsewhere.{found_line} Scenes use the "
             f"{result['single_face_pictures']} of {result['pictures']} {result['split']} pictures with exactly "
             f"one face (single_face). Load average at the end: {result['settings']['load_average']:.1f} "
             f"on {result['settings']['cpus']} CPUs.\n\n"
             + "\n".join(f"- {target}: {'met' if met else 'NOT met'}" for target, met in result["targets"].items()))
    return "\n".join(rows) + notes


if __name__ == "__main__":
    sys.exit(main())
