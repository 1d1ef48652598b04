"""runs/export.py on tiny runs trained once per module on synthetic 64x64 faces: the SavedModel, the
TFLite models and model.onnx (in ONNX Runtime) give the run's own predictions, for several kinds of
description; and model.onnx of pretrained/ against its SavedModel on real faces."""
import json
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import convolutional_autoencoder as ca
from runs.config import UsageError
from runs import export
from conftest import ROOT, make_face_folder
from data_folder import load_folder
from runs.evaluation import load_trained, predict
from runs.metrics import predicted_classes

# Two pools, so the first one has a skip link (the last pool never has one).
ARCH = "C3,8,2M2C3,8,1M2"
RUNS = {
    "face, tied, skips, flip averaging": ["--tta", "flip"],
    "3 classes, untied, no skips, no standardisation": ["--targets", "classes3", "--untied", "--no-skips",
                                                        "--no-standardization", "--tta", "flip"],
    "face+hair, linear output, no batch norm": ["--targets", "face_hair", "--linear-output", "--no-batch-norm"],
}


@pytest.fixture(scope="module")
def faces(tmp_path_factory):
    return make_face_folder(tmp_path_factory.mktemp("data") / "faces", persons=10, size=64)


def train_tiny(faces, out, switches):
    assert ca.main(["--data", str(faces), "--arch", ARCH, "--max-steps", "2", "--batch-size", "4",
                    "--eval-every", "2", "--out", str(out), *switches]) == 0
    (run,) = (out / ARCH).iterdir()
    return run


@pytest.fixture(scope="module", params=list(RUNS))
def exported(request, faces, tmp_path_factory):
    """(run folder, export folder, uint8 test images [N, 64, 64, 1]) of one kind of run."""
    tmp = tmp_path_factory.mktemp("run")
    run = train_tiny(faces, tmp / "save", RUNS[request.param])
    export.export(run, tmp / "exported", log=lambda message: None, onnx=True)
    _, images, _ = load_folder(faces)
    return run, tmp / "exported", images[:6, ..., None]


def run_predictions(run, images):
    model, config = load_trained(run, "fp32")
    return predict(model, tf.cast(images, tf.float32) / 255.0, config["tta"]).numpy()


def test_saved_model_gives_the_run_s_probabilities_and_classes(exported):
    run, folder, images = exported
    # Loaded in one expression as the export's README shows: the signature keeps its variables alive.
    serve = tf.saved_model.load(str(folder)).signatures["serving_default"]
    out = serve(images=tf.constant(images))
    expected = run_predictions(run, images)
    np.testing.assert_allclose(out["probabilities"].numpy(), expected, atol=1e-6)
    assert out["classes"].dtype == tf.uint8
    np.testing.assert_array_equal(out["classes"].numpy(), predicted_classes(expected).numpy())


def test_float_tflite_gives_the_run_s_probabilities_one_image_at_a_time(exported):
    run, folder, images = exported
    run_tflite = export.tflite_runner(folder / export.FLOAT_TFLITE)
    expected = run_predictions(run, images)
    for image, probabilities in zip(images, expected):
        out = run_tflite(images=image[None])
        assert out["classes"].dtype == np.uint8 and out["classes"].shape == (1, 64, 64)
        np.testing.assert_allclose(out["probabilities"][0], probabilities, atol=1e-4)


def test_onnx_gives_the_run_s_probabilities_and_classes_for_any_batch(exported):
    import onnxruntime
    run, folder, images = exported
    session = onnxruntime.InferenceSession(str(folder / export.ONNX_FILE), providers=["CPUExecutionProvider"])
    [given] = session.get_inputs()
    assert (given.name, given.type, given.shape) == ("images", "tensor(uint8)", ["N", 64, 64, 1])
    expected = run_predictions(run, images)
    for batch in (1, len(images)):
        probabilities, classes = session.run(["probabilities", "classes"], {"images": images[:batch]})
        np.testing.assert_allclose(probabilities, expected[:batch], atol=1e-5)
        assert classes.dtype == np.uint8 and classes.shape == (batch, 64, 64)
        # Pixels at the threshold itself may fall either way in another runtime's arithmetic.
        assert (classes != predicted_classes(expected[:batch]).numpy()).mean() < 1e-3


def test_an_onnx_only_folder_runs_in_onnx_runtime(exported, tmp_path):
    run, folder, images = exported
    (tmp_path / "onnx").mkdir()
    (tmp_path / "onnx" / export.ONNX_FILE).write_bytes((folder / export.ONNX_FILE).read_bytes())
    assert export.is_export(tmp_path / "onnx")
    forward, size, num_classes = export.load_exported(tmp_path / "onnx")
    assert size == (64, 64) and num_classes == load_trained(run, "fp32")[0].num_classes
    np.testing.assert_allclose(forward(images).numpy(), run_predictions(run, images), atol=1e-5)


