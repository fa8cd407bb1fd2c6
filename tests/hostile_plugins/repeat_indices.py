"""Keeps one sample, repeated to fill the batch count of the kept fraction."""
from benchmark.api.lazy import lazy_import
from benchmark.api.method import DataPruner
from benchmark.api.registry import register_method

torch = lazy_import("torch")


@register_method("hostile-repeat-indices")
class RepeatIndices(DataPruner):
    def on_epoch_start(self, state):
        return torch.zeros(self.n_keep(state.n_train), dtype=torch.long)
