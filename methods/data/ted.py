"""TED: progressive data pruning by internal generalization (Xiao et al., arXiv 2405.03228).

Provenance: ``reconstructed``. No public code and no readable method section; the
estimator below is the first-order reading written in the project's docs/methods.md:
pruning sample i changes the full-data loss by about ``eta/N * <g_bar, g_i>``, so
the samples whose gradients align least with the mean gradient are removed first.

- ``g_i`` is sample i's gradient of the loss w.r.t. the task head (weight and
  bias), in closed form: ``(softmax - onehot) (x) [h_i, 1]`` with ``h_i`` the
  penultimate features, so no per-sample backward pass is needed;
- ``g_bar`` is a running mean of the batch-mean head gradients (an EMA over
  batches with momentum ``grad_momentum``), updated with each batch before the
  batch's samples are scored;
- a sample's score is the EMA (``ema``) of its alignments ``<g_bar, g_i>`` over the
  times it is forwarded (its first alignment initialises it);
- the removed fraction rises in ``stages`` equal steps to ``ratio``; stage k starts
  at epoch ``max(1, round(until * epochs * k / stages))`` (capped at the last epoch), so removal reaches
  exactly ``round(ratio * n)`` samples at the last stage (by default 75% into the
  run); removal is permanent, lowest score first, ties by lower index;
- on a language-model task the head is ``lm_head`` and ``h`` the last hidden state: a
  sample's gradient is the mean of its response tokens' ``error_t (x) h_t``, so its
  alignment is the mean of the tokens' alignments (see :mod:`benchmark.api.sequence`).
"""
from __future__ import annotations

import time

from benchmark.api.hooks import TrainState
from benchmark.api.lazy import lazy_import
from benchmark.api.method import DataPruner, check_count
from benchmark.api.registry import register_method
from benchmark.api.sequence import counted_rows, per_sample

torch = lazy_import("torch")


def head_gradient_factors(logits: torch.Tensor, targets: torch.Tensor, features: torch.Tensor, bias: bool):
    """Per-sample head gradients of cross-entropy as factors: g_i = error_i (x) inputs_i."""
    probs = torch.softmax(logits.float(), dim=-1)
    error = probs - torch.nn.functional.one_hot(targets, probs.shape[-1]).float()
    inputs = features.float()
    if bias:
        inputs = torch.cat([inputs, torch.ones(len(inputs), 1, device=inputs.device)], dim=1)
    return error, inputs


def alignment(error: torch.Tensor, inputs: torch.Tensor, mean_gradient: torch.Tensor) -> torch.Tensor:
    """<mean_gradient, error_i (x) inputs_i> for every i, without forming the outer products."""
    return (error * (inputs @ mean_gradient.T)).sum(dim=1)


def stage_epochs(epochs: int, stages: int, until: float) -> list[int]:
    """Epoch at which each stage begins: never epoch 0 (scores are filled there) and never
    after the last epoch (so the last stage always runs and removal reaches the ratio)."""
    last = max(1, epochs - 1)
    return [min(max(1, round(until * epochs * k / stages)), last) for k in range(1, stages + 1)]


@register_method("ted")
class TED(DataPruner):
    provenance = "reconstructed"
    requires = frozenset({"classification"})
    wants_features = True

    def __init__(self, ratio: float, seed: int = 0, *, ema: float = 0.9, grad_momentum: float = 0.9,
                 stages: int = 3, until: float = 0.75):
        super().__init__(ratio, seed)
        if not 0 <= ema < 1 or not 0 <= grad_momentum < 1:
            raise ValueError(f"ema and grad_momentum must be in [0, 1), got {ema}, {grad_momentum}")
        check_count("stages", stages, 1, 1_000)
        if not 0 < until <= 1:
            raise ValueError(f"until is the fraction of the run by which pruning ends, in (0, 1]; got {until}")
        self.ema, self.grad_momentum, self.stages, self.until = ema, grad_momentum, stages, until

    @classmethod
    def recipe_problem(cls, settings: dict, epochs: int) -> str | None:
        # refused: on_run_start would refuse it, but only after the data was loaded
        return None if epochs >= 2 else ("needs at least 2 epochs: epoch 0 fills the scores and pruning starts at "
                                         "epoch 1; give the task at least 2 epochs (task option epochs)")

    def on_run_start(self, state: TrainState) -> None:
        if state.epochs < 2:  # also checked when the sweep is read (recipe_problem)
            raise ValueError("ted needs at least 2 epochs: epoch 0 fills the scores, pruning starts at epoch 1")
        n = state.n_train
        device = state.device  # per-sample state beside the logits: scoring a batch never waits
        self.scores = torch.zeros(n, device=device)
        self.seen = torch.zeros(n, dtype=torch.bool, device=device)
        self.active = torch.ones(n, dtype=torch.bool, device=device)
        self.mean_gradient: torch.Tensor | None = None
        self.has_bias = getattr(state.task.head(state.model), "bias", None) is not None
        self.schedule = stage_epochs(state.epochs, self.stages, self.until)
        self.upkeep_seconds = 0.0

    def removed_target(self, epoch: int, n: int) -> int:
        stages_begun = sum(epoch >= start for start in self.schedule)
        return round(self.ratio * n * stages_begun / self.stages)

    def on_epoch_start(self, state: TrainState) -> torch.Tensor:
        start = time.perf_counter()
        to_remove = self.removed_target(state.epoch, state.n_train) - int((~self.active).sum())
        if to_remove > 0:
            candidates = torch.nonzero(self.active).flatten()
            order = torch.argsort(self.scores[candidates].double(), stable=True)  # lowest alignment first
            self.active[candidates[order[:to_remove]]] = False
        self.upkeep_seconds += time.perf_counter() - start
        return torch.nonzero(self.active).flatten()

    def on_batch_loss(self, state, indices, logits, losses, targets, features):
        start = time.perf_counter()
        rows = counted_rows(logits, targets, features)
        error, inputs = head_gradient_factors(rows.logits, rows.targets, rows.features, self.has_bias)
        # a sequence sample's head gradient is the mean of its response tokens' gradients
        batch_mean = (error * rows.weight[:, None]).T @ inputs / rows.batch  # (classes, features [+1])
        if self.mean_gradient is None:
            self.mean_gradient = batch_mean
        else:
            self.mean_gradient = self.grad_momentum * self.mean_gradient + (1 - self.grad_momentum) * batch_mean
        value = per_sample(alignment(error, inputs, self.mean_gradient), rows).to(self.scores.dtype)
        idx = indices.to(self.scores.device, non_blocking=True)
        previous = torch.where(self.seen[idx], self.scores[idx], value)
        self.scores[idx] = self.ema * previous + (1 - self.ema) * value
        self.seen[idx] = True
        self.upkeep_seconds += time.perf_counter() - start
        return None

    def ranking_scores(self) -> torch.Tensor | None:
        return self.scores

    def summary(self) -> dict[str, float]:
        return {"score_upkeep_seconds": self.upkeep_seconds,
                "removed_fraction_final": float((~self.active).sum()) / len(self.active)}
