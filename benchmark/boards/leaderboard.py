"""The leaderboard's numbers: a pure function of the finished runs MLflow holds.

:func:`load_runs` reads one row per finished cell; :func:`build_board` turns them into
one row per (task, family, method label, ratio) with seed statistics, paired
comparisons against the full-data / dense cell and against the family's random
baseline, cost figures, and a score normalised across tasks. Every "better" (row order,
``rank``, ``best``, wins, fronts, the baseline's curve) follows the metric's direction
(:mod:`.direction`); every Δ is method − reference in the metric's own units. Rendering lives in
:mod:`.markdown`, :mod:`.html` and :mod:`.plots`; publishing in :mod:`.publish`.
"""
from __future__ import annotations

import ast
import datetime as dt
import json
from dataclasses import dataclass, field

import pandas as pd

from ..training.cost import FORWARD_WEIGHT
from . import direction
from .cost_stats import area_gap, baseline_curves, equal_cost_delta, pareto_front, speedup
from .stats import NOISE_P, compare_paired, summarise

#: each family's baseline, in order of preference: a task's board compares with the first that has
#: cells on the task (a post-training LLM board runs magnitude, the field's baseline there, and no
#: random weights)
FAMILY_BASELINES = {"data": ("random",), "model": ("random-weights", "magnitude")}
FAMILY_BASELINE = {family: names[0] for family, names in FAMILY_BASELINES.items()}  # the defaults


def family_baseline(task_runs: pd.DataFrame, family: str) -> str | None:
    """The label ``family``'s methods on this task's runs are compared with."""
    labels = set(task_runs.label[task_runs.family == family])
    names = FAMILY_BASELINES.get(family, ())
    return next((name for name in names if name in labels), names[0] if names else None)


def table_baseline(table: pd.DataFrame, family: str) -> str | None:
    """The baseline a family table (:func:`family_table`) was compared with."""
    if "baseline" in table and len(table):
        return str(table["baseline"].iloc[0])
    return FAMILY_BASELINE.get(family)


FAMILY_TITLE = {"data": "data pruning (ratio = fraction of training samples removed)",
                "model": "model pruning (ratio = fraction of prunable weights removed)"}
FAMILIES = ("data", "model")
#: metrics each run contributes, by the name the cell logged them under
RUN_METRICS = ("kept_fraction", "realised_sparsity", "total_sample_passes_rel", "train_seconds",
               "scoring_seconds", "params_total", "params_remaining", "flops_dense", "flops_remaining_rel",
               "test_loss", "peak_rss_mb", "peak_device_mb", "n_train", "sample_passes", "sample_passes_rel",
               "scoring_sample_passes", "scoring_forward_passes", "cost_rel", "cached_scoring_seconds")


@dataclass(frozen=True)
class CostAxis:
    """A cost methods are compared at: ``name`` in the table's columns (``delta_at_<name>``),
    the per-run figure, and the family table's column holding its mean over seeds."""

    name: str
    run_column: str
    table_column: str


#: the costs each family is compared at; the first is the axis of its front, area gap and plot
EQUAL_COST = {"data": (CostAxis("cost", "cost_rel", "cost_rel"),),
              "model": (CostAxis("flops", "flops_remaining_rel", "flops_rel"),
                        CostAxis("params", "params_remaining", "params_remaining"))}
#: forward-only scoring passes of runs logged before they were counted, from the run's params:
#: method -> (param holding the scoring passes per training sample, its default when not logged)
DERIVED_FORWARD_PASSES = {"el2n": ("method_options.proxy_runs", 2)}


CELL_TAGS = ("cell_id", "task", "method")
CELL_PARAMS = ("ratio", "seed")
#: every tag and param :func:`load_runs` reads: only these are fetched from the store
RUN_TAGS = (*CELL_TAGS, "label", "family", "provenance", "data_origin", "code_version", "metric", "chance_level",
            "metric_bounds", direction.TAG, "scores_cached")
RUN_PARAMS = (*CELL_PARAMS, "method_options", "method_settings", "method_ratio_means",
              *(param for param, _ in DERIVED_FORWARD_PASSES.values()))
#: older cells logged their explicit options flattened, one param each (``method_options.proxy_runs``)
FLAT_OPTIONS = "method_options."


