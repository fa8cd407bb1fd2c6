"""Equal-cost comparison: cost counting in real cells, and the interpolated baseline, its
intervals, the out-of-range marking, the Pareto front and the area gap on a real MLflow
store of known runs, each against an independent numpy / scipy computation written here."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient
from scipy import integrate, stats

from benchmark.boards.format import rankings
from benchmark.boards.markdown import render_markdown
from benchmark.sweeps.cells import Cell, parse_sweep
from benchmark.training.cost import FORWARD_WEIGHT
from benchmark.boards.cost_stats import (Curve, curve_gap, isotonic_fit, line_curve, monotone_curve,
                                  pareto_front, speedup)
from benchmark.boards.leaderboard import area_table, build_board, family_table, load_runs
from benchmark.sweeps.runner import run_sweep
from benchmark.sweeps.tracking import Tracker
from tasks.vision.fashion_mnist import DEBIAN_DIR

# --- independent reference computations -------------------------------------------------


def pav(y, w):
    """Pool adjacent violators, written out: the non-decreasing least-squares fit."""
    blocks = [[float(v), float(wt), 1] for v, wt in zip(y, w)]
    i = 0
    while i < len(blocks) - 1:
        if blocks[i][0] > blocks[i + 1][0]:
            (a, wa, na), (b, wb, nb) = blocks[i], blocks[i + 1]
            blocks[i: i + 2] = [[(a * wa + b * wb) / (wa + wb), wa + wb, na + nb]]
            i = max(i - 1, 0)
        else:
            i += 1
    return np.concatenate([[v] * n for v, _, n in blocks])


def reference_curve(costs, values):
    """Random's curve by hand: equal costs averaged, PAV weighted by count, linear between."""
    xs = sorted(set(costs))
    means = [np.mean([v for c, v in zip(costs, values) if c == x]) for x in xs]
    counts = [sum(c == x for c in costs) for x in xs]
    return np.array(xs), pav(means, counts)


def t_interval(xs):
    return stats.t.interval(0.95, len(xs) - 1, loc=np.mean(xs), scale=stats.sem(xs))


def brute_front(points):
    return [not any((c2 <= c and v2 >= v and (c2 < c or v2 > v)) for c2, v2 in points) for c, v in points]


# --- pure functions ------------------------------------------------------------------------


def test_monotone_curve_is_pav_then_linear_and_never_extrapolates():
    costs = [0.1, 0.3, 0.5, 0.5, 0.7, 1.0]
    values = [0.80, 0.86, 0.84, 0.83, 0.85, 0.90]  # 0.3 beats 0.5 and 0.7: pooled
    curve = monotone_curve(costs, values)
    xs, ys = reference_curve(costs, values)
    np.testing.assert_allclose(curve.x, xs)
    np.testing.assert_allclose(curve.y, ys)
    assert np.all(np.diff(curve.y) >= 0)
    for c in (0.1, 0.2, 0.42, 0.6, 0.99, 1.0):
        assert curve.at(c) == pytest.approx(np.interp(c, xs, ys))
    assert curve.at(0.05) is None and curve.at(1.01) is None


@pytest.mark.parametrize("seed", range(20))
def test_isotonic_fit_equals_scipys(seed):
    from scipy.optimize import isotonic_regression

    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 30))
    values = rng.normal(size=n).round(int(rng.integers(0, 3)))  # rounding makes ties
    weights = rng.integers(1, 4, size=n).astype(float)
    fitted = isotonic_fit(values, weights)
    np.testing.assert_allclose(fitted, isotonic_regression(values, weights=weights, increasing=True).x,
                               rtol=1e-12, atol=1e-12)
    assert np.all(np.diff(fitted) >= 0)


def test_curve_gap_is_the_mean_gap_over_the_common_range():
    method = line_curve([0.2, 0.45, 0.8, 1.3], [0.7, 0.9, 0.88, 0.95])
    base = Curve(np.array([0.1, 0.5, 1.0]), np.array([0.6, 0.8, 0.9]))
    expected = integrate.quad(lambda c: np.interp(c, method.x, method.y) - np.interp(c, base.x, base.y),
                              0.2, 1.0, points=[0.45, 0.5, 0.8], limit=200)[0] / 0.8
    assert curve_gap(method, base) == pytest.approx(expected, rel=1e-9)
    # one shared point: the gap there; no shared cost: none
    assert curve_gap(line_curve([1.0, 2.0], [0.95, 0.97]), base) == pytest.approx(0.05)
    assert curve_gap(line_curve([1.5, 2.0], [0.9, 0.9]), base) is None


