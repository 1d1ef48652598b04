"""The FCN metrics against confusion matrices worked out by hand."""
import numpy as np
import pytest
import tensorflow as tf

from runs.metrics import confusion_matrices, confusion_matrix, predicted_classes, scores


def test_two_classes_by_hand():
    # rows: truth, columns: prediction. background: 6 right, 2 wrong; face: 3 right, 1 wrong.
    result = scores([[6, 2], [1, 3]])
    assert result["pixel_accuracy"] == pytest.approx(9 / 12)
    assert result["mean_accuracy"] == pytest.approx((6 / 8 + 3 / 4) / 2)
    iu = [6 / (8 + 7 - 6), 3 / (4 + 5 - 3)]
    assert result["mean_iu"] == pytest.approx(sum(iu) / 2)
    assert result["fw_iu"] == pytest.approx((8 * iu[0] + 4 * iu[1]) / 12)
    assert result["class_iu"] == pytest.approx(iu)


def test_class_absent_from_ground_truth_but_predicted():
    # hair (class 2) never occurs in the truth but is predicted twice: accuracy undefined, IU 0.
    confusion = [[5, 0, 1], [0, 3, 1], [0, 0, 0]]
    result = scores(confusion)
    assert result["pixel_accuracy"] == pytest.approx(8 / 10)
    assert result["mean_accuracy"] == pytest.approx((5 / 6 + 3 / 4) / 2)
    iu = [5 / (6 + 5 - 5), 3 / (4 + 3 - 3), 0.0]
    assert result["mean_iu"] == pytest.approx(sum(iu) / 3)
    assert result["fw_iu"] == pytest.approx((6 * iu[0] + 4 * iu[1]) / 10)


def test_class_absent_everywhere_is_left_out():
    result = scores([[4, 0, 0], [0, 4, 0], [0, 0, 0]])
    assert result["mean_iu"] == pytest.approx(1.0)
    assert result["mean_accuracy"] == pytest.approx(1.0)
    assert result["class_iu"][2] is None


def test_confusion_matrix_and_predictions():
    probabilities = tf.constant([[[[0.2], [0.7]], [[0.5], [0.49]]]])
    predicted = predicted_classes(probabilities)
    np.testing.assert_array_equal(predicted, [[[0, 1], [1, 0]]])
    labels = tf.constant([[[0, 1], [0, 0]]])
    np.testing.assert_array_equal(confusion_matrix(labels, predicted, 2), [[2, 1], [0, 1]])
    three = tf.constant([[[[0.1, 0.2, 0.7], [0.6, 0.3, 0.1]]]])
    np.testing.assert_array_equal(predicted_classes(three), [[[2, 0]]])


def test_confusion_matrices_count_each_image_on_its_own():
    labels = tf.constant([[[0, 2], [1, 1]], [[2, 2], [0, 1]]])
    predicted = tf.constant([[[0, 1], [1, 2]], [[2, 0], [0, 0]]])
    each = confusion_matrices(labels, predicted, 3).numpy()
    assert each.shape == (2, 3, 3)
    np.testing.assert_array_equal(each[0], [[1, 0, 0], [0, 1, 1], [0, 1, 0]])
    np.testing.assert_array_equal(each[1], [[1, 0, 0], [1, 0, 0], [1, 0, 1]])
    np.testing.assert_array_equal(each.sum(axis=0), confusion_matrix(labels, predicted, 3))
