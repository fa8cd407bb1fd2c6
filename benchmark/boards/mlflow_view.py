"""How a board reads in MLflow's runs table: its readable columns, ranks, order, grouping, charts and links.

What MLflow 3.17's UI does with them (read from its source, ``mlflow/server/js/src``, and its
built bundle in the installed package):

- **Grouping.** A shared view state may carry ``groupBy`` (``{aggregateFunction, groupByKeys:
  [{mode: "param", groupByData: NAME}, ...]}``); the runs table then shows one group per
  distinct value tuple, **in the order each group's first run comes in the sorted run list**
  (``getGroupedRowRenderMetadata`` fills a map in run order), with a header row holding the
  group's aggregated metrics. Sorting by the mean put the groups in the order 0, 0.3, 0.5, 0.8,
  0.7, 0.9; here the view sorts by ``board_order`` (1, 2, ... in the board's own order: task,
  reference first, then each family, ratios ascending, best rank first), so the groups come
  in numeric ratio order and the rows of a group by rank.
- **Charts.** The view state may carry ``compareRunCharts`` / ``compareRunSections`` (bar,
  line, scatter, parallel, contour, difference, image cards). None of these draws error bars
  (no card sets Plotly's ``error_y``) nor a line per run group across runs, so the headline
  against ratio per method with error bars cannot be a preset chart: the view presets a scatter
  of the headline against ``ratio`` (one point per summary run) and each summary run carries
  the board's own plot as an artifact, linked (and shown) from its description.
- **Columns.** Metric and tag keys allow letters, digits, ``_ . - : /`` and spaces only (no
  ``±`` or ``%``), metrics are numbers and tags text: the readable columns are the metric's
  name (the mean), ``CI`` (text), ``vs baseline`` / ``vs full`` (numbers), ``significant``
  (``yes`` / ``no``) and ``rank``.
"""
from __future__ import annotations

import json
import math
from urllib.parse import quote

import pandas as pd

from .stats import NOISE_P

SORT_KEY = "board_order"  # the metric the view sorts by: the board's row order
#: the view's groups; ratio first, so the group's header (cut to ~25 characters) starts with it
GROUP_PARAMS = ("ratio", "family", "task")
RUN_NAME_COLUMN = "attributes.`Run Name`"
#: column widths in pixels: the run name and the interval whole at 1400 px
WIDTHS = {RUN_NAME_COLUMN: 250, "tags.`CI`": 130, "params.`method`": 120, "metrics.`rank`": 80}
CI_TAG = "CI"
SIGNIFICANT_TAG = "significant"
VS_BASELINE = "vs baseline"
VS_FULL = "vs full"
RANK = "rank"
RESERVED = {"mean", "std", "seeds", "rank", "loss", "seconds", "speedup", "best", VS_BASELINE, VS_FULL, SORT_KEY}
CHART_SECTION = "board"


def headline_key(metric: str) -> str:
    """The column holding the headline mean: the metric's own name (``accuracy``), unless that
    name is another column's or not a valid MLflow key."""
    import re

    if metric in RESERVED or not re.fullmatch(r"[\w.\- :/]+", metric) or metric.startswith(("/", ".")):
        return "test " + re.sub(r"[^\w.\- :]", "_", metric)
    return metric


def board_ranks(table: pd.DataFrame) -> list[int | None]:
    """Rank of each row of a (task, family) table within its (task, family, ratio), 1 = best:
    the table's own ``rank`` column when it has one (direction-aware), else its row order,
    which puts the best of a ratio first."""
    if RANK in table.columns:
        return [None if _missing(r) else int(r) for r in table[RANK]]
    keys = [c for c in GROUP_PARAMS if c in table.columns]
    return [int(r) for r in table.groupby(keys, sort=False).cumcount() + 1]


def board_order_keys(rows: list[tuple[str, str, float, int]]) -> list[int]:
    """``board_order`` of (task, family, ratio, rank) rows: 1, 2, ... in the board's order
    (tasks by name, the reference first, then data and model pruning, ratios ascending as
    numbers, rank ascending)."""
    family_order = {"reference": 0, "data": 1, "model": 2}
    order = sorted(range(len(rows)), key=lambda i: (rows[i][0], family_order.get(rows[i][1], 3), rows[i][1],
                                                    float(rows[i][2]), rows[i][3]))
    keys = [0] * len(rows)
    for position, index in enumerate(order, start=1):
        keys[index] = position
    return keys


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or bool(pd.isna(value))


def significance(p_value, is_baseline: bool) -> str:
    """The ``significant`` column: ``yes`` when the paired difference to the family's baseline has
    p < 0.05, ``no`` when not, ``baseline`` on the baseline itself, ``-`` without a test."""
    if is_baseline:
        return "baseline"
    if _missing(p_value):
        return "-"
    return "yes" if float(p_value) < NOISE_P else "no"


def ci_text(low, high, seeds) -> str:
    if _missing(low) or _missing(high):
        return f"none ({int(seeds) if not _missing(seeds) else 0} seed(s))"
    return f"[{float(low):.4f}, {float(high):.4f}]"


