"""The data: LFW part-label faces (or any folder of the same layout), split by person and served as
tf.data batches. Reading and checking a data folder is data_folder.py.
"""
import json
import re
import threading
import time

import cv2
import numpy as np
import tensorflow as tf

from data_folder import DataError, list_folder, load_folder, read_example
from imgaug_config import augment_batch

SPLITS = ("train", "validation", "test")


def person_of(name):
    """LFW person of a file stem: `George_W_Bush_0001` -> `George_W_Bush`."""
    return re.sub(r"_\d+$", "", name)


def split_by_person(names, seed, fractions=(0.7, 0.15)):
    """Split sorted names into train / validation / test so that no person is in two splits.

    Persons are shuffled with `seed` and laid end to end; a person goes to train when the middle of
    their images falls in the first fractions[0] of all images, to validation in the next
    fractions[1], else to test.
    """
    by_person = {}
    for name in sorted(names):
        by_person.setdefault(person_of(name), []).append(name)
    persons = sorted(by_person)
    np.random.default_rng(seed).shuffle(persons)
    bounds = np.cumsum(fractions) * len(names)
    split, taken = {s: [] for s in SPLITS}, 0
    for person in persons:
        which = SPLITS[int(np.searchsorted(bounds, taken + len(by_person[person]) / 2, side="right"))]
        split[which].extend(by_person[person])
        taken += len(by_person[person])
    return {s: sorted(v) for s, v in split.items()}


def shrunk(images, labels, size, num_classes):
    """A batch of images [N, H, W] and label maps resized to `size` (height, width): each image by area
    averaging, each label map to the class covering most of each new pixel (ties: the lower class id),
    so that the two stay aligned. --low-res-epochs trains on such batches."""
    dsize = (size[1], size[0])
    small = np.stack([cv2.resize(image, dsize, interpolation=cv2.INTER_AREA) for image in images])
    shares = np.stack([[cv2.resize((label == c).astype(np.float32), dsize, interpolation=cv2.INTER_AREA)
                        for c in range(num_classes)] for label in labels])
    return small, shares.argmax(axis=1).astype(np.uint8)


