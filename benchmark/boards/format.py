"""How the leaderboard's numbers are written: one definition of every column, shared by
the markdown and the HTML renderings so that both show exactly the same text."""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from ..training.cost import FORWARD_WEIGHT
from . import direction
from .cost_stats import MIN_RATIO_SEEDS, TIMING_SPREAD_LIMIT
from .leaderboard import EQUAL_COST, FAMILY_BASELINE, Board, reference_on_front, table_baseline

NOISE_MARK = "≈"  # the difference is within noise (paired t-test p >= 0.05)
FEW_SEEDS = "too few seeds"
DERIVED_MARK = "†"  # the figure is derived from the run's logged params (logged before it was counted)
INDICATIVE_MARK = "~"  # wall-clock: the runs' own timing spread is large (or one seed)
FRONT_MARK = "★"  # on the family's metric-cost Pareto front
BEST_MARK = "▲"  # the best mean at its ratio, ahead of the next by more than noise
TOP_MARK = "◆"  # the best mean at its ratio, whatever the margin (always marked)
ONE_SEED_NOTE = "One seed: no intervals and no significance tests; every cell shows the value only."
#: a cell whose realised removal is further than this from its ratio says what it removed
OFF_RATIO = 0.05
OFF_RATIO_KEY = (f"'removed x': the cell removed x (data: 1 - its kept fraction; model: its sparsity), more than "
                 f"{OFF_RATIO:g} away from its ratio (a dynamic method's full-data epochs, a ratio that means "
                 "something else): compare it at equal cost in the details.")
MARK_KEY = (f"{TOP_MARK} best mean at its ratio (bold); {BEST_MARK} ahead of the next best by more than noise "
            "(paired t-test over seeds, p < 0.05); [low, high]: 95% confidence interval of the mean over seeds; "
            + OFF_RATIO_KEY)


def mark_key(single: bool = False) -> str:
    """What the lead tables' marks mean (on a one-seed board only the best's: no test, no interval)."""
    return f"{TOP_MARK} best value at its ratio (bold); {OFF_RATIO_KEY}" if single else MARK_KEY
ORDER_RULES = ("Order: tasks alphabetical (one tab each); data pruning, then model pruning; in the lead tables "
               "ratios ascend left to right and methods go by their mean rank over the ratios (rank 1 = best "
               "mean at a ratio), then by name; detail tables by ratio, then best mean first.")
COST_NAMES = {"cost": "cost", "flops": "FLOPs", "params": "params"}


def missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value)


def number(value, spec: str = ".4f", signed: bool = False) -> str:
    if missing(value):
        return "-"
    return f"{value:+{spec}}" if signed else f"{value:{spec}}"


def mean_std(mean, std, single: bool = False) -> str:
    """``0.9074 ± 0.0014``; ``(1 seed)`` for a row with one seed, unless the whole board has one
    (``single``: said once at its top)."""
    if single:
        return number(mean)
    return f"{number(mean)} ± {number(std)}" if not missing(std) else f"{number(mean)} (1 seed)"


def one_seed(board: Board) -> bool:
    """Whether every row of ``board`` (the reference included) rests on one seed: then no
    interval or test exists anywhere, and the board says so once instead of in every cell."""
    runs = board.runs
    if runs.empty:
        return False
    return int(runs.groupby(["task", "family", "label", "ratio"]).seed.nunique().max()) == 1


def ranks(table: pd.DataFrame) -> list[int]:
    """Each row's rank within its ratio: the table's own ``rank`` column where it has one, else
    its position in the ratio's rows (a family table is sorted best first within a ratio), rows
    with equal means sharing the better one."""
    if "rank" in table:
        return [int(r) for r in table["rank"]]
    out, previous = [], None
    for position, ratio, mean in zip(table.groupby("ratio", sort=False).cumcount(), table.ratio, table["mean"]):
        # equal means share the better rank (both best when they tie)
        out.append(out[-1] if previous == (ratio, mean) else int(position) + 1)
        previous = (ratio, mean)
    return out


def interval(low, high) -> str:
    return FEW_SEEDS if missing(low) else f"[{low:.4f}, {high:.4f}]"


def delta(mean_diff, p_value, noise, wins, pairs, single: bool = False) -> str:
    """Paired difference, e.g. ``+0.0123 (p=0.041, won 3/3)``; ``≈`` marks noise."""
    if missing(mean_diff):
        return "-"
    text = f"{mean_diff:+.4f}"
    if single:
        return text
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


