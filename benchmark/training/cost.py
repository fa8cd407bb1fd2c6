"""The harness's unit of cost: training-pass equivalents.

One forward+backward pass of one sample is 1; a forward-only pass (scoring the training set
in eval mode, a calibration pass) is :data:`FORWARD_WEIGHT` = 1/3. The backward pass costs
about twice the forward (it computes the gradients of both the activations and the weights,
each a matrix product the size of the forward's), so a forward pass is about a third of a
training step; the same convention underlies the usual ``6 N`` (training) versus ``2 N``
(inference) FLOPs per token. Scoring that runs a backward (SEVEN_pre) weighs 1 per sample.
"""
from __future__ import annotations

FORWARD_WEIGHT = 1.0 / 3.0


def cost_passes(train_passes: float, scoring_passes: float = 0.0, forward_passes: float = 0.0) -> float:
    """Total cost in training-pass equivalents."""
    return float(train_passes) + float(scoring_passes) + FORWARD_WEIGHT * float(forward_passes)