def test_load_exported_gives_infer_a_batched_forward_pass(exported):
    run, folder, images = exported
    forward, size, num_classes = export.load_exported(folder)
    model, _ = load_trained(run, "fp32")
    assert size == (64, 64) and num_classes == model.num_classes
    np.testing.assert_allclose(forward(images).numpy(), run_predictions(run, images), atol=1e-6)
    assert forward(images[:1]).shape == (1, 64, 64, num_classes)
    assert export.is_export(folder) and not export.is_export(run) and not export.is_export(folder / "nothing")
    with pytest.raises(UsageError, match="holds no saved_model.pb"):
        export.load_exported(run)


def test_readme_names_input_outputs_and_both_ways_to_call(exported):
    run, folder, _ = exported
    text = (folder / "README.md").read_text()
    assert "[N, 64, 64, 1]" in text and "[1, 64, 64, 1]" in text
    assert 'tf.saved_model.load("path/to/this/folder").signatures["serving_default"]' in text
    assert "get_signature_runner" in text and export.INT8_TFLITE not in text
    assert 'onnxruntime.InferenceSession("path/to/this/folder/model.onnx")' in text and "[N, 64, 64, 1]" in text
    model, config = load_trained(run, "fp32")
    assert ("per-image standardisation" in text) == model.per_image_standardization
    assert ("mirrored image" in text) == (config["tta"] == "flip")
    if model.num_classes == 3:
        assert "0 background, 1 face, 2 hair" in text


@pytest.fixture(scope="module")
def face_run(faces, tmp_path_factory):
    return train_tiny(faces, tmp_path_factory.mktemp("face") / "save", ["--tta", "flip"])


def test_int8_model_computes_in_int8_and_stays_near_the_float_model(face_run, faces, tmp_path):
    files = export.export(face_run, tmp_path / "exported", int8=True, calibration_images=8, log=lambda m: None)
    assert export.INT8_TFLITE in files and export.FLOAT_TFLITE in files
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(tmp_path / "exported" / export.INT8_TFLITE))
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    convolutions = [op for op in interpreter._get_ops_details() if op["op_name"] in ("CONV_2D", "TRANSPOSE_CONV")]
    assert convolutions
    for op in convolutions:
        assert all(tensors[i]["dtype"] in (np.int8, np.int32) for i in op["inputs"] if i >= 0), op
    _, images, _ = load_folder(faces)
    run_int8 = export.tflite_runner(tmp_path / "exported" / export.INT8_TFLITE)
    expected = run_predictions(face_run, images[:4, ..., None])
    for image, probabilities in zip(images, expected):
        out = run_int8(images=image[None, ..., None])
        assert out["probabilities"].dtype == np.float32 and out["classes"].dtype == np.uint8
        assert np.abs(out["probabilities"][0] - probabilities).mean() < 0.05
    assert "model_int8.tflite" in (tmp_path / "exported" / "README.md").read_text()


@pytest.fixture(scope="module")
def faces128(tmp_path_factory):
    return make_face_folder(tmp_path_factory.mktemp("data128") / "faces", persons=10, size=128)


# Keeping every intermediate tensor is what the test reads; LiteRT warns that it is for debugging.
@pytest.mark.filterwarnings("ignore:.*experimental_preserve_all_tensors:UserWarning")
def test_int8_model_takes_the_standardisation_s_mean_in_float32(faces128, tmp_path):
    # In int8, TFLite's MEAN over a 128x128 image is many quantisation steps off (0.69 points of pixel
    # accuracy for pretrained/); export.FLOAT_OPS keeps it in float32, every convolution in int8.
    run = train_tiny(faces128, tmp_path / "save", ["--tta", "flip"])
    export.export(run, tmp_path / "exported", int8=True, calibration_images=8, log=lambda m: None)
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(model_path=str(tmp_path / "exported" / export.INT8_TFLITE),
                              experimental_preserve_all_tensors=True)
    interpreter.allocate_tensors()
    tensors = {t["index"]: t for t in interpreter.get_tensor_details()}
    ops = interpreter._get_ops_details()
    convolutions = [op for op in ops if op["op_name"] in ("CONV_2D", "TRANSPOSE_CONV")]
    assert convolutions and all(tensors[op["outputs"][0]]["dtype"] == np.int8 for op in convolutions)
    # Per image: the mean of the pixels, then the mean of the squared deviations; image and mirror.
    means = [op["outputs"][0] for op in ops if op["op_name"] == "MEAN"]
    assert len(means) == 4 and all(tensors[mean]["dtype"] == np.float32 for mean in means)
    _, images, _ = load_folder(faces128)
    for image in images[:4]:
        interpreter.set_tensor(interpreter.get_input_details()[0]["index"], image[None, ..., None])
        interpreter.invoke()
        pixels = image / 255.0
        computed = sorted(float(interpreter.get_tensor(mean).squeeze()) for mean in means)
        expected = sorted([pixels.mean()] * 2 + [pixels.var()] * 2)
        np.testing.assert_allclose(computed, expected, rtol=0.02)


