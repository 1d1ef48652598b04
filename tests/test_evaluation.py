"""Scoring a model on a split, and a trained model on a folder it was not trained on (more of
evaluating run folders is tested with training, test_training.py)."""
import json

import numpy as np
import pytest
import tensorflow as tf

import convolutional_autoencoder as ca
from conftest import TINY, make_face_folder, run_folders

from dataset import Dataset
from dataset import person_of
from model import Model
from runs.evaluation import evaluate_split, evaluation_step, person_intervals


def test_a_built_evaluation_step_scores_again_without_tracing(face_folder):
    dataset = Dataset(4, face_folder, seed=5, augment=False)
    model = Model.from_description("C3,8,2C3,8,1M2")
    model(tf.zeros([1, 64, 64, 1]))
    step = evaluation_step(model, dataset.num_classes, "flip")
    first = evaluate_split(model, dataset, "validation", "flip", step=step)
    traced = step.experimental_get_tracing_count()
    assert traced >= 1  # the step given was the one used
    assert evaluate_split(model, dataset, "validation", "flip", step=step) == first
    assert step.experimental_get_tracing_count() == traced
    assert evaluate_split(model, dataset, "validation", "flip") == first


def test_a_folder_the_model_was_not_trained_on_is_scored_whole(face_folder, tmp_path, capsys):
    out = tmp_path / "save"
    assert ca.main(["--data", str(face_folder), *TINY, "--max-steps", "1", "--out", str(out)]) == 0
    [run] = run_folders(out)
    other = make_face_folder(tmp_path / "other", persons=3, per_person=2, seed=1)
    capsys.readouterr()
    assert ca.main(["evaluate", "--model-dir", str(run), "--data", str(other)]) == 0
    printed = capsys.readouterr()
    assert printed.out.startswith(f"{run} on all (6 images): pixel_accuracy ")
    assert f"{other} does not hold the model's split" in printed.err and "every image in it is scored" in printed.err
    assert ca.main(["evaluate", "--model-dir", str(run), "--data", str(other), "--split", "all", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["images"] == 6 and result["split"] == "all"
    assert ca.main(["evaluate", "--model-dir", str(run), "--data", str(other), "--split", "validation"]) == 2
    assert "pass --split all to score every image in it" in capsys.readouterr().err
    # The folder it was trained on: the test split by default, every image with --split all.
    assert ca.main(["evaluate", "--model-dir", str(run), "--data", str(face_folder), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    test = json.loads((run / "split.json").read_text())["test"]
    assert result["split"] == "test" and result["images"] == len(test)
    intervals = result["intervals"]
    assert intervals["unit"] == "person" and intervals["units"] == len({person_of(name) for name in test})
    for name in ("pixel_accuracy", "mean_iu"):
        low, high = intervals[name]
        assert low <= result[name] <= high, name
    assert ca.main(["evaluate", "--model-dir", str(run), "--data", str(face_folder)]) == 0
    first, *rest = capsys.readouterr().out.splitlines()
    low, high = (f"{100 * bound:.2f}" for bound in intervals["pixel_accuracy"])
    assert f"pixel_accuracy {100 * result['pixel_accuracy']:.2f}% (95% CI {low}-{high})" in first
    assert f"95% CI: bootstrap over the {intervals['units']} persons of the split (1000 resamples, seed 0)" in rest


def image_confusion(accuracy, pixels=100):
    """One image's 2-class confusion matrix: half its pixels face, `accuracy` of each class right."""
    right = round(accuracy * pixels / 2)
    return [[right, pixels // 2 - right], [pixels // 2 - right, right]]


def test_intervals_resample_persons_not_images():
    """Four persons of 25 identical images each vary as much as four images: their interval is about
    sqrt(25) = 5 times as wide as that of 100 persons with one image each. Resampling images would
    make the two the same."""
    accuracies = np.repeat([0.90, 0.94, 0.96, 0.99], 25)
    confusions = [image_confusion(a) for a in accuracies]
    few = person_intervals(confusions, [f"P{i // 25}_{i:04d}" for i in range(100)])
    many = person_intervals(confusions, [f"P{i}_0001" for i in range(100)])
    assert (few["units"], many["units"]) == (4, 100)
    for name in ("pixel_accuracy", "mean_iu"):
        wide, narrow = (np.diff(intervals[name])[0] for intervals in (few, many))
        assert wide > 3 * narrow > 0, name


def test_intervals_are_of_the_pooled_metric_not_of_the_mean_over_persons():
    """20 persons with 9 right images each and 20 with one wrong image: pooled pixel accuracy 0.9,
    the mean of the persons' accuracies 0.5. The interval lies around the pooled one."""
    names = [f"Right_{p}_{k:04d}" for p in range(20) for k in range(9)] + [f"Wrong_{p}_0001" for p in range(20)]
    confusions = [image_confusion(1.0)] * 180 + [image_confusion(0.0)] * 20
    intervals = person_intervals(confusions, names)
    low, high = intervals["pixel_accuracy"]
    assert low < 0.9 < high and low > 0.8
    assert intervals["mean_iu"][0] > 0.6


def test_identical_persons_give_an_interval_of_zero_width():
    confusions = [image_confusion(0.9)] * 30
    intervals = person_intervals(confusions, [f"P{i // 3}_{i:04d}" for i in range(30)])
    assert intervals["pixel_accuracy"] == pytest.approx([0.9, 0.9])
