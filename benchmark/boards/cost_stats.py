"""Comparisons at equal cost: pure functions over finished cells (no MLflow, no torch).

Conventions, stated once so every board means the same thing:

- **Cost** is counted in training-pass equivalents (:mod:`benchmark.training.cost`): one
  forward+backward pass of one sample is 1, a forward-only pass is :data:`FORWARD_WEIGHT` = 1/3.
- **Random's curve** for one seed: the baseline's cells of that seed at every ratio plus the
  full-data / dense cell, sorted by cost, made monotone by isotonic regression (pool adjacent
  violators; more cost never buys a worse metric: non-decreasing for a higher-is-better metric
  such as accuracy, non-increasing for a lower-is-better one such as perplexity), then joined
  by straight lines.
  Isotonic-then-linear is monotone by construction and, unlike a smoothing spline, passes
  through every point that already is in order.
- **Δ at equal cost** of a cell: per seed, the cell's metric minus random's curve of the
  same seed at the cell's cost (paired); when some seed of the cell has no baseline cells,
  every seed of it is read off the curve of all the baseline's points pooled (unpaired), so
  that one cell's differences are all of one kind. Outside random's measured cost range there is no
  number: the seed is counted as out of range, never extrapolated. The interval is the 95%
  Student-t interval of the per-seed differences (:func:`benchmark.boards.stats.summarise`).
- **Area gap** of a method: per seed, the integral of (method's curve - random's curve) over
  their common cost range divided by the range's width, i.e. the mean accuracy gap over the
  costs both measured, in the metric's units (Δ and area gap are method − baseline in either
  direction: for a lower-is-better metric a negative one is the better). The method's curve joins its own cells (sorted by cost) by straight
  lines; a method with one cost point in range has the gap at that point.
- **Speed-up**: per seed, the full-data cell's wall-clock over the cell's; the geometric mean
  over seeds with the 95% t-interval of the logs, exponentiated (from :data:`MIN_RATIO_SEEDS`
  seeds on); indicative when either side's
  own wall-clock varies over seeds by more than :data:`TIMING_SPREAD_LIMIT` (relative std).
- **Pareto front**: the (cost, metric) points no other point beats on both (cheaper or as
  cheap, and at least as good in the metric's direction, one of them strictly).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .direction import oriented, sign
from .stats import MIN_SEEDS, SeedSummary, paired_t_p_value, summarise

#: relative spread (std / mean over seeds) of a cell's wall-clock above which its speed-up is indicative
TIMING_SPREAD_LIMIT = 0.10
#: seeds a speed-up needs for an interval: with two, the t quantile is 12.7 and an exponentiated
#: interval spans orders of magnitude ([0.00, 40367.49] on a committed board), which says nothing
MIN_RATIO_SEEDS = 3
_TOLERANCE = 1e-9  # relative: a cost equal to the range's end up to rounding is inside it


# --- curves -------------------------------------------------------------------------

@dataclass(frozen=True)
class Curve:
    """A piecewise-linear curve through ``(x, y)``, ``x`` strictly increasing."""

    x: np.ndarray
    y: np.ndarray

    @property
    def low(self) -> float:
        return float(self.x[0])

    @property
    def high(self) -> float:
        return float(self.x[-1])

    def contains(self, cost: float) -> bool:
        slack = _TOLERANCE * max(1.0, abs(self.high))
        return self.low - slack <= cost <= self.high + slack

    def at(self, cost: float) -> float | None:
        """The curve's value at ``cost``; None outside its range (never extrapolated)."""
        if not self.contains(cost):
            return None
        return float(np.interp(cost, self.x, self.y))


def _merged(costs, values) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """Points sorted by cost, equal costs merged into their mean; with their counts. In numpy: a
    board makes one of these per seed, method and cost axis, and a pandas group-by for each of
    a few points cost the leaderboard most of its time at 500 seeds."""
    x, y = np.asarray(costs, dtype=float), np.asarray(values, dtype=float)
    known = ~(np.isnan(x) | np.isnan(y))
    x, y = x[known], y[known]
    if not x.size:
        return None
    xs, where, counts = np.unique(x, return_inverse=True, return_counts=True)
    return xs, np.bincount(where, weights=y, minlength=xs.size) / counts, counts.astype(float)