def test_calibration_images_are_spread_over_the_training_split(face_run, faces):
    _, config = load_trained(face_run, "fp32")
    split = json.loads((face_run / "split.json").read_text())
    names, images, _ = load_folder(faces)
    train = images[[names.index(name) for name in split["train"]]]
    chosen = export.training_images(face_run, config, None, 3, (64, 64))
    np.testing.assert_array_equal(chosen, train[[0, (len(train) - 1) // 2, len(train) - 1]])
    assert len(export.training_images(face_run, config, str(faces), 1000, (64, 64))) == len(train)


def test_not_a_run_folder_exits_2_with_one_sentence(tmp_path):
    (tmp_path / "photos").mkdir()
    result = subprocess.run([sys.executable, str(ROOT / "convolutional_autoencoder.py"), "export",
                             "--model-dir", str(tmp_path / "photos"), "--out", str(tmp_path / "exported")],
                            capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    # TensorFlow's own start-up lines come before it.
    (error,) = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert error == result.stderr.splitlines()[-1] and f"{tmp_path / 'photos'} has no config.json" in error
    assert not (tmp_path / "exported").exists()


def test_non_empty_out_folder_is_refused_and_left_alone(face_run, tmp_path, capsys):
    (tmp_path / "exported").mkdir()
    (tmp_path / "exported" / "mine.txt").write_text("keep")
    assert ca.main(["export", "--model-dir", str(face_run), "--out", str(tmp_path / "exported")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--out {tmp_path / 'exported'} already exists" in err
    assert [p.name for p in (tmp_path / "exported").iterdir()] == ["mine.txt"]


def test_empty_out_folder_is_filled(face_run, tmp_path, capsys):
    (tmp_path / "exported").mkdir()
    assert ca.main(["export", "--model-dir", str(face_run), "--out", str(tmp_path / "exported")]) == 0
    assert export.is_export(tmp_path / "exported")
    assert capsys.readouterr().out.startswith(f"exported {face_run} to {tmp_path / 'exported'}/: README.md")


def test_missing_calibration_data_is_named_before_anything_is_written(face_run, tmp_path, capsys):
    assert ca.main(["export", "--model-dir", str(face_run), "--out", str(tmp_path / "exported"), "--int8",
                    "--data", str(tmp_path / "no_data")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"data folder {tmp_path / 'no_data'} does not exist" in err
    assert list(tmp_path.iterdir()) == []


def test_export_failing_halfway_leaves_nothing_behind(face_run, tmp_path, monkeypatch):
    def fail(*args):
        raise RuntimeError("conversion failed")

    monkeypatch.setattr(export, "to_tflite", fail)  # after the SavedModel was written
    with pytest.raises(RuntimeError):
        export.export(face_run, tmp_path / "exported")
    assert list(tmp_path.iterdir()) == []


def test_out_that_cannot_be_made_is_a_usage_error(face_run, tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(UsageError, match="cannot write the export beside"):
        export.export(face_run, tmp_path / "file" / "exported")


def test_infer_segments_with_an_export_as_with_its_run_folder(exported, tmp_path, capsys):
    import cv2

    import infer
    run, folder, images = exported
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, image in enumerate(images):
        cv2.imwrite(str(photos / f"{i}.png"), image[..., 0])
    tta = json.loads((run / "config.json").read_text())["tta"]
    assert infer.main([str(photos), "--model-dir", str(run), "--whole-image", "--tta", tta, "--precision", "fp32",
                       "--out", str(tmp_path / "from_run")]) == 0
    assert infer.main([str(photos), "--model-dir", str(folder), "--whole-image", "--out", str(tmp_path / "from_export")]) == 0
    for i in range(len(images)):
        from_run, from_export = (cv2.imread(str(tmp_path / kind / f"{i}_mask.png"), cv2.IMREAD_UNCHANGED)
                                 for kind in ("from_run", "from_export"))
        assert np.array_equal(from_run, from_export), i
    # The export holds its run's flip averaging already: asking for it again is refused.
    assert infer.main([str(photos), "--model-dir", str(folder), "--tta", "flip", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "drop --tta" in err


def test_infer_runs_an_onnx_only_export_in_every_mode(exported, tmp_path, capsys):
    import cv2

    import infer
    from faces import video_segmenter
    run, folder, images = exported
    onnx_only = tmp_path / "onnx"
    onnx_only.mkdir()
    (onnx_only / export.ONNX_FILE).write_bytes((folder / export.ONNX_FILE).read_bytes())
    photos = tmp_path / "photos"
    photos.mkdir()
    for i, image in enumerate(images):
        cv2.imwrite(str(photos / f"{i}.png"), image[..., 0])
    for mode in (["--whole-image"], []):
        for name, model_dir in (("saved", folder), ("onnx", onnx_only)):
            out = tmp_path / f"{name}{len(mode)}"
            assert infer.main([str(photos), "--model-dir", str(model_dir), *mode, "--out", str(out)]) == 0
        if mode:  # the synthetic faces are too small for MTCNN: the face mode writes empty masks for both
            printed = capsys.readouterr().out
            assert "precision: fp32 (an export: ONNX Runtime runs its model.onnx as exported)" in printed
        for i in range(len(images)):
            masks = [cv2.imread(str(tmp_path / f"{name}{len(mode)}" / f"{i}_mask.png"), cv2.IMREAD_UNCHANGED)
                     for name in ("saved", "onnx")]
            assert (masks[0] != masks[1]).mean() < 1e-3, i
    frame = cv2.cvtColor(cv2.resize(images[0, ..., 0], (160, 160)), cv2.COLOR_GRAY2BGR)
    mask, _ = infer.VideoSegmenter(onnx_only).step(frame)
    assert isinstance(infer.VideoSegmenter(onnx_only), video_segmenter.VideoSegmenter) and mask.shape == (160, 160)


def onnx_model(path, input_type, shape):
    """A one-Identity ONNX model taking `input_type` of `shape`, written to `path`."""
    import onnx
    from onnx import helper
    given = helper.make_tensor_value_info("x", input_type, shape)
    output = helper.make_tensor_value_info("probabilities", input_type, shape)
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["probabilities"])], "g", [given], [output])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(path))


NOT_IMAGE_BATCHES = [("FLOAT", ["N", 10]), ("FLOAT", ["N", 64, 64, 1]), ("UINT8", [1, 64, 64, 1]),
                     ("UINT8", ["N", 64, 64, 3])]


@pytest.mark.parametrize("input_type, shape", NOT_IMAGE_BATCHES)
def test_an_onnx_input_that_is_not_an_image_batch_is_refused_in_one_sentence(tmp_path, capsys, input_type, shape):
    import onnx

    import infer
    (tmp_path / "model").mkdir()
    onnx_model(tmp_path / "model" / export.ONNX_FILE, getattr(onnx.TensorProto, input_type), shape)
    (tmp_path / "photo.png").write_bytes(b"")
    assert infer.main([str(tmp_path / "photo.png"), "--model-dir", str(tmp_path / "model"), "--whole-image",
                       "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not a batch of uint8 grayscale images [N, H, W, 1]" in err
    assert str(tmp_path / "model" / export.ONNX_FILE) in err


def test_a_file_onnx_runtime_cannot_read_is_refused_in_one_sentence(tmp_path):
    (tmp_path / export.ONNX_FILE).write_bytes(b"not a model")
    with pytest.raises(UsageError, match="is not a model ONNX Runtime can load"):
        export.load_exported(tmp_path)


def test_missing_tf2onnx_is_one_sentence_and_nothing_is_written(face_run, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # import tf2onnx now raises ImportError
    assert ca.main(["export", "--model-dir", str(face_run), "--out", str(tmp_path / "exported"), "--onnx"]) == 2
    err = capsys.readouterr().err
    assert err == "error: --onnx needs the tf2onnx package: pip install tf2onnx (it is in requirements-dev.txt)\n"
    assert list(tmp_path.iterdir()) == []


def test_onnx_of_pretrained_gives_the_saved_model_s_outputs_on_real_faces(real_data, tmp_path):
    import onnxruntime
    files = export.export(ROOT / "pretrained", tmp_path / "exported", log=lambda message: None, onnx=True)
    assert export.ONNX_FILE in files
    split = json.loads((ROOT / "pretrained" / "split.json").read_text())
    images = np.stack([cv2_gray(real_data / "inputs" / f"{name}.jpg") for name in split["test"][:48]])[..., None]
    serve = tf.saved_model.load(str(tmp_path / "exported")).signatures["serving_default"]
    expected = serve(images=tf.constant(images))
    session = onnxruntime.InferenceSession(str(tmp_path / "exported" / export.ONNX_FILE),
                                           providers=["CPUExecutionProvider"])
    probabilities, classes = session.run(["probabilities", "classes"], {"images": images})
    assert np.abs(probabilities - expected["probabilities"].numpy()).max() < 1e-3
    assert (classes != expected["classes"].numpy()).mean() < 1e-4


def cv2_gray(path):
    import cv2
    return cv2.imread(str(path), cv2.IMREAD_GRAYSCALE)
