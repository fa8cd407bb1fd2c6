"""How the leaderboard's numbers are written: one definition of every column, shared by
the markdown and the HTML renderings so that both show exactly the same text."""
from __future__ import annotations

import math

import pandas as pd

from ..training.cost import FORWARD_WEIGHT
from . import direction
from .cost_stats import MIN_RATIO_SEEDS, TIMING_SPREAD_LIMIT
from .leaderboard import EQUAL_COST, FAMILY_BASELINE, Board, reference_on_front

NOISE_MARK = "≈"  # the difference is within noise (paired t-test p >= 0.05)
FEW_SEEDS = "too few seeds"
DERIVED_MARK = "†"  # the figure is derived from the run's logged params (logged before it was counted)
INDICATIVE_MARK = "~"  # wall-clock: the runs' own timing spread is large (or one seed)
FRONT_MARK = "★"  # on the family's metric-cost Pareto front
BEST_MARK = "▲"  # the best mean at its ratio, ahead of the next by more than noise
COST_NAMES = {"cost": "cost", "flops": "FLOPs", "params": "params"}


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value)


def number(value, spec: str = ".4f", signed: bool = False) -> str:
    if missing(value):
        return "-"
    return f"{value:+{spec}}" if signed else f"{value:{spec}}"


def mean_std(mean, std) -> str:
    return f"{number(mean)} ± {number(std)}" if not missing(std) else f"{number(mean)} (1 seed)"


def interval(low, high) -> str:
    return FEW_SEEDS if missing(low) else f"[{low:.4f}, {high:.4f}]"


def delta(mean_diff, p_value, noise, wins, pairs) -> str:
    """Paired difference, e.g. ``+0.0123 (p=0.041, won 3/3)``; ``≈`` marks noise."""
    if missing(mean_diff):
        return "-"
    text = f"{mean_diff:+.4f}"
    if missing(p_value):
        return f"{text} ({int(pairs)} seed{'s' if pairs != 1 else ''}: no test)"
    mark = f" {NOISE_MARK}" if noise else ""
    return f"{text}{mark} (p={p_value:.3f}, won {int(wins)}/{int(pairs)})"


def count(value) -> str:
    if missing(value):
        return "-"
    return f"{value / 1e6:.3f}M" if value >= 1e5 else f"{value:,.0f}"


def peak_memory(rss_mb, device_mb) -> str:
    """``6,239`` (process RSS, MB), with the accelerator's peak after a slash when there is one."""
    if missing(rss_mb):
        return "-"
    return f"{rss_mb:,.0f}" if missing(device_mb) else f"{rss_mb:,.0f} / {device_mb:,.0f} GPU"


def equal_cost(row, name: str) -> str:
    """Δ baseline at equal cost with its interval, or why there is none."""
    n, below, above = row[f"n_at_{name}"], row[f"below_at_{name}"], row[f"above_at_{name}"]
    if missing(n):
        return "baseline"
    outside = [f"{int(k)} {side} range" for k, side in ((below, "below"), (above, "above")) if k]
    if not n:
        return "out of range (" + ", ".join(outside) + ")" if outside else "-"
    low, high = row[f"ci_low_at_{name}"], row[f"ci_high_at_{name}"]
    text = f"{row[f'delta_at_{name}']:+.4f} " + (f"[{low:+.4f}, {high:+.4f}]" if not missing(low) else "")
    notes = [f"{int(n)} seed{'s' if n != 1 else ''}"] + outside + ([] if row[f"paired_at_{name}"] else ["unpaired"])
    return f"{text.strip()} ({', '.join(notes)})"


def speedup_text(row) -> str:
    if missing(row.speedup):
        return "-"
    mark = f" {INDICATIVE_MARK}" if row.speedup_indicative else ""
    if missing(row.speedup_ci_low):
        return f"{row.speedup:.2f} (< {MIN_RATIO_SEEDS} seeds: no interval){mark}"
    return f"{row.speedup:.2f} [{row.speedup_ci_low:.2f}, {row.speedup_ci_high:.2f}]{mark}"


def detail_columns(family: str, metric: str, higher: bool = True) -> list[str]:
    baseline = FAMILY_BASELINE[family]
    at_cost = [f"Δ {baseline} @ equal {COST_NAMES[axis.name]}" for axis in EQUAL_COST[family]]
    cost = (["kept", "cost ×full", "fwd passes ×full", "speedup ×full"] if family == "data"
            else ["sparsity", "params left", "FLOPs ×dense", "cost ×full"])
    return ["method", "ratio", f"{metric} mean ± std{direction.note(higher)}", "95% CI", "seeds", "Δ full",
            f"Δ {baseline} @ equal ratio", *at_cost, "test loss", *cost, "seconds", "peak MB", "front",
            "provenance"]


