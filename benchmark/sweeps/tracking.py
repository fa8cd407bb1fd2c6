"""One MLflow run per cell.

The store is the tracking URI given, else ``$MLFLOW_TRACKING_URI``, else a
SQLite file ``mlflow.db`` in the working directory (artifacts beside it in
``mlartifacts/``). A cell's run carries the tag ``cell_id``; its ``status`` tag
moves running -> finished | failed | interrupted (| superseded, see
:mod:`.claims`), and only ``finished`` runs count as done: a re-run skips them
and re-runs everything else. Several runners may share a store: a runner takes a
cell only through a claim (:meth:`Tracker.try_claim`).

An experiment the harness creates carries the tag ``prunebench.kind`` (``cells`` for a sweep's,
``leaderboards`` for the boards'), and MLflow's ``mlflow.experimentKind`` = ``custom_model_development``
(a model-training experiment, not a GenAI one; set on an older experiment when it is next opened,
unless the user chose a kind). The harness adopts no other experiment of the same name (one
of another tool, or a deleted one), so a sweep never mixes its cells into foreign runs. Every
call into the store goes through :func:`.store.guarded`: a fault of the store itself is raised
as :class:`.store.StoreError`, which stops the sweep (see :mod:`.store`).
"""
from __future__ import annotations

import functools
import os
import random
import subprocess
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .claims import ClaimPolicy, Heartbeat, claim_tags, is_finished, is_live, resolve_duplicates
from ..api.hooks import Hook, TrainState
from .store import StoreError, guarded, open_client, redact
from .store_query import StoreQuery

if TYPE_CHECKING:
    from mlflow.tracking import MlflowClient

    from .cells import Cell

DEFAULT_DB = "mlflow.db"
CLAIM_ATTEMPTS = 5  # tries at a cell two runners claimed at the same moment
MAX_PARAM_LENGTH = 6000
KIND_TAG = "prunebench.kind"  # on every experiment the harness creates: "cells" or "leaderboards"
#: a tag every run of a legacy (untagged) harness experiment of that kind carries
KIND_MARKER = {"cells": "cell_id", "leaderboards": "source_experiment"}
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"  # MLflow's own: what the UI's experiment-kind selector shows
MODEL_TRAINING = "custom_model_development"
#: a run the board writes into a sweep's experiment (see :mod:`benchmark.boards.in_mlflow`): never a cell
SUMMARY_TAG, SUMMARY = "run_type", "summary"
SUMMARY_PENDING = "summary-pending"  # a summary run being made (see board_mlflow._create_summary_run)
SUMMARY_FILTER = f"tags.{SUMMARY_TAG} = '{SUMMARY}'"


def default_tracking_uri(cwd: str | Path | None = None) -> str:
    env = os.environ.get("MLFLOW_TRACKING_URI")
    if env:
        return env
    return f"sqlite:///{Path(cwd or os.getcwd()).resolve() / DEFAULT_DB}"


