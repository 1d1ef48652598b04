"""Scale out: tf.distribute strategies (mirrored, multi-worker) and streaming data, on small synthetic folders."""
import json
import os
import socket
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from batch_norm import BatchNorm
import convolutional_autoencoder as ca
from conftest import ROOT, make_face_folder, run_folders, scalars
from data_folder import DataError
from dataset import Dataset
from runs.metrics import METRIC_NAMES

TINY = ["--arch", "C3,8,2C3,8,1M2", "--no-augment", "--eval-every", "2"]

# Runs the command line in a fresh interpreter: logical CPU devices can only be set up before
# TensorFlow initialises its devices, and MultiWorkerMirroredStrategy only before TensorFlow runs
# anything, both long past in the pytest process.
CLI = """
import sys
import tensorflow as tf
devices = int(sys.argv[1])
if devices > 1:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * devices)
import convolutional_autoencoder as ca  # from the working directory, the project root
sys.exit(ca.main(sys.argv[2:]))
"""


def start(args, devices=1, env=()):
    return subprocess.Popen([sys.executable, "-c", CLI, str(devices), *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **dict(env)})


def finish(process, timeout=300):
    output = process.communicate(timeout=timeout)[0]
    assert process.returncode == 0, output
    return output


def weights(run):
    """Every variable of the latest checkpoint of a run folder, by checkpoint key."""
    reader = tf.train.load_checkpoint(str(run / "latest"))
    return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()
            if key.startswith("model/")}


def assert_same_training(run, reference):
    losses, expected = scalars(run, "train/loss"), scalars(reference, "train/loss")
    assert set(losses) == set(expected)
    assert losses == pytest.approx(expected, rel=1e-5)
    ours, theirs = weights(run), weights(reference)
    assert set(ours) == set(theirs) and any("moving_mean" in key for key in ours)
    for key in theirs:
        np.testing.assert_allclose(ours[key], theirs[key], atol=2e-5, err_msg=key)


# ---- tf.distribute ---------------------------------------------------------------------------------

def test_mirrored_on_two_cpus_trains_and_resumes_like_one_device(face_folder, tmp_path):
    single, mirrored = tmp_path / "single", tmp_path / "mirrored"
    assert ca.main(["--data", str(face_folder), *TINY, "--batch-size", "4", "--max-steps", "2", "--test-at-end",
                    "--out", str(single)]) == 0
    output = finish(start(["--data", str(face_folder), *TINY, "--batch-size", "2", "--max-steps", "2",
                           "--strategy", "mirrored", "--test-at-end", "--out", str(mirrored)], devices=2))
    assert "strategy mirrored: 2 replicas of 2 images, global batch 4" in output
    [reference], [run] = run_folders(single), run_folders(mirrored)
    assert_same_training(run, reference)
    ours, theirs = (json.loads((r / "metrics.json").read_text()) for r in (run, reference))
    for split in ("validation", "test"):
        assert {m: ours[split][m] for m in METRIC_NAMES} == pytest.approx(
            {m: theirs[split][m] for m in METRIC_NAMES})

    assert ca.main(["--resume", str(reference), "--max-steps", "3"]) == 0
    finish(start(["--resume", str(run), "--max-steps", "3"], devices=2))
    assert tf.train.latest_checkpoint(str(run / "latest")).endswith("ckpt-3")
    assert_same_training(run, reference)


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_train_together_and_only_the_chief_writes(face_folder, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    workers = [start(["--data", str(face_folder), *TINY, "--batch-size", "2", "--max-steps", "2",
                      "--strategy", "multiworker", "--test-at-end", "--out", str(tmp_path / f"out{index}")],
                     env={"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}}),
                          "TMPDIR": str(scratch)})
               for index in range(2)]
    outputs = [finish(worker) for worker in workers]
    assert all("strategy multiworker: 2 replicas of 2 images, global batch 4" in out for out in outputs)
    [run] = run_folders(tmp_path / "out0")
    assert tf.train.latest_checkpoint(str(run / "latest")).endswith("ckpt-2")
    assert tf.train.latest_checkpoint(str(run / "best")).endswith("ckpt-2")
    assert "test" in json.loads((run / "metrics.json").read_text())
    assert not (tmp_path / "out1").exists()
    assert not list(scratch.glob("worker-*")), "the other worker left its scratch checkpoints behind"

    single = tmp_path / "single"
    assert ca.main(["--data", str(face_folder), *TINY, "--batch-size", "4", "--max-steps", "2",
                    "--out", str(single)]) == 0
    assert_same_training(run, run_folders(single)[0])


def test_a_stop_on_one_worker_stops_both_after_the_same_step(face_folder, tmp_path):
    cluster = {"worker": [f"127.0.0.1:{port}" for port in free_ports(2)]}
    workers = [start(["--data", str(face_folder), *TINY, "--batch-size", "2", "--max-steps", "5",
                      "--strategy", "multiworker", "--out", str(tmp_path / "out"),
                      *(["--max-minutes", "0.000001"] if index == 1 else [])],
                     env={"TF_CONFIG": json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})})
               for index in range(2)]
    chief, other = (finish(worker) for worker in workers)
    assert "stopped by another worker at step 1" in chief
    assert "stopped by --max-minutes at step 1" in other
    [run] = run_folders(tmp_path / "out")
    assert tf.train.latest_checkpoint(str(run / "latest")).endswith("ckpt-1")


