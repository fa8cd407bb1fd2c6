"""Seed statistics for the leaderboard: summaries with confidence intervals, and paired
comparisons (same task, ratio and seed) with a p-value and a win count.

Conventions, stated once so every board means the same thing:
- the 95% confidence interval of a mean uses Student's t with n - 1 degrees of freedom; for a
  metric with bounds (accuracy in [0, 1], a correlation in [-1, 1], perplexity >= 1) it is taken
  on the logit scale of the metric's range, ``log((x - lo) / (hi - x))`` (``log(x - lo)`` when
  only the lower bound is finite) and mapped back, so it never leaves the metric's range (a
  t-interval on 2 or 3 seeds of an accuracy near 1 reaches past 1); a value on a bound is first
  moved :data:`BOUND_MARGIN` of the range inside it;
- a paired comparison is a two-sided paired t-test on the per-seed differences (value minus
  reference, in the metric's own units); a seed is a *win* when the value is better in the
  metric's direction (:mod:`.direction`: lower for a perplexity, so a negative difference wins);
- a difference is "within noise" when its p-value is 0.05 or more;
- with fewer than ``MIN_SEEDS`` seeds (or common seeds, for a pair) there is no interval
  and no p-value: the board says "too few seeds" rather than print a number.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .direction import improvement

MIN_SEEDS = 2
NOISE_P = 0.05
#: how far inside its bound a value on the bound is moved before the logit: the boards print
#: 4 decimals, so a metric at 1.0 is indistinguishable from one at 0.9999
BOUND_MARGIN = 1e-4


@dataclass(frozen=True)
class SeedSummary:
    n: int
    mean: float
    std: float | None  # sample standard deviation (ddof=1); None below MIN_SEEDS
    ci_low: float | None
    ci_high: float | None

    @property
    def ci_half_width(self) -> float | None:
        return None if self.ci_low is None else (self.ci_high - self.ci_low) / 2


# Student's t from scipy.special (what scipy.stats.t uses), not scipy.stats: importing
# scipy.stats takes about a second, most of a leaderboard's start.
def t_quantile(q: float, df: int) -> float:
    from scipy.special import stdtrit

    return float(stdtrit(df, q))


def paired_t_p_value(diff: pd.Series) -> float:
    """Two-sided p of the paired t-test on the differences (as scipy.stats.ttest_rel)."""
    from scipy.special import stdtr

    n = len(diff)
    t = float(diff.mean()) / (float(diff.std(ddof=1)) / math.sqrt(n))
    return float(2.0 * stdtr(n - 1, -abs(t)))


def summarise(values, bounds: tuple[float, float] | None = None) -> SeedSummary:
    """Mean, standard deviation and 95% interval over seeds; with ``bounds`` (``(lo, hi)``,
    ``hi`` may be infinite) the interval stays inside them (see the module's conventions)."""
    values = pd.Series(values, dtype=float).dropna()
    n = len(values)
    if n == 0:
        return SeedSummary(0, math.nan, None, None, None)
    mean = float(values.mean())
    if n < MIN_SEEDS:
        return SeedSummary(n, mean, None, None, None)
    std = float(values.std(ddof=1))
    if std == 0.0:  # every seed the same (all at 1.0, say): the interval is that value, on any scale
        return SeedSummary(n, mean, std, mean, mean)
    if bounds is None or math.isinf(bounds[0]) or not values.between(*bounds).all():
        low, high = _t_interval(values)  # unbounded, or values its bounds do not hold: the plain t-interval
    else:
        to_scale, from_scale = _logit_scale(*bounds)
        low, high = map(from_scale, _t_interval(to_scale(values)))
    return SeedSummary(n, mean, std, low, high)


def _t_interval(values: pd.Series) -> tuple[float, float]:
    mean, n = float(values.mean()), len(values)
    half = t_quantile(0.975, n - 1) * float(values.std(ddof=1)) / math.sqrt(n)
    return mean - half, mean + half


def _logit_scale(lo: float, hi: float):
    """The maps to and from the unbounded scale of a metric in [lo, hi] (or [lo, inf))."""
    if math.isinf(hi):
        margin = BOUND_MARGIN
        return (lambda x: np.log(np.maximum(x - lo, margin))), (lambda u: lo + math.exp(u))
    width = hi - lo
    margin = BOUND_MARGIN * width

    def to_scale(x):
        x = np.clip(x, lo + margin, hi - margin)
        return np.log((x - lo) / (hi - x))

    def from_scale(u: float) -> float:
        return lo + width / (1.0 + math.exp(-u)) if u > -700 else lo

    return to_scale, from_scale


@dataclass(frozen=True)
class PairedComparison:
    n: int  # seeds present on both sides
    mean_diff: float | None
    p_value: float | None
    wins: int
    losses: int
    ties: int

    @property
    def within_noise(self) -> bool | None:
        return None if self.p_value is None else self.p_value >= NOISE_P


def compare_paired(values: pd.Series, reference: pd.Series, higher: bool = True) -> PairedComparison:
    """``values`` against ``reference``, both indexed by seed; only common seeds count.
    ``mean_diff`` is value − reference; wins and losses follow the metric's direction ``higher``."""
    joined = pd.concat([values.rename("a"), reference.rename("b")], axis=1, join="inner").dropna()
    diff = joined["a"] - joined["b"]
    n = len(diff)
    gain = improvement(diff, higher)
    wins, losses = int((gain > 0).sum()), int((gain < 0).sum())
    if n == 0:
        return PairedComparison(0, None, None, 0, 0, 0)
    mean_diff = float(diff.mean())
    p_value = None
    if n >= MIN_SEEDS:
        if float(diff.std(ddof=1)) == 0.0:
            # identical differences: the t statistic is infinite (or 0/0 when all are zero)
            p_value = 1.0 if mean_diff == 0.0 else 0.0
        else:
            p_value = paired_t_p_value(diff)
    return PairedComparison(n, mean_diff, p_value, wins, losses, n - wins - losses)
