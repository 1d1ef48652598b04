"""Face segmentation with a convolutional encoder-decoder (TensorFlow 2).

Reads top-down: the Model (a stack of Layer objects mirrored into a decoder), the Dataset
(LFW part-label faces, person-disjoint splits, tf.data batches), then training and evaluation.
Run `python convolutional_autoencoder.py --help`.
"""
import argparse
import atexit
import json
import math
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import tensorflow as tf

from batch_norm import BatchNorm
from conv2d import Conv2d
from imgaug_config import augment_batch
from max_pool_2d import MaxPool2d
from metrics import METRIC_NAMES, confusion_matrix, predicted_classes, scores
from plots import examples_figure, figure_to_array, plt

# The reference architecture: three modules of conv stride 2, conv stride 1, max pool 2.
REFERENCE_DESCRIPTION = "C7,64,2C7,64,1M2C7,64,2C7,64,1M2C7,64,2C7,64,1M2"

_TOKEN = re.compile(r"C(\d+),(\d+),(\d+)|M(\d+)")


def layers_from_description(text, skip_connections=True):
    """Layers for a description such as `C7,64,2C7,64,1M2`; skip links on every pool but the last layer."""
    layers, position = [], 0
    for match in _TOKEN.finditer(text):
        if match.start() != position:
            break
        position = match.end()
        if match.group(4):
            layers.append(MaxPool2d(int(match.group(4)), name=f"pool{len(layers)}"))
        else:
            kernel, channels, stride = (int(g) for g in match.groups()[:3])
            layers.append(Conv2d(kernel, stride, channels, name=f"conv{len(layers)}"))
    if position != len(text) or not layers:
        raise ValueError(
            f"cannot read architecture description {text!r} at character {position}: "
            "write layers as C<kernel>,<channels>,<stride> or M<pool size>, e.g. C7,64,2C7,64,1M2")
    for layer in layers[:-1]:
        if isinstance(layer, MaxPool2d):
            layer.skip_connection = skip_connections
    return layers


class Model(tf.Module):
    """Encoder of Layer objects; the decoder is each layer's mirror, in reverse order.

    Calling the model on float32 images [N, H, W, 1] in [0, 1] returns per-pixel probabilities
    [N, H, W, num_classes] (sigmoid for one class, softmax otherwise). `training` selects batch
    statistics (and updates the moving averages) or the moving averages. `compute_dtype` bfloat16 runs
    the convolutions in bf16 while variables, batch-norm statistics and outputs stay float32.
    When `layers` is given, its MaxPool2d objects keep their own skip_connection flags.
    `linear_output` drops the batch norm and leaky ReLU of the last decoder layer, so its logits are
    not standardised per batch nor squashed below zero (the reference keeps both).
    """

    def __init__(self, layers=None, per_image_standardization=True, batch_norm=True,
                 skip_connections=True, tied_weights=True, num_classes=1, linear_output=False,
                 compute_dtype="float32", name="model"):
        super().__init__(name=name)
        self.layers = layers if layers is not None else layers_from_description(
            REFERENCE_DESCRIPTION, skip_connections)
        self.per_image_standardization = per_image_standardization
        self.batch_norm = batch_norm
        self.skip_connections = skip_connections
        self.tied_weights = tied_weights
        self.num_classes = num_classes
        self.linear_output = linear_output
        if linear_output:
            if not isinstance(self.layers[0], Conv2d):
                raise ValueError(f"a linear output needs a description that starts with a convolution, "
                                 f"not {self.layers[0].description}")
            self.layers[0].linear_mirror = True
        self.compute_dtype = tf.dtypes.as_dtype(compute_dtype)
        channels = 1
        with self.name_scope:
            for i, layer in enumerate(self.layers):
                mirror_channels = num_classes if i == 0 and num_classes > 1 else channels
                channels = layer.build(channels, mirror_channels, tied_weights, batch_norm)
        self.divisor = 1
        for layer in self.layers:
            self.divisor *= layer.shrink

    @classmethod
    def from_description(cls, text, **switches):
        """Build any stack written in the description grammar; switches as for Model()."""
        layers = layers_from_description(text, switches.get("skip_connections", True))
        return cls(layers, **switches)

    @property
    def description(self):
        return "".join(layer.description for layer in self.layers)

    @property
    def config(self):
        """Everything needed to rebuild this architecture (not its weights)."""
        return {"description": self.description,
                "per_image_standardization": self.per_image_standardization,
                "batch_norm": self.batch_norm,
                "skip_connections": self.skip_connections,
                "tied_weights": self.tied_weights,
                "num_classes": self.num_classes,
                "linear_output": self.linear_output}

    @staticmethod
    def complete_config(config):
        """`config` with the switches that configs written before them lack, at their old behaviour."""
        return {"linear_output": False, **config}

    @classmethod
    def from_config(cls, config, compute_dtype="float32"):
        config = dict(config)
        return cls.from_description(config.pop("description"), compute_dtype=compute_dtype, **config)

    def save_config(self, path):
        with open(path, "w") as f:
            json.dump(self.config, f, indent=2)

    @classmethod
    def load_config(cls, path, compute_dtype="float32"):
        with open(path) as f:
            return cls.from_config(json.load(f), compute_dtype)

    def check_size(self, height, width):
        """Raise ValueError unless the stack can mirror a height x width input exactly."""
        if height % self.divisor or width % self.divisor:
            raise ValueError(
                f"input size {height}x{width} cannot be mirrored exactly by {self.description}: "
                f"height and width must be multiples of {self.divisor}")

    def summary(self, height=128, width=128):
        """Rows (step, layer, output shape, trainable parameters) of the encoder then the decoder."""
        x = tf.zeros([1, height, width, 1])
        rows, trace = [], []
        for layer in self.layers:
            y = layer.forward(x, False)
            trace.append((x, y))
            rows.append(("encoder", layer.description, tuple(y.shape[1:]), _parameters(layer, mirror=False)))
            x = y
        for layer, (encoder_input, encoder_output) in zip(reversed(self.layers), reversed(trace)):
            x = layer.mirror(x, encoder_input, encoder_output, False)
            if isinstance(layer, MaxPool2d):
                kind = "skip + upsample" if layer.skip_connection else "upsample"
            else:
                kind = "transposed, tied" if layer.mirror_kernel is layer.kernel else "transposed"
            rows.append((f"decoder ({kind})", layer.description, tuple(x.shape[1:]),
                         _parameters(layer, mirror=True)))
        return rows

    def logits(self, images, training=False):
        """Pre-activation output of the last decoder layer, float32 [N, H, W, num_classes]."""
        images = tf.convert_to_tensor(images, tf.float32)
        if images.shape.rank != 4 or images.shape[-1] != 1:
            raise ValueError(f"expected grayscale images of shape [N, H, W, 1], got {images.shape}")
        if images.shape[1] is not None and images.shape[2] is not None:
            self.check_size(images.shape[1], images.shape[2])
        if self.per_image_standardization:
            images = tf.image.per_image_standardization(images)
        x = tf.cast(images, self.compute_dtype)
        trace = []
        for layer in self.layers:
            y = layer.forward(x, training)
            trace.append((x, y))
            x = y
        for layer, (encoder_input, encoder_output) in zip(reversed(self.layers), reversed(trace)):
            x = layer.mirror(x, encoder_input, encoder_output, training)
        return tf.cast(x, tf.float32)

    def __call__(self, images, training=False):
        return probabilities(self.logits(images, training))


