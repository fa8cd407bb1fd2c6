"""A lower-is-better metric (perplexity) on the board: every order, mark, win and curve follows
the metric's direction, against independent computations; a higher-is-better board is unchanged.

The store holds one post-training model-pruning board twice: ``ppl-toy`` logs perplexities
(tag ``metric_higher_is_better=false``) and ``neg-toy`` the same numbers negated as a
higher-is-better metric. Negating the values and the direction together must leave every order,
rank, mark, win and front as it was and negate every Δ: a mirror check on top of the exact values.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from scipy.optimize import isotonic_regression

from benchmark.boards import direction
from benchmark.boards.compare import compare_lines
from benchmark.boards.cost_stats import monotone_curve, pareto_front
from benchmark.boards.format import detail_columns, overview, rankings, task_heading
from benchmark.boards.leaderboard import (_higher_is_better, area_table, build_board, family_table, load_runs,
                                          reference_on_front)
from benchmark.boards.markdown import render_markdown
from benchmark.boards.stats import compare_paired
from benchmark.sweeps.cells import Cell
from benchmark.sweeps.tracking import Tracker

SEEDS = (0, 1, 2)
DENSE_PARAMS = 1000.0
DENSE = [20.0, 20.5, 19.8]
# label -> ratio -> (FLOPs × dense per seed, perplexity per seed); random-weights' seed 2 at ratio
# 0.3 (18.0) beats the dense model (19.8) at more cost: the non-increasing fit must pool the two
PPL = {
    "random-weights": {0.3: ([0.7] * 3, [25.0, 24.0, 18.0]), 0.5: ([0.5] * 3, [60.0, 65.0, 58.0]),
                       0.7: ([0.3] * 3, [300.0, 280.0, 320.0])},
    "magnitude": {0.5: ([0.55, 0.60, 0.52], [40.0, 42.0, 41.0]), 0.7: ([0.35, 0.32, 0.31], [150.0, 160.0, 155.0])},
    "wanda": {0.5: ([0.5] * 3, [30.0, 31.0, 30.5]), 0.7: ([0.3] * 3, [90.0, 95.0, 92.0])},
    # 2 to 3.5 worse than wanda at 0.5 (a paired t-test p of 0.026); the same as wanda at 0.7: a tie
    "sparsegpt": {0.5: ([0.5] * 3, [32.0, 34.5, 33.0]), 0.7: ([0.3] * 3, [90.0, 95.0, 92.0])},
}
LOWER, MIRROR = "ppl-toy", "neg-toy"


def log(tracker, task, label, ratio, seed, flops, value, sign, tags):
    method = {"dense": "none"}.get(label, label)
    family = "reference" if label == "dense" else "model"
    run = tracker.start_cell(Cell(task, method, ratio, seed, "cpu", label=label), "direction", {},
                             {"family": family, "provenance": "reference-code", "data_origin": "real", **tags})
    metric = tags["metric"]
    run.finish({f"test_{metric}": sign * value, "flops_remaining_rel": flops, "realised_sparsity": ratio,
                "params_remaining": DENSE_PARAMS * (1 - ratio), "params_total": DENSE_PARAMS, "cost_rel": 1.0,
                "total_sample_passes_rel": 1.0, "train_seconds": 5.0, "scoring_seconds": 0.0})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    uri = f"sqlite:///{tmp_path_factory.mktemp('direction')}/mlflow.db"
    tracker = Tracker(uri, "direction")
    tasks = {LOWER: (1.0, {"metric": "perplexity", "metric_higher_is_better": "false", "chance_level": "0.0",
                           "metric_bounds": "1.0,inf"}),
             MIRROR: (-1.0, {"metric": "negppl", "metric_higher_is_better": "true", "chance_level": "-1000.0",
                             "metric_bounds": "none"})}
    for task, (sign, tags) in tasks.items():
        for seed, value in zip(SEEDS, DENSE):
            log(tracker, task, "dense", 0.0, seed, 1.0, value, sign, tags)
        for label, by_ratio in PPL.items():
            for ratio, (flops, values) in by_ratio.items():
                for seed, f, value in zip(SEEDS, flops, values):
                    log(tracker, task, label, ratio, seed, f, value, sign, tags)
    return load_runs(uri, "direction")


@pytest.fixture(scope="module")
def table(runs):
    return family_table(runs, LOWER, "model")


@pytest.fixture(scope="module")
def mirror(runs):
    return family_table(runs, MIRROR, "model")


def test_the_direction_is_read_from_the_tag_then_the_task_then_defaults_to_higher(runs):
    assert set(runs[runs.task == LOWER].higher_is_better) == {False}
    assert set(runs[runs.task == MIRROR].higher_is_better) == {True}
    assert _higher_is_better({"task": "fashion-mnist", "metric_higher_is_better": "false"}) is False
    assert _higher_is_better({"task": "ppl-speeches"}) is False  # untagged: the registered task's attribute
    assert _higher_is_better({"task": "fashion-mnist"}) is True
    assert _higher_is_better({"task": "no-such-task"}) is True  # unknown and untagged: as every run before the tag


def test_runs_that_disagree_on_the_direction_are_a_clear_error(runs):
    mixed = runs[runs.task == LOWER].copy()
    mixed.loc[mixed.index[0], "higher_is_better"] = True
    with pytest.raises(ValueError, match="ppl-toy.*both true and false"):
        family_table(mixed, LOWER, "model")


def test_rows_sorted_ascending_with_rank_and_best_the_lowest_mean(table):
    means = {(label, ratio): float(np.mean(values)) for label, by in PPL.items() for ratio, (_, values) in by.items()}
    for ratio in (0.3, 0.5, 0.7):
        rows = table[table.ratio == ratio]
        expected = sorted((m, label) for (label, r), m in means.items() if r == ratio)
        assert list(rows.method) == [label for _, label in expected]
        assert list(rows["mean"]) == pytest.approx([m for m, _ in expected])
    by = table.set_index(["method", "ratio"])
    # 0.5: wanda 30.5 < sparsegpt 33.17 < magnitude 41 < random-weights 61; 0.7: wanda = sparsegpt tie
    assert [by.loc[(m, 0.5), "rank"] for m in ("wanda", "sparsegpt", "magnitude", "random-weights")] == [1, 2, 3, 4]
    assert [by.loc[(m, 0.7), "rank"] for m in ("sparsegpt", "wanda", "magnitude", "random-weights")] == [1, 1, 3, 4]
    assert by.loc[("random-weights", 0.3), "rank"] == 1
    # best: wanda at 0.5 beats sparsegpt by a paired difference that is not noise, lower
    diffs = np.subtract(PPL["wanda"][0.5][1], PPL["sparsegpt"][0.5][1])
    assert by.loc[("wanda", 0.5), "p_next"] == pytest.approx(stats.ttest_1samp(diffs, 0).pvalue)
    assert stats.ttest_1samp(diffs, 0).pvalue < 0.05
    assert {k for k, b in by.best.items() if b} == {("wanda", 0.5)}  # the 0.7 tie is no best
    assert by.loc[("sparsegpt", 0.7), "p_next"] == 1.0


def test_delta_is_method_minus_reference_and_a_win_is_lower(table):
    by = table.set_index(["method", "ratio"])
    row = by.loc[("magnitude", 0.5)]
    assert row.delta_full == pytest.approx(np.mean(np.subtract(PPL["magnitude"][0.5][1], DENSE)))  # worse: > 0
    assert row.wins_full == 0 and row.losses_full == 3
    to_random = np.subtract(PPL["magnitude"][0.5][1], PPL["random-weights"][0.5][1])
    assert row.delta_random == pytest.approx(np.mean(to_random)) and row.delta_random < 0  # better: < 0
    assert row.wins_random == 3 and row.losses_random == 0
    assert row.p_random == pytest.approx(stats.ttest_rel(PPL["magnitude"][0.5][1], PPL["random-weights"][0.5][1]).pvalue)
    # random-weights' seed 2 at 0.3 (18.0) is lower than the dense 19.8: one win against full
    rw = by.loc[("random-weights", 0.3)]
    assert (rw.wins_full, rw.losses_full) == (1, 2)


def baseline_curve(seed):
    """Random-weights' curve of one seed by hand: its cells and the dense one sorted by FLOPs,
    scipy's non-increasing isotonic regression (equal costs are not merged here: none repeat)."""
    points = sorted([(1.0, DENSE[seed])] + [(f[seed], v[seed]) for f, v in PPL["random-weights"].values()])
    xs, ys = map(np.array, zip(*points))
    return xs, isotonic_regression(ys, increasing=False).x


