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

Recorded while the cell runs (:class:`EvidenceRecorder`, a hook) and gathered into an
:class:`Evidence` when it ends; :mod:`benchmark.sweeps.evidence_log` writes it to the run.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ..api.contract import third_party
from ..api.hooks import Hook, TrainState

if TYPE_CHECKING:
    from ..api.method import Method
    from ..api.task import Splits

#: the final mask is stored as bits up to this many prunable weights (512 KiB packed): every
#: model of the cpu and smoke profiles fits; a ResNet-18 (11M) or a language model does not,
#: and keeps only its per-tensor counts (the mask is recomputable from seed and code)
MASK_MAX_WEIGHTS = 1 << 22
#: at most this many bytes of score snapshots a cell; a dynamic method with more selection
#: epochs keeps evenly spaced ones, the last always among them
SCORE_BUDGET_BYTES = 2 << 20


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
    """What :func:`benchmark.sweeps.execute.run_cell` hands the tracker besides the figures."""

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
