"""Does an export give the run's results, and what do int8 and ONNX cost and buy? One JSON line, then a table.

`python benchmarks/export_check.py [--model-dir pretrained]` exports the run (with --int8 and --onnx) to a
scratch folder, then scores a split (default: test) five ways: `evaluate` on the checkpoint, the
SavedModel, the float32 and int8 TFLite models and model.onnx in ONNX Runtime, each from uint8 images as
the export takes them. Each format is then timed on the same images, one image per call and (the
SavedModel and ONNX, which take any batch) BATCH per call, for --rounds rounds in which every format and
batch runs once in turn, so that a slow spell of the machine falls on all of them; each images/s is the
median of the rounds, min-max beside it, and a format counts as faster only beyond that spread. Target:
ONNX Runtime within ONNX_TARGET of the SavedModel's pixel accuracy. See benchmarks/README.md.
"""
import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import quiet_tensorflow  # noqa: E402,F401  (before TensorFlow: it starts without its C++ start-up lines)

from data_folder import CLASS_NAMES, DataError  # noqa: E402
from dataset import SPLITS, Dataset  # noqa: E402
from runs.config import UsageError, make_dataset  # noqa: E402
from runs.evaluation import evaluate, load_trained  # noqa: E402
from runs import export  # noqa: E402
from bench import machine_info, ratio_spread, report, spread, spread_cell  # noqa: E402
from runs.metrics import confusion_matrix, predicted_classes, scores  # noqa: E402

EQUAL_DECIMALS = 4
INT8_USABLE_LOSS_POINTS = 0.2
SAVED_MODEL_BATCH = 32
BATCH = 64
ONNX_TARGET = 0.0005  # pixel accuracy (a fraction), ONNX Runtime against the SavedModel
NAMES = {"evaluate": "`evaluate` (checkpoint)", "saved_model": "SavedModel (TensorFlow)",
         "tflite_float32": "TFLite float32", "tflite_int8": "TFLite int8", "onnx": "ONNX (ONNX Runtime)"}
