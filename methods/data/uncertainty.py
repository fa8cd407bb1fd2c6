"""Uncertainty scores (Coleman et al., "Selection via Proxy", ICLR 2020), as in DeepCore
(``deepcore/methods/uncertainty.py``).

A proxy trains on all data (the recorded run of :mod:`benchmark.training.dynamics`); then every
training sample is scored on unaugmented input in eval mode, with DeepCore's signs:

- ``score="least_confidence"``: the largest raw LOGIT (DeepCore uses the logit, not the probability);
- ``score="entropy"``: ``sum_c p_c log(p_c + 1e-6)``, i.e. MINUS the entropy;
- ``score="margin"``: largest minus second-largest probability.

So in all three a LOWER score means more uncertain.

Convention (DeepCore): with ``class_balanced=True`` (DeepCore ``main.py``'s default
``--balance True``) keep the LOWEST scores of each class (the most uncertain); without class
balance DeepCore keeps the HIGHEST (``argsort()[::-1]``: the most confident). ``keep="reference"``
(default) reproduces both; ``keep="uncertain"`` keeps the lowest scores either way. Ties by
lower index (DeepCore: numpy's unstable argsort). ``ratio`` is the fraction removed; the per-class
quotas are largest-remainder shares of ``n - round(ratio * n)`` (DeepCore rounds each class's
``len * fraction``, so its total can differ by a few).
"""
from __future__ import annotations

from benchmark.training.dynamics import DynamicsMethod, option_error
from benchmark.api.lazy import lazy_import
from benchmark.api.registry import register_method

from .forgetting import keep_top

torch = lazy_import("torch")

SCORES = ("entropy", "least_confidence", "margin")
KEEPS = ("reference", "uncertain")


def uncertainty_scores(logits: torch.Tensor, score: str) -> torch.Tensor:
    """DeepCore's uncertainty scores of eval-mode ``logits`` (lower = more uncertain)."""
    z = logits.double()
    if score == "least_confidence":
        return z.max(dim=1).values
    p = torch.softmax(z, dim=1)
    if score == "entropy":
        return (p * torch.log(p + 1e-6)).sum(dim=1)
    top2 = p.topk(2, dim=1).values
    return top2[:, 0] - top2[:, 1]


@register_method("uncertainty")
class Uncertainty(DynamicsMethod):
    provenance = "reference-code"

    def __init__(self, ratio: float, seed: int = 0, *, score: str = "entropy", class_balanced: bool = True,
                 keep: str = "reference", proxy_epochs: int | None = None):
        super().__init__(ratio, seed)
        if score not in SCORES:
            raise option_error("uncertainty", "score", score, f"use one of {SCORES}")
        if keep not in KEEPS:
            raise option_error("uncertainty", "keep", keep,
                               f"use one of {KEEPS} (reference: DeepCore's ends, uncertain: always the most uncertain)")
        self.score_name, self.class_balanced, self.keep = score, bool(class_balanced), keep
        self._set_proxy_epochs(proxy_epochs)

    def score(self, record):
        return uncertainty_scores(record["final_logits"], self.score_name)

    def choose(self, scores, record):
        labels = record["targets"] if self.class_balanced else None
        lowest = self.class_balanced or self.keep == "uncertain"
        return keep_top(-scores.double() if lowest else scores.double(), self.n_keep(len(scores)), labels)
