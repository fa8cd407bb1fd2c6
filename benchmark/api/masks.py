"""Weight-mask maths, as small pure functions, and the object that enforces masks.

Prunable weights are the ``weight`` of every Linear / Conv1d / Conv2d outside the
task head. Removal counts follow ``torch.nn.utils.prune``: ``round(ratio * n)``
with Python's ``round``; among equal scores the lower flat index is removed first.
"""
from __future__ import annotations

from .lazy import lazy_import, no_grad

torch = lazy_import("torch")
nn = lazy_import("torch.nn")


def prunable_types() -> tuple[type, ...]:
    """The layers whose ``weight`` is prunable (a function: the method classes import this
    module without torch)."""
    return (nn.Linear, nn.Conv1d, nn.Conv2d)


def prunable_weights(model: nn.Module, exclude: nn.Module | None = None) -> dict[str, nn.Parameter]:
    """``{qualified name: weight}`` of every prunable layer, in module order."""
    excluded = {id(m) for m in exclude.modules()} if exclude is not None else set()
    return {
        f"{name}.weight" if name else "weight": module.weight
        for name, module in model.named_modules()
        if isinstance(module, prunable_types()) and id(module) not in excluded
    }


def count_removed(ratio: float, n: int) -> int:
    return int(round(ratio * n))


def lowest_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean keep-mask of ``scores``' shape with the ``k`` lowest entries removed, ties
    removed lowest flat index first, on ``scores``' device.

    Linear time: the k-th smallest score is the threshold (a selection, not a sort); every
    score below it goes, and of the scores equal to it the first ``k - #below`` in flat order.
    On a GPU no value is read back to the host, so nothing waits. Scores must not be NaN.
    A handful of whole-vector operations, whatever the number of tensors concatenated (on a
    busy machine each parallel operation may wait a scheduler slice for its second thread).
    """
    flat = scores.flatten()
    n = flat.numel()
    if k <= 0 or k >= n:
        return torch.full(scores.shape, k <= 0, dtype=torch.bool, device=scores.device)
    with torch.no_grad():
        if on_host(flat.device):  # NumPy reorders a copy (torch's allocator asks for huge pages)
            values = torch.empty_like(flat).copy_(flat)
            threshold = kth_smallest(values, k)
            tied = torch.eq(flat, threshold, out=values.view(torch.bool)[:n])  # the copy's memory, now free
        else:
            threshold = kth_smallest(flat, k)
            tied = flat == threshold
        keep = flat > threshold
        left = k - (n - torch.count_nonzero(keep) - torch.count_nonzero(tied))  # ties to remove
        if on_host(flat.device):
            _keep_late_ties_host(keep, tied, left)
        else:
            _keep_late_ties_device(keep, tied, left)
    return keep.view(scores.shape)


def on_host(device: torch.device) -> bool:
    """Whether the selection may read values on the host (no synchronisation on the CPU)."""
    return device.type == "cpu"


TIE_CHUNK = 1 << 22  # entries per count when looking for the last removed tie on the host


def _keep_late_ties_host(keep: torch.Tensor, tied: torch.Tensor, left: torch.Tensor) -> None:
    """Keep (in place) every tie after the first ``left``: the chunk where the cut falls is
    found by counting, so no model-sized index or count is built."""
    left = int(left)
    for start in range(0, tied.numel(), TIE_CHUNK):
        chunk = tied[start : start + TIE_CHUNK]
        count = int(torch.count_nonzero(chunk))
        if count > left:
            cut = start + int(chunk.nonzero()[left])  # the first tie that stays
            keep[cut:] |= tied[cut:]
            return
        left -= count


def _keep_late_ties_device(keep: torch.Tensor, tied: torch.Tensor, left: torch.Tensor) -> None:
    """The same with device arithmetic only (``left`` stays a device tensor): each tie's rank
    by a cumulative count, 4 bytes an entry."""
    index_type = torch.int32 if tied.numel() < 2**31 else torch.int64
    keep |= tied & (torch.cumsum(tied, 0, dtype=index_type) > left)


def kth_smallest(flat: torch.Tensor, k: int) -> torch.Tensor:
    """The ``k``-th smallest entry (1-based) of a 1-D tensor, as a 0-d tensor on its device.
    ``flat`` may be reordered. On the host NumPy's introselect, in place (~10x faster than
    ``torch.kthvalue``, which also keeps an int64 index per entry); elsewhere, and for dtypes
    NumPy cannot select on, ``torch.kthvalue``."""
    if on_host(flat.device) and flat.dtype in (torch.float32, torch.float64):
        values = flat.numpy()
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
    saves one copy of every score; it is not modified."""
    if not scores:
        return {}
    flat = concatenated(scores) if flat is None else flat
    keep = flat_views(lowest_k_mask(flat, count_removed(ratio, flat.numel())), scores)
    return {n: keep[n].to(s.device) for n, s in scores.items()}


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
        """Install new masks (a removed weight may never come back: masks are ANDed). Each must
        name a prunable weight and have exactly its shape, and be boolean (or hold only 0 and 1):
        :func:`benchmark.api.contract.check_mask`, checked before any is installed."""
        from .contract import check_mask

        checked = {name: check_mask(name, mask, self.weights) for name, mask in masks.items()}
        for name, mask in checked.items():
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

    @no_grad
    def enforce(self) -> None:
        for name, mask in self.masks.items():
            self.weights[name].mul_(mask)

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def kept(self) -> int:
        return sum(int(m.sum()) for m in self.masks.values())
