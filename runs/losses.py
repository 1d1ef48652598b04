"""The training objective: RMSE of the probabilities (the reference), cross-entropy, or cross-entropy
plus soft Dice, summed correctly across the replicas of a tf.distribute strategy."""
import tensorflow as tf

from model import probabilities


def loss_function(kind, num_classes):
    """loss(logits, labels) for `rmse` (the reference), `bce` or `bce_dice`, over the global batch.

    Under a tf.distribute strategy each replica holds a slice of the batch: the sums the loss is
    made of are added up across replicas (all_reduce, whose gradient is again an all-reduce) and the
    loss is divided by the number of replicas, because the optimizer adds up their gradients. The
    replicas' losses then add up to the loss of the global batch, and so do their gradients.
    """

    def loss(logits, labels):
        replica = tf.distribute.get_replica_context()

        def total(x, axis=None):
            return replica.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(x, axis))

        if num_classes == 1:
            truth = tf.cast(labels, tf.float32)[..., None]
        else:
            truth = tf.one_hot(labels, num_classes)
        probs = probabilities(logits)
        pixels = total(tf.cast(tf.size(labels), tf.float32))
        if kind == "rmse":
            value = tf.sqrt(total(tf.square(probs - truth)) / (pixels * truth.shape[-1]))
        elif num_classes == 1:
            value = total(tf.nn.sigmoid_cross_entropy_with_logits(truth, logits)) / pixels
        else:
            value = total(tf.nn.softmax_cross_entropy_with_logits(truth, logits)) / pixels
        if kind == "bce_dice":
            overlap = total(probs * truth, axis=[0, 1, 2])
            union = total(probs + truth, axis=[0, 1, 2])
            value += 1.0 - tf.reduce_mean((2.0 * overlap + 1.0) / (union + 1.0))
        return value / replica.num_replicas_in_sync

    return loss
