"""faces/framing.py: whole-image framing there and back, and the class rule (face framing runs in test_infer.py)."""
import numpy as np
import pytest

from faces import framing
from runs.metrics import predicted_classes


@pytest.mark.parametrize("num_classes", [1, 3])
def test_classes_follow_the_evaluation_rule(num_classes):
    probs = np.random.default_rng(0).random((5, 7, num_classes)).astype(np.float32)
    probs[0, 0, 0] = 0.3
    np.testing.assert_array_equal(framing.classes_of(probs, 0.3), predicted_classes(probs[None], 0.3)[0])


def test_whole_image_framing_resizes_the_photo_and_brings_probabilities_back_to_its_size():
    photo = np.zeros((60, 90), np.uint8)
    photo[:, 45:] = 200
    framer = framing.Framer((32, 32), whole_image=True)
    inputs, faces = framer.frame(photo)
    assert inputs.shape == (1, 32, 32) and faces == []
    assert inputs[0, :, :15].max() == 0 and inputs[0, :, 17:].min() == 200
    for num_classes in (1, 3):
        probs = np.zeros((1, 32, 32, num_classes), np.float32)
        probs[:, :, 16:] = 1.0
        back = framer.unframe(photo.shape, probs, faces, num_classes)
        assert back.shape == (60, 90, num_classes)
        assert (back[:, :40] < 0.5).all() and (back[:, 50:] > 0.5).all()
