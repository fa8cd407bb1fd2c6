"""Links from a board's rows into the MLflow UI: each row's summary run, and its cells.

The UI's pages are hash routes under its base URL (``prunebench ui`` prints it):
``{base}/#/experiments/{experiment}/runs/{run}`` opens a run, and the runs page with a search
filter lists a row's cells. The filter is made in :func:`cells_url` alone, so that it can be
changed in one place.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import pandas as pd

from ..sweeps.tracking import SUMMARY_FILTER

#: a row of the board: (task, family, method label, ratio)
RowKey = tuple[str, str, str, float]


def run_url(base: str, experiment_id: str, run_id: str) -> str:
    """One run's page, in the model-training layout."""
    return f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"


def cells_url(base: str, experiment_id: str, run_ids: list[str]) -> str:
    """The experiment's runs page listing exactly the runs ``run_ids`` (a row's cells).
    MLflow's search accepts ``IN`` on the run id, not on a tag."""
    ids = ", ".join(f"'{run_id}'" for run_id in sorted(run_ids))
    return (f"{base.rstrip('/')}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
            f"&searchFilter={quote(f'attributes.run_id IN ({ids})', safe='')}")


@dataclass
class BoardLinks:
    """Where a board's rows live in the UI at ``base``: the sweep's experiment and the run id
    of each row's summary run."""

    base: str
    experiment_id: str
    summary_ids: dict[RowKey, str] = field(default_factory=dict)

    def summary(self, task: str, family: str, method: str, ratio: float) -> str | None:
        run_id = self.summary_ids.get((task, family, method, float(ratio)))
        return None if run_id is None else run_url(self.base, self.experiment_id, run_id)

    def cells(self, runs: pd.DataFrame, task: str, family: str, method: str, ratio: float) -> str | None:
        """The row's finished cells (``runs``: the board's, with their ``run_id``)."""
        if "run_id" not in runs:
            return None
        rows = runs[(runs.task == task) & (runs.family == family) & (runs.label == method) & (runs.ratio == ratio)]
        ids = [run_id for run_id in rows.run_id if isinstance(run_id, str) and run_id]
        return cells_url(self.base, self.experiment_id, ids) if ids else None


def read_links(client: Any, experiment_id: str, base: str) -> BoardLinks:
    """The summary runs of ``experiment_id`` by their row (read from their params)."""
    from .in_mlflow import _search_all

    ids: dict[RowKey, str] = {}
    for run in _search_all(client, experiment_id, SUMMARY_FILTER):
        params = run.data.params
        try:
            key = (params["task"], params["family"], params["method"], float(params["ratio"]))
        except (KeyError, ValueError):  # not a row of this board's making
            continue
        ids[key] = run.info.run_id
    return BoardLinks(base, experiment_id, ids)
