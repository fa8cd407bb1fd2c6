"""Running per-sample loss estimates, and the base of the dynamic pruners that select by them (UCB, epsilon-greedy).

Raju, Daruwalla and Lipasti, "Accelerating deep learning with dynamic data pruning" (arXiv
2111.12621, 2021) treat each training sample as a bandit arm whose reward is its loss. No code
was published; this reading is ``reconstructed`` (docs/methods.md), and the formulas are tested
against an independent numpy computation (tests/test_loss_bandits.py).

Every time sample i is trained on with loss ``l`` (the task's unweighted per-sample loss):

- the first time: ``mean_i = l``, ``var_i = 0``;
- later: ``var_i <- (1 - alpha) var_i + alpha (l - mean_i)^2`` (with the mean before this update),
  then ``mean_i <- (1 - alpha) mean_i + alpha l``: exponential moving averages of the loss and
  of its squared deviation, ``alpha`` the weight of the newest loss (``alpha = 1``: the last loss).

Samples not trained on keep their estimates. Epoch 0 trains on every sample (so every estimate is
filled); every later epoch trains on ``n - round(ratio * n)`` samples chosen by the subclass from
the estimates. State: three length-n vectors on the training device (O(n)).
"""
from __future__ import annotations

import time

from benchmark.api.hooks import TrainState
from benchmark.api.lazy import lazy_import
from benchmark.api.method import DataPruner, epoch_zero_only

torch = lazy_import("torch")


def check_alpha(method: str, alpha: float) -> float:
    if not 0.0 < alpha <= 1.0:
        raise ValueError(f"method {method!r} option alpha must be in (0, 1] (the weight of the newest loss in "
                         f"the moving averages; 1 keeps only the last loss), got {alpha!r}")
    return float(alpha)


class RunningLoss:
    """EMA mean and variance of each sample's loss, updated for the samples just trained on."""

    def __init__(self, n: int, alpha: float, device):
        self.alpha = alpha
        self.mean = torch.zeros(n, dtype=torch.float32, device=device)
        self.var = torch.zeros(n, dtype=torch.float32, device=device)
        self.seen = torch.zeros(n, dtype=torch.bool, device=device)

    def update(self, idx: torch.Tensor, losses: torch.Tensor) -> None:
        a = self.alpha
        loss = losses.detach().to(self.mean.dtype)
        old_mean, old_var, seen = self.mean[idx], self.var[idx], self.seen[idx]
        var = (1 - a) * old_var + a * (loss - old_mean) ** 2
        mean = (1 - a) * old_mean + a * loss
        self.mean[idx] = torch.where(seen, mean, loss)
        self.var[idx] = torch.where(seen, var, torch.zeros_like(var))
        self.seen[idx] = True


class LossEstimatePruner(DataPruner):
    """Epoch 0 on every sample, then ``n_keep`` samples a subclass picks from the estimates."""

    def __init__(self, ratio: float, seed: int = 0, *, alpha: float = 0.5):
        super().__init__(ratio, seed)
        self.alpha = check_alpha(self.name, alpha)

    @classmethod
    def recipe_warning(cls, settings: dict, epochs: int) -> str | None:
        return epoch_zero_only(epochs, "the loss estimates")

    def on_run_start(self, state: TrainState) -> None:
        self.estimates = RunningLoss(state.n_train, self.alpha, state.device)
        self._generator = self.generator()
        self.upkeep_seconds = 0.0
        self._ranked: torch.Tensor | None = None

    def select(self, n_keep: int) -> torch.Tensor:
        """Sorted indices of the ``n_keep`` samples to train on this epoch."""
        raise NotImplementedError

    def on_epoch_start(self, state: TrainState) -> torch.Tensor | None:
        if state.epoch == 0:
            return None
        start = time.perf_counter()
        chosen = self.select(self.n_keep(state.n_train))
        self.upkeep_seconds += time.perf_counter() - start
        return chosen

    def on_batch_loss(self, state, indices, logits, losses, targets, features):
        start = time.perf_counter()
        self.estimates.update(indices.to(self.estimates.mean.device, non_blocking=True), losses)
        self.upkeep_seconds += time.perf_counter() - start
        return None

    def summary(self) -> dict[str, float]:
        return {"score_upkeep_seconds": self.upkeep_seconds}