def line_curve(costs, values) -> Curve | None:
    """A method's own curve: its points joined in cost order."""
    merged = _merged(costs, values)
    return None if merged is None else Curve(merged[0], merged[1])


def isotonic_fit(values, weights) -> np.ndarray:
    """The weighted least-squares non-decreasing fit of ``values`` (pool adjacent violators),
    as ``scipy.optimize.isotonic_regression`` computes it: a board fits a few points, and
    importing scipy.optimize for them cost the leaderboard more than the board itself."""
    means: list[float] = []
    totals: list[float] = []
    sizes: list[int] = []
    for value, weight in zip(values, weights):
        means.append(float(value))
        totals.append(float(weight))
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:  # a violation: pool the last two blocks
            mean, total, size = means.pop(), totals.pop(), sizes.pop()
            means[-1] = (means[-1] * totals[-1] + mean * total) / (totals[-1] + total)
            totals[-1] += total
            sizes[-1] += size
    return np.repeat(np.array(means, dtype=float), sizes)


def monotone_curve(costs, values, higher: bool = True) -> Curve | None:
    """The baseline's curve: isotonic fit, weighted by the points merged; non-decreasing in
    cost for a higher-is-better metric, non-increasing for a lower-is-better one (the fit of
    the negated values, negated back)."""
    merged = _merged(costs, values)
    if merged is None:
        return None
    x, y, weight = merged
    return Curve(x, sign(higher) * isotonic_fit(oriented(y, higher), weight))


def baseline_curves(baseline: pd.DataFrame, cost: str, value: str = "value", *,
                    higher: bool = True) -> tuple[dict[int, Curve], Curve | None]:
    """Per seed, and pooled over seeds, the baseline's monotone curve (``baseline`` holds the
    baseline method's cells and the reference cells, columns seed, ``cost``, ``value``)."""
    per_seed = {int(seed): curve for seed, rows in baseline.groupby("seed")
                if (curve := monotone_curve(rows[cost], rows[value], higher)) is not None}
    return per_seed, monotone_curve(baseline[cost], baseline[value], higher)


# --- Δ at equal cost ----------------------------------------------------------------

@dataclass(frozen=True)
class EqualCostDelta:
    n: int  # seeds with a difference (cost inside random's range)
    mean_diff: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    paired: bool
    below: int  # seeds whose cost is under random's cheapest measured point
    above: int  # seeds whose cost is over random's dearest measured point (e.g. more than full data)

    @property
    def out_of_range(self) -> int:
        return self.below + self.above


def _all_paired(rows: pd.DataFrame, curves: dict[int, Curve]) -> bool:
    """Whether every seed of ``rows`` has its own baseline curve (else all use the pooled one)."""
    return bool(len(rows)) and all(int(seed) in curves for seed in rows.seed)


def _one_sample(diffs: list[float]) -> tuple[SeedSummary, float | None]:
    summary = summarise(diffs)
    if summary.n < MIN_SEEDS:
        return summary, None
    if summary.std == 0.0:
        return summary, 1.0 if summary.mean == 0.0 else 0.0
    return summary, paired_t_p_value(pd.Series(diffs, dtype=float))  # = scipy's ttest_1samp(diffs, 0)


def equal_cost_delta(cells: pd.DataFrame, curves: dict[int, Curve], pooled: Curve | None,
                     cost: str, value: str = "value") -> EqualCostDelta:
    """``cells`` (one method at one ratio; columns seed, ``cost``, ``value``) against the
    baseline's curves: paired by seed where the cells' seeds all have a curve."""
    rows = cells.dropna(subset=[cost, value])
    paired = _all_paired(rows, curves)
    diffs, below, above = [], 0, 0
    for seed, c, v in zip(rows.seed, rows[cost], rows[value]):
        curve = curves.get(int(seed)) if paired else pooled
        if curve is None:
            continue
        reference = curve.at(float(c))
        if reference is None:
            below, above = below + (c < curve.low), above + (c > curve.high)
            continue
        diffs.append(float(v) - reference)
    summary, p_value = _one_sample(diffs)
    return EqualCostDelta(summary.n, summary.mean if diffs else None, summary.ci_low, summary.ci_high, p_value,
                          paired, int(below), int(above))


# --- area between curves ------------------------------------------------------------

