"""Forgetting (Toneva et al., "An Empirical Study of Example Forgetting during Deep Neural
Network Learning", ICLR 2019): how often a sample goes from correct to incorrect.

Score: from one recorded full-data proxy run (:mod:`benchmark.training.dynamics`), a sample's
correctness ``c_t`` as it is visited in its minibatch at epoch t (training mode), and
``forgetting = sum_t [c_{t-1} = 1 and c_t = 0]`` with ``c_{-1} = 0``, exactly as the CCS code
(``generate_importance_score.py``) and DeepCore (``forgetting.py``) count it.

``never_learned``: ``"zero"`` (default, the reference code's rule: a sample never classified
correctly has no forgetting event and scores 0) or ``"most"`` (the paper's rule: never-learned
samples rank as most forgotten; they score ``epochs``, above any possible count).

Convention: keep the highest scores (CCS ``--data-score-descending 1``, DeepCore's
``argsort()[::-1]``); ties are broken by lower index, where both references use an unstable
sort (so with many tied counts their boundary is arbitrary). ``ratio`` is the fraction removed;
``n - round(ratio * n)`` are kept (CCS keeps ``int(keep * n)``). ``class_balanced=True`` keeps
the same fraction of every class (largest-remainder quotas), as DeepCore's ``balance``.
"""
from __future__ import annotations

from benchmark.training.dynamics import DynamicsMethod, option_error
from benchmark.api.lazy import lazy_import
from benchmark.api.registry import register_method

from .random_data import class_quotas
from .selection import keep_hardest, keep_per_class

torch = lazy_import("torch")

NEVER_LEARNED = ("zero", "most")


def forgetting_events(correct: torch.Tensor) -> torch.Tensor:
    """Correct -> incorrect transitions per sample of an ``[epochs, n]`` correctness table,
    starting from "not yet correct" (so epoch 0 never counts)."""
    c = correct.to(torch.int8)
    before = torch.cat([torch.zeros_like(c[:1]), c[:-1]])
    return ((before == 1) & (c == 0)).sum(dim=0)


def keep_top(scores: torch.Tensor, n_keep: int, labels: torch.Tensor | None) -> torch.Tensor:
    """The ``n_keep`` highest scores (ties by lower index), per class when ``labels`` is given."""
    if labels is None:
        return keep_hardest(scores, n_keep)
    return keep_per_class(scores, labels, class_quotas(labels, n_keep))


@register_method("forgetting")
class Forgetting(DynamicsMethod):
    provenance = "reference-code"

    def __init__(self, ratio: float, seed: int = 0, *, never_learned: str = "zero", class_balanced: bool = False,
                 proxy_epochs: int | None = None):
        super().__init__(ratio, seed)
        if never_learned not in NEVER_LEARNED:
            raise option_error("forgetting", "never_learned", never_learned,
                               f"use one of {NEVER_LEARNED} (zero: the CCS/DeepCore code, most: the paper)")
        self.never_learned, self.class_balanced = never_learned, bool(class_balanced)
        self._set_proxy_epochs(proxy_epochs)

    def score(self, record):
        correct = record["correct"]
        events = forgetting_events(correct).float()
        if self.never_learned == "most":
            events[~correct.any(dim=0)] = float(len(correct))
        return events

    def choose(self, scores, record):
        labels = record["targets"] if self.class_balanced else None
        return keep_top(scores, self.n_keep(len(scores)), labels)
