"""MaxPool2d: non-overlapping max pool; mirror = optional skip addition, then nearest upsampling."""
import numpy as np
import tensorflow as tf

from max_pool_2d import MaxPool2d, upsample_nearest


def test_forward_takes_the_max_of_each_block():
    x = tf.constant(np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1))
    y = MaxPool2d(2).forward(x, training=False)
    np.testing.assert_array_equal(y[0, ..., 0], [[5, 7], [13, 15]])


def test_upsample_repeats_each_pixel():
    x = tf.constant([[[[1.0], [2.0]], [[3.0], [4.0]]]])
    np.testing.assert_array_equal(upsample_nearest(x, 2)[0, ..., 0],
                                  [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    x = tf.random.normal([2, 3, 5, 4])
    np.testing.assert_array_equal(upsample_nearest(x, 3), tf.image.resize(x, [9, 15], "nearest"))


def test_mirror_adds_the_skip_before_upsampling():
    x = tf.random.normal([1, 8, 8, 2])
    pool = MaxPool2d(2, skip_connection=True)
    pooled = pool.forward(x, training=False)
    decoder_input = tf.ones_like(pooled)
    with_skip = pool.mirror(decoder_input, x, pooled, training=False)
    np.testing.assert_allclose(with_skip, upsample_nearest(decoder_input + pooled, 2))
    without = MaxPool2d(2).mirror(decoder_input, x, pooled, training=False)
    np.testing.assert_allclose(without, upsample_nearest(decoder_input, 2))
