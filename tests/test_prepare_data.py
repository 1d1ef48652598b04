"""prepare_data.py on tiny synthetic archives in the official LFW part-labels layout (no network)."""
import io
import subprocess
import sys
import tarfile
from pathlib import Path

import cv2
import numpy as np
import pytest

import prepare_data

ROOT = Path(prepare_data.__file__).parent
LABELLED = ["Ann_Lee_0001", "Ann_Lee_0002", "Bo_Chen_0001", "Cy_Diaz_0001", "Cy_Diaz_0002"]
UNLABELLED = "Bo_Chen_0002"
SKIN_RGB = (200, 150, 120)
FACE_CENTER, FACE_AXES = (125, 140), (55, 75)  # (x, y) and half-axes at 250x250
SUBFOLDERS = ("inputs", "targets", "targets_face_only")


def face_ellipse(size):
    """Boolean mask of the synthetic face ellipse drawn at size x size."""
    mask = np.zeros((size, size), np.uint8)
    scale = size / 250
    cv2.ellipse(mask, (round(FACE_CENTER[0] * scale), round(FACE_CENTER[1] * scale)),
                (round(FACE_AXES[0] * scale), round(FACE_AXES[1] * scale)), 0, 0, 360, 1, -1)
    return mask.astype(bool)


def synthetic_example(seed):
    """An RGB photo and its RGB part-label image: hair around a face ellipse, background elsewhere."""
    rng = np.random.default_rng(seed)
    hair = np.zeros((250, 250), np.uint8)
    cv2.ellipse(hair, (125, 110), (80, 90), 0, 0, 360, 1, -1)
    cv2.line(hair, (60, 40), (20, 200), 1, 1)  # a one-pixel strand, the hardest case for JPEG masks
    face = face_ellipse(250)
    hair = hair.astype(bool) & ~face
    photo = rng.integers(0, 256, (250, 250, 3), dtype=np.uint8)
    photo[hair] = (60, 40, 20)
    photo[face] = SKIN_RGB
    label = np.zeros((250, 250, 3), np.uint8)
    label[:] = (0, 0, 255)
    label[hair] = (255, 0, 0)
    label[face] = (0, 255, 0)
    return photo, label


