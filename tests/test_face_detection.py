"""faces/face_detection.py: MTCNN on a real photo (docs/astronaut.png) and on photos of awkward sizes."""
import cv2
import numpy as np
import pytest

from faces import face_detection as fd
from conftest import ROOT, tilted_scene

ASTRONAUT = ROOT / "docs" / "astronaut.png"


@pytest.fixture(scope="module")
def photo():
    return cv2.imread(str(ASTRONAUT))


def test_detection_scale_follows_min_face_and_the_size_limits():
    assert fd.detection_scale(480, 640, 40) == pytest.approx(256 / 480)  # not below MIN_DETECTION_SIDE
    assert fd.detection_scale(3000, 4000, 40) == pytest.approx(0.4)  # a 40-pixel face becomes 20
    assert fd.detection_scale(8000, 8000, 40) == pytest.approx(0.2)  # the long side capped at 1600
    assert fd.detection_scale(128, 128, 40) == 1.0
    assert fd.detection_scale(128, 128, 12) == pytest.approx(20 / 12)


def test_networks_are_built_once():
    assert fd.networks() is fd.networks()


def test_finds_the_face_with_its_landmarks_in_order(photo):
    (face,) = fd.detect_faces(photo)
    assert face.confidence > 0.99 and 80 < face.size < 130
    left_eye, right_eye, nose, mouth_left, mouth_right = face.landmarks
    assert left_eye[0] < nose[0] < right_eye[0] and mouth_left[0] < mouth_right[0]
    assert max(left_eye[1], right_eye[1]) < nose[1] < min(mouth_left[1], mouth_right[1])
    x0, y0, x1, y1 = face.box
    assert ((face.landmarks >= [x0, y0]) & (face.landmarks <= [x1, y1])).all()


def test_large_photos_give_the_same_face_in_their_pixels(photo):
    (small,) = fd.detect_faces(photo)
    (large,) = fd.detect_faces(cv2.resize(photo, (2048, 2048)))
    np.testing.assert_allclose(large.landmarks, (small.landmarks + 0.5) * 4 - 0.5, atol=4 * 3)


def test_min_face_and_min_confidence_filter(photo):
    assert fd.detect_faces(photo, min_face=150) == []
    assert fd.detect_faces(photo, min_confidence=1.0) == []
    assert len(fd.detect_faces(cv2.cvtColor(photo, cv2.COLOR_BGR2GRAY))) == 1


def test_a_tilted_face_is_found_by_the_second_look(photo):
    turn = cv2.getRotationMatrix2D((224, 118), -30, 1.0)
    (face,) = fd.detect_faces(cv2.warpAffine(photo, turn, (512, 512), borderMode=cv2.BORDER_REFLECT))
    (upright,) = fd.detect_faces(photo)
    expected = upright.landmarks @ turn[:, :2].T + turn[:, 2]
    assert np.abs(face.landmarks - expected).max() < 8


@pytest.mark.parametrize("shape", [(1, 1), (12, 12), (19, 300), (21, 21), (30, 3000), (3000, 25), (40, 40)])
def test_photos_too_small_or_thin_for_a_face_give_none(shape):
    assert fd.detect_faces(np.full((*shape, 3), 120, np.uint8), min_face=12) == []


def test_the_first_stages_pass_on_tilted_faces_for_the_last_to_judge(real_data, monkeypatch):
    # An LFW face turned by 30 degrees: mtcnn's own PNet/RNet thresholds drop it before ONet sees it.
    scene, _, _, _ = tilted_scene(real_data, "Cate_Blanchett_0003", -30)
    (face,) = fd.detect_faces(scene)
    assert np.linalg.norm(np.subtract(face.centre, [320, 240])) < 40 and face.confidence >= fd.DEFAULT_MIN_CONFIDENCE
    monkeypatch.setattr(fd, "PNET_THRESHOLD", 0.6)
    monkeypatch.setattr(fd, "RNET_THRESHOLD", 0.7)
    assert fd.detect_faces(scene) == []


def test_tilted_finds_a_face_the_upright_search_misses_with_its_landmarks(real_data):
    scene, _, picture, turn = tilted_scene(real_data, "Alice_Fisher_0001", 28)
    assert fd.detect_faces(scene) == []
    (face,) = fd.detect_faces(scene, tilted=True)
    (upright,) = fd.detect_faces(picture, min_face=fd.MTCNN_MIN_FACE)
    expected = upright.landmarks @ turn[:, :2].T + turn[:, 2]
    assert face.confidence >= fd.TURNED_CONFIDENCE and np.abs(face.landmarks - expected).max() < 8


def test_tilted_keeps_a_face_found_upright_once(photo):
    (upright,) = fd.detect_faces(photo)
    (face,) = fd.detect_faces(photo, tilted=True)
    np.testing.assert_array_equal(face.landmarks, upright.landmarks)


