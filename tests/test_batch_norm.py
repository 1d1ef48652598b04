"""BatchNorm: batch statistics in training, moving averages that are right from the first step."""
import numpy as np
import tensorflow as tf

from batch_norm import MOMENTUM, BatchNorm


def test_first_update_takes_the_batch_statistics():
    norm = BatchNorm(3)
    x = tf.random.normal([4, 5, 5, 3]) * 4 + 7
    trained = norm(x, training=True)
    np.testing.assert_allclose(norm(x, training=False), trained, atol=1e-4)


def test_running_mean_then_exponential_decay():
    norm = BatchNorm(1)
    for value in (1.0, 2.0, 3.0):
        norm(tf.fill([2, 2, 2, 1], value), training=True)
    np.testing.assert_allclose(norm.moving_mean.numpy(), [2.0], rtol=1e-6)  # plain mean of 1, 2, 3
    for _ in range(200):
        norm(tf.fill([2, 2, 2, 1], 10.0), training=True)
    np.testing.assert_allclose(norm.moving_mean.numpy(), [10.0], rtol=1e-3)
    before = norm.moving_mean.numpy()[0]
    norm(tf.fill([2, 2, 2, 1], 0.0), training=True)
    np.testing.assert_allclose(norm.moving_mean.numpy(), [MOMENTUM * before], rtol=1e-5)