def detail_rows(table: pd.DataFrame, family: str) -> list[list[tuple[str, object]]]:
    """Each cell as (text, sort key); the sort key is the number behind the text."""
    out = []
    for _, r in table.iterrows():
        derived = DERIVED_MARK if r.forward_derived else ""
        total = (number(r.cost_rel, ".2f") + derived, r.cost_rel)
        if family == "data":
            cost = [(number(r.realised, ".3f"), r.realised), total,
                    (number(r.forward_rel, ".2f") + derived, r.forward_rel), (speedup_text(r), r.speedup)]
        else:
            cost = [(number(r.realised, ".3f"), r.realised), (count(r.params_remaining), r.params_remaining),
                    (number(r.flops_rel, ".3f"), r.flops_rel), total]
        out.append([
            (r.method + best_mark(r.get("best")), r.method), (f"{r.ratio:g}", r.ratio),
            (mean_std(r["mean"], r["std"]), r["mean"]),
            (interval(r.ci_low, r.ci_high), r.ci_low), (str(r.seeds), r.seeds),
            (delta(r.delta_full, r.p_full, r.noise_full, r.wins_full, r.pairs_full), r.delta_full),
            (delta(r.delta_random, r.p_random, r.noise_random, r.wins_random, r.pairs_random), r.delta_random),
            *[(equal_cost(r, axis.name), r[f"delta_at_{axis.name}"]) for axis in EQUAL_COST[family]],
            (number(r.loss), r.loss), *cost,
            (number(r.seconds, ".0f") + (DERIVED_MARK if r.seconds_derived else ""), r.seconds),
            (peak_memory(r.peak_rss_mb, r.peak_device_mb), r.peak_rss_mb),
            (FRONT_MARK if r.get("on_front") else "", int(bool(r.get("on_front")))), (r.provenance, r.provenance),
        ])
    return out


def area_columns(family: str) -> list[str]:
    name = COST_NAMES[EQUAL_COST[family][0].name]
    return ["rank", "method", f"area gap vs {FAMILY_BASELINE[family]} (mean Δ over common {name} range)", "95% CI",
            "seeds", f"common {name} range", "ratios"]


def area_rows(areas: pd.DataFrame) -> list[list[str]]:
    rows = []
    for rank, r in enumerate(areas.itertuples(), start=1):
        span = "-" if missing(r.range_low) else f"{r.range_low:.3g} – {r.range_high:.3g}"
        note = "" if r.paired else " (unpaired)"
        if r.points == 1 and not missing(r.area_gap):
            note += " (one cost point: the Δ there)"
        if missing(r.area_gap):
            rows.append(["-", r.method, "no common cost range with the baseline", "-", "0", span, str(r.ratios)])
            continue
        rows.append([str(rank), r.method, number(r.area_gap, "+.4f") + note, interval_signed(r.ci_low, r.ci_high),
                     str(r.seeds), span, str(r.ratios)])
    return rows


def interval_signed(low, high) -> str:
    return FEW_SEEDS if missing(low) else f"[{low:+.4f}, {high:+.4f}]"


def rankings(table: pd.DataFrame, family: str) -> tuple[list[str], list[list[str]]]:
    """Per ratio: the methods by mean metric (equal ratio) and by Δ baseline at equal cost
    (the baseline at 0; cells with no Δ, out of random's range, listed apart), both best
    first in the metric's direction, and where the two orders disagree (the pairs that swap)."""
    name = EQUAL_COST[family][0].name
    baseline = FAMILY_BASELINE[family]
    first = direction.ascending(direction.higher_is_better(table))
    out = []
    for ratio, rows in table.groupby("ratio", sort=True):
        by_ratio = list(rows.sort_values(["mean", "method"], ascending=[first, True]).method)
        at_cost = rows.assign(key=[0.0 if m == baseline else d for m, d in zip(rows.method, rows[f"delta_at_{name}"])])
        ranked = at_cost[at_cost.key.notna()].sort_values(["key", "method"], ascending=[first, True])
        by_cost = list(ranked.method)
        unranked = sorted(set(rows.method) - set(by_cost))
        common = [m for m in by_ratio if m in by_cost]
        swaps = [f"{a} / {b}" for i, a in enumerate(common) for b in common[i + 1:]
                 if by_cost.index(a) > by_cost.index(b)]
        cost_text = " > ".join(by_cost) + (f"; no Δ: {', '.join(unranked)}" if unranked else "")
        out.append([f"{ratio:g}", " > ".join(by_ratio), cost_text,
                    "agree" if not swaps and not unranked else "; ".join(
                        (["swapped: " + ", ".join(swaps)] if swaps else [])
                        + ([f"not comparable at equal cost: {', '.join(unranked)}"] if unranked else []))])
    return (["ratio", "by mean metric (equal ratio)", f"by Δ {baseline} at equal {COST_NAMES[name]}",
             "where they disagree"], out)


