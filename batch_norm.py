"""Batch normalisation with moving averages that are right from the first step.

The reference normalised with batch statistics even at test time. Here training uses batch
statistics and updates moving averages; evaluation and inference use the averages. With ~20 steps
per epoch an exponential average with Keras' momentum 0.99 trails the weights for hundreds of steps,
so the average starts as a plain running mean of the batches seen (decay n/(n+1)) and switches to
exponential decay `momentum` once that is smaller: evaluation is meaningful after one step.
"""
import tensorflow as tf

MOMENTUM = 0.9
EPSILON = 1e-3


class BatchNorm(tf.Module):
    """Normalise over batch, height and width; no scale or offset (the layer adds its own bias)."""

    def __init__(self, channels, name=None):
        super().__init__(name=name)
        self.moving_mean = tf.Variable(tf.zeros([channels]), trainable=False, name="moving_mean")
        self.moving_variance = tf.Variable(tf.ones([channels]), trainable=False, name="moving_variance")
        self.updates = tf.Variable(0.0, trainable=False, name="updates")

    def __call__(self, x, training):
        if training:
            # Statistics in float32 even when x is bfloat16.
            mean, variance = tf.nn.moments(tf.cast(x, tf.float32), axes=[0, 1, 2])
            decay = tf.minimum(MOMENTUM, self.updates / (self.updates + 1.0))
            self.moving_mean.assign(decay * self.moving_mean + (1.0 - decay) * mean)
            self.moving_variance.assign(decay * self.moving_variance + (1.0 - decay) * variance)
            self.updates.assign_add(1.0)
        else:
            mean, variance = self.moving_mean, self.moving_variance
        scale = tf.math.rsqrt(variance + EPSILON)
        return x * tf.cast(scale, x.dtype) + tf.cast(-mean * scale, x.dtype)