def _explicit_options(params: dict) -> str | None:
    """The cell's explicit options as JSON: its ``method_options`` param, else (older cells) the
    flattened ``method_options.*`` params, their values read back as Python literals where they are."""
    if params.get("method_options") is not None:
        return params["method_options"]
    flat = {}
    for key, text in params.items():
        if key.startswith(FLAT_OPTIONS):
            try:
                flat[key[len(FLAT_OPTIONS):]] = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                flat[key[len(FLAT_OPTIONS):]] = text
    return json.dumps(flat, sort_keys=True, default=str) if flat else None


def is_cell_run(run) -> bool:
    """Whether ``run`` (a :class:`.store_query.RunRecord`) is a harness cell (another tool's run
    in the experiment is not read)."""
    tags, params = run.tags, run.params
    if not all(tags.get(k) for k in CELL_TAGS) or not all(k in params for k in CELL_PARAMS):
        return False
    try:
        float(params["ratio"]), int(params["seed"])
    except ValueError:
        return False
    return True


def load_runs(tracking_uri: str, experiment: str, client=None, sql: bool | None = None) -> pd.DataFrame:
    """One row per finished cell (the latest run if a cell somehow has several), read as the
    fields listed above only (:mod:`.store_query`). ``client``: the store's ``MlflowClient`` if
    already open; ``sql``: see :class:`.store_query.StoreQuery`."""
    from ..sweeps.store import guarded, open_client, redact
    from ..sweeps.store_query import StoreQuery

    client = client or open_client(tracking_uri)
    found = guarded(tracking_uri, f"cannot open experiment {experiment!r}",
                    lambda: client.get_experiment_by_name(experiment))
    if found is None:
        raise SystemExit(f"no MLflow experiment {experiment!r} at {redact(tracking_uri)}; run a sweep first "
                         "or pass --experiment with the sweep's name")
    query = StoreQuery(client, tracking_uri, sql=sql)
    finished = guarded(tracking_uri, "cannot read the finished cells", lambda: query.finished_runs(
        found.experiment_id, RUN_TAGS, RUN_PARAMS, RUN_METRICS, metric_prefixes=("test_",),
        param_prefixes=(FLAT_OPTIONS,)))
    rows = []
    for run in filter(is_cell_run, finished):
        tags, params, metrics = run.tags, run.params, run.metrics
        metric = tags.get("metric", "accuracy")
        row = {
            "cell_id": tags["cell_id"], "run_id": run.run_id, "task": tags["task"], "method": tags["method"],
            "label": tags.get("label", tags["method"]), "family": tags.get("family", ""),
            "provenance": tags.get("provenance", ""), "data_origin": tags.get("data_origin", ""),
            "code_version": tags.get("code_version", ""), "metric": metric,
            "chance_level": _chance_level(tags), **_metric_bounds(tags),
            direction.COLUMN: _higher_is_better(tags),
            "ratio": float(params["ratio"]), "seed": int(params["seed"]),
            "method_options": _explicit_options(params), "method_settings": params.get("method_settings"),
            "method_ratio_means": params.get("method_ratio_means"),
            "value": metrics.get(f"test_{metric}"), "start_time": run.start_time,
        }
        row.update({name: metrics.get(name) for name in RUN_METRICS})
        row.update(_charged_cost(row, tags, params))
        rows.append(row)
    frame = pd.DataFrame(rows, columns=None if rows else ["cell_id"])
    if frame.empty:
        return frame
    frame = frame.sort_values("start_time").drop_duplicates("cell_id", keep="last").reset_index(drop=True)
    return _dense_reference_costs(frame)