def readable(metric: str, row: dict, is_baseline: bool) -> tuple[dict[str, float], dict[str, str]]:
    """(metrics, tags) of a board row under the columns a reader understands."""
    metrics = {headline_key(metric): row.get("mean"), VS_BASELINE: row.get("delta_random"),
               VS_FULL: row.get("delta_full")}
    tags = {CI_TAG: ci_text(row.get("ci_low"), row.get("ci_high"), row.get("seeds"))}
    if "p_random" in row or is_baseline:
        tags[SIGNIFICANT_TAG] = significance(row.get("p_random"), is_baseline)
    return {k: v for k, v in metrics.items() if not _missing(v)}, tags


#: (column, what it holds) for every column of the view and every figure of a summary run
COLUMN_HELP = (
    (RANK, "place within its task, family and ratio, 1 = best (the same order as the HTML board)"),
    ("<metric>", "the task's headline test metric (e.g. `accuracy`) at the end of training, mean over seeds"),
    (CI_TAG, "95% confidence interval of that mean over seeds (as on the board)"),
    (VS_BASELINE, "mean paired difference to the family's baseline at the same ratio and seeds (random "
                "subset for data pruning; random-weights for model pruning, or magnitude on a task without "
                "random-weights cells), in the metric's units: positive is better for a higher-is-better "
                "metric, negative for a lower-is-better one (perplexity)"),
    (SIGNIFICANT_TAG, "`yes` when that difference is not noise (paired test, p < 0.05), `no` when it may be, "
                      "`baseline` on the baseline itself"),
    (VS_FULL, "mean paired difference to the full-data / dense reference"),
    ("seeds", "seeds the row is computed from"),
    ("cost_rel", "training cost relative to the full-data / dense run (sample passes or FLOPs)"),
    ("speedup", "full-data training time / this row's training time"),
    ("method, task, family, ratio", "the row's identity (params); the view groups by task, family and ratio"),
    (SORT_KEY, "the board's row order, which the view sorts by (not shown)"),
    ("mean, std, ci_low, ci_high, delta_*, p_*, wins_*, pairs_*, *_at_cost, *_at_flops, best, p_next, ...",
     "the board's raw figures under its table's column names (see docs/mlflow-ui.md)"),
)


def column_help(metric: str) -> str:
    """Markdown table describing every column, the headline one under its real name."""
    lines = ["| column | what it holds |", "|---|---|"]
    for column, text in COLUMN_HELP:
        lines.append(f"| `{headline_key(metric) if column == '<metric>' else column}` | {text} |")
    return "\n".join(lines)


def _quoted(value: str) -> str | None:
    """``value`` as an MLflow filter string literal, or None when it holds both quote kinds."""
    if "'" not in value:
        return f"'{value}'"
    if '"' not in value:
        return f'"{value}"'
    return None


def cells_filter(task: str, label: str, ratio: float) -> str | None:
    """A search filter MLflow accepts that finds a board row's finished cells: their task and
    label tags and their ratio param (logged as ``str(float(ratio))``). None when a name holds
    both quote kinds (no MLflow literal can)."""
    task_q, label_q = _quoted(task), _quoted(label)
    if task_q is None or label_q is None:
        return None
    return (f"tags.task = {task_q} AND tags.label = {label_q} AND params.ratio = '{float(ratio)!r}' "
            "AND tags.status = 'finished'")


def runs_link(experiment_id: str, search_filter: str) -> str:
    """The UI's hash route to the runs page of ``experiment_id`` filtered on ``search_filter``,
    in model-training view."""
    return (f"#/experiments/{experiment_id}/runs?workflowType=machine_learning"
            f"&searchFilter={quote(search_filter, safe='')}")


def view_state(headline_keys: list[str], view_columns: list[str]) -> str:
    """The shared view: summary runs only, grouped by task, family and ratio, in the board's
    order; the readable columns; a charts view led by the headline against ratio."""
    from ..sweeps.tracking import SUMMARY_FILTER

    charts, sections = [], [{"uuid": CHART_SECTION, "name": "Board: headline metric against ratio",
                             "display": True, "isReordered": True},
                            # every other metric's bar chart lands here, folded (MLflow adds one per metric)
                            {"uuid": "model-metrics", "name": "Model metrics", "display": False,
                             "isReordered": False}]
    for key in headline_keys:
        charts.append({"uuid": f"board-{key}", "type": "SCATTER", "metricSectionId": CHART_SECTION,
                       "deleted": False, "isGenerated": False, "displayName": f"{key} against ratio",
                       "runsCountToCompare": 100, "xaxis": {"key": "ratio", "type": "PARAMETER"},
                       "yaxis": {"key": key, "type": "METRIC"}})
    return json.dumps({
        "searchFilter": SUMMARY_FILTER, "orderByKey": f"metrics.`{SORT_KEY}`", "orderByAsc": True,
        "startTime": "ALL", "lifecycleFilter": "Active", "datasetsFilter": [], "modelVersionFilter": "All Runs",
        "selectedColumns": view_columns, "columnOrder": [RUN_NAME_COLUMN, *view_columns],
        "columnWidths": {k: v for k, v in WIDTHS.items() if k == RUN_NAME_COLUMN or k in view_columns},
        "runsHiddenMode": "SHOW_ALL", "runListHidden": False,
        # a group's header row shows its rows' maximum: the best value for a higher-is-better metric
        "groupBy": {"aggregateFunction": "max",
                    "groupByKeys": [{"mode": "param", "groupByData": p} for p in GROUP_PARAMS]},
        "groupsExpanded": {}, "useGroupedValuesInCharts": False,
        "compareRunCharts": charts, "compareRunSections": sections, "isAccordionReordered": True,
        "hideEmptyCharts": True})
