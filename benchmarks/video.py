"""Video mode against photo mode on clips made from the test split: accuracy, steadiness, speed, tracks.

Each clip is 640x480 at 30 frames/s: one or two pictures of the split (never seen in training), on a
still background without faces (in_the_wild.background), move along smooth random paths, growing,
shrinking and tilting up to --max-tilt degrees; in every clip the first picture leaves the frame by
its side and comes back. The clip is written as an mp4v MPEG-4 file and read back, and the same
decoded frames go through

    video   infer.VideoSegmenter: a full search every DETECT_EVERY frames, faces followed in between
            (faces/tracking.py), landmarks smoothed
    photo   infer.segment_faces on each frame alone, as infer.py on a folder of the frames

at one --precision (default fp32). Per mode:

    face IoU      intersection over union of the face masks, pooled over each clip's frames; the mean
                  over clips with a 95% bootstrap interval over clips (and of video - photo, paired)
    flicker       pixels whose predicted label changes from one frame to the next where the true label
                  does not, over the true face pixels
    frames/s      frames over the seconds of the whole clip, its first frame's full search included
                  (each clip is one repeat: the median and min-max over clips beside the pooled figure; the
                  targets count only beyond them, by the slowest clip)
                  (model loading and TensorFlow's tracing excluded: a warm-up clip runs first), over
                  every clip and over the two-face clips
    face-frame flicker
                  the same count in each picture's own 128x128 frame: each frame's mask moved back onto
                  the pictures (their pixels inside the frame in both frames), label changes over the
                  pictures' face pixels. A face's own truth never changes there, so this is the jitter of
                  the framing and the model alone, without the motion of the face
    exact         (for scale) each picture segmented at its own LFW framing and its probabilities moved
                  with it: what a perfect framing gives. Its flicker is what moving faces cost any mode
                  whose errors move with the face; only the rest is jitter that tracking can remove.
    re-found      for each return of the leaving picture (back fully in the frame), the frames until a
                  face is found on it (a face whose box centre lies on the picture)
    track jumps   (video) tracks whose face was on more than one picture

Prints one JSON line, then a markdown table and the targets.

    python benchmarks/video.py                          # 24 clips of 150 frames from the test split
    python benchmarks/video.py --split validation       # for choosing the tracker's settings
    python benchmarks/video.py --split validation --detect-every 10 --beta 1 --segment-every 1
    python benchmarks/video.py --clips 1 --frames 12 --pictures 4   # a smoke run

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
import infer  # noqa: E402
from faces import tracking, video_files, video_segmenter  # noqa: E402
from in_the_wild import background, exact_mask, placement_transform, read_pair  # noqa: E402
from runs import bootstrap, cpu_features  # noqa: E402
from runs.config import PRECISIONS  # noqa: E402

SHAPE = (480, 640)  # (height, width)
FPS = 30.0
MODES = ("video", "photo")
# Side of a placed picture, pixels: LFW's face spans about 40% of it, so faces of 55-100 pixels.
SIDES = (140, 250)
# The leaving picture is away (no pixel in the frame) for this many frames before it comes back.
AWAY_FRAMES = 20
# A picture counts as back once this share of its face label is inside the frame, as gone under GONE.
BACK, GONE = 0.98, 0.0
TARGETS = {"face_iou_gap": 0.01, "flicker_ratio": 0.5, "speed_ratio": 3.0, "frames_per_second": 30.0,
           "refound_frames": 10}


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Video mode against photo mode on clips made from the test split.")
    flag = parser.add_argument
    flag("--model-dir", default=str(ROOT / "pretrained"), help="model and its split.json (default: pretrained/)")
    flag("--data", default=str(ROOT / "data128_128"), help="data folder (default: data128_128/)")
    flag("--split", default="test", choices=("test", "validation"),
         help="pictures of this split of the model's split.json (default: test)")
    flag("--clips", type=int, default=24, help="clips, alternately of two faces and one (default: 24)")
    flag("--frames", type=int, default=150, help="frames per clip, at 30 frames/s (default: 150, 5 s)")
    flag("--pictures", type=int, default=None, help="use only the first N pictures of the split (default: all)")
    flag("--max-tilt", type=float, default=25.0, help="largest tilt, degrees (default: 25)")
    flag("--precision", default="fp32", choices=PRECISIONS, help="precision of both modes (default: fp32)")
    flag("--detect-every", type=int, default=tracking.DETECT_EVERY,
         help=f"frames between full searches (default: tracking.DETECT_EVERY, {tracking.DETECT_EVERY})")
    flag("--follow-confidence", type=float, default=None,
         help=f"ONet confidence under which a track is lost (default: {tracking.FOLLOW_CONFIDENCE})")
    flag("--min-cutoff", type=float, default=None,
         help=f"One Euro cutoff of still landmarks, Hz (default: {tracking.MIN_CUTOFF})")
    flag("--beta", type=float, default=None, help=f"One Euro speed coefficient (default: {tracking.BETA})")
    flag("--turned-every", type=int, default=None,
         help=f"searches between turned ones (default: tracking.TURNED_EVERY, {tracking.TURNED_EVERY})")
    flag("--follow-scale", type=float, default=None,
         help=f"side of ONet's patch over the face's last box (default: {tracking.FOLLOW_SCALE})")
    flag("--segment-every", type=int, default=video_segmenter.SEGMENT_EVERY,
         help=f"frames between model runs (default: video_segmenter.SEGMENT_EVERY, {video_segmenter.SEGMENT_EVERY})")
    flag("--probability-weight", type=float, default=video_segmenter.PROBABILITY_WEIGHT,
         help="weight of the newest probabilities in each track's average "
              f"(default: video_segmenter.PROBABILITY_WEIGHT, {video_segmenter.PROBABILITY_WEIGHT})")
    flag("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.clips < 1 or args.frames < 8 or args.segment_every < 1 or args.detect_every < 1:
        parser.error("--clips, --detect-every and --segment-every take at least 1, --frames at least 8")
    if not 0 < args.probability_weight <= 1:
        parser.error("--probability-weight takes a weight in (0, 1]")
    args.away = AWAY_FRAMES if args.frames >= 4 * AWAY_FRAMES else max(1, args.frames // 4)
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    with settings_of(args):
        result = measure(args)
    print(json.dumps(result))
    print(table(result))
    return 0


@contextlib.contextmanager
def settings_of(args):
    """The tracker's module settings from `args` (those given), then restored."""
    given = {"FOLLOW_CONFIDENCE": args.follow_confidence, "MIN_CUTOFF": args.min_cutoff, "BETA": args.beta,
             "TURNED_EVERY": args.turned_every, "FOLLOW_SCALE": args.follow_scale}
    saved = {name: getattr(tracking, name) for name in given}
    try:
        for name, value in given.items():
            if value is not None:
                setattr(tracking, name, value)
        yield
    finally:
        for name, value in saved.items():
            setattr(tracking, name, value)


