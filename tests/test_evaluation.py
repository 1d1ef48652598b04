"""Scoring a model on a split; evaluating a trained run folder is tested with training (test_training.py)."""
import tensorflow as tf

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
