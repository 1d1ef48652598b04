"""Does an export give the run's results, and what does int8 cost and buy? One JSON line, then a table.

`python benchmarks/export_check.py [--model-dir pretrained]` exports the run (with --int8) to a scratch
folder, then scores a split (default: test) four ways: `evaluate` on the checkpoint, the SavedModel,
the float32 TFLite model and the int8 TFLite model, each from uint8 images as the export takes them.
The two TFLite models are then timed on the same images, one image per call (their fixed batch),
alternating for --rounds rounds; the best round of each counts. See benchmarks/README.md.
"""
import argparse
import json
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
from bench import machine_info  # noqa: E402
from runs.metrics import confusion_matrix, predicted_classes, scores  # noqa: E402

EQUAL_DECIMALS = 4
INT8_USABLE_LOSS_POINTS = 0.2
SAVED_MODEL_BATCH = 32


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Accuracy of an export against evaluate, and int8 against "
                                                 "float32 TFLite (accuracy and speed); one JSON line + a table.")
    flag = parser.add_argument
    flag("--model-dir", default="pretrained", help="run folder or pretrained/ (default: pretrained)")
    flag("--data", help="data folder (default: the run's)")
    flag("--split", default="test", choices=SPLITS)
    flag("--calibration-images", type=int, default=export.CALIBRATION_IMAGES,
         help=f"training images the int8 model is calibrated on (default: {export.CALIBRATION_IMAGES})")
    flag("--timing-images", type=int, default=100, help="images per timed round (default: 100)")
    flag("--rounds", type=int, default=3, help="timed rounds per TFLite model, alternating (default: 3)")
    flag("--warmup", type=int, default=5, help="untimed calls per TFLite model first (default: 5)")
    flag("--threads", type=int, default=os.cpu_count(), help="TFLite interpreter threads (default: all cores)")
    flag("--json-out", help="also write the JSON line to this file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = check(args)
    except (UsageError, DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    line = json.dumps(result)
    print(line)
    if args.json_out:
        Path(args.json_out).write_text(line + "\n")
    print(table(result))
    return 0


def check(args):
    load_start = machine_info()["load_average_1m"]
    _, config = load_trained(args.model_dir, "fp32")
    data = args.data or config["data"]
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "exported"
        started = time.perf_counter()
        export.export(args.model_dir, folder, int8=True, data=data, calibration_images=args.calibration_images,
                      log=lambda message: None)
        export_seconds = time.perf_counter() - started
        evaluated = evaluate(args.model_dir, data, args.split, precision="fp32")
        images, labels = split_examples(args.model_dir, config, data, args.split)
        num_classes = len(CLASS_NAMES[config["targets"]])
        forward, _, _ = export.load_exported(folder)
        runners = {kind: export.tflite_runner(folder / name, args.threads)
                   for kind, name in (("float32", export.FLOAT_TFLITE), ("int8", export.INT8_TFLITE))}
        accuracy = {
            "evaluate": evaluated["pixel_accuracy"],
            "saved_model": pixel_accuracy(saved_model_classes(forward, images), labels, num_classes),
            **{f"tflite_{kind}": pixel_accuracy(tflite_classes(run, images), labels, num_classes)
               for kind, run in runners.items()}}
        speed = tflite_speed(runners, images[:args.timing_images], args.rounds, args.warmup)
        sizes = {name: os.path.getsize(folder / name) / 2**20 for name in (export.FLOAT_TFLITE, export.INT8_TFLITE)}
        sizes["saved_model"] = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()
                                   and p.suffix != ".tflite" and p.name != "README.md") / 2**20
    loss = 100 * (accuracy["tflite_float32"] - accuracy["tflite_int8"])
    return {"model_dir": str(args.model_dir), "data": str(data), "split": args.split, "images": len(images),
            "tta": config["tta"], "pixel_accuracy": accuracy,
            "equal_to_4_decimals": {kind: round(accuracy[kind], EQUAL_DECIMALS) == round(accuracy["evaluate"],
                                                                                         EQUAL_DECIMALS)
                                    for kind in ("saved_model", "tflite_float32")},
            "int8_loss_points": loss, "int8_usable": loss < INT8_USABLE_LOSS_POINTS,
            "tflite_img_per_s": speed, "int8_speedup": speed["int8"] / speed["float32"],
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


def saved_model_classes(forward, images):
    """Class ids from the SavedModel's probabilities, by the rule evaluate uses."""
    return np.concatenate([predicted_classes(forward(images[i:i + SAVED_MODEL_BATCH])).numpy()
                           for i in range(0, len(images), SAVED_MODEL_BATCH)])


def tflite_classes(run, images):
    return np.concatenate([run(images=image[None])["classes"] for image in images])


def tflite_speed(runners, images, rounds, warmup):
    """Images per second of each TFLite runner, one image per call: the best of `rounds` alternating rounds."""
    for run in runners.values():
        for image in images[:warmup]:
            run(images=image[None])
    best = dict.fromkeys(runners, 0.0)
    for _ in range(rounds):
        for kind, run in runners.items():
            started = time.perf_counter()
            for image in images:
                run(images=image[None])
            best[kind] = max(best[kind], len(images) / (time.perf_counter() - started))
    return best


def table(result):
    accuracy, evaluated = result["pixel_accuracy"], result["pixel_accuracy"]["evaluate"]

    def versus(kind):
        if kind == "evaluate":
            return "(reference)"
        points = 100 * (accuracy[kind] - evaluated)
        same = round(accuracy[kind], EQUAL_DECIMALS) == round(evaluated, EQUAL_DECIMALS)
        return f"{points:+.4f} points{' (equal to 4 decimals)' if same else ''}"

    sizes, speed = result["file_mb"], result["tflite_img_per_s"]
    rows = [("`evaluate` (checkpoint)", "evaluate", "", ""),
            ("SavedModel", "saved_model", f"{sizes['saved_model']:.1f}", ""),
            ("TFLite float32", "tflite_float32", f"{sizes[export.FLOAT_TFLITE]:.1f}", f"{speed['float32']:.1f}"),
            ("TFLite int8", "tflite_int8", f"{sizes[export.INT8_TFLITE]:.1f}", f"{speed['int8']:.1f}")]
    machine = result["machine"]
    lines = [f"{result['model_dir']} on {result['split']} ({result['images']} images, tta {result['tta']}); "
             f"{machine['cpu']}, {result['threads']} TFLite threads, load average {machine['load_average_1m_at_start']} "
             f"at the start, {machine['load_average_1m']} at the end",
             "",
             "| model | size (MiB) | pixel accuracy | vs evaluate | TFLite img/s (1 image per call) |",
             "|---|---|---|---|---|"]
    lines += [f"| {name} | {size} | {100 * accuracy[kind]:.4f}% | {versus(kind)} | {rate} |"
              for name, kind, size, rate in rows]
    usable = "usable" if result["int8_usable"] else "not usable"
    lines += ["", f"int8 against float32 TFLite: {result['int8_loss_points']:.2f} points lost, "
                  f"{result['int8_speedup']:.2f}x the speed; {usable} by the rule "
                  f"(loses < {INT8_USABLE_LOSS_POINTS} points)."]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