def measure(args):
    model_dir, data = Path(args.model_dir), Path(args.data)
    if not (data / "inputs").is_dir():
        raise SystemExit(f"error: {data}/inputs does not exist; prepare the data (python prepare_data.py)")
    names = json.loads((model_dir / "split.json").read_text())[args.split][:args.pictures]
    if len(names) < 2:
        raise SystemExit(f"error: fewer than 2 {args.split} pictures in {model_dir}/split.json")
    pictures = {name: read_pair(data, name) for name in names}
    rng = np.random.default_rng(args.seed)
    segmenter = infer.VideoSegmenter(model_dir, args.precision, detect_every=args.detect_every, fps=FPS,
                                     segment_every=args.segment_every, probability_weight=args.probability_weight)
    warm_up(segmenter, rng, pictures, names, args)
    clips = []
    with tempfile.TemporaryDirectory() as folder:
        for index in range(args.clips):
            clip = make_clip(rng, pictures, names, 2 - index % 2, args)
            frames = decoded(clip["frames"], Path(folder) / f"clip{index}.mp4")
            clips.append(score_clip(clip, frames, segmenter, model_dir, args, pictures))
    return summary(clips, args)


def warm_up(segmenter, rng, pictures, names, args):
    """One short clip through both modes, so TensorFlow's tracing and first calls are not timed."""
    clip = make_clip(rng, pictures, names, 2, args, frames=min(args.frames, 2 * args.detect_every + 1))
    segmenter.reset()
    for frame in clip["frames"]:
        segmenter.step(frame)
        infer.segment_faces(frame, args.model_dir, precision=args.precision)


