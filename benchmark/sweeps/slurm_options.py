"""What each Slurm array task of a sweep asks for, and whether the cluster can give it.

Resources come from three places, the later winning: the task's recipe per profile
(:meth:`Task.resources`, Ray's keys, mapped to Slurm's, and :meth:`Task.cell_minutes` for the
time limit), the sweep file's ``slurm:`` mapping, and the command line. :func:`preflight`
checks them against the cluster (``sbatch`` on PATH, the partition exists, the time limit
covers one cell) before anything is submitted or claimed; each problem is one line naming
the value and the fix.
"""
from __future__ import annotations

import math
import re
import shutil
import subprocess
from dataclasses import asdict, dataclass, replace
from typing import Any

#: the keys a sweep's ``slurm:`` mapping (and the matching command-line options) may set
SLURM_KEYS = ("partition", "account", "qos", "time", "cpus_per_task", "gpus_per_task", "mem")
_MEM = re.compile(r"^\d+[KMGT]?$")
_TIME = re.compile(r"^(?:(\d+)-)?(\d+)(?::(\d+))?(?::(\d+))?$")


class SlurmError(ValueError):
    """Bad Slurm resources, or a cluster that cannot run them: one line with the fix."""


@dataclass(frozen=True)
class SlurmOptions:
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time: int = 10  # minutes per array task
    cpus_per_task: int = 1
    gpus_per_task: int = 0
    mem: str | None = None  # Slurm's notation: 4G, 500M

    def sbatch_parameters(self) -> dict[str, Any]:
        """The parameters as submitit's ``SlurmExecutor.update_parameters`` takes them."""
        params = {k: v for k, v in asdict(self).items() if v not in (None, 0) or k == "time"}
        return params

    def describe(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self).items() if v not in (None, 0))


