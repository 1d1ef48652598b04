"""Mean and spread over seeds of one recipe, read from its training logs: one JSON line + a markdown table.

`python benchmarks/seeds.py LOG...` reads, from each log of `python convolutional_autoencoder.py ...
--test-at-end`, the `best checkpoint (step N) on the test split` line that ends it and the `step N
validation` line of the same step (the validation score that chose that checkpoint), and prints per log
the seed (its `--seed` on the `$ python ...` line), validation and test pixel accuracy and mean IU, then
their mean and min-max over the logs. Figures are percentages as the logs print them (two decimals): the
mean is the mean of those. Not a speed benchmark; see benchmarks/README.md.
"""
import argparse
import re
import sys
from pathlib import Path

from bench import report

METRICS = ("pixel_accuracy", "mean_accuracy", "mean_iu", "fw_iu")
SPLITS = ("validation", "test")
TABLE_METRICS = (("validation", "pixel_accuracy"), ("test", "pixel_accuracy"), ("validation", "mean_iu"),
                 ("test", "mean_iu"))
TEST_LINE = re.compile(r"best checkpoint \(step (\d+)\) on the test split: (.*)")
VALIDATION_LINE = re.compile(r"step (\d+) validation: (.*)")
SCORE = re.compile(rf"\b({'|'.join(METRICS)}) (\d+(?:\.\d+)?)%")
SEED = re.compile(r"--seed[ =](\d+)")


class SeedsError(Exception):
    """A log cannot be read as asked; the message names it and says what to do."""


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Mean and min-max over seeds of validation and test scores, "
                                                 "from training logs of --test-at-end runs; one JSON line + a table.")
    parser.add_argument("logs", nargs="+", metavar="LOG", help="training logs, one per seed")
    parser.add_argument("--json-out", help="also write the JSON line to this file")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        result = summarize([read_log(Path(log)) for log in args.logs])
    except SeedsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    report(result, table(result), args.json_out)
    return 0


def read_log(path):
    """{"log", "seed", "step", "validation", "test"} of one training log; scores in percent by metric."""
    if not path.is_file():
        raise SeedsError(f"{path} does not exist: pass the training logs, one per seed")
    lines = path.read_text(errors="replace").splitlines()
    tests = [match for match in map(TEST_LINE.search, lines) if match]
    if not tests:
        raise SeedsError(f"{path} has no 'best checkpoint (step N) on the test split' line: the run did not finish, "
                         "or it was trained without --test-at-end")
    step = int(tests[-1][1])
    validations = [match for match in map(VALIDATION_LINE.search, lines) if match and int(match[1]) == step]
    if not validations:
        raise SeedsError(f"{path} has no 'step {step} validation' line for its best checkpoint: pass the whole log")
    return {"log": str(path), "seed": seed_of(lines), "step": step,
            "validation": scores(validations[-1][2], path), "test": scores(tests[-1][2], path)}


def seed_of(lines):
    """The --seed of the log's `$ python convolutional_autoencoder.py` line: "default" without one, None
    when the log has no such line."""
    commands = [line for line in lines if line.startswith("$ ") and "convolutional_autoencoder.py" in line
                and " evaluate " not in line]
    if not commands:
        return None
    seed = SEED.search(commands[0])
    return int(seed[1]) if seed else "default"


def scores(text, path):
    """{metric: percent} of a line of format_scores (runs/evaluation.py), intervals ignored."""
    found = {name: float(value) for name, value in SCORE.findall(text)}
    if set(found) != set(METRICS):
        raise SeedsError(f"{path}: a score line lacks {', '.join(m for m in METRICS if m not in found)}: {text}")
    return found


def spread(values):
    """{"mean", "min", "max", "values"} of a list of percentages."""
    return {"mean": sum(values) / len(values), "min": min(values), "max": max(values), "values": list(values)}


def summarize(runs):
    """The runs and, per split and metric, their mean and min-max."""
    return {"runs": runs, "count": len(runs),
            "summary": {split: {name: spread([run[split][name] for run in runs]) for name in METRICS}
                        for split in SPLITS}}


def cell(figure):
    """mean% (min-max) of a spread."""
    return f"{figure['mean']:.2f}% ({figure['min']:.2f}-{figure['max']:.2f})"


def table(result):
    header = ["log", "seed", "best step"] + [f"{split} {name.replace('_', ' ').replace('iu', 'IU')}"
                                             for split, name in TABLE_METRICS]
    lines = [f"{result['count']} runs; percentages as each log prints them, its best checkpoint's validation line "
             "and test line; last row: the mean (min-max) over the runs", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in result["runs"]:
        seed = "-" if run["seed"] is None else run["seed"]
        figures = [f"{run[split][name]:.2f}%" for split, name in TABLE_METRICS]
        lines.append(f"| {Path(run['log']).name} | {seed} | {run['step']} | " + " | ".join(figures) + " |")
    summary = result["summary"]
    lines.append(f"| mean (min-max) of {result['count']} | | | "
                 + " | ".join(cell(summary[split][name]) for split, name in TABLE_METRICS) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
