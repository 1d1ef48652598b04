"""The page's work: a photo through infer.segment_faces(), webcam frames through infer.VideoSegmenter, and
both through infer.py's overlay drawing.

The page and `infer.py` share one pipeline, so they cannot disagree: the same reader flags (uploads.py),
the same segment_faces() and face tracking, the same overlay, the same mask values and faces JSON.
The models are loaded once, when the Segmenter is made; infer keeps them per (folder, precision).
"""
import json
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import cv2
import numpy as np

from faces.photo_outputs import mask_values, overlay_image, write_image
import infer

FACE, FACE_HAIR = "face", "face + hair"
SHIPPED = {FACE: infer.DEFAULT_MODEL_DIR, FACE_HAIR: infer.DEFAULT_MODEL_DIR / "classes3"}
# Downloads stay this long (a visitor downloads right away), then the next request removes them.
KEEP_OUTPUTS_SECONDS = 3600
LIVE_JPEG_QUALITY = 90
# GRADIO_FILES: the page hands Gradio image files, not arrays. Gradio 6 saves an array under a name made from
# its content and rewrites that file each time (processing_utils.save_pil_to_cache), so two visitors' identical
# overlays (the same photo at once), or identical webcam frames, truncated a file another download was reading.
# A file of our own is copied into Gradio's cache under a temporary name and renamed into place.


class Segmenter:
    """The models the page offers, loaded at start: `model_dir` and the shipped model of the other kind,
    labelled FACE (one class) or FACE_HAIR (background / face / hair)."""

    def __init__(self, model_dir=infer.DEFAULT_MODEL_DIR, precision="auto", outputs=None):
        self.precision = precision
        self.model_dirs, self.num_classes = {}, {}
        for folder in (Path(model_dir), *SHIPPED.values()):
            _, _, num_classes = infer.loaded_model(str(folder), precision, "none")
            label = FACE if num_classes == 1 else FACE_HAIR
            if label not in self.model_dirs:
                self.model_dirs[label], self.num_classes[label] = folder, num_classes
        self.outputs = Path(outputs or Path(tempfile.gettempdir()) / "face-segmentation-demo")
        # A first photo traces what the first visitor would otherwise wait for (MTCNN's stages, the model).
        warm_up = np.full((160, 160, 3), 128, np.uint8)
        for label in self.model_dirs:
            self.segment(warm_up, label, whole_image=False)

    @property
    def labels(self):
        return [label for label in (FACE, FACE_HAIR) if label in self.model_dirs]

    def segment(self, image, label=FACE, tilted_faces=True, whole_image=False):
        """(mask, faces, seconds) of an 8-bit gray or BGR photo, as infer.segment_faces gives them."""
        started = time.perf_counter()
        mask, faces = infer.segment_faces(image, self.model_dirs[label], precision=self.precision,
                                          tilted_faces=tilted_faces and not whole_image, whole_image=whole_image)
        return mask, faces, time.perf_counter() - started

    def photo(self, image, name, label=FACE, tilted_faces=True, whole_image=False):
        """What the page shows for a photo, in a folder of this request's own: the paths of `<stem>_overlay.png`,
        `<stem>_mask.png` (infer.py's values: 0/255 for a face model, class ids for face + hair) and
        `<stem>_faces.json`, and a summary."""
        mask, faces, seconds = self.segment(image, label, tilted_faces, whole_image)
        color = image if image.ndim == 3 else cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
        overlay = overlay_image(color, mask, faces)
        folder = self.fresh_folder()
        stem = Path(name).stem or "photo"
        mask_path, json_path = folder / f"{stem}_mask.png", folder / f"{stem}_faces.json"
        write_image(mask_path, mask_values(mask, self.num_classes[label]))
        document = {"photo": name, "height": image.shape[0], "width": image.shape[1],
                    "faces": [face.summary() for face in faces]}
        json_path.write_text(json.dumps(document, indent=1) + "\n")
        # The overlay too as a file of this request's own, not an array: see GRADIO_FILES.
        overlay_path = folder / f"{stem}_overlay.png"
        write_image(overlay_path, overlay)
        return str(overlay_path), str(mask_path), str(json_path), describe(faces, seconds, whole_image)

    def fresh_folder(self):
        """A new folder for one request's downloads; older ones past KEEP_OUTPUTS_SECONDS are removed."""
        self.outputs.mkdir(parents=True, exist_ok=True)
        now = time.time()
        for old in self.outputs.iterdir():
            try:
                if now - old.stat().st_mtime > KEEP_OUTPUTS_SECONDS:
                    shutil.rmtree(old, ignore_errors=True)
            except FileNotFoundError:  # another request removed it first
                pass
        folder = self.outputs / uuid.uuid4().hex
        folder.mkdir()
        return folder


class LiveView:
    """One visitor's webcam stream: faces tracked from frame to frame (infer.VideoSegmenter, as infer.py does
    for a clip), each frame segmented as it comes, and the rate frames are answered at."""

    def __init__(self, segmenter):
        self.segmenter = segmenter
        self.stream, self.settings, self.started = None, None, None
        self.answered = []  # perf_counter() of recent answers, for the rate shown
        self.folder, self.frames = None, 0  # this stream's frame files, the last two kept

    def frame(self, rgb, label=FACE, tilted_faces=True):
        """(overlay RGB, status line) of one camera frame (RGB, as the browser sends it); each face's
        number is its track id, kept while it is followed."""
        now = time.perf_counter()
        if self.settings != (label, tilted_faces):  # a new stream for new settings: tracks start again
            self.stream = infer.VideoSegmenter(self.segmenter.model_dirs[label], self.segmenter.precision,
                                               tilted_faces=tilted_faces)
            self.settings, self.started = (label, tilted_faces), now
        bgr = cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)
        mask, faces = self.stream.step(bgr, now - self.started)
        seconds = time.perf_counter() - now
        self.answered = [t for t in self.answered if now - t < 5.0] + [now]
        span = now - self.answered[0]
        rate = f", {(len(self.answered) - 1) / span:.1f} frames/s" if span > 0 else ""
        overlay = overlay_image(bgr, mask, faces, [face.track_id for face in faces])
        return cv2.cvtColor(overlay, cv2.COLOR_BGR2RGB), f"{describe(faces, seconds)}{rate}"

    def frame_file(self, rgb):
        """The path of a frame's overlay as a JPEG of its own (see GRADIO_FILES); the one from two frames before is
        removed (Gradio has copied it by then: a stream's frames are answered one after another)."""
        if self.folder is None:
            self.folder = self.segmenter.fresh_folder()
        self.frames += 1
        (self.folder / f"frame_{self.frames - 2}.jpg").unlink(missing_ok=True)
        path = self.folder / f"frame_{self.frames}.jpg"
        write_image(path, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), cv2.IMWRITE_JPEG_QUALITY, LIVE_JPEG_QUALITY)
        return str(path)


def describe(faces, seconds, whole_image=False):
    """'2 faces found in 0.41 s' (or the whole-image mode's line)."""
    if whole_image:
        return f"whole image segmented in {seconds:.2f} s"
    count = len(faces)
    return f"{count} face{'' if count == 1 else 's'} found in {seconds:.2f} s"
