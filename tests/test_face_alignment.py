"""faces/face_alignment.py on synthetic points and images: the transform, the crop, the paste-back, combining faces."""
import cv2
import numpy as np

from faces import face_alignment as fa


def similarity(angle, scale, shift):
    transform = cv2.getRotationMatrix2D((0, 0), angle, scale)
    transform[:, 2] = shift
    return transform


def through(transform, points):
    return points @ transform[:, :2].T + transform[:, 2]


def test_template_is_a_face_seen_upright():
    left_eye, right_eye, nose, mouth_left, mouth_right = fa.template_points((128, 128))
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    np.testing.assert_allclose(fa.template_points((64, 64)), (fa.template_points((128, 128)) + 0.5) / 2 - 0.5)


def test_zoom_spreads_the_template_about_its_centre():
    plain, zoomed = fa.template_points((128, 128), zoom=1.0), fa.template_points((128, 128), zoom=1.1)
    np.testing.assert_allclose(zoomed.mean(axis=0), plain.mean(axis=0))
    np.testing.assert_allclose(zoomed - zoomed.mean(axis=0), 1.1 * (plain - plain.mean(axis=0)))
    raw = fa.template() * 128 - 0.5
    np.testing.assert_allclose(plain, raw)
    np.testing.assert_allclose(fa.template_points((128, 128)), fa.template_points((128, 128), zoom=fa.ZOOM))


def test_similarity_transform_recovers_a_known_one_and_fits_noisy_points_best():
    rng = np.random.default_rng(0)
    source = rng.uniform(0, 500, (5, 2))
    known = similarity(23.0, 0.4, (10.0, -3.0))
    np.testing.assert_allclose(fa.similarity_transform(source, through(known, source)), known, atol=1e-9)
    target = through(known, source) + rng.normal(0, 2, (5, 2))
    fitted = fa.similarity_transform(source, target)
    error = np.sum((through(fitted, source) - target) ** 2)
    for nudge in (similarity(1.0, 1.0, (0, 0)), similarity(0.0, 1.01, (0, 0)), similarity(0.0, 1.0, (0.5, 0))):
        nudged = np.vstack([nudge, [0, 0, 1]]) @ np.vstack([fitted, [0, 0, 1]])
        assert np.sum((through(nudged[:2], source) - target) ** 2) > error
    assert fa.scale_of(fitted) > 0 and np.linalg.det(fitted[:, :2]) > 0  # no mirror image


def test_aligned_crop_undoes_scale_rotation_and_shift():
    """A crop drawn into a large photo by a known similarity comes back from the moved landmarks."""
    rng = np.random.default_rng(1)
    crop = cv2.GaussianBlur(rng.integers(0, 255, (128, 128)).astype(np.uint8), (0, 0), 2)
    template = fa.template_points((128, 128))
    to_photo = similarity(-20.0, 3.5, (400.0, 150.0))
    photo = cv2.warpAffine(crop, to_photo, (1000, 800), flags=cv2.INTER_CUBIC)
    again, transform = fa.aligned_crop(photo, through(to_photo, template), (128, 128))
    np.testing.assert_allclose(transform, cv2.invertAffineTransform(to_photo), atol=1e-6)
    inner = (slice(8, -8), slice(8, -8))  # the border mixes in the photo's black surroundings
    assert np.abs(again[inner].astype(float) - crop[inner]).mean() < 6


def test_aligned_crop_is_black_beyond_the_photo():
    photo = np.full((60, 60), 200, np.uint8)
    template = fa.template_points((128, 128))
    crop, _ = fa.aligned_crop(photo, template * 0.3 - 10, (128, 128))  # a face cut by the photo's corner
    assert crop[5, 5] == 0 and crop[5, 100] == 0 and crop[60, 60] == 200 and crop[-5, -5] == 200


def test_pasted_probabilities_land_where_the_crop_came_from():
    to_photo = similarity(30.0, 2.0, (300.0, 100.0))
    transform = cv2.invertAffineTransform(to_photo)
    probabilities = np.zeros((128, 128, 1), np.float32)
    probabilities[60:68, 60:68] = 1.0
    x0, y0, region = fa.pasted(probabilities, transform, (600, 700))
    ys, xs = np.nonzero(region[..., 0] > 0.5)
    centre = np.array([xs.mean() + x0, ys.mean() + y0])
    np.testing.assert_allclose(centre, through(to_photo, np.array([[63.5, 63.5]]))[0], atol=1.0)
    assert region.shape[0] < 600 and region.shape[1] < 700  # only the crop's footprint is warped


def test_pasted_is_clipped_to_the_photo():
    transform = cv2.invertAffineTransform(similarity(0.0, 1.0, (-100.0, -100.0)))
    x0, y0, region = fa.pasted(np.ones((128, 128, 1), np.float32), transform, (50, 50))
    assert (x0, y0) == (0, 0) and 28 <= region.shape[0] == region.shape[1] <= 28 + fa.MARGIN + 1
    assert region[:27, :27].min() == 1.0


def test_combine_keeps_per_pixel_the_face_most_sure_it_is_no_background():
    one = np.array([[[0.1, 0.8, 0.1], [0.7, 0.2, 0.1]]], np.float32)  # foreground 0.9, 0.3
    two = np.array([[[0.5, 0.1, 0.4], [0.2, 0.1, 0.7]]], np.float32)  # foreground 0.5, 0.8
    combined = fa.combine((2, 3), 3, [(0, 0, one), (0, 0, two)])
    np.testing.assert_array_equal(combined[0, :2], [one[0, 0], two[0, 1]])
    np.testing.assert_array_equal(combined[1], [[1, 0, 0]] * 3)  # no face there: background
    single = fa.combine((1, 3), 1, [(1, 0, np.array([[[0.4], [0.9]]], np.float32)),
                                    (0, 0, np.array([[[0.2], [0.6]]], np.float32))])
    np.testing.assert_allclose(single[..., 0], [[0.2, 0.6, 0.9]])