class Dataset:
    """LFW part-label faces (or any folder of the same layout) split by person, served by tf.data.

    `include_hair` switches the target from face to face+hair; `three_classes` gives the label map
    0 background / 1 face / 2 hair. The split is reproducible from `seed` (or read from a split file
    written by an earlier run) and no person appears in two splits. `streaming` keeps only the file
    list and reads each batch's files when tf.data asks for it, so a folder larger than memory
    trains; the batches are the same as when everything is read up front.
    """

    def __init__(self, batch_size, folder="data128_128", include_hair=False, three_classes=False,
                 seed=0, split=None, augment=True, skip_bad=False, streaming=False, log=print):
        self.batch_size = batch_size
        self.folder = str(folder)
        self.seed = seed
        self.augment = augment
        self.streaming = streaming
        self.skip_bad, self.log = skip_bad, log
        self._skipped, self._skipped_lock = set(), threading.Lock()  # files --skip-bad left out while streaming
        self.target_kind = "classes3" if three_classes else "face_hair" if include_hair else "face"
        self.num_classes = 3 if three_classes else 2
        started = time.perf_counter()
        if streaming:
            files = list_folder(folder, self.target_kind, skip_bad, log)
            names = list(files)
        else:
            names, images, labels = load_folder(folder, self.target_kind, skip_bad, log)
        self.load_seconds = time.perf_counter() - started
        self.split = split if split is not None else split_by_person(names, seed)
        empty = [s for s in ("train", "validation") if not self.split[s]]
        if split is None and empty:
            raise DataError(f"{folder} has too few persons ({len({person_of(n) for n in names})}) to fill "
                            f"the {' and '.join(empty)} split: add images of more persons")
        index = {name: i for i, name in enumerate(names)}
        unknown = [n for s in SPLITS for n in self.split[s] if n not in index]
        if unknown:
            raise DataError(f"the split names {len(unknown)} images not in {folder} (first: {unknown[0]}): "
                            "use the data folder the model was trained on")
        if streaming:
            self.files = {s: [files[n] for n in self.split[s]] for s in SPLITS}
            first = next(paths for s in SPLITS for paths in self.files[s])
            self.image_shape = read_example(first, self.target_kind)[0].shape
        else:
            self.images, self.labels = {}, {}
            for s in SPLITS:
                rows = [index[n] for n in self.split[s]]
                self.images[s], self.labels[s] = images[rows], labels[rows]
            self.image_shape = images.shape[1:]

    def size(self, split):
        return len(self.split[split])

    def steps_per_epoch(self, replicas=1):
        """Training steps per epoch when each step takes one batch per replica (see batch_schedule)."""
        return step_count(self.size("train"), self.batch_size, replicas)

    def examples(self, split, rows):
        """uint8 images and label maps [len(rows), H, W] of a split's rows, from memory or read now.

        Streaming finds a damaged file only here: it raises DataError naming it, or with skip_bad
        the batch goes on without that row (said once through `log`)."""
        if not self.streaming:
            return self.images[split][rows], self.labels[split][rows]
        images = np.empty((len(rows), *self.image_shape), np.uint8)
        labels = np.empty_like(images)
        kept = 0
        for row in rows:
            paths = self.files[split][row]
            try:
                image, label = read_example(paths, self.target_kind)
                if image.shape != self.image_shape:
                    raise DataError(f"{paths[0]} is not {'x'.join(map(str, self.image_shape))} like the other "
                                    "images: prepare them at one size with prepare_data.py --size")
            except DataError as error:
                if not self.skip_bad:
                    raise
                self._skip(paths[0], error)
                continue
            images[kept], labels[kept] = image, label
            kept += 1
        if len(rows) and not kept:
            raise DataError(f"every image of a {split} batch of {self.folder} is unreadable (the first: "
                            f"{self.files[split][rows[0]][0]}): fix or remove these files")
        return images[:kept], labels[:kept]

    def _skip(self, path, error):
        """With --skip-bad while streaming: leave the file's example out of its batch, said once per file."""
        with self._skipped_lock:
            if path in self._skipped:
                return
            self._skipped.add(path)
        self.log(f"skipped: {error}")

    def save_split(self, path):
        with open(path, "w") as f:
            json.dump(self.split, f, indent=1)

    @staticmethod
    def load_split(path):
        with open(path) as f:
            return json.load(f)

    def train_batches(self, epoch, skip=0, context=None, augment=None, size=None):
        """One epoch of shuffled (and augmented) training batches as (images, labels) tensors.

        Shuffle order and augmentation depend only on (seed, epoch), so a resumed run sees the
        same batches; `skip` drops the steps an interrupted epoch already took. `context` is the
        tf.distribute.InputContext of a distributed run (see batch_schedule). `augment=False` leaves
        this epoch unaugmented even when the dataset augments. `size` (height, width) shrinks the
        augmented batches to it (see shrunk).
        """
        order = np.random.default_rng([self.seed, epoch]).permutation(self.size("train"))
        augment = self.augment if augment is None else augment

        def make_batch(number, start, stop):
            x, y = self.examples("train", order[start:stop])
            if augment:
                seed = np.random.SeedSequence([self.seed, epoch, int(number)]).generate_state(1)[0]
                x, y = augment_batch(x, y, seed=int(seed))
            return (x, y) if size is None else shrunk(x, y, size, self.num_classes)

        return self._serve(make_batch, self._schedule("train", context, skip), size)

    def batches(self, split, context=None):
        """Unaugmented batches of a split, in file-name order."""
        return self._serve(lambda number, start, stop: self.examples(split, np.arange(start, stop)),
                           self._schedule(split, context))

    def _schedule(self, split, context=None, skip=0):
        context = context or tf.distribute.InputContext()
        return batch_schedule(split, self.size(split), self.batch_size, context, skip)

    def _serve(self, make_batch, schedule, size=None):
        """tf.data batches of make_batch(number, start, stop) -> (uint8 images, uint8 labels), of `size`
        (default: the images' own)."""
        shape = self.image_shape if size is None else tuple(size)
        batches = tf.data.Dataset.from_tensor_slices(np.array(schedule, np.int64).reshape(-1, 3)).map(
            lambda row: tf.numpy_function(make_batch, tf.unstack(row), (tf.uint8, tf.uint8), stateful=False),
            num_parallel_calls=2, deterministic=True)
        # Parallelism and prefetch are fixed, so autotuning has nothing to tune, and its background
        # thread made the end of an epoch wait up to a minute for the old iterator to shut down
        # (every other epoch of a 100-epoch run: ~20% of its wall time).
        options = tf.data.Options()
        options.autotune.enabled = False
        return batches.map(lambda images, labels: to_model(images, labels, shape)).prefetch(2).with_options(options)


def to_model(images, labels, shape):
    """uint8 batches as the model takes them: images in [0, 1] with a channel axis, int32 labels."""
    images = tf.ensure_shape(images, [None, *shape])
    labels = tf.ensure_shape(labels, [None, *shape])
    return tf.cast(images[..., None], tf.float32) / 255.0, tf.cast(labels, tf.int32)


def step_count(count, batch_size, replicas):
    """Steps that serve `count` rows, one batch per replica a step (see batch_schedule)."""
    global_batch = batch_size * replicas
    return count // global_batch + (count % global_batch >= replicas)


def batch_schedule(split, count, batch_size, context, skip=0):
    """(number, start, stop) of the batches one input pipeline serves: rows start:stop of the order.

    Step s takes batches s*R to s*R + R - 1, one per replica (R = 1 without tf.distribute), of
    batch_size rows each, except that the last step's rows are shared out evenly, a remainder
    smaller than R joining the step before: no replica gets an empty batch, which TensorFlow's
    oneDNN CPU kernels mishandle. Each worker's pipeline serves its own replicas' batches.
    """
    replicas = context.num_replicas_in_sync
    steps = step_count(count, batch_size, replicas)
    if count and not steps:
        raise DataError(f"the {split} split has {count} images, fewer than the {replicas} replicas: "
                        "train on fewer devices or with more data")
    if not steps:
        return []
    bounds = [(j * batch_size, (j + 1) * batch_size) for j in range((steps - 1) * replicas)]
    last = np.array_split(np.arange((steps - 1) * batch_size * replicas, count), replicas)
    bounds += [(rows[0], rows[-1] + 1) for rows in last]
    local = replicas // context.num_input_pipelines
    first = context.input_pipeline_id * local
    return [(j, *bounds[j]) for s in range(skip, steps)
            for j in range(s * replicas + first, s * replicas + first + local)]
