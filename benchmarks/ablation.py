"""Replay the reference's published table of architectures and accuracies at one equal budget.

`python benchmarks/ablation.py [--budget-steps N] [--rows 1,2,...]` trains every row of ROWS with
training.train(): the row's own flags, then the same budget and shared settings for all
(`--data`, `--batch-size`, `--eval-every`, `--seed`), everything else the reference recipe. It writes
`<out>/ablation.json` (row label -> run folder, steps and metrics) and `<out>/ablation.md`, a markdown
table of the reference's accuracy next to ours (test pixel accuracy of the best-by-validation
checkpoint) with the rank agreement of the two columns, and prints the table.

Each row trains in `<out>/<row number>/<description>/<timestamp>/`. Rerunning skips finished rows and
resumes an unfinished one (Ctrl-C, SIGTERM) from its last checkpoint, so the same command continues
an interrupted ablation. A run folder made with other settings is an error rather than a silent mix
of budgets.

Rows 1-3 are our reading of the reference's short labels: its first three rows name only what was
missing, so we take them to lack per-image standardisation and skips too (rows 5 and 6 add those),
to have untied weights, and to keep batch norm (the reference code always used it). Row 3's
"8 conv + 8 deconv" adds a stride-1 conv to the first two modules and an extra module, keeping the
stack mirrorable at 128x128. With one seed and a short budget, gaps as small as the reference's
0.01 points between rows 5 and 6 are below the noise; expect the coarse order, not every pair.
"""
import argparse
import re
import shlex
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import quiet_tensorflow  # noqa: E402,F401  (before TensorFlow: it starts without its C++ start-up lines)
import tensorflow as tf  # noqa: E402

import convolutional_autoencoder as ca  # noqa: E402
from data_folder import DataError  # noqa: E402
from model import REFERENCE_DESCRIPTION, layers_from_description  # noqa: E402
from runs.config import DEFAULTS as RECIPE, UsageError  # noqa: E402
from runs.run_folder import CHECKPOINT_LATEST, read_json, write_json  # noqa: E402
from runs.training import TrainingError, train  # noqa: E402

REFERENCE = REFERENCE_DESCRIPTION
UNTIED_PLAIN = ["--untied", "--no-skips", "--no-standardization"]
# (label as in the reference's table, its pixel accuracy in %, our flags for convolutional_autoencoder.py)
ROWS = [
    ("no max pools, no shared weights, no skip connections", 92.92,
     ["--arch", "C7,64,2C7,64,1C7,64,2C7,64,1C7,64,2C7,64,1", *UNTIED_PLAIN]),
    ("no shared weights, no skips, 4 conv + 4 deconv", 94.62,
     ["--arch", "C7,64,2C7,64,1M2C7,64,2C7,64,1M2", *UNTIED_PLAIN]),
    ("8 conv + 8 deconv", 96.14,
     ["--arch", "C7,64,2C7,64,1M2C7,64,1C7,64,1M2C7,64,2C7,64,1M2C7,64,1C7,64,1", *UNTIED_PLAIN]),
    ("7x7 kernels, 64 channels, shared weights conv/deconv", 96.64,
     ["--arch", REFERENCE, "--no-skips", "--no-standardization"]),
    ("+ skip connections", 97.21, ["--arch", REFERENCE, "--no-standardization"]),
    ("+ per-image standardisation", 97.22, ["--arch", REFERENCE]),
    ("best: 5x5 kernels", 97.36, ["--arch", "C5,64,2C5,64,1M2C5,64,2C5,64,1M2C5,64,2C5,64,1M2"]),
]

# The budget: 95 steps at batch 100 is 5 epochs of the 1846 training images (the reference trained
# 500), about 12 minutes a row for the 7x7 model on 2 CPU cores; validation once an epoch.
DEFAULTS = {"budget_steps": 95, "data": RECIPE["data"], "batch_size": RECIPE["batch_size"],
            "eval_every": 19, "seed": RECIPE["seed"], "out": "save/ablation"}
# Config keys that may differ between a row's run folder and this invocation without changing its result.
NOT_BUDGET = ("out", "max_minutes", "model", "image_size", "test_at_end")
STOPPED = 130


