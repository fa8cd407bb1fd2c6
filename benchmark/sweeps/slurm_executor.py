"""Run a sweep on a Slurm cluster through submitit: a job array whose tasks each claim and run
cells until none is left.

The driver (this process) opens the store and creates the sweep's experiment once, before fan-out,
then submits one job array of ``min(unfinished cells, --max-in-flight)`` tasks, at most
``--max-in-flight`` running at once (``%N``). Each task is a runner like the local one
(:func:`.runner.run_sweep`): it claims a cell through :meth:`Tracker.try_claim`, runs it, and
goes on with the next unclaimed one, starting at its own index so that the tasks do not race
for the same first cell. A cell is therefore never run twice, and a task that starts late, or
again after a requeue, resumes the sweep where it stands.

Preemption and time limits: Slurm sends a signal before it kills a task (``--signal=USR2@90``
as submitit sets it; ``scancel --signal=TERM``; SIGTERM or SIGUSR1 from a site's preemption
set-up). Each of them goes to submitit's checkpoint handler: :meth:`SweepTask.checkpoint`
closes the running cell as ``interrupted`` and submitit requeues the task (``scontrol
requeue``). Its finished cells are kept; the interrupted one runs again, in whichever task
claims it first.

Every task's log is in one folder next to the store (``slurm-logs/<experiment>/``), named
``<array job>_<task>_0_log.out`` (submitit submits a one-task array as a plain job: ``<job>_0_log.out``). While the array runs, the driver prints how many tasks are
pending, running and done; Ctrl-C leaves the array running (``scancel`` stops it). The array's
id and size are kept as the experiment's tag ``prunebench.slurm_array``, so that ``prunebench
status`` (:func:`array_status`) says the same from anywhere ``squeue`` reaches the cluster.
Credentials never reach argv, the job script or the pickled task: a password in the tracking
URI is moved to the environment (``PGPASSWORD``, ``MYSQL_PWD``, ``MLFLOW_TRACKING_PASSWORD``),
which ``sbatch`` passes on to the tasks.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .cells import Sweep
from .claims import ClaimPolicy
from .runner import SweepReport, Terminated, close_quietly, pending_cells
from .slurm_options import SlurmError, SlurmOptions
from .store import move_password_to_env, sqlite_path
from .tracking import Tracker

LIVE_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
               "RESIZING", "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT"}
SQUEUE_TRIES = 12  # consecutive failed polls before the driver gives up watching (the array runs on)
MAX_REQUEUES = 100  # submitit's count of time-outs a task may be requeued after (preemptions do not count)
ARRAY_TAG = "prunebench.slurm_array"  # experiment tag: "<array job id>:<tasks>" of the sweep's last array


class Preempted(Terminated):
    """The task was signalled before its time limit or on preemption, and has been requeued."""


class _RecordingTracker(Tracker):
    """A tracker that remembers the run it claimed last: the cell to close on preemption."""

    current = None

    def try_claim(self, *args, **kwargs):
        run = super().try_claim(*args, **kwargs)
        self.current = run
        return run


@dataclass
class SweepTask:
    """One array task: a runner on the sweep. Pickled by submitit into the logs folder."""

    sweep: Sweep
    tracking_uri: str  # without a password (see move_password_to_env)
    experiment: str
    claims: ClaimPolicy
    device: str
    cache_dir: str
    start: int = 0
    _tracker: Any = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_tracker": None}  # a live MLflow client is not pickled

    def __call__(self) -> dict[str, Any]:
        import signal

        from .runner import run_sweep
        from ..training.trainer import resolve_device

        # submitit binds its checkpoint-and-requeue handler to USR2 (what it asks Slurm to send
        # before the time limit); SIGTERM and SIGUSR1, which preemption and `scancel --signal`
        # send, get the same handler instead of submitit's "bypass"
        requeue = signal.getsignal(signal.SIGUSR2)
        if callable(requeue):
            def preempted(signum, frame):
                # submitit checkpoints, requeues, then exits by raising SystemExit wherever the main
                # thread is: inside a method's hook, the cell's failure boundary would take that for
                # the method's fault and the sweep would go on. As a Preempted (a KeyboardInterrupt,
                # which every boundary lets through) the cell stays interrupted and the task ends.
                try:
                    requeue(signum, frame)
                except SystemExit as exit:
                    raise Preempted(exit.code) from exit

            for signum in (signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2):
                signal.signal(signum, preempted)
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        cpus = os.environ.get("SLURM_CPUS_PER_TASK", "")
        if cpus.isdigit():  # torch would otherwise start a thread per core of the node, not of the task
            import torch

            torch.set_num_threads(int(cpus))
        self._tracker = _RecordingTracker(self.tracking_uri, experiment=self.experiment, claims=self.claims)
        task = os.environ.get("SLURM_ARRAY_TASK_ID", "0")  # submitit submits a one-task array as a plain job
        print(f"array task {task} (job {os.environ.get('SLURM_JOB_ID', '?')}, restart "
              f"{os.environ.get('SLURM_RESTART_COUNT', '0')}): tracking {self._tracker.uri}", flush=True)
        try:
            report = run_sweep(self.sweep, self._tracker, resolve_device(self.device), Path(self.cache_dir),
                               start=self.start)
        except Preempted as stop:  # requeued already: end as submitit's own handler would
            raise SystemExit(stop.args[0] if stop.args else -1) from None
        print(f"array task {task}: finished {len(report.finished)}, failed {len(report.failed)}, "
              f"left to other tasks {len(report.busy)}; no unclaimed cell left", flush=True)
        return {"finished": report.finished, "failed": report.failed, "busy": report.busy}

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit on the preemption / time-limit signal, before it requeues the task:
        the running cell is closed as interrupted (it runs again), the task is resubmitted as it
        was (its state is the store's)."""
        from submitit.helpers import DelayedSubmission

        run = self._tracker.current if self._tracker is not None else None
        if run is not None and not run.closed:
            close_quietly(run)
            print(f"signal before the time limit or preemption: cell {run.cell_id} closed as interrupted; "
                  "requeueing this task", flush=True)
        return DelayedSubmission(replace(self, _tracker=None))


