"""Calls sys.exit(3) (the harness's store-fault exit status) from a training hook."""
import sys

from benchmark.api.lazy import lazy_import
from benchmark.api.method import DataPruner
from benchmark.api.registry import register_method

torch = lazy_import("torch")


@register_method("hostile-system-exit")
class SystemExitInHook(DataPruner):
    def on_epoch_start(self, state):
        return torch.arange(self.n_keep(state.n_train))

    def on_epoch_end(self, state, metrics):
        sys.exit(3)
