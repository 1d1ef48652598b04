"""Export a trained run as a SavedModel and TFLite models that load without this code.

`python convolutional_autoencoder.py export --model-dir pretrained --out exported/` makes OUT a
SavedModel folder (`saved_model.pb`, `variables/`) and adds `model.tflite` (float32), with --int8
`model_int8.tflite` (integer arithmetic but for FLOAT_OPS, calibrated on the run's training images),
with --onnx `model.onnx` (tf2onnx, for ONNX Runtime; tf2onnx is imported only then), and a README.md.
Every model takes uint8 grayscale images at the run's input size and does the rest in its graph:
scaling to [0, 1], per-image standardisation (when the run used it), the run's test-time flip
averaging, and the class map. `load_exported` reads an export back for segmenting photos, from the
SavedModel or, in a folder holding only `model.onnx`, with ONNX Runtime.
"""
import argparse
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import quiet_tensorflow  # before TensorFlow: it starts without its C++ start-up lines
import tensorflow as tf

from data_folder import CLASS_NAMES, DataError
from dataset import Dataset
from runs.config import UsageError, input_size, make_dataset
from runs.evaluation import load_trained, predict
from runs.metrics import predicted_classes

SIGNATURE = "serving_default"
FLOAT_TFLITE, INT8_TFLITE, ONNX_FILE = "model.tflite", "model_int8.tflite", "model.onnx"
# The opset tf2onnx 1.17 converts this graph to under TensorFlow 2.21; ONNX Runtime 1.20 and later run it.
ONNX_OPSET = 17
CALIBRATION_IMAGES = 200
# Ops the int8 model computes in float32. In int8, TFLite's MEAN over a whole image came out tens of
# quantisation steps off (tf.lite.experimental.QuantizationDebugger's layer statistics: the per-image
# standardisation's two means, every other op under half a step), and `benchmarks/export_check.py`
# scored int8 pretrained/ 0.69 points below float32; with the means in float32, 0.003. Two means of one
# image are a negligible share of the work. The debugger's selective quantisation also builds a
# numerically instrumented model it does not return: a few seconds more per export, once.
FLOAT_OPS = ["MEAN"]


class Serving(tf.Module):
    """A trained model behind one function: uint8 images [batch, H, W, 1] -> {"probabilities", "classes"}.

    `batch` None accepts any number of images (the SavedModel); TFLite gets a fixed batch of 1, so
    every shape in its graph is known when converting and the whole graph can run on XNNPACK.
    """

    def __init__(self, model, tta, size, batch=None):
        super().__init__(name="serving")
        self.model = model

        @tf.function(input_signature=[tf.TensorSpec([batch, *size, 1], tf.uint8, name="images")])
        def serve(images):
            probabilities = predict(model, tf.cast(images, tf.float32) / 255.0, tta)
            return {"probabilities": probabilities,
                    "classes": tf.cast(predicted_classes(probabilities), tf.uint8)}

        self.serve = serve


