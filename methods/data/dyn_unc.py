"""Dyn-Unc, dynamic uncertainty (He et al., "Large-scale Dataset Pruning with Dynamic
Uncertainty", CVPR 2024), as in the DUAL repository (``behaapyy/dual-pruning``,
``exp_cifar/importance_evaluation.py``, ``dynunc``).

Score, from one recorded full-data proxy run (:mod:`benchmark.training.dynamics`): ``P[t, i]`` the
true-class probability of sample i as visited at epoch t (training mode); for every window
``k = 0 .. T - W`` of ``W = window`` consecutive epochs, ``10 * std(P[k:k+W, i])`` (the sample
standard deviation, unbiased, as torch's ``std``), averaged over the windows.

``window`` defaults to the reference's 10; a record with fewer epochs uses all of them as one
window (at least 2 are needed; the realised window is logged as ``method.dyn_unc_window``).

Convention: keep the HIGHEST scores (DUAL keeps ``mask[-int(keep * n):]`` of an ascending
argsort); ties by lower index. DUAL's ``subset_rate`` is the KEPT fraction; here ``ratio`` is
the fraction removed and ``n - round(ratio * n)`` are kept (DUAL: ``int(keep * n)``).
"""
from __future__ import annotations

from benchmark.training.dynamics import DynamicsMethod, check_count_option
from benchmark.api.lazy import lazy_import
from benchmark.api.registry import register_method

from .forgetting import keep_top

torch = lazy_import("torch")


def dyn_unc_scores(true_prob: torch.Tensor, window: int) -> torch.Tensor:
    """Mean over sliding windows of 10 x the unbiased std of ``true_prob`` ``[epochs, n]``."""
    p = true_prob.double()
    windows = p.unfold(0, window, 1)  # [epochs - window + 1, n, window]
    return (windows.std(dim=2) * 10).mean(dim=0)


def realised_window(window: int, epochs: int, method: str) -> int:
    if epochs < 2:
        raise ValueError(f"method {method!r} needs a recorded run of at least 2 epochs, got {epochs}; "
                         "set proxy_epochs >= 2 (or a task profile with more epochs)")
    return min(window, epochs)


@register_method("dyn-unc")
class DynUnc(DynamicsMethod):
    provenance = "reference-code"
    min_record_epochs = 2  # a standard deviation over epochs needs two

    def __init__(self, ratio: float, seed: int = 0, *, window: int = 10, proxy_epochs: int | None = None):
        super().__init__(ratio, seed)
        self.window = check_count_option("dyn-unc", "window", window, 2, 10_000, "; the reference uses 10")
        self._set_proxy_epochs(proxy_epochs)

    def score(self, record):
        table = record["true_prob"]
        self.window_used = realised_window(self.window, len(table), "dyn-unc")
        return dyn_unc_scores(table, self.window_used)

    def choose(self, scores, record):
        return keep_top(scores.double(), self.n_keep(len(scores)), None)

    def summary(self) -> dict[str, float]:
        return {"dyn_unc_window": float(self.window_used)} if self.scores is not None else {}