def equal_cost(row, name: str, single: bool = False) -> str:
    """Δ baseline at equal cost with its interval, or why there is none."""
    n, below, above = row[f"n_at_{name}"], row[f"below_at_{name}"], row[f"above_at_{name}"]
    if missing(n):
        return "baseline"
    outside = [f"{int(k)} {side} range" for k, side in ((below, "below"), (above, "above")) if k]
    if not n:
        return "out of range (" + ", ".join(outside) + ")" if outside else "-"
    low, high = row[f"ci_low_at_{name}"], row[f"ci_high_at_{name}"]
    text = f"{row[f'delta_at_{name}']:+.4f} " + (f"[{low:+.4f}, {high:+.4f}]" if not missing(low) else "")
    notes = ([] if single else [f"{int(n)} seed{'s' if n != 1 else ''}"]) + outside + (
        [] if row[f"paired_at_{name}"] else ["unpaired"])
    return f"{text.strip()} ({', '.join(notes)})" if notes else text.strip()


def speedup_text(row, single: bool = False) -> str:
    if missing(row.speedup):
        return "-"
    mark = f" {INDICATIVE_MARK}" if row.speedup_indicative else ""
    if single:
        return f"{row.speedup:.2f}{mark}"
    if missing(row.speedup_ci_low):
        return f"{row.speedup:.2f} (< {MIN_RATIO_SEEDS} seeds: no interval){mark}"
    return f"{row.speedup:.2f} [{row.speedup_ci_low:.2f}, {row.speedup_ci_high:.2f}]{mark}"


def detail_columns(family: str, metric: str, higher: bool = True, baseline: str | None = None) -> list[str]:
    baseline = baseline or FAMILY_BASELINE[family]
    at_cost = [f"Δ {baseline} @ equal {COST_NAMES[axis.name]}" for axis in EQUAL_COST[family]]
    cost = (["kept", "cost ×full", "fwd passes ×full", "speedup ×full"] if family == "data"
            else ["sparsity", "params left", "FLOPs ×dense", "cost ×full"])
    return ["method", "ratio", f"{metric} mean ± std{direction.note(higher)}", "95% CI", "seeds", "Δ full",
            f"Δ {baseline} @ equal ratio", *at_cost, "test loss", *cost, "seconds", "peak MB", "front",
            "provenance"]


def column_help(family: str, metric: str, baseline: str | None = None) -> dict[str, str]:
    """A one-sentence definition of every column heading of the family's tables (the HTML's
    tooltips; the full text is :data:`LEGEND`)."""
    baseline = baseline or FAMILY_BASELINE[family]
    out = {
        "method": f"the method's label; {TOP_MARK} best mean at this ratio, {BEST_MARK} ahead of the next best "
                  "by more than noise (paired t-test, p < 0.05)",
        "ratio": "fraction of training samples removed" if family == "data"
                 else "fraction of prunable weights removed",
        f"{metric} mean ± std": f"test {metric} at the end of training: mean and sample std over seeds",
        f"{metric} mean": f"test {metric} at the end of training (one seed)",
        "95% CI": "95% confidence interval of the mean over seeds (Student's t; a bounded metric on the logit "
                  "scale of its range, so the interval stays inside it)",
        "seeds": "finished cells (seeds) behind the row",
        "Δ full": "mean paired difference to the full-data / dense reference (same seed), p-value of the paired "
                  f"t-test and wins; {NOISE_MARK} within noise (p ≥ 0.05)",
        f"Δ {baseline} @ equal ratio": f"mean paired difference to {baseline} at the same ratio and seed, p-value"
                                       f" and wins; {NOISE_MARK} within noise",
        "test loss": "the task's loss on the test split, mean over seeds",
        "kept": "realised fraction of training samples per epoch",
        "sparsity": "realised fraction of prunable weights that are zero",
        "params left": "parameters not zeroed",
        "FLOPs ×dense": "theoretical FLOPs of the masked model's weight layers over the dense model's",
        "cost ×full": "total cost in training-pass equivalents (training, the method's own passes, scoring "
                      f"forwards at {FORWARD_WEIGHT:.3g}) over the full-data cell's",
        "fwd passes ×full": "forward-only scoring passes over the full-data cell's training passes",
        "speedup ×full": "full-data wall-clock over the cell's, geometric mean over seeds with its 95% CI on the "
                         f"log scale (from {MIN_RATIO_SEEDS} seeds); {INDICATIVE_MARK} indicative (noisy timing)",
        "seconds": "training + scoring wall-clock per cell",
        "peak MB": "peak resident memory of the cell (process RSS), then the GPU's peak allocation",
        "front": f"{FRONT_MARK}: on the family's Pareto front of (mean cost, mean {metric})",
        "provenance": "reference-code: checked against the authors' code; reconstructed: from the paper",
    }
    for axis in EQUAL_COST[family]:
        out[f"Δ {baseline} @ equal {COST_NAMES[axis.name]}"] = (
            f"per seed, the metric minus {baseline}'s monotone curve of that seed at the same "
            f"{COST_NAMES[axis.name]}; mean [95% CI]; never extrapolated outside {baseline}'s range")
    return out


