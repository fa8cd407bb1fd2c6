"""The leaderboard's plots, as PNG bytes: metric against ratio, and metric against cost.

Built on ``matplotlib.figure.Figure`` directly, so no pyplot state and no display are needed.
"""
from __future__ import annotations

import io
import re

from matplotlib.figure import Figure

from . import direction
from .cost_stats import baseline_curves
from .leaderboard import (EQUAL_COST, FAMILIES, FAMILY_BASELINE, FAMILY_TITLE, Board, baseline_points,
                          reference_on_front)
from ..sweeps.names import mathtext_safe

COST_AXIS = {"data": ("cost_rel", "total cost, training-pass equivalents (× full-data cell)"),
             "model": ("flops_rel", "theoretical FLOPs (× dense)")}


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _families(board: Board, task: str) -> list[str]:
    return [f for f in FAMILIES if (task, f) in board.tables]


def _family_name(family: str) -> str:
    """'data pruning' from the family's title, without the ratio's explanation."""
    return FAMILY_TITLE[family].split(" (")[0]


def _panels(board: Board, task: str, draw, title) -> Figure:
    """One panel per family of ``task``: ``draw(ax, family, table, info)`` fills it."""
    families = _families(board, task)
    info = board.task_info(task)
    # constrained layout sizes the axes so that titles, labels and the legend stay inside the figure
    fig = Figure(figsize=(6 * len(families), 4.2), layout="constrained")
    for i, family in enumerate(families):
        ax = fig.add_subplot(1, len(families), i + 1)
        draw(ax, family, board.tables[(task, family)], info)
        ax.set_ylabel(mathtext_safe(f"test {direction.metric_label(info['metric'], info['higher_is_better'])}"))
        ax.set_title(mathtext_safe(title(family)), fontsize=10)
        ax.grid(alpha=0.3)
        ax.margins(x=0.08)  # room for the ratio labels beside the outermost points
        ax.legend(fontsize=8)
    return fig


def metric_vs_ratio(board: Board, task: str) -> Figure:
    def draw(ax, family, table, info):
        for method, rows in table.groupby("method"):
            rows = rows.sort_values("ratio")
            # the interval of a bounded metric is not centred on the mean: below and above apart
            spans = ([(rows["mean"] - rows.ci_low).clip(lower=0), (rows.ci_high - rows["mean"]).clip(lower=0)]
                     if rows.ci_low.notna().all() else None)
            ax.errorbar(rows.ratio, rows["mean"], yerr=spans, marker="o", capsize=3, label=mathtext_safe(method))
        full = info["full"]
        if full.n:
            ax.axhline(full.mean, color="black", linestyle="--", linewidth=1, label="full / dense")
            if full.ci_low is not None:
                ax.axhspan(full.ci_low, full.ci_high, color="black", alpha=0.08)
        ax.set_xlabel("ratio removed")

    return _panels(board, task, draw,
                   lambda family: f"{task}: {_family_name(family)} (mean, bars = 95% CI)")


def metric_vs_cost(board: Board, task: str) -> Figure:
    def draw(ax, family, table, info):
        column, label = COST_AXIS[family]
        for method, rows in table.groupby("method"):
            rows = rows.sort_values(column)
            ax.plot(rows[column], rows["mean"], marker="o", label=mathtext_safe(method))
            for _, r in rows.iterrows():
                ax.annotate(f"{r.ratio:g}", (r[column], r["mean"]), fontsize=7, xytext=(3, 3),
                            textcoords="offset points")
        if info["full"].n:
            ax.plot([1.0], [info["full"].mean], marker="*", markersize=12, color="black", linestyle="none",
                    label="full / dense")
        _baseline_and_front(ax, board, task, family, table, column, info)
        ax.set_xlabel(label)

    return _panels(board, task, draw, lambda family:
                   f"{task}: {_family_name(family)} vs cost (labels: ratio; rings: front)")


def _baseline_and_front(ax, board: Board, task: str, family: str, table, column: str, info) -> None:
    """The baseline's monotone curve (all seeds pooled) and the Pareto front, its points ringed."""
    task_runs = board.runs[board.runs.task == task]
    run_column = EQUAL_COST[family][0].run_column
    _, pooled = baseline_curves(baseline_points(task_runs, family), run_column,
                                higher=info["higher_is_better"])
    if pooled is not None:
        ax.plot(pooled.x, pooled.y, color="grey", linestyle=":", linewidth=1.5,
                label=f"{FAMILY_BASELINE[family]}: monotone fit")
    if "on_front" not in table:
        return
    front = table[table.on_front.astype(bool)][[column, "mean"]].values.tolist()
    if reference_on_front(board, task, family):
        full_runs = task_runs[task_runs.family == "reference"]
        front.append([full_runs[run_column].mean(), info["full"].mean])
    if front:
        front.sort()
        xs, ys = zip(*front)
        ax.step(xs, ys, where="post", color="black", linewidth=0.8, alpha=0.6, label="Pareto front")
        ax.scatter(xs, ys, s=140, facecolors="none", edgecolors="black", linewidths=1.2, zorder=5)


def board_figures(board: Board) -> dict[str, Figure]:
    """File name -> figure, two per task."""
    figures = {}
    for task in board.tasks:
        if not _families(board, task):
            continue
        figures[f"{slug(task)}-metric-vs-ratio.png"] = metric_vs_ratio(board, task)
        figures[f"{slug(task)}-metric-vs-cost.png"] = metric_vs_cost(board, task)
    return figures


def board_plots(board: Board) -> dict[str, bytes]:
    """File name -> PNG bytes, two plots per task."""
    return {name: _png(fig) for name, fig in board_figures(board).items()}
