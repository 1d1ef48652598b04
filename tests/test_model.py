"""Model: the reference stack, its mirror, the ablation switches, sizes, configs and learning."""
import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import synthetic_face
from max_pool_2d import MaxPool2d
from model import REFERENCE_DESCRIPTION, Model, layers_from_description

SMALL = "C3,4,2C3,4,1M2"


def kernels(model):
    return [v for v in model.trainable_variables if v.shape.rank == 4]


def copy_weights(source, target):
    for a, b in zip(source.layers, target.layers):
        for name in ("kernel", "bias", "mirror_bias"):
            if hasattr(a, name):
                getattr(b, name).assign(getattr(a, name))
        if hasattr(a, "mirror_kernel") and b.mirror_kernel is not b.kernel:
            b.mirror_kernel.assign(a.mirror_kernel)


def test_default_is_the_reference_architecture():
    model = Model()
    assert model.description == REFERENCE_DESCRIPTION
    assert [type(l).__name__ for l in model.layers] == ["Conv2d", "Conv2d", "MaxPool2d"] * 3
    pools = [l for l in model.layers if isinstance(l, MaxPool2d)]
    assert [p.skip_connection for p in pools] == [True, True, False]
    assert model.divisor == 64


@pytest.mark.parametrize("size", [128, 256])
@pytest.mark.parametrize("num_classes", [1, 3])
def test_output_shape_equals_input_shape(size, num_classes):
    model = Model(num_classes=num_classes)
    out = model(tf.random.uniform([1, size, size, 1]), training=False)
    assert out.shape == (1, size, size, num_classes)
    assert out.dtype == tf.float32
    assert np.all((out.numpy() >= 0) & (out.numpy() <= 1))
    if num_classes == 3:
        np.testing.assert_allclose(out.numpy().sum(-1), 1, rtol=1e-5)


def test_tied_model_has_six_kernels_untied_twelve():
    assert len(kernels(Model())) == 6
    assert len(kernels(Model(tied_weights=False))) == 12
    assert len(kernels(Model(num_classes=3))) == 7  # the 3-class output layer cannot share a 1-channel kernel


def test_tied_kernel_gets_gradient_from_encoder_and_decoder():
    x = tf.random.uniform([2, 16, 16, 1])
    tied = Model.from_description(SMALL)
    untied = Model.from_description(SMALL, tied_weights=False)
    for layer_u, layer_t in zip(untied.layers, tied.layers):
        if hasattr(layer_t, "kernel"):
            layer_u.kernel.assign(layer_t.kernel)
            layer_u.mirror_kernel.assign(layer_t.kernel)

    def gradients(model):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(model(x, training=True) - 0.3))
        return dict(zip([v.ref() for v in model.trainable_variables],
                        tape.gradient(loss, model.trainable_variables)))

    g_tied, g_untied = gradients(tied), gradients(untied)
    for layer_t, layer_u in zip(tied.layers, untied.layers):
        if not hasattr(layer_t, "kernel"):
            continue
        encoder_part = g_untied[layer_u.kernel.ref()].numpy()
        decoder_part = g_untied[layer_u.mirror_kernel.ref()].numpy()
        assert np.abs(encoder_part).sum() > 0 and np.abs(decoder_part).sum() > 0
        np.testing.assert_allclose(g_tied[layer_t.kernel.ref()], encoder_part + decoder_part, rtol=1e-3, atol=1e-6)


def test_skip_links_change_the_output():
    x = tf.random.uniform([2, 64, 64, 1])
    with_skips = Model()
    without = Model(skip_connections=False)
    copy_weights(with_skips, without)
    assert not np.allclose(with_skips(x), without(x))
    assert not any(l.skip_connection for l in without.layers if isinstance(l, MaxPool2d))


def test_per_image_standardisation_ignores_brightness_and_contrast():
    x = tf.random.uniform([2, 64, 64, 1], 0.2, 0.6)
    model = Model()
    np.testing.assert_allclose(model(x), model(1.5 * x - 0.2), atol=1e-4)
    raw = Model(per_image_standardization=False)
    copy_weights(model, raw)
    assert not np.allclose(raw(x), raw(1.5 * x - 0.2), atol=1e-4)


def test_batch_norm_training_and_inference_differ_once_averages_differ():
    model = Model.from_description(SMALL)
    model(tf.random.uniform([4, 16, 16, 1]), training=True)
    other = tf.random.uniform([4, 16, 16, 1]) ** 3
    assert not np.allclose(model(other, training=True), model(other, training=False), atol=1e-4)
    plain = Model.from_description(SMALL, batch_norm=False)
    np.testing.assert_allclose(plain(other, training=True), plain(other, training=False))


