"""The data folder readers, the person-disjoint split and the tf.data batches."""
import cv2
import numpy as np
import pytest

from conftest import make_face_folder
from dataset import SPLITS, DataError, Dataset, load_folder, person_of, shrunk, split_by_person


def test_split_by_person_is_disjoint_reproducible_and_70_15_15():
    names = [f"P{p:03d}_{k:04d}" for p in range(300) for k in range(1 + p % 4)]
    split = split_by_person(names, seed=3)
    persons = {s: {person_of(n) for n in split[s]} for s in SPLITS}
    assert not persons["train"] & persons["validation"]
    assert not persons["train"] & persons["test"]
    assert not persons["validation"] & persons["test"]
    assert sorted(sum(split.values(), [])) == sorted(names)
    fractions = [len(split[s]) / len(names) for s in SPLITS]
    np.testing.assert_allclose(fractions, [0.7, 0.15, 0.15], atol=0.01)
    assert split_by_person(list(reversed(names)), seed=3) == split
    assert split_by_person(names, seed=4) != split


def test_too_few_persons_to_split(tmp_path):
    folder = make_face_folder(tmp_path / "one", persons=1, per_person=3)
    with pytest.raises(DataError, match=r"too few persons \(1\)"):
        Dataset(4, folder)


def test_person_of_strips_the_image_number():
    assert person_of("George_W_Bush_0012") == "George_W_Bush"
    assert person_of("Abdullah_0001") == "Abdullah"


def test_targets_face_face_hair_and_three_classes(face_folder):
    names, images, face = load_folder(face_folder, "face")
    _, _, face_hair = load_folder(face_folder, "face_hair")
    _, _, classes = load_folder(face_folder, "classes3")
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
    _, images, _ = load_folder(face_folder)
    assert images.ndim == 3


def test_missing_folder_is_named(tmp_path):
    with pytest.raises(DataError, match=r"data folder .*nowhere does not exist.*git checkout -- data128_128"):
        load_folder(tmp_path / "nowhere")


def refused_then_left_out(folder, name, message):
    """load_folder refuses `folder` with `message`; with --skip-bad it leaves `name` out and says so."""
    with pytest.raises(DataError, match=message):
        load_folder(folder)
    logged = []
    names, _, _ = load_folder(folder, skip_bad=True, log=logged.append)
    assert name not in names and len(names) == 11
    assert any(name in line for line in logged)


def test_input_without_target_is_named_and_can_be_skipped(face_folder):
    (face_folder / "targets_face_only" / "Person_01_0002.jpg").unlink()
    refused_then_left_out(face_folder, "Person_01_0002",
                          r"Person_01_0002 has no file in .*targets_face_only.*--skip-bad")


def test_target_without_input_is_named(face_folder):
    (face_folder / "inputs" / "Person_02_0001.jpg").unlink()
    with pytest.raises(DataError, match=r"Person_02_0001 has no file in .*inputs"):
        load_folder(face_folder)


def test_corrupt_image_is_named(face_folder):
    (face_folder / "inputs" / "Person_03_0001.jpg").write_bytes(b"not a jpeg at all")
    with pytest.raises(DataError, match=r"cannot read image .*Person_03_0001.jpg"):
        load_folder(face_folder)


def test_truncated_image_is_named_and_can_be_skipped(face_folder):
    path = face_folder / "targets_face_only" / "Person_03_0001.jpg"
    path.write_bytes(path.read_bytes()[:-2])  # all but the end-of-image marker: OpenCV alone reads it
    assert cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) is not None
    refused_then_left_out(face_folder, "Person_03_0001", r"cannot read image .*Person_03_0001.jpg: it ends before its "
                          r"end-of-image marker \(truncated\); replace or remove the file.*--skip-bad")


def test_size_mismatch_is_named(face_folder):
    cv2.imwrite(str(face_folder / "targets_face_only" / "Person_04_0001.jpg"), np.zeros((32, 32), np.uint8))
    with pytest.raises(DataError, match=r"Person_04_0001: input and targets differ in size"):
        load_folder(face_folder)


