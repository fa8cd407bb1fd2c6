"""Random data pruning: a seeded uniform subset of the training set.

``dynamic=False`` (default) draws the subset once; ``dynamic=True`` redraws it every
epoch (the natural baseline of dynamic methods such as EMP and TED).
``class_balanced=True`` keeps the same fraction of every class, with per-class
quotas by largest remainder so the total kept is exactly ``n - round(ratio*n)``.
"""
from __future__ import annotations

from benchmark.api.hooks import TrainState
from benchmark.api.lazy import lazy_import
from benchmark.api.method import DataPruner
from benchmark.api.registry import register_method

torch = lazy_import("torch")


def class_quotas(labels: torch.Tensor, n_keep: int) -> dict[int, int]:
    classes, counts = torch.unique(labels, return_counts=True)
    exact = counts.double() * n_keep / len(labels)
    quota = exact.floor().long()
    short = n_keep - int(quota.sum())
    quota[torch.argsort(-(exact - quota), stable=True)[:short]] += 1
    return {int(c): int(q) for c, q in zip(classes, quota)}


def random_subset(n: int, n_keep: int, generator: torch.Generator, labels: torch.Tensor | None = None) -> torch.Tensor:
    if labels is None:
        return torch.sort(torch.randperm(n, generator=generator)[:n_keep]).values
    picked = []
    for cls, quota in class_quotas(labels, n_keep).items():
        members = torch.nonzero(labels == cls).flatten()
        picked.append(members[torch.randperm(len(members), generator=generator)[:quota]])
    return torch.sort(torch.cat(picked)).values


@register_method("random")
class RandomData(DataPruner):
    provenance = "reference-code"

    def __init__(self, ratio: float, seed: int = 0, *, dynamic: bool = False, class_balanced: bool = False):
        super().__init__(ratio, seed)
        self.dynamic = bool(dynamic)
        self.class_balanced = bool(class_balanced)
        self.subset: torch.Tensor | None = None

    def on_run_start(self, state: TrainState) -> None:
        self.subset = None
        self._generator = self.generator()
        self._labels = state.splits.train.y.cpu() if self.class_balanced else None

    def on_epoch_start(self, state: TrainState) -> torch.Tensor:
        if self.subset is None or self.dynamic:
            self.subset = random_subset(state.n_train, self.n_keep(state.n_train), self._generator, self._labels)
        return self.subset