def test_inference_matches_training_after_the_first_step():
    # Moving averages start as the first batch's statistics, so evaluation is meaningful at once.
    model = Model()
    x = tf.random.uniform([4, 64, 64, 1])
    trained = model(x, training=True)
    np.testing.assert_allclose(model(x, training=False), trained, atol=2e-3)


def test_description_round_trip_and_config_json(tmp_path):
    model = Model.from_description("C5,32,2C5,32,1M2C3,16,1M2", tied_weights=False, skip_connections=False,
                                   per_image_standardization=False, batch_norm=False, num_classes=3)
    again = Model.from_description(model.description)
    assert again.description == model.description
    path = tmp_path / "config.json"
    model.save_config(path)
    loaded = Model.load_config(path)
    assert loaded.config == model.config == json.loads(path.read_text())
    assert len(kernels(loaded)) == len(kernels(model)) == 6


def test_linear_output_is_the_transposed_convolution_plus_bias():
    model = Model.from_description(SMALL, linear_output=True)
    first = model.layers[0]
    assert first.norm is not None and first.mirror_norm is None
    assert model.layers[1].mirror_norm is not None  # only the last decoder layer changes
    first.mirror_bias.assign([-3.0])
    x = tf.random.normal([2, 8, 8, 4])
    raw = tf.nn.conv2d_transpose(x, first.kernel, [2, 16, 16, 1], 2, "SAME")
    out = first.mirror(x, tf.zeros([2, 16, 16, 1]), None, training=True)
    # Neither standardised nor squashed: the reference layer would give leaky_relu(bn(raw) - 3) > -0.6 - 3.
    np.testing.assert_allclose(out, raw - 3.0, rtol=1e-5, atol=1e-5)
    assert Model.from_config(model.config).config == model.config and model.config["linear_output"]
    assert Model.complete_config({"description": SMALL}) == {"description": SMALL, "linear_output": False}


def test_linear_output_needs_a_convolution_first():
    with pytest.raises(ValueError, match="starts with a convolution, not M2"):
        Model.from_description("M2C3,4,1", linear_output=True)


def test_checkpoint_restores_the_same_outputs(tmp_path):
    model = Model.from_description(SMALL)
    x = tf.random.uniform([2, 16, 16, 1])
    model(x, training=True)
    path = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
    other = Model.from_description(SMALL)
    tf.train.Checkpoint(model=other).restore(path).assert_consumed()
    np.testing.assert_allclose(other(x), model(x))


@pytest.mark.parametrize("text", ["", "C7,64", "X2", "C7,64,2 M2", "M2C"])
def test_bad_description_is_refused(text):
    with pytest.raises(ValueError, match="description"):
        layers_from_description(text)


def test_size_the_stack_cannot_mirror_is_refused():
    with pytest.raises(ValueError, match=r"100x100.*multiples of 64"):
        Model()(tf.zeros([1, 100, 100, 1]))


def test_bfloat16_compute_gives_close_float32_output():
    x = tf.random.uniform([2, 64, 64, 1])
    model = Model()
    low = Model(compute_dtype="bfloat16")
    copy_weights(model, low)
    out = low(x, training=True)
    assert out.dtype == tf.float32
    assert np.abs(out - model(x, training=True)).mean() < 0.02


def test_learns_synthetic_faces():
    rng = np.random.default_rng(1)
    faces = [synthetic_face(rng, 32) for _ in range(8)]
    x = tf.constant(np.stack([f[0] for f in faces])[..., None] / 255.0, tf.float32)
    y = tf.constant(np.stack([f[1] for f in faces])[..., None], tf.float32)
    tf.keras.utils.set_random_seed(0)
    model = Model.from_description("C3,16,1C3,16,1M2C3,16,1M2")
    optimizer = tf.keras.optimizers.Adam(3e-3)

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.sqrt(tf.reduce_mean(tf.square(model(x, training=True) - y)))
        optimizer.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))

    for _ in range(300):
        step()
    accuracy = np.mean((model(x, training=False).numpy() >= 0.5) == (y.numpy() > 0.5))
    assert accuracy > 0.99


def test_summary_lists_shapes_and_parameters():
    model = Model()
    rows = model.summary()
    assert [r[2] for r in rows[:9]] == [(64, 64, 64), (64, 64, 64), (32, 32, 64), (16, 16, 64), (16, 16, 64),
                                       (8, 8, 64), (4, 4, 64), (4, 4, 64), (2, 2, 64)]
    assert rows[-1][2] == (128, 128, 1)
    assert sum(r[3] for r in rows) == sum(int(np.prod(v.shape)) for v in model.trainable_variables)
    assert [r[0] for r in rows if "M2" == r[1]][3:] == ["decoder (upsample)", "decoder (skip + upsample)",
                                                        "decoder (skip + upsample)"]