def add_file(tar, name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def make_archives(folder, labelled=LABELLED, photographed=LABELLED + [UNLABELLED], truncated=()):
    """Write images.tgz (lfw_funneled/<Person>/<stem>.jpg) and labels.tgz (.../<stem>.ppm) into `folder`;
    the photos and labels named in `truncated` lose the second half of their bytes."""
    images, labels = folder / "lfw-funneled.tgz", folder / "parts_lfw_funneled_gt_images.tgz"
    with tarfile.open(images, "w:gz") as tar:
        for seed, stem in enumerate(photographed):
            photo, _ = synthetic_example(seed)
            jpeg = cv2.imencode(".jpg", photo[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, 98])[1].tobytes()
            add_file(tar, f"lfw_funneled/{stem.rsplit('_', 1)[0]}/{stem}.jpg",
                     jpeg[:len(jpeg) // 2] if stem in truncated else jpeg)
    with tarfile.open(labels, "w:gz") as tar:
        for seed, stem in enumerate(labelled):
            _, label = synthetic_example(seed)
            # Written by hand as binary PPM (RGB bytes) so a BGR/RGB mix-up in the script shows.
            ppm = b"P6\n250 250\n255\n" + label.tobytes()
            add_file(tar, f"parts_lfw_funneled_gt_images/{stem}.ppm", ppm[:len(ppm) // 2] if stem in truncated else ppm)
    return images, labels


@pytest.fixture
def archives(tmp_path):
    return make_archives(tmp_path)


@pytest.fixture
def prepared(tmp_path, archives, capsys):
    """A data64_64 folder built from the synthetic archives."""
    out = tmp_path / "data64_64"
    assert prepare_data.main(["--images", str(archives[0]), "--labels", str(archives[1]),
                              "--size", "64", "--out", str(out)]) == 0
    capsys.readouterr()
    return out


def read(path):
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_archives_give_grayscale_inputs_and_binary_masks(tmp_path, archives, capsys):
    out = tmp_path / "data64_64"
    code = prepare_data.main(["--images", str(archives[0]), "--labels", str(archives[1]),
                              "--size", "64", "--out", str(out)])
    assert code == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(": 5 inputs, 5 targets, 5 targets_face_only")
    for sub in SUBFOLDERS:
        assert sorted(path.name for path in (out / sub).iterdir()) == sorted(f"{s}.jpg" for s in LABELLED)
    skin_gray = 0.299 * SKIN_RGB[0] + 0.587 * SKIN_RGB[1] + 0.114 * SKIN_RGB[2]
    for seed, stem in enumerate(LABELLED):
        image = read(out / "inputs" / f"{stem}.jpg")
        targets = read(out / "targets" / f"{stem}.jpg")
        face = read(out / "targets_face_only" / f"{stem}.jpg")
        assert image.shape == targets.shape == face.shape == (64, 64)
        assert abs(float(image[face_ellipse(64)].mean()) - skin_gray) < 4  # the photo, in gray
        _, label = synthetic_example(seed)
        small = cv2.resize(label, (64, 64), interpolation=cv2.INTER_NEAREST)
        np.testing.assert_array_equal(targets > 127, small[..., 2] < 128)  # exact after thresholding
        np.testing.assert_array_equal(face > 127, small[..., 1] > 127)
        assert np.all((targets < 20) | (targets > 235)) and np.all((face < 20) | (face > 235))
        assert not np.any((face > 127) & (targets <= 127))  # face only is inside face+hair
        assert np.mean((face > 127) != face_ellipse(64)) < 0.01
        assert np.sum((targets > 127) & (face <= 127)) > 200  # the hair


def test_second_run_keeps_files_and_prints_same_counts(tmp_path, archives, capsys):
    argv = ["--images", str(archives[0]), "--labels", str(archives[1]),
            "--size", "64", "--out", str(tmp_path / "d")]
    assert prepare_data.main(argv) == 0
    first = capsys.readouterr().out.splitlines()
    stamps = {path: path.stat().st_mtime_ns for path in (tmp_path / "d").rglob("*.jpg")}
    assert prepare_data.main(argv) == 0
    second = capsys.readouterr().out.splitlines()
    assert second[-1] == first[-1]
    assert "wrote 0 new examples, kept 5 existing" in second
    assert {path: path.stat().st_mtime_ns for path in (tmp_path / "d").rglob("*.jpg")} == stamps
    assert not [path for path in (tmp_path / "d").rglob("*") if path.name.startswith(".")]


def test_url_is_downloaded_once_into_downloads(tmp_path, archives, capsys):
    downloads = tmp_path / "downloads"
    argv = ["--images", archives[0].as_uri(), "--labels", archives[1].as_uri(), "--downloads", str(downloads),
            "--size", "32", "--out", str(tmp_path / "d")]
    assert prepare_data.main(argv) == 0
    assert (downloads / "lfw-funneled.tgz").read_bytes() == archives[0].read_bytes()
    assert prepare_data.main(argv) == 0
    assert "already downloaded" in capsys.readouterr().out


def test_offline_download_names_url_and_fallback(tmp_path, archives, capsys):
    url = "http://127.0.0.1:9/lfw-funneled.tgz"  # nothing listens on the discard port
    code = prepare_data.main(["--images", url, "--labels", str(archives[1]),
                              "--downloads", str(tmp_path / "dl"), "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 1
    assert f"could not download {url}" in err and "--images" in err
    assert not (tmp_path / "dl" / "lfw-funneled.tgz").exists()


def test_missing_archive_is_named(tmp_path, archives, capsys):
    missing = tmp_path / "nowhere.tgz"
    code = prepare_data.main(["--images", str(missing), "--labels", str(archives[1]),
                              "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 1 and str(missing) in err and "Traceback" not in err


def test_unreadable_archive_is_named(tmp_path, archives, capsys):
    broken = tmp_path / "broken.tgz"
    broken.write_bytes(b"not a tar archive")
    code = prepare_data.main(["--images", str(archives[0]), "--labels", str(broken),
                              "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err
    assert code == 1 and f"could not read archive {broken}" in err


def test_label_without_photo_fails_before_writing(tmp_path, capsys):
    images, labels = make_archives(tmp_path, photographed=LABELLED[1:])
    out = tmp_path / "d"
    code = prepare_data.main(["--images", str(images), "--labels", str(labels), "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and LABELLED[0] in err
    assert not out.exists()


@pytest.mark.parametrize("what", ["photo", "label"])
def test_truncated_photo_or_label_is_named(tmp_path, capsys, what):
    stem = LABELLED[2]
    (tmp_path / "cut").mkdir()
    cut = dict(zip(("photo", "label"), make_archives(tmp_path / "cut", truncated=[stem])))
    whole = dict(zip(("photo", "label"), make_archives(tmp_path)))
    archives = {**whole, what: cut[what]}
    code = prepare_data.main(["--images", str(archives["photo"]), "--labels", str(archives["label"]),
                              "--out", str(tmp_path / "d")])
    err = capsys.readouterr().err
    name = f"{stem}.jpg" if what == "photo" else f"{stem}.ppm"
    assert code == 1 and f"cannot read image {name}" in err and "(truncated)" in err, err


@pytest.mark.parametrize("link", [False, True])
def test_from_folder_copies_or_links(tmp_path, prepared, capsys, link):
    out = tmp_path / "copy"
    argv = ["--from", str(prepared), "--size", "64", "--out", str(out)] + (["--link"] if link else [])
    assert prepare_data.main(argv) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(": 5 inputs, 5 targets, 5 targets_face_only")
    for sub in SUBFOLDERS:
        for source in prepared.joinpath(sub).iterdir():
            copy = out / sub / source.name
            assert copy.is_symlink() == link
            assert copy.read_bytes() == source.read_bytes()
    assert prepare_data.main(argv) == 0
    assert "0 files" in capsys.readouterr().out


def test_from_folder_with_unpaired_input_fails(tmp_path, prepared, capsys):
    (prepared / "targets_face_only" / f"{LABELLED[2]}.jpg").unlink()
    out = tmp_path / "copy"
    code = prepare_data.main(["--from", str(prepared), "--size", "64", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 1 and LABELLED[2] in err and "targets_face_only" in err
    assert not out.exists()


def test_from_folder_of_other_size_fails(tmp_path, prepared, capsys):
    code = prepare_data.main(["--from", str(prepared), "--out", str(tmp_path / "copy")])
    assert code == 1 and "--size 64" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    assert prepare_data.main(["--link"]) == 2
    assert prepare_data.main(["--from", "x", "--images", "y"]) == 2
    assert prepare_data.main(["--size", "0"]) == 2


def test_command_line_exit_status(tmp_path):
    missing = tmp_path / "nowhere.tgz"
    result = subprocess.run([sys.executable, str(ROOT / "prepare_data.py"), "--images", str(missing),
                             "--labels", str(missing), "--out", str(tmp_path / "d")],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [f"error: archive not found: {missing}; "
                                                  "pass the right file as --images, or a URL"]


def test_default_run_refuses_the_committed_folder_before_downloading(tmp_path, capsys):
    downloads = tmp_path / "downloads"
    before = sorted(path.name for path in prepare_data.COMMITTED_DATA.joinpath("inputs").iterdir())
    assert prepare_data.main(["--downloads", str(downloads)]) == 1  # would download, then add to data128_128
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data128_128 holds the 2637 examples committed" in err
    assert "--out" in err and "--force" in err
    assert not downloads.exists()
    assert sorted(path.name for path in prepare_data.COMMITTED_DATA.joinpath("inputs").iterdir()) == before


def test_committed_folder_is_added_to_only_with_force(tmp_path, archives, prepared, capsys, monkeypatch):
    committed = tmp_path / "committed"
    for sub in SUBFOLDERS:
        (committed / sub).mkdir(parents=True)
        name = f"{LABELLED[0]}.jpg"
        (committed / sub / name).write_bytes((prepared / sub / name).read_bytes())
    monkeypatch.setattr(prepare_data, "COMMITTED_DATA", committed)
    for argv in (["--images", str(archives[0]), "--labels", str(archives[1]), "--size", "64"],
                 ["--from", str(prepared), "--size", "64", "--link"]):
        assert prepare_data.main([*argv, "--out", str(committed)]) == 1
        assert "--force" in capsys.readouterr().err
        assert [len(list((committed / sub).iterdir())) for sub in SUBFOLDERS] == [1, 1, 1]
    assert prepare_data.main(["--images", str(archives[0]), "--labels", str(archives[1]), "--size", "64",
                              "--out", str(committed), "--force"]) == 0
    assert "wrote 4 new examples, kept 1 existing" in capsys.readouterr().out
    assert [len(list((committed / sub).iterdir())) for sub in SUBFOLDERS] == [5, 5, 5]


def test_empty_committed_folder_is_filled_without_force(tmp_path, prepared, capsys, monkeypatch):
    committed = tmp_path / "committed"
    (committed / "inputs").mkdir(parents=True)
    monkeypatch.setattr(prepare_data, "COMMITTED_DATA", committed)
    assert prepare_data.main(["--from", str(prepared), "--size", "64", "--out", str(committed)]) == 0
    assert capsys.readouterr().out.splitlines()[-1].endswith(": 5 inputs, 5 targets, 5 targets_face_only")
