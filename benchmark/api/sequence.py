"""The convention for tasks whose outputs are token sequences (language modelling).

A classification task yields logits ``[B, C]`` with targets ``[B]``. A sequence task
yields logits ``[B, T, V]`` with targets ``[B, T]`` already aligned (position t holds
the token to predict there), and ``IGNORE_INDEX`` where a position does not count
(prompt and padding). A per-sample figure of a sequence sample is the MEAN over its
counted positions, so that every sample weighs the same whatever its length.

:func:`counted_rows` turns either shape into one row per counted position, with the
sample each row belongs to and its weight; :func:`per_sample` sums weighted row values
back per sample. Methods written against rows (EL2N, EMP, TED) work on both shapes.
"""
from __future__ import annotations

from dataclasses import dataclass

from .lazy import lazy_import

torch = lazy_import("torch")

IGNORE_INDEX = -100  # as torch's cross_entropy and Hugging Face's labels


@dataclass
class Rows:
    logits: torch.Tensor  # [N, C]
    targets: torch.Tensor  # [N]
    features: torch.Tensor | None  # [N, H]
    owner: torch.Tensor  # [N] the sample (batch position) each row belongs to
    weight: torch.Tensor  # [N] 1 / number of counted rows of that sample
    batch: int  # B


def counted_rows(logits: torch.Tensor, targets: torch.Tensor, features: torch.Tensor | None = None) -> Rows:
    batch = logits.shape[0]
    if logits.dim() == 2:
        ones = torch.ones(batch, device=logits.device)
        return Rows(logits, targets, features, torch.arange(batch, device=logits.device), ones, batch)
    counted = targets != IGNORE_INDEX
    # one nonzero (a host synchronisation: the row count depends on the data), then integer
    # indexing; boolean indexing would synchronise once more per tensor it selects from
    owner, position = counted.nonzero().unbind(1)
    counts = counted.sum(dim=1).clamp(min=1)
    return Rows(logits[owner, position], targets[owner, position],
                features[owner, position] if features is not None else None,
                owner, 1.0 / counts[owner].float(), batch)


def per_sample(values: torch.Tensor, rows: Rows) -> torch.Tensor:
    """``[B]``: each sample's weighted sum of its rows' ``values`` (the mean over its positions)."""
    out = torch.zeros(rows.batch, dtype=values.dtype, device=values.device)
    return out.index_add(0, rows.owner, values * rows.weight.to(values.dtype))
