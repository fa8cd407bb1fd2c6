"""Run a sweep's cells as Ray tasks: on a local Ray instance, or on a cluster by address.

The driver (this process) does what the local runner does, cell by cell: it claims the
cell in MLflow (see :mod:`.claims`; its heartbeat comes from the driver), then submits the
training as a Ray task asking for the cell's resources (:meth:`Task.resources`). The task
logs its epochs to the cell's run and returns the cell's figures; the driver records the
outcome through the same :class:`~benchmark.sweeps.tracking.CellRun` as the local runner. At most
``max_in_flight`` cells are claimed at once (default: as many as the cluster's CPUs fit),
so queued cells stay free for other runners.

A task that raises, or whose worker dies (killed, out of memory, node lost), is recorded
as failed with the reason; run the sweep again to retry it. Ray itself does not retry a
cell (``max_retries=0``): a half-run cell must not be re-run behind the tracker's back.
Ray is optional: ``pip install 'prunebench[ray]'``.
"""
from __future__ import annotations

import time
import traceback
from pathlib import Path
from typing import Any

from .cells import Cell, Sweep
from .execute import plan_cell, run_cell
from .progress import SweepProgress
from .runner import SweepReport, pending_cells, record_failed, record_finished
from .store import StoreError
from .tracking import CellRun, EpochLogger, Tracker


def remote_cell(cell: Cell, data_dir: str | None, cache_dir: str, tracking_uri: str, run_id: str,
                device: str, sweep: str = "") -> tuple[dict[str, float], dict[str, str]]:
    """The body of one Ray task: train and test ``cell``, logging epochs and evidence to its run."""
    from mlflow.tracking import MlflowClient

    from .evidence_log import log_evidence
    from .tracking import code_version
    from ..training.trainer import resolve_device

    from .artifact_root import use_store_relative_artifacts

    use_store_relative_artifacts()  # a SQLite store's relative artifact locations, read against its folder
    run = CellRun(MlflowClient(tracking_uri), run_id)
    plan = plan_cell(cell, data_dir)
    result = run_cell(plan, resolve_device(device), Path(cache_dir), hooks=[EpochLogger(run)])
    log_evidence(run, plan, result.evidence, sweep, code_version())
    return result.metrics, result.tags


def _import_ray():
    try:
        import ray
    except ImportError as error:
        raise RuntimeError("the Ray executor needs Ray: pip install 'prunebench[ray]' (or pip install ray)") from error
    return ray


def run_sweep_ray(sweep: Sweep, tracker: Tracker, cache_dir: Path, address: str | None = None,
                  device: str = "auto", quiet: bool = False, max_cells: int | None = None,
                  max_in_flight: int | None = None, resources: dict[str, float] | None = None) -> SweepReport:
    ray = _import_ray()
    report = SweepReport()
    todo, done = pending_cells(sweep, tracker)
    report.skipped = [c.id for c in done]
    if max_cells is not None:
        todo = todo[:max_cells]
    progress = SweepProgress(len(todo), len(done), quiet=quiet)
    started_here = not ray.is_initialized()
    restore = None
    if started_here and address is None:
        restore = start_local_ray(ray, quiet)  # bound to 127.0.0.1
    elif started_here:
        # "auto" or "ray://host:port": an existing cluster, reachable as its owner set it up
        ray.init(address=address, include_dashboard=False, log_to_driver=not quiet, ignore_reinit_error=True)
    try:
        _drive(ray, sweep, tracker, cache_dir, device, todo, progress, report, max_in_flight, resources or {})
    finally:
        if started_here:
            ray.shutdown()
        if restore is not None:
            restore()
    return report


LOOPBACK = "127.0.0.1"
#: Ray's switch for a single-machine instance (its default on Windows and macOS), read by ray
#: when it is imported and by every process it starts: the node's address is then 127.0.0.1,
#: and Ray's gRPC servers (GCS, raylet, object manager, workers) listen on 127.0.0.1 only when
#: their node's address is 127.0.0.1. Without it, a local instance listens on all interfaces.
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


