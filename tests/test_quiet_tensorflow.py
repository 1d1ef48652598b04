"""quiet_tensorflow: TensorFlow starts without its C++ start-up lines; what comes after is shown."""
import os
import subprocess
import sys

from conftest import ROOT

AFTER_START_UP = """
import quiet_tensorflow
import sys
import tensorflow as tf
print("the project's own line", file=sys.stderr)
try:
    tf.io.decode_jpeg(b"\\xff\\xd8\\xff\\xdb\\x00\\x43" + bytes(40))
except tf.errors.InvalidArgumentError:
    pass
"""


def test_start_up_lines_are_hidden_and_later_errors_shown():
    environment = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    done = subprocess.run([sys.executable, "-c", AFTER_START_UP], capture_output=True, text=True, cwd=ROOT,
                          env=environment)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert lines[0] == "the project's own line"
    # TensorFlow's own error log of the failed decode, after start-up, is not hidden.
    assert any("jpeg" in line.lower() for line in lines[1:]), lines
    for start_up in ("absl::InitializeLog", "cudart_stub", "cpu_feature_guard", "cuInit"):
        assert not any(start_up in line for line in lines), lines


def test_without_lines_hides_only_the_picked_lines_written_to_descriptor_2(capfd):
    import quiet_tensorflow

    converter = ("W0000 00:00:1795837180.130627    2427 tf_tfl_flatbuffer_helpers.cc:364] Ignored output_format.\n"
                 "W0000 00:00:1795837180.130758    2427 tf_tfl_flatbuffer_helpers.cc:367] Ignored "
                 "drop_control_dependency.\n")
    other = "W0000 00:00:1795837180.2    2427 lite.cc:1] a converter warning that matters\n"
    with quiet_tensorflow.without_lines(quiet_tensorflow.converter_lines):
        os.write(2, (converter + other).encode())
    assert capfd.readouterr().err == other
