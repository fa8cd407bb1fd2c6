"""Weight-mask maths, as small pure functions, and the object that enforces masks.

Prunable weights are the ``weight`` of every Linear / Conv1d / Conv2d outside the
task head. Removal counts follow ``torch.nn.utils.prune``: ``round(ratio * n)``
with Python's ``round``; among equal scores the lower flat index is removed first.
"""
from __future__ import annotations

import torch
from torch import nn

PRUNABLE_TYPES = (nn.Linear, nn.Conv1d, nn.Conv2d)


def prunable_weights(model: nn.Module, exclude: nn.Module | None = None) -> dict[str, nn.Parameter]:
    """``{qualified name: weight}`` of every prunable layer, in module order."""
    excluded = {id(m) for m in exclude.modules()} if exclude is not None else set()
    return {
        f"{name}.weight" if name else "weight": module.weight
        for name, module in model.named_modules()
        if isinstance(module, PRUNABLE_TYPES) and id(module) not in excluded
    }


def count_removed(ratio: float, n: int) -> int:
    return int(round(ratio * n))


def lowest_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean keep-mask of ``scores``' shape with the ``k`` lowest entries removed, ties
    removed lowest flat index first, on ``scores``' device."""
    return lowest_k_masks([scores.detach().float().contiguous()], k)[0]


def lowest_k_masks(scores: list[torch.Tensor], k: int, flat: torch.Tensor | None = None) -> list[torch.Tensor]:
    """Keep-masks for ``scores`` ranked as one vector (in order, each flattened): the ``k``
    lowest entries removed, ties removed lowest (global) flat index first.

    Linear time: the k-th smallest score is the threshold (a selection, not a sort); every
    score below it goes, and of the scores equal to it the first ``k - #below``. On a GPU no
    value is read back to the host, so nothing waits. ``flat``, if given, is ``scores``
    concatenated (the caller's: it is not modified). Scores must not be NaN.
    """
    n = sum(s.numel() for s in scores)
    if k <= 0 or k >= n:
        return [torch.full(s.shape, k <= 0, dtype=torch.bool, device=s.device) for s in scores]
    own = flat is None
    if own:
        flat = torch.cat([s.flatten() for s in scores])  # a copy: the selection may reorder it
    threshold = kth_smallest(flat, k, reorder=own)
    del flat
    keeps = [s > threshold for s in scores]
    tied = [s == threshold for s in scores]
    if threshold.device.type == "cpu":
        _keep_late_ties_host(keeps, tied, k, n)
    else:
        _keep_late_ties_device(keeps, tied, k, n)
    return keeps


def _removed_ties(keeps: list[torch.Tensor], tied: list[torch.Tensor], k: int, n: int) -> torch.Tensor:
    """How many of the tied entries are removed: ``k`` minus the number strictly below."""
    above = torch.stack([torch.count_nonzero(m) for m in keeps]).sum()
    ties = torch.stack([torch.count_nonzero(m) for m in tied]).sum()
    return k - (n - above - ties)


def _keep_late_ties_host(keeps: list[torch.Tensor], tied: list[torch.Tensor], k: int, n: int) -> None:
    """Keep every tie after the first ``left`` ones (in place), finding the one tensor where
    the cut falls by counting; no model-sized index or count."""
    left = int(_removed_ties(keeps, tied, k, n))
    for keep, ties in zip(keeps, tied):
        if left <= 0:
            keep |= ties
            continue
        count = int(torch.count_nonzero(ties))
        if count > left:
            positions = ties.flatten().nonzero().squeeze(1)[left:]
            keep.view(-1)[positions] = True
        left -= count


def _keep_late_ties_device(keeps: list[torch.Tensor], tied: list[torch.Tensor], k: int, n: int) -> None:
    """The same with device arithmetic only: each tie's rank by a cumulative count (4 bytes an
    entry of one tensor at a time) plus the ties in the tensors before it."""
    left = _removed_ties(keeps, tied, k, n)
    counts = torch.stack([torch.count_nonzero(m) for m in tied])
    before = torch.cumsum(counts, 0) - counts
    for i, (keep, ties) in enumerate(zip(keeps, tied)):
        index_type = torch.int32 if ties.numel() < 2**31 else torch.int64
        rank = torch.cumsum(ties.flatten(), 0, dtype=index_type).view(ties.shape) + before[i]
        keep |= ties & (rank > left)


