"""Raises in __init__ for seed 1 only: `validate` cannot see it; the cell of seed 1 must fail alone."""
from benchmark.api.lazy import lazy_import
from benchmark.api.method import DataPruner
from benchmark.api.registry import register_method

torch = lazy_import("torch")


@register_method("hostile-raise-in-init")
class RaiseInInit(DataPruner):
    def __init__(self, ratio, seed=0):
        super().__init__(ratio, seed)
        if seed == 1:
            raise RuntimeError("hostile __init__ refuses seed 1")

    def on_epoch_start(self, state):
        return torch.arange(self.n_keep(state.n_train))