def parse_minutes(value: Any, where: str) -> int:
    """Slurm's time formats (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``) or a number of
    minutes, as whole minutes (rounded up)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value <= 0:
            raise SlurmError(f"{where}: time must be > 0 minutes, got {value!r}")
        return math.ceil(value)
    match = _TIME.match(str(value).strip()) if isinstance(value, str) else None
    if not match:
        raise SlurmError(f"{where}: time {value!r} is not a Slurm time limit; use minutes (30), "
                         "HH:MM:SS (01:30:00) or D-HH:MM (1-12:00)")
    days, a, b, c = match.groups()
    if days is not None:  # D-HH[:MM[:SS]]
        seconds = int(days) * 86400 + int(a) * 3600 + int(b or 0) * 60 + int(c or 0)
    elif c is not None:  # HH:MM:SS
        seconds = int(a) * 3600 + int(b) * 60 + int(c)
    elif b is not None:  # MM:SS
        seconds = int(a) * 60 + int(b)
    else:
        seconds = int(a) * 60
    if seconds <= 0:
        raise SlurmError(f"{where}: time must be > 0, got {value!r}")
    return math.ceil(seconds / 60)


def check_keys(given: Any, where: str = "slurm") -> list[str]:
    """Problems with a sweep's ``slurm:`` mapping (for the sweep's own validation)."""
    if not isinstance(given, dict):
        return [f"{where}: must be a mapping with keys from {list(SLURM_KEYS)}, got {given!r}"]
    problems = [f"{where}: unknown key {k!r}; valid keys: {list(SLURM_KEYS)}" for k in given if k not in SLURM_KEYS]
    if not problems:
        try:
            _apply(SlurmOptions(), given, where)
        except SlurmError as error:
            problems.append(str(error))
    return problems


def _apply(options: SlurmOptions, given: dict[str, Any], where: str) -> SlurmOptions:
    changes: dict[str, Any] = {}
    for key, value in given.items():
        if value is None:
            continue
        if key == "time":
            changes[key] = parse_minutes(value, where)
        elif key in ("cpus_per_task", "gpus_per_task"):
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if key == "cpus_per_task" else 0):
                raise SlurmError(f"{where}: {key} must be a whole number >= "
                                 f"{1 if key == 'cpus_per_task' else 0}, got {value!r}")
            changes[key] = value
        elif key == "mem":
            text = str(value).upper()
            if not _MEM.match(text):
                raise SlurmError(f"{where}: mem {value!r} is not a Slurm memory size; use e.g. 4G or 500M")
            changes[key] = text
        else:
            if not isinstance(value, str) or not value.strip() or any(c.isspace() for c in value):
                raise SlurmError(f"{where}: {key} must be a name without spaces, got {value!r}")
            changes[key] = value
    return replace(options, **changes)


def from_recipe(tasks: list[Any]) -> tuple[SlurmOptions, int]:
    """What the sweep's tasks ask for under their profile (the most any of them asks), and the
    longest estimate of one cell in minutes. The default time limit is twice that estimate:
    an array task runs cells until none is left, and is requeued at its limit."""
    cpus = max((math.ceil(t.resources().get("num_cpus", 1)) for t in tasks), default=1)
    gpus = max((math.ceil(t.resources().get("num_gpus", 0)) for t in tasks), default=0)
    memory = max((t.resources().get("memory", 0) for t in tasks), default=0)
    estimate = max((t.cell_minutes() for t in tasks), default=10)
    mem = f"{math.ceil(memory / 2**20)}M" if memory else None
    return SlurmOptions(time=2 * estimate, cpus_per_task=max(1, cpus), gpus_per_task=gpus, mem=mem), estimate


def resolve(tasks: list[Any], sweep_slurm: dict[str, Any], cli: dict[str, Any]) -> tuple[SlurmOptions, int]:
    """(options, one cell's estimate in minutes): the recipe's, then the sweep's, then the command line's."""
    options, estimate = from_recipe(tasks)
    options = _apply(options, sweep_slurm or {}, "sweep 'slurm'")
    options = _apply(options, {k: v for k, v in cli.items() if v is not None}, "command line")
    return options, estimate


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=60)


def partitions() -> list[str]:
    """The cluster's partition names (``sinfo``), the default one first."""
    out = _run(["sinfo", "-h", "-o", "%P"])
    if out.returncode != 0:
        said = (out.stderr.strip().splitlines() or [str(out.returncode)])[-1]
        raise SlurmError(f"no Slurm controller answers `sinfo` ({said}): run this on a node of the cluster, "
                         "with SLURM_CONF pointing at its slurm.conf if it is not in /etc/slurm")
    names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
    return sorted({n.rstrip("*") for n in names}, key=lambda n: (not any(m == n + "*" for m in names), n))


def preflight(options: SlurmOptions, estimate: int, dry_run: bool = False) -> None:
    """Raise :class:`SlurmError` if the cluster cannot run ``options`` (nothing submitted yet)."""
    if options.time < estimate:
        raise SlurmError(f"time limit {options.time} min is shorter than one cell of this profile "
                         f"(estimated {estimate} min): every task would be stopped mid-cell and requeued "
                         f"forever; give --time {estimate} or more (or 'slurm: {{time: ...}}' in the sweep)")
    if dry_run:
        return
    try:
        import submitit  # noqa: F401
    except ImportError:
        raise SlurmError("the Slurm executor needs submitit: pip install 'prunebench[slurm]' "
                         "(or pip install submitit==1.5.2)") from None
    for tool in ("sbatch", "squeue", "sinfo", "scontrol"):
        if shutil.which(tool) is None:
            raise SlurmError(f"{tool} not found on PATH: run this on a Slurm login node (or load the "
                             "cluster's slurm module), or use --executor local / ray")
    known = partitions()  # also: is a controller reachable at all
    if options.partition is not None:
        if options.partition not in known:
            raise SlurmError(f"partition {options.partition!r} does not exist on this cluster (it has "
                             f"{', '.join(known) or 'none'}); give one of those with --partition or "
                             "'slurm: {partition: ...}', or leave it out for the default")
