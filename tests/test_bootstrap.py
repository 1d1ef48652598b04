"""Bootstrap intervals over units, on synthetic units whose spread is known."""
import numpy as np
import pytest

from runs import bootstrap


def width(bounds):
    return bounds[1] - bounds[0]


def test_interval_of_a_mean_matches_the_normal_approximation_and_holds_the_estimate():
    values = np.random.default_rng(1).integers(0, 2, 400).astype(float)  # coin flips: sd of the mean 0.025
    (low, high), = bootstrap.intervals(values, {"mean": np.mean}).values()
    assert low < values.mean() < high
    # 95%: +-1.96 standard errors; a 90% or 99% interval would be 16% narrower or 31% wider.
    expected = 2 * 1.96 * values.std() / np.sqrt(len(values))
    assert width((low, high)) == pytest.approx(expected, rel=0.08)


def test_interval_shrinks_with_more_units_as_one_over_their_root():
    rng = np.random.default_rng(2)
    few, many = rng.normal(0, 1, 25), rng.normal(0, 1, 400)
    ratio = width(bootstrap.intervals(few, {"m": np.mean})["m"]) / width(bootstrap.intervals(many, {"m": np.mean})["m"])
    assert ratio == pytest.approx(4, rel=0.3)


def test_identical_units_give_an_interval_of_zero_width():
    units = np.tile([[90, 10], [5, 95]], (30, 1, 1))
    drawn = bootstrap.intervals(units, {"accuracy": lambda s: np.trace(s.sum(0)) / s.sum()})
    assert drawn["accuracy"] == (0.925, 0.925)


def test_same_seed_same_interval_and_every_statistic_sees_the_same_draws():
    values = np.random.default_rng(3).normal(0, 1, 50)
    first = bootstrap.intervals(values, {"a": np.mean, "b": np.mean})
    assert first["a"] == first["b"] == bootstrap.intervals(values, {"a": np.mean})["a"]
    assert bootstrap.intervals(values, {"a": np.mean}, seed=1)["a"] != first["a"]
    assert bootstrap.intervals(values[:0], {"a": np.mean}) == {"a": None}


def test_sums_by_unit_adds_each_units_rows_in_first_seen_order():
    order, sums = bootstrap.sums_by_unit([[1, 0], [2, 1], [0, 5], [3, 3]], ["b", "a", "b", "a"])
    assert order == ["b", "a"]
    np.testing.assert_array_equal(sums, [[1, 5], [5, 4]])
