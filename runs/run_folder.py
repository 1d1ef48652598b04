"""A run folder, save/<description>/<timestamp>/: what training writes and evaluation reads.

config.json (the resolved configuration), split.json, latest/ (the checkpoint --resume continues),
best/ (the best weights by validation pixel accuracy), metrics.json, logs/ (TensorBoard) and
image_plots/. pretrained/ has the same layout.
"""
import json
import os
import time
from pathlib import Path

import tensorflow as tf

from runs.config import UsageError

CHECKPOINT_BEST, CHECKPOINT_LATEST = "best", "latest"


def write_json(path, value):
    """Write JSON atomically, so a crash never leaves a half-written file."""
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        json.dump(value, f, indent=2)
    os.replace(temporary, path)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def new_run_dir(parent):
    """A fresh parent/<timestamp>/ folder; a suffix keeps runs started in the same second apart."""
    parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in ("", *(f"-{i}" for i in range(1, 100))):
        try:
            (parent / (stamp + suffix)).mkdir()
            return parent / (stamp + suffix)
        except FileExistsError:
            continue
    raise UsageError(f"cannot make a new run folder in {parent}: remove old runs")


# What a model directory can be, as the error sentences name it.
RUN_FOLDERS = "a training run folder (save/<description>/<timestamp>/) or pretrained/"


def check_run_folder(model_dir, what="model directory", needs=("config.json",), kinds=RUN_FOLDERS):
    """The best checkpoint of a trained run folder (or pretrained/); UsageError when it has none
    or lacks one of the files `needs`. `kinds` names what the caller accepts, for the sentence."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise UsageError(f"{what} {model_dir} does not exist: pass {kinds}")
    for name in needs:
        if not (model_dir / name).is_file():
            raise UsageError(f"{model_dir} has no {name}: pass {kinds}")
    checkpoint = tf.train.latest_checkpoint(str(model_dir / CHECKPOINT_BEST))
    if checkpoint is None:
        raise UsageError(f"{model_dir / CHECKPOINT_BEST} holds no checkpoint: the run has not evaluated yet, "
                         "train it longer (--resume) or pass another folder")
    return checkpoint


def training_time(model_dir):
    """(steps, minutes) of the run that wrote model_dir/logs, from its TensorBoard event times.

    A resumed run has one event file per process; the minutes add up each file's span, so the time
    the run lay stopped between processes does not count (the steps a killed process took after its
    last checkpoint do, as they were paid for).
    """
    steps, minutes = 0, None
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # summary_iterator's deprecation notice is not for our users
    try:
        for path in sorted(Path(model_dir).glob("logs/events.*")):
            times = []
            for event in tf.compat.v1.train.summary_iterator(str(path)):
                times.append(event.wall_time)
                steps = max(steps, event.step)
            if times:
                minutes = (minutes or 0) + (max(times) - min(times)) / 60
    finally:
        logger.setLevel(level)
    return steps, minutes


def init_chain(model_dir):
    """The run folders `model_dir` was started from with --init-from, nearest first (those that exist).

    init_from is written as given, relative to where training ran (usually the project root), so a
    path not found from here is looked up under the project root.
    """
    seen = {Path(model_dir).resolve()}
    folder = Path(model_dir)
    while True:
        config_path = folder / "config.json"
        source = read_json(config_path).get("init_from") if config_path.is_file() else None
        if source and not Path(source).is_dir():
            source = Path(__file__).resolve().parents[1] / source  # a path relative to the project root
        if not source or not Path(source).is_dir() or Path(source).resolve() in seen:
            return
        folder = Path(source)
        seen.add(folder.resolve())
        yield folder
