"""The files infer.py writes for a photo, at the photo's size: `<name>_mask.png`, and with their flags
`_prob.png`, `_overlay.png`, each face's `_face<k>_crop.png` / `_face<k>_crop_mask.png`, `_faces.json`.

Every file is written through a temporary file and renamed, so an existing output is never half-written.
"""
import json
import os
import threading
from pathlib import Path

import cv2
import numpy as np

from faces.framing import classes_of

# Overlay colors in OpenCV's BGR order, indexed by class id: background untouched, face green, hair red.
PALETTE = np.array([[0, 0, 0], [0, 255, 0], [0, 0, 255]], np.uint8)
OVERLAY_ALPHA = 0.4
BOX_COLOR = (0, 255, 255)


class Writer:
    """Writes a Photo's mask (and probability, overlay, crop and JSON files) at the photo's size."""

    def __init__(self, framer, num_classes, overlay=False, prob=False, threshold=0.5, crops=False, faces_json=False):
        self.framer, self.num_classes = framer, num_classes
        self.overlay, self.prob, self.threshold = overlay, prob, threshold
        self.crops, self.faces_json = crops, faces_json

    def __call__(self, photo, probabilities):
        """None when written, else the reason it could not be; `probabilities` are those of photo.inputs."""
        probs = self.framer.unframe(photo.shape, probabilities, photo.faces, self.num_classes)
        for face in photo.faces:
            face.measure(self.threshold)
        classes = classes_of(probs, self.threshold)
        outputs = {"mask": self.mask_image(classes)}
        if self.prob:
            # Three classes show as blue background, green face, red hair (BGR order = class order).
            outputs["prob"] = np.rint(probs * 255).astype(np.uint8)
        if self.overlay:
            outputs["overlay"] = overlay_image(photo.color, classes, photo.faces)
        if self.crops:
            for number, face in enumerate(photo.faces, 1):
                outputs[f"face{number}_crop"] = face.crop
                outputs[f"face{number}_crop_mask"] = self.mask_image(classes_of(face.probabilities, self.threshold))
        try:
            for kind, image in outputs.items():
                write_image(Path(f"{photo.job.target}_{kind}.png"), image)
            if self.faces_json:
                document = {"photo": str(photo.job.source), "height": photo.shape[0], "width": photo.shape[1],
                            "faces": [face.summary() for face in photo.faces]}
                text = json.dumps(document, indent=1) + "\n"
                write_atomically(Path(f"{photo.job.target}_faces.json"), text.encode())
        except OSError as error:
            return f"cannot write {error.filename} ({error.strerror})"
        return None

    def mask_image(self, classes):
        return mask_values(classes, self.num_classes)


def mask_values(classes, num_classes):
    """What a mask PNG holds: 0/255 for a face model, class ids for a 3-class model."""
    return classes * 255 if num_classes == 1 else classes


def overlay_image(color, classes, faces, numbers=None):
    """The photo with its mask tinted in, and each face's box and number: 1, 2, ... in order, or `numbers`
    (a video's track ids)."""
    tinted = cv2.addWeighted(color, 1 - OVERLAY_ALPHA, PALETTE[classes], OVERLAY_ALPHA, 0)
    image = np.where(classes[..., None] > 0, tinted, color)
    thickness = max(1, round(max(color.shape[:2]) / 500))
    for number, face in zip(range(1, len(faces) + 1) if numbers is None else numbers, faces):
        x0, y0, x1, y1 = (round(v) for v in face.box)
        cv2.rectangle(image, (x0, y0), (x1, y1), BOX_COLOR, thickness)
        cv2.putText(image, str(number), (x0 + 2 * thickness, y0 + 14 * thickness), cv2.FONT_HERSHEY_SIMPLEX,
                    0.5 * thickness, BOX_COLOR, thickness, cv2.LINE_AA)
    return image


def write_image(path, image, *params):
    """Encode in the format of the path's suffix (.png, .jpg; OpenCV's `params`, e.g. JPEG quality) and write
    atomically."""
    ok, encoded = cv2.imencode(path.suffix, image, list(params))
    if not ok:
        raise OSError(0, f"{path.suffix} encoding failed", str(path))
    write_atomically(path, encoded.tobytes())


def write_atomically(path, data):
    """Write through a temporary file in the same folder, so an existing output is never half-written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.parent / f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp"
    try:
        with open(temporary, "wb") as f:
            f.write(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
