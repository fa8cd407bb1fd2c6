"""The ratio-0 reference: full data and a dense model. Added to every sweep once per (task, seed)."""
from __future__ import annotations

from benchmark.api.method import Method
from benchmark.api.registry import register_method


@register_method("none")
class NoPruning(Method):
    provenance = "reference-code"
    family = "reference"

    def __init__(self, ratio: float = 0.0, seed: int = 0):
        if ratio != 0:
            raise ValueError(
                f"'none' is the full-data / dense reference and only takes ratio 0, got {ratio!r}; "
                "it is added to every sweep automatically, so leave it out of 'methods'"
            )
        super().__init__(ratio, seed)

    def train_epochs(self, task) -> int | None:
        return 0 if task.post_training else None  # a post-training task's reference: the model as it is