def _parameters(layer, mirror):
    """Trainable parameters a layer adds on its encoder or its mirror side (a tied kernel counts once)."""
    names = ("mirror_kernel", "mirror_bias") if mirror else ("kernel", "bias")
    variables = [getattr(layer, n) for n in names if hasattr(layer, n)]
    if mirror and hasattr(layer, "kernel") and layer.mirror_kernel is layer.kernel:
        variables = variables[1:]
    return sum(int(np.prod(v.shape)) for v in variables)


def probabilities(logits):
    """Sigmoid for one channel, softmax over channels otherwise."""
    if logits.shape[-1] == 1:
        return tf.sigmoid(logits)
    return tf.nn.softmax(logits, axis=-1)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

INPUTS, FACE_HAIR, FACE_ONLY = "inputs", "targets", "targets_face_only"
TARGET_KINDS = ("face", "face_hair", "classes3")
# What each class id of a target kind stands for (the class order of per-class scores).
CLASS_NAMES = {"face": ("background", "face"), "face_hair": ("background", "face+hair"),
               "classes3": ("background", "face", "hair")}
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".ppm", ".pgm")
SPLITS = ("train", "validation", "test")


class DataError(Exception):
    """A problem with the user's data, explained in one sentence."""


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


def _read_gray(path):
    image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    if image is None:
        raise DataError(f"cannot read image {path}: replace or remove the file")
    return image


def _images_by_stem(folder):
    if not folder.is_dir():
        raise DataError(f"folder {folder} does not exist: prepare the data with "
                        f"`python prepare_data.py` or point --data at a folder with inputs/ and targets")
    files = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in IMAGE_SUFFIXES:
            files.setdefault(path.stem, path)
    return files


