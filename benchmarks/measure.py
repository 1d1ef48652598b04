"""One precision's measurements, in a process of its own: run by bench.py once per precision.

Training runs first, so the peak memory read right after it is the training step's (TensorFlow and
the model included) and no other precision's. Prints one JSON line.
"""
import argparse
import json
import math
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import quiet_tensorflow  # noqa: E402,F401  (before TensorFlow: it starts without its C++ start-up lines)
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from conv2d import Conv2d  # noqa: E402
from data_folder import DataError  # noqa: E402
from dataset import Dataset  # noqa: E402
import infer  # noqa: E402
from max_pool_2d import MaxPool2d  # noqa: E402
from model import REFERENCE_DESCRIPTION  # noqa: E402
from runs.config import COMPUTE_DTYPES, DEFAULTS, UsageError, build_model  # noqa: E402
from runs.losses import loss_function  # noqa: E402
from runs.run_folder import CHECKPOINT_BEST, write_json  # noqa: E402
from runs.training import optimization_step  # noqa: E402


def parse_args(argv):
    parser = argparse.ArgumentParser(description="One precision's benchmark numbers as a JSON line (see bench.py).")
    flag = parser.add_argument
    flag("--precision", required=True, choices=tuple(COMPUTE_DTYPES))
    flag("--arch", default=REFERENCE_DESCRIPTION)
    flag("--batch-size", type=int, default=DEFAULTS["batch_size"])
    flag("--size", type=int, default=128)
    flag("--steps", type=int, default=8)
    flag("--warmup", type=int, default=2)
    flag("--folder", required=True, help="folder of images for infer.segment()")
    flag("--matmul-size", type=int, default=4096)
    flag("--matmul-seconds", type=float, default=2.0)
    flag("--data", help="also time the Dataset reading this data folder")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        print(json.dumps(measure(args)))
    except (UsageError, DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


def measure(args):
    model = build_model({**DEFAULTS, "arch": args.arch, "precision": args.precision})
    model.check_size(args.size, args.size)
    train_rate = training_rate(model, args)
    peak_rss_mb = peak_rss_kib() / 1024
    infer_rate = inference_rate(model, args)
    folder = folder_rate(model, args)
    return {"precision": args.precision, "train_img_per_s": train_rate, "peak_rss_mb": peak_rss_mb,
            "infer_img_per_s": infer_rate, "folder_img_per_s": folder["images_per_second"],
            "folder_images": folder["images"],
            "matmul_peak_gflop_per_s": matmul_peak(COMPUTE_DTYPES[args.precision], args.matmul_size,
                                                   args.matmul_seconds),
            "flops_per_image": model_flops(model, args.size),
            "load_s": load_seconds(args.data, args.batch_size) if args.data else None,
            "tensorflow": tf.__version__}


def random_batch(args):
    """Fixed random images and 0/1 labels, as the peers feed."""
    rng = np.random.default_rng(0)
    images = rng.random((args.batch_size, args.size, args.size, 1), dtype=np.float32)
    labels = (rng.random((args.batch_size, args.size, args.size)) > 0.7).astype(np.int32)
    return tf.constant(images), tf.constant(labels)


def training_rate(model, args):
    """Images/s of the training step of training.train() (one replica): RMSE, Adam, logits(training=True)."""
    optimizer = tf.keras.optimizers.Adam(DEFAULTS["lr"])
    optimizer.build(model.trainable_variables)
    loss_of = loss_function(DEFAULTS["loss"], model.num_classes)

    @tf.function(input_signature=[tf.TensorSpec([None, args.size, args.size, 1], tf.float32),
                                  tf.TensorSpec([None, args.size, args.size], tf.int32)])
    def train_step(images, labels):
        return optimization_step(model, optimizer, loss_of, images, labels)

    images, labels = random_batch(args)
    return args.batch_size * args.steps / timed(lambda: float(train_step(images, labels)), args.warmup, args.steps)


def peak_rss_kib():
    """This process's peak resident memory. VmHWM counts from exec; ru_maxrss would also count the
    parent's memory at fork time."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def inference_rate(model, args):
    """Images/s of batched model(x, training=False) in a tf.function, the output fetched to numpy."""

    @tf.function(input_signature=[tf.TensorSpec([None, args.size, args.size, 1], tf.float32)])
    def forward(images):
        return model(images, training=False)

    images, _ = random_batch(args)
    return args.batch_size * args.steps / timed(lambda: forward(images).numpy(), args.warmup, args.steps)


def timed(step, warmup, steps):
    """Seconds that `steps` calls of `step` take after `warmup` untimed ones (at least one: the trace)."""
    for _ in range(max(1, warmup)):
        step()
    started = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - started


def folder_rate(model, args):
    """infer.segment() on the folder, as `python infer.py --whole-image FOLDER` runs (its images are LFW
    crops), from a run folder of this model."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as run_dir:
        save_run(model, args, Path(run_dir))
        summary = infer.segment([args.folder], run_dir, Path(run_dir) / "out", batch_size=args.batch_size,
                                precision=args.precision, whole_image=True,
                                log=lambda message: print(message, file=sys.stderr))
    if summary["failed"]:
        raise ValueError(f"infer.segment() could not segment {len(summary['failed'])} of the benchmark's "
                         f"images (first: {summary['failed'][0]})")
    return summary


def save_run(model, args, run_dir):
    """A run folder laid out as training.train() writes it, so evaluation.load_trained() reads it."""
    config = {**DEFAULTS, "arch": args.arch, "batch_size": args.batch_size, "precision": args.precision}
    write_json(run_dir / "config.json", {**config, "image_size": [args.size, args.size], "model": model.config})
    tf.train.CheckpointManager(tf.train.Checkpoint(model=model), run_dir / CHECKPOINT_BEST, max_to_keep=1).save()


def matmul_peak(dtype, n, seconds):
    """GFLOP/s of an n x n by n x n tf.linalg.matmul in `dtype`, repeated for at least `seconds` after one warm-up."""
    a = tf.cast(tf.random.stateless_uniform([n, n], [1, 2]), dtype)
    b = tf.cast(tf.random.stateless_uniform([n, n], [3, 4]), dtype)
    # The sum needs the whole product; its n^2 additions are negligible next to the matmul's 2n^3.
    product = tf.function(lambda: tf.reduce_sum(tf.cast(tf.linalg.matmul(a, b), tf.float32)))
    product().numpy()
    repeats, started = 0, time.perf_counter()
    while repeats == 0 or time.perf_counter() - started < seconds:
        product().numpy()
        repeats += 1
    return 2 * n ** 3 * repeats / (time.perf_counter() - started) / 1e9


def model_flops(model, size):
    """FLOPs of the convolutions for one image: forward, and training = 3 x forward.

    A conv costs 2*Hout*Wout*k*k*Cin*Cout; its mirror, a transposed conv, costs the same as the conv
    it is the gradient of. Batch norm, activations, pools and upsampling are left out (memory-bound
    and a small fraction of the work).
    """
    height = width = size
    forward = 0
    for layer in model.layers:
        if isinstance(layer, Conv2d):
            height, width = math.ceil(height / layer.stride), math.ceil(width / layer.stride)
            inputs, mirror_outputs = layer.kernel.shape[2], layer.mirror_kernel.shape[2]
            forward += 2 * height * width * layer.kernel_size ** 2 * layer.output_channels * (inputs + mirror_outputs)
        elif isinstance(layer, MaxPool2d):
            height, width = height // layer.kernel_size, width // layer.kernel_size
    return {"forward": forward, "train": 3 * forward}


def load_seconds(data, batch_size):
    """Seconds the Dataset takes to read the data folder up front (as training does)."""
    return Dataset(batch_size, data, augment=False, log=lambda message: None).load_seconds


if __name__ == "__main__":
    sys.exit(main())