def test_the_baseline_curve_is_non_increasing_and_pools_the_violation():
    xs, ys = baseline_curve(2)
    assert list(ys) == pytest.approx([320.0, 58.0, 18.9, 18.9])  # 18.0 at 0.7 pooled with the dense 19.8
    curve = monotone_curve(xs, [320.0, 58.0, 18.0, 19.8], higher=False)
    assert list(curve.y) == pytest.approx(list(ys))
    assert list(monotone_curve(xs, [-320.0, -58.0, -18.0, -19.8]).y) == pytest.approx(list(-ys))


def test_delta_at_equal_flops_against_the_non_increasing_curve(table):
    by = table.set_index(["method", "ratio"])
    for label in ("magnitude", "wanda", "sparsegpt"):
        for ratio, (flops, values) in PPL[label].items():
            diffs = [v - np.interp(f, *baseline_curve(s)) for s, f, v in zip(SEEDS, flops, values)]
            row = by.loc[(label, ratio)]
            assert row.delta_at_flops == pytest.approx(np.mean(diffs))
            assert row.p_at_flops == pytest.approx(stats.ttest_1samp(diffs, 0).pvalue)
            assert row.n_at_flops == 3 and row.paired_at_flops and row.below_at_flops == row.above_at_flops == 0
    assert by.loc[("wanda", 0.7), "delta_at_flops"] < 0  # lower than random-weights at the same FLOPs


