"""UCB: dynamic data pruning by the highest upper confidence bound on each sample's loss (Raju et al. 2021).

Provenance: ``reconstructed`` (no public code; see :mod:`methods.data.loss_estimates` for the
running estimates and their update). Each epoch after the first, sample i's score is

    ucb_i = mean_i + c * var_i          (bonus="variance", default)
    ucb_i = mean_i + c * sqrt(var_i)    (bonus="std")

and the ``n - round(ratio * n)`` highest scores are kept, ties by lower index (the ``ratio`` is
the fraction of the data set removed each epoch after the first). The exploration bonus is the
EMA variance of the sample's loss: a sample whose loss moves a lot stays in training even when
its mean loss is moderate. The paper's text could not be read here; the variance bonus follows
the only public re-implementation found, and ``bonus="std"`` is offered for the reading with the
standard deviation. ``c = 0`` keeps the highest mean loss (greedy).
"""
from __future__ import annotations

from benchmark.api.lazy import lazy_import
from benchmark.api.registry import register_method
from methods.data.loss_estimates import LossEstimatePruner
from methods.data.selection import keep_hardest

torch = lazy_import("torch")

BONUSES = ("variance", "std")


def ucb_scores(mean: torch.Tensor, var: torch.Tensor, c: float, bonus: str = "variance") -> torch.Tensor:
    spread = var if bonus == "variance" else var.clamp(min=0).sqrt()
    return mean + c * spread


@register_method("ucb")
class UCB(LossEstimatePruner):
    provenance = "reconstructed"

    def __init__(self, ratio: float, seed: int = 0, *, c: float = 1.0, alpha: float = 0.5, bonus: str = "variance"):
        super().__init__(ratio, seed, alpha=alpha)
        if not c >= 0:
            raise ValueError(f"method 'ucb' option c must be >= 0 (the weight of the exploration bonus; 0 keeps "
                             f"the highest mean loss), got {c!r}")
        if bonus not in BONUSES:
            raise ValueError(f"method 'ucb' option bonus must be one of {list(BONUSES)}, got {bonus!r}")
        self.c, self.bonus = float(c), bonus

    def current_scores(self) -> torch.Tensor:
        return ucb_scores(self.estimates.mean, self.estimates.var, self.c, self.bonus)

    def select(self, n_keep: int) -> torch.Tensor:
        return keep_hardest(self.current_scores(), n_keep)

    def ranking_scores(self) -> torch.Tensor | None:
        return self.current_scores()
