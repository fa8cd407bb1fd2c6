"""Installs a one-entry mask, which broadcasts over every weight: prunes everything, records a 1-entry mask."""
from benchmark.api.lazy import lazy_import
from benchmark.api.method import ModelPruner
from benchmark.api.registry import register_method

torch = lazy_import("torch")


@register_method("hostile-wrong-mask-shape")
class WrongMaskShape(ModelPruner):
    def on_run_start(self, state):
        super().on_run_start(state)
        name = next(iter(self._weights))
        self.masker.set({name: torch.zeros(1, dtype=torch.bool)})
