"""The board inside MLflow's own UI, on the sweep's experiment page.

- **Summary runs**: one run per (task, family, method label, ratio) of the board (and one per
  task's full / dense reference), in the sweep's own experiment, tagged ``run_type = summary``
  and keyed by the tag ``summary_key``. Their metrics are the board's numbers (``mean``,
  ``ci_low``, ``delta_full``, ``p_random``, ``cost_rel``, ``speedup`` ..., the column names of
  the board's tables) plus the readable columns of :mod:`.mlflow_view` (the metric's name,
  ``CI``, ``vs baseline``, ``significant``, ``vs full``, ``rank``) and ``board_order``; their
  params its identity (task, family, method, ratio). Each run's description says what every
  column holds, links its cells (a search filter on their task, label and ratio) and shows
  its task's plot, logged as its artifact. One run per row rather than a parent run with the
  cells nested under it: a row's numbers are a run's metrics (a parent run could hold only the
  sweep's), the cells stay as they were logged (nesting would rewrite every cell's parent tag,
  and the full-data cells belong to every row), and the table sorts, groups and filters rows.
  Each ``leaderboard`` updates them in place (found by their key; metrics logged again at the
  next step, a figure that went away logged as NaN), removes the rows that left the board and
  any duplicate, so re-running it never piles up copies. A new one shows only once whole (made
  pending, filled and terminated, then tagged a summary run), and a half-made one a killed
  ``leaderboard`` left (pending, or RUNNING without its params) is deleted and made again. Cells are told apart by their
  ``cell_id`` tag: a summary run has none and is never read as a cell.
- **Description**: the experiment's ``mlflow.note.content`` holds the compact board
  (:func:`benchmark.boards.markdown.render_note`), which the runs page shows above the table.
- **The view**: a shared view state (experiment tag ``mlflow.sharedViewState.prunebench-board``:
  filter, sort, grouping, columns and charts, :func:`.mlflow_view.view_state`) that :func:`ui_url`
  opens. MLflow 3.17's UI picks GenAI or model training from the URL's ``workflowType`` or the
  browser's remembered sidebar toggle (default GenAI), not from the experiment's
  ``mlflow.experimentKind`` tag (which only decides where the experiment's bare URL leads), so
  every link the harness writes names it.
"""
from __future__ import annotations

import json
import math
import time
from urllib.parse import quote
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .leaderboard import EQUAL_COST, Board, table_baseline
from .mlflow_view import (CI_TAG, RANK, SIGNIFICANT_TAG, SORT_KEY, VS_FULL, VS_BASELINE, board_order_keys, board_ranks,
                          cells_filter, column_help, headline_key, readable, runs_link)
from .mlflow_view import view_state as board_view_state
from .plots import slug
from ..sweeps.names import markdown_text
from ..sweeps.tracking import SUMMARY, SUMMARY_FILTER, SUMMARY_PENDING, SUMMARY_TAG

NOTE_TAG = "mlflow.note.content"
KEY_TAG = "summary_key"
VIEW_KEY = "prunebench-board"
VIEW_TAG = f"mlflow.sharedViewState.{VIEW_KEY}"
DEFAULT_UI = "http://127.0.0.1:5000"  # `prunebench ui`'s default address
MAX_TAG = 8000  # MLflow's limit on a run tag's value
PLOT_DIR = "board-plot"  # where a summary run keeps its task's plot
#: board-table columns logged as metrics, beyond the equal-cost ones (booleans as 0 / 1)
METRICS = ("mean", "std", "ci_low", "ci_high", "seeds", "delta_full", "p_full", "wins_full", "pairs_full",
           "delta_random", "p_random", "wins_random", "pairs_random", "p_next", "best", "realised",
           "passes_rel", "cost_rel", "forward_rel", "flops_rel", "params_remaining", "speedup", "speedup_ci_low",
           "speedup_ci_high", "seconds", "loss", "peak_rss_mb", "peak_device_mb", "on_front")
EQUAL_COST_METRICS = ("delta", "ci_low", "ci_high", "p", "n")


@dataclass
class SummaryRow:
    key: str
    name: str
    params: dict[str, str]
    tags: dict[str, str]
    metrics: dict[str, float] = field(default_factory=dict)
    rank: int | None = None
    cells_filter: str | None = None  # finds the row's cells (mlflow_view.cells_filter)
    plot: tuple[str, bytes] | None = None  # (file name, PNG) of the board's plot of the row's task
    sentence: str = ""  # the opening of the run's description
    metric: str = "accuracy"


