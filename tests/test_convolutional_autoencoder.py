"""The command line: its help, and user mistakes ending in one sentence (training is tested in
test_training.py, through this command)."""
import re
import subprocess
import sys

import pytest

import convolutional_autoencoder as ca
from conftest import ROOT, TINY, make_face_folder, run_folders, user_environment


def test_resume_refuses_a_changed_recipe(face_folder, tmp_path, capsys):
    out = tmp_path / "save"
    assert ca.main(["--data", str(face_folder), *TINY, "--max-steps", "1", "--out", str(out)]) == 0
    [run] = run_folders(out)
    assert ca.main(["--resume", str(run), "--lr", "0.5"]) == 2
    assert "--lr" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--data", "no/such/folder"], "data folder no/such/folder does not exist"),
    (["--resume", "no/such/run"], "'no/such/run' is not a run folder"),
    (["--resume", ""], "'' is not a run folder"),
    (["--arch", "C7,64"], "cannot read architecture description"),
    (["--arch", "C7,64", "--data", "no/such/folder"], "cannot read architecture description"),
    (["--batch-size", "0"], "--batch-size 0 must be at least 1"),
    (["--eval-every", "0"], "--eval-every 0 must be at least 1"),
    (["--lr", "-1"], "--lr -1.0 must be a positive number"),
    (["--epochs", "0"], "--epochs 0 must be at least 1"),
    (["evaluate", "--data", "no/such/folder"], "data folder no/such/folder does not exist"),
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


def test_start_up_prints_only_the_projects_own_lines(tmp_path):
    # TensorFlow's start-up lines (absl's notice, cudart_stub, cpu_feature_guard, a cuInit failure on
    # machines without a GPU) are hidden; the project's error is the one line on standard error.
    environment = user_environment()
    done = subprocess.run([sys.executable, str(ROOT / "convolutional_autoencoder.py"), "summary", "--arch", "C7,64"],
                          capture_output=True, text=True, cwd=tmp_path, env=environment)
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        "error: cannot read architecture description 'C7,64' at character 0: write layers as "
        "C<kernel>,<channels>,<stride> or M<pool size>, e.g. C7,64,2C7,64,1M2"]


def test_help_texts_and_docs_name_no_issue_numbers():
    # The root's files and every folder's Python files (runs/, faces/, demo/, benchmarks/, notebooks/ ...).
    texts = [*ROOT.glob("*.py"), *ROOT.glob("*/*.py"), *ROOT.glob("*.md"), *ROOT.glob("docs/*.md"),
             *ROOT.glob("benchmarks/*"), *ROOT.glob("data128_128/README.md")]
    named = [f"{path.relative_to(ROOT)}: {line.strip()}" for path in texts if path.is_file()
             for line in path.read_text(errors="replace").splitlines() if re.search(r"\bissues? #?\d", line)]
    assert named == []
