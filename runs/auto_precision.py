"""`--precision auto`: fp32 or bf16, whichever runs this model faster on this CPU, measured once and cached.

A CPU flag says what the hardware could do, not what TensorFlow's kernels do with it: on some CPUs that
list AVX512-BF16, bf16 runs at half the speed of fp32. So where the CPU has native bf16 (cpu_features),
`auto` times the model's own forward pass (or, for training, its training step) in both precisions for
about a second and runs the faster one. The verdict is kept in a small JSON file under the user's cache
folder, per CPU model, TensorFlow version, what was timed and architecture, so later runs pay nothing.
Without native bf16 it is fp32 without measuring: emulated bf16 is never the faster.
"""
import datetime
import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from runs import cpu_features

KINDS = {"inference": "forward pass", "training": "training step"}
# Set to a folder to keep the verdicts elsewhere (tests point it at a scratch folder).
CACHE_ENV = "FACE_SEGMENTATION_CACHE"
CACHE_NAME = "face-segmentation"
CACHE_FILE = "precision.json"
# Images per timed call: small, so that both precisions fit in about a second of timing.
TIMING_BATCH = {"inference": 8, "training": 4}
TIMING_SECONDS = 0.5
MIN_CALLS = 3
# bf16 rounds every activation, so it has to win clearly, not by the noise of a shared machine.
BF16_WINS_BELOW = 0.95


def warn(message):
    print(message, file=sys.stderr)


def choose(build, size, kind="inference", cpuinfo=cpu_features.CPUINFO, cache=None, log=warn):
    """(precision, note on why) for `auto`: `build(precision)` makes the (untrained) model to time,
    `size` is its (height, width) input, `kind` is "inference" or "training", `cache` the cache file
    (default: cache_file()). The note reads after the precision: "bf16 (auto: ...)"."""
    cpu, flags = cpu_features.read_cpu(cpuinfo)
    if not any(flag in flags for flag in cpu_features.BF16_FLAGS):
        return "fp32", " (auto: this CPU has no native bf16, so fp32 without measuring)"
    cache = Path(cache or cache_file())
    architecture = json.dumps(build("fp32").config, sort_keys=True)
    key = f"{cpu} | TensorFlow {tf.__version__} | {kind} | {architecture} | {size[0]}x{size[1]}"
    verdicts = read_cache(cache, log)
    if key in verdicts:
        return verdicts[key]["precision"], note(verdicts[key], kind, f"cached in {cache}")
    started = time.perf_counter()
    seconds = time_both(build, size, kind)
    ratio = seconds["bf16"] / seconds["fp32"]
    verdicts[key] = {"precision": "bf16" if ratio < BF16_WINS_BELOW else "fp32", "bf16_over_fp32": round(ratio, 3),
                     "seconds_per_call": seconds, "batch": TIMING_BATCH[kind],
                     "measured": datetime.datetime.now().isoformat(timespec="seconds")}
    write_cache(cache, verdicts, log)
    measured = f"measured in {time.perf_counter() - started:.1f} s, cached in {cache}"
    return verdicts[key]["precision"], note(verdicts[key], kind, measured)


def note(verdict, kind, source):
    return (f" (auto: bf16's {KINDS[kind]} took {verdict['bf16_over_fp32']:.2f}x fp32's time on this CPU; "
            f"{source})")


def cache_file():
    """$FACE_SEGMENTATION_CACHE/precision.json, else under $XDG_CACHE_HOME (or ~/.cache)/face-segmentation/."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV]) / CACHE_FILE
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / CACHE_NAME / CACHE_FILE


def read_cache(path, log):
    """The verdicts of the cache file; {} when there is none, and (with one warning) when it cannot be read."""
    try:
        verdicts = json.loads(path.read_text())
        if not all(isinstance(v, dict) and v.get("precision") in ("fp32", "bf16")
                   and isinstance(v.get("bf16_over_fp32"), (int, float)) for v in verdicts.values()):
            raise ValueError("an entry is not a verdict")
        return verdicts
    except (FileNotFoundError, NotADirectoryError):  # nothing measured yet
        return {}
    except (OSError, ValueError, AttributeError) as error:
        log(f"warning: ignored the precision cache {path} ({getattr(error, 'strerror', None) or error}); "
            "it is measured again and rewritten")
        return {}


def write_cache(path, verdicts, log):
    """Write the verdicts through a scratch file, so that a process reading it never sees half a file."""
    scratch = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch.write_text(json.dumps(verdicts, indent=1) + "\n")
        os.replace(scratch, path)
    except OSError as error:
        log(f"warning: cannot write the precision cache {path} ({error.strerror}); `auto` measures again next time")


def time_both(build, size, kind):
    """{precision: fastest seconds of one call}, fp32 and bf16 called in turn for TIMING_SECONDS."""
    calls = {precision: timed_call(build(precision), size, kind) for precision in ("fp32", "bf16")}
    for call in calls.values():
        call()  # the trace
        call()
    fastest = dict.fromkeys(calls, math.inf)
    started, count = time.perf_counter(), 0
    while count < MIN_CALLS or time.perf_counter() - started < TIMING_SECONDS:
        for precision, call in calls.items():
            begin = time.perf_counter()
            call()
            fastest[precision] = min(fastest[precision], time.perf_counter() - begin)
        count += 1
    return {precision: round(seconds, 5) for precision, seconds in fastest.items()}


def timed_call(model, size, kind):
    """A function running the model's forward pass, or its training step, once on a fixed batch."""
    rng = np.random.default_rng(0)
    batch = TIMING_BATCH[kind]
    images = tf.constant(rng.random((batch, *size, 1), dtype=np.float32))
    if kind == "inference":
        forward = tf.function(lambda: model(images, training=False))
        return lambda: forward().numpy()
    # Imported here: training imports the configuration, which imports this file.
    from runs.losses import loss_function
    from runs.training import optimization_step
    labels = tf.constant(rng.integers(0, max(2, model.num_classes), (batch, *size)).astype(np.int32))
    optimizer = tf.keras.optimizers.Adam()
    optimizer.build(model.trainable_variables)
    loss_of = loss_function("rmse", model.num_classes)
    step = tf.function(lambda: optimization_step(model, optimizer, loss_of, images, labels))
    return lambda: step().numpy()
