"""The base of one-shot post-training pruning from calibration data (Wanda, SparseGPT).

The protocol of the Wanda repository, for any task that fine-tunes a pre-trained model:
``calibration_samples`` training samples (default 128, the field's number of calibration
sequences) are drawn by the cell's seed, the model is pruned once before any step, layer
by layer on its own pruned inputs (:mod:`benchmark.training.calibration`), and the cell trains
``finetune_epochs`` epochs with the mask fixed (default 0: the pruned pre-trained model is
evaluated as it is; more measures recovery with the task's own recipe). The calibration
passes are charged to the method as forward passes, like scoring passes.
"""
from __future__ import annotations

import time

from benchmark.api.hooks import TrainState
from benchmark.api.lazy import lazy_import
from benchmark.api.method import ModelPruner
from benchmark.api.sparsity_patterns import check_pattern_ratio, check_pattern_widths, parse_pattern

torch = lazy_import("torch")
nn = lazy_import("torch.nn")


class PostTrainingPruner(ModelPruner):
    """Subclasses set :meth:`observer` (the per-layer statistic) and :meth:`prune_layer`."""

    def __init__(self, ratio: float, seed: int = 0, *, pattern: str = "unstructured",
                 calibration_samples: int = 128, finetune_epochs: int = 0):
        super().__init__(ratio, seed, scope="layer")
        self.pattern = parse_pattern(self.name, pattern)
        check_pattern_ratio(self.name, self.pattern, ratio)
        for option, value, low in (("calibration_samples", calibration_samples, 1),
                                   ("finetune_epochs", finetune_epochs, 0)):
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"method {self.name!r}: {option} must be an integer >= {low}, got {value!r}")
        self.calibration_samples, self.finetune_epochs = calibration_samples, finetune_epochs
        self._context = None
        self.calibration_forward_passes = 0

    @classmethod
    def incompatibility(cls, task_cls) -> str | None:
        reason = super().incompatibility(task_cls)
        if reason is None and not task_cls.pretrained:
            reason = (f"method {cls.name!r} prunes a pre-trained model from calibration data, but task "
                      f"{task_cls.name!r} trains its model from scratch")
        return reason

    def prepare(self, context) -> None:
        from benchmark.training.calibration import check_calibration_count

        check_calibration_count(self.name, context.task.name, self.calibration_samples, len(context.splits.train))
        self._context = context  # the calibration passes are charged here

    def train_epochs(self, task) -> int | None:
        return self.finetune_epochs

    def observer(self, name: str, module):
        raise NotImplementedError

    def prune_layer(self, name: str, module, observer) -> "torch.Tensor":
        """Prune ``module.weight`` in place from its statistic; return the boolean keep-mask."""
        raise NotImplementedError

    def on_run_start(self, state: TrainState) -> None:
        from benchmark.training.calibration import check_calibration_count, draw_calibration, prune_sequentially

        super().on_run_start(state)
        task, train = state.task, state.splits.train
        # every check before the first calibration pass
        check_calibration_count(self.name, task.name, self.calibration_samples, len(train))
        modules = dict(state.model.named_modules())
        layers = {name: modules[name.rsplit(".", 1)[0] if "." in name else ""] for name in self._weights}
        others = [f"{name} ({type(m).__name__})" for name, m in layers.items() if not isinstance(m, nn.Linear)]
        if others:
            raise ValueError(f"method {self.name!r} on task {task.name!r} prunes Linear layers only; the model's "
                             f"{', '.join(others)} is not one")
        check_pattern_widths(self.name, task.name, self.pattern, self._weights)
        began = time.perf_counter()
        batches = draw_calibration(task, train, self.calibration_samples, self.generator(salt=3),
                                   task.recipe.eval_batch_size)
        # keyed by weight name, so the masks come back under the names the masker holds
        masks, passes = prune_sequentially(state.model, batches, layers, self.observer, self.prune_layer)
        self.masker.set(masks)
        self.calibration_forward_passes = passes * self.calibration_samples
        if self._context is not None:
            self._context.charge(time.perf_counter() - began, 0, cached=False,
                                 forward_passes=self.calibration_forward_passes)

    def summary(self) -> dict[str, float]:
        out = super().summary()
        out["calibration_samples"] = float(self.calibration_samples)
        out["calibration_forward_passes"] = float(self.calibration_forward_passes)
        return out
