"""Make docs/infer_overlays.png: test-split photos next to the overlays infer.py writes for them.

Run from the project root: `python docs/make_infer_figure.py` (uses pretrained/ and data128_128/).
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

COUNT = 6


def main():
    test = json.loads((ROOT / "pretrained" / "split.json").read_text())["test"]
    names = test[:: len(test) // COUNT][:COUNT]
    photos = [ROOT / "data128_128" / "inputs" / f"{name}.jpg" for name in names]
    with tempfile.TemporaryDirectory() as out:
        summary = infer.segment([str(p) for p in photos], ROOT / "pretrained", out, overlay=True, tta="flip")
        overlays = [cv2.imread(str(Path(out) / f"{name}_overlay.png")) for name in names]
    originals = [cv2.imread(str(p)) for p in photos]
    figure = np.vstack([np.hstack(originals), np.hstack(overlays)])
    cv2.imwrite(str(ROOT / "docs" / "infer_overlays.png"), figure)
    print(f"docs/infer_overlays.png: {summary['images']} photos ({', '.join(names)})")


if __name__ == "__main__":
    main()
