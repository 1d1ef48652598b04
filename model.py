"""The network: a stack of Layer objects written in a description grammar, mirrored into a decoder.

`C<kernel>,<channels>,<stride>` is a Conv2d and `M<size>` a MaxPool2d; the reference is
C7,64,2C7,64,1M2C7,64,2C7,64,1M2C7,64,2C7,64,1M2. The Model only stacks the layers and reverses them:
each layer knows how to build its encoder op and its mirror.
"""
import json
import re

import numpy as np
import tensorflow as tf

from conv2d import Conv2d
from max_pool_2d import MaxPool2d

# The reference architecture: three modules of conv stride 2, conv stride 1, max pool 2.
REFERENCE_DESCRIPTION = "C7,64,2C7,64,1M2C7,64,2C7,64,1M2C7,64,2C7,64,1M2"

_TOKEN = re.compile(r"C(\d+),(\d+),(\d+)|M(\d+)")


def layers_from_description(text, skip_connections=True):
    """Layers for a description such as `C7,64,2C7,64,1M2`; skip links on every pool but the last layer."""
    layers, position = [], 0
    for match in _TOKEN.finditer(text):
        if match.start() != position:
            break
        position = match.end()
        if match.group(4):
            layers.append(MaxPool2d(int(match.group(4)), name=f"pool{len(layers)}"))
        else:
            kernel, channels, stride = (int(g) for g in match.groups()[:3])
            layers.append(Conv2d(kernel, stride, channels, name=f"conv{len(layers)}"))
    if position != len(text) or not layers:
        raise ValueError(
            f"cannot read architecture description {text!r} at character {position}: "
            "write layers as C<kernel>,<channels>,<stride> or M<pool size>, e.g. C7,64,2C7,64,1M2")
    for layer in layers[:-1]:
        if isinstance(layer, MaxPool2d):
            layer.skip_connection = skip_connections
    return layers


def check_description(text, linear_output=False):
    """Raise ValueError unless the Model can build the description `text` (with `linear_output`)."""
    layers = layers_from_description(text)
    if linear_output:
        _check_linear_output(layers)


def _check_linear_output(layers):
    if not isinstance(layers[0], Conv2d):
        raise ValueError(f"a linear output needs a description that starts with a convolution, "
                         f"not {layers[0].description}")