def list_folder(folder, target_kind="face", skip_bad=False, log=print):
    """The files of every input with its targets in `folder`, found by name without reading pixels.

    Returns {name: (input path, target paths...)} in name order, the paths as read_example takes
    them. Inputs without targets and targets without inputs raise DataError naming the files, or
    with `skip_bad` are listed through `log` and left out.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist: prepare it with `python prepare_data.py` "
                        "(see data128_128/README.md) or pass --data FOLDER")
    needed = {"face": (INPUTS, FACE_ONLY), "face_hair": (INPUTS, FACE_HAIR),
              "classes3": (INPUTS, FACE_ONLY, FACE_HAIR)}[target_kind]
    subfolders = {sub: _images_by_stem(folder / sub) for sub in needed}
    files, problems = {}, []
    for stem in sorted(set.union(*(set(subfolders[s]) for s in needed))):
        missing = [s for s in needed if stem not in subfolders[s]]
        if missing:
            problems.append(f"{stem} has no file in {', '.join(str(folder / s) for s in missing)}")
        else:
            files[stem] = tuple(subfolders[sub][stem] for sub in needed)
    _report(folder, problems, skip_bad, log)
    if not files:
        raise DataError(f"{folder} holds no usable input/target pairs: see data128_128/README.md for the layout")
    return files


def read_example(paths, target_kind="face"):
    """Input image and label map, uint8 [H, W], of one name's files from list_folder.

    Labels are 0/1 for `face` (face vs rest) and `face_hair` (face+hair vs background), and
    0 background / 1 face / 2 hair for `classes3`; target images are thresholded at 127. An
    unreadable image or a size mismatch raises DataError naming the file.
    """
    arrays = [_read_gray(path) for path in paths]
    if len({a.shape for a in arrays}) > 1:
        raise DataError(f"{Path(paths[0]).stem}: input and targets differ in size "
                        f"({', '.join('x'.join(map(str, a.shape)) for a in arrays)})")
    masks = [a > 127 for a in arrays[1:]]
    if target_kind == "classes3":
        face, face_hair = masks
        label = np.where(face, 1, np.where(face_hair, 2, 0))
    else:
        label = masks[0]
    return arrays[0], label.astype(np.uint8)


def load_folder(folder, target_kind="face", skip_bad=False, log=print):
    """Read every input with its label map (see read_example) from `folder`.

    Returns (names, images uint8 [N, H, W], labels uint8 [N, H, W]). Inputs without targets,
    targets without inputs, unreadable images and size mismatches raise DataError naming the
    files, or with `skip_bad` are listed through `log` and left out.
    """
    files = list_folder(folder, target_kind, skip_bad, log)
    with ThreadPoolExecutor(8) as pool:
        read = list(pool.map(lambda paths: _try_read(paths, target_kind), files.values()))
    _report(folder, [r for r in read if isinstance(r, str)], skip_bad, log)
    names = [name for name, r in zip(files, read) if not isinstance(r, str)]
    pairs = [r for r in read if not isinstance(r, str)]
    if not names:
        raise DataError(f"{folder} holds no usable input/target pairs: see data128_128/README.md for the layout")
    if len({image.shape for image, _ in pairs}) > 1:
        raise DataError(f"{folder}: images have different sizes; prepare them at one size with prepare_data.py --size")
    return names, np.stack([image for image, _ in pairs]), np.stack([label for _, label in pairs])


def _report(folder, problems, skip_bad, log):
    if problems and not skip_bad:
        shown = "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more" if len(problems) > 5 else "")
        raise DataError(f"{folder}: {shown}. Fix or remove these files, or pass --skip-bad to leave them out")
    for problem in problems:
        log(f"skipped: {problem}")


def _try_read(paths, target_kind):
    try:
        return read_example(paths, target_kind)
    except DataError as error:
        return str(error)


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
        """Training steps per epoch when each step takes one batch per replica (see _schedule)."""
        return self._steps("train", replicas)

    def examples(self, split, rows):
        """uint8 images and label maps [len(rows), H, W] of a split's rows, from memory or read now."""
        if not self.streaming:
            return self.images[split][rows], self.labels[split][rows]
        images = np.empty((len(rows), *self.image_shape), np.uint8)
        labels = np.empty_like(images)
        for i, row in enumerate(rows):
            paths = self.files[split][row]
            image, label = read_example(paths, self.target_kind)
            if image.shape != self.image_shape:
                raise DataError(f"{paths[0]} is not {'x'.join(map(str, self.image_shape))} like the other "
                                "images: prepare them at one size with prepare_data.py --size")
            images[i], labels[i] = image, label
        return images, labels

    def save_split(self, path):
        with open(path, "w") as f:
            json.dump(self.split, f, indent=1)

    @staticmethod
    def load_split(path):
        with open(path) as f:
            return json.load(f)

    def train_batches(self, epoch, skip=0, context=None, augment=None):
        """One epoch of shuffled (and augmented) training batches as (images, labels) tensors.

        Shuffle order and augmentation depend only on (seed, epoch), so a resumed run sees the
        same batches; `skip` drops the steps an interrupted epoch already took. `context` is the
        tf.distribute.InputContext of a distributed run (see _schedule). `augment=False` leaves
        this epoch unaugmented even when the dataset augments.
        """
        order = np.random.default_rng([self.seed, epoch]).permutation(self.size("train"))
        augment = self.augment if augment is None else augment

        def make_batch(number, start, stop):
            x, y = self.examples("train", order[start:stop])
            if augment:
                seed = np.random.SeedSequence([self.seed, epoch, int(number)]).generate_state(1)[0]
                x, y = augment_batch(x, y, seed=int(seed))
            return x, y

        return self._serve(make_batch, self._schedule("train", context, skip))

    def batches(self, split, context=None):
        """Unaugmented batches of a split, in file-name order."""
        return self._serve(lambda number, start, stop: self.examples(split, np.arange(start, stop)),
                           self._schedule(split, context))

    def _steps(self, split, replicas):
        global_batch = self.batch_size * replicas
        return self.size(split) // global_batch + (self.size(split) % global_batch >= replicas)

    def _schedule(self, split, context=None, skip=0):
        """(number, start, stop) of the batches one input pipeline serves: rows start:stop of the order.

        Step s takes batches s*R to s*R + R - 1, one per replica (R = 1 without tf.distribute), of
        batch_size rows each, except that the last step's rows are shared out evenly, a remainder
        smaller than R joining the step before: no replica gets an empty batch, which TensorFlow's
        oneDNN CPU kernels mishandle. Each worker's pipeline serves its own replicas' batches.
        """
        context = context or tf.distribute.InputContext()
        replicas, count = context.num_replicas_in_sync, self.size(split)
        steps = self._steps(split, replicas)
        if count and not steps:
            raise DataError(f"the {split} split has {count} images, fewer than the {replicas} replicas: "
                            "train on fewer devices or with more data")
        if not steps:
            return []
        bounds = [(j * self.batch_size, (j + 1) * self.batch_size) for j in range((steps - 1) * replicas)]
        last = np.array_split(np.arange((steps - 1) * self.batch_size * replicas, count), replicas)
        bounds += [(rows[0], rows[-1] + 1) for rows in last]
        local = replicas // context.num_input_pipelines
        first = context.input_pipeline_id * local
        return [(j, *bounds[j]) for s in range(skip, steps)
                for j in range(s * replicas + first, s * replicas + first + local)]

    def _serve(self, make_batch, schedule):
        """tf.data batches of make_batch(number, start, stop) -> (uint8 images, uint8 labels)."""
        batches = tf.data.Dataset.from_tensor_slices(np.array(schedule, np.int64).reshape(-1, 3)).map(
            lambda row: tf.numpy_function(make_batch, tf.unstack(row), (tf.uint8, tf.uint8), stateful=False),
            num_parallel_calls=2, deterministic=True)
        # Parallelism and prefetch are fixed, so autotuning has nothing to tune, and its background
        # thread made the end of an epoch wait up to a minute for the old iterator to shut down
        # (every other epoch of a 100-epoch run: ~20% of its wall time).
        options = tf.data.Options()
        options.autotune.enabled = False
        return batches.map(self._to_model).prefetch(2).with_options(options)

    def _to_model(self, images, labels):
        images = tf.ensure_shape(images, [None, *self.image_shape])
        labels = tf.ensure_shape(labels, [None, *self.image_shape])
        return tf.cast(images[..., None], tf.float32) / 255.0, tf.cast(labels, tf.int32)


# ---------------------------------------------------------------------------------------------
# Training and evaluation
# ---------------------------------------------------------------------------------------------

# The reference recipe. Every flag of the training command defaults to this table.
DEFAULTS = {
    "data": "data128_128",
    "targets": "face",
    "arch": REFERENCE_DESCRIPTION,
    "tied_weights": True,
    "skip_connections": True,
    "per_image_standardization": True,
    "batch_norm": True,
    "linear_output": False,
    "epochs": 500,
    "max_steps": None,
    "max_minutes": None,
    "batch_size": 100,
    "lr": 1e-3,
    "schedule": "constant",
    "loss": "rmse",
    "augment": True,
    "clean_epochs": 0,
    "eval_every": 100,
    "tta": "none",
    "precision": "fp32",
    "seed": 0,
    "out": "save",
    "skip_bad": False,
    "strategy": "default",
    "streaming": False,
    "swa_start": None,
    "init_from": None,
}
# What may change when a run is resumed; everything else comes from its config.json.
RESUMABLE = ("epochs", "max_steps", "max_minutes", "eval_every", "strategy", "streaming")
COMPUTE_DTYPES = {"fp32": "float32", "bf16": "bfloat16"}
CHECKPOINT_BEST, CHECKPOINT_LATEST = "best", "latest"


class UsageError(Exception):
    """A command-line mistake, explained in one sentence."""


def predict(model, images, tta="none"):
    """Probabilities of the model in inference mode; `tta="flip"` averages with the mirrored image."""
    probabilities = model(images, training=False)
    if tta == "flip":
        flipped = model(tf.reverse(images, axis=[2]), training=False)
        probabilities = (probabilities + tf.reverse(flipped, axis=[2])) / 2.0
    return probabilities


