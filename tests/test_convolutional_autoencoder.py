"""Dataset and the training / evaluation commands, on small synthetic folders and on the real data."""
import io
import json
import os
import re
import signal
import subprocess
import sys
import time

import cv2
import numpy as np
import pytest
import tensorflow as tf

import convolutional_autoencoder as ca
from conftest import ROOT, make_face_folder

TINY = ["--arch", "C3,8,2C3,8,1M2", "--batch-size", "4"]


def run_folders(out):
    return sorted(p for p in (out / "C3,8,2C3,8,1M2").iterdir() if p.is_dir())


def scalars(run_dir, tag):
    values = {}
    for path in sorted((run_dir / "logs").glob("events.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return values


# ---- splits and loading -------------------------------------------------------------------------

def test_split_by_person_is_disjoint_reproducible_and_70_15_15():
    names = [f"P{p:03d}_{k:04d}" for p in range(300) for k in range(1 + p % 4)]
    split = ca.split_by_person(names, seed=3)
    persons = {s: {ca.person_of(n) for n in split[s]} for s in ca.SPLITS}
    assert not persons["train"] & persons["validation"]
    assert not persons["train"] & persons["test"]
    assert not persons["validation"] & persons["test"]
    assert sorted(sum(split.values(), [])) == sorted(names)
    fractions = [len(split[s]) / len(names) for s in ca.SPLITS]
    np.testing.assert_allclose(fractions, [0.7, 0.15, 0.15], atol=0.01)
    assert ca.split_by_person(list(reversed(names)), seed=3) == split
    assert ca.split_by_person(names, seed=4) != split


def test_too_few_persons_to_split(tmp_path):
    folder = make_face_folder(tmp_path / "one", persons=1, per_person=3)
    with pytest.raises(ca.DataError, match=r"too few persons \(1\)"):
        ca.Dataset(4, folder)


def test_person_of_strips_the_image_number():
    assert ca.person_of("George_W_Bush_0012") == "George_W_Bush"
    assert ca.person_of("Abdullah_0001") == "Abdullah"


def test_targets_face_face_hair_and_three_classes(face_folder):
    names, images, face = ca.load_folder(face_folder, "face")
    _, _, face_hair = ca.load_folder(face_folder, "face_hair")
    _, _, classes = ca.load_folder(face_folder, "classes3")
    assert images.dtype == np.uint8 and images.shape == (12, 64, 64)
    assert set(np.unique(face)) == {0, 1} and set(np.unique(classes)) == {0, 1, 2}
    assert np.all(face <= face_hair)
    np.testing.assert_array_equal(classes == 1, face == 1)
    np.testing.assert_array_equal(classes == 2, (face_hair == 1) & (face == 0))
    truth = cv2.imread(str(face_folder / "targets_face_only" / f"{names[0]}.jpg"), cv2.IMREAD_GRAYSCALE)
    np.testing.assert_array_equal(face[0], truth > 127)


def test_color_inputs_are_read_as_grayscale(face_folder):
    path = face_folder / "inputs" / "Person_00_0001.jpg"
    gray = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    cv2.imwrite(str(path), cv2.cvtColor(gray, cv2.COLOR_GRAY2BGR))
    _, images, _ = ca.load_folder(face_folder)
    assert images.ndim == 3


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(ca.DataError, match=r"data folder .*nowhere does not exist.*prepare_data"):
        ca.load_folder(tmp_path / "nowhere")


def test_input_without_target_is_named_and_can_be_skipped(face_folder):
    (face_folder / "targets_face_only" / "Person_01_0002.jpg").unlink()
    with pytest.raises(ca.DataError, match=r"Person_01_0002 has no file in .*targets_face_only.*--skip-bad"):
        ca.load_folder(face_folder)
    logged = []
    names, _, _ = ca.load_folder(face_folder, skip_bad=True, log=logged.append)
    assert "Person_01_0002" not in names and len(names) == 11
    assert any("Person_01_0002" in line for line in logged)


def test_target_without_input_is_named(face_folder):
    (face_folder / "inputs" / "Person_02_0001.jpg").unlink()
    with pytest.raises(ca.DataError, match=r"Person_02_0001 has no file in .*inputs"):
        ca.load_folder(face_folder)


def test_corrupt_image_is_named(face_folder):
    (face_folder / "inputs" / "Person_03_0001.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(ca.DataError, match=r"cannot read image .*Person_03_0001.jpg"):
        ca.load_folder(face_folder)


def test_size_mismatch_is_named(face_folder):
    cv2.imwrite(str(face_folder / "targets_face_only" / "Person_04_0001.jpg"), np.zeros((32, 32), np.uint8))
    with pytest.raises(ca.DataError, match=r"Person_04_0001: input and targets differ in size"):
        ca.load_folder(face_folder)


def test_training_batches_are_reproducible_and_augmented(face_folder):
    dataset = ca.Dataset(4, face_folder, seed=5)
    first = [(x.numpy(), y.numpy()) for x, y in dataset.train_batches(epoch=0)]
    again = [(x.numpy(), y.numpy()) for x, y in ca.Dataset(4, face_folder, seed=5).train_batches(epoch=0)]
    for (x1, y1), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert sum(len(x) for x, _ in first) == dataset.size("train")
    assert first[0][0].shape[1:] == (64, 64, 1) and first[0][0].dtype == np.float32
    assert first[0][1].dtype == np.int32 and set(np.unique(first[0][1])) <= {0, 1}
    later = [x.numpy() for x, _ in dataset.train_batches(epoch=0, skip=1)]
    np.testing.assert_array_equal(later[0], first[1][0])
    plain = ca.Dataset(4, face_folder, seed=5, augment=False)
    x, _ = next(iter(plain.train_batches(epoch=0)))
    assert all(any(np.array_equal(img, ref) for ref in plain.images["train"]) for img in
               (x.numpy()[..., 0] * 255).round().astype(np.uint8))


def test_pipelines_do_not_autotune(face_folder):
    # tf.data's autotuning thread made each new epoch wait up to a minute for the old iterator.
    dataset = ca.Dataset(4, face_folder, seed=5)
    for pipeline in (dataset.train_batches(epoch=0), dataset.batches("validation")):
        assert pipeline.options().autotune.enabled is False


def test_real_data_split(real_data):
    dataset = ca.Dataset(100, real_data)
    sizes = {s: dataset.size(s) for s in ca.SPLITS}
    assert sum(sizes.values()) == 2637
    np.testing.assert_allclose([sizes[s] / 2637 for s in ca.SPLITS], [0.7, 0.15, 0.15], atol=0.01)
    persons = [{ca.person_of(n) for n in dataset.split[s]} for s in ca.SPLITS]
    assert not (persons[0] & persons[1] or persons[0] & persons[2] or persons[1] & persons[2])
    assert dataset.image_shape == (128, 128)
    face = dataset.labels["train"].mean()
    assert 0.1 < face < 0.6


# ---- training ------------------------------------------------------------------------------------

def test_two_steps_write_checkpoint_config_events_and_figure(face_folder, tmp_path, capsys):
    out = tmp_path / "save"
    assert ca.main(["--data", str(face_folder), *TINY, "--max-steps", "2", "--eval-every", "2",
                    "--out", str(out)]) == 0
    [run] = run_folders(out)
    config = json.loads((run / "config.json").read_text())
    assert config["max_steps"] == 2 and config["arch"] == "C3,8,2C3,8,1M2" and config["image_size"] == [64, 64]
    assert config["model"]["description"] == "C3,8,2C3,8,1M2"
    assert tf.train.latest_checkpoint(str(run / "latest")).endswith("ckpt-2")
    assert tf.train.latest_checkpoint(str(run / "best")).endswith("ckpt-2")
    assert list((run / "logs").glob("events.out.tfevents.*"))
    assert (run / "image_plots" / "figure2.png").stat().st_size > 0
    assert set(scalars(run, "train/loss")) == {1, 2}
    assert 2 in scalars(run, "validation/pixel_accuracy")
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["step"] == 2 and set(metrics["test"]) >= {"pixel_accuracy", "mean_iu", "fw_iu", "mean_accuracy"}
    split = json.loads((run / "split.json").read_text())
    assert sum(len(v) for v in split.values()) == 12
    printed = capsys.readouterr().out
    assert "step 2 validation: pixel_accuracy" in printed and "on the test split" in printed

    # Resume: same step counter, optimizer state and best score carry on.
    assert ca.main(["--resume", str(run), "--max-steps", "4"]) == 0
    assert tf.train.latest_checkpoint(str(run / "latest")).endswith("ckpt-4")
    assert set(scalars(run, "train/loss")) == {1, 2, 3, 4}
    optimizer = tf.keras.optimizers.Adam()
    model = ca.build_model({**ca.DEFAULTS, **config})
    optimizer.build(model.trainable_variables)
    step = tf.Variable(0, dtype=tf.int64)
    tf.train.Checkpoint(model=model, optimizer=optimizer, step=step).restore(
        tf.train.latest_checkpoint(str(run / "latest"))).expect_partial()
    assert int(step) == 4 and int(optimizer.iterations) == 4

    # evaluate --json
    capsys.readouterr()
    assert ca.main(["evaluate", "--model-dir", str(run), "--data", str(face_folder), "--split", "all",
                    "--json"]) == 0
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert {"pixel_accuracy", "mean_accuracy", "mean_iu", "fw_iu", "images"} <= set(result)
    assert result["images"] == 12
    assert result["train_steps"] == 4 and result["train_minutes"] >= 0
    assert result["classes"] == ["background", "face"] and len(result["class_iu"]) == 2
    assert result["mean_iu"] == pytest.approx(np.mean(result["class_iu"]))

    # evaluate, for people: the four metrics, then the IU of each named class
    assert ca.main(["evaluate", "--model-dir", str(run), "--data", str(face_folder), "--split", "all"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith(f"{run} on all (12 images): pixel_accuracy ")
    background, face = (f"{100 * iu:.2f}%" for iu in result["class_iu"])
    assert printed[1] == f"per-class IU: background {background}  face {face}"
    assert re.fullmatch(r"trained 4 steps in \d+ minutes \(TensorBoard event times\)", printed[2])


def test_a_built_evaluation_step_scores_again_without_tracing(face_folder):
    dataset = ca.Dataset(4, face_folder, seed=5, augment=False)
    model = ca.Model.from_description("C3,8,2C3,8,1M2")
    model(tf.zeros([1, 64, 64, 1]))
    step = ca.evaluation_step(model, dataset.num_classes, "flip")
    first = ca.evaluate_split(model, dataset, "validation", "flip", step=step)
    traced = step.experimental_get_tracing_count()
    assert traced >= 1  # the step given was the one used
    assert ca.evaluate_split(model, dataset, "validation", "flip", step=step) == first
    assert step.experimental_get_tracing_count() == traced
    assert ca.evaluate_split(model, dataset, "validation", "flip") == first


def test_training_time_adds_up_each_process_and_leaves_the_logger_alone(tmp_path):
    from tensorflow.core.util import event_pb2
    (tmp_path / "logs").mkdir()
    # Two processes of one resumed run: 1 minute, a long pause, then 2 minutes.
    for name, events in (("events.out.tfevents.1.a", [(1000.0, 0), (1060.0, 2)]),
                         ("events.out.tfevents.2.b", [(9000.0, 2), (9120.0, 4)])):
        with tf.io.TFRecordWriter(str(tmp_path / "logs" / name)) as writer:
            for wall_time, step in events:
                writer.write(event_pb2.Event(wall_time=wall_time, step=step).SerializeToString())
    level = tf.get_logger().level
    assert ca.training_time(tmp_path) == (4, pytest.approx(3.0))
    assert tf.get_logger().level == level
    assert ca.training_time(tmp_path / "nothing") == (0, None)


def test_progress_of_a_resumed_epoch_averages_the_steps_taken_here():
    stream = io.StringIO()
    progress = ca.Progress(epoch=3, epochs=10, steps=5, done=3, stream=stream)
    progress.update(0.5, 32)
    progress.update(0.3, 22)
    line = stream.getvalue()
    assert line.startswith("\repoch 4/10 [####################] 5/5 loss 0.4000 ") and line.endswith("ETA 0s\n")


def test_resume_refuses_a_changed_recipe(face_folder, tmp_path, capsys):
    out = tmp_path / "save"
    assert ca.main(["--data", str(face_folder), *TINY, "--max-steps", "1", "--out", str(out)]) == 0
    [run] = run_folders(out)
    assert ca.main(["--resume", str(run), "--lr", "0.5"]) == 2
    assert "--lr" in capsys.readouterr().err


def test_same_seed_same_first_epoch_losses(face_folder, tmp_path):
    out = tmp_path / "save"
    for _ in range(2):
        assert ca.main(["--data", str(face_folder), *TINY, "--epochs", "1", "--seed", "7", "--out", str(out)]) == 0
    first, second = (scalars(run, "train/loss") for run in run_folders(out))
    assert len(first) >= 2
    assert first == pytest.approx(second, rel=1e-5)


def test_clean_epochs_train_the_last_epochs_unaugmented(face_folder, tmp_path, monkeypatch):
    real, augmented = ca.augment_batch, []

    def counting(images, masks, seed):
        augmented.append(seed)
        return real(images, masks, seed=seed)

    monkeypatch.setattr(ca, "augment_batch", counting)
    out = tmp_path / "save"
    argv = ["--data", str(face_folder), *TINY, "--epochs", "3", "--eval-every", "100", "--out", str(out)]
    assert ca.main([*argv, "--clean-epochs", "0"]) == 0
    per_epoch = len(augmented) // 3
    assert per_epoch >= 1 and len(augmented) == 3 * per_epoch
    augmented.clear()
    assert ca.main([*argv, "--clean-epochs", "2"]) == 0
    assert len(augmented) == per_epoch  # only the first of the three epochs
    first, clean = (scalars(run, "train/loss") for run in run_folders(out))
    assert first[1] == pytest.approx(clean[1], rel=1e-5) and first[len(first)] != pytest.approx(clean[len(clean)])


def test_nan_loss_stops_with_a_message_and_keeps_the_last_checkpoint(face_folder, tmp_path, monkeypatch, capsys):
    real = ca.loss_function

    def poisoned(kind, num_classes):
        loss, calls = real(kind, num_classes), tf.Variable(0)

        def nan_after_two(logits, labels):
            calls.assign_add(1)
            return tf.where(calls > 2, tf.constant(np.nan, tf.float32), loss(logits, labels))
        return nan_after_two

    monkeypatch.setattr(ca, "loss_function", poisoned)
    out = tmp_path / "save"
    assert ca.main(["--data", str(face_folder), *TINY, "--epochs", "3", "--eval-every", "2",
                    "--out", str(out)]) == 1
    assert "the loss became nan at step 3" in capsys.readouterr().err
    [run] = run_folders(out)
    assert tf.train.latest_checkpoint(str(run / "latest")).endswith("ckpt-2")


def test_max_minutes_stops_resumably(face_folder, tmp_path, capsys):
    out = tmp_path / "save"
    assert ca.main(["--data", str(face_folder), *TINY, "--max-minutes", "0.000001", "--out", str(out)]) == 0
    [run] = run_folders(out)
    assert "stopped by --max-minutes at step 1" in capsys.readouterr().out
    assert tf.train.latest_checkpoint(str(run / "latest")).endswith("ckpt-1")
    assert tf.train.latest_checkpoint(str(run / "best")) is not None


@pytest.mark.parametrize("argv, message", [
    (["--data", "no/such/folder"], "data folder no/such/folder does not exist"),
    (["--resume", "no/such/run"], "'no/such/run' is not a run folder"),
    (["--resume", ""], "'' is not a run folder"),
    (["--arch", "C7,64"], "cannot read architecture description"),
    (["--epochs", "2", "--clean-epochs", "3"], "--clean-epochs 3 is not a number of epochs of this run"),
    (["evaluate", "--model-dir", "no/such/model"], "model directory no/such/model does not exist"),
])
def test_user_mistakes_end_in_one_sentence(argv, message, capsys):
    assert ca.main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_help_states_the_reference_defaults_but_not_for_switches(capsys):
    with pytest.raises(SystemExit):
        ca.main(["--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "(default: 500)" in text and "(default: C7,64,2C7,64,1M2" in text
    assert "instead of sharing the encoder's (default" not in text and "no skip links (default" not in text


def test_size_the_model_cannot_mirror_is_refused(tmp_path, capsys):
    folder = make_face_folder(tmp_path / "odd", persons=3, per_person=1, size=30)
    assert ca.main(["--data", str(folder), *TINY, "--max-steps", "1", "--out", str(tmp_path / "s")]) == 2
    assert "30x30 cannot be mirrored exactly" in capsys.readouterr().err


def test_sigint_saves_a_resumable_checkpoint(tmp_path):
    folder = make_face_folder(tmp_path / "faces", persons=10, per_person=2)
    out = tmp_path / "save"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "convolutional_autoencoder.py"), "--data", str(folder), *TINY,
         "--epochs", "1000", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    for line in process.stdout:
        if line.startswith("epoch 2/"):
            break
    process.send_signal(signal.SIGINT)
    rest = process.communicate(timeout=120)[0]
    assert process.returncode == 0, rest
    assert "stopped by SIGINT" in rest and "--resume" in rest
    [run] = run_folders(out)
    stopped_at = int(tf.train.latest_checkpoint(str(run / "latest")).rsplit("-", 1)[1])
    assert stopped_at >= 8
    assert ca.main(["--resume", str(run), "--max-steps", str(stopped_at + 1)]) == 0
    assert tf.train.latest_checkpoint(str(run / "latest")).endswith(f"ckpt-{stopped_at + 1}")


def test_half_written_checkpoint_files_do_not_break_resume(face_folder, tmp_path):
    # A crash while saving leaves files of the new checkpoint but no record of it: TensorFlow writes
    # the `checkpoint` state file only after the data and index files are complete.
    out = tmp_path / "save"
    assert ca.main(["--data", str(face_folder), *TINY, "--max-steps", "2", "--out", str(out)]) == 0
    [run] = run_folders(out)
    (run / "latest" / "ckpt-3.data-00000-of-00001").write_bytes(b"\x00" * 100)
    (run / "latest" / "ckpt-3.index").write_bytes(b"truncated")
    assert tf.train.latest_checkpoint(str(run / "latest")).endswith("ckpt-2")
    assert ca.main(["--resume", str(run), "--max-steps", "3"]) == 0
    assert tf.train.latest_checkpoint(str(run / "latest")).endswith("ckpt-3")


# ---- starting from another run, and weight averaging --------------------------------------------

def trainable_values(config, checkpoint):
    model = ca.build_model({**ca.DEFAULTS, **config})
    tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial()
    return [v.numpy() for v in model.trainable_variables]


def test_weight_average_is_the_mean_of_the_weights_added():
    model = ca.Model.from_description("C3,4,2M2")
    average = ca.WeightAverage(ca.Model.from_description("C3,4,2M2"))
    for value in (1.0, 2.0, 6.0):
        for variable in model.trainable_variables:
            variable.assign(tf.fill(variable.shape, value))
        average.update(model)
    assert float(average.count) == 3
    for variable in average.averaged.trainable_variables:
        np.testing.assert_allclose(variable.numpy(), 3.0, rtol=1e-6)


def test_recalibration_forgets_the_old_batch_norm_statistics(face_folder):
    dataset = ca.Dataset(4, face_folder, seed=0, augment=False)
    fresh, stale = ca.Model.from_description("C3,8,2M2"), ca.Model.from_description("C3,8,2M2")
    for a, b in zip(stale.trainable_variables, fresh.trainable_variables):
        a.assign(b)
    norms = [m for m in stale.submodules if isinstance(m, ca.BatchNorm)]
    for norm in norms:  # statistics of other weights, long accumulated
        norm.moving_mean.assign(norm.moving_mean + 5.0)
        norm.updates.assign(1000.0)
    for model in (fresh, stale):
        ca.recalibrate(model, dataset.batches("train"), ca.recalibration_step(model))
    for a, b in zip(stale.variables, fresh.variables):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
    assert all(float(norm.updates) == dataset.steps_per_epoch() for norm in norms)
    assert np.abs(norms[0].moving_mean.numpy()).max() < 5.0


def test_init_from_keeps_the_split_and_swa_averages_epoch_ends_across_a_resume(face_folder, tmp_path, capsys):
    out = tmp_path / "save"
    assert ca.main(["--data", str(face_folder), *TINY, "--epochs", "1", "--seed", "3", "--out", str(out)]) == 0
    [source] = run_folders(out)
    # Two steps per epoch; a validation at every epoch end; stopped after epoch 1, then resumed.
    later = tmp_path / "later"
    argv = ["--data", str(face_folder), *TINY, "--init-from", str(source), "--swa-start", "1", "--epochs", "2",
            "--eval-every", "2", "--out", str(later)]
    assert ca.main([*argv, "--max-steps", "2"]) == 0
    [run] = run_folders(later)
    assert json.loads((run / "split.json").read_text()) == json.loads((source / "split.json").read_text())
    config = json.loads((run / "config.json").read_text())
    assert config["init_from"] == str(source) and config["swa_start"] == 1
    assert ca.main(["--resume", str(run), "--max-steps", "4"]) == 0
    printed = capsys.readouterr().out
    assert f"starting from the best weights of {source}" in printed
    assert "step 2 validation (weights averaged over 1 epoch end):" in printed
    assert "step 4 validation (plain weights):" in printed
    assert "step 4 validation (weights averaged over 2 epoch ends):" in printed

    # latest/ keeps the plain weights at steps 2 and 4; best/ holds their mean (or step 2's alone).
    epoch_ends = [trainable_values(config, str(run / "latest" / f"ckpt-{s}")) for s in (2, 4)]
    metrics = json.loads((run / "metrics.json").read_text())
    expected = epoch_ends[0] if metrics["step"] == 2 else [(a + b) / 2 for a, b in zip(*epoch_ends)]
    best = trainable_values(config, tf.train.latest_checkpoint(str(run / "best")))
    for value, want in zip(best, expected):
        np.testing.assert_allclose(value, want, rtol=1e-5, atol=1e-7)
    assert not np.allclose(epoch_ends[0][0], epoch_ends[1][0])

    # best/ carries the average's own batch-norm statistics: evaluate reproduces the run's test score.
    result = ca.evaluate(run, str(face_folder))
    assert result["pixel_accuracy"] == pytest.approx(metrics["test"]["pixel_accuracy"], abs=1e-9)
    # evaluate names the run it started from and that run's training time, too.
    assert ca.main(["evaluate", "--model-dir", str(run), "--data", str(face_folder)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"trained 4 steps in \d+ minutes \(TensorBoard event times\)", printed[2])
    assert re.fullmatch(rf"started from {re.escape(str(source))} \(--init-from\), trained 2 steps in \d+ minutes",
                        printed[3])
    assert list(ca.init_chain(source)) == []


def test_init_from_starts_at_the_source_weights(face_folder, tmp_path):
    out = tmp_path / "save"
    assert ca.main(["--data", str(face_folder), *TINY, "--epochs", "1", "--out", str(out)]) == 0
    [source] = run_folders(out)
    later = tmp_path / "later"
    assert ca.main(["--data", str(face_folder), *TINY, "--init-from", str(source), "--lr", "0",
                    "--max-steps", "1", "--out", str(later)]) == 0
    [run] = run_folders(later)
    config = json.loads((run / "config.json").read_text())
    start = trainable_values(config, tf.train.latest_checkpoint(str(source / "best")))
    after = trainable_values(config, tf.train.latest_checkpoint(str(run / "latest")))
    for a, b in zip(start, after):
        np.testing.assert_array_equal(a, b)


def test_linear_output_trains_evaluates_and_is_its_own_architecture(face_folder, tmp_path, capsys):
    out = tmp_path / "save"
    assert ca.main(["--data", str(face_folder), *TINY, "--max-steps", "1", "--out", str(out)]) == 0
    [reference] = run_folders(out)
    # A run from before the switch existed: its config.json has no linear_output.
    config = json.loads((reference / "config.json").read_text())
    del config["linear_output"], config["model"]["linear_output"]
    (reference / "config.json").write_text(json.dumps(config))
    later = tmp_path / "later"
    base = ["--data", str(face_folder), *TINY, "--max-steps", "1", "--out", str(later)]
    assert ca.main([*base, "--linear-output", "--init-from", str(reference)]) == 2
    assert f"--init-from {reference} holds a model unlike this run's" in capsys.readouterr().err
    assert ca.main([*base, "--init-from", str(reference)]) == 0
    assert ca.main([*base, "--linear-output"]) == 0
    linear = [run for run in run_folders(later) if json.loads((run / "config.json").read_text())["linear_output"]]
    assert len(linear) == 1 and json.loads((linear[0] / "config.json").read_text())["model"]["linear_output"]
    model, _ = ca.load_trained(linear[0])
    assert model.layers[0].mirror_norm is None
    assert set(ca.evaluate(linear[0], split="all")) >= set(ca.METRIC_NAMES)


def test_init_from_and_swa_start_mistakes_are_named(face_folder, tmp_path, capsys):
    out = tmp_path / "save"
    assert ca.main(["--data", str(face_folder), *TINY, "--max-steps", "1", "--out", str(out)]) == 0
    [source] = run_folders(out)
    base = ["--data", str(face_folder), "--batch-size", "4", "--max-steps", "1", "--out", str(tmp_path / "x")]
    assert ca.main([*base, "--arch", "C3,16,2C3,16,1M2", "--init-from", str(source)]) == 2
    assert f"--init-from {source} holds a model unlike this run's" in capsys.readouterr().err
    assert ca.main([*base, *TINY[:2], "--init-from", str(tmp_path / "nothing")]) == 2
    assert f"--init-from {tmp_path / 'nothing'} does not exist" in capsys.readouterr().err
    assert ca.main([*base, *TINY[:2], "--epochs", "3", "--swa-start", "4"]) == 2
    assert "--swa-start 4 is not an epoch of this run" in capsys.readouterr().err