def decoded(frames, path):
    """The frames as a reader sees them after an mp4v round trip (what both modes are given)."""
    writer = video_files.VideoWriter(path, FPS, frames[0].shape[1::-1])
    for frame in frames:
        writer.write(frame)
    writer.close()
    return list(video_files.VideoReader(path).frames())


def smooth_path(rng, frames, low, high, knots):
    """Values in [low, high] for each frame along a smooth random path: cubic through `knots` random points."""
    at = np.linspace(0, frames - 1, knots)
    values = rng.uniform(low, high, knots)
    # Catmull-Rom through the knots, clamped to the range it was drawn in.
    t = np.arange(frames)
    segment = np.minimum((t / (frames - 1) * (knots - 1)).astype(int), knots - 2)
    u = (t - at[segment]) / (at[1] - at[0])
    padded = np.concatenate([[values[0]], values, [values[-1]]])
    p0, p1, p2, p3 = (padded[segment + k] for k in range(4))
    curve = 0.5 * (2 * p1 + (p2 - p0) * u + (2 * p0 - 5 * p1 + 4 * p2 - p3) * u ** 2
                   + (3 * p1 - p0 - 3 * p2 + p3) * u ** 3)
    return np.clip(curve, low, high)


def paths_of(rng, faces, frames, args):
    """Per picture arrays over frames: centre x, centre y, side, angle (degrees). With two pictures each
    keeps to its half of the frame. The first picture leaves by its side and comes back: it slides out
    over the frames before it is away for args.away frames, then slides back."""
    height, width = SHAPE
    knots = max(2, frames // 30 + 2)
    paths = []
    for k in range(faces):
        side = smooth_path(rng, frames, *SIDES, knots)
        angle = smooth_path(rng, frames, -args.max_tilt, args.max_tilt, knots)
        reach = side * np.sqrt(2) / 2  # half the turned square's widest extent
        lane = (0, width) if faces == 1 else (k * width / 2, (k + 1) * width / 2)
        low, high = lane[0] + reach.max(), lane[1] - reach.max()
        x = smooth_path(rng, frames, low, max(low, high), knots)
        y = smooth_path(rng, frames, reach.max(), height - reach.max(), knots)
        paths.append([x, y, side, angle])
    x, _, side, _ = paths[0]
    leave = leaving_shape(frames, args.away)
    out_left = x[0] < width / 2
    edge = -side * 0.75 if out_left else width + side * 0.75  # a turned square's corner is 0.71 side out
    paths[0][0] = x + leave * (edge - x)
    return paths


def leaving_shape(frames, away):
    """The share of the way out for each frame: 0 until a third of the clip, a smooth rise to 1 over a
    second (less in a short clip), 1 for `away` frames, a smooth fall."""
    ramp = max(1, min(int(FPS), frames // 6))
    start = frames // 3
    share = np.zeros(frames)
    rise = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
    for offset, value in enumerate(rise):
        if start + offset < frames:
            share[start + offset] = value
    share[start + ramp:start + ramp + away] = 1
    for offset, value in enumerate(rise[::-1]):
        if start + ramp + away + offset < frames:
            share[start + ramp + away + offset] = value
    return share


def make_clip(rng, pictures, names, faces, args, frames=None):
    """{frames: BGR frames, truth: face masks, placements: per frame [(name, transform)], visible:
    [frame, picture] share of each picture's face label inside the frame, names}."""
    frames = args.frames if frames is None else frames
    height, width = SHAPE
    chosen = list(rng.choice(names, faces, replace=False))
    paths = paths_of(rng, faces, frames, args)
    still = background(rng, SHAPE)
    clip = {"frames": [], "truth": [], "placements": [], "visible": [], "names": chosen}
    for t in range(frames):
        scene, truth, placements, visible = still.copy(), np.zeros(SHAPE, bool), [], []
        for name, (x, y, side, angle) in zip(chosen, paths):
            image, mask = pictures[name]
            transform = placement_transform(image.shape, side[t], angle[t], (x[t], y[t]))
            cover = cv2.warpAffine(np.ones(image.shape, np.float32), transform, (width, height)) > 0.5
            scene = np.where(cover, cv2.warpAffine(image, transform, (width, height), flags=cv2.INTER_LINEAR), scene)
            moved = cv2.warpAffine(mask.astype(np.float32), transform, (width, height), flags=cv2.INTER_LINEAR) >= 0.5
            truth |= moved
            full = np.count_nonzero(mask) * (side[t] / image.shape[1]) ** 2
            visible.append(min(1.0, np.count_nonzero(moved) / full) if full else 0.0)
            placements.append((name, transform))
        clip["frames"].append(cv2.cvtColor(scene, cv2.COLOR_GRAY2BGR))
        clip["truth"].append(truth)
        clip["placements"].append(placements)
        clip["visible"].append(visible)
    clip["visible"] = np.array(clip["visible"])
    return clip


def run_mode(mode, frames, segmenter, model_dir, args):
    """(predicted face masks, per frame [(track id or None, box centre)], seconds for the whole clip)."""
    masks, found = [], []
    if mode == "video":
        segmenter.reset()
    start = time.perf_counter()
    for index, frame in enumerate(frames):
        if mode == "video":
            mask, faces = segmenter.step(frame, index / FPS)
        else:
            mask, faces = infer.segment_faces(frame, model_dir, precision=args.precision)
        masks.append(mask > 0)
        found.append([(getattr(face, "track_id", None), face.centre) for face in faces])
    return masks, found, time.perf_counter() - start


def score_clip(clip, frames, segmenter, model_dir, args, pictures):
    """Each mode's figures on one clip (see the module's docstring)."""
    scores = {"faces": len(clip["names"]), "frames": len(frames)}
    forward = infer.loaded_model(str(model_dir), args.precision, "none")[0]
    exact = [exact_mask(forward, pictures, placements, SHAPE) for placements in clip["placements"]]
    scores["exact"] = {**overlap(exact, clip["truth"]), "flicker": flicker(exact, clip["truth"]),
                       "face_frame_flicker": face_frame_flicker(exact, clip["placements"], pictures)}
    for mode in MODES:
        masks, found, seconds = run_mode(mode, frames, segmenter, model_dir, args)
        on = [[picture_of(centre, placements) for _, centre in faces]
              for faces, placements in zip(found, clip["placements"])]
        scores[mode] = {
            **overlap(masks, clip["truth"]), "flicker": flicker(masks, clip["truth"]), "seconds": seconds,
            "face_frame_flicker": face_frame_flicker(masks, clip["placements"], pictures),
            "refound_frames": refound(on, clip["visible"][:, 0]),
            "track_jumps": track_jumps(found, on) if mode == "video" else None,
            "tracks": len({track for faces in found for track, _ in faces}) if mode == "video" else None,
        }
    return scores


def picture_of(centre, placements):
    """The index of the placed picture a box centre lies on, or None."""
    for index, (_, transform) in enumerate(placements):
        u, v = cv2.invertAffineTransform(transform) @ [*centre, 1]
        if 0 <= u < 128 and 0 <= v < 128:
            return index
    return None


def overlap(masks, truths):
    """{intersection, union} pixel counts over a clip's frames."""
    return {"intersection": int(sum(np.count_nonzero(m & t) for m, t in zip(masks, truths))),
            "union": int(sum(np.count_nonzero(m | t) for m, t in zip(masks, truths)))}


def flicker(masks, truths):
    """{changed, face}: pixels whose predicted label changes between consecutive frames where the true
    label stays, and the true face pixels of the later frames (their ratio is the clip's flicker)."""
    changed = face = 0
    for before, after, truth_before, truth_after in zip(masks, masks[1:], truths, truths[1:]):
        changed += np.count_nonzero((before != after) & (truth_before == truth_after))
        face += np.count_nonzero(truth_after)
    return {"changed": int(changed), "face": int(face)}


def face_frame_flicker(masks, placements, pictures):
    """{changed, face}: flicker counted in each picture's own frame (see the module's docstring): for each
    picture placed in two consecutive frames, its pixels whose predicted label changes, of those inside
    both frames, and its true face pixels inside both frames."""
    changed = face = 0
    inside = np.ones(SHAPE, np.uint8)
    for before, after, placed_before, placed_after in zip(masks, masks[1:], placements, placements[1:]):
        for (name, first), (_, second) in zip(placed_before, placed_after):
            truth = pictures[name][1] > 0
            back = [cv2.warpAffine(mask.astype(np.uint8), transform, truth.shape[::-1],
                                   flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP) for mask, transform in
                    ((before, first), (after, second))]
            seen = np.logical_and(*(cv2.warpAffine(inside, transform, truth.shape[::-1], flags=cv2.INTER_NEAREST
                                                   | cv2.WARP_INVERSE_MAP) > 0 for transform in (first, second)))
            changed += np.count_nonzero((back[0] != back[1]) & seen)
            face += np.count_nonzero(truth & seen)
    return {"changed": int(changed), "face": int(face)}


def refound(on, visible):
    """For each return of picture 0 (its face label at least BACK inside the frame after a frame where
    none of it was, GONE), the frames from the return until a face lies on it (None: never found)."""
    waits, away = [], False
    for index, share in enumerate(visible):
        if share <= GONE:
            away = True
        elif away and share >= BACK:
            away = False
            later = [offset for offset, pictures in enumerate(on[index:]) if 0 in pictures]
            waits.append(later[0] if later else None)
    return waits


def track_jumps(found, on):
    """Tracks whose face lay on more than one picture over the clip."""
    pictures_of = {}
    for faces, pictures in zip(found, on):
        for (track, _), picture in zip(faces, pictures):
            if picture is not None:
                pictures_of.setdefault(track, set()).add(picture)
    return sum(len(pictures) > 1 for pictures in pictures_of.values())


def clip_iou(scores):
    """A mode's face IoU pooled over one clip's frames."""
    return scores["intersection"] / max(1, scores["union"])


def summary(clips, args):
    """The JSON result: per mode the pooled and per-clip figures, intervals over clips, targets."""
    ious = np.array([[clip_iou(clip[mode]) for mode in MODES] for clip in clips])
    statistics = {mode: lambda drawn, i=i: drawn[:, i].mean() for i, mode in enumerate(MODES)}
    statistics["video_minus_photo"] = lambda drawn: (drawn[:, 0] - drawn[:, 1]).mean()
    ci = bootstrap.intervals(ious, statistics)
    result = {"split": args.split, "clips": len(clips), "frames_per_clip": args.frames,
              "face_iou": {mode: float(ious[:, i].mean()) for i, mode in enumerate(MODES)},
              "face_iou_ci95": {name: list(bounds) for name, bounds in ci.items()}}
    two = [clip for clip in clips if clip["faces"] == 2]
    for mode in MODES:
        waits = [wait for clip in clips for wait in clip[mode]["refound_frames"]]
        result[mode] = {
            "flicker": pooled(clips, mode, "flicker"),
            "face_frame_flicker": pooled(clips, mode, "face_frame_flicker"),
            "frames_per_second": sum(c["frames"] for c in clips) / sum(c[mode]["seconds"] for c in clips),
            "frames_per_second_two_faces": (sum(c["frames"] for c in two) / sum(c[mode]["seconds"] for c in two)
                                            if two else None),
            "returns": len(waits), "refound_frames": waits,
            "clip_frames_per_second": spread([c["frames"] / c[mode]["seconds"] for c in clips]),
            "clip_frames_per_second_two_faces": spread([c["frames"] / c[mode]["seconds"] for c in two]),
        }
    result["clip_speed_ratio"] = spread([c["photo"]["seconds"] / c["video"]["seconds"] for c in clips])
    result["exact"] = {"face_iou": float(np.mean([clip_iou(clip["exact"]) for clip in clips])),
                       "flicker": pooled(clips, "exact", "flicker"),
                       "face_frame_flicker": pooled(clips, "exact", "face_frame_flicker")}
    result["video"]["track_jumps"] = sum(clip["video"]["track_jumps"] for clip in clips)
    result["video"]["tracks"] = sum(clip["video"]["tracks"] for clip in clips)
    result["per_clip"] = [{"faces": clip["faces"], **{mode: round(float(iou), 4) for mode, iou in zip(MODES, row)}}
                          for clip, row in zip(clips, ious)]
    result["settings"] = {
        "shape": list(SHAPE), "fps": FPS, "max_tilt": args.max_tilt, "sides": list(SIDES), "away_frames": args.away,
        "precision": args.precision, "detect_every": args.detect_every,
        "follow_confidence": tracking.FOLLOW_CONFIDENCE, "min_cutoff": tracking.MIN_CUTOFF, "beta": tracking.BETA,
        "turned_every": tracking.TURNED_EVERY, "follow_scale": tracking.FOLLOW_SCALE,
        "segment_every": args.segment_every, "probability_weight": args.probability_weight,
        "seed": args.seed, "model_dir": str(args.model_dir), "cpu": cpu_features.cpu_name(), "cpus": os.cpu_count(),
        "load_average": os.getloadavg()[0]}
    result["intervals"] = {"level": bootstrap.LEVEL, "unit": "clip", "resamples": bootstrap.RESAMPLES}
    result["targets"] = targets(result)
    return result


def spread(values):
    """{median, min, max} of per-clip figures (None for no clips)."""
    if not values:
        return None
    return {"median": float(np.median(values)), "min": float(min(values)), "max": float(max(values))}


def pooled(clips, mode, measure):
    """A flicker measure's changed pixels over its face pixels, pooled over clips (None without face pixels)."""
    changed, face = (sum(clip[mode][measure][key] for clip in clips) for key in ("changed", "face"))
    return changed / face if face else None


def targets(result):
    """{target: met}: the video targets on this run's figures."""
    video, photo, ci = result["video"], result["photo"], result["face_iou_ci95"]
    waits = video["refound_frames"]
    two_faces = video["clip_frames_per_second_two_faces"]
    return {
        f"video face IoU within {TARGETS['face_iou_gap']} of photo (95% CI low end of video - photo)":
            bool(ci["video_minus_photo"][0] >= -TARGETS["face_iou_gap"]),
        f"video flicker <= {TARGETS['flicker_ratio']:g} x photo's":
            bool(video["flicker"] <= TARGETS["flicker_ratio"] * photo["flicker"]),
        f"video frames/s >= {TARGETS['speed_ratio']:g} x photo's (on every clip)":
            bool(result["clip_speed_ratio"]["min"] >= TARGETS["speed_ratio"]),
        f"video frames/s >= {TARGETS['frames_per_second']:g} on two-face clips ({result['settings']['precision']}, "
        "on every one)": bool(two_faces is not None and two_faces["min"] >= TARGETS["frames_per_second"]),
        f"every return re-found within {TARGETS['refound_frames']} frames":
            bool(waits and all(w is not None and w <= TARGETS["refound_frames"] for w in waits)),
        "no track jumps": video["track_jumps"] == 0,
    }


def waits_text(waits):
    if not waits:
        return "-"
    found = [w for w in waits if w is not None]
    missed = len(waits) - len(found)
    text = f"{len(found)}/{len(waits)} re-found, at most {max(found)} frames" if found else "none re-found"
    return text + (f", {missed} never" if missed else "")


def spread_text(figures, unit=""):
    return f"{figures['median']:.1f}{unit} ({figures['min']:.1f}-{figures['max']:.1f}{unit})"


def speed_text(pooled_figure, figures):
    """A pooled frames/s with its clips' median and min-max."""
    return "-" if figures is None else f"{pooled_figure:.1f}; {spread_text(figures)}"


def table(result):
    video, photo, ci = result["video"], result["photo"], result["face_iou_ci95"]
    settings = result["settings"]
    rows = [
        "| | video mode (tracked) | photo mode (each frame alone) |",
        "|---|---|---|",
        f"| face IoU (95% CI), {result['clips']} clips of {result['frames_per_clip']} {result['split']} frames | "
        + " | ".join(f"{result['face_iou'][m]:.3f} ({ci[m][0]:.3f}-{ci[m][1]:.3f})" for m in MODES) + " |",
        "| flicker (label changes where the truth stays / true face pixels) | "
        + " | ".join(f"{100 * result[m]['flicker']:.2f}%" for m in MODES) + " |",
        "| flicker in the faces' own frames (jitter, the faces' motion taken out) | "
        + " | ".join(f"{100 * result[m]['face_frame_flicker']:.2f}%" for m in MODES) + " |",
        "| frames/s, all clips (median, min-max over clips) | "
        + " | ".join(speed_text(result[m]["frames_per_second"], result[m]["clip_frames_per_second"]) for m in MODES)
        + " |",
        "| frames/s, two-face clips (median, min-max over clips) | "
        + " | ".join(speed_text(result[m]["frames_per_second_two_faces"],
                                result[m]["clip_frames_per_second_two_faces"]) for m in MODES) + " |",
        f"| video over photo frames/s per clip, median (min-max) | {spread_text(result['clip_speed_ratio'], 'x')} | |",
        "| a face that left and came back | " + " | ".join(waits_text(result[m]["refound_frames"]) for m in MODES)
        + " |",
        f"| tracks (track jumps) | {video['tracks']} ({video['track_jumps']}) | |",
    ]
    gap = ci["video_minus_photo"]
    notes = (f"\nFor scale, exact LFW framing (each picture segmented at its own framing, its probabilities moved "
             f"with it): face IoU {result['exact']['face_iou']:.3f}, flicker {100 * result['exact']['flicker']:.2f}% "
             "(what faces moving cost a mask whose errors move with the face), in the faces' own frames "
             f"{100 * result['exact']['face_frame_flicker']:.2f}%. "
             f"Video - photo face IoU: 95% CI {gap[0]:.3f} to {gap[1]:.3f} (bootstrap over clips). Frames/s over "
             f"whole clips, first frame included, {settings['shape'][1]}x{settings['shape'][0]} at "
             f"{settings['precision']}; CPU: {settings['cpu']}, {settings['cpus']} cores, load average "
             f"{settings['load_average']:.1f} at the end. Tracker: full search every {settings['detect_every']} "
             f"frames (turned every {settings['turned_every']} searches), ONet's patch "
             f"{settings['follow_scale']} of the face's last box, follow confidence "
             f"{settings['follow_confidence']}, One Euro min cutoff {settings['min_cutoff']} Hz, "
             f"beta {settings['beta']}; "
             f"model every {settings['segment_every']} frames, newest probabilities weighted "
             f"{settings['probability_weight']}.\n\n"
             + "\n".join(f"- {target}: {'met' if met else 'NOT met'}" for target, met in result["targets"].items()))
    return "\n".join(rows) + notes


if __name__ == "__main__":
    sys.exit(main())
