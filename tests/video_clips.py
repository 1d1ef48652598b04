"""Small synthetic clips for the video tests: LFW faces from data128_128 pasted on a plain background,
moving along straight lines, with their exact face masks."""
import cv2
import numpy as np

SHAPE = (240, 320)  # (height, width)
# Validation-split faces MTCNN finds at once at these sizes.
NAMES = ("Aaron_Peirsol_0002", "Akhmed_Zakayev_0001")


def frame_of(real_data, placements, shape=SHAPE, gray=120):
    """(BGR frame, face mask) with each (name, (x, y) centre, side, angle in degrees) picture pasted."""
    height, width = shape
    frame = np.full(shape, gray, np.uint8)
    truth = np.zeros(shape, bool)
    for name, centre, side, angle in placements:
        picture = cv2.imread(str(real_data / "inputs" / f"{name}.jpg"), cv2.IMREAD_GRAYSCALE)
        mask = cv2.imread(str(real_data / "targets_face_only" / f"{name}.jpg"), cv2.IMREAD_GRAYSCALE)
        move = placement(centre, side, angle)
        cover = cv2.warpAffine(np.ones_like(picture), move, (width, height)) > 0
        frame[cover] = cv2.warpAffine(picture, move, (width, height))[cover]
        truth |= cv2.warpAffine(mask, move, (width, height)) > 127
    return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR), truth


def placement(centre, side, angle):
    """The transform of a 128x128 picture scaled to `side`, turned by `angle` degrees, centred on `centre`."""
    move = cv2.getRotationMatrix2D((63.5, 63.5), angle, side / 128)
    move[:, 2] += np.array(centre) - 63.5
    return move


def moving_clip(real_data, paths, frames=40, shape=SHAPE):
    """([BGR frames], [face masks]): path k is (name, start (x, y), end (x, y), side, angle), a face
    moving from start to end over the clip; a face placed beyond the frame's edge is cut off or gone."""
    clip, truths = [], []
    for index in range(frames):
        share = index / max(1, frames - 1)
        placements = [(name, np.add(start, share * np.subtract(end, start)), side, angle)
                      for name, start, end, side, angle in paths]
        frame, truth = frame_of(real_data, placements, shape)
        clip.append(frame)
        truths.append(truth)
    return clip, truths


def write_clip(path, frames, fps=30.0):
    """Write BGR frames as a clip of the container its extension names: mp4v, or VP8 for WebM (which takes
    no MPEG-4)."""
    height, width = frames[0].shape[:2]
    codec = "VP80" if str(path).endswith(".webm") else "mp4v"
    writer = cv2.VideoWriter(str(path), cv2.CAP_FFMPEG, cv2.VideoWriter_fourcc(*codec), fps, (width, height))
    assert writer.isOpened(), path
    for frame in frames:
        writer.write(frame)
    writer.release()
    return path
