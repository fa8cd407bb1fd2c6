"""Moderate-DS (Xia et al., "Moderate Coreset: A Universal Method of Data Selection for
Real-world Data-efficient Deep Learning", ICLR 2023), as in ``tmllab/2023_ICLR_Moderate-DS``
(``selection.py``).

Score: the penultimate features ``h_i`` of a model trained on all data (the recorded proxy of
:mod:`benchmark.training.dynamics`, eval mode, unaugmented input); each class's element-wise median
feature ``m_c`` (numpy's median: the mean of the two middle values for an even count); the
score is ``|| h_i - m_{y_i} ||_2``.

Convention: all samples sorted by distance (one global order, not per class); keep the band
around the median distance: ``n_keep`` samples from position ``round((n - n_keep) / 2)``. The
reference keeps positions ``round(n (0.5 - keep/2)) .. round(n (0.5 + keep/2))`` with ``keep``
its ``--rate`` (the KEPT fraction) and saves the others as the ids to drop, so its count can
differ from ``n_keep`` by one where both ends round the same way. Ties by lower index (numpy's
unstable argsort there).

Needs a task whose model exposes penultimate features (capability ``features``).
"""
from __future__ import annotations

from benchmark.training.dynamics import DynamicsMethod
from benchmark.api.lazy import lazy_import
from benchmark.api.registry import register_method

torch = lazy_import("torch")


def median_distances(features: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Distance of each feature vector to its class's element-wise median feature."""
    h = features.double().reshape(len(features), -1)
    centre = torch.empty_like(h)
    for cls in torch.unique(labels):
        members = labels == cls
        centre[members] = numpy_median(h[members])
    return (h - centre).norm(dim=1)


def numpy_median(rows: torch.Tensor) -> torch.Tensor:
    """Column-wise median as numpy's: the mean of the two middle values for an even count
    (torch.median takes the lower one; torch.quantile refuses large inputs)."""
    ordered = rows.sort(dim=0).values
    middle = len(rows) // 2
    return ordered[middle] if len(rows) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def moderate_band(distance: torch.Tensor, n_keep: int) -> torch.Tensor:
    order = torch.argsort(distance.double(), stable=True)
    start = round((len(distance) - n_keep) / 2)
    return torch.sort(order[start: start + n_keep]).values


@register_method("moderate")
class Moderate(DynamicsMethod):
    provenance = "reference-code"
    requires = frozenset({"classification", "features"})

    def __init__(self, ratio: float, seed: int = 0, *, proxy_epochs: int | None = None):
        super().__init__(ratio, seed)
        self._set_proxy_epochs(proxy_epochs)

    def score(self, record):
        return median_distances(record["final_features"], record["targets"])

    def choose(self, scores, record):
        return moderate_band(scores, self.n_keep(len(scores)))
