"""Progress lines on stderr: one per cell, one per epoch, with an ETA for the sweep."""
from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING, TextIO

from ..api.hooks import Hook, TrainState
from .estimate import describe_seconds

if TYPE_CHECKING:
    from .cells import Cell
    from .estimate import SweepEstimate


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class SweepProgress:
    """The sweep's lines: the cells to run and, with an ``estimate``
    (:class:`.estimate.SweepEstimate`), the time they should take, said before the first cell and
    refined after each (from the cells finished so far); without one, the ETA is the mean time of
    the cells done so far."""

    def __init__(self, total: int, skipped: int, stream: TextIO | None = None, quiet: bool = False,
                 estimate: "SweepEstimate | None" = None, cells: "list[Cell] | None" = None):
        self.total = total
        self.done = 0
        self.skipped = skipped
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.estimate = estimate
        self.left: list[Cell] = list(cells or [])  # the cells not yet ended, for the estimate
        self.cell: Cell | None = None
        self.started = time.perf_counter()
        self.cell_started = self.started
        line = f"{total} cell(s) to run, {skipped} already finished (skipped)"
        if estimate is not None and total:
            line += f"; {self.expected(start=True)}"
        self.print(line)

    def print(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def expected(self, start: bool = False) -> str:
        """The estimate of the cells left: 'about X left (...)' (at the start: 'expected to take about X'),
        and which cells cannot be estimated yet."""
        seconds, unknown = self.estimate.left(self.left)
        known = len(self.left) - len(unknown)
        if self.estimate.took:
            how = "at the speed of the cells finished"
        else:
            how = (f"{self.estimate.passes(self.left):,.0f} training sample-passes by the recipes, at the tasks' "
                   "declared speed on 2 idle CPU cores; a method's own scoring comes on top; refined as cells finish")
        said = f"expected to take about {describe_seconds(seconds)}" if start else f"about {describe_seconds(seconds)} left"
        text = f"{said} ({how})" if known else ""
        if unknown:
            tasks = ", ".join(sorted({c.task for c in unknown}))
            text += (f" for {known} cell(s); " if known else "") + (
                f"{len(unknown)} cell(s) of {tasks} not estimated until one of their task finishes")
        return text

    def start_cell(self, label: str, cell: "Cell | None" = None) -> None:
        self.cell = cell
        self.cell_started = time.perf_counter()
        self.print(f"[{self.done + 1}/{self.total}] {label}")

    def end_cell(self, outcome: str, finished: bool = False) -> None:
        """End the current cell; ``finished``: it ran to the end, and its time refines the estimate."""
        self.done += 1
        took = time.perf_counter() - self.cell_started
        if self.cell is not None:
            self.left = [c for c in self.left if c.id != self.cell.id]
            if finished and self.estimate is not None:
                self.estimate.observe(self.cell, took)
        self.cell = None
        if self.estimate is not None:
            left = self.expected() if self.left else "nothing left"
            self.print(f"    {outcome} in {_duration(took)}; sweep {self.done}/{self.total}, {left}")
            return
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        self.print(f"    {outcome} in {_duration(took)}; sweep {self.done}/{self.total}, ETA {_duration(eta)}")


class EpochProgress(Hook):
    """One line per epoch with the figures a person watches; ``label`` tells a method's
    proxy training (scoring before the cell's own training) from the cell's epochs."""

    def __init__(self, progress: SweepProgress, label: str = "epoch"):
        self.progress = progress
        self.label = label

    def on_epoch_end(self, state: TrainState, metrics: dict[str, float]) -> None:
        shown = [f"{k} {metrics[k]:.4f}" for k in ("train_loss", "val_loss", f"val_{state.task.metric}") if k in metrics]
        self.progress.print(
            f"    {self.label} {state.epoch + 1}/{state.epochs}  {'  '.join(shown)}  "
            f"samples {int(metrics['active_samples'])}  {metrics['epoch_seconds']:.1f}s"
        )
