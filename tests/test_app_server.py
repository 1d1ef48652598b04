"""app.py served for real: the API with gradio_client, and the page in Debian's Chromium driven by Playwright
(a photo, bad uploads, and the live webcam fed by Chromium's fake camera). One server for the module.

Set DEMO_SCREENSHOT=docs/demo_page.png to keep the page's screenshot (the README's picture of the demo).
"""
import os
import shutil
import time
import urllib.request

import cv2
import numpy as np
import pytest

from demo.process import DemoProcess
from faces.photo_outputs import overlay_image
import infer
from tests.test_demo_uploads import png_of_zeros

from conftest import ROOT, user_environment

ASTRONAUT = ROOT / "docs" / "astronaut.png"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium as root in a closed network: no sandbox, and none of its background calls home.
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"]
START_SECONDS = 300
RESULT_MS = 120_000


@pytest.fixture(scope="module")
def server():
    try:
        running = DemoProcess(env=user_environment(), start_seconds=START_SECONDS)
    except RuntimeError as error:
        pytest.fail(str(error))
    yield running
    status = running.stop()
    assert status == 0, "".join(running.stderr)[-2000:]
    assert "Traceback" not in "".join(running.stderr), "".join(running.stderr)[-4000:]


@pytest.fixture(scope="module")
def client(server):
    from gradio_client import Client
    return Client(server.url, verbose=False)


@pytest.fixture(scope="module")
def expected():
    """The astronaut's mask and overlay (BGR) from infer.segment_faces in this process."""
    photo = cv2.imread(str(ASTRONAUT))
    mask, faces = infer.segment_faces(photo)
    return mask, overlay_image(photo, mask, faces)


def assert_same_overlay(image_bgr, expected_overlay):
    assert image_bgr.shape == expected_overlay.shape
    assert np.mean(np.any(image_bgr != expected_overlay, axis=-1)) < 1e-3


def test_starting_prints_the_address(server):
    assert f"serving the demo on http://127.0.0.1:{server.port} (face, face + hair)" in "".join(server.stdout)


def test_api_segment_gives_the_overlay_then_the_mask_png(client, expected):
    from gradio_client import handle_file
    overlay, mask_png, faces_json, summary = client.predict(handle_file(str(ASTRONAUT)), api_name="/segment")
    mask, expected_overlay = expected
    assert_same_overlay(cv2.imread(overlay), expected_overlay)
    assert mask_png.endswith("astronaut_mask.png") and faces_json.endswith("astronaut_faces.json")
    written = cv2.imread(mask_png, cv2.IMREAD_UNCHANGED)
    assert written.dtype == np.uint8 and set(np.unique(written)) == {0, 255}
    assert np.mean(written != mask * 255) < 1e-3
    assert summary.startswith("1 face found in ")


def test_api_face_hair_model(client):
    from gradio_client import handle_file
    _, mask_png, _, summary = client.predict(handle_file(str(ASTRONAUT)), "face + hair", True, False,
                                             api_name="/segment")
    classes = cv2.imread(mask_png, cv2.IMREAD_UNCHANGED)
    assert set(np.unique(classes)) == {0, 1, 2}
    assert np.count_nonzero(classes == 2) > 0.02 * classes.size  # her hair
    assert summary.startswith("1 face found in ")