def run(rows, budget_steps, shared_flags, out, only=None, log=print):
    """Train the rows (numbered from 1; only the numbers in `only` if given) that have not finished.

    `rows` is a list like ROWS; `shared_flags` are training flags given to every row. Writes
    `<out>/ablation.json` and `<out>/ablation.md` and returns the number of the row that was
    stopped before its end, or None when every selected row finished.
    """
    out = Path(out)
    # Parse every row before training any, so a bad row fails now and not hours later.
    configs = [row_config(flags, budget_steps, shared_flags, out / str(n))
               for n, (_, _, flags) in enumerate(rows, 1)]
    runs = {n: find_run(out / str(n)) for n in range(1, len(rows) + 1)}
    for n, run_dir in runs.items():
        if run_dir is not None:
            check_same_settings(run_dir, configs[n - 1], n)
    stopped = None
    for n, (label, _, _) in enumerate(rows, 1):
        if only and n not in only:
            continue
        run_dir = runs[n]
        if run_dir is not None and is_finished(run_dir):
            log(f"row {n} ({label}): finished in {run_dir}, skipped")
            continue
        log(f"row {n} ({label}): {'resuming ' + str(run_dir) if run_dir else 'training'}")
        runs[n] = train(configs[n - 1], resume=run_dir, log=log)
        if not is_finished(runs[n]):
            if not read_json(runs[n] / "split.json")["test"]:
                raise DataError(f"{configs[0]['data']} gives an empty test split, so the rows cannot be "
                                "compared: use a data folder with more persons")
            stopped = n
            break
    record = {"budget": budget(configs[0], runs), "rows": {
        label: row_record(n, reference, flags, runs[n])
        for n, (label, reference, flags) in enumerate(rows, 1)}}
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "ablation.json", record)
    table = markdown_table(rows, configs, record)
    (out / "ablation.md").write_text(table)
    log(table)
    return stopped


def row_config(flags, budget_steps, shared_flags, row_out):
    """The training config of one row: its flags, then the shared ones and the budget. Each row is
    tested once at its end: the table reports every row, none is chosen among them."""
    config, _ = ca.parse_train_args(
        [*flags, *shared_flags, "--max-steps", str(budget_steps), "--out", str(row_out), "--test-at-end"])
    layers_from_description(config["arch"])
    return config


def find_run(row_out):
    """The run folder of a row: the newest finished one, else the newest with a checkpoint, else None."""
    runs = sorted(path.parent for path in Path(row_out).glob("*/*/config.json"))
    finished = [r for r in runs if is_finished(r)]
    started = [r for r in runs if trained_steps(r) is not None]
    return (finished or started or [None])[-1]


def is_finished(run_dir):
    metrics = run_dir / "metrics.json"
    return metrics.is_file() and "test" in read_json(metrics)


def trained_steps(run_dir):
    """Steps of the run's latest checkpoint, or None before the first one."""
    checkpoint = tf.train.latest_checkpoint(str(run_dir / CHECKPOINT_LATEST))
    return None if checkpoint is None else int(re.search(r"(\d+)$", checkpoint).group(1))


def check_same_settings(run_dir, config, n):
    """Refuse to continue or report a run folder made with another budget or other row flags."""
    saved = {**RECIPE, **read_json(run_dir / "config.json")}
    differing = [f"{key} {saved.get(key)!r} (asked now: {config.get(key)!r})"
                 for key in sorted(set(saved) | set(config))
                 if key not in NOT_BUDGET and saved.get(key) != config.get(key)]
    if differing:
        raise UsageError(f"row {n}'s run folder {run_dir} was trained with {', '.join(differing)}: "
                         "rerun with its settings, or pass another --out to start a new ablation")


def budget(config, runs):
    """The settings shared by every row, with the training set size that turns steps into epochs."""
    splits = [read_json(r / "split.json") for r in runs.values() if r is not None]
    return {"steps": config["max_steps"], "batch_size": config["batch_size"], "data": config["data"],
            "seed": config["seed"], "eval_every": config["eval_every"],
            "train_images": len(splits[0]["train"]) if splits else None}


def row_record(n, reference, flags, run_dir):
    record = {"row": n, "reference": reference, "flags": flags, "run": None, "finished": False,
              "steps": None, "metrics": None}
    if run_dir is not None:
        metrics = run_dir / "metrics.json"
        record.update(run=str(run_dir), finished=is_finished(run_dir), steps=trained_steps(run_dir),
                      metrics=read_json(metrics) if metrics.is_file() else None)
    return record


# ---------------------------------------------------------------------------------------------
# The table and the ordering agreement
# ---------------------------------------------------------------------------------------------

def markdown_table(rows, configs, record):
    b = record["budget"]
    if b["train_images"]:
        epochs = f"{b['steps'] * b['batch_size'] / b['train_images']:.1f} epochs of {b['train_images']} training images"
    else:
        epochs = "epochs known once a row has run"
    lines = [f"Budget: {b['steps']} training steps per row at batch {b['batch_size']} ({epochs}; "
             f"the reference trained 500 epochs), data `{b['data']}`, seed {b['seed']}, validation every "
             f"{b['eval_every']} steps; everything else the reference recipe. "
             "Ours: pixel accuracy of the best-by-validation checkpoint.", "",
             "| # | reference row | ours: description + switches | reference | ours, test | ours, validation | steps |",
             "|---|---|---|---|---|---|---|"]
    reference, ours = {}, {}
    for n, ((label, ref, _), config) in enumerate(zip(rows, configs), 1):
        entry = record["rows"][label]
        metrics = entry["metrics"] or {}
        test = metrics.get("test", {}).get("pixel_accuracy")
        validation = metrics.get("validation", {}).get("pixel_accuracy")
        if entry["steps"] is None:
            steps = "not run"
        elif entry["finished"]:
            steps = f"{entry['steps']} (best at {metrics['step']})"
        else:
            steps = f"{entry['steps']} (unfinished)"
        lines.append(f"| {n} | {label} | {architecture(config)} | {ref:.2f}% | {percent(test)} | "
                     f"{percent(validation)} | {steps} |")
        if test is not None:
            reference[n], ours[n] = ref, 100 * test
    lines += ["", *ordering_lines(ordering_agreement(reference, ours))]
    return "\n".join(lines) + "\n"