def test_batch_norm_statistics_under_a_strategy_and_checkpoints_both_ways(tmp_path):
    x = tf.random.normal([4, 5, 5, 3]) * 3 + 2
    plain = BatchNorm(3)
    plain(x, training=True)
    strategy = tf.distribute.MirroredStrategy(["/cpu:0"])
    with strategy.scope():
        mirrored = BatchNorm(3)
    strategy.run(tf.function(lambda: mirrored(x, training=True)))
    assert isinstance(mirrored.moving_mean, tf.distribute.DistributedValues)
    np.testing.assert_allclose(mirrored.moving_mean.numpy(), plain.moving_mean.numpy(), rtol=1e-6)
    np.testing.assert_allclose(mirrored.moving_variance.numpy(), plain.moving_variance.numpy(), rtol=1e-6)

    saved = tf.train.Checkpoint(norm=mirrored).write(str(tmp_path / "mirrored"))
    restored = BatchNorm(3)
    tf.train.Checkpoint(norm=restored).read(saved).assert_existing_objects_matched()
    np.testing.assert_allclose(restored.moving_mean.numpy(), plain.moving_mean.numpy(), rtol=1e-6)
    with strategy.scope():
        back = BatchNorm(3)
    saved = tf.train.Checkpoint(norm=plain).write(str(tmp_path / "plain"))
    tf.train.Checkpoint(norm=back).read(saved).assert_existing_objects_matched()
    np.testing.assert_allclose(back(x, training=False), plain(x, training=False), atol=1e-6)

    # Checkpoints written before the statistics were ON_READ variables have the same keys.
    before = tf.Module()
    before.moving_mean, before.moving_variance, before.updates = (
        tf.Variable(v) for v in (plain.moving_mean, plain.moving_variance, plain.updates))
    saved = tf.train.Checkpoint(norm=before).write(str(tmp_path / "before"))
    for target in (BatchNorm(3), back):
        tf.train.Checkpoint(norm=target).read(saved).assert_existing_objects_matched()
        np.testing.assert_allclose(target.moving_variance.numpy(), plain.moving_variance.numpy(), rtol=1e-6)


def pipelines(dataset, epoch, replicas, workers):
    """Each worker's training batches (images as uint8) under a tf.distribute input context."""
    return [[(np.round(x.numpy()[..., 0] * 255).astype(np.uint8), y.numpy())
             for x, y in dataset.train_batches(epoch, context=tf.distribute.InputContext(workers, w, replicas))]
            for w in range(workers)]


def image_set(images):
    return sorted(image.tobytes() for image in images)


# 12 training images: whole steps; a last step shared out; a remainder joining the step before.
@pytest.mark.parametrize("batch_size, replicas, workers", [(2, 2, 2), (2, 4, 2), (3, 2, 1), (1, 8, 2), (2, 5, 1)])
def test_replicas_share_each_step_without_empty_batches(tmp_path, batch_size, replicas, workers):
    folder = make_face_folder(tmp_path / "faces", persons=8, per_person=2)
    dataset = Dataset(batch_size, folder, seed=3, augment=False)
    train, global_batch = dataset.images["train"], batch_size * replicas
    steps = dataset.steps_per_epoch(replicas)
    served = pipelines(dataset, epoch=1, replicas=replicas, workers=workers)
    local = replicas // workers
    assert all(len(batches) == steps * local for batches in served)
    assert all(len(x) > 0 for batches in served for x, _ in batches)
    order = np.random.default_rng([3, 1]).permutation(len(train))
    for s in range(steps):
        images = [x for batches in served for x, _ in batches[s * local:(s + 1) * local]]
        stop = (s + 1) * global_batch if s < steps - 1 else len(train)
        assert image_set(np.concatenate(images)) == image_set(train[order[s * global_batch:stop]])


def test_fewer_images_than_replicas_is_refused(face_folder):
    dataset = Dataset(1, face_folder, augment=False)
    with pytest.raises(DataError, match=r"the validation split has 2 images, fewer than the 4 replicas"):
        dataset.batches("validation", tf.distribute.InputContext(1, 0, 4))


# ---- streaming -------------------------------------------------------------------------------------

