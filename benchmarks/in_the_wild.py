"""How well and how fast infer.py segments faces in ordinary photos, not LFW crops.

Scenes are built from the test split (never seen in training): each picture is scaled to a random
side of at least --min-side pixels, tilted by up to --max-tilt degrees and placed on a synthetic
background without faces, two pictures per scene, alternately 640x480 and 800x600; its face mask is
moved the same way. Face IoU of the scene masks, mean over scenes with a 95% bootstrap interval over
the scenes (runs/bootstrap.py), for:

    default       infer's pipeline: detect, align to the template, segment, paste back
    whole_image   infer --whole-image: the scene resized to the model's input
    exact         each picture segmented at its original LFW framing, its probabilities moved like
                  the picture: the best any framing can do with this model

over every scene, and over the scenes made only of single-face pictures (single_face: the picture's
face label is one region; the filter reads the labels only, never the detector under test). LFW
labels only the central person, so a person behind who is found and segmented counts as an error in
both figures. As face_iou_all_found, the default and exact means over the scenes where every face
was found, which separates what missed faces cost from what the framing of found ones costs.

Then the LFW-framed test pictures themselves through the default mode, --whole-image, and the default
mode keeping only the central face (pixel accuracy against the face masks, all pictures and the
single-face ones), and photos/s of `infer.segment` on a folder of 640x480 two-face scenes (JPEG) in
both modes, model loading and a warm-up folder excluded: --speed-rounds rounds, the two modes in turn in
each, reported as the median (min-max) of the rounds; the speed target counts as met only if the slowest
round meets it. Every mode runs at one --precision (default fp32, so that figures from CPUs with and
without native bf16 compare).
Prints one JSON line, then a markdown table.

    python benchmarks/in_the_wild.py                       # 200 scenes, the whole test split, 60 photos for speed
    python benchmarks/in_the_wild.py --split validation    # for choosing detection or framing settings
    python benchmarks/in_the_wild.py --split validation --pnet-threshold 0.6 --rnet-threshold 0.7 --zoom 1
    python benchmarks/in_the_wild.py --split validation --scenes 1000 --turned-confidence 0.9
    python benchmarks/in_the_wild.py --scenes 1000 --no-tilted-faces   # infer.py --no-tilted-faces
    python benchmarks/in_the_wild.py --pictures 8 --scenes 2 --speed-photos 2 --speed-rounds 1   # a smoke run

Settings are chosen on the validation split, so that the test split's figures stay an honest estimate.
"""
import argparse
import contextlib
import json
import os
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import quiet_tensorflow  # noqa: E402,F401  (before TensorFlow: it starts without its C++ start-up lines)
from faces import face_alignment  # noqa: E402
from faces import face_detection  # noqa: E402
from faces import face_template  # noqa: E402
import infer  # noqa: E402
from runs import bootstrap  # noqa: E402
from runs.config import PRECISIONS  # noqa: E402
from bench import spread, spread_cell  # noqa: E402

