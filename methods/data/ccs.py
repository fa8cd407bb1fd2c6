"""CCS, coverage-centric coreset selection (Zheng et al., "Coverage-centric Coreset Selection
for High Pruning Rates", ICLR 2023), as in ``haizhongzheng/Coverage-centric-coreset-selection``
(``train.py --coreset-mode stratified``, ``core/data/Coreset.py``).

1. Hard cut-off: remove the ``round(cut * n)`` samples with the LOWEST AUM (the reference always
   cuts by ``accumulated_margin``, ascending, whatever the sampling score; its ``--mis-ratio``).
2. Stratified sampling on ``score`` over the rest: ``bins`` equal-width strata from the minimum
   to ``max * 1.0001`` (``max + 1e-4 |max|`` here, the same for a positive maximum; the
   reference's product would drop the maximum from every stratum when it is negative), stratum
   k holding ``low + k step <= s < low + (k+1) step``; the budget goes from the smallest stratum
   up, each taking ``min(its size, remaining // strata left)`` (equal-size strata in stratum
   order; the reference's unstable sort may order them otherwise); a uniform random draw inside
   each stratum (the method's own seeded generator; the reference draws from torch's global RNG).

``score``: ``"aum"`` (default; the CCS code's accumulated probability margin summed over the
recorded epochs), ``"el2n"`` (CCS's variant: the error norm summed over the first 10 epochs of
the one run) or ``"forgetting"`` (forgetting events, never-learned = 0). All come from the one
recorded run of :mod:`benchmark.training.dynamics`.

Counts: ``ratio`` is the fraction removed and exactly ``n - round(ratio * n)`` are kept (the
reference keeps ``int(keep * n)``, and fewer when the strata cannot fill the budget; here the
shortfall is drawn at random from the rest of the pool). The cut is capped at ``n - n_keep``
(logged as ``method.ccs_cut_realised``). The reference tunes ``cut`` per ratio (CIFAR-10: 0 at 30-50%
pruning, up to 0.3 at 90%); the default 0.1 is one value, not a tuned one.
"""
from __future__ import annotations

from benchmark.training.dynamics import DynamicsMethod, check_count_option, option_error
from benchmark.api.lazy import lazy_import
from benchmark.api.registry import register_method
from benchmark.api.task import is_finite

from .aum import aum_scores
from .forgetting import forgetting_events

torch = lazy_import("torch")

SCORES = ("aum", "el2n", "forgetting")
EL2N_EPOCHS = 10  # CCS's EL2N sums epochs 0-9 of its run


def ccs_score(record, score: str) -> torch.Tensor:
    if score == "aum":
        return aum_scores(record, "probability")
    if score == "el2n":
        return record["el2n"][:EL2N_EPOCHS].double().sum(dim=0)
    return forgetting_events(record["correct"]).double()


def strata(scores: torch.Tensor, bins: int) -> torch.Tensor:
    """Each score's stratum, 0 .. bins-1, with the reference's edges ``low + k * step``."""
    s = scores.double()
    low, high = s.min(), s.max()
    high = high + 1e-4 * high.abs() if high != 0 else high + 1e-4
    step = (high - low) / bins if high > low else torch.tensor(1.0, dtype=torch.float64)
    member = torch.full(s.shape, -1, dtype=torch.long)
    for k in range(bins):  # the reference's comparisons, not a floor division: the same edges
        member[(s >= low + k * step) & (s < low + (k + 1) * step)] = k
    member[member < 0] = bins - 1  # rounding at the top edge
    return member


def budgets(sizes: list[int], total: int, order: list[int] | None = None) -> list[int]:
    """Per-stratum budgets: from the smallest stratum up, each ``min(size, remaining // strata
    left)``. Equal-size strata go in stratum order unless ``order`` is given (the reference's
    unstable argsort orders them otherwise, which moves a unit of budget between equal strata)."""
    out = [0] * len(sizes)
    remaining = total
    order = order if order is not None else sorted(range(len(sizes)), key=lambda b: (sizes[b], b))
    for rank, b in enumerate(order):
        out[b] = min(sizes[b], remaining // (len(sizes) - rank))
        remaining -= out[b]
    return out


def ccs_select(scores: torch.Tensor, aum: torch.Tensor, n_keep: int, cut: int, bins: int,
               generator: torch.Generator) -> torch.Tensor:
    """Sorted kept indices: cut the ``cut`` lowest-AUM samples, then stratified sampling on ``scores``."""
    pool = torch.argsort(aum.double(), stable=True)[cut:]
    if n_keep > len(pool):
        raise ValueError(f"cannot keep {n_keep} samples after cutting {cut} of {len(aum)}")
    member = strata(scores[pool], bins)
    groups = [pool[member == b] for b in range(bins)]
    picked = [g[torch.randperm(len(g), generator=generator)[:want]]
              for g, want in zip(groups, budgets([len(g) for g in groups], n_keep)) if want]
    chosen = torch.cat(picked) if picked else torch.empty(0, dtype=torch.long)
    short = n_keep - len(chosen)
    if short:  # strata too small for their budget: fill from the rest of the pool at random
        rest = pool[~torch.isin(pool, chosen)]
        chosen = torch.cat([chosen, rest[torch.randperm(len(rest), generator=generator)[:short]]])
    return torch.sort(chosen).values


@register_method("ccs")
class CCS(DynamicsMethod):
    provenance = "reference-code"

    def __init__(self, ratio: float, seed: int = 0, *, score: str = "aum", cut: float = 0.1, bins: int = 50,
                 proxy_epochs: int | None = None):
        super().__init__(ratio, seed)
        if score not in SCORES:
            raise option_error("ccs", "score", score, f"use one of {SCORES}")
        if not (is_finite(cut) and 0 <= cut < 1):
            raise option_error("ccs", "cut", cut, "use a fraction in [0, 1) (the reference's --mis-ratio)")
        check_count_option("ccs", "bins", bins, 1, 100_000, "; the reference uses 50")
        self.score_name, self.cut, self.bins = score, float(cut), bins
        self._set_proxy_epochs(proxy_epochs)

    def score(self, record):
        self.aum = aum_scores(record, "probability")
        return ccs_score(record, self.score_name)

    def choose(self, scores, record):
        n = len(scores)
        n_keep = self.n_keep(n)
        self.cut_count = min(round(self.cut * n), n - n_keep)
        return ccs_select(scores, self.aum, n_keep, self.cut_count, self.bins, self.generator())

    def summary(self) -> dict[str, float]:
        return {"ccs_cut_realised": self.cut_count / len(self.scores)} if self.scores is not None else {}
