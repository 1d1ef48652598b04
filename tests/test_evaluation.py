"""Scoring a model on a split, and a trained model on a folder it was not trained on (more of
evaluating run folders is tested with training, test_training.py)."""
import json

import tensorflow as tf

import convolutional_autoencoder as ca
from conftest import TINY, make_face_folder, run_folders

from dataset import Dataset
from evaluation import evaluate_split, evaluation_step
from model import Model


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
    assert result["split"] == "test" and result["images"] == len(json.loads((run / "split.json").read_text())["test"])
