"""Face segmentation with a convolutional encoder-decoder (TensorFlow 2): the command line.

`python convolutional_autoencoder.py [flags]` trains (runs/training.py), `... evaluate` scores a trained
model (runs/evaluation.py) and `... summary` prints an architecture (model.py). `--help` on each lists
its flags; the training flags default to the reference recipe (DEFAULTS in runs/config.py).
"""
import argparse
import json
import re
import sys
from pathlib import Path

import quiet_tensorflow  # noqa: F401  (before TensorFlow: it starts without its C++ start-up lines)
import numpy as np
import tensorflow as tf

from data_folder import TARGET_KINDS, DataError
from dataset import SPLITS
from model import REFERENCE_DESCRIPTION, Model
from runs.config import DEFAULTS, PRECISIONS, RESUMABLE, UsageError
from runs.evaluation import evaluate, format_scores
from runs.metrics import METRIC_NAMES
from runs.run_folder import init_chain, read_json, training_time
from runs.training import TrainingError, train


def parse_train_args(argv):
    parser = argparse.ArgumentParser(
        description="Train the face segmentation autoencoder. Defaults are the reference recipe; "
                    "`python convolutional_autoencoder.py evaluate --help` for evaluation.")
    flag = parser.add_argument
    flag("--data", help="folder with inputs/, targets/, targets_face_only/")
    flag("--targets", choices=TARGET_KINDS, help="face, face+hair, or background/face/hair classes")
    flag("--arch", help="architecture description, e.g. C5,64,2C5,64,1M2C5,64,2C5,64,1M2C5,64,2C5,64,1M2")
    flag("--untied", dest="tied_weights", action="store_false", default=None,
         help="decoder gets its own kernels instead of sharing the encoder's")
    flag("--no-skips", dest="skip_connections", action="store_false", default=None, help="no skip links")
    flag("--no-standardization", dest="per_image_standardization", action="store_false", default=None,
         help="no per-image standardisation of the input")
    flag("--no-batch-norm", dest="batch_norm", action="store_false", default=None, help="no batch norm")
    flag("--linear-output", action="store_true", default=None,
         help="the last decoder layer is a transposed convolution + bias, without the reference's batch "
              "norm and leaky ReLU before the sigmoid")
    flag("--epochs", type=int)
    flag("--max-steps", type=int, help="stop after this many training steps in all")
    flag("--max-minutes", type=float, help="stop (resumably) after this much wall time")
    flag("--batch-size", type=int)
    flag("--lr", type=float, help="Adam learning rate (the peak with --schedule onecycle)")
    flag("--schedule", choices=("constant", "onecycle"))
    flag("--loss", choices=("rmse", "bce", "bce_dice"))
    flag("--no-augment", dest="augment", action="store_false", default=None, help="no imgaug augmentation")
    flag("--clean-epochs", type=int, metavar="N", help="train the last N epochs without augmentation")
    flag("--low-res-epochs", type=int, metavar="N",
         help="train the first N epochs on images shrunk to half their height and width (4x fewer pixels)")
    flag("--eval-every", type=int, help="evaluate on the validation split every this many steps")
    flag("--tta", choices=("none", "flip"), help="test-time augmentation when evaluating")
    flag("--precision", choices=PRECISIONS,
         help="bf16 runs convolutions in bfloat16; auto: the faster of fp32 and bf16 for this model's training "
             "step on this CPU (fp32 without native bf16), measured once and cached")
    flag("--seed", type=int)
    flag("--out", help="runs are written to OUT/<description>/<timestamp>/")
    flag("--resume", metavar="DIR", help="continue the run in DIR")
    flag("--init-from", metavar="DIR",
         help="start from the best weights of the run (or pretrained/) in DIR, with its split; a new run")
    flag("--skip-bad", action="store_true", default=None, help="leave out (and list) unreadable or unmatched images")
    flag("--strategy", choices=("default", "mirrored", "multiworker"),
         help="tf.distribute: one device, all local GPUs/CPUs, or the machines in TF_CONFIG; "
              "--batch-size is per replica")
    flag("--streaming", action="store_true", default=None,
         help="read images batch by batch instead of all up front, for data larger than memory")
    flag("--test-at-end", action="store_true", default=None,
         help="score the best checkpoint on the test split once training ends; off, so that recipes are "
              "chosen on validation and the chosen one is tested once with `evaluate`")
    for action in parser._actions:
        # On/off switches name the non-default behaviour; "--untied (default: True)" would mislead.
        if action.dest in DEFAULTS and action.nargs != 0:
            action.help = f"{action.help or ''} (default: {DEFAULTS[action.dest]})".strip()
    args = vars(parser.parse_args(argv))
    resume = args.pop("resume")
    given = {k: v for k, v in args.items() if v is not None}
    if resume is not None:  # an empty --resume "" (e.g. an unset shell variable) must not start a new run
        if not resume or not (Path(resume) / "config.json").is_file():
            raise UsageError(f"{resume!r} is not a run folder (no config.json): pass a folder written by "
                             "this script, e.g. save/<description>/<timestamp>/")
        saved = read_json(Path(resume) / "config.json")
        for derived in ("model", "image_size"):
            saved.pop(derived, None)
        if saved.pop("swa_start", None) is not None:
            raise UsageError(f"{resume} averaged its weights (--swa-start), which training no longer does: "
                             "start a new run from its best weights with --init-from instead")
        ignored = sorted(k for k in given if k not in RESUMABLE and given[k] != saved.get(k))
        if ignored:
            raise UsageError(f"--resume continues {resume} with its own config.json; only "
                             f"{', '.join('--' + k.replace('_', '-') for k in RESUMABLE)} may change, not "
                             f"{', '.join('--' + k.replace('_', '-') for k in ignored)}")
        return {**DEFAULTS, **saved, **given}, resume
    return {**DEFAULTS, **given}, None


