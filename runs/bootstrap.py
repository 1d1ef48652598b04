"""95% bootstrap intervals over the units a sample was drawn in: LFW persons, in-the-wild scenes.

The pictures of one person are not independent draws (same face, often the same day), and the split
draws persons, so an interval over images would be too narrow: the units resampled are persons.
Percentile bootstrap (Efron & Tibshirani 1993, ch. 13): draw as many units as there are, with
replacement, recompute the statistic from the drawn units' rows, and take the 2.5th and 97.5th
percentiles of RESAMPLES such draws. A fixed seed makes the interval the same on every run.
"""
import numpy as np

LEVEL = 0.95
RESAMPLES = 1000
SEED = 0


def intervals(units, statistics, resamples=RESAMPLES, seed=SEED, level=LEVEL):
    """{name: (low, high)}: the percentile interval of each statistic(drawn units) over `resamples`
    draws. `units` holds one row per unit (an array, e.g. a person's summed confusion matrix);
    `statistics` maps a name to a function of such an array; all statistics see the same draws.
    None for each name when there are no units."""
    units = np.asarray(units)
    if not len(units):
        return dict.fromkeys(statistics)
    draws = np.random.default_rng(seed).integers(0, len(units), (resamples, len(units)))
    values = {name: np.array([statistic(units[draw]) for draw in draws], np.float64)
              for name, statistic in statistics.items()}
    tail = 100 * (1 - level) / 2
    return {name: tuple(float(v) for v in np.nanpercentile(drawn, [tail, 100 - tail]))
            for name, drawn in values.items()}


def sums_by_unit(rows, units):
    """(unit names in first-seen order, array [unit, ...]): the rows of each unit added up."""
    order = list(dict.fromkeys(units))
    index = {unit: i for i, unit in enumerate(order)}
    rows = np.asarray(rows)
    sums = np.zeros((len(order), *rows.shape[1:]), rows.dtype)
    np.add.at(sums, [index[unit] for unit in units], rows)
    return order, sums
