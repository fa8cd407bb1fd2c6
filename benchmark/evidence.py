"""What a cell's run keeps besides its figures: the evidence of how they were made.

Artifacts of every finished cell run (docs/evidence.md has the formats):

- ``cell.json``: the resolved cell (its content, whose hash is the cell id; the sweep; the
  recipe; method and task classes, provenance and third-party packages; the data read; code
  and library versions);
- ``samples.npz`` (data pruning): the training indices each epoch consumed, as packed
  bitsets (``n/8`` bytes a distinct epoch, whatever the ratio; a fixed subset is stored once);
- ``scores.npz`` (scored data pruning): the float32 per-sample scores the method ranked by, at
  each epoch whose kept set changed, within :data:`SCORE_BUDGET_BYTES` a cell;
- ``masks.json`` and, up to :data:`MASK_MAX_WEIGHTS` prunable weights, ``masks.npz`` (model
  pruning): kept / total / zero counts per tensor and the final masks as packed bits.

The data set is logged as the run's MLflow input (name, source, digest of the tensors trained
on). Knows nothing of sweeps: :func:`log_evidence` is called by the executors.
"""
from __future__ import annotations

import hashlib
import inspect
import json
import platform
import tempfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from .contract import third_party
from .hooks import Hook, TrainState
from .origin import package_of, provenance_of

if TYPE_CHECKING:
    from .cells import Cell
    from .execute import CellPlan
    from .method import Method
    from .task import Splits
    from .tracking import CellRun

#: the final mask is stored as bits up to this many prunable weights (512 KiB packed): every
#: model of the cpu and smoke profiles fits; a ResNet-18 (11M) or a language model does not,
#: and keeps only its per-tensor counts (the mask is recomputable from seed and code)
MASK_MAX_WEIGHTS = 1 << 22
#: at most this many bytes of score snapshots a cell; a dynamic method with more selection
#: epochs keeps evenly spaced ones, the last always among them
SCORE_BUDGET_BYTES = 2 << 20
#: distributions named in cell.json when installed
LIBRARIES = ("torch", "numpy", "mlflow", "transformers", "datasets", "pandas", "scipy")


def splits_digest(splits: "Splits") -> str:
    """SHA-256 (32 hex digits: MLflow keeps 36) of every split's tensors, dtype and shape
    included: it changes exactly when the data trained and tested on does."""
    digest = hashlib.sha256()
    for name in ("train", "val", "test"):
        split = getattr(splits, name)
        for tensor in (split.x, split.y):
            tensor = tensor.detach().cpu().contiguous()
            digest.update(f"{name}:{tensor.dtype}:{tuple(tensor.shape)};".encode())
            digest.update(tensor.flatten().view(torch.uint8).numpy().data)
    return digest.hexdigest()[:32]