def test_pareto_front_matches_a_brute_force_search():
    rng = np.random.default_rng(3)
    costs, values = rng.uniform(0, 1, 40).round(2), rng.uniform(0.5, 1, 40).round(2)
    costs[5], values[5] = costs[6], values[6]  # an exact duplicate: both on or both off
    assert list(pareto_front(costs, values)) == brute_front(list(zip(costs, values)))
    assert list(pareto_front([0.5, np.nan], [0.9, 1.0])) == [True, False]


def test_speedup_interval_and_indicative_mark():
    full = pd_series({0: 100.0, 1: 104.0, 2: 98.0})
    cell = pd_series({0: 50.0, 1: 51.0, 2: 49.5})
    result = speedup(full, cell)
    logs = np.log([100 / 50, 104 / 51, 98 / 49.5])
    low, high = np.exp(t_interval(logs))
    assert result.mean == pytest.approx(np.exp(np.mean(logs)))  # the geometric mean
    assert (result.ci_low, result.ci_high) == (pytest.approx(low), pytest.approx(high))
    assert result.spread == pytest.approx(max(np.std([50, 51, 49.5], ddof=1) / np.mean([50, 51, 49.5]),
                                              np.std([100, 104, 98], ddof=1) / np.mean([100, 104, 98])))
    assert not result.indicative
    # the full cell: 13.8 s, 4.6 s and 11.6 s in three runs
    assert speedup(pd_series({0: 13.8, 1: 4.6, 2: 11.6}), cell).indicative


def test_a_speedup_from_two_seeds_has_no_interval():
    """Two seeds give t = 12.7: the interval would span orders of magnitude, so none is given."""
    two = speedup(pd_series({0: 100.0, 1: 140.0}), pd_series({0: 50.0, 1: 51.0}))
    assert two.n == 2 and two.mean == pytest.approx(np.exp(np.mean(np.log([100 / 50, 140 / 51]))))
    assert two.ci_low is None and two.ci_high is None


def pd_series(mapping):
    import pandas as pd

    return pd.Series(mapping, dtype=float)


# --- a store of known runs -----------------------------------------------------------------

SEEDS = (0, 1, 2)
FULL = [0.900, 0.910, 0.905]
# random at ratio r costs 1 - r; seed 2's 0.5 beats its 0.3 (isotonic pooling is exercised)
RANDOM = {0.3: [0.880, 0.890, 0.870], 0.5: [0.860, 0.870, 0.880], 0.7: [0.820, 0.840, 0.830]}
# "cheap": cost and accuracy per ratio and seed, between, below and above random's range
CHEAP = {0.4: ([0.62, 0.64, 0.60], [0.890, 0.892, 0.886]),
         0.6: ([0.45, 0.46, 0.44], [0.875, 0.880, 0.872]),
         0.2: ([1.20, 1.25, 1.22], [0.905, 0.912, 0.908]),   # costs more than full data: above range
         0.8: ([0.25, 0.20, 0.35], [0.700, 0.690, 0.800])}  # seeds 0, 1 under random's cheapest (0.3)
# "other": seeds 7 and 8, which random never ran: compared with the pooled curve (unpaired)
OTHER = {0.5: ([0.55, 0.55], [0.885, 0.881])}
# model pruning: random-weights and magnitude with FLOPs and params left
DENSE_PARAMS = 1000.0
RW = {0.5: ([0.50, 0.50, 0.50], [0.89, 0.88, 0.885]), 0.9: ([0.10, 0.10, 0.10], [0.70, 0.72, 0.71])}
MAG = {0.5: ([0.60, 0.62, 0.61], [0.895, 0.9, 0.897]), 0.9: ([0.30, 0.31, 0.29], [0.86, 0.87, 0.85])}
N_TRAIN, EPOCHS = 1000, 4