def loss_function(kind, num_classes):
    """loss(logits, labels) for `rmse` (the reference), `bce` or `bce_dice`, over the global batch.

    Under a tf.distribute strategy each replica holds a slice of the batch: the sums the loss is
    made of are added up across replicas (all_reduce, whose gradient is again an all-reduce) and the
    loss is divided by the number of replicas, because the optimizer adds up their gradients. The
    replicas' losses then add up to the loss of the global batch, and so do their gradients.
    """

    def loss(logits, labels):
        replica = tf.distribute.get_replica_context()

        def total(x, axis=None):
            return replica.all_reduce(tf.distribute.ReduceOp.SUM, tf.reduce_sum(x, axis))

        if num_classes == 1:
            truth = tf.cast(labels, tf.float32)[..., None]
        else:
            truth = tf.one_hot(labels, num_classes)
        probs = probabilities(logits)
        pixels = total(tf.cast(tf.size(labels), tf.float32))
        if kind == "rmse":
            value = tf.sqrt(total(tf.square(probs - truth)) / (pixels * truth.shape[-1]))
        elif num_classes == 1:
            value = total(tf.nn.sigmoid_cross_entropy_with_logits(truth, logits)) / pixels
        else:
            value = total(tf.nn.softmax_cross_entropy_with_logits(truth, logits)) / pixels
        if kind == "bce_dice":
            overlap = total(probs * truth, axis=[0, 1, 2])
            union = total(probs + truth, axis=[0, 1, 2])
            value += 1.0 - tf.reduce_mean((2.0 * overlap + 1.0) / (union + 1.0))
        return value / replica.num_replicas_in_sync

    return loss


def optimization_step(model, optimizer, loss_of, images, labels):
    """One gradient step on a batch (of one replica); returns its loss. Benchmarks time this too."""
    with tf.GradientTape() as tape:
        loss = loss_of(model.logits(images, training=True), labels)
    gradients = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(gradients, model.trainable_variables))
    return loss


def learning_rate(config, total_steps):
    """Constant Adam rate, or a one-cycle schedule: warm up to `lr` over 30% of the run, cosine to 0."""
    if config["schedule"] == "constant":
        return config["lr"]
    warmup = max(1, int(0.3 * total_steps))
    return tf.keras.optimizers.schedules.CosineDecay(
        config["lr"] / 25.0, decay_steps=max(1, total_steps - warmup), alpha=0.0,
        warmup_target=config["lr"], warmup_steps=warmup)


def make_strategy(name):
    """The tf.distribute strategy of --strategy (docs/scale_out.md).

    `mirrored` keeps a replica of the model on every local GPU, or on every logical CPU device when
    there is no GPU; `multiworker` on the devices of every machine named in the TF_CONFIG
    environment variable; `default` is TensorFlow's one-device strategy.
    """
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([device.name for device in devices])
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def build_model(config):
    num_classes = 3 if config["targets"] == "classes3" else 1
    return Model.from_description(
        config["arch"], per_image_standardization=config["per_image_standardization"],
        batch_norm=config["batch_norm"], skip_connections=config["skip_connections"],
        tied_weights=config["tied_weights"], num_classes=num_classes,
        linear_output=config["linear_output"], compute_dtype=COMPUTE_DTYPES[config["precision"]])


def make_dataset(config, split=None, augment=None):
    return Dataset(config["batch_size"], config["data"], include_hair=config["targets"] == "face_hair",
                   three_classes=config["targets"] == "classes3", seed=config["seed"], split=split,
                   augment=config["augment"] if augment is None else augment, skip_bad=config["skip_bad"],
                   streaming=config["streaming"])


class WeightAverage(tf.Module):
    """Stochastic weight averaging (Izmailov et al. 2018): an equal-weight running mean of a model's
    weights, kept in a second model of the same architecture.

    Batch-norm statistics are not averaged: the averaged weights need their own, so `recalibrate`
    re-estimates them with forward passes over (augmented) training batches before the average is
    scored. Training then logs the plain weights' validation scores beside the average's.
    """

    def __init__(self, averaged):
        super().__init__(name="weight_average")
        self.averaged = averaged
        self.count = tf.Variable(0.0, trainable=False, name="count")

    def update(self, model):
        """Add `model`'s current weights to the mean (outside the replicas of a strategy)."""
        n = self.count.read_value()
        for mean, weight in zip(self.averaged.trainable_variables, model.trainable_variables):
            mean.assign(mean + (weight - mean) / (n + 1.0))
        self.count.assign_add(1.0)


def recalibration_step(model, strategy=None):
    """A tf.function running one (distributed) batch through `model` in training mode, which
    updates its batch-norm statistics and nothing else; see recalibrate."""
    strategy = strategy or tf.distribute.get_strategy()

    @tf.function
    def step(batch):
        strategy.run(lambda images, labels: model.logits(images, training=True), args=batch)

    return step


def recalibrate(model, batches, step):
    """Estimate the batch-norm statistics of `model` (e.g. averaged weights) afresh from `batches`.

    The statistics start again from nothing (BatchNorm's running mean of the first batches, then
    its exponential average), so only the model's own activations on these batches decide them.
    """
    for module in model.submodules:
        if isinstance(module, BatchNorm):
            module.updates.assign(tf.zeros_like(module.updates))
    for batch in batches:
        step(batch)


def evaluation_step(model, num_classes, tta="none", strategy=None):
    """A tf.function that scores one (distributed) batch: the summed confusion matrix and the
    probabilities. Build it once and pass it to evaluate_split to score many times without tracing
    again (training validates every --eval-every steps)."""
    strategy = strategy or tf.distribute.get_strategy()

    def replica_step(images, labels):
        probs = predict(model, images, tta)
        return confusion_matrix(labels, predicted_classes(probs), num_classes), probs

    @tf.function(reduce_retracing=True)
    def step(batch):
        counts, probs = strategy.run(replica_step, args=batch)
        return strategy.reduce(tf.distribute.ReduceOp.SUM, counts, axis=None), probs

    return step


def evaluate_split(model, dataset, split, tta="none", with_examples=False, strategy=None, step=None):
    """Scores of `model` on a split of `dataset`, and optionally the first 12 examples for a figure.

    Under a tf.distribute `strategy` the replicas score slices of each step and their confusion
    matrices are added up; the examples come from this worker's first replica (on the chief, the
    first images of the split). `step` is an evaluation_step of the same model, tta and strategy.
    """
    strategy = strategy or tf.distribute.get_strategy()
    num_classes = dataset.num_classes
    step = step or evaluation_step(model, num_classes, tta, strategy)
    confusion, examples = np.zeros([num_classes, num_classes], np.int64), None
    for batch in strategy.distribute_datasets_from_function(lambda context: dataset.batches(split, context)):
        counts, probs = step(batch)
        confusion += counts.numpy()
        if with_examples and examples is None:
            images, labels, probs = (strategy.experimental_local_results(t)[0] for t in (*batch, probs))
            examples = (images[:12, ..., 0].numpy() * 255, labels[:12].numpy(), probs[:12].numpy())
    result = scores(confusion)
    result["images"] = dataset.size(split)
    return (result, examples) if with_examples else result