def detail_tables(table: pd.DataFrame, family: str, metric: str, single: bool = False, higher: bool = True
                  ) -> list[tuple[str, list[str], list[list[tuple[str, object]]]]]:
    """The family's detail as two narrower tables, (caption, headers, rows) each: the metric and
    its comparisons, then the costs; both keyed by method and ratio. A one-seed board has no
    interval column."""
    headers = detail_columns(family, metric, higher, table_baseline(table, family))
    rows = detail_rows(table, family, single)
    split = headers.index("test loss")
    keep_quality = [i for i in range(split) if not (single and headers[i] == "95% CI")]
    if single:
        mean_std = f"{metric} mean ± std{direction.note(higher)}"
        headers = [f"{metric} mean{direction.note(higher)}" if h == mean_std else h for h in headers]
    keep_cost = [0, 1, *range(split, len(headers))]
    return [(caption, [headers[i] for i in keep], [[row[i] for i in keep] for row in rows])
            for caption, keep in (("The metric and its comparisons", keep_quality), ("Costs", keep_cost))]


def detail_rows(table: pd.DataFrame, family: str, single: bool = False) -> list[list[tuple[str, object]]]:
    """Each cell as (text, sort key); the sort key is the number behind the text."""
    out = []
    for rank, (_, r) in zip(ranks(table), table.iterrows()):
        derived = DERIVED_MARK if r.forward_derived else ""
        total = (number(r.cost_rel, ".2f") + derived, r.cost_rel)
        if family == "data":
            cost = [(number(r.realised, ".3f"), r.realised), total,
                    (number(r.forward_rel, ".2f") + derived, r.forward_rel), (speedup_text(r, single), r.speedup)]
        else:
            cost = [(number(r.realised, ".3f"), r.realised), (count(r.params_remaining), r.params_remaining),
                    (number(r.flops_rel, ".3f"), r.flops_rel), total]
        out.append([
            (r.method + top_mark(rank) + best_mark(r.get("best")), r.method), (f"{r.ratio:g}", r.ratio),
            (mean_std(r["mean"], r["std"], single), r["mean"]),
            (interval(r.ci_low, r.ci_high), r.ci_low), (str(r.seeds), r.seeds),
            (delta(r.delta_full, r.p_full, r.noise_full, r.wins_full, r.pairs_full, single), r.delta_full),
            (delta(r.delta_random, r.p_random, r.noise_random, r.wins_random, r.pairs_random, single),
             r.delta_random),
            *[(equal_cost(r, axis.name, single), r[f"delta_at_{axis.name}"]) for axis in EQUAL_COST[family]],
            (number(r.loss), r.loss), *cost,
            (number(r.seconds, ".0f") + (DERIVED_MARK if r.seconds_derived else ""), r.seconds),
            (peak_memory(r.peak_rss_mb, r.peak_device_mb), r.peak_rss_mb),
            (FRONT_MARK if r.get("on_front") else "", int(bool(r.get("on_front")))), (r.provenance, r.provenance),
        ])
    return out


def area_columns(family: str, single: bool = False, baseline: str | None = None) -> list[str]:
    name = COST_NAMES[EQUAL_COST[family][0].name]
    return ["rank", "method", f"area gap vs {baseline or FAMILY_BASELINE[family]} (mean Δ over common {name} range)",
            *([] if single else ["95% CI", "seeds"]), f"common {name} range", "ratios"]


