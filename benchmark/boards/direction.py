"""Which way a task's headline metric improves: the one place the boards read it.

A task declares ``higher_is_better`` (accuracy: True; perplexity, a loss: False) and each cell
logs it as the run tag ``metric_higher_is_better``. Every board figure that says "better" (row
order, ``rank``, ``best`` / ▲, wins, the Pareto front, the baseline's monotone curve, the area
gap's order, the normalised score) goes through the functions here, so that a lower-is-better
metric is handled the same way everywhere. Differences (Δ) stay in the metric's own units,
method − reference: for a lower-is-better metric a negative Δ is an improvement.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

COLUMN = "higher_is_better"  # the runs' and the family tables' column holding the direction
TAG = "metric_higher_is_better"  # the cell run's tag ("true" / "false")


def parse_tag(text: str | None) -> bool | None:
    """The tag's value as a bool; None when absent or unreadable (the caller falls back)."""
    if text is None:
        return None
    return {"true": True, "false": False}.get(str(text).strip().lower())


def higher_is_better(rows: pd.DataFrame) -> bool:
    """The direction of the headline metric of ``rows`` (one task's runs or table rows);
    True where the column is absent (runs logged before the tag existed, no task to ask)."""
    if rows.empty or COLUMN not in rows:
        return True
    found = {bool(v) for v in rows[COLUMN].dropna()}
    if len(found) > 1:
        tasks = ", ".join(sorted(map(str, rows["task"].unique()))) if "task" in rows else "?"
        raise ValueError(f"task(s) {tasks}: the runs disagree on whether the metric is higher-is-better "
                         f"(tag {TAG!r} is both true and false); the task's metric changed between runs: "
                         "board the runs of one definition only (a new experiment name)")
    return found.pop() if found else True


def sign(higher: bool) -> float:
    """+1 for a higher-is-better metric, -1 for a lower-is-better one: ``sign * value`` is
    a score where larger is always better."""
    return 1.0 if higher else -1.0


def better(a, b, higher: bool) -> bool:
    """Whether ``a`` is strictly better than ``b``."""
    return bool(sign(higher) * (a - b) > 0)


def improvement(diff, higher: bool):
    """A difference (method − reference, metric units) turned into "how much better"
    (positive = better); works on numbers, arrays and Series."""
    return sign(higher) * diff


def ascending(higher: bool) -> bool:
    """The ``ascending`` flag that sorts values best first."""
    return not higher


def rank_best_first(values: pd.Series, higher: bool) -> pd.Series:
    """1 = best; ties share the lower (better) rank; a missing value has none."""
    return values.rank(method="min", ascending=ascending(higher))


def oriented(values, higher: bool) -> np.ndarray:
    """``values`` as a float array where larger is always better (for fronts and fits)."""
    return sign(higher) * np.asarray(values, dtype=float)


def phrase(higher: bool) -> str:
    return "higher is better" if higher else "lower is better"


def arrow(higher: bool) -> str:
    return "↑" if higher else "↓"


def note(higher: bool) -> str:
    """`` (lower is better)`` after a lower-is-better metric's name; nothing for the default
    direction (accuracy and the like), so that those boards read as they always did."""
    return "" if higher else f" ({phrase(higher)})"


def metric_label(metric: str, higher: bool) -> str:
    """``perplexity (lower is better)``, or ``accuracy``: a metric's name as a heading shows it."""
    return f"{metric}{note(higher)}"