def export(model_dir, out, int8=False, data=None, calibration_images=CALIBRATION_IMAGES, log=print, onnx=False):
    """Write the export of the run in `model_dir` to the new or empty folder `out`; returns its files.

    Everything is written to a scratch folder beside `out` and moved there at the end, so a failed
    export leaves nothing behind.
    """
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise UsageError(f"--out {out} already exists and is not an empty folder: "
                            "pass a new folder or remove it first")
    onnx_converter = import_tf2onnx() if onnx else None
    model, config = load_trained(model_dir, "fp32")  # the export runs anywhere, so no bf16 casts inside
    size = input_size(config)
    model.check_size(*size)
    calibration = training_images(model_dir, config, data, calibration_images, size) if int8 else None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    except OSError as error:
        raise UsageError(f"cannot write the export beside {out} ({error.strerror}): pass another --out") from None
    try:
        staging.chmod(0o755)  # mkdtemp makes it private; the export is for others to read
        serving = Serving(model, config["tta"], size)
        tf.saved_model.save(serving, str(staging), signatures={SIGNATURE: serving.serve})
        (staging / FLOAT_TFLITE).write_bytes(to_tflite(model, config["tta"], size))
        if int8:
            log(f"calibrating the int8 model on {len(calibration)} training images")
            (staging / INT8_TFLITE).write_bytes(to_tflite(model, config["tta"], size, calibration))
        if onnx:
            (staging / ONNX_FILE).write_bytes(to_onnx(onnx_converter, serving))
        (staging / "README.md").write_text(readme(model_dir, config, model, size, int8, onnx))
        if out.exists():
            out.rmdir()
        staging.rename(out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return sorted(path.name for path in out.iterdir())


def training_images(model_dir, config, data, count, size):
    """`count` uint8 images [count, H, W] spread evenly over the run's training split (its split.json)."""
    split_file = Path(model_dir) / "split.json"
    if not split_file.is_file():
        raise UsageError(f"{model_dir} has no split.json, so its training images are unknown: "
                            "export without --int8 or pass a run folder written by training")
    if count < 1:
        raise UsageError(f"--calibration-images {count} must be at least 1")
    dataset = make_dataset({**config, "data": data or config["data"]}, Dataset.load_split(split_file),
                              augment=False)
    if tuple(dataset.image_shape) != size:
        raise UsageError(f"the images of {data or config['data']} are {dataset.image_shape[0]}x"
                            f"{dataset.image_shape[1]}, the model's input is {size[0]}x{size[1]}: "
                            "pass the data folder the run was trained on with --data")
    rows = np.unique(np.linspace(0, dataset.size("train") - 1, count).round().astype(int))
    return dataset.examples("train", rows)[0]


def to_tflite(model, tta, size, calibration=None):
    """The TFLite flatbuffer of a batch-1 Serving: float32, or with `calibration` images int8 (int8
    weights and activations, all ops but FLOAT_OPS; uint8 images in, float32 probabilities out as in the
    float model)."""
    serving = Serving(model, tta, size, batch=1)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([serving.serve.get_concrete_function()], serving)
    if calibration is not None:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ({"images": image[None, ..., None]} for image in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8, tf.lite.OpsSet.TFLITE_BUILTINS]
    with warnings.catch_warnings(), quiet_tensorflow.without_lines(quiet_tensorflow.converter_lines):
        # TensorFlow's calibrator runs its own deprecated tf.lite.Interpreter; the warning is not ours.
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated")
        if calibration is None:
            return converter.convert()
        # Selective quantisation, as TensorFlow's quantization debugger guide does it: every op in int8
        # except FLOAT_OPS, which get float32 inputs and outputs between (de)quantize ops.
        options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=FLOAT_OPS)
        return tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_options=options).get_nondebug_quantized_model()


def import_tf2onnx():
    """tf2onnx's converter, a requirement of `--onnx` only."""
    try:
        import tf2onnx
    except ImportError:
        raise UsageError("--onnx needs the tf2onnx package: pip install tf2onnx (it is in "
                         "requirements-dev.txt)") from None
    return tf2onnx.convert


def to_onnx(convert, serving):
    """The ONNX model of a Serving with any batch: its batch dimension is named N, as in the README."""
    proto, _ = convert.from_function(serving.serve, input_signature=serving.serve.input_signature, opset=ONNX_OPSET)
    for value in (*proto.graph.input, *proto.graph.output):
        value.type.tensor_type.shape.dim[0].dim_param = "N"
    return proto.SerializeToString()