FLOAT32_FORMATS = ("saved_model", "tflite_float32", "onnx")


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Accuracy and speed of an export's formats (SavedModel, TFLite "
                                                 "float32 and int8, ONNX) against evaluate; one JSON line + a table.")
    flag = parser.add_argument
    flag("--model-dir", default="pretrained", help="run folder or pretrained/ (default: pretrained)")
    flag("--data", help="data folder (default: the run's)")
    flag("--split", default="test", choices=SPLITS)
    flag("--calibration-images", type=int, default=export.CALIBRATION_IMAGES,
         help=f"training images the int8 model is calibrated on (default: {export.CALIBRATION_IMAGES})")
    flag("--timing-images", type=int, default=128, help="images per timed round (default: 128)")
    flag("--rounds", type=int, default=5, help="timed rounds, every format once in each (default: 5)")
    flag("--warmup", type=int, default=5, help="untimed calls per format first (default: 5)")
    flag("--threads", type=int, default=os.cpu_count(),
         help="TFLite interpreter and ONNX Runtime threads (default: all cores)")
    flag("--json-out", help="also write the JSON line to this file")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = check(args)
    except (UsageError, DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report(result, table(result), args.json_out)
    return 0


def check(args):
    load_start = machine_info()["load_average_1m"]
    _, config = load_trained(args.model_dir, "fp32")
    data = args.data or config["data"]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "exported"
        started = time.perf_counter()
        export.export(args.model_dir, folder, int8=True, data=data, calibration_images=args.calibration_images,
                      log=lambda message: None, onnx=True)
        export_seconds = time.perf_counter() - started
        evaluated = evaluate(args.model_dir, data, args.split, precision="fp32")
        images, labels = split_examples(args.model_dir, config, data, args.split)
        num_classes = len(CLASS_NAMES[config["targets"]])
        forward, _, _ = export.load_exported(folder)
        onnx_forward, _, _ = export.load_onnx(folder / export.ONNX_FILE, args.threads)
        runners = {kind: export.tflite_runner(folder / name, args.threads)
                   for kind, name in (("float32", export.FLOAT_TFLITE), ("int8", export.INT8_TFLITE))}
        accuracy = {
            "evaluate": evaluated["pixel_accuracy"],
            "saved_model": pixel_accuracy(batched_classes(forward, images), labels, num_classes),
            **{f"tflite_{kind}": pixel_accuracy(tflite_classes(run, images), labels, num_classes)
               for kind, run in runners.items()},
            "onnx": pixel_accuracy(batched_classes(onnx_forward, images), labels, num_classes)}
        calls = {"saved_model": forward, "onnx": onnx_forward,
                 **{f"tflite_{kind}": lambda batch, run=run: run(images=batch)["probabilities"]
                    for kind, run in runners.items()}}
        speed = speeds(calls, images[:args.timing_images], args.rounds, args.warmup)
        sizes = {name: os.path.getsize(folder / name) / 2**20
                 for name in (export.FLOAT_TFLITE, export.INT8_TFLITE, export.ONNX_FILE)}
        sizes["saved_model"] = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()
                                   and p.suffix not in (".tflite", ".onnx") and p.name != "README.md") / 2**20
    loss = 100 * (accuracy["tflite_float32"] - accuracy["tflite_int8"])
    onnx_gap = accuracy["onnx"] - accuracy["saved_model"]
    return {"model_dir": str(args.model_dir), "data": str(data), "split": args.split, "images": len(images),
            "tta": config["tta"], "pixel_accuracy": accuracy,
            "equal_to_4_decimals": {kind: round(accuracy[kind], EQUAL_DECIMALS) == round(accuracy["evaluate"],
                                                                                         EQUAL_DECIMALS)
                                    for kind in ("saved_model", "tflite_float32")},
            "int8_loss_points": loss, "int8_usable": loss < INT8_USABLE_LOSS_POINTS,
            "onnx_minus_saved_model": onnx_gap, "onnx_target": ONNX_TARGET, "onnx_met": abs(onnx_gap) <= ONNX_TARGET,
            "img_per_s": speed, "batch": BATCH,
            "int8_speedup": ratio_spread(speed["tflite_int8"]["1"]["values"], speed["tflite_float32"]["1"]["values"]),
            "float32_fastest": {per_call: fastest(speed, FLOAT32_FORMATS, per_call) for per_call in ("1", str(BATCH))},
            "file_mb": sizes, "export_seconds": export_seconds, "calibration_images": args.calibration_images,
            "timing_images": min(args.timing_images, len(images)), "rounds": args.rounds, "threads": args.threads,
            "machine": {**machine_info(), "load_average_1m_at_start": load_start}}


def split_examples(model_dir, config, data, split):
    """uint8 images [N, H, W, 1] and label maps [N, H, W] of a split of the run's split.json."""
    dataset = make_dataset({**config, "data": data}, Dataset.load_split(Path(model_dir) / "split.json"),
                              augment=False)
    images, labels = dataset.examples(split, np.arange(dataset.size(split)))
    return images[..., None], labels


def pixel_accuracy(classes, labels, num_classes):
    return scores(confusion_matrix(labels, classes, num_classes).numpy())["pixel_accuracy"]


def batched_classes(forward, images):
    """Class ids from the probabilities of a batched forward pass (the SavedModel's or ONNX Runtime's),
    by the rule evaluate uses."""
    return np.concatenate([predicted_classes(forward(images[i:i + SAVED_MODEL_BATCH])).numpy()
                           for i in range(0, len(images), SAVED_MODEL_BATCH)])


def tflite_classes(run, images):
    return np.concatenate([run(images=image[None])["classes"] for image in images])


def speeds(calls, images, rounds, warmup, clock=time.perf_counter):
    """{format: {"1": spread of images/s one image per call, "BATCH": of BATCH per call (formats of any batch)}}
    over `rounds` rounds, in each of which every format and batch runs once in turn."""
    jobs = [(kind, 1) for kind in calls] + [(kind, BATCH) for kind in calls if not kind.startswith("tflite")]
    for kind, batch in jobs:
        for start in range(0, min(warmup * batch, len(images)), batch):
            calls[kind](images[start:start + batch])
    rates = {kind: {} for kind in calls}
    for _ in range(rounds):
        for kind, batch in jobs:
            started = clock()
            for start in range(0, len(images), batch):
                np.asarray(calls[kind](images[start:start + batch]))  # the result fetched, as a user would
            rates[kind].setdefault(str(batch), []).append(len(images) / (clock() - started))
    return {kind: {per_call: spread(values) for per_call, values in timed.items()} for kind, timed in rates.items()}


