"""Two method labels side by side at one ratio of one task: each side's seeds and mean, and
their paired difference with the leaderboard's own statistics (for pairs the board does not
put next to each other, such as two variants of one method)."""
from __future__ import annotations

import pandas as pd

from . import direction
from .stats import compare_paired, summarise


def task_of(runs: pd.DataFrame, task: str | None) -> str:
    """``task``, or the experiment's only task when none is given."""
    tasks = sorted(runs.task.unique()) if not runs.empty else []
    if task is None:
        if len(tasks) != 1:
            raise ValueError(f"the experiment holds {len(tasks)} tasks ({', '.join(tasks) or 'none finished'}); "
                             "name one with --task")
        return tasks[0]
    if task not in tasks:
        raise ValueError(f"no finished cell of task {task!r}; finished tasks: {', '.join(tasks) or 'none'}")
    return task


def compare_lines(runs: pd.DataFrame, task: str, ratio: float, a: str, b: str) -> list[str]:
    """The comparison as printed lines: one per side, then the paired difference ``a - b``
    (metric units; a win is a seed where ``a`` is better in the metric's direction)."""
    at = runs[(runs.task == task) & (runs.ratio == ratio)]
    higher = direction.higher_is_better(runs[runs.task == task])
    sides = {label: at[at.label == label].set_index("seed")["value"] for label in (a, b)}
    lines = []
    for label, values in sides.items():
        if values.empty:
            labels = sorted(at.label.unique())
            raise ValueError(f"no finished cell of {label!r} at ratio {ratio} on {task}; labels there: "
                             f"{', '.join(labels) or 'none'}")
        s = summarise(values)
        shown = ", ".join(f"seed {seed}: {value:.4f}" for seed, value in values.sort_index().items())
        lines.append(f"{label}: mean {s.mean:.4f} over {s.n} seed(s) ({shown})")
    c = compare_paired(sides[a], sides[b], higher)
    p = "no test (fewer than 2 common seeds)" if c.p_value is None else f"p={c.p_value:.3f}"
    lines.append(f"{a} - {b}: {c.mean_diff:+.4f} over {c.n} common seed(s), {p}, {a} won {c.wins}/{c.n}"
                 + ("" if higher else f" ({direction.phrase(higher)})") + (" (within noise)" if c.within_noise else ""))
    return lines