def cell_metrics(cost: float, value: float, **extra) -> dict:
    return {"test_accuracy": value, "cost_rel": cost, "total_sample_passes_rel": cost, "train_seconds": 10.0,
            "scoring_seconds": 0.0, "n_train": N_TRAIN, **extra}


def log(tracker, label, method, family, ratio, seed, metrics, params=None, tags=None):
    cell = Cell("fashion-mnist", method, ratio, seed, "cpu", label=label,
                method_options=tuple(sorted((params or {}).items())))
    run = tracker.start_cell(cell, "cost", {}, {"family": family, "provenance": "reference-code",
                                                "data_origin": "real", "metric": "accuracy", "chance_level": "0.1",
                                                **(tags or {})})
    run.finish(metrics)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('cost')}/mlflow.db"
    tracker = Tracker(uri, "cost")
    for seed, value in zip(SEEDS, FULL):
        log(tracker, "full", "none", "reference", 0.0, seed,
            cell_metrics(1.0, value, flops_remaining_rel=1.0, params_remaining=DENSE_PARAMS,
                         params_total=DENSE_PARAMS))
    for ratio, accs in RANDOM.items():
        for seed, value in zip(SEEDS, accs):
            log(tracker, "random", "random", "data", ratio, seed, cell_metrics(1 - ratio, value))
    for label, table, seeds in (("cheap", CHEAP, SEEDS), ("other", OTHER, (7, 8))):
        for ratio, (costs, accs) in table.items():
            for seed, cost, value in zip(seeds, costs, accs):
                log(tracker, label, "emp", "data", ratio, seed, cell_metrics(cost, value))
    # an el2n run logged before forward passes were counted: 2 proxy runs of 1 epoch, cached scores
    log(tracker, "el2n", "el2n", "data", 0.5, 0, {
        "test_accuracy": 0.86, "total_sample_passes_rel": 0.5 + 2 / EPOCHS, "sample_passes": 0.5 * EPOCHS * N_TRAIN,
        "sample_passes_rel": 0.5, "scoring_sample_passes": 2 * N_TRAIN, "scoring_seconds": 99.0,
        "train_seconds": 8.0, "n_train": N_TRAIN}, params={"proxy_runs": 2}, tags={"scores_cached": "true"})
    for label, table in (("random-weights", RW), ("magnitude", MAG)):
        for ratio, (flops, accs) in table.items():
            for seed, f, value in zip(SEEDS, flops, accs):
                log(tracker, label, label, "model", ratio, seed,
                    cell_metrics(1.0, value, flops_remaining_rel=f, realised_sparsity=ratio,
                                 params_remaining=DENSE_PARAMS * (1 - ratio), params_total=DENSE_PARAMS))
    return uri


def random_curve(seed: int):
    costs = [1.0] + [1 - r for r in RANDOM]
    values = [FULL[seed]] + [RANDOM[r][seed] for r in RANDOM]
    return reference_curve(costs, values)


def pooled_random_curve():
    costs = [1.0] * 3 + [1 - r for r in RANDOM for _ in SEEDS]
    values = FULL + [v for r in RANDOM for v in RANDOM[r]]
    return reference_curve(costs, values)


@pytest.fixture(scope="module")
def data_table(store):
    return family_table(load_runs(store, "cost"), "fashion-mnist", "data").set_index(["method", "ratio"])


def test_delta_at_equal_cost_is_paired_interpolation_with_a_t_interval(data_table):
    for ratio in (0.4, 0.6):
        costs, accs = CHEAP[ratio]
        diffs = [a - np.interp(c, *random_curve(s)) for s, c, a in zip(SEEDS, costs, accs)]
        row = data_table.loc[("cheap", ratio)]
        assert row.delta_at_cost == pytest.approx(np.mean(diffs))
        low, high = t_interval(diffs)
        assert (row.ci_low_at_cost, row.ci_high_at_cost) == (pytest.approx(low), pytest.approx(high))
        assert row.p_at_cost == pytest.approx(stats.ttest_1samp(diffs, 0).pvalue)
        assert row.n_at_cost == 3 and row.paired_at_cost and row.below_at_cost == row.above_at_cost == 0