def lower_front(points):
    """The front by brute force, lower value better: no other point as cheap and as low, one strictly."""
    return [not any(c2 <= c and v2 <= v and (c2 < c or v2 < v) for c2, v2 in points) for c, v in points]


def test_front_flags_take_the_lowest_perplexity(runs, table):
    points = list(zip(table.flops_rel, table["mean"])) + [(1.0, np.mean(DENSE))]
    expected = lower_front(points)
    assert list(table.on_front) == expected[:-1]
    board = build_board(runs, "direction")
    assert reference_on_front(board, LOWER, "model") == expected[-1]
    on = {(m, r) for m, r, f in zip(table.method, table.ratio, table.on_front) if f}
    assert ("wanda", 0.5) in on and ("random-weights", 0.5) not in on
    assert list(pareto_front([1.0, 2.0], [5.0, 3.0], higher=False)) == [True, True]
    assert list(pareto_front([1.0, 2.0], [3.0, 5.0], higher=False)) == [True, False]


def test_area_gap_is_negative_for_a_better_method_and_ordered_lowest_first(runs):
    areas = area_table(runs, LOWER, "model")
    assert list(areas.area_gap) == sorted(areas.area_gap)
    by = areas.set_index("method")
    for label in ("magnitude", "wanda"):
        gaps = []
        for s in SEEDS:
            mx, my = zip(*sorted((f[s], v[s]) for f, v in PPL[label].values()))
            bx, by_ = baseline_curve(s)
            grid = np.linspace(max(mx[0], bx[0]), min(mx[-1], bx[-1]), 200001)
            gap = np.interp(grid, mx, my) - np.interp(grid, bx, by_)
            gaps.append(np.trapezoid(gap, grid) / (grid[-1] - grid[0]))
        assert by.loc[label, "area_gap"] == pytest.approx(np.mean(gaps), rel=1e-6)
        assert by.loc[label, "area_gap"] < 0