def logs_folder(tracking_uri: str, experiment: str, given: str | None = None) -> Path:
    """Where every task's log goes: beside a SQLite store's file, else in ./slurm-logs."""
    if given:
        return Path(given).resolve()
    db = sqlite_path(tracking_uri)
    base = db.parent if db is not None else Path.cwd()
    return (base / "slurm-logs" / experiment).resolve()


def make_executor(folder: Path, sweep: Sweep, options: SlurmOptions, tasks: int, max_in_flight: int | None):
    import submitit

    executor = submitit.SlurmExecutor(folder=folder, max_num_timeout=MAX_REQUEUES)
    executor.update_parameters(job_name=f"prunebench-{sweep.name}"[:64], stderr_to_stdout=True,
                               array_parallelism=max_in_flight or tasks, **options.sbatch_parameters())
    return executor


def sbatch_script(executor: Any, tasks: int) -> str:
    """The job script submitit would submit for an array of ``tasks`` tasks."""
    from submitit.slurm.slurm import _make_sbatch_string

    return _make_sbatch_string(command=executor._submitit_command_str, folder=executor.folder,
                               map_count=tasks, **executor.parameters)


def dry_run(sweep: Sweep, options: SlurmOptions, estimate: int, folder: Path, max_in_flight: int | None) -> str:
    tasks = min(sweep.cell_count(), max_in_flight or sweep.cell_count())
    executor = make_executor(folder, sweep, options, tasks, max_in_flight)
    return (f"# dry run: nothing submitted. {sweep.cell_count()} cells; an array of up to {tasks} tasks "
            f"(fewer if cells are finished), at most {max_in_flight or tasks} at once\n"
            f"# resources per task: {options.describe()} (one cell estimated at {estimate} min)\n"
            f"# logs: {folder}\n" + sbatch_script(executor, tasks))


def task_states(array_id: str) -> Counter:
    """Slurm state -> number of the array's tasks still known to squeue in that state."""
    out = subprocess.run(["squeue", "-h", "-r", "-j", array_id, "-o", "%T"], capture_output=True, text=True,
                         timeout=60)
    if out.returncode != 0:
        if "invalid job id" in out.stderr.lower():  # purged: every task is over
            return Counter()
        raise RuntimeError(f"squeue failed: {out.stderr.strip()}")
    return Counter(line.strip() for line in out.stdout.splitlines() if line.strip())


def describe_states(states: Counter, total: int) -> str:
    live = sum(n for s, n in states.items() if s in LIVE_STATES)
    running = states.get("RUNNING", 0) + states.get("COMPLETING", 0) + states.get("CONFIGURING", 0)
    return f"{live - running} pending, {running} running, {total - live} done (of {total} tasks)"


