"""Theoretical cost of a (masked) model: parameters left and FLOPs per example.

FLOPs count the multiply-adds of the weight layers only (Linear, Conv1d, Conv2d,
the head included), two FLOPs per multiply-add, for one example. A weight that is
exactly zero costs nothing: that is the "theoretical" speed-up unstructured pruning
promises, not what dense kernels deliver. Biases, norms and activations are left out.
"""
from __future__ import annotations

import torch
from torch import nn

from ..api.masks import prunable_types


@torch.no_grad()
def weight_layer_flops(model: nn.Module, example: torch.Tensor) -> tuple[float, float]:
    """(dense, masked) FLOPs per example of ``model`` on the batch ``example``.

    Each weight of a Linear or Conv layer is used once per output position (a token,
    a pixel of the output map), so a layer costs ``weights x positions`` multiply-adds.
    """
    positions: dict[nn.Module, float] = {}

    def record(module, _inputs, output):
        out_features = output.shape[-1] if isinstance(module, nn.Linear) else output.shape[1]
        per_example = output.numel() / output.shape[0]
        positions[module] = positions.get(module, 0.0) + per_example / out_features

    layers = [m for m in model.modules() if isinstance(m, prunable_types())]
    handles = [m.register_forward_hook(record) for m in layers]
    was_training = model.training
    model.eval()
    try:
        model(example)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    dense = sum(m.weight.numel() * positions.get(m, 0.0) for m in layers)
    masked = sum(int(torch.count_nonzero(m.weight)) * positions.get(m, 0.0) for m in layers)
    return 2.0 * dense, 2.0 * masked


def parameter_counts(model: nn.Module) -> tuple[int, int]:
    """(all parameters, parameters left): zeros in weight-layer weights count as removed."""
    total = sum(p.numel() for p in model.parameters())
    zeros = sum(int(m.weight.numel() - torch.count_nonzero(m.weight))
                for m in model.modules() if isinstance(m, prunable_types()))
    return total, total - zeros
