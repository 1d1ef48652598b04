"""Unit tests for imgaug_config: shims, mask/image alignment, seeding, dtypes. Synthetic data only."""
import cv2
import numpy as np
import pytest

from imgaug_config import (
    SegmentationMapsOnImage, augment_batch, geometric_augmenters, iaa, photometric_augmenters,
    reference_augmenter)
import imgaug.parameters as iap  # only after imgaug_config, which shims NumPy for imgaug

H = 128
N = 16


def blob_masks(n=N, classes=2, seed=0):
    """Label maps with a disc and a rectangle per image, placed at random; classes 1.. are used."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:H, :H]
    masks = np.zeros((n, H, H), np.uint8)
    for mask in masks:
        cy, cx, r = rng.integers(30, 98), rng.integers(30, 98), rng.integers(15, 40)
        mask[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = 1
        mask[rng.integers(0, 100):, :rng.integers(5, 60)] = classes - 1
    return masks


def geometric_names():
    return [type(aug).__name__ for aug in geometric_augmenters(H)]


def photometric_names():
    return [type(aug).__name__ for aug in photometric_augmenters()]


def by_name(augmenters, name):
    return next(aug for aug in augmenters if type(aug).__name__ == name)


def test_numpy2_shims_let_imgaug_parameters_run():
    assert set(np.sctypes["uint"]) >= {np.uint8, np.uint16}
    # iap.Power takes its complex (np.complex) path for a negative base and fractional exponent.
    samples = iap.Power(iap.Uniform(-1, 1), 0.5).draw_samples(5)
    assert samples.shape == (5,)


@pytest.mark.parametrize("name", geometric_names() + photometric_names())
def test_each_augmenter_runs_on_uint8_images_and_masks(name):
    masks = blob_masks(n=2)
    augmenter = by_name(geometric_augmenters(H) + photometric_augmenters(), name)
    images, out_masks = augment_batch(masks * 255, masks, seed=0, augmenter=augmenter)
    assert images.shape == masks.shape and out_masks.shape == masks.shape


def assert_aligned(images, masks):
    """Pure black/white pixels match the mask exactly; interpolated edge pixels nearly always do.

    A half-pixel shift of the masks (imgaug's own nearest resize) leaves about 0.6% of pixels
    disagreeing after a crop, so the 0.2% bound catches it.
    """
    pure = (images == 0) | (images == 255)
    np.testing.assert_array_equal((images == 255)[pure], (masks == 1)[pure])
    assert ((images > 127) == (masks == 1)).mean() >= 0.998


@pytest.mark.parametrize("name", geometric_names())
def test_each_geometric_augmenter_keeps_image_and_mask_aligned(name):
    masks = blob_masks()
    images, out_masks = augment_batch(masks * 255, masks, seed=1,
                                      augmenter=by_name(geometric_augmenters(H), name))
    assert not np.array_equal(out_masks, masks)
    assert_aligned(images, out_masks)


def test_geometric_pipeline_keeps_image_and_mask_aligned():
    masks = blob_masks()
    images, out_masks = augment_batch(masks * 255, masks, seed=2,
                                      augmenter=iaa.Sequential(geometric_augmenters(H)))
    assert_aligned(images, out_masks)


def test_full_pipeline_keeps_image_and_mask_aligned():
    masks = blob_masks()
    images, out_masks = augment_batch(masks * 255, masks, seed=3)
    agreement = ((images > 127) == (out_masks == 1)).mean(axis=(1, 2))
    assert agreement.min() >= 0.97
    assert not np.array_equal(images > 127, masks == 1)


def test_segmap_resize_samples_pixel_centres():
    # Crop(keep_size=True) scales a cropped mask back up; it must sample like cv2.INTER_NEAREST_EXACT,
    # not like the half-pixel-shifted cv2.INTER_NEAREST imgaug uses.
    arr = blob_masks(n=1)[0, 7:103, 3:99].astype(np.int32)
    resized = SegmentationMapsOnImage(arr, shape=arr.shape).resize((H, H)).get_arr()
    np.testing.assert_array_equal(
        resized, cv2.resize(arr, (H, H), interpolation=cv2.INTER_NEAREST_EXACT))


@pytest.mark.parametrize("name", photometric_names())
def test_photometric_augmenters_never_touch_masks(name):
    masks = blob_masks(classes=3)
    images = (masks * 100).astype(np.uint8)
    out_images, out_masks = augment_batch(images, masks, seed=4,
                                          augmenter=by_name(photometric_augmenters(), name))
    assert not np.array_equal(out_images, images)
    np.testing.assert_array_equal(out_masks, masks)


@pytest.mark.parametrize("channel_axis", [False, True])
@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.int64])
@pytest.mark.parametrize("classes", [2, 3])
def test_output_shapes_dtypes_and_labels(channel_axis, dtype, classes):
    masks = blob_masks(classes=classes).astype(dtype)
    images = np.random.default_rng(5).integers(0, 256, masks.shape, dtype=np.uint8)
    if channel_axis:
        images, masks = images[..., None], masks[..., None]
    out_images, out_masks = augment_batch(images, masks, seed=6)
    assert out_images.dtype == np.uint8 and out_images.shape == images.shape
    assert out_masks.dtype == masks.dtype and out_masks.shape == masks.shape
    assert set(np.unique(out_masks)) == set(range(classes))


def test_same_seed_same_batch_different_seed_different_batch():
    masks = blob_masks()
    images = masks * 255
    augmenter = reference_augmenter(H)
    first = augment_batch(images, masks, seed=7, augmenter=augmenter)
    again = augment_batch(images, masks, seed=7, augmenter=augmenter)
    default = augment_batch(images, masks, seed=7)
    other = augment_batch(images, masks, seed=8, augmenter=augmenter)
    for a, b, c in zip(first, again, default):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(a, c)
    assert not np.array_equal(first[0], other[0])
    assert not np.array_equal(first[1], other[1])
