"""Random weight pruning: a seeded uniform-random mask, applied once before training.

Each prunable weight gets an i.i.d. U(0, 1) score; the ``round(ratio * n)`` lowest
are removed, over all prunable weights (``scope="global"``, the default) or per
tensor (``scope="layer"``). The mask is fixed for the whole run.
"""
from __future__ import annotations

from benchmark.api.hooks import TrainState
from benchmark.api.lazy import lazy_import
from benchmark.api.masks import select_masks
from benchmark.api.method import ModelPruner
from benchmark.api.registry import register_method

torch = lazy_import("torch")


@register_method("random-weights")
class RandomWeights(ModelPruner):
    provenance = "reference-code"

    def on_run_start(self, state: TrainState) -> None:
        super().on_run_start(state)
        generator = self.generator()
        scores = {name: torch.rand(w.shape, generator=generator) for name, w in self._weights.items()}
        self.masker.set(select_masks(scores, self.ratio, self.scope))
