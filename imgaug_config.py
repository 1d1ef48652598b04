"""The reference augmentation (imgaug), and the shims imgaug 0.4.0 needs to run on NumPy 2.

imgaug is unmaintained; everything needed to run it here lives in this file. Other modules take
what they need from it (`from imgaug_config import iaa, augment_batch`), never `import imgaug` first.
"""
import numpy as np

# NumPy 2 removed `np.sctypes`; imgaug reads it at import time to list the int/uint/float dtypes.
# The lists are the ones NumPy 1.x had on this platform.
np.sctypes = {
    "int": [np.int8, np.int16, np.int32, np.int64],
    "uint": [np.uint8, np.uint16, np.uint32, np.uint64],
    "float": [np.float16, np.float32, np.float64, np.longdouble],
    "complex": [np.complex64, np.complex128, np.clongdouble],
    "others": [bool, object, bytes, str, np.void],
}
# NumPy 2 removed the `np.complex` alias; imgaug uses it in iap.Power and iap.FrequencyNoise (the
# latter behind iaa.Clouds/Fog/Snowflakes), so an augmenter a fork adds would otherwise fail mid-run.
np.complex = complex

import imgaug  # noqa: E402  (must come after the NumPy shims above)
import imgaug.augmenters as iaa  # noqa: E402
from imgaug.augmentables.segmaps import SegmentationMapsOnImage  # noqa: E402

_imgaug_segmap_resize = SegmentationMapsOnImage.resize


def _resize_segmap_nearest_centred(self, sizes, interpolation="nearest"):
    """Nearest-neighbour resize that samples pixel centres, like the images' resize does.

    imgaug resizes segmentation maps with cv2.INTER_NEAREST, which picks source pixel
    floor(x * src / dst): a systematic shift of up to half a pixel against the images, which
    Crop(keep_size=True) resizes with centre-aligned interpolation. Masks then no longer line up
    with their images. Picking floor((x + 0.5) * src / dst) (cv2.INTER_NEAREST_EXACT) keeps them
    aligned; indexing with NumPy keeps the channel axis and dtype that cv2.resize would not.
    """
    if interpolation != "nearest":
        return _imgaug_segmap_resize(self, sizes, interpolation)
    src_height, src_width = self.arr.shape[0:2]
    height, width = imgaug.imgaug._compute_resized_shape(self.arr.shape, sizes)[0:2]
    rows = ((np.arange(height) + 0.5) * src_height / height).astype(np.intp)
    cols = ((np.arange(width) + 0.5) * src_width / width).astype(np.intp)
    return self.deepcopy(self.arr[rows[:, None], cols])


SegmentationMapsOnImage.resize = _resize_segmap_nearest_centred


def geometric_augmenters(height):
    """Augmenters that move pixels; applied to images and masks alike (masks nearest-neighbour)."""
    return [
        iaa.Crop(px=(0, 16), keep_size=True),
        iaa.Fliplr(0.5),
        iaa.Affine(translate_px={"x": (-height // 3, height // 3)}),
    ]


def photometric_augmenters():
    """Augmenters that change pixel values; imgaug applies them to images only, never to masks."""
    return [
        iaa.GaussianBlur(sigma=(0, 3.0)),
        iaa.Dropout(p=0.02),
        iaa.AdditiveGaussianNoise(scale=0.01 * 255),
    ]


def reference_augmenter(height):
    """The reference's augmentation recipe for images of this height.

    The reference interleaved the two kinds (Affine came last); here all geometry comes first so the
    noise and dropout also cover the border that the translation and crop bring in.
    """
    return iaa.Sequential(geometric_augmenters(height) + photometric_augmenters())


def augment_batch(images, masks, seed, augmenter=None):
    """Augment uint8 images [N,H,W(,1)] and integer masks [N,H,W(,1)] with one draw per image pair.

    `augmenter` defaults to reference_augmenter(H); a passed one is copied, not modified. The same
    `seed` gives the same batch. Returns (images, masks) with the shapes and dtypes of the inputs.
    """
    if augmenter is None:
        augmenter = reference_augmenter(images.shape[1])
    seeded = augmenter.deepcopy()
    seeded.seed_(seed)
    n, height, width = images.shape[0:3]
    images_4d = images.reshape(n, height, width, 1)
    # SegmentationMapsOnImage accepts at most 32-bit integers.
    segmaps = [SegmentationMapsOnImage(mask, shape=image.shape)
               for mask, image in zip(masks.reshape(n, height, width).astype(np.int32), images_4d)]
    images_aug, segmaps_aug = seeded(images=images_4d, segmentation_maps=segmaps)
    masks_aug = np.stack([segmap.get_arr() for segmap in segmaps_aug])
    return images_aug.reshape(images.shape), masks_aug.astype(masks.dtype).reshape(masks.shape)