def architecture(config):
    switches = [name for key, name in (("tied_weights", "untied"), ("skip_connections", "no skips"),
                                       ("per_image_standardization", "no standardization"),
                                       ("batch_norm", "no batch norm")) if not config[key]]
    return f"`{config['arch']}`" + (f" {', '.join(switches)}" if switches else "")


def percent(fraction):
    return "—" if fraction is None else f"{100 * fraction:.2f}%"


def ordering_agreement(reference, ours):
    """How well `ours` ranks the rows like `reference` (both: row number -> accuracy).

    Returns the Spearman rank correlation (None if undefined) and the row pairs (a, b), with the
    reference scoring a below b, that ours orders the same way (`agree`) or not (`disagree`, ties included).
    """
    rows = sorted(reference)
    agree, disagree = [], []
    for i, a in enumerate(rows):
        for b in rows[i + 1:]:
            low, high = (a, b) if reference[a] <= reference[b] else (b, a)
            (agree if ours[low] < ours[high] else disagree).append((low, high))
    return {"rows": len(rows), "spearman": spearman([reference[r] for r in rows], [ours[r] for r in rows]),
            "agree": agree, "disagree": disagree}


def spearman(x, y):
    rx, ry = ranks(x), ranks(y)
    if len(rx) < 2 or rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def ranks(values):
    """Ranks from 1 (smallest); tied values share their mean rank."""
    values = np.asarray(values, dtype=float)
    result = np.empty(len(values))
    result[values.argsort(kind="stable")] = np.arange(1, len(values) + 1)
    for value in np.unique(values):
        result[values == value] = result[values == value].mean()
    return result


def ordering_lines(agreement):
    if agreement["rows"] < 2:
        return ["Ordering: needs at least two finished rows."]
    pairs = len(agreement["agree"]) + len(agreement["disagree"])
    rho = "undefined" if agreement["spearman"] is None else f"{agreement['spearman']:.2f}"
    return [f"Ordering: Spearman rank correlation {rho} over {agreement['rows']} finished rows; "
            f"{len(agreement['agree'])} of {pairs} pairs in the reference's order "
            "(a<b: the reference scores row a below row b).", "",
            f"- agrees: {', '.join(f'{a}<{b}' for a, b in agreement['agree']) or 'none'}",
            f"- disagrees: {', '.join(f'{a}<{b}' for a, b in agreement['disagree']) or 'none'}"]


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------

def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="Train the rows of the reference's architecture table at one equal budget and compare.")
    flag = parser.add_argument
    flag("--budget-steps", type=int, default=DEFAULTS["budget_steps"],
         help=f"training steps per row (default: {DEFAULTS['budget_steps']}, 5 epochs at batch 100)")
    flag("--rows", help=f"comma-separated row numbers 1-{len(ROWS)} to train (default: all)")
    flag("--data", default=DEFAULTS["data"], help=f"data folder (default: {DEFAULTS['data']})")
    flag("--batch-size", type=int, default=DEFAULTS["batch_size"],
         help=f"images per step (default: {DEFAULTS['batch_size']})")
    flag("--eval-every", type=int, default=DEFAULTS["eval_every"],
         help=f"validate every this many steps (default: {DEFAULTS['eval_every']}, one epoch at batch 100)")
    flag("--seed", type=int, default=DEFAULTS["seed"], help=f"split and training seed (default: {DEFAULTS['seed']})")
    flag("--out", default=DEFAULTS["out"], help=f"folder for the runs and the table (default: {DEFAULTS['out']})")
    args = parser.parse_args(argv)
    for name in ("budget_steps", "batch_size", "eval_every"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, not {getattr(args, name)}")
    return args


def row_numbers(text):
    numbers = set()
    for part in text.split(","):
        if not part.strip().isdigit() or not 1 <= int(part) <= len(ROWS):
            raise UsageError(f"--rows takes row numbers 1-{len(ROWS)} separated by commas "
                             f"(e.g. --rows 1,4,7), not {text!r}")
        numbers.add(int(part))
    return numbers


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    again = f"python benchmarks/ablation.py {shlex.join(argv)}".strip()
    try:
        args = parse_args(argv)
        only = row_numbers(args.rows) if args.rows else None
        shared = ["--data", args.data, "--batch-size", str(args.batch_size),
                  "--eval-every", str(args.eval_every), "--seed", str(args.seed)]
        stopped = run(ROWS, args.budget_steps, shared, args.out, only)
    except (UsageError, DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except TrainingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\ninterrupted; continue with: {again}", file=sys.stderr)
        return STOPPED
    if stopped is not None:
        print(f"stopped during row {stopped}; continue it and the rows after with: {again}", file=sys.stderr)
        return STOPPED
    return 0


if __name__ == "__main__":
    sys.exit(main())
