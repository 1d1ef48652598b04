"""Make docs/infer_overlays.png: ordinary photos (top) and the overlays `infer.py --overlay` writes (bottom),
and docs/group.png, the group picture alone (an example photo of the browser demo, app.py).

Run from the project root: `python docs/make_infer_figure.py` (uses pretrained/ and data128_128/). The
photos: docs/astronaut.png (public domain, see docs/astronaut.md) and a group picture composed of
four test-split LFW faces, each scaled, tilted and placed on a plain wall.
"""
import json
import sys
import tempfile
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import infer  # noqa: E402

HEIGHT = 480
# (test-split index, centre x, centre y, side of the 128x128 picture in pixels, tilt in degrees)
GROUP = ((3, 150, 250, 200, 12), (40, 370, 200, 170, -8), (90, 580, 260, 230, 20), (200, 800, 210, 180, -25))


def group_picture(data):
    """A 960x480 picture of four test faces on a shaded wall."""
    names = json.loads((ROOT / "pretrained" / "split.json").read_text())["test"]
    wall = np.tile(np.linspace(70, 150, 960, dtype=np.float32), (HEIGHT, 1))
    picture = wall.astype(np.uint8)
    for index, x, y, side, tilt in GROUP:
        face = cv2.imread(str(data / "inputs" / f"{names[index]}.jpg"), cv2.IMREAD_GRAYSCALE)
        move = cv2.getRotationMatrix2D((63.5, 63.5), tilt, side / 128)
        move[:, 2] += np.array([x, y]) - 63.5
        cover = cv2.warpAffine(np.ones((128, 128), np.uint8), move, (960, HEIGHT)) > 0
        picture[cover] = cv2.warpAffine(face, move, (960, HEIGHT), flags=cv2.INTER_LINEAR)[cover]
    return cv2.cvtColor(picture, cv2.COLOR_GRAY2BGR)


def main():
    photos = {"astronaut": cv2.imread(str(ROOT / "docs" / "astronaut.png")),
              "group": group_picture(ROOT / "data128_128")}
    cv2.imwrite(str(ROOT / "docs" / "group.png"), photos["group"])
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for name, photo in photos.items():
            cv2.imwrite(str(folder / f"{name}.png"), photo)
        summary = infer.segment([folder / f"{name}.png" for name in photos], ROOT / "pretrained", folder / "out",
                                overlay=True)
        overlays = {name: cv2.imread(str(folder / "out" / f"{name}_overlay.png")) for name in photos}

    def row(images):
        return np.hstack([cv2.resize(image, (round(image.shape[1] * HEIGHT / image.shape[0]), HEIGHT))
                          for image in images])
    figure = np.vstack([row(photos.values()), row(overlays.values())])
    cv2.imwrite(str(ROOT / "docs" / "infer_overlays.png"), figure)
    print(f"docs/infer_overlays.png: {summary['images']} photos, {summary['faces']} faces")


if __name__ == "__main__":
    main()
