"""faces/smoothing.py: the One Euro filter on synthetic signals."""
import numpy as np
import pytest

from faces.smoothing import OneEuroFilter, alpha

FPS = 30.0


def run(filter_, values, scale=1.0):
    return np.array([filter_(value, index / FPS, scale) for index, value in enumerate(values)])


def test_alpha_is_a_first_order_low_pass_weight():
    tau = 1 / (2 * np.pi * 2.0)
    assert alpha(2.0, 0.01) == pytest.approx(1 / (1 + tau / 0.01))
    assert alpha(1e9, 0.01) == pytest.approx(1.0)


def test_first_value_passes_and_a_constant_stays():
    out = run(OneEuroFilter(1.0, 1.0), np.full((20, 5, 2), 7.5))
    assert np.array_equal(out, np.full((20, 5, 2), 7.5))


def test_still_noise_is_damped():
    noise = np.random.default_rng(0).normal(0, 1, (300, 10))  # a pixel of jitter on a face of 100 pixels
    out = run(OneEuroFilter(1.0, 1.0), noise, scale=100.0)
    assert out[30:].std() < 0.35 * noise[30:].std()


def test_speed_raises_the_cutoff_so_a_moving_value_lags_less():
    ramp = np.arange(120, dtype=np.float64) * 5.0  # 150 pixels per second, 1.5 faces of 100 pixels
    lag_plain = ramp[-1] - run(OneEuroFilter(1.0, 0.0), ramp, scale=100.0)[-1]
    lag_euro = ramp[-1] - run(OneEuroFilter(1.0, 1.0), ramp, scale=100.0)[-1]
    assert lag_euro < lag_plain / 4
    assert lag_plain > 10  # a 1 Hz low pass alone lags by about a sixth of a second


def test_scale_makes_the_filter_size_free():
    rng = np.random.default_rng(1)
    signal = np.cumsum(rng.normal(0, 1, 100)) + np.arange(100)
    small = run(OneEuroFilter(1.0, 1.0), signal, scale=10.0)
    large = run(OneEuroFilter(1.0, 1.0), 10 * signal, scale=100.0)
    assert np.allclose(large, 10 * small)
    assert not np.allclose(run(OneEuroFilter(1.0, 1.0), 10 * signal, scale=10.0), 10 * small)


def test_a_repeated_time_restarts_from_the_value():
    filter_ = OneEuroFilter(1.0, 1.0)
    filter_(np.zeros(2), 0.0)
    filter_(np.ones(2), 1 / FPS)
    assert np.array_equal(filter_(np.full(2, 9.0), 1 / FPS), np.full(2, 9.0))
