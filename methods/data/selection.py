"""Choosing sample indices from scores: small pure functions shared by score-based data pruners.

Scores are "higher = harder / more worth keeping". Ties are broken by index
(stable sorts), so a selection is deterministic.
"""
from __future__ import annotations

from benchmark.api.lazy import lazy_import

torch = lazy_import("torch")


def hardest_first(scores: torch.Tensor) -> torch.Tensor:
    """Indices ordered from highest to lowest score, ties by lower index."""
    return torch.argsort(-scores.double(), stable=True)


def keep_hardest(scores: torch.Tensor, n_keep: int, offset: int = 0) -> torch.Tensor:
    """Skip the ``offset`` hardest samples, keep the next ``n_keep`` (sorted indices)."""
    order = hardest_first(scores)
    if offset + n_keep > len(order):
        raise ValueError(f"offset {offset} + kept {n_keep} exceeds the {len(order)} samples")
    return torch.sort(order[offset : offset + n_keep]).values


def stratified(scores: torch.Tensor, n_keep: int, cut: int, bins: int, generator: torch.Generator) -> torch.Tensor:
    """Coverage-centric selection (CCS): drop the ``cut`` hardest, split the rest's score range
    into ``bins`` equal-width strata, and fill the budget from the smallest stratum up, each
    taking at most an equal share of what remains, sampling at random inside a stratum."""
    if bins < 1:
        raise ValueError(f"stratified selection needs bins >= 1, got {bins}")
    pool = hardest_first(scores)[cut:]
    if n_keep > len(pool):
        raise ValueError(f"cannot keep {n_keep} samples after cutting the {cut} hardest of {len(scores)}")
    pool_scores = scores[pool].double()
    low, high = pool_scores.min(), pool_scores.max()
    width = (high - low) / bins if high > low else torch.tensor(1.0, dtype=torch.float64)
    stratum = ((pool_scores - low) / width).floor().clamp(max=bins - 1).long()
    members = [pool[stratum == b] for b in range(bins)]
    chosen = []
    remaining = n_keep
    for rank, b in enumerate(sorted(range(bins), key=lambda b: (len(members[b]), b))):
        share = min(len(members[b]), remaining // (bins - rank))
        if share:
            pick = torch.randperm(len(members[b]), generator=generator)[:share]
            chosen.append(members[b][pick])
            remaining -= share
    picked = torch.cat(chosen) if chosen else torch.empty(0, dtype=torch.long)
    if remaining:  # integer shares left a few unfilled: take them at random from what is left
        left = pool[~torch.isin(pool, picked)]
        picked = torch.cat([picked, left[torch.randperm(len(left), generator=generator)[:remaining]]])
    return torch.sort(picked).values


def keep_per_class(scores: torch.Tensor, labels: torch.Tensor, quotas: dict[int, int]) -> torch.Tensor:
    """Inside each class keep its ``quotas[class]`` highest scores (ties by lower index); sorted indices."""
    picked = []
    for cls, quota in quotas.items():
        members = torch.nonzero(labels == cls).flatten()
        picked.append(members[hardest_first(scores[members])[:quota]])
    return torch.sort(torch.cat(picked)).values if picked else torch.empty(0, dtype=torch.long)
