"""A real PostgreSQL server and a real single-node Slurm cluster for the cluster tests, each started
once per test session in a temporary folder and stopped at its end.

- PostgreSQL: Debian's ``initdb`` + ``pg_ctl`` on 127.0.0.1 and a free port, with a generated
  password (scram-sha-256). Postgres refuses to run as root, so under root it runs as the
  ``postgres`` user (the folder is handed to it); otherwise as the current user.
- Slurm: ``munged`` with a generated key, ``slurmctld -D`` and ``slurmd -D`` from a minimal
  ``slurm.conf`` written here (one node = this host, one partition ``debug``, proctrack/linuxproc,
  task/none: no cgroups), on free ports, state and spool in the folder. ``SLURM_CONF`` is set for
  the session so that ``sbatch``, ``squeue`` and submitit find it. The daemons run as root
  (they start jobs as the submitting user).

Both skip with the reason when the packages are missing (``scripts/ensure-cluster.sh`` installs
them), or fail instead when ``PRUNEBENCH_REQUIRE_CLUSTER=1`` (as in CI).
"""
from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmark.sweeps.server import free_port


def unavailable(reason: str) -> None:
    """Skip, or fail where the cluster tests must run (CI)."""
    if os.environ.get("PRUNEBENCH_REQUIRE_CLUSTER") == "1":
        pytest.fail(f"PRUNEBENCH_REQUIRE_CLUSTER=1 but {reason}; run scripts/ensure-cluster.sh as root")
    pytest.skip(f"{reason} (scripts/ensure-cluster.sh installs it)")


def _pg_bin(tool: str) -> str | None:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"))
    return found[-1] if found else shutil.which(tool)


@dataclass
class Postgres:
    host: str
    port: int
    user: str
    password: str
    database: str
    folder: Path

    def uri(self, with_password: bool = False) -> str:
        secret = f":{self.password}" if with_password else ""
        return f"postgresql://{self.user}{secret}@{self.host}:{self.port}/{self.database}"

    def env(self) -> dict[str, str]:
        """The environment a client needs: the password by variable, never in a command line."""
        return {**os.environ, "PGPASSWORD": self.password}

    def create_database(self, name: str) -> str:
        subprocess.run([_pg_bin("createdb"), "-h", self.host, "-p", str(self.port), "-U", self.user, name],
                       env=self.env(), check=True, capture_output=True, timeout=60)
        return f"postgresql://{self.user}@{self.host}:{self.port}/{name}"


def _as_postgres_user() -> tuple[list[str], int | None]:
    """The command prefix that runs a tool as a non-root user, and that user's uid (None: as is)."""
    if os.geteuid() != 0:
        return [], None
    try:
        uid = pwd.getpwnam("postgres").pw_uid
    except KeyError:
        unavailable("PostgreSQL refuses to run as root and there is no 'postgres' user")
    return ["runuser", "-u", "postgres", "--"], uid


