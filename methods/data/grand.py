"""GraNd (Paul, Ganguli, Dziugaite, "Deep Learning on a Data Diet", NeurIPS 2021): the expected
norm of a sample's loss gradient early in training, averaged over independent proxy runs.

Protocol: train ``proxy_runs`` fresh models on all training data for ``score_epochs`` epochs
(0: score at initialisation, as the paper's "GraNd at init"; default a quarter of the task's
epochs, as EL2N here), score every training sample on unaugmented input in eval mode, average
over runs, keep the highest.

``gradient``:

- ``"last_layer"`` (default, DeepCore ``deepcore/methods/grand.py``): the gradient of the
  cross-entropy w.r.t. the head's bias and weight, in closed form
  ``|| [e, e (x) h] ||_2 = ||e||_2 sqrt(1 + ||h||_2^2)`` with ``e = softmax(z) - onehot(y)`` and
  ``h`` the penultimate features. DeepCore differentiates the batch-MEAN loss, which divides
  every score by its scoring batch's size (a constant for all but the last batch); the harness
  scores the per-sample loss, so its scores are DeepCore's times the batch size;
- ``"full"`` (Data Diet's JAX code, ``data_diet/scores.py`` ``grad_norm``): the norm of the
  per-sample gradient w.r.t. every parameter (``torch.func``), slower.

Convention: keep the HIGHEST (DeepCore ``argsort()[::-1]``), ties by lower index;
``class_balanced=True`` keeps the same fraction of every class (DeepCore's ``balance``, default
off in its GraNd class). ``ratio`` is the fraction removed; ``n - round(ratio * n)`` kept
(DeepCore keeps ``round(fraction * n)``). Scores are cached per (task, profile, recipe, seed,
proxy settings) and their cost charged to every cell that uses them, as EL2N's.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from benchmark.api.cache_files import load_entry, save_entry
from benchmark.training.dynamics import check_count_option, final_pass, option_error, sequence_refusal
from benchmark.api.lazy import lazy_import
from benchmark.api.method import DataPruner
from benchmark.api.registry import register_method

from .el2n import check_score_entry
from .forgetting import keep_top

if TYPE_CHECKING:
    from benchmark.training.context import RunContext

torch = lazy_import("torch")

GRADIENTS = ("last_layer", "full")
PROXY_SEED = 3_000_017  # distinct from main runs, EL2N's and the dynamics recorder's proxies


def last_layer_grad_norm(logits: torch.Tensor, labels: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """``||softmax - onehot|| * sqrt(1 + ||h||^2)``: the norm of the head's (bias, weight) gradient."""
    error = torch.softmax(logits.double(), dim=1)
    error[torch.arange(len(error)), labels] -= 1.0
    return error.norm(dim=1) * (1 + features.double().pow(2).sum(dim=1)).sqrt()


def full_grad_norm(task, model, split, device, batch: int = 64) -> torch.Tensor:
    """Per-sample norm of the loss gradient w.r.t. every parameter, eval mode, unaugmented."""
    from torch.func import functional_call, grad, vmap

    model.eval()
    params = {k: v.detach() for k, v in model.named_parameters()}
    buffers = {k: v.detach() for k, v in model.named_buffers()}

    def loss(p, x, y):
        z = functional_call(model, (p, buffers), (x.unsqueeze(0),))
        return task.per_sample_loss(z, y.unsqueeze(0)).sum()

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))
    norms = []
    for first in range(0, len(split), batch):
        x = task.prepare_batch(split.x[first: first + batch], train=False, generator=None)
        y = split.y[first: first + batch].to(x.device)
        grads = per_sample(params, x, y)
        norms.append(torch.stack([g.flatten(1).double().pow(2).sum(1) for g in grads.values()]).sum(0).sqrt().cpu())
    return torch.cat(norms)


@register_method("grand")
class GraNd(DataPruner):
    provenance = "reference-code"
    requires = frozenset({"classification", "features"})

    @classmethod
    def incompatibility(cls, task_cls):
        return super().incompatibility(task_cls) or sequence_refusal(cls.name, task_cls)

    def __init__(self, ratio: float, seed: int = 0, *, proxy_runs: int = 2, score_epochs: int | None = None,
                 gradient: str = "last_layer", class_balanced: bool = False):
        super().__init__(ratio, seed)
        self.proxy_runs = check_count_option("grand", "proxy_runs", proxy_runs, 1, 100, " (the paper averages 10)")
        if score_epochs is not None:
            check_count_option("grand", "score_epochs", score_epochs, 0, 10_000,
                               " (0 scores at initialisation; unset: a quarter of the task's epochs)")
        if gradient not in GRADIENTS:
            raise option_error("grand", "gradient", gradient,
                               f"use one of {GRADIENTS} (last_layer: DeepCore, full: Data Diet)")
        self.score_epochs, self.gradient, self.class_balanced = score_epochs, gradient, bool(class_balanced)
        self.scores: torch.Tensor | None = None
        self.subset: torch.Tensor | None = None

    def prepare(self, context: RunContext) -> None:
        task, train = context.task, context.splits.train
        epochs = self.score_epochs if self.score_epochs is not None else max(1, task.recipe.epochs // 4)
        key = {"task": task.name, "profile": task.profile, "recipe": repr(task.recipe), "data_dir": str(task.data_dir),
               "n_train": len(train), "seed": self.seed, "proxy_runs": self.proxy_runs, "score_epochs": epochs,
               "gradient": self.gradient}
        path = context.cache_path("grand", key)
        cached = load_entry(path, lambda entry: check_score_entry(entry, key, len(train)), "GraNd score cache")
        if cached is not None:
            self.scores = cached["scores"]
            context.charge(float(cached["seconds"]), int(cached["sample_passes"]), cached=True,
                           forward_passes=int(cached["forward_passes"]))
        else:
            start, passes, forward = time.perf_counter(), 0, 0
            total = torch.zeros(len(train), dtype=torch.float64)
            for run in range(self.proxy_runs):
                model, run_passes = self._proxy(context, PROXY_SEED * (run + 1) + self.seed, epochs)
                passes += run_passes
                if self.gradient == "full":
                    total += full_grad_norm(task, model, train, context.device)
                    passes += len(train)  # a backward pass per sample
                else:
                    logits, features = final_pass(task, model, train, context.device, features=True)
                    total += last_layer_grad_norm(logits, train.y.cpu(), features)
                    forward += len(train)
            self.scores = (total / self.proxy_runs).float()
            seconds = time.perf_counter() - start
            save_entry(path, {"scores": self.scores, "seconds": seconds, "sample_passes": passes,
                              "forward_passes": forward, "key": str(key)})
            context.charge(seconds, passes, cached=False, forward_passes=forward)
        labels = train.y.cpu() if self.class_balanced else None
        self.subset = keep_top(self.scores.double(), self.n_keep(len(self.scores)), labels)

    @staticmethod
    def _proxy(context: RunContext, seed: int, epochs: int):
        if epochs == 0:  # at initialisation: the seeded fresh model, untrained
            from benchmark.training.trainer import Trainer

            return Trainer(context.task, context.splits, context.device, seed=seed).build_model(), 0
        return context.train_proxy(seed=seed, epochs=epochs)

    def on_epoch_start(self, state):
        return self.subset

    def ranking_scores(self):
        return self.scores
