"""Training through its command: run folders, resume, stopping, schedules of augmentation, --init-from."""
import json
import os
import re
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

import convolutional_autoencoder as ca
import dataset
from runs.config import DEFAULTS, build_model
from runs import training
from conftest import ROOT, TINY, make_face_folder, run_folders, scalars
from runs.evaluation import evaluate, load_trained
from runs.metrics import METRIC_NAMES
from runs.run_folder import init_chain


def panel_grid(path):
    """(rows, columns) of image panels in a saved figure, and its size: bands of pixels that are
    mostly not the white page (titles and gaps are)."""
    picture = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
    ink = picture < 242

    def runs(flags):
        return int(flags[0]) + int(np.count_nonzero(np.diff(flags.astype(int)) == 1))

    in_panels = ink.mean(axis=1) > 0.35
    return runs(in_panels), runs(ink[in_panels].mean(axis=0) > 0.5), picture.shape


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
    # The reference's figure: input, truth, output, thresholded output of each validation image, at 80 dpi.
    examples = min(12, len(json.loads((run / "split.json").read_text())["validation"]))
    assert panel_grid(run / "image_plots" / "figure2.png") == (4, examples, (352, 80 * examples))
    assert set(scalars(run, "train/loss")) == {1, 2}
    assert 2 in scalars(run, "validation/pixel_accuracy")
    # The test split is scored only when asked (--test-at-end): the end says how to score it.
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics) == {"step", "validation"} and metrics["step"] == 2
    split = json.loads((run / "split.json").read_text())
    assert sum(len(v) for v in split.values()) == 12
    printed = capsys.readouterr().out
    assert "step 2 validation: pixel_accuracy" in printed and "on the test split" not in printed
    assert f"score it with: python convolutional_autoencoder.py evaluate --model-dir {run}\n" in printed

    # Resume: same step counter, optimizer state and best score carry on; --test-at-end may be added.
    assert ca.main(["--resume", str(run), "--max-steps", "4", "--test-at-end"]) == 0
    assert tf.train.latest_checkpoint(str(run / "latest")).endswith("ckpt-4")
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["test"]) >= {"pixel_accuracy", "mean_iu", "fw_iu", "mean_accuracy"}
    assert "on the test split: pixel_accuracy" in capsys.readouterr().out
    assert set(scalars(run, "train/loss")) == {1, 2, 3, 4}
    optimizer = tf.keras.optimizers.Adam()
    model = build_model({**DEFAULTS, **config})
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
    assert printed[1].startswith("precision: ")
    assert printed[2] == f"per-class IU: background {background}  face {face}"
    assert printed[3].startswith("95% CI: bootstrap over the 6 persons") and printed[4] == "test-time augmentation: none"
    assert re.fullmatch(r"trained 4 steps in \d+ minutes \(TensorBoard event times\)", printed[5])


def test_same_seed_same_first_epoch_losses(face_folder, tmp_path):
    out = tmp_path / "save"
    for _ in range(2):
        assert ca.main(["--data", str(face_folder), *TINY, "--epochs", "1", "--seed", "7", "--out", str(out)]) == 0
    first, second = (scalars(run, "train/loss") for run in run_folders(out))
    assert len(first) >= 2
    assert first == pytest.approx(second, rel=1e-5)


def test_clean_epochs_train_the_last_epochs_unaugmented(face_folder, tmp_path, monkeypatch):
    real, augmented = dataset.augment_batch, []

    def counting(images, masks, seed):
        augmented.append(seed)
        return real(images, masks, seed=seed)

    monkeypatch.setattr(dataset, "augment_batch", counting)
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


def test_low_res_epochs_train_the_first_epochs_at_half_size(face_folder, tmp_path, monkeypatch):
    real, sizes = dataset.shrunk, []

    def recording(images, labels, size, num_classes):
        sizes.append(tuple(size))
        return real(images, labels, size, num_classes)

    monkeypatch.setattr(dataset, "shrunk", recording)
    out = tmp_path / "save"
    argv = ["--data", str(face_folder), *TINY, "--epochs", "3", "--eval-every", "100", "--out", str(out)]
    assert ca.main([*argv, "--low-res-epochs", "0"]) == 0
    assert sizes == []
    assert ca.main([*argv, "--low-res-epochs", "2"]) == 0
    per_epoch = training_steps_per_epoch(face_folder)
    assert sizes == [(32, 32)] * (2 * per_epoch)  # the 64x64 faces, first two epochs only
    full, low = (scalars(run, "train/loss") for run in run_folders(out))
    assert len(full) == len(low) == 3 * per_epoch and full[1] != pytest.approx(low[1])
    assert json.loads((run_folders(out)[1] / "config.json").read_text())["low_res_epochs"] == 2


def training_steps_per_epoch(folder):
    return dataset.Dataset(4, folder).steps_per_epoch()


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "2", "--low-res-epochs", "3"], r"--low-res-epochs 3 is not a number of epochs of this run"),
    (["--epochs", "2", "--low-res-epochs", "1"], r"--low-res-epochs cannot shrink these images: input size 34x34"),
])
def test_low_res_epochs_mistakes_are_named(tmp_path, capsys, argv, message):
    folder = make_face_folder(tmp_path / "faces", size=68)
    assert ca.main(["--data", str(folder), *TINY, *argv, "--out", str(tmp_path / "save")]) == 2
    assert re.search(message, capsys.readouterr().err)