def start_postgres() -> tuple[Postgres, callable]:
    initdb, pg_ctl = _pg_bin("initdb"), _pg_bin("pg_ctl")
    if not initdb or not pg_ctl:
        unavailable("PostgreSQL (initdb, pg_ctl) is not installed")
    try:
        import psycopg  # noqa: F401  (SQLAlchemy 2.1's driver for postgresql:// stores)
    except ImportError:
        unavailable("psycopg is not installed (pip install 'prunebench[postgres]')")
    prefix, uid = _as_postgres_user()
    # not under pytest's tmp folder: that one is private to root, and postgres must enter it
    folder = Path(tempfile.mkdtemp(prefix="prunebench-pg-"))
    password = secrets.token_urlsafe(16)
    (folder / "pwfile").write_text(password + "\n")
    if uid is not None:
        os.chown(folder, uid, -1)
        os.chown(folder / "pwfile", uid, -1)
    os.chmod(folder / "pwfile", 0o600)
    data, port = folder / "data", free_port()
    subprocess.run([*prefix, initdb, "-D", str(data), "-U", "prunebench", "--auth=scram-sha-256",
                    f"--pwfile={folder / 'pwfile'}", "-E", "UTF8"], check=True, capture_output=True, timeout=300)
    options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
    started = subprocess.run([*prefix, pg_ctl, "-D", str(data), "-l", str(folder / "postgres.log"), "-o", options,
                              "-w", "-t", "120", "start"], capture_output=True, text=True, timeout=180)
    if started.returncode != 0:
        log = (folder / "postgres.log").read_text(errors="replace")[-2000:] if (folder / "postgres.log").exists() else ""
        raise RuntimeError(f"pg_ctl start failed: {started.stderr}\n{log}")
    server = Postgres("127.0.0.1", port, "prunebench", password, "postgres", folder)

    def stop() -> None:
        subprocess.run([*prefix, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(folder, ignore_errors=True)

    return server, stop


@pytest.fixture(scope="session")
def postgres():
    """A PostgreSQL server for the session (user ``prunebench``, password in ``.password``)."""
    server, stop = start_postgres()
    try:
        yield server
    finally:
        stop()


# --- Slurm ------------------------------------------------------------------------------------

SLURM_TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol", "scancel")


@dataclass
class Slurm:
    folder: Path
    conf: Path
    node: str
    partition: str = "debug"

    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def log(self, daemon: str) -> str:
        path = self.folder / f"{daemon}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def _node_cpus() -> int:
    return max(1, len(os.sched_getaffinity(0)))


SLURM_CONF = """\
ClusterName=prunebench-test
SlurmctldHost={host}
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
MinJobAge=30
KillWait=10
SchedulerParameters=sched_interval=2
InactiveLimit=0
NodeName={node} NodeHostname={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory=4000 State=UNKNOWN
PartitionName=debug Nodes={node} Default=YES MaxTime=INFINITE State=UP
"""


def start_slurm() -> tuple[Slurm, callable]:
    missing = [tool for tool in SLURM_TOOLS if shutil.which(tool) is None and not Path(f"/usr/sbin/{tool}").exists()]
    if missing:
        unavailable(f"Slurm / munge is not installed ({', '.join(missing)} not found)")
    if os.geteuid() != 0:
        unavailable("the single-node Slurm needs root (slurmd starts jobs as their users)")
    try:
        import submitit  # noqa: F401
    except ImportError:
        unavailable("submitit is not installed (pip install 'prunebench[slurm]')")
    which = lambda tool: shutil.which(tool) or f"/usr/sbin/{tool}"  # noqa: E731
    folder = Path(tempfile.mkdtemp(prefix="prunebench-slurm-"))
    for sub in ("state", "spool", "munge"):
        (folder / sub).mkdir()
    key = folder / "munge" / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    os.chmod(key, 0o400)
    os.chmod(folder / "munge", 0o700)
    socket_path = folder / "munge" / "munge.socket"
    processes: list[subprocess.Popen] = []

    def stop() -> None:
        for process in reversed(processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    process.kill()
        shutil.rmtree(folder, ignore_errors=True)

    host = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(SLURM_CONF.format(host=host, node=host, folder=folder, munge_socket=socket_path,
                                      ctld_port=free_port(), slurmd_port=free_port(), cpus=_node_cpus()))
    cluster = Slurm(folder, conf, host)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    try:
        processes.append(subprocess.Popen(
            [which("munged"), "-F", "--force", f"--key-file={key}", f"--socket={socket_path}",
             f"--pid-file={folder / 'munge' / 'munged.pid'}", f"--log-file={folder / 'munged.log'}",
             f"--seed-file={folder / 'munge' / 'munged.seed'}"],
            stdout=subprocess.DEVNULL, stderr=open(folder / "munged.err", "ab")))
        _wait(lambda: socket_path.exists(), 30, "munged did not create its socket", folder / "munged.err")
        for daemon in ("slurmctld", "slurmd"):
            extra = ["-i"] if daemon == "slurmctld" else ["-N", host]  # -i: ignore stale state
            processes.append(subprocess.Popen([which(daemon), "-D", "-f", str(conf), *extra], env=env,
                                              stdout=subprocess.DEVNULL, stderr=open(folder / f"{daemon}.err", "ab")))
        _wait(lambda: _node_state(env) in ("idle", "mixed", "allocated"), 120,
              "the Slurm node did not come up idle", folder / "slurmctld.log", folder / "slurmd.log")
    except BaseException:
        stop()
        raise
    return cluster, stop


def _node_state(env: dict[str, str]) -> str:
    out = subprocess.run(["sinfo", "-h", "-N", "-o", "%t"], env=env, capture_output=True, text=True, timeout=30)
    return out.stdout.strip().rstrip("*~#") if out.returncode == 0 else ""


def _wait(condition, timeout: float, what: str, *logs: Path) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.5)
    tails = "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-1500:]}" for p in logs if p.exists())
    raise RuntimeError(f"{what} within {timeout:.0f}s\n{tails}")


@pytest.fixture(scope="session")
def slurm():
    """A single-node Slurm cluster for the session; ``SLURM_CONF`` points at it meanwhile."""
    cluster, stop = start_slurm()
    before = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(cluster.conf)
    try:
        yield cluster
    finally:
        if before is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = before
        stop()