def test_training_batches_are_reproducible_and_augmented(face_folder):
    dataset = Dataset(4, face_folder, seed=5)
    first = [(x.numpy(), y.numpy()) for x, y in dataset.train_batches(epoch=0)]
    again = [(x.numpy(), y.numpy()) for x, y in Dataset(4, face_folder, seed=5).train_batches(epoch=0)]
    for (x1, y1), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x1, x2)
        np.testing.assert_array_equal(y1, y2)
    assert sum(len(x) for x, _ in first) == dataset.size("train")
    assert first[0][0].shape[1:] == (64, 64, 1) and first[0][0].dtype == np.float32
    assert first[0][1].dtype == np.int32 and set(np.unique(first[0][1])) <= {0, 1}
    later = [x.numpy() for x, _ in dataset.train_batches(epoch=0, skip=1)]
    np.testing.assert_array_equal(later[0], first[1][0])
    plain = Dataset(4, face_folder, seed=5, augment=False)
    x, _ = next(iter(plain.train_batches(epoch=0)))
    assert all(any(np.array_equal(img, ref) for ref in plain.images["train"]) for img in
               (x.numpy()[..., 0] * 255).round().astype(np.uint8))


def test_pipelines_do_not_autotune(face_folder):
    # tf.data's autotuning thread made each new epoch wait up to a minute for the old iterator.
    dataset = Dataset(4, face_folder, seed=5)
    for pipeline in (dataset.train_batches(epoch=0), dataset.batches("validation")):
        assert pipeline.options().autotune.enabled is False


def test_real_data_split(real_data):
    dataset = Dataset(100, real_data)
    sizes = {s: dataset.size(s) for s in SPLITS}
    assert sum(sizes.values()) == 2637
    np.testing.assert_allclose([sizes[s] / 2637 for s in SPLITS], [0.7, 0.15, 0.15], atol=0.01)
    persons = [{person_of(n) for n in dataset.split[s]} for s in SPLITS]
    assert not (persons[0] & persons[1] or persons[0] & persons[2] or persons[1] & persons[2])
    assert dataset.image_shape == (128, 128)
    face = dataset.labels["train"].mean()
    assert 0.1 < face < 0.6


def test_shrunk_averages_images_and_keeps_each_new_pixel_s_majority_class():
    images = np.array([[[0, 100, 7, 7], [100, 200, 7, 7], [50, 50, 0, 0], [50, 50, 0, 4]]], np.uint8)
    labels = np.array([[[2, 2, 0, 1], [2, 1, 1, 1], [0, 0, 1, 2], [0, 1, 2, 2]]], np.uint8)
    small_images, small_labels = shrunk(images, labels, (2, 2), num_classes=3)
    np.testing.assert_array_equal(small_images, [[[100, 7], [50, 1]]])
    np.testing.assert_array_equal(small_labels, [[[2, 1], [0, 2]]])
    assert small_images.dtype == small_labels.dtype == np.uint8


def test_train_batches_of_a_size_are_the_full_batches_shrunk(face_folder):
    data = Dataset(4, face_folder, seed=3, three_classes=True)
    def as_uint8(images, labels):
        return np.round(images.numpy()[..., 0] * 255).astype(np.uint8), labels.numpy().astype(np.uint8)

    batches = list(data.train_batches(epoch=1))
    small = list(data.train_batches(epoch=1, size=(32, 32)))
    assert len(batches) == len(small) > 0
    for full, shrunk_batch in zip(batches, small):
        expected_x, expected_y = shrunk(*as_uint8(*full), (32, 32), 3)
        small_x, small_y = as_uint8(*shrunk_batch)
        assert small_x.shape[1:] == (32, 32)
        np.testing.assert_array_equal(small_x, expected_x)
        np.testing.assert_array_equal(small_y, expected_y)

