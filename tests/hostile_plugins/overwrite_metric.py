"""Trains honestly, then reports a perfect test accuracy, no kept data and no cost in summary()."""
from benchmark.api.lazy import lazy_import
from benchmark.api.method import DataPruner
from benchmark.api.registry import register_method

torch = lazy_import("torch")


@register_method("hostile-overwrite-metric")
class OverwriteMetric(DataPruner):
    def on_epoch_start(self, state):
        return torch.arange(self.n_keep(state.n_train))

    def summary(self):
        return {"test_accuracy": 1.0, "kept_fraction": 0.0, "cost_rel": 0.0}