def test_turned_passes_map_faces_back_and_drop_those_off_the_photo(monkeypatch):
    """MTCNN replaced by faces placed on the turned canvas, one at its centre and one in a corner (the
    replicated border): the centre one, seen again in a second look, lands on the photo's centre;
    the corner one is dropped, and so is the other pass's centre face, the same face."""
    calls = []

    def fake_mtcnn_faces(images, min_confidence):
        calls.append([image.shape[:2] for image in images])
        found = []
        for image in images:
            height, width = image.shape[:2]
            centre, corner = np.array([(width - 1) / 2, (height - 1) / 2]), np.array([5.0, 5.0])
            if image.shape[:2] == (fd.SECOND_LOOK_SIDE,) * 2:
                points = [np.array([width / 2, height / 2])]  # the point a look turns about
            else:
                points = [] if len(calls) == 1 else [centre, corner]
            found.append([fd.Face((*(point - 10), *(point + 10)), 0.995, np.tile(point, (5, 1))) for point in points])
        return found

    monkeypatch.setattr(fd, "mtcnn_faces", fake_mtcnn_faces)
    (face,) = fd.detect_faces(np.full((480, 640, 3), 120, np.uint8), tilted=True)
    np.testing.assert_allclose(face.centre, (319.5, 239.5), atol=1)
    np.testing.assert_allclose(face.landmarks, np.tile([319.5, 239.5], (5, 1)), atol=1)
    # Upright at 256x341 (MIN_DETECTION_SIDE); both passes in one batch, each at the scale where an
    # 80-pixel face (TURNED_MIN_FACE) is 20 (160x120), turned 25 degrees on a 196x176 canvas; then
    # the second looks at the two centre candidates in one batch (the corner ones are off the photo).
    assert calls == [[(256, 341)], [(176, 196)] * 2, [(fd.SECOND_LOOK_SIDE,) * 2] * 2]


def test_a_candidate_on_a_face_already_found_gets_no_second_look(monkeypatch):
    """An unsure candidate off-centre on a sure face would be that face again after its second look;
    one elsewhere gets its look, and is kept once although two candidates lead to it."""
    sure = fd.Face((100, 100, 200, 200), 0.999, np.tile([150.0, 150.0], (5, 1)))
    on_it = fd.Face((110, 80, 190, 160), 0.7, np.tile([150.0, 120.0], (5, 1)))
    elsewhere = [fd.Face((300 + d, 100, 380 + d, 180), 0.6, np.tile([340.0 + d, 140.0], (5, 1))) for d in (0, 5)]
    looked = []

    def fake_looks(rgb, candidates):
        looked.extend(candidate for candidate, _ in candidates)
        return [fd.Face((300, 100, 380, 180), 0.99, np.tile([340.0, 140.0], (5, 1))) for _ in candidates]

    monkeypatch.setattr(fd, "mtcnn_faces", lambda images, min_confidence: [[sure, on_it, *elsewhere]])
    monkeypatch.setattr(fd, "looks", fake_looks)
    faces = fd.detect_faces(np.full((256, 512, 3), 120, np.uint8))
    assert [face.confidence for face in faces] == [0.999, 0.99]
    assert on_it not in looked and elsewhere[0] in looked and elsewhere[1] in looked


def test_a_face_is_found_once_not_again_by_the_second_look_of_an_off_centre_box(real_data):
    """Elizabeth_Hurley_0005 enlarged to 160 pixels on a gray canvas: MTCNN also gives an unsure box
    on her forehead, whose second look used to find her face a second time."""
    picture = cv2.imread(str(real_data / "inputs" / "Elizabeth_Hurley_0005.jpg"), cv2.IMREAD_GRAYSCALE)
    canvas = np.full((288, 288), 120, np.uint8)
    canvas[64:224, 64:224] = cv2.resize(picture, (160, 160), interpolation=cv2.INTER_LINEAR)
    assert fd.detection_scale(288, 288, fd.DEFAULT_MIN_FACE) == pytest.approx(256 / 288)
    rgb = cv2.cvtColor(cv2.resize(canvas, (256, 256), interpolation=cv2.INTER_AREA), cv2.COLOR_GRAY2RGB)
    (found,) = fd.mtcnn_faces([rgb], fd.CANDIDATE_CONFIDENCE)
    sure = [face for face in found if face.confidence >= fd.DEFAULT_MIN_CONFIDENCE]
    assert len(sure) == 1 and any(fd.on_a_face(face, sure) for face in found if face not in sure)
    assert len(fd.detect_faces(canvas)) == 1


def test_a_batch_finds_what_each_image_finds_alone(photo):
    """mtcnn_faces on a list: one list of faces per image, as if each had been searched alone."""
    rgb = cv2.cvtColor(cv2.resize(photo, (256, 256)), cv2.COLOR_BGR2RGB)
    flipped, blank = rgb[:, ::-1].copy(), np.full_like(rgb, 120)
    alone = [fd.mtcnn_faces([image], 0.9)[0] for image in (rgb, blank, flipped)]
    together = fd.mtcnn_faces([rgb, blank, flipped], 0.9)
    assert [len(faces) for faces in together] == [1, 0, 1]
    for faces, expected in zip(together, alone):
        for face, other in zip(faces, expected):
            np.testing.assert_allclose(face.landmarks, other.landmarks, atol=1e-3)
            assert face.confidence == pytest.approx(other.confidence, abs=1e-5)
