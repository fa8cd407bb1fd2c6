"""Seed statistics against scipy and numpy on known inputs."""
import math

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from benchmark.boards.stats import compare_paired, summarise


def test_summary_matches_scipy_interval():
    values = [0.91, 0.905, 0.918, 0.899]
    s = summarise(values)
    low, high = stats.t.interval(0.95, len(values) - 1, loc=np.mean(values), scale=stats.sem(values))
    assert s.n == 4
    assert s.mean == pytest.approx(np.mean(values))
    assert s.std == pytest.approx(np.std(values, ddof=1))
    assert (s.ci_low, s.ci_high) == (pytest.approx(low), pytest.approx(high))


def logit_interval(values, lo, hi):
    """Independently: the t-interval of logit((x - lo) / (hi - lo)), mapped back onto [lo, hi]."""
    share = np.clip((np.asarray(values) - lo) / (hi - lo), 1e-4, 1 - 1e-4)
    u = special.logit(share)
    low, high = stats.t.interval(0.95, len(u) - 1, loc=np.mean(u), scale=stats.sem(u))
    return lo + (hi - lo) * special.expit(low), lo + (hi - lo) * special.expit(high)


@pytest.mark.parametrize("values, bounds", [
    ([0.91, 0.905, 0.918, 0.899], (0.0, 1.0)),
    ([0.99, 0.80], (0.0, 1.0)),  # two seeds far apart: the plain t-interval is [-0.31, 2.10]
    ([1.0, 1.0, 0.98], (0.0, 1.0)),  # on the bound
    ([0.42, -0.1, 0.3], (-1.0, 1.0)),  # a correlation
])
def test_a_bounded_metrics_interval_is_the_logit_interval_and_stays_inside(values, bounds):
    s = summarise(values, bounds)
    low, high = logit_interval(values, *bounds)
    assert (s.ci_low, s.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert bounds[0] <= s.ci_low <= s.ci_high <= bounds[1]
    assert s.mean == pytest.approx(np.mean(values)) and s.std == pytest.approx(np.std(values, ddof=1))


def test_bounded_intervals_never_leave_the_range_on_random_draws():
    rng = np.random.default_rng(0)
    for _ in range(500):
        n = int(rng.integers(2, 6))
        values = np.clip(rng.normal(rng.uniform(0.0, 1.0), rng.uniform(0.0, 0.4), n), 0.0, 1.0)
        s = summarise(values, (0.0, 1.0))
        assert 0.0 <= s.ci_low <= s.ci_high <= 1.0


def test_a_metric_bounded_below_only_uses_the_log_scale():
    perplexity = [12.0, 15.5, 30.0]
    s = summarise(perplexity, (1.0, math.inf))
    logs = np.log(np.asarray(perplexity) - 1.0)
    low, high = stats.t.interval(0.95, 2, loc=logs.mean(), scale=stats.sem(logs))
    assert (s.ci_low, s.ci_high) == (pytest.approx(1 + math.exp(low)), pytest.approx(1 + math.exp(high)))
    assert s.ci_low > 1.0


def test_seeds_all_on_a_bound_give_that_value_as_the_interval():
    s = summarise([1.0, 1.0, 1.0], (0.0, 1.0))
    assert (s.mean, s.ci_low, s.ci_high) == (1.0, 1.0, 1.0)  # not the margin's 0.9999


def test_values_outside_the_declared_range_get_the_plain_interval():
    values = [1.5, 2.5, 2.0]  # not an accuracy, whatever the task said
    low, high = stats.t.interval(0.95, 2, loc=np.mean(values), scale=stats.sem(values))
    s = summarise(values, (0.0, 1.0))
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
