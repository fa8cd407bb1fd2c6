"""Seed statistics against scipy and numpy on known inputs."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.boards.stats import compare_paired, summarise


def test_summary_matches_scipy_interval():
    values = [0.91, 0.905, 0.918, 0.899]
    s = summarise(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert s.n == 4
    assert s.mean == pytest.approx(np.mean(values))
    assert s.std == pytest.approx(np.std(values, ddof=1))
    assert (s.ci_low, s.ci_high) == (pytest.approx(low), pytest.approx(high))


def test_one_seed_has_no_interval_and_nan_is_dropped():
    s = summarise([0.8, float("nan")])
    assert s.n == 1 and s.mean == 0.8
    assert s.std is None and s.ci_low is None and s.ci_half_width is None
    assert math.isnan(summarise([]).mean)


def test_paired_comparison_matches_ttest_rel_on_common_seeds_only():
    a = pd.Series({0: 0.88, 1: 0.87, 2: 0.89, 5: 0.5})  # seed 5 has no partner
    b = pd.Series({0: 0.85, 1: 0.86, 2: 0.84, 3: 0.9})
    c = compare_paired(a, b)
    expected = stats.ttest_rel([0.88, 0.87, 0.89], [0.85, 0.86, 0.84])
    assert c.n == 3
    assert c.mean_diff == pytest.approx(np.mean([0.03, 0.01, 0.05]))
    assert c.p_value == pytest.approx(expected.pvalue)
    assert (c.wins, c.losses, c.ties) == (3, 0, 0)
    assert c.within_noise is bool(expected.pvalue >= 0.05)


def test_noise_mark_and_win_count_on_a_mixed_pair():
    a = pd.Series({0: 0.80, 1: 0.83, 2: 0.81})
    b = pd.Series({0: 0.81, 1: 0.82, 2: 0.81})
    c = compare_paired(a, b)
    assert (c.wins, c.losses, c.ties) == (1, 1, 1)
    assert c.p_value == pytest.approx(stats.ttest_rel(a, b).pvalue)
    assert c.within_noise is True


def test_too_few_common_seeds_gives_no_p_value():
    c = compare_paired(pd.Series({0: 0.9}), pd.Series({0: 0.8, 1: 0.7}))
    assert c.n == 1 and c.p_value is None and c.within_noise is None
    assert c.mean_diff == pytest.approx(0.1) and c.wins == 1
    assert compare_paired(pd.Series({0: 0.9}), pd.Series({1: 0.8})).mean_diff is None


def test_constant_differences_are_not_called_noise():
    same = compare_paired(pd.Series({0: 0.5, 1: 0.6}), pd.Series({0: 0.5, 1: 0.6}))
    assert same.p_value == 1.0 and same.ties == 2
    shifted = compare_paired(pd.Series({0: 0.6, 1: 0.7}), pd.Series({0: 0.5, 1: 0.6}))
    assert shifted.p_value == 0.0 and shifted.within_noise is False
