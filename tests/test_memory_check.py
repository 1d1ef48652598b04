"""runs/memory_check.py: a batch whose training step would not fit is refused, naming the largest that fits."""
import re

import pytest

import convolutional_autoencoder as ca
from runs.config import DEFAULTS, UsageError
from runs import memory_check
from conftest import TINY


def test_a_batch_that_will_not_fit_in_memory_is_refused_with_the_estimate(face_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(memory_check, "available_memory", lambda: 2 ** 20)
    out = tmp_path / "save"
    assert ca.main(["--data", str(face_folder), *TINY, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert re.search(r"--batch-size 4 needs about [\d.]+ GiB for a training step of C3,8,2C3,8,1M2 on 64x64 images "
                     r"\(estimated from the layer shapes\), more than the 0.0 GiB this machine has available: "
                     r"pass --batch-size 1 or less", err), err
    assert not out.exists()


def test_on_16_gib_the_reference_batch_fits_and_a_batch_of_5000_does_not(monkeypatch):
    monkeypatch.setattr(memory_check, "available_memory", lambda: 16 * 2 ** 30)
    memory_check.check_memory(DEFAULTS, (128, 128), train_images=1846)
    with pytest.raises(UsageError, match=r"--batch-size 5000 needs about \d+\.\d GiB .* pass --batch-size \d+ or less"):
        memory_check.check_memory({**DEFAULTS, "batch_size": 5000}, (128, 128), train_images=1846)
