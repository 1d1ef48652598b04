"""benchmarks/precision.py: the three runs interleaved, auto against the faster precision, one measurement;
one real infer.py run parsed."""
import json

import pytest

import precision
from conftest import ROOT


def fake_runs(monkeypatch, rates):
    """infer_run replaced: `rates[precision]` images/s in turn; auto's first run measures, then it is cached."""
    calls = []

    def infer_run(model_dir, folder, chosen, cache, out):
        calls.append(chosen)
        auto_runs = calls.count("auto")
        how = "measured in 2.1 s" if auto_runs == 1 else "cached in x"
        line = f"precision: bf16 (auto: ...; {how})" if chosen == "auto" else f"precision: {chosen}"
        return {"precision_line": line, "images_per_second": rates[chosen][calls.count(chosen) - 1]}

    monkeypatch.setattr(precision, "infer_run", infer_run)
    return calls


def test_rounds_interleave_and_auto_is_judged_against_the_faster(real_data, monkeypatch, capsys):
    calls = fake_runs(monkeypatch, {"fp32": [50.0, 52.0, 51.0], "bf16": [90.0, 95.0, 92.0], "auto": [91.0, 80.0, 93.0]})
    assert precision.main(["--images", "4", "--repeats", "3"]) == 0
    line, table = capsys.readouterr().out.split("\n", 1)
    result = json.loads(line)
    assert calls == ["fp32", "bf16", "auto", "auto", "bf16", "fp32", "fp32", "bf16", "auto"]
    assert result["images"] == 4 and result["faster"] == "bf16" and result["auto_ran"] == ["bf16"]
    assert result["img_per_s"]["auto"]["median"] == 91.0
    assert result["auto_over_faster"]["median"] == pytest.approx(91.0 / 92.0, rel=1e-3)
    assert result["auto_met"] and result["measurements"] == 1 and result["measured_once"]
    assert "| auto | 91.0 (80.0-93.0) |" in table and "target >= 0.9x (median): met" in table


def test_auto_slower_than_0_9x_the_faster_is_not_met(real_data, monkeypatch, capsys):
    fake_runs(monkeypatch, {"fp32": [100.0], "bf16": [50.0], "auto": [50.0]})
    assert precision.main(["--images", "2", "--repeats", "1"]) == 0
    result = json.loads(capsys.readouterr().out.split("\n", 1)[0])
    assert result["faster"] == "fp32" and not result["auto_met"]


def test_a_real_infer_run_is_parsed(real_data, tmp_path):
    folder = precision.split_pictures(ROOT / "pretrained", real_data, 3, tmp_path / "pictures")
    assert len(list(folder.iterdir())) == 3
    done = precision.infer_run(ROOT / "pretrained", folder, "fp32", tmp_path / "cache", tmp_path / "out")
    assert done["precision_line"] == "precision: fp32" and done["images_per_second"] > 0


def test_a_folder_without_split_is_one_sentence(tmp_path, capsys):
    assert precision.main(["--model-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'split.json'} does not exist" in err
