"""A run's configuration: the reference recipe every training flag defaults to, and the model and the
dataset a configuration (a run's config.json) builds."""
import math

from dataset import Dataset
from model import REFERENCE_DESCRIPTION, Model, check_description
from runs import auto_precision

# The reference recipe. Every flag of the training command defaults to this table.
DEFAULTS = {
    "data": "data128_128",
    "targets": "face",
    "arch": REFERENCE_DESCRIPTION,
    "tied_weights": True,
    "skip_connections": True,
    "per_image_standardization": True,
    "batch_norm": True,
    "linear_output": False,
    "epochs": 500,
    "max_steps": None,
    "max_minutes": None,
    "batch_size": 100,
    "lr": 1e-3,
    "schedule": "constant",
    "loss": "rmse",
    "augment": True,
    "clean_epochs": 0,
    "low_res_epochs": 0,
    "eval_every": 100,
    "tta": "none",
    "precision": "fp32",
    "seed": 0,
    "out": "save",
    "skip_bad": False,
    "strategy": "default",
    "streaming": False,
    "init_from": None,
    "test_at_end": False,
}
# What may change when a run is resumed; everything else comes from its config.json.
RESUMABLE = ("epochs", "max_steps", "max_minutes", "eval_every", "strategy", "streaming", "test_at_end")
COMPUTE_DTYPES = {"fp32": "float32", "bf16": "bfloat16"}
# What --precision accepts: `auto` runs the faster of the two on this CPU (runs/auto_precision.py).
PRECISIONS = ("auto", *COMPUTE_DTYPES)


class UsageError(Exception):
    """A command-line mistake (a flag, a run folder), explained in one sentence."""


def resolve_precision(precision, config=None, size=None, kind="inference"):
    """(the precision to run, a note on why for `auto`). `auto` needs the run's `config` and input `size`
    (height, width): it is fp32 on a CPU without native bf16, elsewhere the faster of fp32 and bf16 for
    this model's `kind` of work ("inference" or "training"), measured once and cached."""
    if precision != "auto":
        return precision, ""
    return auto_precision.choose(lambda choice: build_model({**config, "precision": choice}), size, kind)


def check(config):
    """Raise UsageError, naming the flag, for a configuration that cannot train; before any data is read."""
    for key in ("epochs", "batch_size", "eval_every", "max_steps"):
        if config[key] is not None and config[key] < 1:
            raise UsageError(f"{flag(key)} {config[key]} must be at least 1")
    for key in ("lr", "max_minutes"):
        if config[key] is not None and not 0 < config[key] < math.inf:
            raise UsageError(f"{flag(key)} {config[key]} must be a positive number")
    for key in ("clean_epochs", "low_res_epochs"):
        if not 0 <= config[key] <= config["epochs"]:
            raise UsageError(f"{flag(key)} {config[key]} is not a number of epochs of this run: "
                             f"pass a number from 0 to --epochs ({config['epochs']})")
    if config["seed"] < 0:
        raise UsageError(f"--seed {config['seed']} must be 0 or more")
    check_description(config["arch"], config["linear_output"])


def flag(key):
    """The command-line flag of a configuration key: batch_size -> --batch-size."""
    return "--" + key.replace("_", "-")


def input_size(config):
    """(height, width) of the images a run was trained on; runs that do not record it used data128_128."""
    size = config.get("image_size", 128)
    return (size, size) if isinstance(size, int) else tuple(size)


def build_model(config):
    """The Model of a configuration, untrained."""
    num_classes = 3 if config["targets"] == "classes3" else 1
    return Model.from_description(
        config["arch"], per_image_standardization=config["per_image_standardization"],
        batch_norm=config["batch_norm"], skip_connections=config["skip_connections"],
        tied_weights=config["tied_weights"], num_classes=num_classes,
        linear_output=config["linear_output"], compute_dtype=COMPUTE_DTYPES[config["precision"]])


def make_dataset(config, split=None, augment=None):
    """The Dataset of a configuration, split by `split` (a saved split) or afresh from its seed."""
    return Dataset(config["batch_size"], config["data"], include_hair=config["targets"] == "face_hair",
                   three_classes=config["targets"] == "classes3", seed=config["seed"], split=split,
                   augment=config["augment"] if augment is None else augment, skip_bad=config["skip_bad"],
                   streaming=config["streaming"])