def readme(model_dir, config, model, size, int8, onnx=False):
    classes = CLASS_NAMES[config["targets"]]
    height, width = size
    if model.num_classes == 1:
        probabilities = f"float32 [N, {height}, {width}, 1], the probability of {classes[1]} (sigmoid)"
        class_map = f"uint8 [N, {height}, {width}], 1 where that probability is >= 0.5, else 0"
    else:
        probabilities = (f"float32 [N, {height}, {width}, {model.num_classes}], softmax over "
                         f"{' / '.join(classes)}")
        class_map = (f"uint8 [N, {height}, {width}], the most probable class: "
                     + ", ".join(f"{i} {name}" for i, name in enumerate(classes)))
    float_means = " (the per-image standardisation's means in float32)" if model.per_image_standardization else ""
    int8_line = (f"- `{INT8_TFLITE}`: the same with int8 weights and activations{float_means}, calibrated "
                 f"on training images; same input and outputs.\n" if int8 else "")
    onnx_runtime = f", or only ONNX Runtime for `{ONNX_FILE}`" if onnx else ""
    onnx_line = (f"- `{ONNX_FILE}`: the same model for ONNX Runtime (opset {ONNX_OPSET}), float32, any batch.\n"
                 if onnx else "")
    steps = ["scaling to [0, 1]"]
    if model.per_image_standardization:
        steps.append("per-image standardisation")
    if config["tta"] == "flip":
        steps.append("averaging with the prediction on the mirrored image")
    return f"""# Face segmentation model `{model.description}`

Exported from `{model_dir}` by `python convolutional_autoencoder.py export`. Needs TensorFlow (or
only the LiteRT interpreter for the `.tflite` files{onnx_runtime}), not the code that trained it.

- `saved_model.pb`, `variables/`: a SavedModel (this folder) with the signature `{SIGNATURE}`.
- `{FLOAT_TFLITE}`: the same model for TFLite / LiteRT, float32.
{int8_line}{onnx_line}
**Input** `images`: uint8 grayscale images [N, {height}, {width}, 1] (the `.tflite` files take one image,
[1, {height}, {width}, 1]). Convert photos to grayscale and resize them to {width}x{height} (width x height); the rest
is inside the model: {", ".join(steps)}.

**Outputs**
- `probabilities`: {probabilities}.
- `classes`: {class_map}.

## Python, TensorFlow

```python
import tensorflow as tf
serve = tf.saved_model.load("path/to/this/folder").signatures["{SIGNATURE}"]
out = serve(images=tf.constant(images))        # images: uint8 numpy array [N, {height}, {width}, 1]
probabilities, classes = out["probabilities"].numpy(), out["classes"].numpy()
```

## Python, TFLite

```python
from ai_edge_litert.interpreter import Interpreter      # pip install ai-edge-litert
run = Interpreter(model_path="path/to/this/folder/{FLOAT_TFLITE}").get_signature_runner("{SIGNATURE}")
out = run(images=image[None])                         # image: uint8 numpy array [{height}, {width}, 1]
probabilities, classes = out["probabilities"][0], out["classes"][0]
```

(`tf.lite.Interpreter` of TensorFlow 2.21 runs them too, but is deprecated in favour of LiteRT.)
{onnx_section(size) if onnx else ""}"""


def onnx_section(size):
    height, width = size
    return f"""
## Python, ONNX Runtime

```python
import onnxruntime                                     # pip install onnxruntime
session = onnxruntime.InferenceSession("path/to/this/folder/{ONNX_FILE}")
probabilities, classes = session.run(["probabilities", "classes"], {{"images": images}})
# images: uint8 numpy array [N, {height}, {width}, 1]
```
"""


def is_export(folder):
    """Whether `folder` is an export (a SavedModel folder, or one holding model.onnx) rather than a
    training run folder."""
    return (Path(folder) / "saved_model.pb").is_file() or (Path(folder) / ONNX_FILE).is_file()


def load_exported(folder):
    """(forward, (height, width), num_classes) of an export: forward(uint8 images [N, H, W, 1]) returns
    the probabilities [N, H, W, num_classes] as a tensor. The SavedModel runs in TensorFlow; a folder
    holding only model.onnx runs in ONNX Runtime (load_onnx)."""
    if not (Path(folder) / "saved_model.pb").is_file():
        if (Path(folder) / ONNX_FILE).is_file():
            return load_onnx(Path(folder) / ONNX_FILE)
        raise UsageError(f"{folder} holds no saved_model.pb: pass a folder written by "
                            "`python convolutional_autoencoder.py export`")
    loaded = tf.saved_model.load(str(folder))
    signature = loaded.signatures[SIGNATURE]
    height, width = signature.structured_input_signature[1]["images"].shape[1:3]
    num_classes = signature.structured_outputs["probabilities"].shape[-1]

    def forward(images):
        # Looked up on `loaded` so that the closure keeps the variables the signature reads alive.
        return loaded.signatures[SIGNATURE](images=tf.convert_to_tensor(images, tf.uint8))["probabilities"]

    return forward, (height, width), num_classes