def test_outside_randoms_range_is_marked_never_extrapolated(data_table):
    above = data_table.loc[("cheap", 0.2)]
    assert above.n_at_cost == 0 and above.above_at_cost == 3 and np.isnan(above.delta_at_cost)
    partly = data_table.loc[("cheap", 0.8)]  # seed 2 (cost 0.35) is inside; seeds 0 and 1 below 0.3
    assert partly.below_at_cost == 2 and partly.n_at_cost == 1
    assert partly.delta_at_cost == pytest.approx(0.800 - np.interp(0.35, *random_curve(2)))
    assert np.isnan(partly.ci_low_at_cost)  # one seed: no interval


def test_seeds_random_never_ran_use_the_pooled_curve(data_table):
    costs, accs = OTHER[0.5]
    diffs = [a - np.interp(c, *pooled_random_curve()) for c, a in zip(costs, accs)]
    row = data_table.loc[("other", 0.5)]
    assert not row.paired_at_cost and row.delta_at_cost == pytest.approx(np.mean(diffs))


def test_cost_of_a_run_logged_before_forward_passes_were_counted_is_derived(data_table):
    row = data_table.loc[("el2n", 0.5)]
    full_passes = EPOCHS * N_TRAIN
    forward = 2 * N_TRAIN  # proxy_runs x n_train
    assert row.cost_rel == pytest.approx(0.5 + 2 / EPOCHS + FORWARD_WEIGHT * forward / full_passes)
    assert row.forward_rel == pytest.approx(forward / full_passes) and row.forward_derived
    # its cached scoring is charged its passes at its own seconds per training pass, not the cached 99 s
    per_pass = 8.0 / (0.5 * full_passes)
    assert row.seconds == pytest.approx(8.0 + (2 * N_TRAIN + FORWARD_WEIGHT * forward) * per_pass)
    assert row.seconds_derived


def test_front_is_the_brute_force_front_of_the_mean_points(store, data_table):
    table = data_table.reset_index()
    points = list(zip(table.cost_rel, table["mean"])) + [(1.0, np.mean(FULL))]
    assert list(table.on_front) == brute_front(points)[:-1]
    expected = {("cheap", 0.4), ("cheap", 0.6), ("cheap", 0.2)}
    assert {(m, r) for m, r, on in zip(table.method, table.ratio, table.on_front) if on} >= expected


def test_area_gap_against_an_independent_integral(store):
    areas = area_table(load_runs(store, "cost"), "fashion-mnist", "data").set_index("method")
    gaps = []
    for i, seed in enumerate(SEEDS):
        pts = sorted((CHEAP[r][0][i], CHEAP[r][1][i]) for r in CHEAP)
        mx, my = np.array([p[0] for p in pts]), np.array([p[1] for p in pts])
        rx, ry = random_curve(seed)
        low, high = max(mx[0], rx[0]), min(mx[-1], rx[-1])
        breaks = sorted(set(mx) | set(rx))
        gap = integrate.quad(lambda c: np.interp(c, mx, my) - np.interp(c, rx, ry), low, high,
                             points=breaks, limit=200)[0]
        gaps.append(gap / (high - low))
    row = areas.loc["cheap"]
    assert row.area_gap == pytest.approx(np.mean(gaps), rel=1e-7)
    low, high = t_interval(gaps)
    assert (row.ci_low, row.ci_high) == (pytest.approx(low, rel=1e-6), pytest.approx(high, rel=1e-6))
    assert row.seeds == 3 and row.paired


def test_model_pruning_at_equal_flops_and_params(store):
    table = family_table(load_runs(store, "cost"), "fashion-mnist", "model").set_index(["method", "ratio"])
    for ratio in (0.5, 0.9):
        flops, accs = MAG[ratio]
        curves = [reference_curve([1.0] + [RW[r][0][s] for r in RW], [FULL[s]] + [RW[r][1][s] for r in RW])
                  for s in SEEDS]
        diffs = [a - np.interp(f, *curves[s]) for s, f, a in zip(SEEDS, flops, accs)]
        row = table.loc[("magnitude", ratio)]
        assert row.delta_at_flops == pytest.approx(np.mean(diffs))
        # equal params left: magnitude and random-weights remove the same count, so it is the paired Δ
        assert row.delta_at_params == pytest.approx(np.mean(np.subtract(accs, RW[ratio][1])))