def start_local_ray(ray, quiet: bool):
    """A fresh local Ray instance that listens on 127.0.0.1 only (no dashboard); returns the
    call that restores the environment once it is shut down. Raises if Ray bound elsewhere."""
    import os

    before = os.environ.get(SINGLE_MACHINE_ENV)
    os.environ[SINGLE_MACHINE_ENV] = "0"
    from ray._private import ray_constants  # read when ray was imported: maybe before the line above

    ray_constants.ENABLE_RAY_CLUSTER = False

    def restore() -> None:
        if before is None:
            os.environ.pop(SINGLE_MACHINE_ENV, None)
        else:
            os.environ[SINGLE_MACHINE_ENV] = before

    ray.init(_node_ip_address=LOOPBACK, include_dashboard=False, log_to_driver=not quiet, ignore_reinit_error=True)
    node = ray.util.get_node_ip_address()
    if node != LOOPBACK:  # a Ray that no longer honours the switch: never serve on the network unasked
        ray.shutdown()
        restore()
        raise RuntimeError(f"the local Ray instance took the address {node}, not {LOOPBACK}; start a cluster "
                           "yourself (`ray start --head --node-ip-address 127.0.0.1`) and pass --address auto")
    return restore


def _drive(ray, sweep: Sweep, tracker: Tracker, cache_dir: Path, device: str, todo: list[Cell],
           progress: SweepProgress, report: SweepReport, max_in_flight: int | None,
           overrides: dict[str, float]) -> None:
    task_fn = ray.remote(max_retries=0)(remote_cell)
    limit = max_in_flight or max(1, int(ray.cluster_resources().get("CPU", 1)))
    data_dirs = sweep.data_dirs()
    in_flight: dict[Any, tuple[Cell, Any, CellRun]] = {}
    claim_seconds: dict[str, float] = {}
    queue = list(todo)
    try:
        while queue or in_flight:
            while queue and len(in_flight) < limit:
                cell = queue.pop(0)
                try:  # a method's or task's __init__ is the cell's code: its failure is the cell's
                    plan = plan_cell(cell, data_dirs.get(cell.task))
                    params, tags = plan.params(), plan.tags()
                except StoreError:
                    raise
                except KeyboardInterrupt:
                    raise
                except BaseException as error:
                    progress.start_cell(f"{cell.display}  [{cell.id}]")
                    record_failed(report, progress, tracker, sweep.name, cell, None, error)
                    continue
                began = time.perf_counter()
                run = tracker.try_claim(cell, sweep.name, params, tags)
                claim_seconds[cell.id] = time.perf_counter() - began
                if run is None:
                    report.busy.append(cell.id)
                    progress.start_cell(f"{cell.display}  [{cell.id}]")
                    progress.end_cell("held or finished by another runner: left to it")
                    continue
                options = {**plan.task.resources(), **overrides}
                ref = task_fn.options(**options).remote(cell, data_dirs.get(cell.task), str(cache_dir),
                                                        tracker.tracking_uri, run.run_id, device, sweep.name)
                in_flight[ref] = (cell, plan, run)
                progress.print(f"    submitted {cell.display}  [{cell.id}] ({len(in_flight)} in flight)")
            if not in_flight:
                continue
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            cell, plan, run = in_flight.pop(ready[0])
            progress.start_cell(f"{cell.display}  [{cell.id}]")
            try:
                metrics, tags = ray.get(ready[0])
            except Exception as error:  # the task raised, or its worker died
                cause = getattr(error, "cause", None) or error
                run.fail(cause, traceback.format_exc())
                report.failed[cell.id] = f"{type(cause).__name__}: {cause}"
                progress.end_cell(f"FAILED ({type(cause).__name__}: {cause})")
                continue
            began = time.perf_counter()
            run.finish(metrics, tags)
            report.tracking_seconds.append(claim_seconds.pop(cell.id) + time.perf_counter() - began)
            metric = f"test_{plan.task.metric}"
            record_finished(report, progress, cell, run, f"{metric} {metrics[metric]:.4f}")
    except KeyboardInterrupt:
        for ref, (cell, _, run) in in_flight.items():
            ray.cancel(ref, force=True)
            run.interrupt()
        progress.print("    interrupted: in-flight cells marked interrupted; run the sweep again to resume")
        raise