def curve_gap(method: Curve, baseline: Curve) -> float | None:
    """Mean of (method - baseline) over their common cost range; None when they share none."""
    low, high = max(method.low, baseline.low), min(method.high, baseline.high)
    if high < low:
        return None
    if high == low:
        return method.at(low) - baseline.at(low)
    # both curves are linear between the union of their breakpoints: the trapezoid rule is exact
    xs = np.unique(np.concatenate([[low, high], method.x, baseline.x]))
    xs = xs[(xs >= low) & (xs <= high)]
    gap = np.interp(xs, method.x, method.y) - np.interp(xs, baseline.x, baseline.y)
    return float(np.sum((gap[1:] + gap[:-1]) / 2 * np.diff(xs)) / (high - low))


@dataclass(frozen=True)
class AreaGap:
    summary: SeedSummary  # over seeds of the per-seed mean gap
    paired: bool
    low: float | None  # the common cost range (mean over seeds)
    high: float | None
    points: int  # the method's cost points per seed (most)


def area_gap(cells: pd.DataFrame, curves: dict[int, Curve], pooled: Curve | None, cost: str,
             value: str = "value") -> AreaGap:
    """``cells``: one method at all its ratios (columns seed, ``cost``, ``value``)."""
    rows = cells.dropna(subset=[cost, value])
    paired = _all_paired(rows, curves)
    gaps, lows, highs, points = [], [], [], 0
    for seed, group in rows.groupby("seed"):
        baseline = curves.get(int(seed)) if paired else pooled
        method = line_curve(group[cost], group[value])
        if baseline is None or method is None:
            continue
        gap = curve_gap(method, baseline)
        if gap is None:
            continue
        gaps.append(gap)
        lows.append(max(method.low, baseline.low))
        highs.append(min(method.high, baseline.high))
        points = max(points, len(method.x))
    return AreaGap(summarise(gaps), paired, float(np.mean(lows)) if lows else None,
                   float(np.mean(highs)) if highs else None, points)


# --- Pareto front -------------------------------------------------------------------

def pareto_front(costs, values, higher: bool = True) -> np.ndarray:
    """Boolean mask of the points on the (low cost, best value) front, the value's best being
    its highest or, with ``higher`` False, its lowest; NaN points are off it."""
    c, v = np.asarray(costs, dtype=float), oriented(values, higher)
    valid = ~(np.isnan(c) | np.isnan(v))
    on = np.zeros(len(c), dtype=bool)
    for i in np.flatnonzero(valid):
        beaten = valid & (c <= c[i]) & (v >= v[i]) & ((c < c[i]) | (v > v[i]))
        on[i] = not beaten.any()
    return on


# --- wall-clock speed-up ------------------------------------------------------------

@dataclass(frozen=True)
class Speedup:
    """The per-seed ratios full seconds / cell seconds, summarised on the log scale (a ratio's
    natural scale: 2x and 0.5x are equally far from 1, and the interval stays positive):
    ``mean`` is their geometric mean, the interval the exponentiated t-interval of the logs."""

    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None
    spread: float | None  # the larger relative std over seeds of the cell's and the full cell's seconds

    @property
    def indicative(self) -> bool:
        """Too noisy to read closely: the runs' own timing varies more than the limit, or
        there are too few seeds to tell."""
        return self.spread is None or self.spread > TIMING_SPREAD_LIMIT


def relative_spread(values) -> float | None:
    values = pd.Series(values, dtype=float).dropna()
    if len(values) < MIN_SEEDS or values.mean() == 0:
        return None
    return float(values.std(ddof=1) / values.mean())


def speedup(full_seconds: pd.Series, seconds: pd.Series) -> Speedup:
    """Both indexed by seed; only common seeds give a ratio."""
    ratios = (full_seconds / seconds).replace([math.inf, -math.inf], np.nan).dropna()
    ratios = ratios[ratios > 0]
    spreads = [relative_spread(seconds), relative_spread(full_seconds)]
    spread = None if any(s is None for s in spreads) else max(spreads)
    logs = summarise(np.log(ratios))
    if logs.n == 0:
        return Speedup(0, None, None, None, spread)
    if logs.ci_low is None or logs.n < MIN_RATIO_SEEDS:
        return Speedup(logs.n, math.exp(logs.mean), None, None, spread)
    return Speedup(logs.n, math.exp(logs.mean), math.exp(logs.ci_low), math.exp(logs.ci_high), spread)
