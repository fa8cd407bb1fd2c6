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
    """Boolean keep-mask of ``scores``' shape with the ``k`` lowest entries removed."""
    flat = scores.flatten()
    keep = torch.ones_like(flat, dtype=torch.bool)
    if k > 0:
        keep[torch.argsort(flat, stable=True)[:k]] = False
    return keep.view_as(scores)


def global_masks(scores: dict[str, torch.Tensor], ratio: float) -> dict[str, torch.Tensor]:
    """One ranking over all tensors: remove the ``round(ratio * total)`` lowest scores."""
    names = list(scores)
    flat = torch.cat([scores[n].detach().flatten().float().cpu() for n in names])
    keep = lowest_k_mask(flat, count_removed(ratio, flat.numel()))
    out, offset = {}, 0
    for n in names:
        size = scores[n].numel()
        out[n] = keep[offset : offset + size].view_as(scores[n]).to(scores[n].device)
        offset += size
    return out


def layerwise_masks(scores: dict[str, torch.Tensor], ratio: float) -> dict[str, torch.Tensor]:
    """Each tensor on its own: remove ``round(ratio * numel)`` of its lowest scores."""
    return {
        n: lowest_k_mask(s.detach().float().cpu(), count_removed(ratio, s.numel())).to(s.device)
        for n, s in scores.items()
    }


def select_masks(scores: dict[str, torch.Tensor], ratio: float, scope: str) -> dict[str, torch.Tensor]:
    if scope == "global":
        return global_masks(scores, ratio)
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