def _value(value) -> float | None:
    """A metric value: numbers to 6 significant digits (what a table cell shows; the board's
    tables keep full precision), booleans as 0 / 1, missing as None."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or pd.isna(value):
        return None
    return float(f"{float(value):.6g}")


def _row(board: Board, task: str, family: str, label: str, ratio: float, metrics: dict, tags: dict,
         rank: int | None = None, is_baseline: bool = False) -> SummaryRow:
    cells = board.runs[(board.runs.task == task) & (board.runs.label == label) & (board.runs.ratio == ratio)]
    key = json.dumps([task, family, label, float(ratio)])
    info = board.task_info(task)
    shown, text = readable(info["metric"], metrics, is_baseline)
    if rank is not None:
        shown[RANK] = rank
    # the run's note is rendered as markdown by the UI: the free text in it escaped
    sentence = (f"Board row: test {markdown_text(info['metric'])} of {markdown_text(label)} at ratio "
                f"{ratio:g} on {markdown_text(task)} ({family}), over {len(cells)} finished cell(s). "
                f"Rewritten by each `prunebench leaderboard`.")
    return SummaryRow(
        key=key, name=f"{label} r={ratio:g} ({task})",
        params={"task": task, "family": family, "method": label, "ratio": f"{ratio:g}"},
        tags={SUMMARY_TAG: SUMMARY, KEY_TAG: key, "metric": info["metric"],
              "data_origin": info["data_origin"], "board_generated": board.generated,
              "code_versions": ", ".join(sorted(cells.code_version.unique())),
              "cell_ids": ",".join(sorted(cells.cell_id))[:MAX_TAG], **text, **tags},
        metrics={k: v for k, v in ((k, _value(v)) for k, v in {**metrics, **shown}.items()) if v is not None},
        rank=rank, cells_filter=cells_filter(task, label, ratio), sentence=sentence, metric=info["metric"])


def _task_plot(plots: dict[str, bytes], task: str) -> tuple[str, bytes] | None:
    """The board's plot of ``task``'s headline metric against ratio (else its first plot), to
    hang on its rows (a summary run shows the metric its row holds, not the difference plot)."""
    mine = sorted(name for name in plots if name.startswith(f"{slug(task)}-"))
    if not mine:
        return None
    name = next((n for n in mine if n.endswith("metric-vs-ratio.png")), mine[0])
    return name, plots[name]


def summary_rows(board: Board, plots: dict[str, bytes] | None = None) -> list[SummaryRow]:
    """The board's rows as summary runs: every (task, family) table row, and each task's
    reference; each with its rank, its place in the board's order and its task's plot."""
    out = []
    for task in board.tasks:
        task_runs = board.runs[board.runs.task == task]
        reference = task_runs[task_runs.family == "reference"]
        if len(reference):
            full = board.task_info(task)["full"]
            out.append(_row(board, task, "reference", reference.label.iloc[0], float(reference.ratio.iloc[0]), {
                "mean": full.mean, "std": full.std, "ci_low": full.ci_low, "ci_high": full.ci_high,
                "seeds": full.n, "seconds": reference.seconds.mean(), "cost_rel": 1.0, "flops_rel": 1.0},
                {"provenance": "reference"}))
        for family in ("data", "model"):
            table = board.tables.get((task, family))
            if table is None:
                continue
            columns = list(METRICS) + [f"{k}_at_{axis.name}" for axis in EQUAL_COST[family]
                                       for k in EQUAL_COST_METRICS]
            baseline = table_baseline(table, family)
            for (_, r), rank in zip(table.iterrows(), board_ranks(table)):
                out.append(_row(board, task, family, r.method, float(r.ratio),
                                {c: r[c] for c in columns if c in r}, {"provenance": str(r.provenance)},
                                rank=rank, is_baseline=r.method == baseline))
    orders = board_order_keys([(*json.loads(row.key)[:2], json.loads(row.key)[3], row.rank or 0) for row in out])
    for row, order in zip(out, orders):
        row.metrics[SORT_KEY] = float(order)
        row.plot = _task_plot(plots or {}, row.params["task"])
    return out


def row_note(row: SummaryRow, experiment_id: str, run_id: str, plot_run: str | None = None) -> str:
    """The summary run's description: what the row is, links to its cells and its plot (shown
    inline too; kept once per task, by ``plot_run``, the task's first summary run), and what
    every column holds."""
    plot_run = plot_run or run_id
    parts = [row.sentence, ""]
    if row.cells_filter:
        # the filter itself stays in the link: a task or label is free text, never echoed as markup
        parts.append(f"[Its cells]({runs_link(experiment_id, row.cells_filter)}) (the runs table filtered on "
                     "the row's task, label and ratio, finished cells only).")
    else:
        parts.append("Its cells: the run ids in the tag `cell_ids` (a name holds both quote kinds, which no "
                     "MLflow filter can hold).")
    if row.plot:
        path = f"{PLOT_DIR}/{row.plot[0]}"
        holder = "this run" if plot_run == run_id else "the task's first summary run"
        parts += ["", f"[The board's plot of this task]"
                      f"(#/experiments/{experiment_id}/runs/{plot_run}/artifacts/{path}?workflowType=machine_learning) "
                      f"(an artifact of {holder}):",
                  "", f"![the board's plot of this task](get-artifact?path={quote(path)}&run_uuid={plot_run})"]
    parts += ["", "**Columns**", "", column_help(row.metric)]
    return "\n".join(parts)[:MAX_TAG]


def view_columns(board: Board) -> list[str]:
    """The view's columns, in order: what a reader needs first, then costs."""
    keys = headline_keys(board)
    return (["params.`method`", f"metrics.`{RANK}`"] + [f"metrics.`{k}`" for k in keys]
            + [f"tags.`{CI_TAG}`", f"metrics.`{VS_BASELINE}`", f"tags.`{SIGNIFICANT_TAG}`", f"metrics.`{VS_FULL}`",
               "metrics.`seeds`", "metrics.`cost_rel`", "metrics.`speedup`"])


