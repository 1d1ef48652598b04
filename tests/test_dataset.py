"""The person-disjoint split and the tf.data batches (reading the folder: test_data_folder.py)."""
import cv2
import numpy as np
import pytest

from conftest import make_face_folder
from data_folder import DataError
from dataset import SPLITS, Dataset, person_of, shrunk, split_by_person


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


def test_training_batches_are_reproducible_and_augmented_with_their_masks(face_folder):
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
    unaugmented = [(x.numpy(), y.numpy()) for x, y in plain.train_batches(epoch=0)]
    assert all(any(np.array_equal(img, ref) for ref in plain.images["train"]) for img in
               (unaugmented[0][0][..., 0] * 255).round().astype(np.uint8))
    # The order depends on (seed, epoch) only, so the two runs hold the same images: augmentation
    # changed every image and mask, and each mask moved with its image. The synthetic face is the
    # bright region (190 against 90 and 40): it lies under the augmented mask (IoU about 0.9), where
    # the unmoved mask would leave it (IoU 0.5 or less).
    for (x, y), (x_plain, y_plain) in zip(first, unaugmented):
        for image, label, image_plain, label_plain in zip(x[..., 0] * 255, y, x_plain[..., 0] * 255, y_plain):
            assert not np.array_equal(image, image_plain) and not np.array_equal(label, label_plain)
            bright = cv2.GaussianBlur(image, (0, 0), 2) > 140
            assert np.count_nonzero(bright & (label == 1)) / np.count_nonzero(bright | (label == 1)) > 0.8


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