class EvidenceRecorder(Hook):
    """Records, per epoch, which training samples the trainer consumed (from the batches
    themselves) and the method's ranking scores at the epoch's start. Goes right after the
    method in the hook list, so the scores it reads are the ones the selection just used."""

    def __init__(self, method: "Method"):
        self.method = method
        self._reset(0)

    def _reset(self, n: int) -> None:
        self.n = n
        self.rows: list[np.ndarray] = []  # distinct packed epoch sets, first seen first
        self._row_of: dict[bytes, int] = {}  # a row's bytes -> its position in rows
        self.epoch_row: list[int] = []
        self.counts: list[int] = []
        self.score_epochs: list[int] = []
        self.score_rows: list[np.ndarray] = []

    def on_run_start(self, state: TrainState) -> None:
        self._reset(state.n_train)

    def on_epoch_start(self, state: TrainState) -> None:
        self._batches: list[torch.Tensor] = []
        self._scores = third_party(self.method, "ranking_scores()", self._read_scores)

    def _read_scores(self) -> np.ndarray | None:
        scores = self.method.ranking_scores()
        return None if scores is None else scores.detach().float().cpu().numpy().copy()

    def on_batch_loss(self, state, indices, logits, losses, targets, features) -> None:
        self._batches.append(indices.cpu())  # the trainer's indices are host tensors: no copy, no wait
        return None

    def on_epoch_end(self, state: TrainState, metrics: dict[str, float]) -> None:
        used = np.zeros(self.n, dtype=bool)
        if self._batches:
            used[torch.cat(self._batches).numpy()] = True
        row = np.packbits(used)
        key = row.tobytes()
        previous = self.rows[self.epoch_row[-1]].tobytes() if self.epoch_row else np.packbits(
            np.ones(self.n, dtype=bool)).tobytes()
        if key not in self._row_of:
            self._row_of[key] = len(self.rows)
            self.rows.append(row)
        self.epoch_row.append(self._row_of[key])
        self.counts.append(int(used.sum()))
        if self._scores is not None and key != previous:  # the method ranked anew: keep what it ranked by
            self.score_epochs.append(state.epoch)
            self.score_rows.append(self._scores)

    @property
    def all_samples_every_epoch(self) -> bool:
        return all(count == self.n for count in self.counts)

    def samples_arrays(self) -> dict[str, np.ndarray]:
        return {"n": np.array(self.n, dtype=np.int64), "rows": np.stack(self.rows),
                "epoch_row": np.array(self.epoch_row, dtype=np.int32),
                "counts": np.array(self.counts, dtype=np.int32)}

    def scores_arrays(self) -> dict[str, np.ndarray] | None:
        if not self.score_rows:
            return None
        keep = max(1, SCORE_BUDGET_BYTES // (4 * max(self.n, 1)))
        picked = range(len(self.score_rows))
        if len(self.score_rows) > keep:  # evenly spaced, ending on the last
            picked = sorted({round(i) for i in np.linspace(len(self.score_rows) - 1, 0, keep)})
        return {"epochs": np.array([self.score_epochs[i] for i in picked], dtype=np.int32),
                "scores": np.stack([self.score_rows[i] for i in picked]).astype(np.float32)}


def epoch_indices(samples: dict[str, np.ndarray]) -> list[np.ndarray]:
    """Decode ``samples.npz``: the sorted training indices of each epoch."""
    n = int(samples["n"])
    rows = [np.flatnonzero(np.unpackbits(row, count=n)) for row in samples["rows"]]
    return [rows[i] for i in samples["epoch_row"]]


def mask_evidence(masks: dict[str, torch.Tensor], model: torch.nn.Module) -> tuple[dict[str, Any], dict | None]:
    """(``masks.json`` content, ``masks.npz`` arrays or None when over :data:`MASK_MAX_WEIGHTS`):
    per tensor the mask's kept and total counts and the zeros in the trained weight."""
    params = dict(model.named_parameters())
    layers = {}
    for name, mask in masks.items():
        weight = params.get(name)
        layers[name] = {"shape": list(mask.shape), "total": mask.numel(), "kept": int(mask.sum()),
                        "zero": int((weight == 0).sum()) if weight is not None else None}
    total = sum(layer["total"] for layer in layers.values())
    stored = total <= MASK_MAX_WEIGHTS
    summary = {"total": total, "kept": sum(layer["kept"] for layer in layers.values()), "layers": layers,
               "bits": "masks.npz" if stored else None, "bits_threshold": MASK_MAX_WEIGHTS}
    arrays = {name: np.packbits(mask.detach().flatten().cpu().numpy().astype(bool))
              for name, mask in masks.items()} if stored else None
    return summary, arrays


def unpack_mask(bits: np.ndarray, shape: list[int]) -> np.ndarray:
    return np.unpackbits(bits, count=int(np.prod(shape))).astype(bool).reshape(shape)


@dataclass
class Evidence:
    """What :func:`benchmark.execute.run_cell` hands the tracker besides the figures."""

    recorder: EvidenceRecorder
    masks: dict[str, torch.Tensor] = field(default_factory=dict)
    model: torch.nn.Module | None = None
    data: dict[str, str] = field(default_factory=dict)  # the data.* tags, data.digest included
    split_sizes: dict[str, int] = field(default_factory=dict)
    data_source: dict[str, Any] = field(default_factory=dict)
    device: str = ""


def data_source(task, provenance: dict[str, str]) -> dict[str, Any]:
    """``{"type": MLflow source type, "source": ...}`` of the data ``task`` read: the hub id and
    revision, the files, or the folder (a task's ``resolve_dir``, else its ``data_dir``)."""
    if "data.hub_id" in provenance:
        return {"type": "hugging_face", "source": {
            "path": provenance.get("data.hub_local_copy", provenance["data.hub_id"]),
            "config_name": provenance.get("data.hub_config") or None, "revision": provenance.get("data.hub_revision")}}
    if "data.files" in provenance:
        return {"type": "local", "source": {"uri": provenance["data.files"]}}
    folder = task.data_dir
    resolve = getattr(task, "resolve_dir", None)
    if resolve is not None:
        try:
            folder = resolve()
        except Exception:  # noqa: BLE001 - the data was read; a second look failing only loses the path
            pass
    return {"type": "local", "source": {"uri": str(folder) if folder else f"task {task.name} (its built-in data)"}}


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
    from .cells import Cell, _frozen_items

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
    from .store import guarded

    inputs = [dataset_input(plan, evidence)]
    with tempfile.TemporaryDirectory(prefix="prunebench-evidence-") as folder:
        write_artifacts(Path(folder), plan, evidence, sweep, code_version)
        guarded(run.uri, "cannot write the cell's evidence artifacts",
                lambda: run.client.log_artifacts(run.run_id, folder))
    guarded(run.uri, "cannot log the cell's data set input", lambda: log_inputs_once_raced(run, inputs))


#: how a store says a row with the same unique key was written first (SQLite, PostgreSQL, MySQL)
_UNIQUE_KEY_RACE = ("UNIQUE constraint failed", "duplicate key value", "Duplicate entry")


def log_inputs_once_raced(run: "CellRun", inputs: list, attempts: int = 3) -> None:
    """Log the run's data set inputs. MLflow looks the data set up, then inserts it if absent: two
    runners recording the same data set at once can both find it absent, and the second insert
    fails on the store's unique key (experiment, name, digest). That is a race between runners, not
    a store fault: a new try finds the row the other runner wrote. Any other error is raised."""
    for attempt in range(attempts):
        try:
            run.client.log_inputs(run.run_id, datasets=inputs)
            return
        except Exception as error:
            if attempt == attempts - 1 or not any(text in str(error) for text in _UNIQUE_KEY_RACE):
                raise
