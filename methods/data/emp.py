"""EMP: dynamic data pruning by loss plus a memory term (Xiao et al., arXiv 2408.16031).

Provenance: ``reconstructed``. The paper has no public code and its method section
could not be read; the score follows a third-party summary and the project's
docs/methods.md fixes the rest:

- score of a sample = ``CE loss + beta * entropy(softmax(logits))``, from the
  training forward pass, refreshed every time the sample is forwarded; a sample
  not forwarded keeps its last score;
- epoch 0 trains on every sample (to fill the scores); every later epoch trains on
  the ``n - round(ratio * n)`` highest scores (ties by lower index);
- ``beta=0`` is the loss-only selection the paper argues against;
- on a language-model task, loss and entropy are means over the response tokens.

``infobatch=True`` switches to the InfoBatch-style variant: each epoch after the
first, a ``ratio`` fraction of the samples scoring below the mean is dropped at
random, and the kept below-mean samples have their loss scaled by ``1/(1-ratio)``
so that the expected gradient is unchanged. Fewer than ``round(ratio*n)`` samples
are then removed per epoch (only below-mean ones are candidates); the realised
kept fraction is logged.
"""
from __future__ import annotations

import time

from benchmark.api.hooks import TrainState
from benchmark.api.lazy import lazy_import
from benchmark.api.method import DataPruner, epoch_zero_only
from benchmark.api.registry import register_method
from benchmark.api.sequence import counted_rows, per_sample

torch = lazy_import("torch")


def prediction_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of softmax(logits) along the last dimension."""
    log_p = torch.log_softmax(logits.float(), dim=-1)
    return -(log_p.exp() * log_p).sum(dim=-1)


def emp_score(losses: torch.Tensor, logits: torch.Tensor, targets: torch.Tensor, beta: float) -> torch.Tensor:
    """``losses`` are the task's per-sample losses; on a sequence task the entropy, like the
    loss, is averaged over the sample's response tokens (see :mod:`benchmark.api.sequence`)."""
    rows = counted_rows(logits, targets)
    return losses.float() + beta * per_sample(prediction_entropy(rows.logits), rows)


def top_scores(scores: torch.Tensor, n_keep: int) -> torch.Tensor:
    """Sorted indices of the ``n_keep`` highest scores, ties broken by lower index."""
    order = torch.argsort(-scores.double(), stable=True)
    return torch.sort(order[:n_keep]).values


@register_method("emp")
class EMP(DataPruner):
    provenance = "reconstructed"
    requires = frozenset({"classification"})

    def __init__(self, ratio: float, seed: int = 0, *, beta: float = 1.0, infobatch: bool = False):
        super().__init__(ratio, seed)
        if beta < 0:
            raise ValueError(f"emp beta must be >= 0, got {beta}")
        self.beta = float(beta)
        self.infobatch = bool(infobatch)

    @classmethod
    def recipe_warning(cls, settings: dict, epochs: int) -> str | None:
        return epoch_zero_only(epochs, "the scores")

    def on_run_start(self, state: TrainState) -> None:
        # scores live beside the losses: updating them never waits
        self.scores = torch.zeros(state.n_train, device=state.device)
        self.upkeep_seconds = 0.0
        self._weights: torch.Tensor | None = None  # per-sample loss weights (InfoBatch variant)
        self._generator = self.generator()

    def on_epoch_start(self, state: TrainState) -> torch.Tensor | None:
        if state.epoch == 0:
            return None
        start = time.perf_counter()
        if self.infobatch:
            chosen = self._infobatch_selection()
        else:
            chosen = top_scores(self.scores, self.n_keep(state.n_train))
        self.upkeep_seconds += time.perf_counter() - start
        return chosen

    def _infobatch_selection(self) -> torch.Tensor:
        low = torch.nonzero(self.scores < self.scores.mean()).flatten()
        n_drop = round(self.ratio * len(low))
        dropped = low[torch.randperm(len(low), generator=self._generator)[:n_drop].to(low.device)]
        keep = torch.ones(len(self.scores), dtype=torch.bool, device=self.scores.device)
        keep[dropped] = False
        self._weights = torch.ones(len(self.scores), device=self.scores.device)
        self._weights[low] = 1.0 / (1.0 - self.ratio)
        return torch.nonzero(keep).flatten()

    def on_batch_loss(self, state, indices, logits, losses, targets, features):
        start = time.perf_counter()
        idx = indices.to(self.scores.device, non_blocking=True)
        self.scores[idx] = emp_score(losses, logits, targets, self.beta).to(self.scores.dtype)
        weights = None
        if self._weights is not None and state.epoch > 0:
            weights = self._weights[idx]
        self.upkeep_seconds += time.perf_counter() - start
        return weights

    def summary(self) -> dict[str, float]:
        return {"score_upkeep_seconds": self.upkeep_seconds}

    def ranking_scores(self) -> torch.Tensor | None:
        return self.scores