def area_rows(areas: pd.DataFrame, single: bool = False) -> list[list[str]]:
    rows = []
    for rank, r in enumerate(areas.itertuples(), start=1):
        span = "-" if missing(r.range_low) else f"{r.range_low:.3g} – {r.range_high:.3g}"
        note = "" if r.paired else " (unpaired)"
        if r.points == 1 and not missing(r.area_gap):
            note += " (one cost point: the Δ there)"
        spread = [] if single else [interval_signed(r.ci_low, r.ci_high), str(r.seeds)]
        if missing(r.area_gap):
            spread = [] if single else ["-", "0"]
            rows.append(["-", r.method, "no common cost range with the baseline", *spread, span, str(r.ratios)])
            continue
        rows.append([str(rank), r.method, number(r.area_gap, "+.4f") + note, *spread, span, str(r.ratios)])
    return rows


def interval_signed(low, high) -> str:
    return FEW_SEEDS if missing(low) else f"[{low:+.4f}, {high:+.4f}]"


def rankings(table: pd.DataFrame, family: str) -> tuple[list[str], list[list[str]]]:
    """Per ratio: the methods by mean metric (equal ratio) and by Δ baseline at equal cost
    (the baseline at 0; cells with no Δ, out of random's range, listed apart), both best
    first in the metric's direction, and where the two orders disagree (the pairs that swap)."""
    name = EQUAL_COST[family][0].name
    baseline = table_baseline(table, family)
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


def cost_sections(board: Board, task: str, family: str, single: bool = False
                  ) -> list[tuple[str, list[str], list[list[str]]]]:
    """The equal-cost part of a family's block: (caption, headers, rows); no headers = a line of text."""
    table = board.tables[(task, family)]
    out = [(front_line(board, task, family), [], [])]
    areas = board.areas.get((task, family))
    if areas is not None:
        baseline = table_baseline(table, family)
        out.append((f"One number per method, accounting for cost (best first): the area gap to {baseline}.",
                    area_columns(family, single, baseline), area_rows(areas, single)))
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


def top_mark(rank) -> str:
    return f" {TOP_MARK}" if rank == 1 else ""


@dataclass(frozen=True)
class LeadCell:
    """One cell of a lead table: a (method, ratio) row of the family table, as shown."""

    value: str  # the mean
    interval: str  # its 95% CI, "(1 seed)", or "" on a one-seed board
    top: bool  # the best mean at its ratio
    significant: bool  # and ahead of the next best by more than noise
    removed: str = ""  # "removed x" when the realised removal is off its ratio (:func:`off_ratio`)


def off_ratio(row) -> str:
    """``removed x`` when a family-table row's realised removal (data: ``1 - kept``; model: the
    sparsity) is more than :data:`OFF_RATIO` from its ratio, else ``""``."""
    realised = row.get("realised")
    if missing(realised):
        return ""
    removed = 1.0 - realised if row.family == "data" else realised
    return f"removed {removed:.2f}" if abs(removed - row.ratio) > OFF_RATIO else ""


def lead_grid(table: pd.DataFrame, single: bool = False) -> tuple[list[float], list[tuple[str, list]]]:
    """The family's answer at a glance: ratios ascending, and per method (by its mean rank over
    the ratios, then by name) one :class:`LeadCell` or None per ratio."""
    ratios = sorted(table.ratio.unique())
    by_rank = table.assign(_rank=ranks(table))
    order = by_rank.groupby("method")["_rank"].mean().reset_index().sort_values(["_rank", "method"]).method
    cells: dict[tuple[str, float], LeadCell] = {}
    for _, r in by_rank.iterrows():
        if single:
            shown = ""
        elif missing(r.ci_low):
            shown = f"({int(r.seeds)} seed{'s' if r.seeds != 1 else ''})"
        else:
            shown = f"[{r.ci_low:.4f}, {r.ci_high:.4f}]"
        cells[(r.method, r.ratio)] = LeadCell(number(r["mean"]), shown, r._rank == 1,
                                              not missing(r.get("best")) and bool(r.get("best")), off_ratio(r))
    return ratios, [(method, [cells.get((method, ratio)) for ratio in ratios]) for method in order]