def parse_evaluate_args(argv):
    parser = argparse.ArgumentParser(prog="convolutional_autoencoder.py evaluate",
                                     description="Evaluate a trained model on a split of a data folder.")
    parser.add_argument("--model-dir", default="pretrained", help="run folder or pretrained/ (default: pretrained)")
    parser.add_argument("--data", help="data folder (default: the one the model was trained on)")
    parser.add_argument("--split", choices=(*SPLITS, "all"),
                        help="all: every image in the data folder (default: test, or all when the folder "
                             "does not hold the model's split)")
    parser.add_argument("--tta", choices=("none", "flip"), help="default: the setting the model was trained with")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="auto (default): the faster of fp32 and bf16 for this model on this CPU (fp32 without "
                             "native bf16), measured once and cached")
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    return parser.parse_args(argv)


def print_summary(argv):
    parser = argparse.ArgumentParser(prog="convolutional_autoencoder.py summary",
                                     description="Print the layers of an architecture with their output shapes.")
    parser.add_argument("--arch", default=REFERENCE_DESCRIPTION)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--untied", action="store_true")
    parser.add_argument("--classes", type=int, default=1)
    args = parser.parse_args(argv)
    model = Model.from_description(args.arch, tied_weights=not args.untied, num_classes=args.classes)
    model.check_size(args.size, args.size)
    print(f"{model.description}, input {args.size}x{args.size}x1\n")
    print("| step | layer | output (H, W, C) | parameters |\n|---|---|---|---|")
    for step, (kind, description, shape, count) in enumerate(model.summary(args.size, args.size), 1):
        print(f"| {step} | {kind} {description} | {shape} | {count:,} |")
    total = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    print(f"\ntrainable parameters: {total:,}")


def print_evaluation(argv):
    """The `evaluate` command: the scores of a trained model, and how long it and its sources trained."""
    args = parse_evaluate_args(argv)
    result = evaluate(args.model_dir, args.data, args.split, args.tta, args.precision, args.batch_size,
                      log=lambda message: print(message, file=sys.stderr))
    steps, minutes = training_time(args.model_dir)
    sources = [(str(folder), *training_time(folder)) for folder in init_chain(args.model_dir)]
    if args.json:
        keys = (*METRIC_NAMES, "intervals", "images", "classes", "class_iu", "split", "precision", "precision_note",
                "tta")
        print(json.dumps({**{k: result[k] for k in keys},
                          "train_steps": steps, "train_minutes": minutes,
                          "init_from": [{"model_dir": folder, "train_steps": s, "train_minutes": m}
                                        for folder, s, m in sources]}))
        return
    intervals = result["intervals"]
    print(f"{args.model_dir} on {result['split']} ({result['images']} images): {format_scores(result)}")
    print(f"precision: {result['precision']}{result['precision_note']}")
    print("per-class IU: " + "  ".join(f"{name} {'—' if iu is None else f'{100 * iu:.2f}%'}"
                                       for name, iu in zip(result["classes"], result["class_iu"])))
    print(f"95% CI: bootstrap over the {intervals['units']} {intervals['unit']}s of the split "
          f"({intervals['resamples']} resamples, seed {intervals['seed']})")
    print(f"test-time augmentation: {result['tta']}")
    if minutes is not None:
        print(f"trained {steps} steps in {minutes:.0f} minutes (TensorBoard event times)")
    for folder, source_steps, source_minutes in sources:
        if source_minutes is not None:
            print(f"started from {folder} (--init-from), trained {source_steps} steps in {source_minutes:.0f} minutes")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["summary"]:
            print_summary(argv[1:])
        elif argv[:1] == ["export"]:
            from runs import export  # TFLite's converter is only loaded when asked for
            return export.main(argv[1:])
        elif argv[:1] == ["evaluate"]:
            print_evaluation(argv[1:])
        else:
            train(*parse_train_args(argv[1:] if argv[:1] == ["train"] else argv))
        return 0
    except (UsageError, DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except tf.errors.OpError as error:
        # A DataError raised while tf.data reads files (--streaming) arrives inside TensorFlow's error.
        data_error = re.search(r"DataError: (.*)", error.message)
        if data_error is None:
            raise
        print(f"error: {data_error.group(1)}", file=sys.stderr)
        return 2
    except TrainingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
