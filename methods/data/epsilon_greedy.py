"""Epsilon-greedy: dynamic data pruning, the highest estimated losses plus a random share (Raju et al. 2021).

Provenance: ``reconstructed`` (no public code; see :mod:`methods.data.loss_estimates` for the
running loss estimates and their update). Each epoch after the first, of the
``n_keep = n - round(ratio * n)`` samples trained on (``ratio``: the fraction of the data set
removed each epoch after the first):

- ``n_explore = round(epsilon * n_keep)`` are drawn uniformly without replacement from the samples
  that are not among the greedy ones (the method's own seeded generator);
- the other ``n_keep - n_explore`` are the highest loss estimates ``mean_i``, ties by lower index.

``epsilon = 0`` keeps the highest estimated losses; ``epsilon = 1`` is dynamic random pruning.
The default 0.1 is a conventional exploration rate: the paper's value could not be read here.
"""
from __future__ import annotations

from benchmark.api.lazy import lazy_import
from benchmark.api.registry import register_method
from methods.data.loss_estimates import LossEstimatePruner
from methods.data.selection import hardest_first

torch = lazy_import("torch")


def epsilon_greedy_selection(estimates: torch.Tensor, n_keep: int, epsilon: float,
                             generator: torch.Generator) -> torch.Tensor:
    """Sorted indices: the ``n_keep - round(epsilon * n_keep)`` highest ``estimates`` (ties by lower
    index) and ``round(epsilon * n_keep)`` drawn at random from the rest."""
    n_explore = round(epsilon * n_keep)
    order = hardest_first(estimates)
    greedy, rest = order[: n_keep - n_explore], order[n_keep - n_explore:]
    explore = rest[torch.randperm(len(rest), generator=generator)[:n_explore].to(rest.device)]
    return torch.sort(torch.cat([greedy, explore])).values


@register_method("epsilon-greedy")
class EpsilonGreedy(LossEstimatePruner):
    provenance = "reconstructed"

    def __init__(self, ratio: float, seed: int = 0, *, epsilon: float = 0.1, alpha: float = 0.5):
        super().__init__(ratio, seed, alpha=alpha)
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"method 'epsilon-greedy' option epsilon must be in [0, 1] (the fraction of the "
                             f"kept samples drawn at random), got {epsilon!r}")
        self.epsilon = float(epsilon)

    def select(self, n_keep: int) -> torch.Tensor:
        return epsilon_greedy_selection(self.estimates.mean, n_keep, self.epsilon, self._generator)

    def ranking_scores(self) -> torch.Tensor | None:
        return self.estimates.mean