def headline_keys(board: Board) -> list[str]:
    return sorted({headline_key(board.task_info(task)["metric"]) for task in board.tasks})


def view_state(board: Board) -> str:
    """The shared view (:func:`.mlflow_view.view_state`) of ``board``."""
    return board_view_state(headline_keys(board), view_columns(board))


def ui_base(tracking_uri: str) -> str:
    """Where the UI of ``tracking_uri`` answers: the tracking server itself, else the address
    ``prunebench ui`` serves by default (credentials never printed)."""
    from urllib.parse import urlsplit

    parts = urlsplit(tracking_uri)
    if parts.scheme in ("http", "https") and parts.hostname:
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}{parts.path.rstrip('/')}"
    return DEFAULT_UI


def runs_url(base: str, experiment_id: str) -> str:
    """The runs page of ``experiment_id`` in model-training view."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def ui_url(base: str, experiment_id: str) -> str:
    """The runs page of ``experiment_id`` in model-training view, opened on the board's view."""
    return f"{runs_url(base, experiment_id)}&viewStateShareKey={VIEW_KEY}"


def sweep_views(tracking_uri: str, base: str) -> list[tuple[str, str]]:
    """(experiment name, URL) of every sweep in the store: its board's view, or its runs while
    it has no board yet."""
    from ..sweeps.store import guarded, open_client
    from ..sweeps.tracking import KIND_TAG

    client = open_client(tracking_uri)
    sweeps = guarded(tracking_uri, "cannot list the experiments", lambda: client.search_experiments(
        filter_string=f"tags.`{KIND_TAG}` = 'cells'", max_results=1000))
    out = []
    for experiment in sweeps:
        if VIEW_TAG in experiment.tags:
            out.append((experiment.name, ui_url(base, experiment.experiment_id)))
        else:
            out.append((experiment.name, f"{runs_url(base, experiment.experiment_id)} (no board yet: "
                        f"`prunebench leaderboard --experiment {experiment.name}` adds it)"))
    return sorted(out)


def _search_all(client: Any, experiment_id: str, filter_string: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], filter_string=filter_string, max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


@dataclass
class Synced:
    created: int = 0
    updated: int = 0
    removed: int = 0


PENDING = SUMMARY_PENDING  # the run type of a summary run until it is complete
PENDING_FILTER = f"tags.{SUMMARY_TAG} = '{PENDING}'"


def _complete(run: Any, row: SummaryRow | None) -> bool:
    """Whether a summary run is whole: terminated, with its row's params (a run whose row left
    the board counts as whole: it is removed anyway)."""
    if row is None:
        return True
    return run.info.status == "FINISHED" and run.data.params == row.params


