"""Reading a run folder's history: its training time."""
import pytest
import tensorflow as tf

from runs.run_folder import training_time


def test_training_time_adds_up_each_process_and_leaves_the_logger_alone(tmp_path):
    from tensorflow.core.util import event_pb2
    (tmp_path / "logs").mkdir()
    # Two processes of one resumed run: 1 minute, a long pause, then 2 minutes.
    for name, events in (("events.out.tfevents.1.a", [(1000.0, 0), (1060.0, 2)]),
                         ("events.out.tfevents.2.b", [(9000.0, 2), (9120.0, 4)])):
        with tf.io.TFRecordWriter(str(tmp_path / "logs" / name)) as writer:
            for wall_time, step in events:
                writer.write(event_pb2.Event(wall_time=wall_time, step=step).SerializeToString())
    level = tf.get_logger().level
    assert training_time(tmp_path) == (4, pytest.approx(3.0))
    assert tf.get_logger().level == level
    assert training_time(tmp_path / "nothing") == (0, None)
