"""faces/photo_files.py: which files of the INPUTs become jobs, where their outputs go, and 8-bit pixels."""
import numpy as np
import pytest

from faces import photo_files
from runs.config import UsageError


def test_to_8bit_scales_16_bit_and_float_ranges():
    np.testing.assert_array_equal(photo_files.to_8bit(np.array([0, 257, 65535], np.uint16)), [0, 1, 255])
    np.testing.assert_array_equal(photo_files.to_8bit(np.array([0.0, 0.5, 1.0, 2.0], np.float32)), [0, 128, 255, 255])


def test_plan_keeps_the_folder_structure_and_both_files_of_a_shared_stem(tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    for name in ("a.png", "a.jpg", "sub/b.png", ".hidden.png"):
        (tmp_path / "in" / name).write_bytes(b"")
    skipped = []
    jobs = photo_files.plan([tmp_path / "in"], tmp_path / "out", recursive=True,
                            skip=lambda source, reason: skipped.append(source))
    targets = {job.source.relative_to(tmp_path / "in").as_posix(): job.target for job in jobs}
    out = tmp_path / "out"
    assert targets == {"a.jpg": out / "a", "a.png": out / "a.png", "sub/b.png": out / "sub" / "b"}
    assert skipped == []
    top_level = photo_files.plan([tmp_path / "in"], out, recursive=False, skip=None)
    assert sorted(job.source.name for job in top_level) == ["a.jpg", "a.png"]


def test_plan_leaves_out_the_output_folder_and_names_missing_inputs(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "old_mask.png").write_bytes(b"")
    (tmp_path / "photo.png").write_bytes(b"")
    jobs = photo_files.plan([tmp_path], tmp_path / "out", recursive=True, skip=None)
    assert [job.source.name for job in jobs] == ["photo.png"]
    with pytest.raises(UsageError, match="no such file or folder: .*missing.jpg"):
        photo_files.plan([tmp_path / "missing.jpg"], tmp_path / "out", recursive=False, skip=None)
    (tmp_path / "nested" / "sub").mkdir(parents=True)
    (tmp_path / "nested" / "sub" / "photo.png").write_bytes(b"")
    with pytest.raises(UsageError, match="no files to segment in .* \\(--recursive descends into subfolders\\)"):
        photo_files.plan([tmp_path / "nested"], tmp_path / "out", recursive=False, skip=None)