def cost_sections(board: Board, task: str, family: str) -> list[tuple[str, list[str], list[list[str]]]]:
    """The equal-cost part of a family's block: (caption, headers, rows); no headers = a line of text."""
    table = board.tables[(task, family)]
    out = [(front_line(board, task, family), [], [])]
    areas = board.areas.get((task, family))
    if areas is not None:
        out.append((f"One number per method, accounting for cost (best first): the area gap to "
                    f"{FAMILY_BASELINE[family]}.", area_columns(family), area_rows(areas)))
    out.append(("Ranking at equal ratio against ranking at equal cost.", *rankings(table, family)))
    return out


def front_line(board: Board, task: str, family: str) -> str:
    table = board.tables[(task, family)]
    on = table[table.on_front.astype(bool)] if "on_front" in table else table.iloc[0:0]
    cells = ", ".join(f"{m} {r:g}" for m, r in zip(on.method, on.ratio)) or "none"
    reference = reference_on_front(board, task, family)
    axis = COST_NAMES[EQUAL_COST[family][0].name]
    full = "; the full-data / dense reference is on it" if reference else ""
    info = board.task_info(task)
    metric = direction.metric_label(info["metric"], info["higher_is_better"])
    return f"Pareto front ({FRONT_MARK}, {metric} against {axis}, means over seeds): {cells}{full}."


def best_mark(best) -> str:
    return f" {BEST_MARK}" if not missing(best) and bool(best) else ""


