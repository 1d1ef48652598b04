"""Conv2d: conv -> batch norm -> bias -> leaky ReLU, and its tied transposed-convolution mirror."""
import numpy as np
import tensorflow as tf

from conv2d import Conv2d


def built(kernel=3, stride=2, channels=4, inputs=1, mirror=None, tied=True, batch_norm=True):
    layer = Conv2d(kernel, stride, channels)
    layer.build(inputs, inputs if mirror is None else mirror, tied, batch_norm)
    return layer


def test_forward_and_mirror_shapes():
    layer = built(kernel=7, stride=2, channels=8, inputs=3)
    x = tf.random.normal([2, 16, 12, 3])
    y = layer.forward(x, training=True)
    assert y.shape == (2, 8, 6, 8)
    back = layer.mirror(y, x, y, training=True)
    assert back.shape == x.shape


def test_tied_mirror_reuses_the_kernel_variable():
    layer = built()
    assert layer.mirror_kernel is layer.kernel
    untied = built(tied=False)
    assert untied.mirror_kernel is not untied.kernel
    assert untied.mirror_kernel.shape == untied.kernel.shape


def test_mirror_with_other_channel_count_gets_its_own_kernel_even_when_tied():
    layer = built(inputs=1, mirror=3, tied=True)
    assert layer.mirror_kernel is not layer.kernel
    assert layer.mirror_kernel.shape == (3, 3, 3, 4)
    x = tf.random.normal([1, 8, 8, 1])
    y = layer.forward(x, training=True)
    assert layer.mirror(y, x, y, training=True).shape == (1, 8, 8, 3)


def test_leaky_relu_with_leak_0_2_after_bias():
    layer = built(kernel=1, stride=1, channels=1, batch_norm=False)
    layer.kernel.assign(tf.ones([1, 1, 1, 1]))
    layer.bias.assign([0.5])
    x = tf.constant(np.linspace(-3, 3, 16, dtype=np.float32).reshape(1, 4, 4, 1))
    expected = np.where(x + 0.5 > 0, x + 0.5, 0.2 * (x + 0.5))
    np.testing.assert_allclose(layer.forward(x, training=False), expected, rtol=1e-6)


def test_mirror_is_the_transpose_of_the_forward_convolution():
    # <conv(x), y> == <x, conv_transpose(y)> for the same kernel: the mirror really is the transpose.
    layer = built(kernel=3, stride=2, channels=4, inputs=2, batch_norm=False)
    x = tf.random.normal([1, 8, 8, 2])
    y = tf.random.normal([1, 4, 4, 4])
    forward = tf.nn.conv2d(x, layer.kernel, 2, "SAME")
    backward = tf.nn.conv2d_transpose(y, layer.mirror_kernel, x.shape, 2, "SAME")
    np.testing.assert_allclose(tf.reduce_sum(forward * y), tf.reduce_sum(x * backward), rtol=1e-4)


def test_batch_norm_normalises_in_training():
    layer = built(kernel=3, stride=1, channels=4, inputs=1)
    x = tf.random.normal([4, 8, 8, 1]) * 10 + 3
    y = layer.forward(x, training=True)
    pre = (y.numpy() >= 0) * y.numpy() + (y.numpy() < 0) * y.numpy() / 0.2  # undo the leaky ReLU
    np.testing.assert_allclose(pre.mean(axis=(0, 1, 2)), 0, atol=1e-4)
    np.testing.assert_allclose(pre.std(axis=(0, 1, 2)), 1, atol=1e-2)


def test_bfloat16_input_runs_with_float32_variables():
    layer = built()
    x = tf.random.normal([2, 8, 8, 1], dtype=tf.float32)
    y = layer.forward(tf.cast(x, tf.bfloat16), training=True)
    assert y.dtype == tf.bfloat16
    assert layer.kernel.dtype == tf.float32
