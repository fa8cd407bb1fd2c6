"""Progress lines on stderr: one per cell, one per epoch, with an ETA for the sweep."""
from __future__ import annotations

import sys
import time
from typing import TextIO

from ..api.hooks import Hook, TrainState


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds >= 3600:
        return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"
    if seconds >= 60:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds}s"


class SweepProgress:
    def __init__(self, total: int, skipped: int, stream: TextIO | None = None, quiet: bool = False):
        self.total = total
        self.done = 0
        self.skipped = skipped
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.started = time.perf_counter()
        self.cell_started = self.started
        self.print(f"{total} cell(s) to run, {skipped} already finished (skipped)")

    def print(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def start_cell(self, label: str) -> None:
        self.cell_started = time.perf_counter()
        self.print(f"[{self.done + 1}/{self.total}] {label}")

    def end_cell(self, outcome: str) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.started
        eta = elapsed / self.done * (self.total - self.done)
        took = time.perf_counter() - self.cell_started
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
