"""Claims: how several runners on one sweep and one MLflow store avoid running a cell twice.

A runner claims a cell by creating the cell's run with ``status=running``, then reads the
cell's runs again; if it sees any OTHER live claim (or a finished run) it withdraws its own
(deletes the run) and leaves the cell. Two runners cannot both keep a claim: the later of
the two creations happens after the earlier one, so the later runner's read sees the earlier
claim. (Both may withdraw, when each sees the other; each then retries after a random
pause, and the first one back takes the cell.) This needs only what every MLflow store gives: a write is visible to reads that
start after it returns. No clocks are compared for it.

A claim is live while its runner shows signs of life:

- the runner refreshes the run's ``heartbeat`` tag (seconds since the epoch) every
  ``heartbeat_s``; a claim whose heartbeat is older than ``ttl_s`` is dead (a crashed or
  killed worker, a lost node), so the cell runs again;
- a claim made on this host by a process that no longer exists is dead at once, so a
  sweep restarted after a kill resumes without waiting for the TTL.

Clocks: judging a heartbeat compares the reader's clock with the writer's, so the runners
sharing a store are assumed to keep their clocks within ``max_skew_s`` (60 s by default;
NTP keeps real machines within milliseconds). A heartbeat further in the future than that,
or one that is not a finite number, cannot come from a working runner (a wrong clock, a tag
written by hand or by another tool): it is invalid and the claim is dead, so the cell runs
again instead of waiting forever. A runner whose clock is ahead by more than the allowance
loses its claims to the others; the cell then ends with two finished runs, resolved below.

A dead claim is closed as ``interrupted`` by whoever finds it. If a runner judged dead was in
fact alive (paused longer than the TTL) and finishes, the cell can end with two finished
runs; :func:`resolve_duplicates` keeps the one with the lowest run id and marks every other
``superseded`` (whichever runner finishes second does it, so no clock decides), and the
leaderboard reads one run per cell.
"""
from __future__ import annotations

import math
import os
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

HOST = socket.gethostname()


@dataclass(frozen=True)
class ClaimPolicy:
    ttl_s: float = 600.0  # a claim without a heartbeat for this long is dead
    heartbeat_s: float = 30.0
    max_skew_s: float = 60.0  # how far the runners' clocks may disagree (see the module's note)

    def __post_init__(self):
        if not all(math.isfinite(v) for v in (self.ttl_s, self.heartbeat_s, self.max_skew_s)):
            raise ValueError(f"claim TTL ({self.ttl_s}), heartbeat ({self.heartbeat_s}) and clock skew "
                             f"({self.max_skew_s}) must be finite numbers of seconds")
        if not 0 < self.heartbeat_s < self.ttl_s:
            raise ValueError(f"need 0 < heartbeat ({self.heartbeat_s}) < claim TTL ({self.ttl_s}) seconds")
        if self.max_skew_s < 0:
            raise ValueError(f"clock skew allowance must be >= 0 seconds, got {self.max_skew_s}")


def claim_tags() -> dict[str, str]:
    return {"claim_host": HOST, "claim_pid": str(os.getpid()), "heartbeat": f"{time.time():.3f}"}


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def is_live(run: Any, policy: ClaimPolicy, now: float | None = None) -> bool:
    """Whether ``run`` is a claim held by a runner that is still alive."""
    tags = run.data.tags
    if tags.get("status") != "running":
        return False
    pid = tags.get("claim_pid")
    if tags.get("claim_host") == HOST and pid and pid.isdigit() and not process_alive(int(pid)):
        return False
    if "heartbeat" not in tags:  # a run from before claims existed: its start is its last sign of life
        beat = run.info.start_time / 1000.0
    else:
        try:
            beat = float(tags["heartbeat"])
        except ValueError:  # not a time: no runner wrote it
            return False
    age = (time.time() if now is None else now) - beat
    # NaN fails both comparisons; a beat from the future beyond the skew allowance is invalid
    return -policy.max_skew_s <= age < policy.ttl_s


def is_finished(run: Any) -> bool:
    return run.data.tags.get("status") == "finished"


class Heartbeat:
    """Refreshes a run's ``heartbeat`` tag from a daemon thread until stopped. A failed write
    (tracking server briefly unreachable) is retried at the next beat."""

    def __init__(self, client: Any, run_id: str, interval_s: float):
        self.client, self.run_id, self.interval_s = client, run_id, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"heartbeat-{run_id[:8]}", daemon=True)
        self.failures = 0

    def start(self) -> "Heartbeat":
        self._thread.start()
        return self

    def _beat(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.client.set_tag(self.run_id, "heartbeat", f"{time.time():.3f}")
            except Exception:  # keep beating: one lost write is not a dead runner
                self.failures += 1

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)


def resolve_duplicates(client: Any, runs: list[Any], own_run_id: str) -> bool:
    """Among a cell's finished runs, the lowest run id stands: every other one is marked
    ``superseded`` (ours or not), so that whichever runner finishes second leaves one
    finished run, whatever the clocks. Returns whether ours stands.

    Called by each runner right after writing its own ``finished``; the last of them to read
    sees every finished run (each read starts after its own write returned), so it resolves
    them all. The winner depends on run ids only, so two runners resolving at once agree."""
    finished = sorted(r.info.run_id for r in runs if is_finished(r))
    if not finished:
        return False  # ours was overwritten meanwhile (superseded, or closed by another runner)
    winner = finished[0]  # the lowest id ever finished is never marked: never zero finished runs
    for loser in finished[1:]:
        client.set_tag(loser, "status", "superseded")
        client.set_tag(loser, "superseded_by", winner)
    return winner == own_run_id
