"""faces/face_template.py on a few training images: the mean landmarks land where faces/face_template.json has them."""
import json

import numpy as np

from faces.face_detection import Face
from faces import face_template


def test_template_of_a_few_training_images_is_near_the_saved_one(real_data, tmp_path, capsys):
    names = json.loads((face_template.ROOT / "pretrained" / "split.json").read_text())["train"][:12]
    (tmp_path / "split.json").write_text(json.dumps({"train": names}))
    assert face_template.main(["--data", str(real_data), "--split", str(tmp_path / "split.json"),
                               "--out", str(tmp_path / "template.json")]) == 0
    assert "12 training images" in capsys.readouterr().out
    mine = json.loads((tmp_path / "template.json").read_text())
    saved = json.loads(face_template.DEFAULT_OUT.read_text())
    assert mine["frame"] == saved["frame"] == [128, 128] and mine["used"] >= 10
    difference = np.array(list(mine["landmarks"].values())) - np.array(list(saved["landmarks"].values()))
    assert np.abs(difference).max() * 128 < 5  # pixels: a dozen faces already give the mean within a few


def test_central_face_is_the_one_nearest_the_middle():
    near, far = Face((50, 50, 80, 80), 1.0, None), Face((0, 0, 40, 40), 1.0, None)
    assert face_template.central_face([far, near], 128, 128) is near