def load_onnx(path, threads=None):
    """(forward, (height, width), num_classes) of an ONNX model in ONNX Runtime, as load_exported gives
    them; a model whose input is not a batch of uint8 grayscale images is refused (UsageError)."""
    session = onnx_session(path, threads)
    inputs, outputs = session.get_inputs(), {output.name: output for output in session.get_outputs()}
    shape = inputs[0].shape if len(inputs) == 1 else []
    if (len(inputs) != 1 or inputs[0].type != "tensor(uint8)" or len(shape) != 4 or isinstance(shape[0], int)
            or not all(isinstance(n, int) for n in shape[1:]) or shape[3] != 1 or "probabilities" not in outputs):
        described = ", ".join(f"{i.name} {i.type} {i.shape}" for i in inputs)
        raise UsageError(f"{path} takes {described or 'no input'} (outputs: {', '.join(outputs)}), not a batch of "
                         "uint8 grayscale images [N, H, W, 1] giving `probabilities`: pass a model.onnx written by "
                         "`python convolutional_autoencoder.py export --onnx`")
    name = inputs[0].name

    def forward(images):
        return tf.convert_to_tensor(session.run(["probabilities"], {name: np.asarray(images, np.uint8)})[0])

    return forward, (shape[1], shape[2]), outputs["probabilities"].shape[-1]


def onnx_session(path, threads=None):
    """An ONNX Runtime session of a .onnx file on the CPU, with `threads` (default: ONNX Runtime's)."""
    try:
        import onnxruntime
    except ImportError:
        raise UsageError("running model.onnx needs ONNX Runtime: pip install onnxruntime "
                         "(it is in requirements-dev.txt)") from None
    options = onnxruntime.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    try:
        return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # ONNX Runtime raises its own exception types for a file it cannot read
        raise UsageError(f"{path} is not a model ONNX Runtime can load ({str(error).splitlines()[0]}): pass a "
                         "model.onnx written by `python convolutional_autoencoder.py export --onnx`") from None


def tflite_runner(path, threads=None):
    """The serving signature of a `.tflite` file as a function images=... -> outputs (LiteRT interpreter)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        raise UsageError("running a .tflite model needs the LiteRT interpreter: "
                            "pip install ai-edge-litert (it is in requirements-dev.txt)") from None
    return Interpreter(model_path=str(path), num_threads=threads).get_signature_runner(SIGNATURE)


def parse_args(argv):
    parser = argparse.ArgumentParser(
        prog="convolutional_autoencoder.py export",
        description="Export a trained run as a SavedModel, TFLite and (--onnx) ONNX models (uint8 grayscale images "
                    "in, probabilities and class map out) that load without this code.")
    parser.add_argument("--model-dir", default="pretrained", help="run folder or pretrained/ (default: pretrained)")
    parser.add_argument("--out", required=True, help="new or empty folder to write the export to")
    parser.add_argument("--int8", action="store_true",
                        help="also write model_int8.tflite, integer arithmetic calibrated on training images")
    parser.add_argument("--onnx", action="store_true",
                        help="also write model.onnx for ONNX Runtime (needs tf2onnx: pip install tf2onnx)")
    parser.add_argument("--data", help="data folder of the calibration images (default: the run's)")
    parser.add_argument("--calibration-images", type=int, default=CALIBRATION_IMAGES,
                        help=f"training images to calibrate --int8 on (default: {CALIBRATION_IMAGES})")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        files = export(args.model_dir, args.out, args.int8, args.data, args.calibration_images, onnx=args.onnx)
    except (UsageError, DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"exported {args.model_dir} to {os.path.join(args.out, '')}: {', '.join(files)}")
    return 0