def overview(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Method x ratio grid of mean ± std (the best of a ratio marked), methods by their mean over ratios."""
    best = table["best"] if "best" in table else [False] * len(table)
    grid = table.assign(shown=[mean_std(m, s) + best_mark(b) for m, s, b in zip(table["mean"], table["std"], best)])
    grid = grid.pivot(index="method", columns="ratio", values="shown").fillna("")
    first = direction.ascending(direction.higher_is_better(table))
    order = table.groupby("method")["mean"].mean().sort_values(ascending=first, kind="stable").index
    grid = grid.loc[order]
    return ["method"] + [f"r={r:g}" for r in grid.columns], grid.reset_index().values.tolist()


def normalised_grid(board: Board, family: str) -> tuple[list[str], list[list[str]]]:
    rows = board.normalised[board.normalised.family == family] if not board.normalised.empty else board.normalised
    if rows.empty:
        return [], []
    grid = rows.assign(shown=[f"{s:.1f} ({t} task{'s' if t != 1 else ''})" for s, t in zip(rows.score, rows.tasks)])
    grid = grid.pivot(index="method", columns="ratio", values="shown").fillna("")
    return ["method"] + [f"r={r:g}" for r in grid.columns], grid.reset_index().values.tolist()


def normalised_note(board: Board) -> str:
    """The tasks the normalised score leaves out and why ('' when it leaves out none)."""
    if not board.normalised_skipped:
        return ""
    return "Normalised score leaves out " + "; ".join(
        f"{task}: {why}" for task, why in sorted(board.normalised_skipped.items())) + "."


def task_heading(board: Board, task: str) -> str:
    info = board.task_info(task)
    origin = "SIMULATED data" if info["data_origin"] == "simulated" else f"{info['data_origin']} data"
    return f"{task} ({origin}), test {direction.metric_label(info['metric'], info['higher_is_better'])}"


def reference_line(board: Board, task: str) -> str:
    info = board.task_info(task)
    full = info["full"]
    # a lower-is-better task says once how its figures read
    lower = "" if info["higher_is_better"] else (
        f" Lower is better for {info['metric']}: rows, rank, {BEST_MARK}, wins and {FRONT_MARK} take the lowest as "
        "the best, and a negative Δ is an improvement.")
    if full.n == 0:
        return "No full-data / dense reference cell finished yet: Δ full is empty." + lower
    if full.n == 1:
        return f"Full data / dense reference: {number(full.mean)}, one seed ({FEW_SEEDS} for an interval)." + lower
    return (f"Full data / dense reference: {mean_std(full.mean, full.std)} over {full.n} seeds, "
            f"95% CI {interval(full.ci_low, full.ci_high)}." + lower)


LEGEND = (
    "Headline: the test metric at the END of training (never an epoch picked on test; for a post-training task,"
    " after pruning), mean ± sample std over seeds, with the 95% confidence interval of the mean (Student's t; for a bounded metric on the logit scale of"
    " its range, so the interval stays inside it). Δ full / Δ baseline @ equal ratio: "
    "mean paired difference (same task, ratio and seed), two-sided paired t-test p-value and wins; "
    f"{NOISE_MARK} marks a difference within noise (p ≥ 0.05); with one common seed there is no test. "
    "Direction: every Δ is method minus reference in the metric's own units, so for a lower-is-better metric "
    f"(perplexity, its heading says so) a negative Δ is an improvement; wins, {BEST_MARK}, {FRONT_MARK}, the row "
    "order, the exported table's rank (1 = best mean of its ratio, ties sharing the lower rank) and the "
    "baseline's curve all follow the metric's direction. "
    "*cost "
    "×full*: the cell's total cost in training-pass equivalents over the full-data cell's: training sample "
    "passes (forward + backward), the method's own forward + backward passes (proxy training, SEVEN_pre's "
    f"scoring) and its forward-only passes (scoring the training set) at {FORWARD_WEIGHT:.3g} each: a backward"
    " pass costs about two forwards, so a forward is about a third of a training pass (the 2N-versus-6N FLOPs"
    " per sample of inference and training). Evaluation on validation and test is the same for every cell of "
    "a task and is not counted. *fwd passes ×full*: the forward-only scoring passes over the full-data cell's"
    f" training passes. {DERIVED_MARK}: derived from the run's logged figures (the run predates the count): "
    "EL2N's forward passes as proxy runs × training samples, and its cached scoring's seconds as below. *Δ "
    "baseline @ equal cost*: per seed, the cell's metric minus the baseline's at the same cost, read off the "
    "baseline's curve of that seed (its cells at every ratio plus the full / dense cell, made monotone by "
    "isotonic regression, never worse at more cost: non-decreasing, or non-increasing for a lower-is-better "
    "metric, and joined by straight lines; paired by seed, 'unpaired' when the seeds do not "
    "match), mean and 95% CI over seeds; outside the baseline's measured cost range there is no number (never"
    " extrapolated: 'above range' means the cell costs more than the baseline ever measured, e.g. more than "
    "full data). Data pruning is compared at equal cost, model pruning at equal theoretical FLOPs and at "
    f"equal parameters left. {BEST_MARK} after a method: the best mean at its ratio, and the paired "
    "difference (same seeds) to the next best is not noise (p < 0.05); rows of a ratio are sorted by mean. "
    f"*front* {FRONT_MARK}: on the family's Pareto front of (mean cost, mean metric) "
    "over all its cells and the reference. Area gap: per seed, the area between the method's metric-cost "
    "curve (its cells joined in cost order) and the baseline's over their common cost range, divided by the "
    "range's width, i.e. the mean metric gap at equal cost; mean and 95% CI over seeds. *speedup ×full*: "
    "the full-data cell's wall-clock over the method's (training + scoring), per seed; geometric mean and 95%"
    f" CI on the log scale (from {MIN_RATIO_SEEDS} seeds on); {INDICATIVE_MARK} marks it indicative: the relative std"
    " over seeds of the cell's "
    f"or the full cell's wall-clock exceeds {TIMING_SPREAD_LIMIT:.0%} (or one seed). Scores read from the "
    "cache are charged their passes at the cell's own seconds per training pass (not the seconds of the cell "
    "that filled the cache, which depend on how loaded the machine was then). *kept*: realised fraction of "
    "training samples per epoch; *sparsity*: realised fraction of prunable weights that are zero; *params "
    "left*: parameters not zeroed; *FLOPs ×dense*: theoretical FLOPs of the masked model's weight layers over"
    " the dense model's; *test loss*: the task's loss on the test split (for SFT, per response token), mean "
    "over seeds; *seconds*: training + scoring wall-clock per cell; *peak MB*: the cell's peak resident "
    "memory (process RSS, sampled), then the GPU's peak allocation on CUDA. Normalised score: each task's "
    "metric rescaled so that chance is 0 and its full / dense model is 100, averaged over tasks; a task whose "
    "chance level is not on the worse side of its full model (perplexity has no chance level) is left out, "
    "and the board names it."
)