def kth_smallest(flat: torch.Tensor, k: int, reorder: bool = False) -> torch.Tensor:
    """The ``k``-th smallest entry (1-based) of a 1-D tensor, as a 0-d tensor on its device.
    On the CPU NumPy's introselect (~10x faster than ``torch.kthvalue``, which also keeps an
    int64 index per entry) runs on ``flat`` itself if ``reorder`` allows, else on one copy;
    elsewhere ``torch.kthvalue`` runs on the device."""
    if flat.device.type == "cpu" and flat.dtype in (torch.float32, torch.float64):
        values = flat.numpy(force=True)
        if not reorder:
            values = values.copy()
        values.partition(k - 1)
        return torch.tensor(values[k - 1], dtype=flat.dtype)
    return torch.kthvalue(flat, k).values


def flat_views(flat: torch.Tensor, like: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Consecutive views of ``flat``, one per entry of ``like`` and of its shape, in order."""
    out, offset = {}, 0
    for name, tensor in like.items():
        size = tensor.numel()
        out[name] = flat[offset : offset + size].view(tensor.shape)
        offset += size
    return out


def concatenated(scores: dict[str, torch.Tensor]) -> torch.Tensor:
    """All scores as one float32 vector on the first tensor's device, in order."""
    device = next(iter(scores.values())).device
    return torch.cat([s.detach().flatten().to(device=device, dtype=torch.float32) for s in scores.values()])


def global_masks(scores: dict[str, torch.Tensor], ratio: float, flat: torch.Tensor | None = None
                 ) -> dict[str, torch.Tensor]:
    """One ranking over all tensors: remove the ``round(ratio * total)`` lowest scores.
    ``flat``, if given, is the scores already concatenated (as :func:`concatenated`), which
    saves one copy of every score."""
    if not scores:
        return {}
    device = next(iter(scores.values())).device
    # as ranked: float32, logical (contiguous) order
    values = [s.detach().to(device=device, dtype=torch.float32).contiguous() for s in scores.values()]
    k = count_removed(ratio, sum(v.numel() for v in values))
    keeps = lowest_k_masks(values, k, flat)
    return {n: keep.to(s.device) for (n, s), keep in zip(scores.items(), keeps)}


def layerwise_masks(scores: dict[str, torch.Tensor], ratio: float) -> dict[str, torch.Tensor]:
    """Each tensor on its own: remove ``round(ratio * numel)`` of its lowest scores."""
    return {n: lowest_k_mask(s.detach().float(), count_removed(ratio, s.numel())) for n, s in scores.items()}


def select_masks(scores: dict[str, torch.Tensor], ratio: float, scope: str, flat: torch.Tensor | None = None
                 ) -> dict[str, torch.Tensor]:
    """Masks by ``scope``; ``flat`` (the scores concatenated) is used by the global scope only."""
    if scope == "global":
        return global_masks(scores, ratio, flat)
    if scope == "layer":
        return layerwise_masks(scores, ratio)
    raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")


def sparsity(weights: dict[str, torch.Tensor]) -> float:
    """Fraction of exactly-zero entries over all given tensors, measured from the weights."""
    total = sum(w.numel() for w in weights.values())
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    return zeros / total if total else 0.0


class Masker:
    """Keeps pruned weights exactly zero: masks the gradient on the way in and
    re-zeroes the weights after every optimizer step, so momentum or weight decay
    cannot move a pruned entry."""

    def __init__(self, weights: dict[str, nn.Parameter]):
        self.weights = weights
        self.masks: dict[str, torch.Tensor] = {}
        self._handles: list = []

    def set(self, masks: dict[str, torch.Tensor]) -> None:
        """Install new masks (a removed weight may never come back: masks are ANDed)."""
        for name, mask in masks.items():
            mask = mask.to(device=self.weights[name].device, dtype=torch.bool)
            previous = self.masks.get(name)
            self.masks[name] = mask if previous is None else mask & previous
        if not self._handles:
            for name, weight in self.weights.items():
                self._handles.append(weight.register_hook(self._grad_filter(name)))
        self.enforce()

    def _grad_filter(self, name: str):
        def hook(grad: torch.Tensor) -> torch.Tensor:
            mask = self.masks.get(name)
            return grad if mask is None else grad * mask

        return hook

    @torch.no_grad()
    def enforce(self) -> None:
        for name, mask in self.masks.items():
            self.weights[name].mul_(mask)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def kept(self) -> int:
        return sum(int(m.sum()) for m in self.masks.values())
