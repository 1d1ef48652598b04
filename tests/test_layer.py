"""The Layer interface: what every layer must provide, and that the two layers provide it."""
import pytest

from conv2d import Conv2d
from layer import Layer
from max_pool_2d import MaxPool2d


def test_base_class_leaves_everything_to_implementations():
    layer = Layer()
    with pytest.raises(NotImplementedError):
        layer.build(1, 1, True, True)
    with pytest.raises(NotImplementedError):
        layer.forward(None, False)
    with pytest.raises(NotImplementedError):
        layer.mirror(None, None, None, False)
    with pytest.raises(NotImplementedError):
        layer.description
    with pytest.raises(NotImplementedError):
        layer.shrink


@pytest.mark.parametrize("layer, description, shrink", [
    (Conv2d(7, 2, 64), "C7,64,2", 2),
    (Conv2d(5, 1, 32), "C5,32,1", 1),
    (MaxPool2d(2), "M2", 2),
    (MaxPool2d(4), "M4", 4),
])
def test_layers_describe_themselves_in_the_grammar(layer, description, shrink):
    assert isinstance(layer, Layer)
    assert layer.description == description
    assert layer.shrink == shrink


def test_build_returns_output_channels():
    assert Conv2d(3, 1, 16).build(1, 1, True, True) == 16
    assert MaxPool2d(2).build(16, 16, True, True) == 16
