"""Framing: how a photo becomes model inputs, and their probabilities the photo's.

By default every face found (faces/face_detection.py) is aligned to the landmark template
(faces/face_alignment.py) and its crop is one model input; its probabilities go back through the inverse
transform and the faces combine into one map at the photo's size. With `whole_image` the photo itself
is resized to the model's input, which is right only for photos already framed like LFW.
"""
import cv2
import numpy as np

from faces import face_alignment
from faces import face_detection


class FramedFace(face_detection.Face):
    """A detected face (box, confidence, landmarks), its aligned `crop`, the `transform` photo -> crop,
    and once segmented its crop `probabilities`, where they land in the photo (`pasted`: x0, y0,
    region probabilities) and `mask_area` (photo pixels not background)."""

    def __init__(self, face, crop, transform):
        super().__init__(face.box, face.confidence, face.landmarks)
        self.crop, self.transform = crop, transform
        self.probabilities, self.pasted, self.mask_area = None, None, None

    def measure(self, threshold):
        self.mask_area = int(np.count_nonzero(classes_of(self.pasted[2], threshold)))

    def summary(self):
        """What --json writes for the face."""
        return {"box": [round(v, 1) for v in self.box], "confidence": round(self.confidence, 4),
                "landmarks": {name: [round(float(v), 1) for v in point]
                              for name, point in zip(face_detection.LANDMARKS, self.landmarks)},
                "mask_area": self.mask_area}


class Framer:
    """How a photo becomes model inputs and their probabilities a photo's: each face found aligned
    to the template (default), or the whole photo resized (`whole_image`, for LFW-framed photos)."""

    def __init__(self, size, whole_image=False, min_face=face_detection.DEFAULT_MIN_FACE,
                 min_confidence=face_detection.DEFAULT_MIN_CONFIDENCE, tilted_faces=True):
        self.size, self.whole_image = size, whole_image
        self.min_face, self.min_confidence, self.tilted_faces = min_face, min_confidence, tilted_faces

    def frame(self, image):
        """(model inputs uint8 [N, height, width], [FramedFace]) of an 8-bit gray or BGR photo."""
        gray = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self.whole_image:
            height, width = gray.shape
            # Area averaging avoids aliasing when shrinking; OpenCV only averages when both sides shrink.
            shrinking = height >= self.size[0] and width >= self.size[1]
            resized = cv2.resize(gray, self.size[::-1], interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)
            return resized[None], []
        faces = [FramedFace(face, *face_alignment.aligned_crop(gray, face.landmarks, self.size))
                 for face in face_detection.detect_faces(image, self.min_face, self.min_confidence, self.tilted_faces)]
        inputs = np.stack([face.crop for face in faces]) if faces else np.zeros((0, *self.size), np.uint8)
        return inputs, faces

    def unframe(self, shape, probabilities, faces, num_classes):
        """Probabilities [H, W, C] at the photo's `shape` from those of its model inputs [N, h, w, C]."""
        if self.whole_image:
            height, width = shape
            # The probabilities, not the classes, are resized, so mask edges fall between the model's pixels.
            resized = cv2.resize(probabilities[0], (width, height), interpolation=cv2.INTER_LINEAR)
            return resized.reshape(height, width, num_classes)  # cv2.resize drops a single channel axis
        for face, probs in zip(faces, probabilities):
            face.probabilities = probs
            face.pasted = face_alignment.pasted(probs, face.transform, shape)
        return face_alignment.combine(shape, num_classes, [face.pasted for face in faces])


def classes_of(probs, threshold):
    """metrics.predicted_classes for one photo [H, W, C] in numpy: an eager TF op per photo costs
    more than writing the photo's outputs."""
    if probs.shape[-1] == 1:
        return (probs[..., 0] >= threshold).astype(np.uint8)
    return probs.argmax(axis=-1).astype(np.uint8)
