"""The checks of a training configuration: each flag that cannot train is refused in one sentence."""
import re

import pytest

from config import DEFAULTS, UsageError, check


@pytest.mark.parametrize("override, message", [
    ({"batch_size": 0}, "--batch-size 0 must be at least 1"),
    ({"eval_every": 0}, "--eval-every 0 must be at least 1"),
    ({"epochs": 0}, "--epochs 0 must be at least 1"),
    ({"max_steps": 0}, "--max-steps 0 must be at least 1"),
    ({"lr": -1.0}, "--lr -1.0 must be a positive number"),
    ({"lr": 0.0}, "--lr 0.0 must be a positive number"),
    ({"lr": float("nan")}, "--lr nan must be a positive number"),
    ({"max_minutes": 0.0}, "--max-minutes 0.0 must be a positive number"),
    ({"seed": -1}, "--seed -1 must be 0 or more"),
    ({"epochs": 2, "clean_epochs": 3}, "--clean-epochs 3 is not a number of epochs of this run"),
    ({"clean_epochs": -1}, "--clean-epochs -1 is not a number of epochs of this run"),
])
def test_flags_that_cannot_train_are_refused_naming_the_flag(override, message):
    with pytest.raises(UsageError, match=re.escape(message)):
        check({**DEFAULTS, **override})


def test_descriptions_the_model_cannot_build_are_refused():
    with pytest.raises(ValueError, match=r"cannot read architecture description 'C7,64' at character 0"):
        check({**DEFAULTS, "arch": "C7,64"})
    with pytest.raises(ValueError, match=r"a linear output needs a description that starts with a convolution"):
        check({**DEFAULTS, "arch": "M2C3,8,1", "linear_output": True})


def test_the_reference_recipe_and_its_optional_limits_pass():
    check(DEFAULTS)
    check({**DEFAULTS, "max_steps": 1, "max_minutes": 0.5, "clean_epochs": DEFAULTS["epochs"], "seed": 0})