def code_version(source: Path | None = None) -> str:
    """The git commit of the harness source (with '-dirty' if its code is modified), else the
    package version. ``source``: the checkout (default: the one this module is in)."""
    from ..version import __version__

    source = source or Path(__file__).resolve().parents[2]
    try:
        sha = subprocess.run(["git", "-C", str(source), "rev-parse", "--short=12", "HEAD"],
                             capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        # results/ is left out: a sweep into a committed store modifies that store, not the code
        dirty = subprocess.run(["git", "-C", str(source), "status", "--porcelain", "--untracked-files=no",
                                "--", ".", ":(exclude)results"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return f"{sha}-dirty" if dirty else sha
    except (OSError, subprocess.SubprocessError):
        return __version__


def library_versions() -> dict[str, str]:
    import mlflow
    import torch

    return {"torch_version": torch.__version__, "mlflow_version": mlflow.__version__}


def ensure_experiment(client: Any, tracking_uri: str, name: str, kind: str = "cells") -> str:
    """The id of the harness experiment ``name`` of ``kind``, created if absent; a
    :class:`StoreError` if the name is taken by a deleted experiment or by another tool's."""
    existing = client.get_experiment_by_name(name)
    if existing is not None:
        return adopt_experiment(client, tracking_uri, existing, kind)
    artifact_location = None
    if tracking_uri.startswith("sqlite:///"):
        # keep artifacts beside the database rather than in whatever directory we run from
        db_path = Path(tracking_uri[len("sqlite:///"):])
        artifact_location = (db_path.parent / "mlartifacts").resolve().as_uri()
    try:
        return client.create_experiment(name, artifact_location=artifact_location,
                                        tags={KIND_TAG: kind, EXPERIMENT_KIND_TAG: MODEL_TRAINING})
    except Exception:  # another runner created it a moment ago: use theirs
        existing = client.get_experiment_by_name(name)
        if existing is None:
            raise
        return adopt_experiment(client, tracking_uri, existing, kind)


def adopt_experiment(client: Any, tracking_uri: str, experiment: Any, kind: str) -> str:
    """``experiment``'s id if the harness made it for ``kind`` (an untagged one whose runs
    all look like the harness's is a store from before the tag, and is tagged now)."""
    name = experiment.name
    if experiment.lifecycle_stage != "active":
        raise StoreError(tracking_uri, f"experiment {name!r} exists but is deleted", fix=(
            f"restore it with `mlflow experiments restore --experiment-id {experiment.experiment_id}` "
            f"(with MLFLOW_TRACKING_URI set to this store) to resume it, or give the sweep another name "
            f"(its 'name', or --experiment); a deleted experiment's name stays taken until it is purged "
            f"(`mlflow gc`)"))
    tagged = experiment.tags.get(KIND_TAG)
    if tagged == kind:
        mark_model_training(client, experiment)
        return experiment.experiment_id
    foreign = tagged is not None
    if not foreign:
        sample = client.search_runs([experiment.experiment_id], max_results=50)
        foreign = any(KIND_MARKER[kind] not in run.data.tags
                      and run.data.tags.get(SUMMARY_TAG) not in (SUMMARY, SUMMARY_PENDING) for run in sample)
    if foreign:
        raise StoreError(tracking_uri, f"experiment {name!r} was not made by prunebench for {kind} "
                         f"(its runs are another tool's)", fix=(
                             "give the sweep another name (its 'name', or --experiment), or rename that "
                             "experiment in the MLflow UI; prunebench does not mix its cells into foreign runs"))
    client.set_experiment_tag(experiment.experiment_id, KIND_TAG, kind)
    mark_model_training(client, experiment)
    return experiment.experiment_id


def mark_model_training(client: Any, experiment: Any) -> None:
    """Tag a harness experiment made before the kind tag as model training (a kind the user
    chose in the UI is kept)."""
    if EXPERIMENT_KIND_TAG not in experiment.tags:
        client.set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)


def _store_call(what: str):
    """Run the method through :func:`guarded`: any failure is the store's (``self.uri``)."""
    def wrap(method):
        @functools.wraps(method)
        def call(self, *args, **kwargs):
            return guarded(self.uri, what, lambda: method(self, *args, **kwargs))
        return call
    return wrap


def runs_by_cell(client: Any, experiment_id: str) -> dict[str, list[Any]]:
    """Every cell run of the experiment (withdrawn claims are deleted and not listed), by cell id."""
    runs: dict[str, list[Any]] = {}
    page_token = None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=page_token)
        for run in page:
            cell_id = run.data.tags.get("cell_id")
            if cell_id:
                runs.setdefault(cell_id, []).append(run)
        page_token = page.token
        if not page_token:
            return runs


class Tracker:
    """The MLflow side of a sweep: which cells are done, and a run per cell."""

    def __init__(self, tracking_uri: str | None = None, experiment: str = "prunebench",
                 claims: ClaimPolicy | None = None):
        from mlflow.tracking import MlflowClient

        self.claims = claims or ClaimPolicy()
        self._jitter = random.Random()  # seeded from the OS: runners must not pause in step
        self.tracking_uri = tracking_uri or default_tracking_uri()
        self.client: MlflowClient = open_client(self.tracking_uri)
        self.query = StoreQuery(self.client, self.tracking_uri)
        self.experiment_name = experiment
        self.experiment_id = guarded(self.uri, f"cannot open experiment {experiment!r}",
                                     lambda: self._experiment(experiment))
        self.code_version = code_version()

    @property
    def uri(self) -> str:
        """The tracking URI as it may be shown (password redacted)."""
        return redact(self.tracking_uri)

    @functools.cached_property
    def versions(self) -> dict[str, str]:
        """torch's and MLflow's versions, read at the first claim (a finished sweep imports no torch)."""
        return library_versions()

    def _experiment(self, name: str) -> str:
        return ensure_experiment(self.client, self.tracking_uri, name)

    @_store_call("cannot list the sweep's runs")
    def runs_by_cell(self) -> dict[str, list[Any]]:
        return runs_by_cell(self.client, self.experiment_id)

    @_store_call("cannot list the sweep's finished cells")
    def finished_cell_ids(self) -> set[str]:
        """The ids of the cells with a finished run (read as ids only: :mod:`.store_query`)."""
        return self.query.finished_cell_ids(self.experiment_id)

    def runs_of_cell(self, cell_id: str) -> list[Any]:
        """The cell's runs (withdrawn claims are deleted runs and are not listed): a look-up on the
        tags index of a SQLite store (:func:`.store_query.ensure_tag_index`), not a scan."""
        return list(self.client.search_runs([self.experiment_id], filter_string=f"tags.cell_id = '{cell_id}'",
                                            max_results=1000))

    @_store_call("cannot claim a cell")
    def try_claim(self, cell: "Cell", sweep: str, extra_params: dict[str, Any],
                  tags: dict[str, str]) -> "CellRun | None":
        """Open the run of ``cell`` if no other runner holds or has finished it, else None.
        Dead claims found on the way (a killed runner's) are closed as interrupted."""
        for attempt in range(CLAIM_ATTEMPTS):
            runs = self.runs_of_cell(cell.id)
            if any(is_finished(r) or is_live(r, self.claims) for r in runs):
                return None
            self._close_dead(runs)
            run_id = self._create_run(cell, sweep, tags)
            try:
                rivals = [r for r in self.runs_of_cell(cell.id)
                          if r.info.run_id != run_id and (is_finished(r) or is_live(r, self.claims))]
                if not rivals:
                    self._log_params(run_id, cell, extra_params)
                    return CellRun(self.client, run_id, cell.id, self).start_heartbeat()
            except KeyboardInterrupt:  # Ctrl-C or SIGTERM mid-claim: withdraw it, never leave it 'running'
                self.client.delete_run(run_id)
                raise
            # another runner claimed at the same moment: withdraw, and retry after a random pause so
            # that two runners in lockstep fall out of step (the first to come back takes the cell)
            self.client.delete_run(run_id)
            time.sleep(self._jitter.uniform(0.0, 0.5 * 2 ** attempt))
        return None

    @_store_call("cannot start a cell's run")
    def start_cell(self, cell: "Cell", sweep: str, extra_params: dict[str, Any], tags: dict[str, str],
                   stale_runs: list[Any] = ()) -> "CellRun":
        """Open the run of ``cell`` unconditionally (no claim); ``stale_runs`` still marked
        running are closed as interrupted. For tools and tests that own the store alone."""
        self._close_dead([r for r in stale_runs if r.data.tags.get("status") == "running"], force=True)
        run_id = self._create_run(cell, sweep, tags)
        self._log_params(run_id, cell, extra_params)
        return CellRun(self.client, run_id, cell.id, self)

    def _close_dead(self, runs: list[Any], force: bool = False) -> None:
        for old in runs:
            if old.data.tags.get("status") == "running" and (force or not is_live(old, self.claims)):
                self.client.set_tag(old.info.run_id, "status", "interrupted")
                self.client.set_terminated(old.info.run_id, "KILLED")

    def _create_run(self, cell: "Cell", sweep: str, tags: dict[str, str]) -> str:
        all_tags = {"cell_id": cell.id, "sweep": sweep, "status": "running", "code_version": self.code_version,
                    "task": cell.task, "method": cell.method, "label": cell.label, **self.versions, **tags,
                    **claim_tags()}
        run = self.client.create_run(self.experiment_id, tags=all_tags,
                                     run_name=f"{cell.task}/{cell.label}/r{cell.ratio:g}/s{cell.seed}")
        return run.info.run_id

    def _log_params(self, run_id: str, cell: "Cell", extra_params: dict[str, Any]) -> None:
        from mlflow.entities import Param

        params = {**cell.content(), "label": cell.label, **extra_params}
        params = {k: str(v)[:MAX_PARAM_LENGTH] for k, v in _flatten(params).items()}
        self.client.log_batch(run_id, params=[Param(k, v) for k, v in params.items()])


class CellRun:
    def __init__(self, client: "MlflowClient", run_id: str, cell_id: str = "", tracker: Tracker | None = None):
        self.client = client
        self.run_id = run_id
        self.cell_id = cell_id
        self.tracker = tracker
        self.heartbeat: Heartbeat | None = None
        self.superseded = False
        self.closed = False  # a final status has been written

    @property
    def uri(self) -> str:
        return redact(self.client._tracking_client.tracking_uri)

    def start_heartbeat(self) -> "CellRun":
        self.heartbeat = Heartbeat(self.client, self.run_id, self.tracker.claims.heartbeat_s).start()
        return self

    def _stop_heartbeat(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.stop()

    @_store_call("cannot log a cell's metrics")
    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        batch = [Metric(k, float(v), now, step) for k, v in metrics.items() if v is not None]
        for first in range(0, len(batch), 1000):
            self.client.log_batch(self.run_id, metrics=batch[first : first + 1000])

    @_store_call("cannot record a finished cell")
    def finish(self, metrics: dict[str, float], tags: dict[str, str] | None = None) -> None:
        self.log_metrics(metrics)
        for key, value in (tags or {}).items():
            self.client.set_tag(self.run_id, key, value)
        self._stop_heartbeat()
        self.client.set_tag(self.run_id, "status", "finished")
        self.client.set_terminated(self.run_id, "FINISHED")
        self.closed = True
        if self.tracker is not None and self.cell_id:
            self.superseded = not resolve_duplicates(self.client, self.tracker.runs_of_cell(self.cell_id), self.run_id)

    def fail(self, error: BaseException, traceback_text: str) -> None:
        """Close the run as failed, then attach the traceback: the status goes first, so that an
        artifact store that cannot be written leaves a failed cell, not a running one."""
        self._stop_heartbeat()
        guarded(self.uri, "cannot record a failed cell", lambda: self._close(
            "failed", "FAILED", error=f"{type(error).__name__}: {error}"[:5000]))
        artifacts = guarded(self.uri, "cannot read the run's artifact location",
                            lambda: self.client.get_run(self.run_id).info.artifact_uri)
        guarded(self.uri, f"cannot write the cell's traceback to its artifact location {redact(artifacts)}",
                lambda: self.client.log_text(self.run_id, traceback_text, "traceback.txt"))

    @_store_call("cannot record an interrupted cell")
    def interrupt(self) -> None:
        self._stop_heartbeat()
        self._close("interrupted", "KILLED")

    def _close(self, status: str, run_status: str, **tags: str) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)
        self.client.set_tag(self.run_id, "status", status)
        self.client.set_terminated(self.run_id, run_status)
        self.closed = True


class EpochLogger(Hook):
    """Logs each epoch's metrics to the cell's run as they come."""

    def __init__(self, run: CellRun):
        self.run = run

    def on_epoch_end(self, state: TrainState, metrics: dict[str, float]) -> None:
        self.run.log_metrics(metrics, step=state.epoch)


def _flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = value
    return out