def test_negating_values_and_direction_changes_no_order_and_negates_every_delta(table, mirror, runs):
    assert list(mirror.method) == list(table.method) and list(mirror.ratio) == list(table.ratio)
    for column in ("rank", "best", "on_front", "wins_full", "losses_full", "wins_random", "losses_random", "p_next"):
        assert list(mirror[column].fillna(-1)) == list(table[column].fillna(-1)), column
    for column in ("mean", "delta_full", "delta_random", "delta_at_flops", "delta_at_params"):
        assert list(mirror[column].astype(float).fillna(0)) == pytest.approx(list(-table[column].astype(float).fillna(0)))
    lower_areas, mirror_areas = area_table(runs, LOWER, "model"), area_table(runs, MIRROR, "model")
    assert list(mirror_areas.method) == list(lower_areas.method)
    assert list(mirror_areas.area_gap) == pytest.approx(list(-lower_areas.area_gap))
    assert rankings(mirror, "model")[1] == rankings(table, "model")[1]
    assert overview(mirror)[1][0][0] == overview(table)[1][0][0] == "wanda"  # best mean over ratios first


def test_normalised_score_skips_perplexity_and_says_why(runs):
    board = build_board(runs, "direction")
    assert set(board.normalised_skipped) == {LOWER}
    assert "chance level 0 is not worse" in board.normalised_skipped[LOWER]
    assert "lower is better" in board.normalised_skipped[LOWER]
    # the mirror task has a chance level on its worse side: full = 100, chance = 0
    scores = board.normalised.set_index(["method", "ratio"])
    full, chance = -np.mean(DENSE), -1000.0
    expected = np.mean([100 * (-v - chance) / (full - chance) for v in PPL["wanda"][0.5][1]])
    assert scores.loc[("wanda", 0.5), "score"] == pytest.approx(expected)
    assert scores.loc[("wanda", 0.5), "tasks"] == 1
    only = build_board(runs[runs.task == LOWER], "direction")
    assert only.normalised.empty and set(only.normalised_skipped) == {LOWER}
    text = render_markdown(only)
    assert f"Normalised score leaves out {LOWER}: its chance level 0 is not worse" in text


def test_headers_say_lower_is_better_and_a_higher_board_reads_as_before(runs):
    board = build_board(runs, "direction")
    assert detail_columns("model", "perplexity", False)[2] == "perplexity mean ± std (lower is better)"
    assert detail_columns("model", "accuracy")[2] == "accuracy mean ± std"
    assert task_heading(board, LOWER) == "ppl-toy (real data), test perplexity (lower is better)"
    assert task_heading(board, MIRROR) == "neg-toy (real data), test negppl"
    text = render_markdown(board)
    assert "perplexity mean ± std (lower is better)" in text and re.search(r"\| negppl mean ± std +\|", text)
    assert "Lower is better for perplexity: rows" in text and "Lower is better for negppl" not in text
    assert "Pareto front (★, perplexity (lower is better) against FLOPs" in text
    assert "| wanda ◆ ▲ " in text  # the best of r=0.5 (lowest), ahead of the next best by more than noise


def test_compare_counts_a_lower_perplexity_as_a_win(runs):
    lines = compare_lines(runs, LOWER, 0.5, "wanda", "sparsegpt")
    assert lines[-1].startswith("wanda - sparsegpt: -2.6667 over 3 common seed(s)")
    assert "wanda won 3/3 (lower is better)" in lines[-1]
    mirrored = compare_lines(runs, MIRROR, 0.5, "wanda", "sparsegpt")
    assert "wanda won 3/3" in mirrored[-1] and "+2.6667" in mirrored[-1]


def test_direction_helpers():
    assert direction.better(1.0, 2.0, False) and not direction.better(1.0, 2.0, True)
    assert not direction.better(2.0, 2.0, False)
    ranks = direction.rank_best_first(pd.Series([3.0, 1.0, 1.0, np.nan]), higher=False)
    assert list(ranks.fillna(0)) == [3.0, 1.0, 1.0, 0.0]
    assert list(direction.rank_best_first(pd.Series([3.0, 1.0, 3.0]), higher=True)) == [1.0, 3.0, 1.0]
    assert compare_paired(pd.Series([1.0, 2.0]), pd.Series([2.0, 3.0]), higher=False).wins == 2
    assert direction.parse_tag("False") is False and direction.parse_tag("maybe") is None