def bad_uploads(folder):
    """(file, the sentence the page must answer it with) for each kind of bad upload."""
    (folder / "text.jpg").write_text("not a photo at all\n")
    (folder / "empty.jpg").write_bytes(b"")
    ok, jpeg = cv2.imencode(".jpg", cv2.imread(str(ASTRONAUT)))
    (folder / "cut.jpg").write_bytes(jpeg.tobytes()[:len(jpeg) // 2])
    cv2.imwrite(str(folder / "dot.png"), np.zeros((1, 1, 3), np.uint8))
    png_of_zeros(folder / "huge.png", 30000, 30000)
    assert ok
    return [(folder / "text.jpg", "text.jpg is not an image: upload a photo (JPEG, PNG, BMP, WebP or TIFF)."),
            (folder / "empty.jpg", "empty.jpg is empty: upload a photo (JPEG, PNG, BMP, WebP or TIFF)."),
            (folder / "cut.jpg", "cut.jpg cannot be read: it ends before its end-of-image marker (truncated); "
                                 "re-export or re-download it."),
            (folder / "dot.png", "dot.png is 1x1 pixels, too small to hold a face: upload a photo at least 12 pixels "
                                 "on each side."),
            (folder / "huge.png", "huge.png is 30000x30000 pixels, more than the 50 megapixels this page takes: "
                                  "resize it, or run infer.py on it.")]


def test_bad_uploads_get_one_sentence_and_the_next_photo_is_served(server, client, expected, tmp_path):
    from gradio_client import handle_file
    from gradio_client.exceptions import AppError
    for path, sentence in bad_uploads(tmp_path):
        with pytest.raises(AppError) as caught:
            client.predict(handle_file(str(path)), api_name="/segment")
        assert str(caught.value) == sentence
        overlay, _, _, _ = client.predict(handle_file(str(ASTRONAUT)), api_name="/segment")
        assert_same_overlay(cv2.imread(overlay), expected[1])
    assert server.process.poll() is None


# ---------------------------------------------------------------------------------------------
# The page in a real browser
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def chromium():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail(f"no Chromium at {CHROMIUM}: .ci/run installs Debian's chromium package")
        pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright
    with sync_playwright() as playwright:
        yield playwright


def open_page(chromium, server, extra_flags=()):
    """(browser, page, hosts the page asked for) with the demo loaded."""
    browser = chromium.chromium.launch(executable_path=CHROMIUM, args=[*CHROMIUM_FLAGS, *extra_flags])
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    context.grant_permissions(["camera"], origin=server.url.rstrip("/"))
    page = context.new_page()
    hosts = set()
    page.on("request", lambda request: hosts.add(request.url.split("/")[2]))
    page.goto(server.url, wait_until="load")
    page.wait_for_selector("#segment")
    return browser, page, hosts


def image_of(page, selector, after=None):
    """The image an <img> of the page shows, as the browser fetched it (BGR); waits for a new one."""
    page.wait_for_function("""([selector, after]) => { const img = document.querySelector(selector);
                              return img && img.src && img.src !== after; }""", arg=[selector, after or ""],
                           timeout=RESULT_MS)
    src = page.locator(selector).get_attribute("src")
    with urllib.request.urlopen(src, timeout=30) as answer:
        return cv2.imdecode(np.frombuffer(answer.read(), np.uint8), cv2.IMREAD_COLOR), src


def test_page_segments_an_uploaded_photo(chromium, server, expected, tmp_path):
    browser, page, hosts = open_page(chromium, server)
    try:
        page.locator("#photo input[type=file]").set_input_files(str(ASTRONAUT))
        page.locator("#segment").click()
        overlay, _ = image_of(page, "#overlay img")
        mask, expected_overlay = expected
        assert_same_overlay(overlay, expected_overlay)
        # The tint lies on the face the pipeline finds, and nowhere else but the box.
        changed = np.any(overlay != cv2.imread(str(ASTRONAUT)), axis=-1)
        assert changed[mask > 0].mean() > 0.95 and changed[mask == 0].mean() < 0.01
        page.wait_for_function("() => document.querySelector('#summary textarea').value.includes('face')")
        assert page.locator("#summary textarea").input_value().startswith("1 face found in ")
        page.locator("#faces-file a[download='astronaut_faces.json']").wait_for(timeout=RESULT_MS)
        link = page.locator("#mask-file a[download='astronaut_mask.png']")
        link.wait_for(timeout=RESULT_MS)
        with urllib.request.urlopen(link.get_attribute("href"), timeout=30) as answer:
            downloaded = cv2.imdecode(np.frombuffer(answer.read(), np.uint8), cv2.IMREAD_UNCHANGED)
        assert np.mean(downloaded != mask * 255) < 1e-3
        page.screenshot(path=os.environ.get("DEMO_SCREENSHOT", str(tmp_path / "demo_page.png")), full_page=True)
    finally:
        browser.close()
    assert hosts == {f"127.0.0.1:{server.port}"}  # nothing fetched from the internet


def test_page_says_what_is_wrong_with_a_bad_upload_and_serves_the_next(chromium, server, expected, tmp_path):
    browser, page, _ = open_page(chromium, server)
    try:
        for path, sentence in bad_uploads(tmp_path)[:4]:  # the huge one only through the API: a browser decodes it
            page.locator("#photo input[type=file]").set_input_files(str(path))
            page.locator("#segment").click()
            page.get_by_text(sentence).first.wait_for(timeout=RESULT_MS)
            page.reload()
            page.wait_for_selector("#segment")
        page.locator("#photo input[type=file]").set_input_files(str(ASTRONAUT))
        page.locator("#segment").click()
        overlay, _ = image_of(page, "#overlay img")
        assert_same_overlay(overlay, expected[1])
    finally:
        browser.close()


def fake_camera_clip(path, frames=20):
    """A Y4M clip (Chromium's fake camera format) of the astronaut on a gray wall; (path, one frame as BGR,
    as the camera sends it)."""
    height, width = 480, 640
    frame = np.full((height, width, 3), 90, np.uint8)
    frame[:, 64:576] = cv2.imread(str(ASTRONAUT))[16:496]
    yuv = cv2.cvtColor(frame, cv2.COLOR_BGR2YUV_I420)
    with open(path, "wb") as clip:
        clip.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            clip.write(b"FRAME\n" + yuv.tobytes())
    return path, cv2.cvtColor(yuv, cv2.COLOR_YUV2BGR_I420)


def test_live_webcam_frames_come_back_masked(chromium, server, tmp_path):
    clip, frame = fake_camera_clip(tmp_path / "camera.y4m")
    frame = np.ascontiguousarray(frame[:, ::-1])  # Gradio mirrors the webcam, as a mirror would
    mask, _ = infer.segment_faces(frame)
    assert mask.sum() > 0.02 * mask.size
    browser, page, hosts = open_page(chromium, server, ["--use-fake-device-for-media-stream",
                                                         "--use-fake-ui-for-media-stream",
                                                         f"--use-file-for-fake-video-capture={clip}"])
    try:
        page.get_by_role("tab", name="Live webcam").click()
        page.get_by_text("Click to Access Webcam").click()
        page.locator("#camera button[aria-label='capture photo']").click()
        live, _ = image_of(page, "#live img")
        statuses = set()
        deadline = time.monotonic() + RESULT_MS / 1000
        while len(statuses) < 3 and time.monotonic() < deadline:  # a stream of answers, not one
            status = page.locator("#live-status textarea").input_value()
            if status:
                statuses.add(status)
            page.wait_for_timeout(100)
        assert len(statuses) == 3
        # Tinted: the face's pixels greener than the camera's frame, the rest as it was (JPEG aside).
        live = live.astype(np.int16)
        greener = (live[..., 1] - frame[..., 1]) - (live[..., 2] - frame[..., 2])
        face = mask > 0
        assert greener[face].mean() > 40 and np.abs(greener[~face]).mean() < 8
        assert all(status.startswith("1 face found in ") for status in statuses)
        assert any(status.endswith(" frames/s") for status in statuses)  # the rate, from the second answer on
        page.locator("#camera button[aria-label='capture photo']").click()  # Stop: the stream ends as a visitor ends it
        page.wait_for_timeout(1000)
    finally:
        browser.close()
    assert hosts == {f"127.0.0.1:{server.port}"}
