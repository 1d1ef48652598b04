"""Batch normalisation with moving averages that are right from the first step.

The reference normalised with batch statistics even at test time. Here training uses batch
statistics and updates moving averages; evaluation and inference use the averages. With ~20 steps
per epoch an exponential average with Keras' momentum 0.99 trails the weights for hundreds of steps,
so the average starts as a plain running mean of the batches seen (decay n/(n+1)) and switches to
exponential decay `momentum` once that is smaller: evaluation is meaningful after one step.

Under a tf.distribute strategy the statistics are taken over the global batch (all replicas), so
N replicas train exactly like one device with N times the batch.
"""
import tensorflow as tf

MOMENTUM = 0.9
EPSILON = 1e-3


class BatchNorm(tf.Module):
    """Normalise over batch, height and width; no scale or offset (the layer adds its own bias)."""

    def __init__(self, channels, name=None):
        super().__init__(name=name)
        # The averages are assigned inside each replica during training, which a mirrored variable
        # only allows with an aggregation: ON_READ keeps one copy per replica (equal, as the
        # statistics are global) and reads outside the replicas, e.g. checkpoints, take their mean.
        # Without a strategy these are plain variables with the same checkpoint keys.
        statistic = dict(trainable=False, synchronization=tf.VariableSynchronization.ON_READ,
                         aggregation=tf.VariableAggregation.MEAN)
        self.moving_mean = tf.Variable(tf.zeros([channels]), name="moving_mean", **statistic)
        self.moving_variance = tf.Variable(tf.ones([channels]), name="moving_variance", **statistic)
        self.updates = tf.Variable(0.0, name="updates", **statistic)

    def __call__(self, x, training):
        if training:
            # Statistics in float32 even when x is bfloat16.
            mean, variance = moments(tf.cast(x, tf.float32))
            decay = tf.minimum(MOMENTUM, self.updates / (self.updates + 1.0))
            self.moving_mean.assign(decay * self.moving_mean + (1.0 - decay) * mean)
            self.moving_variance.assign(decay * self.moving_variance + (1.0 - decay) * variance)
            self.updates.assign_add(1.0)
        else:
            mean, variance = self.moving_mean, self.moving_variance
        scale = tf.math.rsqrt(variance + EPSILON)
        return x * tf.cast(scale, x.dtype) + tf.cast(-mean * scale, x.dtype)


def moments(x):
    """Mean and variance over batch, height and width, across all replicas of a tf.distribute strategy."""
    replica = tf.distribute.get_replica_context()
    if replica is None or replica.num_replicas_in_sync == 1:
        return tf.nn.moments(x, axes=[0, 1, 2])
    # all_reduce is differentiable (its gradient is again an all-reduce), so gradients see the
    # global statistics too; a replica with an empty batch (the end of an epoch) adds nothing.
    total = tf.distribute.ReduceOp.SUM
    count = replica.all_reduce(total, tf.cast(tf.reduce_prod(tf.shape(x)[:3]), tf.float32))
    mean = replica.all_reduce(total, tf.reduce_sum(x, axis=[0, 1, 2])) / count
    squares = tf.reduce_sum(tf.math.squared_difference(x, tf.stop_gradient(mean)), axis=[0, 1, 2])
    return mean, replica.all_reduce(total, squares) / count
