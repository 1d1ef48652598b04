"""Compute faces/face_template.json: where the five MTCNN landmarks sit, on average, in the training images.

`python -m faces.face_template` (data128_128/ and the split of pretrained/). infer.py maps every detected
face onto these positions, so the model sees faces framed the way LFW frames them. Only the training
split is used: the test split stays unseen. Positions are fractions of the frame's width and height
(pixel centres: x = u * width - 0.5), so one template serves any model input size.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

import quiet_tensorflow  # noqa: F401  (before TensorFlow: it starts without its C++ start-up lines)
from faces import face_detection
import image_file

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / "data128_128"
DEFAULT_SPLIT = ROOT / "pretrained" / "split.json"
DEFAULT_OUT = ROOT / "faces" / "face_template.json"


def parse_args(argv):
    parser = argparse.ArgumentParser(description="Mean MTCNN landmark positions over the training images.")
    parser.add_argument("--data", default=str(DEFAULT_DATA), help="data folder with inputs/ (default: data128_128/)")
    parser.add_argument("--split", default=str(DEFAULT_SPLIT), help="split.json whose 'train' names are used")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="the template file (default: faces/face_template.json)")
    return parser.parse_args(argv)


def central_face(faces, height, width):
    """LFW labels the person in the middle of the picture: the face whose box centre is nearest to it."""
    return min(faces, key=lambda face: np.hypot(face.centre[0] - width / 2, face.centre[1] - height / 2))


def mean_landmarks(paths, log=print):
    """(mean, std) of the landmarks [5, 2] as fractions of the frame, the frame size, and the counts."""
    points, missing, several, size = [], 0, 0, None
    for path in paths:
        try:
            gray = image_file.read_image(path)
        except image_file.ImageFileError as error:
            raise SystemExit(f"error: {error}; restore it with `git checkout -- data128_128`") from None
        if size is None:
            size = gray.shape
        elif gray.shape != size:
            raise SystemExit(f"error: {path} is {gray.shape}, not {size} like the others; use one frame size")
        faces = face_detection.detect_faces(gray, min_face=face_detection.MTCNN_MIN_FACE)
        if not faces:
            missing += 1
            continue
        several += len(faces) > 1
        face = central_face(faces, *size)
        points.append((face.landmarks + 0.5) / np.array([size[1], size[0]]))
    points = np.array(points)
    counts = {"images": len(paths), "used": len(points), "no_face": missing, "several_faces": several}
    return points.mean(axis=0), points.std(axis=0), size, counts


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    names = json.loads(Path(args.split).read_text())["train"]
    paths = [Path(args.data) / "inputs" / f"{name}.jpg" for name in names]
    mean, std, size, counts = mean_landmarks(paths)
    template = {
        "about": "mean MTCNN landmarks of the training images, fractions of width and height (x = u * width - 0.5)",
        "data": str(Path(args.data).name), "split": "train", **counts, "frame": list(size),
        "landmarks": {name: [round(float(u), 5) for u in point] for name, point in zip(face_detection.LANDMARKS, mean)},
    }
    Path(args.out).write_text(json.dumps(template, indent=2) + "\n")
    print(f"{counts['images']} training images: landmarks on {counts['used']}, no face found on "
          f"{counts['no_face']}, several faces (the central one used) on {counts['several_faces']}")
    print(f"landmark   mean x, y in a {size[1]}x{size[0]} frame (pixels)   std (pixels)")
    for name, point, spread in zip(face_detection.LANDMARKS, mean, std):
        x, y = point * np.array([size[1], size[0]]) - 0.5
        sx, sy = spread * np.array([size[1], size[0]])
        print(f"{name:<11}{x:7.2f} {y:7.2f}{sx:22.2f} {sy:5.2f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