def _dense_reference_costs(frame: pd.DataFrame) -> pd.DataFrame:
    """The reference cell is the dense model: where it was logged before FLOPs and parameter
    counts were, its FLOPs are 1.0 × dense by definition and its parameters the task's total."""
    for column in ("flops_remaining_rel", "params_remaining", "params_total"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce")
    reference = frame.family == "reference"
    frame.loc[reference, "flops_remaining_rel"] = frame.loc[reference, "flops_remaining_rel"].fillna(1.0)
    totals = frame.groupby("task")["params_total"].transform("max")
    frame.loc[reference, "params_remaining"] = (frame.loc[reference, "params_remaining"]
                                                .fillna(frame.loc[reference, "params_total"])
                                                .fillna(totals[reference]))
    return frame


def _charged_cost(row: dict, tags: dict[str, str], params: dict[str, str]) -> dict:
    """Total cost (training-pass equivalents, × the full-data cell) and charged seconds. Runs
    logged before forward passes were counted get them from their params
    (:data:`DERIVED_FORWARD_PASSES`), and before cached scoring was re-timed, its seconds from
    their own speed (as :func:`benchmark.sweeps.execute.scoring_cost` does); ``*_derived`` say so."""
    forward, forward_derived, seconds_derived = row["scoring_forward_passes"], False, False
    if forward is None:
        rule = DERIVED_FORWARD_PASSES.get(row["method"])
        forward = 0.0
        if rule is not None and row["n_train"] is not None:
            forward, forward_derived = float(params.get(rule[0], rule[1])) * row["n_train"], True
    trained, trained_rel = row["sample_passes"], row["sample_passes_rel"]
    full = trained / trained_rel if trained and trained_rel else None
    cost_rel = row["cost_rel"]
    if cost_rel is None and row["total_sample_passes_rel"] is not None:
        cost_rel = row["total_sample_passes_rel"] + (FORWARD_WEIGHT * forward / full if full else 0.0)
    scoring_seconds = row["scoring_seconds"] or 0.0
    if tags.get("scores_cached") == "true" and row["cached_scoring_seconds"] is None and trained:
        scoring = (row["scoring_sample_passes"] or 0.0) + FORWARD_WEIGHT * forward
        scoring_seconds, seconds_derived = scoring * (row["train_seconds"] or 0.0) / trained, True
    return {"cost_rel": cost_rel, "forward_rel": forward / full if full else None,
            "forward_derived": forward_derived, "seconds_derived": seconds_derived,
            "scoring_seconds": scoring_seconds, "seconds": (row["train_seconds"] or 0.0) + scoring_seconds}


def _chance_level(tags: dict[str, str]) -> float | None:
    """The task's chance level as the cell logged it; runs logged before that tag existed
    fall back to the task class's attribute (its module imports no torch)."""
    if "chance_level" in tags:
        return float(tags["chance_level"])
    try:
        from ..api.registry import get_task

        return float(get_task(tags["task"]).chance_level)
    except Exception:  # an unknown task (plugin not installed): no normalised score for it
        return None


def _higher_is_better(tags: dict[str, str]) -> bool:
    """Whether the headline metric is higher-is-better, as the cell logged it; runs logged
    before that tag fall back to the task class's attribute, and an unknown task to True
    (every task before the tag existed was higher-is-better)."""
    logged = direction.parse_tag(tags.get(direction.TAG))
    if logged is not None:
        return logged
    try:
        from ..api.registry import get_task

        return bool(get_task(tags["task"]).higher_is_better)
    except Exception:  # an unknown task (plugin not installed)
        return True


def _metric_bounds(tags: dict[str, str]) -> dict[str, float | None]:
    """``metric_low`` / ``metric_high``, the headline metric's range, as the cell logged it
    (``"lo,hi"`` or ``"none"``); runs logged before that tag fall back to the task class's
    attribute, and an unknown task to no range."""
    text = tags.get("metric_bounds")
    if text is None:
        try:
            from ..api.registry import get_task

            bounds = get_task(tags["task"]).metric_bounds
        except Exception:  # an unknown task (plugin not installed): a plain t-interval
            bounds = None
    else:
        try:
            bounds = None if text == "none" else tuple(float(part) for part in text.split(","))
        except ValueError:
            bounds = None
    if bounds is None or len(bounds) != 2:
        return {"metric_low": None, "metric_high": None}
    return {"metric_low": bounds[0], "metric_high": bounds[1]}


def bounds_of(rows: pd.DataFrame) -> tuple[float, float] | None:
    """The metric range of ``rows`` (one task's cells), or None when a cell has none."""
    if rows.empty or rows.metric_low.isna().any() or rows.metric_high.isna().any():
        return None
    return float(rows.metric_low.iloc[0]), float(rows.metric_high.iloc[0])


def _by_seed(frame: pd.DataFrame, column: str = "value") -> pd.Series:
    return frame.set_index("seed")[column]


def baseline_points(task_runs: pd.DataFrame, family: str) -> pd.DataFrame:
    """The family's baseline cells at every ratio plus the reference cells: the baseline's curve."""
    baseline = family_baseline(task_runs, family)
    return task_runs[(task_runs.family == "reference")
                     | ((task_runs.family == family) & (task_runs.label == baseline))]


def family_table(runs: pd.DataFrame, task: str, family: str) -> pd.DataFrame:
    """One row per (method label, ratio) of ``family`` on ``task``, every statistic and cost;
    within a ratio best mean first, ``rank`` 1 the best (ties share the lower rank)."""
    task_runs = runs[runs.task == task]
    higher = direction.higher_is_better(task_runs)
    full_runs = task_runs[task_runs.family == "reference"]
    full = _by_seed(full_runs)
    full_seconds = _by_seed(full_runs, "seconds")
    rows = task_runs[task_runs.family == family]
    baseline = family_baseline(task_runs, family)
    curves = {axis.name: baseline_curves(baseline_points(task_runs, family), axis.run_column, higher=higher)
              for axis in EQUAL_COST.get(family, ())}
    out = []
    for (label, ratio), group in rows.groupby(["label", "ratio"], sort=True):
        summary = summarise(group["value"], bounds_of(group))
        vs_full = compare_paired(_by_seed(group), full, higher)
        base_rows = rows[(rows.label == baseline) & (rows.ratio == ratio)]
        vs_base = None if label == baseline else compare_paired(_by_seed(group), _by_seed(base_rows), higher)
        timing = speedup(full_seconds, _by_seed(group, "seconds"))
        row = {
            "task": task, "family": family, "baseline": baseline, "method": label, "ratio": ratio, "seeds": summary.n,
            "mean": summary.mean, "std": summary.std if summary.std is not None else float("nan"),
            "ci_low": summary.ci_low, "ci_high": summary.ci_high,
            "delta_full": vs_full.mean_diff, "p_full": vs_full.p_value, "noise_full": vs_full.within_noise,
            "wins_full": vs_full.wins, "losses_full": vs_full.losses, "pairs_full": vs_full.n,
            "delta_random": vs_base.mean_diff if vs_base else None,
            "p_random": vs_base.p_value if vs_base else None,
            "noise_random": vs_base.within_noise if vs_base else None,
            "wins_random": vs_base.wins if vs_base else None,
            "losses_random": vs_base.losses if vs_base else None,
            "pairs_random": vs_base.n if vs_base else None,
            "realised": group["kept_fraction" if family == "data" else "realised_sparsity"].mean(),
            "passes_rel": group["total_sample_passes_rel"].mean(),
            "cost_rel": group["cost_rel"].mean(), "forward_rel": group["forward_rel"].mean(),
            "forward_derived": bool(group["forward_derived"].any()),
            "seconds_derived": bool(group["seconds_derived"].any()),
            "seconds": group["seconds"].mean(),
            "speedup": timing.mean, "speedup_ci_low": timing.ci_low, "speedup_ci_high": timing.ci_high,
            "timing_spread": timing.spread, "speedup_indicative": timing.indicative,
            "params_remaining": group["params_remaining"].mean(),
            "flops_rel": group["flops_remaining_rel"].mean(),
            "loss": group["test_loss"].mean(),
            # peak memory: runs logged before it was measured have none (the mean skips them)
            "peak_rss_mb": group["peak_rss_mb"].mean(),
            "peak_device_mb": group["peak_device_mb"].mean(),
            "provenance": group["provenance"].iloc[0], direction.COLUMN: higher,
        }
        for axis in EQUAL_COST.get(family, ()):
            row.update(_equal_cost_columns(axis.name, None if label == baseline else
                                           equal_cost_delta(group, *curves[axis.name], axis.run_column)))
        out.append(row)
    table = pd.DataFrame(out)
    if table.empty:
        return table
    # within a ratio, best mean first (the headline metric, in its direction), then by name
    table = table.sort_values(["ratio", "mean", "method"],
                              ascending=[True, direction.ascending(higher), True]).reset_index(drop=True)
    table["rank"] = table.groupby("ratio")["mean"].transform(lambda m: direction.rank_best_first(m, higher))
    if family in EQUAL_COST:
        table["on_front"] = front_flags(table, full_runs, EQUAL_COST[family][0])[:-1]
    return mark_best(table, rows)


def mark_best(table: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
    """``best``: the first row of its ratio (the best mean) beats the second by a paired
    difference that is not noise (p < 0.05, same seeds) and is better in the metric's
    direction; ``p_next`` is that test's p-value."""
    higher = direction.higher_is_better(table)
    best, p_next = [False] * len(table), [None] * len(table)
    for _, group in table.groupby("ratio", sort=False):
        if len(group) < 2:
            continue
        first, second = group.index[0], group.index[1]
        values = [_by_seed(rows[(rows.label == table.at[i, "method"]) & (rows.ratio == table.at[i, "ratio"])])
                  for i in (first, second)]
        comparison = compare_paired(*values, higher)
        p_next[first] = comparison.p_value
        best[first] = bool(comparison.p_value is not None and comparison.p_value < NOISE_P
                           and direction.better(comparison.mean_diff, 0.0, higher))
    return table.assign(best=best, p_next=p_next)


def _equal_cost_columns(name: str, delta) -> dict:
    keys = ("delta", "ci_low", "ci_high", "p", "n", "below", "above", "paired")
    if delta is None:  # the baseline itself: zero by definition
        return {f"{key}_at_{name}": None for key in keys}
    values = (delta.mean_diff, delta.ci_low, delta.ci_high, delta.p_value, delta.n, delta.below, delta.above,
              delta.paired)
    return {f"{key}_at_{name}": value for key, value in zip(keys, values)}


def front_flags(table: pd.DataFrame, full_runs: pd.DataFrame, axis: CostAxis) -> list[bool]:
    """Whether each row's (mean cost, mean metric), then the full-data / dense reference's
    mean point (which takes part), is on the family's Pareto front (in the metric's direction)."""
    reference = ([full_runs[axis.run_column].mean(), full_runs["value"].mean()] if len(full_runs)
                 else [float("nan"), float("nan")])
    costs, values = list(table[axis.table_column]) + [reference[0]], list(table["mean"]) + [reference[1]]
    return [bool(x) for x in pareto_front(costs, values, direction.higher_is_better(table))]


def reference_on_front(board: "Board", task: str, family: str) -> bool:
    table = board.tables.get((task, family))
    if table is None or family not in EQUAL_COST:
        return False
    task_runs = board.runs[board.runs.task == task]
    return front_flags(table, task_runs[task_runs.family == "reference"], EQUAL_COST[family][0])[-1]


def area_table(runs: pd.DataFrame, task: str, family: str) -> pd.DataFrame:
    """One row per method of ``family`` on ``task`` (its baseline aside): the area gap to the
    baseline's curve on the family's front axis (method − baseline, metric units), with its
    interval over seeds, best first in the metric's direction."""
    if family not in EQUAL_COST:
        return pd.DataFrame()
    task_runs = runs[runs.task == task]
    column = EQUAL_COST[family][0].run_column
    higher = direction.higher_is_better(task_runs)
    curves = baseline_curves(baseline_points(task_runs, family), column, higher=higher)
    baseline = family_baseline(task_runs, family)
    out = []
    for label, group in task_runs[(task_runs.family == family) & (task_runs.label != baseline)].groupby("label"):
        gap = area_gap(group, *curves, column)
        out.append({"task": task, "family": family, "method": label, "seeds": gap.summary.n,
                    "area_gap": gap.summary.mean if gap.summary.n else None, "std": gap.summary.std,
                    "ci_low": gap.summary.ci_low, "ci_high": gap.summary.ci_high, "paired": gap.paired,
                    "range_low": gap.low, "range_high": gap.high, "points": gap.points,
                    "ratios": len(group.ratio.unique()), direction.COLUMN: higher})
    table = pd.DataFrame(out)
    if table.empty:
        return table
    return table.sort_values("area_gap", ascending=direction.ascending(higher),
                             na_position="last").reset_index(drop=True)


def normalised_skip(task_runs: pd.DataFrame) -> str | None:
    """Why one task's runs get no normalised score, or None when they get one: the scale
    needs a full / dense reference and a chance level on the metric's worse side of it (a
    perplexity has none: its tasks log 0, the metric's best bound, not a chance level)."""
    full = task_runs[task_runs.family == "reference"]["value"].mean()
    chance = task_runs["chance_level"].iloc[0]
    if pd.isna(full):
        return "no full / dense reference cell finished"
    if chance is None or pd.isna(chance):
        return "no chance level (not logged, and the task is not installed here)"
    higher = direction.higher_is_better(task_runs)
    if not direction.better(full, chance, higher):
        return (f"its chance level {chance:g} is not worse than its full / dense model ({full:.4g}; "
                f"{task_runs.metric.iloc[0]}, {direction.phrase(higher)}): no scale from chance to full")
    return None


def normalised_skips(runs: pd.DataFrame) -> dict[str, str]:
    """Task -> why it has no normalised score (:func:`normalised_skip`), for the board to say."""
    return {task: why for task, task_runs in runs.groupby("task") if (why := normalised_skip(task_runs))}


def normalised_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (family, method label, ratio): the mean over tasks of each task's mean score
    rescaled so that chance is 0 and the task's full / dense model (mean over seeds) is 100
    (the same formula in either direction, chance being on the worse side of full); tasks
    :func:`normalised_skip` names are left out."""
    per_task = []
    for task, task_runs in runs.groupby("task"):
        if normalised_skip(task_runs) is not None:
            continue
        full = task_runs[task_runs.family == "reference"]["value"].mean()
        chance = task_runs["chance_level"].iloc[0]
        pruned = task_runs[task_runs.family.isin(FAMILIES)]
        scores = 100.0 * (pruned["value"] - chance) / (full - chance)
        per_task.append(pruned.assign(score=scores).groupby(["family", "label", "ratio"], as_index=False)
                        .agg(score=("score", "mean")).assign(task=task))
    if not per_task:
        return pd.DataFrame(columns=["family", "method", "ratio", "score", "tasks"])
    stacked = pd.concat(per_task)
    table = (stacked.groupby(["family", "label", "ratio"], as_index=False)
             .agg(score=("score", "mean"), tasks=("task", "nunique"))
             .rename(columns={"label": "method"}))
    return table.sort_values(["family", "ratio", "method"]).reset_index(drop=True)


@dataclass
class Board:
    """Everything a rendering needs: the runs, the per-family tables and the provenance."""

    experiment: str
    runs: pd.DataFrame
    tables: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)  # (task, family) -> rows
    areas: dict[tuple[str, str], pd.DataFrame] = field(default_factory=dict)  # (task, family) -> area gaps
    normalised: pd.DataFrame = field(default_factory=pd.DataFrame)
    normalised_skipped: dict[str, str] = field(default_factory=dict)  # task -> why it has no normalised score
    command: str = ""
    generated: str = ""

    @property
    def tasks(self) -> list[str]:
        return sorted(self.runs.task.unique()) if not self.runs.empty else []

    @property
    def code_versions(self) -> list[str]:
        return sorted(self.runs.code_version.unique()) if not self.runs.empty else []

    def task_info(self, task: str) -> dict:
        """Headline metric (with its direction), data origin and the full / dense reference
        summary of ``task``."""
        task_runs = self.runs[self.runs.task == task]
        return {"metric": task_runs.metric.iloc[0], "data_origin": task_runs.data_origin.iloc[0],
                "higher_is_better": direction.higher_is_better(task_runs),
                "full": summarise(task_runs[task_runs.family == "reference"]["value"], bounds_of(task_runs))}

    def provenance(self) -> dict[str, str]:
        """Method label -> provenance (``reference-code``, ``reconstructed``, or ``unknown``
        for a third-party method that declares none)."""
        pruned = self.runs[self.runs.family.isin(FAMILIES)]
        return dict(sorted(zip(pruned.label, pruned.provenance)))


def build_board(runs: pd.DataFrame, experiment: str, command: str = "") -> Board:
    board = Board(experiment, runs, command=command,
                  generated=f"{dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC")
    for task in board.tasks:
        for family in FAMILIES:
            table = family_table(runs, task, family)
            if not table.empty:
                board.tables[(task, family)] = table
                areas = area_table(runs, task, family)
                if not areas.empty:
                    board.areas[(task, family)] = areas
    if not runs.empty:
        board.normalised = normalised_scores(runs)
        board.normalised_skipped = normalised_skips(runs)
    return board
