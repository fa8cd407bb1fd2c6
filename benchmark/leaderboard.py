"""The leaderboard's numbers: a pure function of the finished runs MLflow holds.

:func:`load_runs` reads one row per finished cell; :func:`build_board` turns them into
one row per (task, family, method label, ratio) with seed statistics, paired
comparisons against the full-data / dense cell and against the family's random
baseline, cost figures, and a score normalised across tasks. Rendering lives in
``board_markdown``, ``board_html`` and ``board_plots``; publishing in ``board_publish``.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import pandas as pd

from .stats import compare_paired, summarise

FAMILY_BASELINE = {"data": "random", "model": "random-weights"}
FAMILY_TITLE = {"data": "data pruning (ratio = fraction of training samples removed)",
                "model": "model pruning (ratio = fraction of prunable weights removed)"}
FAMILIES = ("data", "model")
#: metrics each run contributes, by the name the cell logged them under
RUN_METRICS = ("kept_fraction", "realised_sparsity", "total_sample_passes_rel", "train_seconds",
               "scoring_seconds", "params_total", "params_remaining", "flops_dense", "flops_remaining_rel",
               "test_loss", "peak_rss_mb", "peak_device_mb")


def load_runs(tracking_uri: str, experiment: str) -> pd.DataFrame:
    """One row per finished cell (the latest run if a cell somehow has several)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        raise SystemExit(f"no MLflow experiment {experiment!r} at {tracking_uri}; run a sweep first "
                         "or pass --experiment with the sweep's name")
    rows, token = [], None
    while True:
        page = client.search_runs([found.experiment_id], filter_string="tags.status = 'finished'",
                                  max_results=1000, page_token=token)
        for run in page:
            tags, params, metrics = run.data.tags, run.data.params, run.data.metrics
            metric = tags.get("metric", "accuracy")
            row = {
                "cell_id": tags["cell_id"], "task": tags["task"], "method": tags["method"],
                "label": tags.get("label", tags["method"]), "family": tags.get("family", ""),
                "provenance": tags.get("provenance", ""), "data_origin": tags.get("data_origin", ""),
                "code_version": tags.get("code_version", ""), "metric": metric,
                "chance_level": _chance_level(tags),
                "ratio": float(params["ratio"]), "seed": int(params["seed"]),
                "value": metrics.get(f"test_{metric}"), "start_time": run.info.start_time,
            }
            row.update({name: metrics.get(name) for name in RUN_METRICS})
            row["seconds"] = (metrics.get("train_seconds") or 0.0) + (metrics.get("scoring_seconds") or 0.0)
            rows.append(row)
        token = page.token
        if not token:
            break
    frame = pd.DataFrame(rows, columns=None if rows else ["cell_id"])
    if frame.empty:
        return frame
    return frame.sort_values("start_time").drop_duplicates("cell_id", keep="last").reset_index(drop=True)


def _chance_level(tags: dict[str, str]) -> float | None:
    """The task's chance level as the cell logged it; runs logged before that tag existed
    fall back to the registered task's class attribute."""
    if "chance_level" in tags:
        return float(tags["chance_level"])
    try:
        from .registry import get_task

        return float(get_task(tags["task"]).chance_level)
    except Exception:  # an unknown task (plugin not installed): no normalised score for it
        return None


def _by_seed(frame: pd.DataFrame, column: str = "value") -> pd.Series:
    return frame.set_index("seed")[column]


def family_table(runs: pd.DataFrame, task: str, family: str) -> pd.DataFrame:
    """One row per (method label, ratio) of ``family`` on ``task``, every statistic and cost."""
    task_runs = runs[runs.task == task]
    full_runs = task_runs[task_runs.family == "reference"]
    full = _by_seed(full_runs)
    full_seconds = _by_seed(full_runs, "seconds")
    rows = task_runs[task_runs.family == family]
    baseline = FAMILY_BASELINE.get(family)
    out = []
    for (label, ratio), group in rows.groupby(["label", "ratio"], sort=True):
        summary = summarise(group["value"])
        vs_full = compare_paired(_by_seed(group), full)
        base_rows = rows[(rows.label == baseline) & (rows.ratio == ratio)]
        vs_base = None if label == baseline else compare_paired(_by_seed(group), _by_seed(base_rows))
        speedup = (full_seconds / _by_seed(group, "seconds")).dropna()
        out.append({
            "task": task, "family": family, "method": label, "ratio": ratio, "seeds": summary.n,
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
            "seconds": group["seconds"].mean(),
            "speedup": speedup.mean() if len(speedup) else None,
            "params_remaining": group["params_remaining"].mean(),
            "flops_rel": group["flops_remaining_rel"].mean(),
            "loss": group["test_loss"].mean(),
            # peak memory: runs logged before it was measured have none (the mean skips them)
            "peak_rss_mb": group["peak_rss_mb"].mean(),
            "peak_device_mb": group["peak_device_mb"].mean(),
            "provenance": group["provenance"].iloc[0],
        })
    table = pd.DataFrame(out)
    return table.sort_values(["ratio", "method"]).reset_index(drop=True) if not table.empty else table


def normalised_scores(runs: pd.DataFrame) -> pd.DataFrame:
    """Per (family, method label, ratio): the mean over tasks of each task's mean score
    rescaled so that chance is 0 and the task's full / dense model (mean over seeds) is 100."""
    per_task = []
    for task, task_runs in runs.groupby("task"):
        full = task_runs[task_runs.family == "reference"]["value"].mean()
        chance = task_runs["chance_level"].iloc[0]
        if pd.isna(full) or chance is None or pd.isna(chance) or full == chance:
            continue
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
    normalised: pd.DataFrame = field(default_factory=pd.DataFrame)
    command: str = ""
    generated: str = ""

    @property
    def tasks(self) -> list[str]:
        return sorted(self.runs.task.unique()) if not self.runs.empty else []

    @property
    def code_versions(self) -> list[str]:
        return sorted(self.runs.code_version.unique()) if not self.runs.empty else []

    def task_info(self, task: str) -> dict:
        """Headline metric, data origin and the full / dense reference summary of ``task``."""
        task_runs = self.runs[self.runs.task == task]
        return {"metric": task_runs.metric.iloc[0], "data_origin": task_runs.data_origin.iloc[0],
                "full": summarise(task_runs[task_runs.family == "reference"]["value"])}

    def provenance(self) -> dict[str, str]:
        """Method label -> provenance (``reference-code`` or ``reconstructed``)."""
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
    if not runs.empty:
        board.normalised = normalised_scores(runs)
    return board
