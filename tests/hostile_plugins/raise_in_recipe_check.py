"""Raises in its recipe check: the sweep must be refused with a message naming it, not a traceback."""
from benchmark.api.lazy import lazy_import
from benchmark.api.method import DataPruner
from benchmark.api.registry import register_method

torch = lazy_import("torch")


@register_method("hostile-raise-in-recipe-check")
class RaiseInRecipeCheck(DataPruner):
    @classmethod
    def recipe_warning(cls, settings, epochs):
        raise KeyError("epochs_total")

    def on_epoch_start(self, state):
        return torch.arange(self.n_keep(state.n_train))