def array_status(experiment_tags: dict[str, str]) -> str | None:
    """One line on the sweep's last Slurm job array (its tasks pending, running and done, from
    ``squeue``), a note where Slurm cannot be asked here; None if it was never submitted to Slurm."""
    value = experiment_tags.get(ARRAY_TAG, "")
    array_id, _, tasks = value.partition(":")
    if not array_id or not tasks.isdigit():
        return None
    try:
        return f"Slurm job array {array_id}: {describe_states(task_states(array_id), int(tasks))}"
    except FileNotFoundError:
        why = "squeue is not on this machine's PATH"
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        why = (str(error).strip().splitlines() or ["squeue failed"])[-1][:200]
    return (f"Slurm job array {array_id} ({tasks} tasks): its tasks' states are unknown here ({why}); run "
            f"`prunebench status` where Slurm answers, or `squeue -r -j {array_id}` on the cluster")


def run_sweep_slurm(sweep: Sweep, tracker: Tracker, options: SlurmOptions, claims: ClaimPolicy,
                    cache_dir: Path, device: str = "auto", max_in_flight: int | None = None,
                    logs: str | None = None, wait: bool = True, poll_s: float = 5.0,
                    out=sys.stderr) -> SweepReport:
    report = SweepReport()
    todo, done = pending_cells(sweep, tracker)
    report.skipped = [c.id for c in done]
    if not todo:
        return report
    folder = logs_folder(tracker.tracking_uri, tracker.experiment_name, logs)
    folder.mkdir(parents=True, exist_ok=True)
    worker_uri = move_password_to_env(tracker.tracking_uri)
    n = min(len(todo), max_in_flight or len(todo))
    executor = make_executor(folder, sweep, options, n, max_in_flight)
    base = SweepTask(sweep, worker_uri, tracker.experiment_name, claims, device, str(Path(cache_dir).resolve()))
    try:
        with executor.batch():
            jobs = [executor.submit(replace(base, start=i)) for i in range(n)]
    except Exception as error:  # sbatch refused the script: its own last line says why
        said = (str(error).strip().splitlines() or [type(error).__name__])[-1]
        raise SlurmError(f"sbatch refused the job array ({said}); check the resources ({options.describe()}) "
                         "with --dry-run and the cluster's limits (`sinfo`, `sacctmgr show qos`)") from error
    array_id = jobs[0].job_id.split("_")[0]
    tracker.client.set_experiment_tag(tracker.experiment_id, ARRAY_TAG, f"{array_id}:{n}")  # for `status`
    print(f"submitted Slurm job array {array_id}: {n} task(s) for {len(todo)} unfinished cell(s), at most "
          f"{n} at once ({options.describe()}); logs in {folder}", file=out, flush=True)
    if not wait:
        print(f"follow it with `squeue -r -j {array_id}` and `prunebench status {sweep.source}`; "
              f"stop it with `scancel {array_id}`", file=out)
        report.busy = [c.id for c in todo]
        return report
    try:
        last, misses = "", 0
        while True:
            try:
                states = task_states(array_id)
                misses = 0
            except (RuntimeError, subprocess.TimeoutExpired) as error:  # a busy controller: ask again
                misses += 1
                if misses >= SQUEUE_TRIES:
                    raise SlurmError(f"squeue failed {misses} times in a row ({error}); the job array "
                                     f"{array_id} may still run: follow it with `squeue -r -j {array_id}`") from error
                time.sleep(poll_s)
                continue
            line = describe_states(states, n)
            if line != last:
                print(f"  slurm job {array_id}: {line}", file=out, flush=True)
                last = line
            if not any(s in LIVE_STATES for s in states):
                break
            time.sleep(poll_s)
    except KeyboardInterrupt:
        print(f"stopped watching; job array {array_id} keeps running (scancel {array_id} stops it); "
              "finished cells are kept", file=out)
        raise
    return outcome(tracker, todo, report, folder)


def outcome(tracker: Tracker, todo: list, report: SweepReport, folder: Path) -> SweepReport:
    """The report of the cells this submission was for, read back from the store once every task
    is over. A cell no task finished or failed (a task that crashed before its first claim, a
    cell still held by a runner elsewhere) is reported with the logs to read."""
    from .claims import is_live

    runs = tracker.runs_by_cell()
    for cell in todo:
        statuses = [r.data.tags.get("status") for r in runs.get(cell.id, [])]
        if "finished" in statuses:
            report.finished.append(cell.id)
        elif "failed" in statuses:
            failed = next(r for r in runs[cell.id] if r.data.tags.get("status") == "failed")
            report.failed[cell.id] = failed.data.tags.get("error", "failed")
        elif any(is_live(r, tracker.claims) for r in runs.get(cell.id, [])):
            report.busy.append(cell.id)  # held by a runner outside this array
        else:
            report.failed[cell.id] = f"not run by any array task: read the task logs in {folder}"
    return report
