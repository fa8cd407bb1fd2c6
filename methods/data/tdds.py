"""TDDS, temporal dual-depth scoring (Zhang et al., "Spanning Training Progress: Temporal
Dual-Depth Scoring (TDDS) for Enhanced Dataset Pruning", CVPR 2024), as in
``zhangxin-xd/Dataset-Pruning-TDDS`` (``importance_evaluation.py``, ``train_subset.py``).

Score, from one recorded full-data proxy run (:mod:`benchmark.training.dynamics`), with ``p_t`` a
sample's softmax as visited at epoch t (training mode, the reference logs the training
outputs): the per-epoch change ``d_t = sum_c |p_t,c (log(p_t,c + 1e-8) - log(p_t-1,c + 1e-8))|``;
over the first ``T = trajectory_len`` epochs, for each window ``k = 0 .. T - W`` of
``W = window`` epochs, the L2 norm over ``j = 1 .. W-1`` of ``d_{k+j} - mean_j d_{k+j}``,
weighted by ``decay * (1 - decay) ** (T - W - k)``, summed over windows.

Reference defaults: ``trajectory_len=10`` (the README uses 30), ``window=10``, ``decay=0.9``.
A record shorter than ``trajectory_len`` epochs uses all its epochs, and a window longer than
the trajectory is cut to it (realised values logged as ``tdds_trajectory_len``, ``tdds_window``).

Convention: keep the HIGHEST scores (the reference keeps ``mask[int(rate * n):]`` of an
ascending argsort, its ``subset_rate`` being the PRUNING rate), ties by lower index (numpy's
unstable argsort there). ``ratio`` is the fraction removed: ``round(ratio * n)`` removed (the
reference removes ``int(rate * n)``).

``reweight=True`` reproduces the reference's subset training, a confound when comparing with
plain subset training (off by default): scores are min-max normalised over all samples and each
batch's mean loss is multiplied by the mean normalised score of the batch.
"""
from __future__ import annotations

from benchmark.training.dynamics import DynamicsMethod, check_count_option, option_error
from benchmark.api.lazy import lazy_import
from benchmark.api.registry import register_method
from benchmark.api.task import is_finite

from .forgetting import keep_top

torch = lazy_import("torch")


def tdds_scores(change: torch.Tensor, trajectory_len: int, window: int, decay: float) -> torch.Tensor:
    """TDDS from the ``[epochs, n]`` softmax-change table (row t: change from epoch t-1 to t)."""
    d = change.double()
    total = torch.zeros(d.shape[1], dtype=torch.float64)
    for k in range(trajectory_len - window + 1):
        steps = d[k + 1: k + window]  # the window's W-1 changes
        spread = (steps - steps.mean(dim=0)).norm(dim=0)
        total += spread * decay * (1 - decay) ** (trajectory_len - window - k)
    return total


@register_method("tdds")
class TDDS(DynamicsMethod):
    provenance = "reference-code"
    min_record_epochs = 2  # a softmax change is between two epochs

    def __init__(self, ratio: float, seed: int = 0, *, trajectory_len: int = 10, window: int = 10,
                 decay: float = 0.9, reweight: bool = False, proxy_epochs: int | None = None):
        super().__init__(ratio, seed)
        for option, value in (("trajectory_len", trajectory_len), ("window", window)):
            check_count_option("tdds", option, value, 2, 10_000, "; the reference uses 10")
        if window > trajectory_len:
            raise option_error("tdds", "window", window, f"use a window <= trajectory_len ({trajectory_len})")
        if not (is_finite(decay) and 0 < decay < 1):
            raise option_error("tdds", "decay", decay, "use a number in (0, 1); the reference uses 0.9")
        self.trajectory_len, self.window, self.decay, self.reweight = trajectory_len, window, decay, bool(reweight)
        self._set_proxy_epochs(proxy_epochs)

    def score(self, record):
        epochs = len(record["softmax_change"])
        if epochs < 2:
            raise ValueError("method 'tdds' needs a recorded run of at least 2 epochs, got "
                             f"{epochs}; set proxy_epochs >= 2 (or a task profile with more epochs)")
        self.length_used = min(self.trajectory_len, epochs)
        self.window_used = min(self.window, self.length_used)
        return tdds_scores(record["softmax_change"], self.length_used, self.window_used, self.decay)

    def choose(self, scores, record):
        span = scores.max() - scores.min()
        self.weights = (scores - scores.min()) / span if span > 0 else torch.ones_like(scores)
        return keep_top(scores.double(), self.n_keep(len(scores)), None)

    def on_batch_loss(self, state, indices, logits, losses, targets, features):
        if not self.reweight:
            return None
        w = self.weights.to(losses.device)[indices.to(losses.device)]
        return w.mean().expand(len(w))  # the reference scales the batch's mean loss by its mean score

    def summary(self) -> dict[str, float]:
        if self.scores is None:
            return {}
        return {"tdds_trajectory_len": float(self.length_used), "tdds_window": float(self.window_used)}
