"""Where a sweep stands, read from the store without changing it: each cell finished,
running (who holds it, how fresh its heartbeat is), failed (the error's first line) or
pending, and an estimate of the time left from the cells already finished."""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from .cells import Cell
from .claims import ClaimPolicy, is_finished, is_live

STATES = ("finished", "running", "failed", "pending")


@dataclass(frozen=True)
class CellState:
    cell: Cell
    state: str  # one of STATES
    detail: str = ""  # running: host and heartbeat age; failed: the error; pending: what happened before
    seconds: float | None = None  # a finished cell's wall-clock


def _seconds(run: Any) -> float | None:
    info = run.info
    return (info.end_time - info.start_time) / 1000.0 if info.end_time and info.start_time else None


def _heartbeat_age(run: Any, now: float) -> str:
    try:
        return f"{now - float(run.data.tags['heartbeat']):.0f} s ago"
    except (KeyError, ValueError):
        return "no heartbeat"


def cell_state(cell: Cell, runs: list[Any], policy: ClaimPolicy, now: float) -> CellState:
    """The state of ``cell`` from its runs (superseded and withdrawn runs never count)."""
    finished = [r for r in runs if is_finished(r)]
    if finished:
        return CellState(cell, "finished", seconds=_seconds(min(finished, key=lambda r: r.info.run_id)))
    live = [r for r in runs if is_live(r, policy, now)]
    if live:
        tags = live[0].data.tags
        return CellState(cell, "running", f"on {tags.get('claim_host', '?')} pid {tags.get('claim_pid', '?')}, "
                                          f"heartbeat {_heartbeat_age(live[0], now)}")
    latest = max(runs, key=lambda r: r.info.start_time or 0, default=None)
    if latest is not None and latest.data.tags.get("status") == "failed":
        error = (latest.data.tags.get("error") or "no error recorded").splitlines()[0]
        return CellState(cell, "failed", error[:200])
    if latest is not None:
        was = latest.data.tags.get("status", "?")
        return CellState(cell, "pending", "its claim is dead (no heartbeat)" if was == "running" else f"was {was}")
    return CellState(cell, "pending")


def sweep_states(cells: list[Cell], runs_by_cell: dict[str, list[Any]], policy: ClaimPolicy,
                 now: float | None = None) -> list[CellState]:
    now = time.time() if now is None else now
    return [cell_state(cell, runs_by_cell.get(cell.id, []), policy, now) for cell in cells]


def eta_seconds(states: list[CellState]) -> float | None:
    """Time left for one runner: each unfinished cell at the median wall-clock of the finished
    cells of its task (of all finished cells when its task has none); None before any finished."""
    done: dict[str, list[float]] = {}
    for s in states:
        if s.state == "finished" and s.seconds is not None:
            done.setdefault(s.cell.task, []).append(s.seconds)
    if not done:
        return None
    overall = statistics.median(x for xs in done.values() for x in xs)
    per_task = {task: statistics.median(xs) for task, xs in done.items()}
    return sum(per_task.get(s.cell.task, overall) for s in states if s.state != "finished")


def render_status(states: list[CellState], limit: int = 20) -> str:
    """Counts, then the running, failed and pending cells (at most ``limit`` each), then the ETA."""
    counts = {state: sum(s.state == state for s in states) for state in STATES}
    lines = [f"{len(states)} cells: " + ", ".join(f"{counts[state]} {state}" for state in STATES)]
    for state in ("running", "failed", "pending"):
        chosen = [s for s in states if s.state == state]
        if chosen:
            lines.append(f"{state}:")
            lines += [f"  {s.cell.id}  {s.cell.display}" + (f"  ({s.detail})" if s.detail else "")
                      for s in chosen[:limit]]
            if len(chosen) > limit:
                lines.append(f"  ... and {len(chosen) - limit} more")
    eta = eta_seconds(states)
    left = len(states) - counts["finished"]
    if left == 0:
        lines.append("every cell is finished")
    elif eta is None:
        lines.append("time left: unknown until a cell finishes")
    else:
        lines.append(f"time left: about {_duration(eta)} for one runner ({left} cells at the median time of "
                     "finished cells of their task)")
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s"