@pytest.mark.parametrize("targets", ["face", "classes3"])
@pytest.mark.parametrize("augment", [False, True])
def test_streaming_serves_the_same_batches_as_memory(tmp_path, targets, augment):
    folder = make_face_folder(tmp_path / "faces", persons=7, per_person=2)
    options = dict(seed=4, augment=augment, three_classes=targets == "classes3")
    memory = Dataset(4, folder, **options)
    streaming = Dataset(4, folder, streaming=True, **options)
    assert not hasattr(streaming, "images") and streaming.image_shape == memory.image_shape
    assert streaming.split == memory.split
    for make in (lambda d: d.train_batches(epoch=0), lambda d: d.train_batches(epoch=1, skip=1),
                 lambda d: d.batches("validation"), lambda d: d.batches("test")):
        ours, theirs = list(make(streaming)), list(make(memory))
        assert len(ours) == len(theirs) > 0
        for (x1, y1), (x2, y2) in zip(ours, theirs):
            np.testing.assert_array_equal(x1, x2)
            np.testing.assert_array_equal(y1, y2)


def test_streaming_reads_files_when_served(face_folder):
    streaming = Dataset(100, face_folder, streaming=True)
    name = streaming.split["test"][0]
    cv2.imwrite(str(face_folder / "inputs" / f"{name}.jpg"), np.full((64, 64), 255, np.uint8))
    images, _ = next(iter(streaming.batches("test")))
    np.testing.assert_array_equal(images[0], np.ones((64, 64, 1), np.float32))


def test_streaming_training_matches_memory_and_names_a_bad_file(face_folder, tmp_path, capsys):
    args = ["--data", str(face_folder), "--arch", "C3,8,2C3,8,1M2", "--batch-size", "4", "--max-steps", "2"]
    assert ca.main([*args, "--out", str(tmp_path / "memory")]) == 0
    assert ca.main([*args, "--streaming", "--out", str(tmp_path / "streaming")]) == 0
    [memory], [streaming] = run_folders(tmp_path / "memory"), run_folders(tmp_path / "streaming")
    assert scalars(streaming, "train/loss") == pytest.approx(scalars(memory, "train/loss"), rel=1e-6)
    assert json.loads((streaming / "config.json").read_text())["streaming"] is True

    (face_folder / "targets_face_only" / "Person_05_0002.jpg").write_bytes(b"not a jpeg")
    assert ca.main([*args, "--streaming", "--epochs", "1", "--out", str(tmp_path / "bad")]) == 2
    err = capsys.readouterr().err
    assert "cannot read image" in err and "Person_05_0002.jpg" in err and "Traceback" not in err


def test_streaming_skip_bad_leaves_a_damaged_file_out_and_says_so_once(face_folder, tmp_path, capsys):
    bad = face_folder / "targets_face_only" / "Person_05_0002.jpg"
    bad.write_bytes(b"not a jpeg")
    logged = []
    dataset = Dataset(100, face_folder, streaming=True, skip_bad=True, augment=False, log=logged.append)
    split = next(s for s in ("train", "validation", "test") if "Person_05_0002" in dataset.split[s])
    for _ in range(2):
        [(images, labels)] = list(dataset.batches(split))
        assert len(images) == len(labels) == dataset.size(split) - 1
    assert len(logged) == 1 and "skipped: cannot read image" in logged[0] and str(bad) in logged[0]

    args = ["--data", str(face_folder), "--arch", "C3,8,2C3,8,1M2", "--batch-size", "4", "--epochs", "2"]
    assert ca.main([*args, "--streaming", "--skip-bad", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert out.count("skipped: ") == 1 and str(bad) in out


def test_streaming_skip_bad_refuses_a_batch_with_no_readable_image(face_folder):
    dataset = Dataset(100, face_folder, streaming=True, skip_bad=True, augment=False, log=lambda message: None)
    for name in dataset.split["test"]:
        (face_folder / "inputs" / f"{name}.jpg").write_bytes(b"")
    with pytest.raises(tf.errors.OpError, match=r"every image of a test batch of .* is unreadable"):
        list(dataset.batches("test"))


def test_streaming_names_a_truncated_image_as_the_in_memory_reader_does(face_folder, tmp_path, capsys):
    path = face_folder / "inputs" / "Person_05_0002.jpg"
    path.write_bytes(path.read_bytes()[:-2])  # all but the end-of-image marker: OpenCV alone reads it
    args = ["--data", str(face_folder), "--arch", "C3,8,2C3,8,1M2", "--batch-size", "4", "--epochs", "1"]
    sentence = f"cannot read image {path}: it ends before its end-of-image marker (truncated)"
    assert ca.main([*args, "--streaming", "--out", str(tmp_path / "streaming")]) == 2
    err = capsys.readouterr().err
    assert sentence in err and "Traceback" not in err
    assert ca.main([*args, "--out", str(tmp_path / "memory")]) == 2
    assert sentence in capsys.readouterr().err
