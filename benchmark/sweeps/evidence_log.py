"""Writing a cell's evidence to its run: ``cell.json``, the sample / score / mask files and
the data set input (formats in docs/evidence.md; what is recorded: :mod:`.evidence`).
Called by the executors once a cell has finished."""
from __future__ import annotations

import inspect
import json
import platform
import tempfile
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..api.origin import package_of, provenance_of
from .cells import Cell, _frozen_items
from .evidence import Evidence, mask_evidence
from .store import guarded

if TYPE_CHECKING:
    from .execute import CellPlan
    from .tracking import CellRun

#: distributions named in cell.json when installed
LIBRARIES = ("torch", "numpy", "mlflow", "transformers", "datasets", "pandas", "scipy")


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            pass
    return versions


def resolved_options(cls: type, given: dict[str, Any]) -> dict[str, Any]:
    """Every option of a method class: the sweep's values over the signature's defaults."""
    params = inspect.signature(cls.__init__).parameters
    return {name: given.get(name, params[name].default) for name in cls.option_names()}


def cell_record(plan: "CellPlan", evidence: Evidence, sweep: str, code_version: str) -> dict[str, Any]:
    """The ``cell.json`` content (see :func:`cell_from_record` for the way back)."""
    cell, task, method = plan.cell, plan.task, plan.method
    recorder = evidence.recorder
    return {
        "cell_id": cell.id, "cell": {**cell.content(), "label": cell.label}, "sweep": sweep,
        "recipe": {k: list(v) if isinstance(v, tuple) else v for k, v in vars(task.recipe).items()},
        "method": {"name": cell.method, "class": f"{type(method).__module__}.{type(method).__qualname__}",
                   "options": resolved_options(type(method), dict(cell.method_options)),
                   "family": method.family, "provenance": provenance_of(type(method)), **package_of(type(method))},
        "task": {"name": cell.task, "class": f"{type(task).__module__}.{type(task).__qualname__}",
                 "family": task.family, "data_origin": task.data_origin, "data_dir": task.data_dir,
                 **package_of(type(task))},
        "data": {**evidence.data, "sizes": evidence.split_sizes, "source": evidence.data_source},
        "training": {"n_train": recorder.n, "samples_per_epoch": recorder.counts,
                     "all_samples_every_epoch": recorder.all_samples_every_epoch},
        "code_version": code_version, "libraries": library_versions(), "device": evidence.device,
    }


def cell_from_record(record: dict[str, Any]) -> "Cell":
    """The :class:`Cell` a ``cell.json`` describes (its id is the record's ``cell_id``)."""
    content = dict(record["cell"])
    content["method_options"] = _frozen_items(content.get("method_options"))
    content["task_options"] = _frozen_items(content.get("task_options"))
    return Cell(**content)


def write_artifacts(directory: Path, plan: "CellPlan", evidence: Evidence, sweep: str,
                    code_version: str) -> list[str]:
    """Write the cell's evidence files into ``directory``; their names."""
    recorder = evidence.recorder
    files = {"cell.json": cell_record(plan, evidence, sweep, code_version)}
    if recorder.rows and not recorder.all_samples_every_epoch:
        files["samples.npz"] = recorder.samples_arrays()
    files["scores.npz"] = recorder.scores_arrays()
    if evidence.masks and evidence.model is not None:
        files["masks.json"], files["masks.npz"] = mask_evidence(evidence.masks, evidence.model)
    for name, content in files.items():
        if name.endswith(".json"):
            (directory / name).write_text(json.dumps(content, indent=1, default=str))
        elif content is not None:
            np.savez_compressed(directory / name, **content)
    return sorted(name for name, content in files.items() if content is not None)


def dataset_input(plan: "CellPlan", evidence: Evidence):
    """The run's MLflow dataset input: the task's data, named by the task."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    profile = {"splits": evidence.split_sizes,
               **{k: v for k, v in evidence.data.items() if k.startswith("data.fingerprint.")}}
    dataset = Dataset(name=plan.cell.task, digest=evidence.data["data.digest"],
                      source_type=evidence.data_source["type"], source=json.dumps(evidence.data_source["source"]),
                      profile=json.dumps(profile))
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "train")])


def log_evidence(run: "CellRun", plan: "CellPlan", evidence: Evidence, sweep: str, code_version: str) -> None:
    """Log the cell's artifacts (one upload) and its data set input. Encoding them is the cell's
    work (a failure fails the cell); storing them is the store's (a failure stops the sweep)."""
    inputs = [dataset_input(plan, evidence)]
    with tempfile.TemporaryDirectory(prefix="prunebench-evidence-") as folder:
        write_artifacts(Path(folder), plan, evidence, sweep, code_version)
        guarded(run.uri, "cannot write the cell's evidence artifacts",
                lambda: run.client.log_artifacts(run.run_id, folder))
    guarded(run.uri, "cannot log the cell's data set input", lambda: log_inputs_once(run, inputs))


#: what a store says when two runners inserted the same data set row at once (SQLite, PostgreSQL,
#: MySQL, and MLflow's server relaying one of them): the key is (experiment, name, digest)
_LOST_INSERT_RACE = ("unique constraint failed: datasets", "dataset_pk", "duplicate key", "duplicate entry")
INPUT_ATTEMPTS = 3


def log_inputs_once(run: "CellRun", inputs: list) -> None:
    """Log ``inputs`` to the run, tolerating another runner inserting the same data set row
    between MLflow's look-up and its insert: MLflow's ``log_inputs`` reuses an existing row and
    skips an existing edge, so the retry finds the other runner's row and only links it."""
    for attempt in range(INPUT_ATTEMPTS):
        try:
            run.client.log_inputs(run.run_id, datasets=inputs)
            return
        except Exception as error:
            said = str(error).lower()
            if attempt + 1 == INPUT_ATTEMPTS or not any(mark in said for mark in _LOST_INSERT_RACE):
                raise
