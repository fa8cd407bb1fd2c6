"""Run a sweep: skip finished cells, run the rest one by one, isolate failures.

A cell that raises is recorded as failed (with its traceback) and the sweep goes
on: whatever it raises (``SystemExit`` included), building its method or task included,
but ``KeyboardInterrupt`` (Ctrl-C, and SIGTERM as :class:`Terminated`). A method's own errors
and contract violations come named (:mod:`.contract`). Ctrl-C marks the current cell
interrupted and stops; a killed process leaves its cell 'running', which the next run
closes as interrupted and runs again.
Only 'finished' cells are skipped, so a re-run never duplicates or loses one.
Several runners may work on one sweep at once: each takes a cell only through a
claim (see :mod:`.claims`) and leaves the cells other runners hold.

A fault of the tracking store itself (:class:`.store.StoreError`: read-only, unreachable,
artifacts not writable) is no cell's fault: it stops the sweep at once, the running cell
closed as interrupted where the store still takes the write. SIGTERM (what Slurm and
Kubernetes send before a kill) is handled as Ctrl-C is (:func:`sigterm_as_interrupt`).
"""
from __future__ import annotations

import contextlib
import signal
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .cells import Cell, Sweep
from .estimate import SweepEstimate, finished_seconds, sweep_costs
from .progress import EpochProgress, SweepProgress
from .store import StoreError
from .tracking import EpochLogger, Tracker

if TYPE_CHECKING:  # torch and the training code are imported once there is a cell to run
    import torch


@dataclass
class SweepReport:
    finished: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # cell id -> error
    skipped: list[str] = field(default_factory=list)
    busy: list[str] = field(default_factory=list)  # held or finished by another runner meanwhile
    tracking_seconds: list[float] = field(default_factory=list)  # per cell: claim + recording the outcome

    @property
    def ok(self) -> bool:
        return not self.failed


def pending_cells(sweep: Sweep, tracker: Tracker) -> tuple[list[Cell], list[Cell]]:
    """(to run, already finished)."""
    finished = tracker.finished_cell_ids()
    cells = sweep.cells()
    return [c for c in cells if c.id not in finished], [c for c in cells if c.id in finished]


def run_sweep(sweep: Sweep, tracker: Tracker, device: torch.device | str, cache_dir: Path,
              quiet: bool = False, max_cells: int | None = None, start: int = 0) -> SweepReport:
    """Run the pending cells of ``sweep``; ``device`` a torch device or its name (``auto``,
    ``cpu`` ...: resolved only if a cell is left to run, so a finished sweep imports no torch).
    ``start``: begin at that pending cell (wrapping round), so that runners started together
    (a Slurm array's tasks) do not all race for the same first cell."""
    report = SweepReport()
    todo, done = pending_cells(sweep, tracker)
    report.skipped = [c.id for c in done]
    if todo and start:
        todo = todo[start % len(todo):] + todo[:start % len(todo)]
    if max_cells is not None:
        todo = todo[:max_cells]
    estimate = None if quiet or not todo else plan_estimate(sweep, todo, done, tracker)
    progress = SweepProgress(len(todo), len(done), quiet=quiet, estimate=estimate, cells=todo)
    if not todo:
        return report
    from .evidence_log import log_evidence
    from .execute import plan_cell, run_cell
    from ..training.trainer import resolve_device

    device = resolve_device(device) if isinstance(device, str) else device
    data_dirs = sweep.data_dirs()

    for cell in todo:
        progress.start_cell(f"{cell.display}  [{cell.id}]", cell)
        plan = run = None
        try:
            plan = plan_cell(cell, data_dirs.get(cell.task))  # a method's or task's __init__: the cell's code
            began = time.perf_counter()
            run = tracker.try_claim(cell, sweep.name, plan.params(), plan.tags())
            claim_seconds = time.perf_counter() - began
            if run is None:
                report.busy.append(cell.id)
                progress.end_cell("held or finished by another runner: left to it")
                continue
            result = run_cell(plan, device, cache_dir, hooks=[EpochLogger(run), EpochProgress(progress)],
                              proxy_hooks=[EpochProgress(progress, label="proxy epoch")])
            began = time.perf_counter()
            log_evidence(run, plan, result.evidence, sweep.name, tracker.code_version)
            run.finish(result.metrics, result.tags)
            report.tracking_seconds.append(claim_seconds + time.perf_counter() - began)
        except KeyboardInterrupt:
            close_quietly(run)
            progress.print(f"    interrupted: {cell.display}; run the sweep again to resume")
            raise
        except StoreError:  # the store's fault, not the cell's: every later cell would meet it too
            close_quietly(run)
            progress.end_cell("stopped: the tracking store failed (see below)")
            raise
        except BaseException as error:  # Exception, SystemExit ...: the cell's fault; record it, go on
            record_failed(report, progress, tracker, sweep.name, cell, run, error)
            continue
        metric = f"test_{plan.task.metric}"
        record_finished(report, progress, cell, run, f"{metric} {result.metrics[metric]:.4f}")
    return report


def plan_estimate(sweep: Sweep, todo: list[Cell], done: list[Cell], tracker: Tracker) -> SweepEstimate | None:
    """The time the cells to run should take (:mod:`.estimate`): from their recipes, scaled by the
    seconds of this sweep's cells already finished in the store. Only said, never acted on: a
    failure to make it is no reason to stop, and leaves the plain ETA."""
    try:
        estimate = SweepEstimate(sweep_costs([*todo, *done], sweep.data_dirs()))
        if done:
            by_id = {c.id: c for c in done}
            for cell_id, seconds in finished_seconds(tracker.query, tracker.experiment_id).items():
                if cell_id in by_id:
                    estimate.observe(by_id[cell_id], seconds)
        return estimate
    except Exception:
        return None


def record_failed(report: SweepReport, progress: SweepProgress, tracker: Tracker, sweep: str, cell: Cell,
                  run, error: BaseException) -> None:
    """Record ``cell`` as failed with ``error``'s traceback. A cell that failed before its claim
    (its method or task could not be built) is claimed now, to record the failure in its run;
    held by another runner meanwhile, it is left to it. A StoreError on the way stops the sweep."""
    text = traceback.format_exc()
    if run is None:
        run = tracker.try_claim(cell, sweep, {}, {})
        if run is None:
            report.busy.append(cell.id)
            progress.end_cell(f"FAILED before its claim ({type(error).__name__}: {error}); "
                              f"held or finished by another runner: left to it")
            return
    report.failed[cell.id] = f"{type(error).__name__}: {error}"
    progress.end_cell(f"FAILED ({type(error).__name__}: {error})")
    run.fail(error, text)


def close_quietly(run) -> None:
    """Close ``run`` as interrupted if it is still open and the store takes the write; a store
    that does not is the fault already being reported, so its error is not raised again."""
    if run is not None and not run.closed:
        with contextlib.suppress(StoreError):
            run.interrupt()


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where Ctrl-C's KeyboardInterrupt would be, so that it is handled alike."""


@contextlib.contextmanager
def sigterm_as_interrupt():
    """While inside, SIGTERM raises :class:`Terminated` in the main thread (a no-op elsewhere:
    Python delivers signals to the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(f"signal {signum}")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def record_finished(report: SweepReport, progress: SweepProgress, cell: Cell, run, outcome: str) -> None:
    """Count a cell whose run was just finished (or superseded: another runner finished it first)."""
    if run.superseded:
        report.busy.append(cell.id)
        progress.end_cell(f"{outcome}, but another runner finished it first: its run stands")
        return
    report.finished.append(cell.id)
    progress.end_cell(outcome, finished=True)