def activation_elements(text, height, width, num_classes=1):
    """Elements of every encoder and decoder layer's output for one height x width image of the
    description `text`: the tensors a training step keeps for its backward pass, one of each size."""
    elements, channels = 0, 1
    for i, layer in enumerate(layers_from_description(text)):
        elements += height * width * (num_classes if i == 0 else channels)  # the mirror gives back its input
        height, width = -(-height // layer.shrink), -(-width // layer.shrink)
        channels = getattr(layer, "output_channels", channels)
        elements += height * width * channels
    return elements


class Model(tf.Module):
    """Encoder of Layer objects; the decoder is each layer's mirror, in reverse order.

    Calling the model on float32 images [N, H, W, 1] in [0, 1] returns per-pixel probabilities
    [N, H, W, num_classes] (sigmoid for one class, softmax otherwise). `training` selects batch
    statistics (and updates the moving averages) or the moving averages. `compute_dtype` bfloat16 runs
    the convolutions in bf16 while variables, batch-norm statistics and outputs stay float32.
    When `layers` is given, its MaxPool2d objects keep their own skip_connection flags.
    `linear_output` drops the batch norm and leaky ReLU of the last decoder layer, so its logits are
    not standardised per batch nor squashed below zero (the reference keeps both).
    """

    def __init__(self, layers=None, per_image_standardization=True, batch_norm=True,
                 skip_connections=True, tied_weights=True, num_classes=1, linear_output=False,
                 compute_dtype="float32", name="model"):
        super().__init__(name=name)
        self.layers = layers if layers is not None else layers_from_description(
            REFERENCE_DESCRIPTION, skip_connections)
        self.per_image_standardization = per_image_standardization
        self.batch_norm = batch_norm
        self.skip_connections = skip_connections
        self.tied_weights = tied_weights
        self.num_classes = num_classes
        self.linear_output = linear_output
        if linear_output:
            _check_linear_output(self.layers)
            self.layers[0].linear_mirror = True
        self.compute_dtype = tf.dtypes.as_dtype(compute_dtype)
        channels = 1
        with self.name_scope:
            for i, layer in enumerate(self.layers):
                mirror_channels = num_classes if i == 0 and num_classes > 1 else channels
                channels = layer.build(channels, mirror_channels, tied_weights, batch_norm)
        self.divisor = 1
        for layer in self.layers:
            self.divisor *= layer.shrink

    @classmethod
    def from_description(cls, text, **switches):
        """Build any stack written in the description grammar; switches as for Model()."""
        layers = layers_from_description(text, switches.get("skip_connections", True))
        return cls(layers, **switches)

    @property
    def description(self):
        return "".join(layer.description for layer in self.layers)

    @property
    def config(self):
        """Everything needed to rebuild this architecture (not its weights)."""
        return {"description": self.description,
                "per_image_standardization": self.per_image_standardization,
                "batch_norm": self.batch_norm,
                "skip_connections": self.skip_connections,
                "tied_weights": self.tied_weights,
                "num_classes": self.num_classes,
                "linear_output": self.linear_output}

    @staticmethod
    def complete_config(config):
        """`config` with the switches that configs written before them lack, at their old behaviour."""
        return {"linear_output": False, **config}

    @classmethod
    def from_config(cls, config, compute_dtype="float32"):
        config = dict(config)
        return cls.from_description(config.pop("description"), compute_dtype=compute_dtype, **config)

    def save_config(self, path):
        with open(path, "w") as f:
            json.dump(self.config, f, indent=2)

    @classmethod
    def load_config(cls, path, compute_dtype="float32"):
        with open(path) as f:
            return cls.from_config(json.load(f), compute_dtype)

    def check_size(self, height, width):
        """Raise ValueError unless the stack can mirror a height x width input exactly."""
        if height % self.divisor or width % self.divisor:
            raise ValueError(
                f"input size {height}x{width} cannot be mirrored exactly by {self.description}: "
                f"height and width must be multiples of {self.divisor}")

    def summary(self, height=128, width=128):
        """Rows (step, layer, output shape, trainable parameters) of the encoder then the decoder."""
        x = tf.zeros([1, height, width, 1])
        rows, trace = [], []
        for layer in self.layers:
            y = layer.forward(x, False)
            trace.append((x, y))
            rows.append(("encoder", layer.description, tuple(y.shape[1:]), _parameters(layer, mirror=False)))
            x = y
        for layer, (encoder_input, encoder_output) in zip(reversed(self.layers), reversed(trace)):
            x = layer.mirror(x, encoder_input, encoder_output, False)
            if isinstance(layer, MaxPool2d):
                kind = "skip + upsample" if layer.skip_connection else "upsample"
            else:
                kind = "transposed, tied" if layer.mirror_kernel is layer.kernel else "transposed"
            rows.append((f"decoder ({kind})", layer.description, tuple(x.shape[1:]),
                         _parameters(layer, mirror=True)))
        return rows

    def logits(self, images, training=False):
        """Pre-activation output of the last decoder layer, float32 [N, H, W, num_classes]."""
        images = tf.convert_to_tensor(images, tf.float32)
        if images.shape.rank != 4 or images.shape[-1] != 1:
            raise ValueError(f"expected grayscale images of shape [N, H, W, 1], got {images.shape}")
        if images.shape[1] is not None and images.shape[2] is not None:
            self.check_size(images.shape[1], images.shape[2])
        if self.per_image_standardization:
            images = tf.image.per_image_standardization(images)
        x = tf.cast(images, self.compute_dtype)
        trace = []
        for layer in self.layers:
            y = layer.forward(x, training)
            trace.append((x, y))
            x = y
        for layer, (encoder_input, encoder_output) in zip(reversed(self.layers), reversed(trace)):
            x = layer.mirror(x, encoder_input, encoder_output, training)
        return tf.cast(x, tf.float32)

    def __call__(self, images, training=False):
        return probabilities(self.logits(images, training))


def _parameters(layer, mirror):
    """Trainable parameters a layer adds on its encoder or its mirror side (a tied kernel counts once)."""
    names = ("mirror_kernel", "mirror_bias") if mirror else ("kernel", "bias")
    variables = [getattr(layer, n) for n in names if hasattr(layer, n)]
    if mirror and hasattr(layer, "kernel") and layer.mirror_kernel is layer.kernel:
        variables = variables[1:]
    return sum(int(np.prod(v.shape)) for v in variables)


def probabilities(logits):
    """Sigmoid for one channel, softmax over channels otherwise."""
    if logits.shape[-1] == 1:
        return tf.sigmoid(logits)
    return tf.nn.softmax(logits, axis=-1)
