"""benchmarks/seeds.py: the best checkpoint's validation and test lines read from synthetic training logs, the
seed from the command line, the mean and min-max over the logs, and a log it cannot read."""
import json

import pytest

import seeds

COMMAND = "$ python convolutional_autoencoder.py --arch C3,8,1M2 --epochs 2 --test-at-end --seed {seed} --out x"


def scores(pixel, iu):
    """A score line as runs/evaluation.py's format_scores prints it."""
    return f"pixel_accuracy {pixel:.2f}%  mean_accuracy 95.00%  mean_iu {iu:.2f}%  fw_iu 93.00%"


def training_log(folder, seed, best, later, test, step=2320):
    """A log whose best validation is at `step`, a worse one after it, and the best checkpoint's test line."""
    path = folder / f"seed{seed}.log"
    path.write_text("\n".join([
        "# a comment naming the machine",
        COMMAND.format(seed=seed),
        "data: data128_128 (face), train 1846 / validation 397 / test 394 images, read in 0.8s",
        "epoch 1/2 [####################] 231/231 loss 0.2766  64.4 img/s  ETA 0s",
        f"step {step} validation: {scores(*best)}",
        f"step {step * 2} validation: {scores(*later)}",
        f"best checkpoint (step {step}) on the test split: {scores(*test)}",
        "run folder: save/x/C3,8,1M2/20261207-000000"]) + "\n")
    return path


def test_the_best_steps_lines_and_the_mean_and_min_max_over_seeds(tmp_path, capsys):
    logs = [training_log(tmp_path, 0, (96.50, 91.00), (96.40, 90.00), (96.90, 91.50)),
            training_log(tmp_path, 1, (96.80, 91.30), (96.00, 89.00), (97.00, 91.70)),
            training_log(tmp_path, 2, (96.60, 91.20), (95.00, 88.00), (97.20, 92.00))]
    assert seeds.main([str(log) for log in logs]) == 0
    line, table = capsys.readouterr().out.split("\n", 1)
    result = json.loads(line)
    assert [run["seed"] for run in result["runs"]] == [0, 1, 2] and result["count"] == 3
    assert [run["validation"]["pixel_accuracy"] for run in result["runs"]] == [96.50, 96.80, 96.60]
    test = result["summary"]["test"]["pixel_accuracy"]
    assert test["mean"] == pytest.approx(97.0333, abs=1e-4) and (test["min"], test["max"]) == (96.90, 97.20)
    assert result["summary"]["validation"]["mean_iu"]["mean"] == pytest.approx(91.1667, abs=1e-4)
    assert "| seed1.log | 1 | 2320 | 96.80% | 97.00% | 91.30% | 91.70% |" in table
    assert ("| mean (min-max) of 3 | | | 96.63% (96.50-96.80) | 97.03% (96.90-97.20) | 91.17% (91.00-91.30) "
            "| 91.73% (91.50-92.00) |") in table


def test_intervals_are_skipped_and_a_command_without_seed_runs_the_default(tmp_path):
    path = tmp_path / "old.log"
    path.write_text("$ python convolutional_autoencoder.py --epochs 2\n"
                    "step 10 validation: pixel_accuracy 96.10% (95% CI 95.80-96.40)  mean_accuracy 95.00%  "
                    "mean_iu 90.20% (95% CI 89.00-91.00)  fw_iu 93.00%\n"
                    f"best checkpoint (step 10) on the test split: {scores(96.30, 90.40)}\n"
                    "$ python convolutional_autoencoder.py evaluate --model-dir x --seed 7\n")
    run = seeds.read_log(path)
    assert run["seed"] == "default" and run["step"] == 10
    assert run["validation"]["pixel_accuracy"] == 96.10 and run["validation"]["mean_iu"] == 90.20


@pytest.mark.parametrize("text, says", [
    (f"step 10 validation: {scores(96.1, 90.2)}\n", "has no 'best checkpoint (step N) on the test split' line"),
    (f"step 10 validation: {scores(96.1, 90.2)}\nbest checkpoint (step 20) on the test split: {scores(96.3, 90.4)}\n",
     "has no 'step 20 validation' line"),
    (f"step 10 validation: pixel_accuracy 96.10%\nbest checkpoint (step 10) on the test split: {scores(96.3, 90.4)}\n",
     "a score line lacks mean_accuracy, mean_iu, fw_iu")])
def test_a_log_it_cannot_read_is_one_sentence_naming_it(tmp_path, capsys, text, says):
    path = tmp_path / "unfinished.log"
    path.write_text(text)
    assert seeds.main([str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(path) in err and says in err


def test_a_missing_log_is_one_sentence(tmp_path, capsys):
    assert seeds.main([str(tmp_path / "nope.log")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'nope.log'} does not exist: pass the training logs, one per seed\n"