def test_plots_label_the_axis_and_draw_the_non_increasing_baseline(runs):
    from benchmark.boards.plots import board_figures

    figures = board_figures(build_board(runs[runs.task == LOWER], "direction"))
    assert sorted(figures) == ["ppl-toy-delta-vs-ratio.png", "ppl-toy-metric-vs-cost.png", "ppl-toy-metric-vs-ratio.png"]
    for name, figure in figures.items():
        label = "test perplexity (lower is better)"
        assert [ax.get_ylabel() for ax in figure.axes] == [f"Δ {label} vs random-weights" if "delta" in name else label]
    ax = figures["ppl-toy-metric-vs-cost.png"].axes[0]
    fit = [line for line in ax.get_lines() if line.get_label() == "random-weights: monotone fit"][0]
    assert np.all(np.diff(fit.get_ydata()) <= 0)  # pooled over seeds, never higher at more FLOPs


def test_a_board_without_random_weights_compares_model_pruning_with_magnitude(runs):
    """A post-training LLM board runs magnitude, not random weights: magnitude becomes the baseline
    of every Δ-baseline column and curve, and the headings name it."""
    from benchmark.boards.format import detail_tables
    from benchmark.boards.leaderboard import family_baseline, table_baseline

    no_random = runs[runs.label != "random-weights"]
    lower = no_random[no_random.task == LOWER]
    assert family_baseline(lower, "model") == "magnitude"
    assert family_baseline(runs[runs.task == LOWER], "model") == "random-weights"  # preferred when present
    table = family_table(no_random, LOWER, "model")
    assert set(table.baseline) == {"magnitude"} and table_baseline(table, "model") == "magnitude"
    for ratio in (0.5, 0.7):
        row = table[(table.method == "wanda") & (table.ratio == ratio)].iloc[0]
        differences = np.subtract(PPL["wanda"][ratio][1], PPL["magnitude"][ratio][1])
        assert row.delta_random == pytest.approx(differences.mean(), rel=1e-12)
        assert row.p_random == pytest.approx(stats.ttest_rel(PPL["wanda"][ratio][1], PPL["magnitude"][ratio][1]).pvalue,
                                             rel=1e-9)
        assert row.wins_random == 3  # lower perplexity than magnitude on every seed
    headers = detail_tables(table, "model", "perplexity", False, False)[0][1]
    assert "Δ magnitude @ equal ratio" in headers and not any("random-weights" in h for h in headers)
    markdown = render_markdown(build_board(no_random[no_random.task == LOWER], "direction"))
    assert "Δ magnitude @ equal ratio" in markdown and "area gap to magnitude" in markdown
    assert "random-weights" not in markdown


def test_a_metric_spanning_orders_of_magnitude_is_plotted_on_a_log_axis(runs):
    """Perplexity after heavy pruning spans orders of magnitude (one-shot magnitude at 70% ran to
    10^5 on SmolLM2): the metric plots go on a log axis, the Δ plot on a symmetric log one, and the
    axis labels say so; the board above (span 16x) stays linear."""
    from benchmark.boards.plots import board_figures

    lower = runs[runs.task == LOWER].copy()
    heavy = (lower.label == "magnitude") & (lower.ratio == 0.7)
    lower.loc[heavy, "value"] = lower.loc[heavy, "value"] * 100  # 15,000-16,000 against a dense 20
    figures = board_figures(build_board(lower, "direction"))
    scales = {name: (ax.get_yscale(), ax.get_ylabel()) for name, figure in figures.items() for ax in figure.axes}
    assert scales["ppl-toy-metric-vs-ratio.png"] == ("log", "test perplexity (lower is better) (log scale)")
    assert scales["ppl-toy-metric-vs-cost.png"][0] == "log"
    assert scales["ppl-toy-delta-vs-ratio.png"][0] == "symlog" and "(symlog scale)" in scales["ppl-toy-delta-vs-ratio.png"][1]
    linear = board_figures(build_board(runs[runs.task == LOWER], "direction"))
    assert {ax.get_yscale() for figure in linear.values() for ax in figure.axes} == {"linear"}
