"""runs/auto_precision.py: `--precision auto` measures where the CPU has native bf16, runs the faster
precision, keeps the verdict per CPU, TensorFlow, kind of work and architecture, and survives a bad cache."""
import json

import pytest

from runs import auto_precision
from runs.config import DEFAULTS, build_model

TINY = {**DEFAULTS, "arch": "C3,8,2M2"}
SIZE = (16, 16)


def build(arch=TINY["arch"]):
    return lambda precision: build_model({**TINY, "arch": arch, "precision": precision})


@pytest.fixture
def measured(tmp_path, monkeypatch):
    """(the cache file of a CPU with AVX512-BF16 on which bf16 takes 0.5 s per call to fp32's 1 s; `timed`
    counts the measurements)."""
    monkeypatch.setattr(auto_precision.cpu_features, "read_cpu", lambda *_: ("Test CPU", {"avx2", "avx512_bf16"}))
    timed = []

    def time_both(build, size, kind):
        timed.append(kind)
        return {"fp32": 1.0, "bf16": 0.5}

    monkeypatch.setattr(auto_precision, "time_both", time_both)
    return tmp_path / "cache" / "precision.json", timed


def test_without_native_bf16_it_is_fp32_without_measuring(tmp_path, monkeypatch):
    monkeypatch.setattr(auto_precision.cpu_features, "read_cpu", lambda *_: ("Old CPU", {"avx2", "avx512f"}))
    monkeypatch.setattr(auto_precision, "time_both", lambda *_: pytest.fail("measured"))
    cache = tmp_path / "precision.json"
    assert auto_precision.choose(build(), SIZE, cache=cache) == (
        "fp32", " (auto: this CPU has no native bf16, so fp32 without measuring)")
    assert not cache.exists()


def test_measured_once_then_read_from_the_cache(measured):
    cache, timed = measured
    precision, note = auto_precision.choose(build(), SIZE, cache=cache)
    assert precision == "bf16" and note.startswith(" (auto: bf16's forward pass took 0.50x fp32's time")
    assert "measured in" in note and str(cache) in note
    again = auto_precision.choose(build(), SIZE, cache=cache)
    assert again == ("bf16", f" (auto: bf16's forward pass took 0.50x fp32's time on this CPU; cached in {cache})")
    assert timed == ["inference"]
    [(key, verdict)] = json.loads(cache.read_text()).items()
    assert key.startswith("Test CPU | TensorFlow ") and "| inference |" in key and "C3,8,2M2" in key
    assert verdict["seconds_per_call"] == {"fp32": 1.0, "bf16": 0.5} and verdict["batch"] == 8


def test_training_another_architecture_and_another_size_are_measured_apart(measured):
    cache, timed = measured
    auto_precision.choose(build(), SIZE, cache=cache)
    auto_precision.choose(build(), SIZE, "training", cache=cache)
    auto_precision.choose(build("C3,8,2M2C3,8,1M2"), SIZE, cache=cache)
    auto_precision.choose(build(), (32, 32), cache=cache)
    auto_precision.choose(build(), SIZE, "training", cache=cache)
    assert timed == ["inference", "training", "inference", "inference"]
    assert len(json.loads(cache.read_text())) == 4


@pytest.mark.parametrize("bf16_seconds, expected", [(0.9, "bf16"), (0.97, "fp32"), (2.0, "fp32")])
def test_bf16_is_run_only_where_it_is_clearly_faster(tmp_path, monkeypatch, bf16_seconds, expected):
    monkeypatch.setattr(auto_precision.cpu_features, "read_cpu", lambda *_: ("Test CPU", {"amx_bf16"}))
    monkeypatch.setattr(auto_precision, "time_both", lambda *_: {"fp32": 1.0, "bf16": bf16_seconds})
    assert auto_precision.choose(build(), SIZE, cache=tmp_path / "precision.json")[0] == expected


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"k": {"precision": "fp16", "bf16_over_fp32": 1}}'])
def test_a_corrupt_cache_is_ignored_with_one_warning_and_rewritten(measured, text):
    cache, timed = measured
    cache.parent.mkdir(parents=True)
    cache.write_text(text)
    warnings = []
    assert auto_precision.choose(build(), SIZE, cache=cache, log=warnings.append)[0] == "bf16"
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: ignored the precision cache {cache}")
    assert [v["precision"] for v in json.loads(cache.read_text()).values()] == ["bf16"]
    assert auto_precision.choose(build(), SIZE, cache=cache, log=warnings.append)[0] == "bf16"
    assert len(warnings) == 1 and timed == ["inference"]


def test_an_unwritable_cache_still_runs_with_one_warning(measured):
    cache, timed = measured
    cache.parent.parent.mkdir(exist_ok=True)
    cache.parent.write_text("a file where the folder should be")
    warnings = []
    assert auto_precision.choose(build(), SIZE, cache=cache, log=warnings.append)[0] == "bf16"
    assert len(warnings) == 1 and "cannot write the precision cache" in warnings[0]


def test_the_cache_lives_in_the_user_s_cache_folder_unless_told(tmp_path, monkeypatch):
    monkeypatch.delenv(auto_precision.CACHE_ENV, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert auto_precision.cache_file() == tmp_path / "xdg" / "face-segmentation" / "precision.json"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert auto_precision.cache_file() == tmp_path / "home" / ".cache" / "face-segmentation" / "precision.json"
    monkeypatch.setenv(auto_precision.CACHE_ENV, str(tmp_path / "elsewhere"))
    assert auto_precision.cache_file() == tmp_path / "elsewhere" / "precision.json"


@pytest.mark.parametrize("kind", ["inference", "training"])
def test_both_precisions_are_timed_for_real(monkeypatch, kind):
    monkeypatch.setattr(auto_precision, "TIMING_SECONDS", 0.0)
    seconds = auto_precision.time_both(build(), SIZE, kind)
    assert set(seconds) == {"fp32", "bf16"} and all(0 < s < 5 for s in seconds.values())