def format_scores(result):
    return "  ".join(f"{name} {100 * result[name]:.2f}%" for name in METRIC_NAMES)


class Progress:
    """One line per epoch: a bar, the mean loss, images per second and the time left.

    `done` steps of the epoch were taken before (a resumed run); the mean loss, speed and time left
    are of the steps taken here.
    """

    def __init__(self, epoch, epochs, steps, done=0, stream=sys.stderr):
        self.epoch, self.epochs, self.steps, self.stream = epoch, epochs, steps, stream
        self.tty = stream.isatty()
        self.started, self.skipped, self.done, self.images, self.loss_sum = time.perf_counter(), done, done, 0, 0.0

    def update(self, loss, images):
        self.done += 1
        self.images += images
        self.loss_sum += loss
        if self.tty or self.done == self.steps:
            elapsed, taken = time.perf_counter() - self.started, self.done - self.skipped
            rate = self.images / elapsed
            left = elapsed / taken * (self.steps - self.done)
            bar = "#" * (20 * self.done // self.steps)
            self.stream.write(f"\repoch {self.epoch + 1}/{self.epochs} [{bar:<20}] {self.done}/{self.steps} "
                              f"loss {self.loss_sum / taken:.4f}  {rate:.1f} img/s  ETA {left:.0f}s")
            if self.done == self.steps or not self.tty:
                self.stream.write("\n")
            self.stream.flush()


class StopRequest:
    """Turns SIGINT / SIGTERM into a flag the training loop checks after each step."""

    def __init__(self):
        self.reason = None
        self.previous = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            self.previous[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame):
        self.reason = signal.Signals(signum).name

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def write_json(path, value):
    """Write JSON atomically, so a crash never leaves a half-written file."""
    temporary = f"{path}.tmp"
    with open(temporary, "w") as f:
        json.dump(value, f, indent=2)
    os.replace(temporary, path)


def read_json(path):
    with open(path) as f:
        return json.load(f)


def new_run_dir(parent):
    """A fresh parent/<timestamp>/ folder; a suffix keeps runs started in the same second apart."""
    parent.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for suffix in ("", *(f"-{i}" for i in range(1, 100))):
        try:
            (parent / (stamp + suffix)).mkdir()
            return parent / (stamp + suffix)
        except FileExistsError:
            continue
    raise UsageError(f"cannot make a new run folder in {parent}: remove old runs")


def train(config, resume=None, log=print):
    """Train with `config` (DEFAULTS plus overrides) and return the run folder.

    A new run writes save/<description>/<timestamp>/ with config.json, split.json, the latest and the
    best (by validation pixel accuracy) checkpoints, metrics.json, TensorBoard logs and figures in
    image_plots/. `resume` continues such a folder with its step, optimizer state and best score.
    Under a tf.distribute strategy (make_strategy) every step takes batch_size images per replica
    and only the chief worker writes the run folder.
    """
    if not 0 <= config["clean_epochs"] <= config["epochs"]:
        raise UsageError(f"--clean-epochs {config['clean_epochs']} is not a number of epochs of this run: "
                         f"pass a number from 0 to --epochs ({config['epochs']})")
    # MultiWorkerMirroredStrategy has to exist before TensorFlow runs anything.
    strategy = make_strategy(config["strategy"])
    chief = strategy.extended.should_checkpoint
    init_from = Path(config["init_from"]) if config["init_from"] and not resume else None
    if init_from is not None:
        init_checkpoint = check_run_folder(init_from, "--init-from", needs=("config.json", "split.json"))
    # A run that starts from another's weights keeps that run's split, so its test split stays unseen.
    split = Dataset.load_split(Path(resume or init_from) / "split.json") if resume or init_from else None
    tf.keras.utils.set_random_seed(config["seed"])
    dataset = make_dataset(config, split)
    log(f"data: {config['data']} ({config['targets']}), train {dataset.size('train')} / validation "
        f"{dataset.size('validation')} / test {dataset.size('test')} images, read in {dataset.load_seconds:.1f}s")
    replicas = strategy.num_replicas_in_sync
    global_batch = config["batch_size"] * replicas
    if config["strategy"] != "default":
        log(f"strategy {config['strategy']}: {replicas} replicas of {config['batch_size']} images, "
            f"global batch {global_batch}")
    steps_per_epoch = dataset.steps_per_epoch(replicas)
    total_steps = config["epochs"] * steps_per_epoch
    if config["max_steps"] is not None:
        total_steps = min(total_steps, config["max_steps"])
    swa = config["swa_start"] is not None
    if swa and not 1 <= config["swa_start"] <= config["epochs"]:
        raise UsageError(f"--swa-start {config['swa_start']} is not an epoch of this run: "
                         f"pass a number from 1 to --epochs ({config['epochs']})")
    with strategy.scope():
        model = build_model(config)
        model.check_size(*dataset.image_shape)
        optimizer = tf.keras.optimizers.Adam(learning_rate(config, config["epochs"] * steps_per_epoch))
        optimizer.build(model.trainable_variables)
        # With --swa-start the average lives in a second model; validation, best/ and the test score it.
        average = WeightAverage(build_model(config)) if swa else None
    if init_from is not None:
        start_from(model, init_from, init_checkpoint)
        log(f"starting from the best weights of {init_from}, with its split")
    # Plain variables: the loop reads and sets them outside the replicas, the same on every worker.
    step = tf.Variable(0, dtype=tf.int64, name="step")
    best = tf.Variable(-1.0, dtype=tf.float64, name="best_pixel_accuracy")
    if not chief:
        # The other workers save too, because saving averages the replicas' batch-norm statistics
        # in a step all workers take together; they save into a scratch folder nobody reads.
        run_dir = Path(tempfile.mkdtemp(prefix="worker-"))
        atexit.register(shutil.rmtree, run_dir, ignore_errors=True)
    elif resume:
        run_dir = Path(resume)
    else:
        run_dir = new_run_dir(Path(config["out"]) / model.description)
        dataset.save_split(run_dir / "split.json")
    if chief:
        write_json(run_dir / "config.json", {**config, "image_size": list(dataset.image_shape), "model": model.config})
        (run_dir / "image_plots").mkdir(exist_ok=True)
    state = dict(model=model, optimizer=optimizer, step=step, best=best)
    if swa:
        state["average"] = average
    latest = tf.train.CheckpointManager(tf.train.Checkpoint(**state), run_dir / CHECKPOINT_LATEST, max_to_keep=2)
    # best/ holds the model that was scored: the plain one, or the average under --swa-start.
    scored = average.averaged if swa else model
    best_manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(model=scored, step=step), run_dir / CHECKPOINT_BEST, max_to_keep=1)
    if resume:
        checkpoint = tf.train.latest_checkpoint(str(Path(resume) / CHECKPOINT_LATEST))
        if checkpoint is None:
            raise UsageError(f"{resume} has no checkpoint in {Path(resume) / CHECKPOINT_LATEST}: "
                             "pass a run folder written by this script to --resume")
        latest.checkpoint.restore(checkpoint).assert_existing_objects_matched()
        log(f"resumed {resume} at step {int(step)} (best validation pixel accuracy {float(best):.4f})")
    writer = tf.summary.create_file_writer(str(run_dir / "logs")) if chief else tf.summary.create_noop_writer()
    loss_of = loss_function(config["loss"], model.num_classes)

    def epoch_batches(epoch, skip):
        # --clean-epochs: the last epochs, at the low end of the schedule, see the images as they are.
        augment = None if epoch < config["epochs"] - config["clean_epochs"] else False
        return strategy.distribute_datasets_from_function(
            lambda context: dataset.train_batches(epoch, skip, context, augment))

    @tf.function(input_signature=[epoch_batches(0, 0).element_spec, tf.TensorSpec([], tf.float32)])
    def train_step(batch, asked_to_stop):
        """The loss of one global batch, and how many replicas were asked to stop (`asked_to_stop` 1)."""

        def replica_step(images, labels):
            loss = optimization_step(model, optimizer, loss_of, images, labels)
            # Shared so that all workers stop after the same step (SIGINT or --max-minutes can come
            # to one worker only, or at different times); tf.identity puts the flag on this replica's
            # device, which all_reduce needs.
            return loss, tf.distribute.get_replica_context().all_reduce(
                tf.distribute.ReduceOp.SUM, tf.identity(asked_to_stop))

        losses, stops = strategy.run(replica_step, args=batch)
        return (strategy.reduce(tf.distribute.ReduceOp.SUM, losses, axis=None),
                strategy.experimental_local_results(stops)[0])

    validation_step = evaluation_step(model, dataset.num_classes, config["tta"], strategy)
    if swa:
        average_step = evaluation_step(average.averaged, dataset.num_classes, config["tta"], strategy)
        recalibration = recalibration_step(average.averaged, strategy)

    def evaluate_now():
        s = int(step)
        averaged = swa and average.count.numpy() > 0
        if averaged:
            # The augmented batches of the last epoch: the same kind of batches the plain weights'
            # moving averages come from, so the average and the plain weights are scored alike.
            recalibrate(average.averaged, epoch_batches((s - 1) // steps_per_epoch, 0), recalibration)
            plain = evaluate_split(model, dataset, "validation", config["tta"], strategy=strategy, step=validation_step)
            log(f"step {s} validation (plain weights): {format_scores(plain)}")
            with writer.as_default(step=s):
                for name in METRIC_NAMES:
                    tf.summary.scalar(f"validation_plain_weights/{name}", plain[name])
        result, (images, labels, probs) = evaluate_split(
            scored if averaged else model, dataset, "validation", config["tta"], True, strategy,
            average_step if averaged else validation_step)
        ends = int(average.count.numpy()) if averaged else 0
        what = f" (weights averaged over {ends} epoch end{'s' * (ends != 1)})" if averaged else ""
        log(f"step {s} validation{what}: {format_scores(result)}")
        if chief:
            figure = examples_figure(images, labels, probs, predicted_classes(probs).numpy(), f"step {s}")
            figure.savefig(run_dir / "image_plots" / f"figure{s}.png")
            picture = figure_to_array(figure)
            plt.close(figure)
            with writer.as_default(step=s):
                for name in METRIC_NAMES:
                    tf.summary.scalar(f"validation/{name}", result[name])
                tf.summary.image("validation/examples", picture[None])
        # Under --swa-start only the average is a candidate for best/.
        if result["pixel_accuracy"] > float(best) and averaged == swa:
            best.assign(result["pixel_accuracy"])
            best_manager.save(checkpoint_number=s)
            if chief:
                write_json(run_dir / "metrics.json", {"step": s, "validation": result})

    deadline = time.monotonic() + 60 * config["max_minutes"] if config["max_minutes"] else None
    stopped = None
    with StopRequest() as stop:
        while int(step) < total_steps and stopped is None:
            epoch, skip = divmod(int(step), steps_per_epoch)
            progress = Progress(epoch, config["epochs"], steps_per_epoch, done=skip)
            for batch in epoch_batches(epoch, skip):
                reason = stop.reason or ("--max-minutes" if deadline and time.monotonic() > deadline else None)
                loss, stops = train_step(batch, tf.constant(float(reason is not None)))
                loss = float(loss)
                if not math.isfinite(loss):
                    raise TrainingError(
                        f"the loss became {loss} at step {int(step) + 1}; the last good checkpoint is in "
                        f"{run_dir / CHECKPOINT_LATEST}: lower --lr or try --loss bce, then --resume {run_dir}")
                step.assign_add(1)
                progress.update(loss, sum(len(x) for x in strategy.experimental_local_results(batch[0])))
                if swa and int(step) % steps_per_epoch == 0 and int(step) // steps_per_epoch >= config["swa_start"]:
                    average.update(model)
                with writer.as_default(step=int(step)):
                    tf.summary.scalar("train/loss", loss)
                    tf.summary.scalar("train/learning_rate", float(optimizer.learning_rate.numpy()))
                if int(step) % config["eval_every"] == 0:
                    evaluate_now()
                    latest.save(checkpoint_number=int(step))
                if float(stops) > 0:
                    stopped = reason or "another worker"
                if stopped or int(step) >= total_steps:
                    break
    if int(step) % config["eval_every"] != 0:
        evaluate_now()
    latest.save(checkpoint_number=int(step))
    writer.flush()
    if stopped:
        log(f"stopped by {stopped} at step {int(step)}; continue with: "
            f"python convolutional_autoencoder.py --resume {run_dir}")
        return run_dir
    if dataset.size("test") == 0:
        log(f"the test split is empty, so the best checkpoint was not tested; run folder: {run_dir}")
        return run_dir
    # A worker's scratch folder lacks the best checkpoint when a resumed run found no better one.
    best_checkpoint = best_manager.latest_checkpoint or tf.train.latest_checkpoint(
        str(Path(resume or run_dir) / CHECKPOINT_BEST))
    if best_checkpoint is None:
        log(f"no average was scored (--swa-start {config['swa_start']} is after the last epoch run), so "
            f"nothing was tested; run folder: {run_dir}")
        return run_dir
    best_manager.checkpoint.restore(best_checkpoint).assert_existing_objects_matched()
    test = evaluate_split(scored, dataset, "test", config["tta"], strategy=strategy,
                          step=average_step if swa else validation_step)
    if not chief:
        return run_dir
    metrics = read_json(run_dir / "metrics.json")
    write_json(run_dir / "metrics.json", {**metrics, "test": test})
    log(f"best checkpoint (step {metrics['step']}) on the test split: {format_scores(test)}")
    log(f"run folder: {run_dir}")
    return run_dir


class TrainingError(Exception):
    """Training cannot go on (a NaN loss); the message says what to do."""


def check_run_folder(model_dir, what="model directory", needs=("config.json",)):
    """The best checkpoint of a trained run folder (or pretrained/); UsageError when it has none
    or lacks one of the files `needs`."""
    model_dir = Path(model_dir)
    if not model_dir.is_dir():
        raise UsageError(f"{what} {model_dir} does not exist: pass a training run folder "
                         "(save/<description>/<timestamp>/) or pretrained/")
    for name in needs:
        if not (model_dir / name).is_file():
            raise UsageError(f"{model_dir} has no {name}: pass a training run folder "
                             "(save/<description>/<timestamp>/) or pretrained/")
    checkpoint = tf.train.latest_checkpoint(str(model_dir / CHECKPOINT_BEST))
    if checkpoint is None:
        raise UsageError(f"{model_dir / CHECKPOINT_BEST} holds no checkpoint: the run has not evaluated yet, "
                         "train it longer (--resume) or pass another folder")
    return checkpoint


def start_from(model, folder, checkpoint):
    """Load `checkpoint`, the best weights of the run in `folder` (check_run_folder), into `model`,
    which must have that run's architecture."""
    source = read_json(Path(folder) / "config.json").get("model")
    if source is None or Model.complete_config(source) != model.config:
        raise UsageError(f"--init-from {folder} holds a model unlike this run's ({model.description}, "
                         f"{model.num_classes} classes, same switches): pass that run's --arch, --targets "
                         "and switches, or another folder")
    tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial().assert_existing_objects_matched()


def load_trained(model_dir, precision="fp32"):
    """The model of a run folder (or pretrained/) with its best weights, and the run's config."""
    checkpoint = check_run_folder(model_dir)
    config = {**DEFAULTS, **read_json(Path(model_dir) / "config.json"), "precision": precision}
    model = build_model(config)
    tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial().assert_existing_objects_matched()
    return model, config


def evaluate(model_dir, data=None, split="test", tta=None, precision="fp32", batch_size=100):
    """The four metrics of a trained model on one split (or `all`) of a data folder, with its
    per-class IU and class names (`class_iu`, `classes`).

    `tta` defaults to the run's own setting, so the test numbers match its metrics.json.
    """
    model, config = load_trained(model_dir, precision)
    tta = tta or config["tta"]
    config = {**config, "batch_size": batch_size, "data": data or config["data"]}
    saved_split = Dataset.load_split(Path(model_dir) / "split.json")
    if split == "all":
        saved_split = {"train": [], "validation": [], "test": sorted(sum(saved_split.values(), []))}
        split = "test"
    dataset = make_dataset(config, saved_split, augment=False)
    model.check_size(*dataset.image_shape)
    return {**evaluate_split(model, dataset, split, tta), "classes": CLASS_NAMES[config["targets"]]}


def training_time(model_dir):
    """(steps, minutes) of the run that wrote model_dir/logs, from its TensorBoard event times.

    A resumed run has one event file per process; the minutes add up each file's span, so the time
    the run lay stopped between processes does not count (the steps a killed process took after its
    last checkpoint do, as they were paid for).
    """
    steps, minutes = 0, None
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel("ERROR")  # summary_iterator's deprecation notice is not for our users
    try:
        for path in sorted(Path(model_dir).glob("logs/events.*")):
            times = []
            for event in tf.compat.v1.train.summary_iterator(str(path)):
                times.append(event.wall_time)
                steps = max(steps, event.step)
            if times:
                minutes = (minutes or 0) + (max(times) - min(times)) / 60
    finally:
        logger.setLevel(level)
    return steps, minutes


def init_chain(model_dir):
    """The run folders `model_dir` was started from with --init-from, nearest first (those that exist).

    init_from is written as given, relative to where training ran (usually the project root), so a
    path not found from here is looked up under the project root.
    """
    seen = {Path(model_dir).resolve()}
    folder = Path(model_dir)
    while True:
        config_path = folder / "config.json"
        source = read_json(config_path).get("init_from") if config_path.is_file() else None
        if source and not Path(source).is_dir():
            source = Path(__file__).resolve().parent / source
        if not source or not Path(source).is_dir() or Path(source).resolve() in seen:
            return
        folder = Path(source)
        seen.add(folder.resolve())
        yield folder


def parse_train_args(argv):
    parser = argparse.ArgumentParser(
        description="Train the face segmentation autoencoder. Defaults are the reference recipe; "
                    "`python convolutional_autoencoder.py evaluate --help` for evaluation.")
    flag = parser.add_argument
    flag("--data", help="folder with inputs/, targets/, targets_face_only/")
    flag("--targets", choices=TARGET_KINDS, help="face, face+hair, or background/face/hair classes")
    flag("--arch", help="architecture description, e.g. C5,64,2C5,64,1M2C5,64,2C5,64,1M2C5,64,2C5,64,1M2")
    flag("--untied", dest="tied_weights", action="store_false", default=None,
         help="decoder gets its own kernels instead of sharing the encoder's")
    flag("--no-skips", dest="skip_connections", action="store_false", default=None, help="no skip links")
    flag("--no-standardization", dest="per_image_standardization", action="store_false", default=None,
         help="no per-image standardisation of the input")
    flag("--no-batch-norm", dest="batch_norm", action="store_false", default=None, help="no batch norm")
    flag("--linear-output", action="store_true", default=None,
         help="the last decoder layer is a transposed convolution + bias, without the reference's batch "
              "norm and leaky ReLU before the sigmoid")
    flag("--epochs", type=int)
    flag("--max-steps", type=int, help="stop after this many training steps in all")
    flag("--max-minutes", type=float, help="stop (resumably) after this much wall time")
    flag("--batch-size", type=int)
    flag("--lr", type=float, help="Adam learning rate (the peak with --schedule onecycle)")
    flag("--schedule", choices=("constant", "onecycle"))
    flag("--loss", choices=("rmse", "bce", "bce_dice"))
    flag("--no-augment", dest="augment", action="store_false", default=None, help="no imgaug augmentation")
    flag("--clean-epochs", type=int, metavar="N", help="train the last N epochs without augmentation")
    flag("--eval-every", type=int, help="evaluate on the validation split every this many steps")
    flag("--tta", choices=("none", "flip"), help="test-time augmentation when evaluating")
    flag("--precision", choices=tuple(COMPUTE_DTYPES), help="bf16 runs convolutions in bfloat16")
    flag("--seed", type=int)
    flag("--out", help="runs are written to OUT/<description>/<timestamp>/")
    flag("--resume", metavar="DIR", help="continue the run in DIR")
    flag("--init-from", metavar="DIR",
         help="start from the best weights of the run (or pretrained/) in DIR, with its split; a new run")
    flag("--swa-start", type=int, metavar="EPOCH",
         help="stochastic weight averaging: average the weights at the end of every epoch from this one "
              "on; validation, best/ and the test score the average")
    flag("--skip-bad", action="store_true", default=None, help="leave out (and list) unreadable or unmatched images")
    flag("--strategy", choices=("default", "mirrored", "multiworker"),
         help="tf.distribute: one device, all local GPUs/CPUs, or the machines in TF_CONFIG; "
              "--batch-size is per replica")
    flag("--streaming", action="store_true", default=None,
         help="read images batch by batch instead of all up front, for data larger than memory")
    for action in parser._actions:
        # On/off switches name the non-default behaviour; "--untied (default: True)" would mislead.
        if action.dest in DEFAULTS and action.nargs != 0:
            action.help = f"{action.help or ''} (default: {DEFAULTS[action.dest]})".strip()
    args = vars(parser.parse_args(argv))
    resume = args.pop("resume")
    given = {k: v for k, v in args.items() if v is not None}
    if resume is not None:  # an empty --resume "" (e.g. an unset shell variable) must not start a new run
        if not resume or not (Path(resume) / "config.json").is_file():
            raise UsageError(f"{resume!r} is not a run folder (no config.json): pass a folder written by "
                             "this script, e.g. save/<description>/<timestamp>/")
        saved = read_json(Path(resume) / "config.json")
        for derived in ("model", "image_size"):
            saved.pop(derived, None)
        ignored = sorted(k for k in given if k not in RESUMABLE and given[k] != saved.get(k))
        if ignored:
            raise UsageError(f"--resume continues {resume} with its own config.json; only "
                             f"{', '.join('--' + k.replace('_', '-') for k in RESUMABLE)} may change, not "
                             f"{', '.join('--' + k.replace('_', '-') for k in ignored)}")
        return {**DEFAULTS, **saved, **given}, resume
    return {**DEFAULTS, **given}, None


def parse_evaluate_args(argv):
    parser = argparse.ArgumentParser(prog="convolutional_autoencoder.py evaluate",
                                     description="Evaluate a trained model on a split of a data folder.")
    parser.add_argument("--model-dir", default="pretrained", help="run folder or pretrained/ (default: pretrained)")
    parser.add_argument("--data", help="data folder (default: the one the model was trained on)")
    parser.add_argument("--split", default="test", choices=(*SPLITS, "all"))
    parser.add_argument("--tta", choices=("none", "flip"), help="default: the setting the model was trained with")
    parser.add_argument("--precision", default="fp32", choices=tuple(COMPUTE_DTYPES))
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--json", action="store_true", help="print one JSON line")
    return parser.parse_args(argv)


def print_summary(argv):
    parser = argparse.ArgumentParser(prog="convolutional_autoencoder.py summary",
                                     description="Print the layers of an architecture with their output shapes.")
    parser.add_argument("--arch", default=REFERENCE_DESCRIPTION)
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--untied", action="store_true")
    parser.add_argument("--classes", type=int, default=1)
    args = parser.parse_args(argv)
    model = Model.from_description(args.arch, tied_weights=not args.untied, num_classes=args.classes)
    model.check_size(args.size, args.size)
    print(f"{model.description}, input {args.size}x{args.size}x1\n")
    print("| step | layer | output (H, W, C) | parameters |\n|---|---|---|---|")
    for step, (kind, description, shape, count) in enumerate(model.summary(args.size, args.size), 1):
        print(f"| {step} | {kind} {description} | {shape} | {count:,} |")
    total = sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    print(f"\ntrainable parameters: {total:,}")


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    try:
        if argv[:1] == ["summary"]:
            print_summary(argv[1:])
            return 0
        if argv[:1] == ["export"]:
            import export  # imports this module, so only when asked for
            return export.main(argv[1:])
        if argv[:1] == ["evaluate"]:
            args = parse_evaluate_args(argv[1:])
            result = evaluate(args.model_dir, args.data, args.split, args.tta, args.precision, args.batch_size)
            steps, minutes = training_time(args.model_dir)
            sources = [(str(folder), *training_time(folder)) for folder in init_chain(args.model_dir)]
            if args.json:
                print(json.dumps({**{k: result[k] for k in (*METRIC_NAMES, "images", "classes", "class_iu")},
                                  "train_steps": steps, "train_minutes": minutes,
                                  "init_from": [{"model_dir": folder, "train_steps": s, "train_minutes": m}
                                                for folder, s, m in sources]}))
            else:
                print(f"{args.model_dir} on {args.split} ({result['images']} images): {format_scores(result)}")
                print("per-class IU: " + "  ".join(
                    f"{name} {'—' if iu is None else f'{100 * iu:.2f}%'}"
                    for name, iu in zip(result["classes"], result["class_iu"])))
                if minutes is not None:
                    print(f"trained {steps} steps in {minutes:.0f} minutes (TensorBoard event times)")
                for folder, source_steps, source_minutes in sources:
                    if source_minutes is not None:
                        print(f"started from {folder} (--init-from), trained {source_steps} steps "
                              f"in {source_minutes:.0f} minutes")
            return 0
        config, resume = parse_train_args(argv[1:] if argv[:1] == ["train"] else argv)
        train(config, resume)
        return 0
    except (UsageError, DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except tf.errors.OpError as error:
        # A DataError raised while tf.data reads files (--streaming) arrives inside TensorFlow's error.
        data_error = re.search(r"DataError: (.*)", error.message)
        if data_error is None:
            raise
        print(f"error: {data_error.group(1)}", file=sys.stderr)
        return 2
    except TrainingError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
