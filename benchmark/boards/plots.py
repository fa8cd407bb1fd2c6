"""The leaderboard's plots, as PNG bytes: per task the difference to the reference against
ratio (the main plot), the metric against ratio, and the metric against cost.

One colour and marker per method across every plot of a board (:func:`method_styles`); every
drawn element is in its panel's legend; a simulated task says SIMULATED in every title; a
family run at one ratio is drawn as markers per method, not as a line over one column.
Built on ``matplotlib.figure.Figure`` directly, so no pyplot state and no display are needed.
"""
from __future__ import annotations

import io
import re

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import to_hex
from matplotlib.figure import Figure

from . import direction
from .cost_stats import baseline_curves
from .leaderboard import (EQUAL_COST, FAMILIES, FAMILY_TITLE, Board, baseline_points, table_baseline,
                          reference_on_front)
from .stats import SeedSummary, summarise
from ..sweeps.names import mathtext_safe

COST_AXIS = {"data": ("cost_rel", "total cost, training-pass equivalents (× full-data cell)"),
             "model": ("flops_rel", "theoretical FLOPs (× dense)")}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "<", ">", "h", "p", "*")
#: how close (in fractions of the axes) two ratio labels of a cost plot may come before the later is left out
LABEL_GAP = (0.07, 0.055)
REFERENCE = "full"  # the name of the full-data / dense reference in a Δ plot


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return buffer.getvalue()


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def method_styles(board: Board) -> dict[str, tuple[str, str]]:
    """Method label -> (colour, marker), the same in every plot of the board: the board's
    method labels (both families) in alphabetical order take the palette's colours and the
    markers in turn, so that a colour never means two methods on one board."""
    labels = sorted({label for table in board.tables.values() for label in table.method})
    palette = colormaps["tab10"].colors
    return {label: (to_hex(palette[i % len(palette)]), MARKERS[i % len(MARKERS)]) for i, label in enumerate(labels)}


def _families(board: Board, task: str) -> list[str]:
    return [f for f in FAMILIES if (task, f) in board.tables]


def _family_name(family: str) -> str:
    """'data pruning' from the family's title, without the ratio's explanation."""
    return FAMILY_TITLE[family].split(" (")[0]


def task_title(board: Board, task: str) -> str:
    """The task as a plot title names it: SIMULATED first when its data are."""
    return f"SIMULATED {task}" if board.task_info(task)["data_origin"] == "simulated" else task


def _one_ratio(table) -> bool:
    return table.ratio.nunique() == 1


