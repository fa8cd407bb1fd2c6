"""Sparsity patterns of a weight matrix: ``unstructured`` or ``N:M`` (N of every M consecutive
input weights kept), parsed and checked before any compute, and selected as whole-tensor
operations (no Python loop over groups or rows).

Convention: a weight ``[out, in, *k]`` is read as the matrix ``[out, in * prod(k)]``; the
groups of ``M`` are consecutive columns of one row (one output, ``M`` neighbouring inputs),
as NVIDIA's 2:4 sparse tensor cores and the Wanda / SparseGPT code group them. ``N`` is the
count KEPT (the Wanda repository's ``--sparsity_type 2:4`` names the count pruned, which is
the same number for 2:4 and 4:8 only). Among equal scores the lower index is removed first,
as everywhere in the harness.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .lazy import lazy_import

torch = lazy_import("torch")

UNSTRUCTURED = "unstructured"
_NM = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


@dataclass(frozen=True)
class Pattern:
    """``n`` kept of every ``m``; ``m == 0`` means unstructured."""

    n: int = 0
    m: int = 0

    @property
    def structured(self) -> bool:
        return self.m > 0

    @property
    def ratio(self) -> float:
        """The fraction an N:M pattern removes."""
        return (self.m - self.n) / self.m

    def __str__(self) -> str:
        return f"{self.n}:{self.m}" if self.structured else UNSTRUCTURED


def parse_pattern(method: str, pattern: str) -> Pattern:
    """``"unstructured"`` or ``"N:M"`` with 0 < N < M; a ValueError naming the method otherwise."""
    if pattern == UNSTRUCTURED:
        return Pattern()
    match = _NM.match(pattern) if isinstance(pattern, str) else None
    if match is None:
        raise ValueError(f"method {method!r}: pattern {pattern!r} is unknown; use 'unstructured' or 'N:M' "
                         f"(N of every M consecutive input weights kept), e.g. '2:4' or '4:8'")
    n, m = int(match.group(1)), int(match.group(2))
    if not 0 < n < m:
        raise ValueError(f"method {method!r}: pattern {pattern!r} must keep 0 < N < M weights of every M, "
                         f"e.g. '2:4'")
    return Pattern(n, m)


def check_pattern_ratio(method: str, pattern: Pattern, ratio: float) -> None:
    """An N:M pattern removes exactly (M - N) / M: any other ``ratio`` would be a mislabelled cell."""
    if pattern.structured and abs(ratio - pattern.ratio) > 1e-9:
        raise ValueError(f"method {method!r}: pattern {pattern} removes {pattern.ratio:g} of the weights, but the "
                         f"cell's ratio is {ratio:g}; give this method ratios: [{pattern.ratio:g}]")


def matrix_view(weight: torch.Tensor) -> torch.Tensor:
    """``[out, in * prod(kernel)]``: the rows whose consecutive columns form the groups."""
    return weight.reshape(weight.shape[0], -1)


def check_pattern_widths(method: str, task: str, pattern: Pattern, weights: dict[str, torch.Tensor]) -> None:
    """Every weight's input width must be a multiple of M; one message listing the ones that are not."""
    if not pattern.structured:
        return
    bad = [f"{name} (input width {matrix_view(w).shape[1]})" for name, w in weights.items()
           if matrix_view(w).shape[1] % pattern.m]
    if bad:
        raise ValueError(f"method {method!r} on task {task!r}: pattern {pattern} needs every prunable layer's input "
                         f"width to be a multiple of {pattern.m}, but {', '.join(bad)} is not; use pattern "
                         f"'unstructured' or an M that divides these widths")


def _lowest_per_row(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Boolean keep-mask of a 2-D ``scores`` removing the ``k`` lowest of every row, ties by
    lower column index first (a stable sort along rows, one scatter)."""
    keep = torch.ones(scores.shape, dtype=torch.bool, device=scores.device)
    if k <= 0:
        return keep
    order = torch.sort(scores, dim=-1, stable=True).indices[..., :k]
    return keep.scatter_(-1, order, False)


def nm_keep_mask(scores: torch.Tensor, pattern: Pattern) -> torch.Tensor:
    """Keep the ``n`` highest scores of every ``m`` consecutive inputs of each row, in one
    whole-tensor selection: the matrix is viewed as ``[out, in / m, m]`` and each group ranked."""
    matrix = matrix_view(scores)
    rows, cols = matrix.shape
    if cols % pattern.m:
        raise ValueError(f"input width {cols} is not a multiple of {pattern.m} (pattern {pattern})")
    groups = matrix.reshape(rows, cols // pattern.m, pattern.m)
    return _lowest_per_row(groups, pattern.m - pattern.n).reshape(scores.shape)


def row_keep_mask(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """Per output row: remove ``round(ratio * in)`` of the row's lowest scores (Wanda's comparison group)."""
    from .masks import count_removed

    matrix = matrix_view(scores)
    return _lowest_per_row(matrix, count_removed(ratio, matrix.shape[1])).reshape(scores.shape)


COUNT_RULES = ("harness", "reference")


def check_count_rule(method: str, rule: str) -> None:
    if rule not in COUNT_RULES:
        raise ValueError(f"method {method!r}: count_rule {rule!r} is unknown; use 'harness' (round(ratio * n) "
                         f"removed, ties by index) or 'reference' (the Wanda repository's |s| <= sorted[int(ratio * n)])")


def threshold_keep_mask(scores: torch.Tensor, ratio: float) -> torch.Tensor:
    """The Wanda / SparseGPT code's cut: remove every score ``<=`` the sorted scores' entry at
    index ``int(ratio * n)``, i.e. ``int(ratio * n) + 1`` of them plus any ties with it."""
    flat = scores.flatten()
    threshold = torch.kthvalue(flat.float().cpu(), int(ratio * flat.numel()) + 1).values.to(scores.device)
    return scores > threshold