def _create_summary_run(client: Any, experiment_id: str, row: SummaryRow, now: int,
                        plot_run: str | None = None) -> str:
    """Create ``row``'s summary run so that it shows only once whole: it is made as a pending
    run (outside the board's filter and view), its params, metrics and tags go in one batch, it
    is terminated, and the last write turns it into a summary run. A `leaderboard` killed on the
    way leaves a pending run, which the next one deletes."""
    from mlflow.entities import Metric, Param, RunTag

    tags = {**row.tags, "board_refresh": "0"}
    run_id = client.create_run(experiment_id, run_name=row.name, tags={**tags, SUMMARY_TAG: PENDING},
                               start_time=now).info.run_id
    client.log_batch(run_id, params=[Param(k, v) for k, v in row.params.items()],
                     metrics=[Metric(k, v, now, 0) for k, v in row.metrics.items()])
    if plot_run is None:  # the task's first row keeps its plot; the others link to it
        _log_plot(client, run_id, row)
    client.set_terminated(run_id, "FINISHED", end_time=now)
    client.log_batch(run_id, tags=[RunTag(NOTE_TAG, row_note(row, experiment_id, run_id, plot_run)),
                                   RunTag(SUMMARY_TAG, SUMMARY)])
    return run_id


def _log_plot(client: Any, run_id: str, row: SummaryRow) -> None:
    """The row's task plot as the run's artifact, at a fixed path (each board overwrites it)."""
    import tempfile
    from pathlib import Path

    if row.plot is None:
        return
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / row.plot[0]
        local.write_bytes(row.plot[1])
        client.log_artifact(run_id, str(local), PLOT_DIR)


def sync_summary_runs(client: Any, experiment_id: str, rows: list[SummaryRow]) -> Synced:
    """Make the experiment's summary runs exactly ``rows``: update those found by key, create
    the missing, delete (MLflow's soft delete) the rows that left the board and duplicates."""
    from mlflow.entities import Metric, RunTag

    existing: dict[str, Any] = {}
    synced = Synced()
    # a summary run a killed `leaderboard` left half-made: still pending, or (before pending
    # runs existed) RUNNING without its params. It is deleted here and made again below.
    for run in _search_all(client, experiment_id, PENDING_FILTER):
        client.delete_run(run.info.run_id)
        synced.removed += 1
    wanted = {row.key: row for row in rows}
    found = _search_all(client, experiment_id, SUMMARY_FILTER)
    for run in sorted(found, key=lambda r: (not _complete(r, wanted.get(r.data.tags.get(KEY_TAG))),
                                            r.info.start_time)):
        key = run.data.tags.get(KEY_TAG)
        if key in existing or key is None or (key in wanted and not _complete(run, wanted[key])):
            client.delete_run(run.info.run_id)
            synced.removed += 1
        else:
            existing[key] = run
    now = int(time.time() * 1000)
    plot_runs: dict[str, str] = {}  # task -> the summary run that keeps the task's plot (its first)
    for row in rows:
        task = row.params["task"]
        run = existing.pop(row.key, None)
        if run is None:
            run_id = _create_summary_run(client, experiment_id, row, now, plot_runs.get(task))
            plot_runs.setdefault(task, run_id)
            synced.created += 1
            continue
        # the next step, so the new value is the latest one whatever the timestamps; a figure the
        # board no longer has becomes NaN (MLflow cannot delete a metric)
        step = int(run.data.tags.get("board_refresh", "0")) + 1
        metrics = {**{k: math.nan for k in run.data.metrics}, **row.metrics}
        if task not in plot_runs:
            plot_runs[task] = run.info.run_id
            _log_plot(client, run.info.run_id, row)
        tags = {**row.tags, "board_refresh": str(step),
                NOTE_TAG: row_note(row, experiment_id, run.info.run_id, plot_runs[task])}
        batch = [Metric(k, v, now, step) for k, v in metrics.items()]
        for first in range(0, max(len(batch), 1), 1000):
            client.log_batch(run.info.run_id, metrics=batch[first:first + 1000],
                             tags=[RunTag(k, v) for k, v in tags.items()] if first == 0 else [])
        synced.updated += 1
    for run in existing.values():  # rows no longer on the board
        client.delete_run(run.info.run_id)
        synced.removed += 1
    return synced


def publish_to_experiment(client: Any, experiment_id: str, board: Board, note: str,
                          plots: dict[str, bytes] | None = None) -> Synced:
    """The board on its sweep's experiment page (adopted as the harness's, and so tagged model
    training, by :func:`benchmark.sweeps.tracking.adopt_experiment`): description, view and
    summary runs (each with its task's plot among ``plots``)."""
    client.set_experiment_tag(experiment_id, NOTE_TAG, note)
    client.set_experiment_tag(experiment_id, VIEW_TAG, view_state(board))
    return sync_summary_runs(client, experiment_id, summary_rows(board, plots))
