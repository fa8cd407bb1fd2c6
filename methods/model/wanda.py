"""Wanda: pruning by weights and activations (Sun, Liu, Bair and Kolter, ICLR 2024,
arXiv 2306.11695; reference code ``locuslab/wanda``, ``lib/prune.py``, commit 8e8fc87).

For a Linear layer with weight ``W [out, in]`` and calibration inputs ``X [tokens, in]``::

    S_ij = |W_ij| * ||X_j||_2,    ||X_j||_2^2 = mean over calibration tokens of X_tj^2

(the mean rather than the sum only scales each layer's scores). Weights are compared within
each output row (the paper's per-output comparison group): each row loses its
``round(ratio * in)`` lowest scores, ties by lower column index (the reference's stable sort
prunes ``int(ratio * in)``, the same count whenever ``ratio * in`` is a whole number); with
``pattern: N:M`` each group of ``M`` consecutive inputs of a row keeps its ``N`` highest. No
weight is updated. Layers are pruned block by block on the pruned model's own inputs, as
the reference does (:mod:`benchmark.training.calibration`); options are those of
:class:`~methods.model.posttrain.PostTrainingPruner`. The reference's ``use_variant``
(an adaptive per-row threshold) is not offered.
"""
from __future__ import annotations

from benchmark.api.lazy import lazy_import, no_grad
from benchmark.api.registry import register_method
from benchmark.api.sparsity_patterns import nm_keep_mask, row_keep_mask

from .posttrain import PostTrainingPruner

torch = lazy_import("torch")


class InputNorms:
    """Running sum of squares of each input feature over the calibration tokens."""

    def __init__(self, features: int, device):
        self.sum_squares = torch.zeros(features, dtype=torch.float32, device=device)
        self.tokens = 0

    def add(self, rows) -> None:
        self.sum_squares += rows.float().pow(2).sum(dim=0)
        self.tokens += rows.shape[0]

    def norms(self):
        """``||X_j||_2`` per input feature, over the mean of the tokens."""
        return (self.sum_squares / max(self.tokens, 1)).sqrt()


def wanda_scores(weight, norms):
    return weight.detach().float().abs() * norms.reshape(1, -1)


@register_method("wanda")
class Wanda(PostTrainingPruner):
    provenance = "reference-code"

    def observer(self, name: str, module) -> InputNorms:
        return InputNorms(module.in_features, module.weight.device)

    @no_grad
    def prune_layer(self, name: str, module, observer: InputNorms):
        scores = wanda_scores(module.weight, observer.norms())
        keep = nm_keep_mask(scores, self.pattern) if self.pattern.structured else row_keep_mask(scores, self.ratio)
        module.weight.mul_(keep)
        return keep
