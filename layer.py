"""The Layer interface: one encoder layer that also knows how to build its decoder mirror.

The Model only stacks layers and walks them backwards; everything a layer needs to undo itself
lives in the layer. Variables are created once, in `build`, so a Model has all its weights as soon
as it is constructed and checkpoints restore eagerly.
"""
import tensorflow as tf


class Layer(tf.Module):
    """Base class of Conv2d and MaxPool2d."""

    def build(self, input_channels, mirror_channels, tied_weights, batch_norm):
        """Create the variables for `input_channels` in; return the output channel count.

        `mirror_channels` is how many channels the mirror must give back (the input channels, except
        for the first layer of a multi-class model).
        """
        raise NotImplementedError

    def forward(self, x, training):
        """Encoder op on `x`."""
        raise NotImplementedError

    def mirror(self, x, encoder_input, encoder_output, training):
        """Decoder op on `x`, undoing `forward` (which mapped `encoder_input` to `encoder_output`)."""
        raise NotImplementedError

    @property
    def description(self):
        """This layer in the description grammar, e.g. `C7,64,2` or `M2`."""
        raise NotImplementedError

    @property
    def shrink(self):
        """Factor by which `forward` divides height and width."""
        raise NotImplementedError
