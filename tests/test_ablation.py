"""benchmarks/ablation.py: its rows, the ordering agreement, and a resumable smoke run on synthetic faces."""
import sys

import pytest

from runs.config import DEFAULTS, build_model
from conftest import ROOT, make_face_folder
from conv2d import Conv2d
from max_pool_2d import MaxPool2d
from runs.run_folder import read_json

import ablation

TINY_ROWS = [("tiny tied", 90.0, ["--arch", "C3,8,2C3,8,1M2"]),
             ("tiny untied", 91.0, ["--arch", "C3,8,2C3,8,1M2", "--untied"])]


def run_folders(out):
    return sorted(path.parent for path in out.glob("*/*/*/config.json"))


# ---- the rows -------------------------------------------------------------------------------

def test_every_row_parses_and_mirrors_128(tmp_path):
    convs, pools = [], []
    for n, (label, reference, flags) in enumerate(ablation.ROWS, 1):
        config = ablation.row_config(flags, 95, [], tmp_path / str(n))
        model = build_model(config)
        model.check_size(128, 128)
        convs.append([layer for layer in model.layers if isinstance(layer, Conv2d)])
        pools.append([layer for layer in model.layers if isinstance(layer, MaxPool2d)])
        assert config["max_steps"] == 95 and config["out"] == str(tmp_path / str(n))
        if n <= 3:
            assert not (config["tied_weights"] or config["skip_connections"]
                        or config["per_image_standardization"]), label
    assert [len(c) for c in convs] == [6, 4, 8, 6, 6, 6, 6]
    assert not pools[0] and all(pools[1:])
    assert ablation.row_config(ablation.ROWS[5][2], 95, [], "x") == {**DEFAULTS, "max_steps": 95, "out": "x",
                                                                      "test_at_end": True}
    assert {c.kernel_size for c in convs[6]} == {5}
    assert [row[1] for row in ablation.ROWS] == sorted(row[1] for row in ablation.ROWS)


def test_ordering_agreement_counts_pairs_and_rank_correlation():
    result = ablation.ordering_agreement({1: 92.0, 2: 95.0, 3: 97.0}, {1: 80.0, 2: 90.0, 3: 85.0})
    assert result["agree"] == [(1, 2), (1, 3)] and result["disagree"] == [(2, 3)]
    assert result["spearman"] == pytest.approx(0.5)
    reversed_order = ablation.ordering_agreement({1: 2.0, 2: 1.0}, {1: 10.0, 2: 20.0})
    assert reversed_order["disagree"] == [(2, 1)] and reversed_order["spearman"] == pytest.approx(-1.0)
    tie = ablation.ordering_agreement({1: 1.0, 2: 2.0}, {1: 5.0, 2: 5.0})
    assert tie["disagree"] == [(1, 2)] and tie["spearman"] is None


# ---- a smoke run: stop, resume, skip --------------------------------------------------------

def test_ablation_resumes_a_stopped_row_then_skips_finished_rows(tmp_path, monkeypatch, capsys):
    faces = make_face_folder(tmp_path / "faces", persons=10, per_person=2, size=64)
    out = tmp_path / "ablation"
    shared = ["--data", str(faces), "--batch-size", "4", "--eval-every", "1", "--seed", "0"]

    # --max-minutes that has already run out stops row 1 after one step, like Ctrl-C would.
    assert ablation.run(TINY_ROWS, 2, [*shared, "--max-minutes", "1e-9"], out, log=lambda line: None) == 1
    record = read_json(out / "ablation.json")
    first = record["rows"]["tiny tied"]
    assert (first["finished"], first["steps"]) == (False, 1)
    assert record["rows"]["tiny untied"]["run"] is None
    assert "| 1 (unfinished) |" in (out / "ablation.md").read_text()
    assert "| not run |" in (out / "ablation.md").read_text()
    [stopped_run] = run_folders(out)

    lines = []
    assert ablation.run(TINY_ROWS, 2, shared, out, log=lines.append) is None
    assert any(line.startswith(f"resumed {stopped_run} at step 1") for line in lines)
    runs = run_folders(out)
    assert len(runs) == 2 and stopped_run in runs
    record = read_json(out / "ablation.json")
    assert record["budget"] == {"steps": 2, "batch_size": 4, "data": str(faces), "seed": 0, "eval_every": 1,
                                "train_images": len(read_json(stopped_run / "split.json")["train"])}
    for n, (label, reference, _) in enumerate(TINY_ROWS, 1):
        row = record["rows"][label]
        assert (row["row"], row["reference"], row["finished"], row["steps"]) == (n, reference, True, 2)
        assert row["metrics"] == read_json(next((out / str(n)).glob("*/*/metrics.json")))
    table = (out / "ablation.md").read_text()
    epochs = 2 * 4 / record["budget"]["train_images"]
    assert table.startswith(f"Budget: 2 training steps per row at batch 4 ({epochs:.1f} epochs of "
                            f"{record['budget']['train_images']} training images")
    ours = {n: 100 * record["rows"][label]["metrics"]["test"]["pixel_accuracy"]
            for n, (label, _, _) in enumerate(TINY_ROWS, 1)}
    tied_test = f"{ours[1]:.2f}%"
    assert f"| 1 | tiny tied | `C3,8,2C3,8,1M2` | 90.00% | {tied_test} |" in table
    assert "| 2 | tiny untied | `C3,8,2C3,8,1M2` untied | 91.00% |" in table
    agreeing = "1 of 1 pairs" if ours[1] < ours[2] else "0 of 1 pairs"
    assert f"over 2 finished rows; {agreeing} in the reference's order" in table

    # The same ablation through the command line trains nothing: both rows are finished.
    def no_training(*args, **kwargs):
        raise AssertionError("a finished row was trained again")

    monkeypatch.setattr(ablation, "train", no_training)
    monkeypatch.setattr(ablation, "ROWS", TINY_ROWS)
    argv = ["--data", str(faces), "--batch-size", "4", "--eval-every", "1", "--budget-steps", "2", "--out", str(out)]
    assert ablation.main(argv) == 0
    assert "finished in" in capsys.readouterr().out
    assert run_folders(out) == runs
    assert (out / "ablation.md").read_text() == table

    # Another budget would mix two budgets in one table.
    assert ablation.main([*argv[:-4], "--budget-steps", "3", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert "max_steps 2 (asked now: 3)" in error and error.count("\n") == 1


@pytest.mark.parametrize("argv, message", [(["--rows", "9"], "--rows takes row numbers 1-7"),
                                           (["--rows", "1,x"], "--rows takes row numbers 1-7"),
                                           (["--budget-steps", "0"], "--budget-steps must be at least 1")])
def test_user_mistakes_end_in_one_sentence(argv, message, capsys):
    assert ablation.main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: {message}") and error.count("\n") == 1


def test_a_missing_data_folder_is_a_user_mistake(tmp_path, capsys):
    assert ablation.main(["--data", str(tmp_path / "nowhere"), "--out", str(tmp_path / "out")]) == 2
    assert "nowhere does not exist" in capsys.readouterr().err
