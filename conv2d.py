"""Conv2d: convolution -> batch norm -> + bias -> leaky ReLU, mirrored by a transposed convolution."""
import tensorflow as tf

from batch_norm import BatchNorm
from layer import Layer

LEAK = 0.2


class Conv2d(Layer):
    """A SAME-padded convolution whose mirror is a transposed convolution with the same arguments.

    With tied weights the mirror reuses this layer's kernel (the reference's shared weights) and has
    its own bias and batch norm. When the mirror must output a different number of channels than this
    layer takes in (the first layer of a multi-class model: 1 channel in, 3 classes out) the kernel
    shapes differ, so the mirror gets its own kernel even when weights are tied.

    `linear_mirror` (set by the Model for the first layer when asked for a linear output) makes the
    mirror a transposed convolution + bias only: no batch norm, no leaky ReLU.
    """

    def __init__(self, kernel_size, stride, output_channels, name=None):
        super().__init__(name=name)
        self.kernel_size = kernel_size
        self.stride = stride
        self.output_channels = output_channels
        self.linear_mirror = False

    def build(self, input_channels, mirror_channels, tied_weights, batch_norm):
        k, c = self.kernel_size, self.output_channels
        glorot = tf.keras.initializers.GlorotUniform()
        with self.name_scope:
            self.kernel = tf.Variable(glorot([k, k, input_channels, c]), name="kernel")
            self.bias = tf.Variable(tf.zeros([c]), name="bias")
            self.norm = BatchNorm(c, name="norm") if batch_norm else None
            if tied_weights and mirror_channels == input_channels:
                self.mirror_kernel = self.kernel
            else:
                self.mirror_kernel = tf.Variable(glorot([k, k, mirror_channels, c]), name="mirror_kernel")
            self.mirror_bias = tf.Variable(tf.zeros([mirror_channels]), name="mirror_bias")
            self.mirror_norm = (BatchNorm(mirror_channels, name="mirror_norm")
                                if batch_norm and not self.linear_mirror else None)
        return c

    def forward(self, x, training):
        kernel = tf.cast(self.kernel, x.dtype)
        y = tf.nn.conv2d(x, kernel, self.stride, "SAME")
        return self._activate(y, self.norm, self.bias, training)

    def mirror(self, x, encoder_input, encoder_output, training):
        kernel = tf.cast(self.mirror_kernel, x.dtype)
        shape = tf.concat([tf.shape(encoder_input)[:3], [kernel.shape[2]]], axis=0)
        y = tf.nn.conv2d_transpose(x, kernel, shape, self.stride, "SAME")
        if self.linear_mirror:
            return y + tf.cast(self.mirror_bias, y.dtype)
        return self._activate(y, self.mirror_norm, self.mirror_bias, training)

    @staticmethod
    def _activate(y, norm, bias, training):
        if norm is not None:
            y = norm(y, training)
        return tf.nn.leaky_relu(y + tf.cast(bias, y.dtype), LEAK)

    @property
    def description(self):
        return f"C{self.kernel_size},{self.output_channels},{self.stride}"

    @property
    def shrink(self):
        return self.stride
