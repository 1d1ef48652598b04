"""The FCN paper's segmentation metrics (Long et al. 2015, section 5), from a confusion matrix.

With n_ij the pixels of true class i predicted as j and t_i = sum_j n_ij:
pixel accuracy = sum_i n_ii / sum_i t_i; mean accuracy = mean_i n_ii / t_i;
mean IU = mean_i n_ii / (t_i + sum_j n_ji - n_ii); frequency-weighted IU = sum_i t_i IU_i / sum_i t_i.
As in the paper's own scoring code, a class absent from the ground truth has no accuracy and is left
out of the mean accuracy; its IU is 0 when it was predicted somewhere and undefined (left out) if not.
"""
import numpy as np
import tensorflow as tf

METRIC_NAMES = ("pixel_accuracy", "mean_accuracy", "mean_iu", "fw_iu")


def predicted_classes(probabilities, threshold=0.5):
    """Class ids [N, H, W]: probability >= threshold for one channel, argmax otherwise."""
    if probabilities.shape[-1] == 1:
        return tf.cast(probabilities[..., 0] >= threshold, tf.int32)
    return tf.argmax(probabilities, axis=-1, output_type=tf.int32)


def confusion_matrix(labels, predictions, num_classes):
    """int64 [num_classes, num_classes] counts; rows are true classes, columns predictions."""
    return tf.math.confusion_matrix(tf.reshape(labels, [-1]), tf.reshape(predictions, [-1]),
                                    num_classes, dtype=tf.int64)


def confusion_matrices(labels, predictions, num_classes):
    """int64 [N, num_classes, num_classes]: confusion_matrix of each of the N images of a batch."""
    pairs = tf.reshape(labels * num_classes + predictions, [tf.shape(labels)[0], -1])
    counts = tf.math.bincount(pairs, minlength=num_classes ** 2, maxlength=num_classes ** 2, axis=-1,
                              dtype=tf.int64)
    return tf.reshape(counts, [-1, num_classes, num_classes])


def scores(confusion):
    """The four metrics as floats, plus per-class IU, from a confusion matrix."""
    n = np.asarray(confusion, dtype=np.float64)
    true_per_class = n.sum(axis=1)
    hits = np.diag(n)
    union = true_per_class + n.sum(axis=0) - hits
    with np.errstate(divide="ignore", invalid="ignore"):
        accuracy = hits / true_per_class
        iu = hits / union
    frequency = true_per_class / n.sum()
    present = frequency > 0
    return {"pixel_accuracy": float(hits.sum() / n.sum()),
            "mean_accuracy": float(np.nanmean(accuracy)),
            "mean_iu": float(np.nanmean(iu)),
            "fw_iu": float((frequency[present] * iu[present]).sum()),
            "class_iu": [None if np.isnan(x) else float(x) for x in iu]}