def test_nan_loss_stops_with_a_message_and_keeps_the_last_checkpoint(face_folder, tmp_path, monkeypatch, capsys):
    real = training.loss_function

    def poisoned(kind, num_classes):
        loss, calls = real(kind, num_classes), tf.Variable(0)

        def nan_after_two(logits, labels):
            calls.assign_add(1)
            return tf.where(calls > 2, tf.constant(np.nan, tf.float32), loss(logits, labels))
        return nan_after_two

    monkeypatch.setattr(training, "loss_function", poisoned)
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


def trainable_values(config, checkpoint):
    model = build_model({**DEFAULTS, **config})
    tf.train.Checkpoint(model=model).restore(checkpoint).expect_partial()
    return [v.numpy() for v in model.trainable_variables]


def test_init_from_keeps_the_split_across_a_resume_and_evaluate_names_the_source(face_folder, tmp_path, capsys):
    out = tmp_path / "save"
    assert ca.main(["--data", str(face_folder), *TINY, "--epochs", "1", "--seed", "3", "--out", str(out)]) == 0
    [source] = run_folders(out)
    later = tmp_path / "later"
    argv = ["--data", str(face_folder), *TINY, "--init-from", str(source), "--epochs", "2", "--eval-every", "2",
            "--out", str(later), "--test-at-end"]
    assert ca.main([*argv, "--max-steps", "2"]) == 0
    [run] = run_folders(later)
    assert json.loads((run / "split.json").read_text()) == json.loads((source / "split.json").read_text())
    assert json.loads((run / "config.json").read_text())["init_from"] == str(source)
    assert ca.main(["--resume", str(run), "--max-steps", "4"]) == 0
    printed = capsys.readouterr().out
    assert f"starting from the best weights of {source}" in printed
    assert "step 2 validation:" in printed and "step 4 validation:" in printed

    # evaluate reproduces the run's test score, and names the run it started from with its training time.
    metrics = json.loads((run / "metrics.json").read_text())
    result = evaluate(run, str(face_folder), precision="fp32")  # as the run trained and scored (not bf16)
    assert result["pixel_accuracy"] == pytest.approx(metrics["test"]["pixel_accuracy"], abs=1e-9)
    assert ca.main(["evaluate", "--model-dir", str(run), "--data", str(face_folder)]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert re.fullmatch(r"trained 4 steps in \d+ minutes \(TensorBoard event times\)", printed[5])
    assert re.fullmatch(rf"started from {re.escape(str(source))} \(--init-from\), trained 2 steps in \d+ minutes",
                        printed[6])
    assert list(init_chain(source)) == []


def test_init_from_starts_at_the_source_weights(face_folder, tmp_path):
    out = tmp_path / "save"
    assert ca.main(["--data", str(face_folder), *TINY, "--epochs", "1", "--out", str(out)]) == 0
    [source] = run_folders(out)
    later = tmp_path / "later"
    assert ca.main(["--data", str(face_folder), *TINY, "--init-from", str(source), "--lr", "1e-30",
                    "--max-steps", "1", "--out", str(later)]) == 0
    [run] = run_folders(later)
    config = json.loads((run / "config.json").read_text())
    start = trainable_values(config, tf.train.latest_checkpoint(str(source / "best")))
    after = trainable_values(config, tf.train.latest_checkpoint(str(run / "latest")))
    for a, b in zip(start, after):  # one step at a negligible rate
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-20)


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
    model, _ = load_trained(linear[0])
    assert model.layers[0].mirror_norm is None
    assert set(evaluate(linear[0], split="all")) >= set(METRIC_NAMES)


def test_init_from_mistakes_are_named(face_folder, tmp_path, capsys):
    out = tmp_path / "save"
    assert ca.main(["--data", str(face_folder), *TINY, "--max-steps", "1", "--out", str(out)]) == 0
    [source] = run_folders(out)
    base = ["--data", str(face_folder), "--batch-size", "4", "--max-steps", "1", "--out", str(tmp_path / "x")]
    assert ca.main([*base, "--arch", "C3,16,2C3,16,1M2", "--init-from", str(source)]) == 2
    assert f"--init-from {source} holds a model unlike this run's" in capsys.readouterr().err
    assert ca.main([*base, *TINY[:2], "--init-from", str(tmp_path / "nothing")]) == 2
    assert f"--init-from {tmp_path / 'nothing'} does not exist" in capsys.readouterr().err

    # A run of the version that averaged weights is not resumed without them.
    config = json.loads((source / "config.json").read_text())
    (source / "config.json").write_text(json.dumps({**config, "swa_start": 1}))
    assert ca.main(["--resume", str(source)]) == 2
    assert f"{source} averaged its weights (--swa-start)" in capsys.readouterr().err
