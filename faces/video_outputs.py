"""The files infer.py writes for a video, frame by frame as its frames are segmented, at the clip's
size, frame rate and frame count:

    <name>_mask.mp4      the masks: 0/255 gray for a face model; for a 3-class model class id x 127
                         (0 background, 127 face, 254 hair). MPEG-4 is lossy: threshold at 128 (face
                         model) or take the nearest of the three levels.
    <name>_overlay.mp4   --overlay: the mask tinted over the frame, each face's box and track id
    <name>_faces.json    --json: per frame, each face's track id, box, landmarks, confidence, mask area
    <name>_masks/        --frames: each frame's mask as <frame>.png (frames counted from 0), lossless,
                         with a photo mask's values (0/255, or class ids for a 3-class model)

Reading runs a few frames ahead in one thread and writing a few frames behind in another (decoding
and encoding release the GIL), so neither waits for the model; nothing else is held, so memory stays
flat however long the clip.
"""
import json
import os
import queue
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from faces.photo_outputs import mask_values, overlay_image, write_image
from faces.video_files import VideoFileError, VideoReader, VideoWriter

AHEAD = 4  # frames decoded ahead of the model, and frames waiting to be written
MASK_LEVELS = {1: 255, 3: 127}  # mask video gray level per class id, by number of classes


def segment_videos(jobs, segmenter, overlay=False, faces_json=False, frames=False, skip=print):
    """Segment each video job (photo_files.Job) with `segmenter` (a VideoSegmenter) and write its files.
    A video that cannot be read fully goes to `skip(source, reason)` after the frames before the problem
    are written. Returns {"videos", "frames", "tracks", "no_face", "seconds"}."""
    summary = {"videos": 0, "frames": 0, "tracks": 0, "no_face": [], "seconds": 0.0}
    started = time.perf_counter()
    for job in jobs:
        count, tracks, problem = segment_video(job, segmenter, overlay, faces_json, frames)
        if count:
            summary["videos"] += 1
            summary["frames"] += count
            summary["tracks"] += tracks
            if not tracks:
                summary["no_face"].append(str(job.source))
        if problem:
            skip(job.source, problem)
    summary["seconds"] = time.perf_counter() - started
    return summary


def segment_video(job, segmenter, overlay, faces_json, frames):
    """(frames written, tracks started, None or the reason the video could not be read or written fully)."""
    try:
        video = VideoReader(job.source)
    except VideoFileError as error:
        return 0, 0, str(error)
    segmenter.reset()
    count, problem = 0, None
    outputs = None
    try:
        with ThreadPoolExecutor(1) as writer:
            pending = []
            for frame in read_ahead(video.frames()):
                if outputs is None:
                    outputs = ClipOutputs(job, video.fps, frame.shape, segmenter.num_classes, overlay, faces_json,
                                          frames)
                mask, faces = segmenter.step(frame, count / video.fps)
                pending.append(writer.submit(outputs.write, count, frame, mask, faces))
                count += 1
                while len(pending) > AHEAD:
                    pending.pop(0).result()
            for future in pending:
                future.result()
    except VideoFileError as error:
        problem = str(error)
    except OSError as error:
        problem = f"cannot write {error.filename} ({error.strerror})"
    finally:
        if outputs is not None:
            try:
                outputs.close()
            except OSError as error:
                problem = problem or f"cannot write {error.filename} ({error.strerror})"
    return count, segmenter.tracks_started, problem


def read_ahead(frames):
    """The items of the generator `frames`, read up to AHEAD items ahead in a thread; an exception it
    raises is raised here once the items before it are given."""
    items = queue.Queue(AHEAD)
    stop = threading.Event()

    def read():
        try:
            for item in frames:
                items.put((True, item))
                if stop.is_set():
                    return
            items.put((False, None))
        except Exception as error:  # noqa: BLE001  (handed to the consumer, which decides)
            items.put((False, error))
        finally:
            frames.close()  # here, in the thread that reads: it releases the file

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    try:
        while True:
            more, item = items.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        # A consumer that stops early (a write failed) must not leave the reader blocked on a full queue.
        stop.set()
        while thread.is_alive():
            try:
                items.get(timeout=0.05)
            except queue.Empty:
                pass


class ClipOutputs:
    """The files of one clip, opened at its first frame, written frame by frame, closed into place."""

    def __init__(self, job, fps, shape, num_classes, overlay, faces_json, frames):
        self.job, self.num_classes = job, num_classes
        height, width = shape[:2]
        target = Path(job.target)
        self.mask = VideoWriter(Path(f"{target}_mask.mp4"), fps, (width, height), color=False)
        self.overlay = VideoWriter(Path(f"{target}_overlay.mp4"), fps, (width, height)) if overlay else None
        self.frames = Path(f"{target}_masks") if frames else None
        self.json, self.json_path = None, Path(f"{target}_faces.json")
        if faces_json:
            self.json = self.json_path.with_name(f".{self.json_path.name}.{os.getpid()}.tmp")
            self.json_file = open(self.json, "w")
            header = {"video": str(job.source), "height": height, "width": width, "fps": fps}
            # Written as frames come, so a long clip's faces are never all held: the header's keys, then "frames".
            self.json_file.write(json.dumps(header)[:-1] + ', "frames": [\n')
            self.separator = ""

    def write(self, index, frame, classes, faces):
        self.mask.write(classes * MASK_LEVELS[self.num_classes])
        if self.overlay is not None:
            self.overlay.write(overlay_image(frame, classes, faces, [face.track_id for face in faces]))
        if self.frames is not None:
            write_image(self.frames / f"{index:06d}.png", mask_values(classes, self.num_classes))
        if self.json is not None:
            entry = {"frame": index, "faces": [face.summary() for face in faces]}
            self.json_file.write(f"{self.separator}{json.dumps(entry)}")
            self.separator = ",\n"

    def close(self):
        """Every file closed into place, with the frames written so far."""
        for video in (self.mask, self.overlay):
            if video is not None:
                video.close()
        if self.json is not None:
            self.json_file.write("\n]}\n")
            self.json_file.close()
            self.json.replace(self.json_path)