def _panels(board: Board, task: str, draw, title, ylabel) -> Figure:
    """One panel per family of ``task``: ``draw(ax, family, table, info)`` fills it; its
    legend, right of the panel, holds every element drawn."""
    families = _families(board, task)
    info = board.task_info(task)
    # constrained layout sizes the axes so that titles, labels and the legend stay inside the figure
    fig = Figure(figsize=(7 * len(families), 4.2), layout="constrained")
    for i, family in enumerate(families):
        ax = fig.add_subplot(1, len(families), i + 1)
        ax.margins(x=0.08)  # room for the ratio labels beside the outermost points
        draw(ax, family, board.tables[(task, family)], info)
        ax.set_ylabel(mathtext_safe(ylabel(family, info)))
        ax.set_title(mathtext_safe(f"{task_title(board, task)}: {title(family)}"), fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    return fig


#: a family's means spanning this factor or more (perplexity after heavy pruning) are drawn on a log
#: axis, and their differences on a symmetric log axis, so the methods near the reference stay readable
LOG_SPAN = 100.0


def _log_scaled(table, info) -> bool:
    values = [float(v) for v in [*table["mean"], info["full"].mean if info["full"].n else None]
              if v is not None and np.isfinite(v)]
    return bool(values) and min(values) > 0 and max(values) / min(values) >= LOG_SPAN


def _spans(means, lows, highs):
    """Error bars below and above (an interval of a bounded metric is not centred on its mean);
    None where no point has an interval, zero where one point lacks it."""
    means, lows, highs = (pd.Series(list(v), dtype=float) for v in (means, lows, highs))
    if lows.isna().all():
        return None
    return [(means - lows).clip(lower=0).fillna(0.0).values, (highs - means).clip(lower=0).fillna(0.0).values]


def _draw_points(ax, styles, method: str, xs, means, lows, highs, line: bool) -> None:
    colour, marker = styles[method]
    ax.errorbar(list(xs), list(means), yerr=_spans(means, lows, highs), color=colour, marker=marker, capsize=3,
                linestyle="-" if line else "none", label=mathtext_safe(method))


def _by_method(table, order) -> list[tuple[str, pd.DataFrame]]:
    groups = dict(tuple(table.groupby("method")))
    return [(method, groups[method]) for method in order if method in groups]


def _dodge(table, methods: list[str]) -> dict[str, float]:
    """A small sideways shift per method (1.2% of the ratio range each) so that the error bars
    of methods at one ratio do not hide each other."""
    span = float(table.ratio.max() - table.ratio.min()) or 1.0
    return {m: (i - (len(methods) - 1) / 2) * 0.012 * span for i, m in enumerate(methods)}


def _categorical(ax, methods: list[str], ratio: float) -> dict[str, int]:
    """One ratio: methods side by side on the x axis (their positions), named on its ticks."""
    ax.set_xticks(range(len(methods)), [mathtext_safe(m) for m in methods], rotation=20, ha="right", fontsize=8)
    ax.set_xlabel(f"method (ratio removed {ratio:g})")
    ax.set_xlim(-0.5, len(methods) - 0.5)
    return {m: i for i, m in enumerate(methods)}


def reference_of(table, family: str) -> str:
    """What a family's Δ plot is measured from: the table's baseline (:func:`.leaderboard.family_baseline`)
    where the table has it, else the full-data / dense reference."""
    baseline = table_baseline(table, family)
    return baseline if (table.method == baseline).any() else REFERENCE


def paired_delta(board: Board, task: str, family: str, method: str, ratio: float, reference: str) -> SeedSummary:
    """Mean and 95% t-interval over seeds of ``method``'s metric minus ``reference``'s at the
    same seed (and ratio; the full / dense reference has one); only common seeds count."""
    runs = board.runs[board.runs.task == task]
    own = runs[(runs.family == family) & (runs.label == method) & (runs.ratio == ratio)]
    other = (runs[runs.family == "reference"] if reference == REFERENCE
             else runs[(runs.family == family) & (runs.label == reference) & (runs.ratio == ratio)])
    joined = pd.concat([own.set_index("seed")["value"].rename("a"), other.set_index("seed")["value"].rename("b")],
                       axis=1, join="inner").dropna()
    return summarise(joined.a - joined.b)


def delta_vs_ratio(board: Board, task: str, styles: dict | None = None) -> Figure:
    """The main plot: each method's paired difference to its family's baseline (or to
    the full / dense reference where the family has no baseline) against ratio."""
    styles = styles or method_styles(board)

    def draw(ax, family, table, info):
        reference = reference_of(table, family)
        methods = [m for m in styles if m in set(table.method) and m != reference]
        one = _one_ratio(table)
        place = _categorical(ax, methods, table.ratio.iloc[0]) if one else None
        shift = _dodge(table, methods)
        for method, rows in _by_method(table, methods):
            rows = rows.sort_values("ratio")
            deltas = [paired_delta(board, task, family, method, r, reference) for r in rows.ratio]
            keep = [d.n > 0 for d in deltas]
            xs = [place[method]] if one else list(rows.ratio[keep] + shift[method])
            kept = [d for d, k in zip(deltas, keep) if k]
            if not kept:
                continue
            _draw_points(ax, styles, method, xs, [d.mean for d in kept], [d.ci_low for d in kept],
                         [d.ci_high for d in kept], line=not one)
        name = "full / dense" if reference == REFERENCE else reference
        ax.axhline(0.0, color="black", linestyle="--", linewidth=1, label=f"{name} (Δ = 0)")
        if _log_scaled(table, info):  # linear near 0 up to the reference's own size, logarithmic beyond
            ax.set_yscale("symlog", linthresh=max(info["full"].mean if info["full"].n else 1.0, 1e-12))
        if not one:
            ax.set_xlabel("ratio removed")

    return _panels(board, task, draw,
                   lambda family: f"{_family_name(family)}, Δ {_delta_name(board, task, family)} "
                                  "(paired by seed; bars = 95% CI)",
                   lambda family, info: f"Δ test {_metric(info)} vs {_delta_name(board, task, family)}"
                                        + _scale_note(board, task, family, info, "symlog"))


def _scale_note(board: Board, task: str, family: str, info, scale: str) -> str:
    return f" ({scale} scale)" if _log_scaled(board.tables[(task, family)], info) else ""


def _delta_name(board: Board, task: str, family: str) -> str:
    reference = reference_of(board.tables[(task, family)], family)
    return "full / dense" if reference == REFERENCE else reference


def _metric(info) -> str:
    """The metric's name as an axis says it, with its direction where lower is better."""
    return direction.metric_label(info["metric"], info["higher_is_better"])


def _full_band(ax, info) -> None:
    full = info["full"]
    if full.n:
        ax.axhline(full.mean, color="black", linestyle="--", linewidth=1, label="full / dense (mean)")
        if full.ci_low is not None:
            ax.axhspan(full.ci_low, full.ci_high, color="black", alpha=0.08, label="full / dense 95% CI")


def metric_vs_ratio(board: Board, task: str, styles: dict | None = None) -> Figure:
    styles = styles or method_styles(board)

    def draw(ax, family, table, info):
        methods = [m for m in styles if m in set(table.method)]
        one = _one_ratio(table)
        place = _categorical(ax, methods, table.ratio.iloc[0]) if one else None
        shift = _dodge(table, methods)
        for method, rows in _by_method(table, methods):
            rows = rows.sort_values("ratio")
            xs = [place[method]] if one else rows.ratio + shift[method]
            _draw_points(ax, styles, method, xs, rows["mean"], rows.ci_low, rows.ci_high, line=not one)
        _full_band(ax, info)
        if _log_scaled(table, info):
            ax.set_yscale("log")
        if not one:
            ax.set_xlabel("ratio removed")

    return _panels(board, task, draw, lambda family: f"{_family_name(family)} (mean, bars = 95% CI)",
                   lambda family, info: f"test {_metric(info)}" + _scale_note(board, task, family, info, "log"))


def metric_vs_cost(board: Board, task: str, styles: dict | None = None) -> Figure:
    styles = styles or method_styles(board)

    def draw(ax, family, table, info):
        column, label = COST_AXIS[family]
        methods = [m for m in styles if m in set(table.method)]
        points = []
        for method, rows in _by_method(table, methods):
            rows = rows.sort_values(column)
            _draw_points(ax, styles, method, rows[column], rows["mean"], rows.ci_low, rows.ci_high, line=True)
            points += [(x, y, r) for x, y, r in zip(rows[column], rows["mean"], rows.ratio)]
        if info["full"].n:
            ax.plot([1.0], [info["full"].mean], marker="*", markersize=12, color="black", linestyle="none",
                    label="full / dense")
        _baseline_and_front(ax, board, task, family, table, column, info)
        if _log_scaled(table, info):
            ax.set_yscale("log")
        ax.set_xlabel(label)
        _ratio_labels(ax, points)

    return _panels(board, task, draw,
                   lambda family: f"{_family_name(family)} vs cost (labels: ratio; bars = 95% CI)",
                   lambda family, info: f"test {_metric(info)}" + _scale_note(board, task, family, info, "log"))


def _ratio_labels(ax, points) -> None:
    """Each point's ratio beside it, leaving out a label that would come within
    :data:`LABEL_GAP` of one already placed (so that no two labels overlap)."""
    ax.autoscale_view()
    ax.get_xlim()  # settles the view limits, so transLimits maps data to axes fractions
    placed = []
    for x, y, ratio in points:
        if pd.isna(x) or pd.isna(y):
            continue
        fx, fy = ax.transLimits.transform((x, y))
        if any(abs(fx - px) < LABEL_GAP[0] and abs(fy - py) < LABEL_GAP[1] for px, py in placed):
            continue
        placed.append((fx, fy))
        ax.annotate(f"{ratio:g}", (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")


def _baseline_and_front(ax, board: Board, task: str, family: str, table, column: str, info) -> None:
    """The baseline's monotone curve (all seeds pooled) and the Pareto front, its points ringed."""
    task_runs = board.runs[board.runs.task == task]
    run_column = EQUAL_COST[family][0].run_column
    _, pooled = baseline_curves(baseline_points(task_runs, family), run_column,
                                higher=info["higher_is_better"])
    if pooled is not None:
        ax.plot(pooled.x, pooled.y, color="grey", linestyle=":", linewidth=1.5,
                label=f"{table_baseline(table, family)}: monotone fit")
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
        ax.scatter(xs, ys, s=140, facecolors="none", edgecolors="black", linewidths=1.2, zorder=5,
                   label="on the front (ringed)")


def board_figures(board: Board) -> dict[str, Figure]:
    """File name -> figure, three per task: the Δ plot (the main one; none when a task has only
    the reference methods), the metric, the cost."""
    styles = method_styles(board)
    figures = {}
    for task in board.tasks:
        if not _families(board, task):
            continue
        if any((board.tables[(task, f)].method != reference_of(board.tables[(task, f)], f)).any()
               for f in _families(board, task)):  # else nothing to draw against the reference
            figures[f"{slug(task)}-delta-vs-ratio.png"] = delta_vs_ratio(board, task, styles)
        figures[f"{slug(task)}-metric-vs-ratio.png"] = metric_vs_ratio(board, task, styles)
        figures[f"{slug(task)}-metric-vs-cost.png"] = metric_vs_cost(board, task, styles)
    return figures


def board_plots(board: Board) -> dict[str, bytes]:
    """File name -> PNG bytes, three plots per task."""
    return {name: _png(fig) for name, fig in board_figures(board).items()}
