"""runs/losses.py: each objective against its formula written out in numpy, for one and three classes."""
import numpy as np
import pytest
import tensorflow as tf

from runs.losses import loss_function

RNG = np.random.default_rng(0)
LOGITS = {1: RNG.normal(size=(2, 4, 5, 1)).astype(np.float32), 3: RNG.normal(size=(2, 4, 5, 3)).astype(np.float32)}
LABELS = {1: RNG.integers(0, 2, (2, 4, 5)), 3: RNG.integers(0, 3, (2, 4, 5))}


def probabilities_and_truth(num_classes):
    logits, labels = LOGITS[num_classes], LABELS[num_classes]
    if num_classes == 1:
        return 1 / (1 + np.exp(-logits)), labels[..., None].astype(np.float64)
    exp = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return exp / exp.sum(axis=-1, keepdims=True), np.eye(num_classes)[labels]


def cross_entropy(probs, truth):
    if truth.shape[-1] == 1:
        return -np.mean(truth * np.log(probs) + (1 - truth) * np.log(1 - probs))
    return -np.mean(np.sum(truth * np.log(probs), axis=-1))


def dice_loss(probs, truth):
    overlap, union = (probs * truth).sum(axis=(0, 1, 2)), (probs + truth).sum(axis=(0, 1, 2))
    return 1 - np.mean((2 * overlap + 1) / (union + 1))


@pytest.mark.parametrize("num_classes", [1, 3])
@pytest.mark.parametrize("kind", ["rmse", "bce", "bce_dice"])
def test_loss_is_its_formula(kind, num_classes):
    probs, truth = probabilities_and_truth(num_classes)
    expected = {"rmse": lambda: np.sqrt(np.mean((probs - truth) ** 2)),
                "bce": lambda: cross_entropy(probs, truth),
                "bce_dice": lambda: cross_entropy(probs, truth) + dice_loss(probs, truth)}[kind]()
    loss = loss_function(kind, num_classes)(tf.constant(LOGITS[num_classes]), tf.constant(LABELS[num_classes]))
    assert float(loss) == pytest.approx(expected, rel=1e-5)


def test_a_perfect_prediction_costs_almost_nothing():
    labels = LABELS[1]
    logits = np.where(labels[..., None] == 1, 20.0, -20.0).astype(np.float32)
    for kind in ("rmse", "bce"):
        assert float(loss_function(kind, 1)(tf.constant(logits), tf.constant(labels))) < 1e-6