def by_speed(speed, kinds, per_call):
    """The formats of `kinds` timed at `per_call`, fastest median first."""
    timed = [kind for kind in kinds if per_call in speed[kind]]
    return sorted(timed, key=lambda kind: -speed[kind][per_call]["median"])


def beyond(faster, slower):
    """Whether a speed's slowest round beats another's fastest: faster beyond the spread of the rounds."""
    return faster["min"] > slower["max"]


def fastest(speed, kinds, per_call):
    """The format of `kinds` faster beyond the spread than every other timed at `per_call`, or None."""
    ranked = by_speed(speed, kinds, per_call)
    first = ranked[0]
    return first if all(beyond(speed[first][per_call], speed[kind][per_call]) for kind in ranked[1:]) else None


def table(result):
    accuracy, evaluated = result["pixel_accuracy"], result["pixel_accuracy"]["evaluate"]

    def versus(kind):
        if kind == "evaluate":
            return "(reference)"
        points = 100 * (accuracy[kind] - evaluated)
        same = round(accuracy[kind], EQUAL_DECIMALS) == round(evaluated, EQUAL_DECIMALS)
        return f"{points:+.4f} points{' (equal to 4 decimals)' if same else ''}"

    sizes, speed, batch = result["file_mb"], result["img_per_s"], result["batch"]
    size = {"evaluate": "", "saved_model": f"{sizes['saved_model']:.1f}",
            "tflite_float32": f"{sizes[export.FLOAT_TFLITE]:.1f}", "tflite_int8": f"{sizes[export.INT8_TFLITE]:.1f}",
            "onnx": f"{sizes[export.ONNX_FILE]:.1f}"}

    def rate(kind, per_call):
        if kind == "evaluate":
            return ""
        return spread_cell(speed[kind][per_call]) if per_call in speed[kind] else "-"

    machine = result["machine"]
    lines = [f"{result['model_dir']} on {result['split']} ({result['images']} images, tta {result['tta']}); "
             f"{machine['cpu']}, {machine['cores']} cores, {result['threads']} TFLite / ONNX Runtime threads, load "
             f"average {machine['load_average_1m_at_start']} at the start, {machine['load_average_1m']} at the end; "
             f"img/s on {result['timing_images']} images, median (min-max) of {result['rounds']} alternating rounds",
             "",
             "| model | size (MiB) | pixel accuracy | vs evaluate | img/s, 1 image per call | "
             f"img/s, {batch} per call |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {name} | {size[kind]} | {100 * accuracy[kind]:.4f}% | {versus(kind)} | {rate(kind, '1')} | "
              f"{rate(kind, str(batch))} |" for kind, name in NAMES.items()]
    usable = "usable" if result["int8_usable"] else "not usable"
    met = "met" if result["onnx_met"] else "NOT met"
    lines += ["", f"int8 against float32 TFLite: {result['int8_loss_points']:.2f} points lost, "
                  f"{spread_cell(result['int8_speedup'], '{:.2f}', unit='x')} the speed (ratio of the medians, its "
                  f"worst and best case); {usable} by the rule (loses < {INT8_USABLE_LOSS_POINTS} points)."]
    for per_call, first in result["float32_fastest"].items():
        lines.append(f"float32 formats, {'one image' if per_call == '1' else per_call} per call, fastest median first: "
                     f"{speed_order(speed, FLOAT32_FORMATS, per_call)}; fastest beyond the spread: "
                     f"{NAMES[first] if first else 'none'}.")
    lines += [f"ONNX Runtime against the SavedModel: pixel accuracy {result['onnx_minus_saved_model']:+.6f} "
              f"(target: within {result['onnx_target']}): {met}.",
              "(a > b: a's slowest round faster than b's fastest; a ~ b: within the spread of the rounds)"]
    return "\n".join(lines)


def speed_order(speed, kinds, per_call):
    """"A > B ~ C": the formats of `kinds` fastest median first, > where the faster is so beyond the spread."""
    ranked = by_speed(speed, kinds, per_call)
    text = NAMES[ranked[0]]
    for faster, slower in zip(ranked, ranked[1:]):
        sign = ">" if beyond(speed[faster][per_call], speed[slower][per_call]) else "~"
        text += f" {sign} {NAMES[slower]}"
    return text


if __name__ == "__main__":
    sys.exit(main())
