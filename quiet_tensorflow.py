"""TensorFlow without its C++ start-up lines: import this module first in every entry point.

Importing TensorFlow and finding its devices prints lines that are not the project's, and on a machine
without a GPU one of them reads like an error: the absl notice "All log messages before
absl::InitializeLog() is called are written to STDERR", cudart_stub's "Could not find cuda drivers",
cpu_feature_guard's note on CPU instructions, and "E0000 ... failed call to cuInit". Some come before
TensorFlow reads TF_CPP_MIN_LOG_LEVEL, so the level alone cannot hide them: standard error is caught
while TensorFlow starts and written back without those lines. The cuInit failure is hidden only when
cudart_stub also said there are no CUDA drivers; any other line, and everything after start-up
(TensorFlow's warnings and errors, the project's own messages), is shown as usual.

`without_lines` is the same catch for a block of code: runs/export.py hides with it the TFLite converter's
two "Ignored output_format / drop_control_dependency" notices, about options tf.lite sets itself, and
the int8 quantiser's echo of its settings ("fully_quantize: 0, inference_type: ...") and its "Skipping
runtime version metadata" notice.
"""
import contextlib
import os
import re
import sys
import tempfile

# INFO lines after start-up (e.g. cpu_feature_guard, oneDNN notices) are hidden, warnings and errors not.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

START_UP_LINES = re.compile(r"All log messages before absl::InitializeLog\(\) is called|cudart_stub\.cc.*"
                            r"Could not find cuda drivers|cpu_feature_guard\.cc|^To enable the following "
                            r"instructions|oneDNN custom operations are on")
CONVERTER_LINES = re.compile(r"tf_tfl_flatbuffer_helpers\.cc.*Ignored (output_format|drop_control_dependency)|"
                             r"^fully_quantize: \d+, inference_type: \d+, input_inference_type: |"
                             r"flatbuffer_export\.cc.*Skipping runtime version metadata in the model")
NO_DRIVER_CUINIT = re.compile(r"cuda_(platform|diagnostics|executor)\.cc.*(failed call to cuInit|"
                              r"kernel driver does not appear to be running|retrieving CUDA diagnostic)")


@contextlib.contextmanager
def without_lines(hide):
    """Standard error (file descriptor 2, where TensorFlow's C++ code writes) caught while the block
    runs, then written back without the lines `hide(lines)` picks out of the list of lines."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            caught.seek(0)
            lines = caught.read().decode(errors="replace").splitlines(keepends=True)
            hidden = hide(lines)
            sys.stderr.write("".join(line for line in lines if line not in hidden))
            sys.stderr.flush()


def start_up_lines(lines):
    """TensorFlow's start-up lines; its failed cuInit only when cudart_stub said there is no CUDA driver."""
    no_driver = any("Could not find cuda drivers" in line for line in lines)
    return {line for line in lines if START_UP_LINES.search(line) or (no_driver and NO_DRIVER_CUINIT.search(line))}


def converter_lines(lines):
    """The TFLite converter's notices about options tf.lite sets itself, and the int8 quantiser's."""
    return {line for line in lines if CONVERTER_LINES.search(line)}


def _start_tensorflow():
    with without_lines(start_up_lines):
        import tensorflow as tf
        # Finding the physical devices is what tries CUDA; it leaves the runtime unconfigured, so
        # logical devices and MultiWorkerMirroredStrategy can still be set up afterwards.
        tf.config.list_physical_devices()


_start_tensorflow()