def lead_text(cell: "LeadCell | None", bold: str = "**") -> str:
    """A lead cell as plain text (markdown: the best bold)."""
    if cell is None:
        return ""
    value = f"{bold}{cell.value}{bold}" if cell.top else cell.value
    marks = (f" {TOP_MARK}" if cell.top else "") + (f" {BEST_MARK}" if cell.significant else "")
    removed = f" · {cell.removed}" if cell.removed else ""
    return " ".join(part for part in (value, cell.interval) if part) + marks + removed


def overview(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Method x ratio grid of mean ± std (the best of a ratio marked, an off-ratio removal said as in the
    lead tables), methods by their mean over ratios."""
    best = table["best"] if "best" in table else [False] * len(table)
    removed = [f" · {off}" if (off := off_ratio(r)) else "" for _, r in table.iterrows()]
    grid = table.assign(shown=[mean_std(m, s) + best_mark(b) + o
                               for m, s, b, o in zip(table["mean"], table["std"], best, removed)])
    grid = grid.pivot(index="method", columns="ratio", values="shown").fillna("")
    first = direction.ascending(direction.higher_is_better(table))
    order = table.groupby("method")["mean"].mean().sort_values(ascending=first, kind="stable").index
    grid = grid.loc[order]
    return ["method"] + [f"r={r:g}" for r in grid.columns], grid.reset_index().values.tolist()


def normalised_grid(board: Board, family: str) -> tuple[list[str], list[list[str]]]:
    """Method x ratio grid of the normalised score, methods by their mean rank over the ratios
    (as the lead tables); a cell over fewer tasks than the most says how many."""
    rows = board.normalised[board.normalised.family == family] if not board.normalised.empty else board.normalised
    if rows.empty:
        return [], []
    most = int(rows.tasks.max())
    grid = rows.assign(shown=[f"{s:.1f}" + (f" ({t} of {most} tasks)" if t < most else "")
                              for s, t in zip(rows.score, rows.tasks)])
    rank = grid.groupby("ratio")["score"].rank(ascending=False, method="min")
    order = grid.assign(rank=rank).groupby("method")["rank"].mean().reset_index().sort_values(["rank", "method"])
    grid = grid.pivot(index="method", columns="ratio", values="shown").fillna("").loc[list(order.method)]
    return ["method"] + [f"r={r:g}" for r in grid.columns], grid.reset_index().values.tolist()


def normalised_note(board: Board) -> str:
    """The tasks the normalised score leaves out and why ('' when it leaves out none)."""
    if not board.normalised_skipped:
        return ""
    return "Normalised score leaves out " + "; ".join(
        f"{task}: {why}" for task, why in sorted(board.normalised_skipped.items())) + "."


def normalised_tasks(board: Board, family: str) -> int:
    """The most tasks a normalised score of ``family`` averages over."""
    rows = board.normalised[board.normalised.family == family] if not board.normalised.empty else board.normalised
    return 0 if rows.empty else int(rows.tasks.max())


def simulated(board: Board, task: str) -> bool:
    """Whether ``task``'s cells ran on simulated data (their ``data_origin`` tag)."""
    return board.task_info(task)["data_origin"] == "simulated"


def task_heading(board: Board, task: str) -> str:
    info = board.task_info(task)
    origin = "SIMULATED data" if info["data_origin"] == "simulated" else f"{info['data_origin']} data"
    return f"{task} ({origin}), test {direction.metric_label(info['metric'], info['higher_is_better'])}"


def reference_line(board: Board, task: str, single: bool = False) -> str:
    info = board.task_info(task)
    full = info["full"]
    # a lower-is-better task says once how its figures read
    lower = "" if info["higher_is_better"] else (
        f" Lower is better for {info['metric']}: rows, rank, {BEST_MARK}, wins and {FRONT_MARK} take the lowest as "
        "the best, and a negative Δ is an improvement.")
    if full.n == 0:
        return "No full-data / dense reference cell finished yet: Δ full is empty." + lower
    if single:
        return f"Full data / dense reference: {number(full.mean)}." + lower
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
    f"equal parameters left. {TOP_MARK} after a method or value: the best mean at its ratio (methods that tie all "
    f"have it); {BEST_MARK}: the best, and its paired difference (same seeds) to the next best is not noise "
    "(p < 0.05); rows of a ratio are sorted by mean. "
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
