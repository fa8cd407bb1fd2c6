"""The GLUE metrics in plain numpy: accuracy, binary F1, Matthews correlation, Pearson and
Spearman correlation. No scikit-learn or scipy, so a text task needs neither to evaluate;
the tests check every metric against them.

Inputs are 1-D numpy arrays, lists or torch tensors of equal, non-zero length: predicted
class ids and true class ids, or predicted and true scores for the correlations.

Undefined values: F1 is 0.0 when there are neither predicted nor true positives (as
scikit-learn's ``zero_division`` default). Matthews, Pearson and Spearman are 0.0 when a
side is constant (their denominator is zero): a constant prediction carries no information
about the labels, and a number keeps leaderboard averages defined where scipy would give NaN.
"""
from __future__ import annotations

from typing import Any, Callable

from benchmark.api.lazy import lazy_import

np = lazy_import("numpy")


def as_array(values: Any) -> np.ndarray:
    """A 1-D numpy array of ``values``; torch tensors are detached and moved to the CPU."""
    if hasattr(values, "detach"):  # a torch tensor; avoids importing torch here
        values = values.detach().cpu()
        values = values.double() if values.is_floating_point() else values  # bfloat16 has no numpy dtype
        values = values.numpy()
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"expected a 1-D sequence, got shape {array.shape}")
    return array


def pair(pred: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    pred, y = as_array(pred), as_array(y)
    if len(pred) != len(y):
        raise ValueError(f"{len(pred)} predictions for {len(y)} labels")
    if len(y) == 0:
        raise ValueError("no predictions to score")
    return pred, y


def accuracy(pred: Any, y: Any) -> float:
    pred, y = pair(pred, y)
    return float(np.mean(pred == y))


def f1_binary(pred: Any, y: Any) -> float:
    """F1 of the positive class 1; labels must be 0 or 1."""
    pred, y = pair(pred, y)
    for name, values in (("predictions", pred), ("labels", y)):
        if not np.isin(values, (0, 1)).all():
            raise ValueError(f"binary F1 needs 0/1 {name}, got values {np.unique(values)[:10].tolist()}")
    tp = float(np.sum((pred == 1) & (y == 1)))
    wrong = float(np.sum(pred != y))  # false positives + false negatives
    return 0.0 if tp + wrong == 0 else 2 * tp / (2 * tp + wrong)


def matthews(pred: Any, y: Any) -> float:
    """Matthews correlation over any number of classes (Gorodkin's R_K):
    (c*s - sum_k p_k t_k) / sqrt((s^2 - sum_k p_k^2) (s^2 - sum_k t_k^2))."""
    pred, y = pair(pred, y)
    _, codes = np.unique(np.concatenate([pred, y]), return_inverse=True)
    codes = codes.reshape(-1)
    k, n = int(codes.max()) + 1, len(y)
    confusion = np.zeros((k, k), dtype=np.float64)
    np.add.at(confusion, (codes[n:], codes[:n]), 1.0)  # rows: true class, columns: predicted
    t, p, c, s = confusion.sum(axis=1), confusion.sum(axis=0), np.trace(confusion), float(n)
    denominator = (s * s - p @ p) * (s * s - t @ t)  # float64: the products overflow int64 for large n
    return 0.0 if denominator == 0 else float((c * s - p @ t) / np.sqrt(denominator))


def finite_floats(pred: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    pred, y = pair(pred, y)
    pred, y = pred.astype(np.float64), y.astype(np.float64)
    if not (np.isfinite(pred).all() and np.isfinite(y).all()):
        raise ValueError("correlations need finite values; got NaN or infinity")
    return pred, y


def correlation(x: np.ndarray, y: np.ndarray) -> float:
    x, y = x - x.mean(), y - y.mean()
    nx, ny = np.linalg.norm(x), np.linalg.norm(y)
    if nx == 0 or ny == 0:
        return 0.0
    return float(np.clip(np.dot(x / nx, y / ny), -1.0, 1.0))  # normalise first: no overflow of the product


def pearson(x: Any, y: Any) -> float:
    return correlation(*finite_floats(x, y))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks; tied values share the mean of the ranks they span."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])  # first position of each run of ties
    ends = np.r_[starts[1:], len(values)]
    mean_rank = (starts + ends + 1) / 2.0  # mean of the 1-based ranks starts+1 .. ends
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(mean_rank, ends - starts)
    return ranks


def spearman(x: Any, y: Any) -> float:
    x, y = finite_floats(x, y)
    return correlation(average_ranks(x), average_ranks(y))


METRICS: dict[str, Callable[[Any, Any], float]] = {
    "accuracy": accuracy, "f1": f1_binary, "matthews": matthews, "pearson": pearson, "spearman": spearman,
}


def compute(names: tuple[str, ...], pred: Any, y: Any) -> dict[str, float]:
    """``{name: value}`` for each metric in ``names`` (a GlueFormat's ``metrics``)."""
    unknown = [name for name in names if name not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; known: {sorted(METRICS)}")
    pred, y = pair(pred, y)
    return {name: METRICS[name](pred, y) for name in names}