SCENE_SIZES = ((480, 640), (600, 800))  # (height, width)
FACES_PER_SCENE = 2
MAX_SIDE = 320
MODES = ("default", "whole_image", "exact")
# A label region smaller than this share of the picture is ringing of the label's JPEG, not a region.
MIN_REGION = 0.001
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
    flag("--speed-photos", type=int, default=60, help="640x480 scenes timed per mode and round (default: 60)")
    flag("--speed-rounds", type=int, default=3,
         help="timed rounds, both modes in turn in each; photos/s is their median (min-max) (default: 3)")
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
    flag("--precision", default="fp32", choices=PRECISIONS,
         help="precision of every mode, exact framing included (default: fp32, comparable across CPUs; "
              "auto: bf16 where the CPU has it natively)")
    flag("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.speed_photos < 1 or args.speed_rounds < 1:
        parser.error("--speed-photos and --speed-rounds take a whole number of at least 1")
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
    if len(names) < FACES_PER_SCENE:
        raise SystemExit(f"error: fewer than {FACES_PER_SCENE} {args.split} pictures in {model_dir}/split.json")
    rng = np.random.default_rng(args.seed)
    pictures = {name: read_pair(data, name) for name in names}
    single = [name for name, (_, mask) in pictures.items() if single_face(mask)]

    forward = infer.loaded_model(str(model_dir), args.precision, args.tta)[0]
    ious = {mode: [] for mode in MODES}
    found = placed = 0
    extra = {"elsewhere": 0, "on_pictures": 0}
    all_found, single_scenes = [], []
    for index in range(args.scenes):
        scene, truth, placements = make_scene(rng, SCENE_SIZES[index % 2], pictures, names, args)
        scene_ious, hits, scene_extra = score_scene(scene, truth, placements, forward, pictures, model_dir, args)
        for mode, value in scene_ious.items():
            ious[mode].append(value)
        found, placed = found + sum(hits), placed + len(hits)
        extra = {where: extra[where] + scene_extra[where] for where in extra}
        all_found.append(all(hits))
        single_scenes.append(all(name in single for name, _ in placements))

    accuracy = {mode: lfw_accuracy(pictures, names, model_dir, mode, args)
                for mode in ("default", "whole_image", "central")}
    speed = {mode: spread(rates) for mode, rates in photo_rates(rng, pictures, names, args, model_dir).items()}

    ious = {mode: np.array(values) for mode, values in ious.items()}
    every = iou_summary(ious, np.ones(args.scenes, bool))
    # A missed face scores no overlap in its scene: the same means over the scenes where every face was
    # found separate what detection misses cost from what framing found faces costs.
    all_found = np.array(all_found, bool)
    when_found = {mode: float(ious[mode][all_found].mean()) if all_found.any() else None
                  for mode in ("default", "exact")}
    result = {
        "scenes": args.scenes, "split": args.split, "single_face_pictures": len(single), "pictures": len(names),
        "face_iou": {mode: every[mode] for mode in MODES}, "face_iou_ci95": every["ci95"],
        "face_iou_single_face": iou_summary(ious, np.array(single_scenes, bool)),
        "face_iou_all_found": {"scenes": int(all_found.sum()), **when_found},
        "faces_found": found, "faces_placed": placed, "extra_detections": extra["elsewhere"],
        "extra_detections_on_pictures": extra["on_pictures"],
        "lfw_pixel_accuracy": {mode: pooled(by_picture, names) for mode, by_picture in accuracy.items()},
        "lfw_pixel_accuracy_single_face": {mode: pooled(by_picture, single) for mode, by_picture in accuracy.items()},
        "photos_per_second_640x480": speed, "speed_rounds": args.speed_rounds, "speed_photos": args.speed_photos,
        "intervals": {"level": bootstrap.LEVEL, "unit": "scene", "resamples": bootstrap.RESAMPLES,
                      "seed": bootstrap.SEED},
        "settings": {"min_side": args.min_side, "max_side": MAX_SIDE, "max_tilt": args.max_tilt, "seed": args.seed,
                     "model_dir": str(args.model_dir), "zoom": face_alignment.ZOOM, "tta": args.tta,
                     "precision": args.precision, "tilted_faces": args.tilted_faces,
                     "turned_confidence": face_detection.TURNED_CONFIDENCE,
                     "pnet_threshold": face_detection.PNET_THRESHOLD, "rnet_threshold": face_detection.RNET_THRESHOLD,
                     "cpus": os.cpu_count(), "load_average": os.getloadavg()[0]},
    }
    result["targets"] = targets(result)
    print(json.dumps(result))
    print(table(result))
    return 0


def score_scene(scene, truth, placements, forward, pictures, model_dir, args):
    """({mode: face IoU} of one scene, whether each placed picture's face was found, and the detections
    beyond those: on no placed picture, and more than one on a placed picture (a person behind, whom
    LFW leaves unlabelled, or the same face found twice))."""
    mask, faces = infer.segment_faces(scene, model_dir, tta=args.tta, precision=args.precision,
                                      tilted_faces=args.tilted_faces)
    whole = infer.segment_faces(scene, model_dir, tta=args.tta, precision=args.precision, whole_image=True)[0]
    ious = {"default": iou(mask > 0, truth), "whole_image": iou(whole > 0, truth),
            "exact": iou(exact_mask(forward, pictures, placements, scene.shape[:2]), truth)}
    on_picture = [int(sum(inside(face, placement) for face in faces)) for placement in placements]
    elsewhere = sum(not any(inside(face, placement) for placement in placements) for face in faces)
    return ious, [count > 0 for count in on_picture], {"elsewhere": elsewhere,
                                                      "on_pictures": sum(max(0, count - 1) for count in on_picture)}


def iou_summary(ious, keep):
    """Mean face IoU of each mode over the scenes `keep`, their number, and 95% intervals over those
    scenes of each mean and of the gap exact - default (the same scenes, so the gap's interval is
    narrower than the two means' intervals suggest)."""
    rows = np.stack([ious[mode][keep] for mode in MODES], axis=1)  # [scene, mode]
    statistics = {mode: lambda drawn, i=i: drawn[:, i].mean() for i, mode in enumerate(MODES)}
    statistics["exact_minus_default"] = lambda drawn: (drawn[:, MODES.index("exact")]
                                                       - drawn[:, MODES.index("default")]).mean()
    drawn = bootstrap.intervals(rows, statistics)
    return {"scenes": int(keep.sum()),
            **{mode: float(rows[:, i].mean()) if len(rows) else None for i, mode in enumerate(MODES)},
            "ci95": {name: bounds and list(bounds) for name, bounds in drawn.items()}}


def targets(result):
    """{target: met}. The face IoU ones count as met only beyond their 95% interval over scenes, the speed
    one only on the slowest round."""
    ci, accuracy, speed = result["face_iou_ci95"], result["lfw_pixel_accuracy"], result["photos_per_second_640x480"]
    return {
        f"default face IoU >= {TARGETS['default_face_iou']} (95% CI low end, all scenes)":
            bool(ci["default"][0] >= TARGETS["default_face_iou"]),
        f"exact - default <= {TARGETS['gap_to_exact']} (95% CI high end, all scenes)":
            bool(ci["exact_minus_default"][1] <= TARGETS["gap_to_exact"]),
        f"lfw accuracy drop <= {TARGETS['lfw_accuracy_drop_points']} points":
            bool(100 * (accuracy["whole_image"] - accuracy["default"]) <= TARGETS["lfw_accuracy_drop_points"]),
        f"default photos/s >= {TARGETS['photos_per_second']:g} (slowest round)":
            bool(speed["default"]["min"] >= TARGETS["photos_per_second"]),
    }


def read_pair(data, name):
    image = cv2.imread(str(data / "inputs" / f"{name}.jpg"), cv2.IMREAD_GRAYSCALE)
    mask = cv2.imread(str(data / "targets_face_only" / f"{name}.jpg"), cv2.IMREAD_GRAYSCALE)
    if image is None or mask is None:
        raise SystemExit(f"error: cannot read {name}.jpg in {data}/inputs and targets_face_only; rebuild the data")
    return image, mask > 127


def single_face(mask):
    """Whether the picture's face label is one region (8-connected, specks under MIN_REGION of the
    picture aside): no part of the face cut off by a hand or a microphone, no neck or ear labelled
    apart. Read from the labels only, so the filter does not depend on the detector under test; it
    cannot see a person behind, whom LFW leaves unlabelled."""
    _, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    return int(np.count_nonzero(stats[1:, cv2.CC_STAT_AREA] >= MIN_REGION * mask.size)) == 1


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


def lfw_accuracy(pictures, names, model_dir, mode, args):
    """{name: (right pixels, pixels)} of the face masks of LFW-framed pictures. Mode "central" is the
    default mode keeping only the face nearest the picture's centre: LFW labels no one else, so a
    person behind, found and segmented, counts as an error in "default"."""
    counts = {}
    for name in names:
        image, truth = pictures[name]
        mask, faces = infer.segment_faces(image, model_dir, tta=args.tta, precision=args.precision,
                                          whole_image=mode == "whole_image",
                                          tilted_faces=args.tilted_faces and mode != "whole_image")
        if mode == "central":
            central = [face_template.central_face(faces, *image.shape[:2])] if faces else []
            mask = face_alignment.combine(image.shape, 1, [face.pasted for face in central])[..., 0] >= 0.5
        counts[name] = (np.count_nonzero((mask > 0) == truth), truth.size)
    return counts


def pooled(counts, names):
    """Pixel accuracy over the pictures `names` of lfw_accuracy's counts (None for no pictures)."""
    right, total = np.sum([counts[name] for name in names], axis=0) if names else (0, 0)
    return float(right / total) if total else None


def photo_rates(rng, pictures, names, args, model_dir):
    """{mode: [photos/s of each round]}: infer.segment's own rate on one folder of 640x480 two-face JPEG
    scenes, default and whole_image in turn in each of --speed-rounds rounds, after a warm-up folder each."""
    modes = {"default": False, "whole_image": True}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for kind, count in (("warmup", 2), ("timed", args.speed_photos)):
            (folder / kind).mkdir()
            for index in range(count):
                scene, _, _ = make_scene(rng, SCENE_SIZES[0], pictures, names, args)
                cv2.imwrite(str(folder / kind / f"{index:04d}.jpg"), scene)

        def rate(kind, mode, run):
            summary = infer.segment([folder / kind], model_dir, folder / f"out_{kind}_{mode}_{run}",
                                    whole_image=modes[mode], tta=args.tta, precision=args.precision,
                                    log=lambda message: None, tilted_faces=args.tilted_faces and not modes[mode])
            return summary["images_per_second"]

        for mode in modes:
            rate("warmup", mode, 0)
        rates = {mode: [] for mode in modes}
        for run in range(args.speed_rounds):
            for mode in modes:
                rates[mode].append(rate("timed", mode, run))
        return rates


def with_interval(value, bounds):
    return "-" if value is None else f"{value:.3f} ({bounds[0]:.3f}-{bounds[1]:.3f})"


def percent(value):
    return "-" if value is None else f"{100 * value:.2f}%"


def table(result):
    every, ci, single = result["face_iou"], result["face_iou_ci95"], result["face_iou_single_face"]
    acc, acc_single = result["lfw_pixel_accuracy"], result["lfw_pixel_accuracy_single_face"]
    speed, split = result["photos_per_second_640x480"], result["split"]
    rows = [
        "| | default (detect + align) | --whole-image | exact LFW framing | default, central face only |",
        "|---|---|---|---|---|",
        f"| face IoU (95% CI), all {result['scenes']} scenes of 2 {split} faces | "
        + " | ".join(with_interval(every[mode], ci[mode]) for mode in MODES) + " | |",
        f"| face IoU (95% CI), the {single['scenes']} scenes of single-face pictures | "
        + " | ".join(with_interval(single[mode], single["ci95"][mode]) for mode in MODES) + " | |",
        f"| pixel accuracy, all {result['pictures']} LFW-framed {split} pictures "
        f"| {percent(acc['default'])} | {percent(acc['whole_image'])} | | {percent(acc['central'])} |",
        f"| pixel accuracy, the {result['single_face_pictures']} single-face pictures "
        f"| {percent(acc_single['default'])} | {percent(acc_single['whole_image'])} | "
        f"| {percent(acc_single['central'])} |",
        f"| photos/s, 640x480 scenes with 2 faces: median (min-max) of {result['speed_rounds']} rounds "
        f"| {spread_cell(speed['default'])} | {spread_cell(speed['whole_image'])} | | |",
    ]
    when_found = result["face_iou_all_found"]
    found_line = (f" Over the {when_found['scenes']} scenes where every face was found, face IoU "
                  f"{when_found['default']:.3f} default and {when_found['exact']:.3f} at exact framing."
                  if when_found["scenes"] else "")
    gap = ci["exact_minus_default"]
    settings = result["settings"]
    tilted = "" if settings["tilted_faces"] else " (default mode with --no-tilted-faces)"
    notes = (f"\nFaces found{tilted}: {result['faces_found']} of {result['faces_placed']} placed, "
             f"{result['extra_detections']} detections elsewhere, {result['extra_detections_on_pictures']} "
             f"beyond the first on a placed picture (a person behind, unlabelled).{found_line} Exact - default "
             f"face IoU, all scenes: 95% CI {gap[0]:.3f} to {gap[1]:.3f}. Intervals: bootstrap over scenes "
             f"({result['intervals']['resamples']} resamples). Single-face pictures (single_face): "
             f"{result['single_face_pictures']} of {result['pictures']} {split} pictures whose face label is one "
             f"region, read from the labels, not the detector. Every mode ran at {settings['precision']}, "
             f"test-time augmentation {settings['tta']}. Load average at the end: {settings['load_average']:.1f} "
             f"on {settings['cpus']} CPUs.\n\n"
             + "\n".join(f"- {target}: {'met' if met else 'NOT met'}" for target, met in result["targets"].items()))
    return "\n".join(rows) + notes


if __name__ == "__main__":
    sys.exit(main())
