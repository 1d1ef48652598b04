"""The page: a photo tab (upload, paste or webcam snapshot; overlay, downloads, examples), a live webcam
tab, and the options both share. The photo button is also the API endpoint `/segment`.

Gradio's own reading of an upload is switched off (`preprocess=False`): the page reads the file itself
(uploads.py), so a bad upload gets the page's one sentence, not a decoder's exception.
"""
from pathlib import Path

import gradio as gr

from demo.segmentation import LiveView
from demo.uploads import UploadError, read_upload

ROOT = Path(__file__).resolve().parents[1]
# (photo, whole-image mode, label): the last is a test-split LFW picture, framed as the model was trained.
EXAMPLES = (("docs/astronaut.png", False, "a portrait (NASA, public domain)"),
            ("docs/group.png", False, "four unseen LFW faces, scaled and tilted"),
            ("data128_128/inputs/Aaron_Sorkin_0001.jpg", True, "an unseen LFW picture, whole-image mode"))
LIVE_FRAME_SECONDS = 0.04  # how often the browser sends a frame; while one is segmented, newer ones replace it
LIVE_SECONDS = 600  # one visitor's stream, before the camera must be started again
LEGEND = ('<span style="color:#00c000">&#9632;</span> face &nbsp; <span style="color:#e00000">&#9632;</span> hair '
          '(face + hair model) &nbsp; <span style="color:#d0d000">&#9633;</span> each face found, numbered')
ABOUT = """# Face segmentation
A convolutional autoencoder trained on the faces of LFW (part labels) marks the face, and with the
face + hair model the hair, of every face found in a photo. Everything runs on this machine."""


def build(segmenter):
    """The gr.Blocks page around a demo.segmentation.Segmenter."""
    labels = segmenter.labels
    with gr.Blocks(title="Face segmentation", analytics_enabled=False) as page:
        gr.Markdown(ABOUT)
        with gr.Row():
            model = gr.Radio(labels, value=labels[0], label="Model")
            tilted = gr.Checkbox(True, label="Also search for tilted faces")
            whole = gr.Checkbox(False, label="Whole image (for photos framed like LFW)")
        gr.HTML(LEGEND)
        with gr.Tab("Photo"):
            with gr.Row():
                photo = gr.Image(sources=["upload", "clipboard", "webcam"], type="filepath", format="png",
                                 label="Photo", elem_id="photo")
                overlay = gr.Image(label="Faces", interactive=False, elem_id="overlay")
            button = gr.Button("Segment", variant="primary", elem_id="segment")
            summary = gr.Textbox(label="Found", interactive=False, elem_id="summary")
            with gr.Row():
                mask_file = gr.File(label="Mask PNG (0/255 face; class ids 0/1/2 with face + hair)",
                                    elem_id="mask-file")
                faces_file = gr.File(label="Faces JSON (box, landmarks, confidence, mask area)", elem_id="faces-file")
            outputs = [overlay, mask_file, faces_file, summary]

            def segment(upload, label=labels[0], tilted_faces=True, whole_image=False):
                return photo_outputs(segmenter, upload, label, tilted_faces, whole_image)

            button.click(segment, [photo, model, tilted, whole], outputs, api_name="segment", preprocess=False,
                         concurrency_limit=2)
            examples = [[str(ROOT / path), labels[0], not whole, whole] for path, whole, _ in EXAMPLES]
            gr.Examples(examples, [photo, model, tilted, whole], outputs, segment, run_on_click=True, preprocess=False,
                        cache_examples=False, example_labels=[label for _, _, label in EXAMPLES])
        with gr.Tab("Live webcam"):
            gr.Markdown("Start the camera: each frame is segmented as it comes, as fast as this machine allows; "
                        "frames that arrive while one is being segmented are dropped, not queued.")
            with gr.Row():
                camera = gr.Image(sources=["webcam"], streaming=True, label="Camera", elem_id="camera")
                live = gr.Image(label="Faces, live", interactive=False, elem_id="live")
            live_status = gr.Textbox(label="Live", interactive=False, elem_id="live-status")
            view = gr.State()

            def live_frame(frame, label, tilted_faces, current):
                current = current or LiveView(segmenter)
                if frame is None:
                    return None, "", current
                overlay, status = current.frame(frame, label, tilted_faces)
                return current.frame_file(overlay), status, current

            camera.stream(live_frame, [camera, model, tilted, view], [live, live_status, view], api_name="live",
                          stream_every=LIVE_FRAME_SECONDS, time_limit=LIVE_SECONDS, concurrency_limit=4)
    return page


def photo_outputs(segmenter, upload, label, tilted_faces, whole_image):
    """The photo endpoint: (overlay, mask PNG path, faces JSON path, summary), or gr.Error with the sentence
    saying what is wrong with the upload."""
    if not upload:
        raise refusal("No photo yet: upload, paste or take one, then press Segment.")
    if label not in segmenter.labels:
        raise refusal(f"There is no model {label!r} here: choose one of {', '.join(segmenter.labels)}.")
    path, name = upload_path(upload)
    try:
        image = read_upload(path, name)
    except UploadError as error:
        raise refusal(f"{error}.") from None
    return segmenter.photo(image, name, label, tilted_faces, whole_image)


def refusal(sentence):
    """The error the page shows for a visitor's mistake; the server's log gets no traceback for it."""
    return gr.Error(sentence, print_exception=False)


def upload_path(upload):
    """(path on the server, name the user gave it) of an unprocessed image input."""
    if isinstance(upload, str):
        return upload, Path(upload).name
    return upload["path"], upload.get("orig_name") or Path(upload["path"]).name

