"""MaxPool2d: non-overlapping max pooling, mirrored by nearest-neighbour upsampling."""
import tensorflow as tf

from layer import Layer


class MaxPool2d(Layer):
    """Max pool of `kernel_size` with stride `kernel_size`.

    The mirror optionally adds the pooled encoder output (a skip link) and then repeats every pixel
    `kernel_size` times in both directions. The repeat is a reshape and broadcast rather than
    tf.image.resize, which is as fast and also compiles under XLA.
    """

    def __init__(self, kernel_size, name=None, skip_connection=False):
        super().__init__(name=name)
        self.kernel_size = kernel_size
        self.skip_connection = skip_connection

    def build(self, input_channels, mirror_channels, tied_weights, batch_norm):
        return input_channels

    def forward(self, x, training):
        return tf.nn.max_pool2d(x, self.kernel_size, self.kernel_size, "VALID")

    def mirror(self, x, encoder_input, encoder_output, training):
        if self.skip_connection:
            x = x + encoder_output
        return upsample_nearest(x, self.kernel_size)

    @property
    def description(self):
        return f"M{self.kernel_size}"

    @property
    def shrink(self):
        return self.kernel_size


def upsample_nearest(x, factor):
    """Repeat each pixel of an NHWC tensor `factor` times along height and width."""
    n, h, w, c = tf.unstack(tf.shape(x))
    # A reshape, not x[:, :, None, :, None, :]: TFLite's calibration for int8 (runs/export.py) cannot run
    # a 6-D strided slice.
    x = tf.reshape(x, [n, h, 1, w, 1, c])
    x = tf.broadcast_to(x, [n, h, factor, w, factor, c])
    return tf.reshape(x, [n, h * factor, w * factor, c])