def test_board_shows_the_marks_and_the_rankings(store):
    board = build_board(load_runs(store, "cost"), "cost")
    text = render_markdown(board)
    assert "out of range (3 above range)" in text
    assert "(1 seed, 2 below range)" in text
    assert "unpaired" in text and "†" in text and "★" in text
    assert "area gap vs random" in text
    _, rows = rankings(board.tables[("fashion-mnist", "data")], "data")
    by_ratio = {r[0]: r for r in rows}
    # at 0.5 el2n (0.86) ties random's accuracy but costs 1.17 x full: outside random's range
    assert "no Δ: el2n" in by_ratio["0.5"][2]


# --- counting in real cells ----------------------------------------------------------------

needs_data = pytest.mark.skipif(not Path(DEBIAN_DIR).is_dir(), reason="needs Debian's dataset-fashion-mnist")


@needs_data
def test_real_cells_log_every_pass_el2n_and_seven_pre(tmp_path):
    torch.set_num_threads(1)
    sweep = parse_sweep({"name": "count", "profile": "smoke", "seeds": [0], "ratios": [0.3, 0.5],
                         "tasks": ["fashion-mnist"],
                         "methods": [{"name": "el2n", "options": {"proxy_runs": 2, "score_epochs": 1}},
                                     {"name": "seven", "ratios": [0.5],
                                      "options": {"variant": "pre", "pre_batches": 4}},
                                     {"name": "emp", "ratios": [0.5]}, {"name": "ted", "ratios": [0.5]}]})
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = Tracker(uri, "count")
    report = run_sweep(sweep, tracker, torch.device("cpu"), tmp_path / "cache", quiet=True)
    assert report.ok
    runs = {(r.data.tags["label"], float(r.data.params["ratio"])): r.data
            for r in MlflowClient(uri).search_runs([tracker.experiment_id])}
    n, epochs, batch = 576, 2, 64  # smoke: 640 images less 64 for validation; 2 epochs of batch 64
    first, second = runs[("el2n", 0.3)], runs[("el2n", 0.5)]
    for data in (first, second):
        m = data.metrics
        assert m["scoring_sample_passes"] == 2 * 1 * n  # proxy runs x score epochs x n
        assert m["scoring_forward_passes"] == 2 * n  # one scoring pass over the train set per proxy
        assert m["cost_passes"] == pytest.approx(m["sample_passes"] + 2 * n + 2 * n / 3)
        assert m["cost_rel"] == pytest.approx(m["cost_passes"] / (epochs * n))
    cached = [d for d in (first, second) if d.tags["scores_cached"] == "true"]
    fresh = [d for d in (first, second) if d.tags["scores_cached"] == "false"]
    assert len(cached) == len(fresh) == 1
    m = cached[0].metrics
    assert m["cached_scoring_seconds"] == pytest.approx(fresh[0].metrics["scoring_seconds"])
    assert m["scoring_seconds"] == pytest.approx((2 * n + 2 * n / 3) * m["train_seconds"] / m["sample_passes"])
    seven = runs[("seven", 0.5)].metrics
    # SEVEN_pre: 4 forward+backward batches on the pre-trained weights, counted at weight 1
    assert seven["scoring_sample_passes"] == 4 * batch and seven["scoring_forward_passes"] == 0
    assert seven["cost_passes"] == seven["sample_passes"] + 4 * batch
    assert seven["sample_passes"] == epochs * n
    # EMP and TED score from the training forward pass itself: no passes beyond training
    for label in ("emp", "ted"):
        m = runs[(label, 0.5)].metrics
        assert m["scoring_sample_passes"] == m["scoring_forward_passes"] == 0
        assert m["cost_passes"] == m["sample_passes"] and m["cost_rel"] == m["sample_passes_rel"]
    # EMP trains every sample in epoch 0 and the top half in epoch 1
    assert runs[("emp", 0.5)].metrics["sample_passes"] == n + n // 2
