"""Sweeps on the real things: an MLflow server on a real PostgreSQL (started by a fixture), 4
local runners on one sweep against it, and a real single-node Slurm (slurmctld, slurmd, munge)
running the sweep as a job array with at most 2 tasks in flight, a task preempted with
``scancel --signal=TERM`` (or USR1, as a site's preemption or ``--signal=USR1@N`` sends) and
requeued, and ``prunebench status`` showing the array's tasks. Each ends with every cell finished exactly once.
Skipped where the packages are missing, unless PRUNEBENCH_REQUIRE_CLUSTER=1 (CI)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from helpers_cluster import postgres, slurm  # noqa: F401  (session fixtures)
from helpers_server import free_port, stop, wait_healthy
from helpers_tiny import write_tiny_fashion_mnist
from mlflow.tracking import MlflowClient

from benchmark.sweeps.slurm_executor import array_status

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "benchmark.cli", *args]


def base_env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
            "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


@pytest.fixture(scope="module")
def server(postgres, tmp_path_factory):  # noqa: F811
    """``prunebench server`` on a fresh PostgreSQL database, its password from a file."""
    folder = tmp_path_factory.mktemp("pgserver")
    uri = postgres.create_database("mlflow")
    (folder / "pw").write_text(postgres.password + "\n")
    os.chmod(folder / "pw", 0o600)
    port = free_port()
    with open(folder / "server.log", "ab") as log:
        process = subprocess.Popen(cli("server", "--backend-store-uri", uri, "--password-file", str(folder / "pw"),
                                       "--dir", str(folder), "--port", str(port), "--workers", "2"),
                                   env=base_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    process.log_path = folder / "server.log"
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, process, timeout=300)
        yield url, process, postgres
    finally:
        stop(process)


def sweep_file(folder: Path, name: str, epochs: int = 1, seeds=(0, 1)) -> Path:
    data = write_tiny_fashion_mnist(folder / "fm", n_train=400, n_test=100)
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({
        "name": name, "profile": "smoke", "seeds": list(seeds), "ratios": [0.5],
        "tasks": [{"name": "fashion-mnist", "data_dir": str(data), "options": {"epochs": epochs}}],
        "methods": ["random", "magnitude", "el2n"]}))
    return path


def cell_statuses(url: str, experiment: str) -> dict[str, list[str]]:
    client = MlflowClient(url)
    found = client.get_experiment_by_name(experiment)
    runs = client.search_runs([found.experiment_id], max_results=1000)
    statuses: dict[str, list[str]] = {}
    for run in runs:
        statuses.setdefault(run.data.tags["cell_id"], []).append(run.data.tags["status"])
    return statuses


def finished_once(statuses: dict[str, list[str]], cells: int) -> None:
    finished = Counter({cell: s.count("finished") for cell, s in statuses.items()})
    assert len(statuses) == cells, statuses  # no lost cell
    assert set(finished.values()) == {1}, statuses  # each finished exactly once


def test_the_server_has_no_password_in_its_command_line(server):
    url, process, pg = server
    out = subprocess.run(["ps", "-ww", "-eo", "args"], capture_output=True, text=True).stdout
    assert pg.password not in out
    assert "postgresql://prunebench@127.0.0.1" in out  # the server is the PostgreSQL-backed one


def test_four_local_runners_on_postgres_lose_and_duplicate_nothing(server, tmp_path):
    url, _, _ = server
    sweep = sweep_file(tmp_path, "pg4")  # 8 cells
    # the experiment is created once, before the runners fan out (as the Slurm driver does)
    subprocess.run(cli("run", str(sweep), "--tracking-uri", url, "--max-cells", "1"), env=base_env(), check=True,
                   capture_output=True, timeout=600)
    runners = [subprocess.Popen(cli("run", str(sweep), "--tracking-uri", url, "--quiet"), env=base_env(),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outputs = [r.communicate(timeout=900)[0] for r in runners]
    assert all(r.returncode == 0 for r in runners), outputs
    finished_once(cell_statuses(url, "pg4"), 8)
    ran = sum(int(o.split("finished ")[-1].split(",")[0]) for o in outputs)
    assert ran == 7, outputs  # the 7 cells left, each by one runner


def test_bad_postgres_uri_or_credentials_are_one_line_before_anything(postgres, tmp_path):  # noqa: F811
    sweep = sweep_file(tmp_path, "bad")
    wrong = f"postgresql://prunebench:WRONGPASS@127.0.0.1:{postgres.port}/postgres"
    out = subprocess.run(cli("run", str(sweep), "--tracking-uri", wrong), env={**base_env(), "PGPASSWORD": ""},
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 3, out.stderr
    error = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "password authentication failed" in error[0] and "WRONGPASS" not in out.stderr
    assert "check the user and password" in error[0]
    unreachable = f"postgresql://prunebench:SECRET@127.0.0.1:{free_port()}/postgres"
    out = subprocess.run(cli("run", str(sweep), "--tracking-uri", unreachable), env=base_env(),
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 3 and "SECRET" not in out.stderr, out.stderr
    assert "refused" in out.stderr.lower() and "Fix: check that the database server is running" in out.stderr
    assert len([line for line in out.stderr.splitlines() if line.startswith("error:")]) == 1


def test_unknown_partition_is_refused_before_the_store_is_touched(slurm, tmp_path):  # noqa: F811
    sweep = sweep_file(tmp_path, "nopart")
    out = subprocess.run(cli("run", str(sweep), "--executor", "slurm", "--partition", "gpu-a100",
                             "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"),
                         env={**base_env(), "SLURM_CONF": str(slurm.conf)}, capture_output=True, text=True, timeout=600)
    assert out.returncode == 2
    assert out.stderr.strip() == ("error: partition 'gpu-a100' does not exist on this cluster (it has debug); give "
                                  "one of those with --partition or 'slurm: {partition: ...}', or leave it out "
                                  "for the default")
    assert not (tmp_path / "m.db").exists()


def test_slurm_job_array_against_postgres_runs_every_cell_once(slurm, server, tmp_path):  # noqa: F811
    url, _, _ = server
    sweep = sweep_file(tmp_path, "slurm8")  # 8 cells
    logs = tmp_path / "logs"
    out = subprocess.run(cli("run", str(sweep), "--executor", "slurm", "--max-in-flight", "2", "--time", "10",
                             "--tracking-uri", url, "--slurm-logs", str(logs)),
                         env={**base_env(), "SLURM_CONF": str(slurm.conf)}, capture_output=True, text=True, timeout=900)
    print(out.stderr)
    assert out.returncode == 0, out.stderr + slurm.log("slurmctld")
    assert "submitted Slurm job array" in out.stderr and "2 task(s) for 8 unfinished cell(s), at most 2 at once" in out.stderr
    assert "0 pending, 0 running, 2 done (of 2 tasks)" in out.stderr
    assert "finished 8, failed 0" in out.stderr
    finished_once(cell_statuses(url, "slurm8"), 8)
    task_logs = sorted(logs.glob("*_log.out"))
    assert len(task_logs) == 2, list(logs.iterdir())
    assert all("no unclaimed cell left" in p.read_text() for p in task_logs)
    array = re.search(r"submitted Slurm job array (\d+)", out.stderr)[1]
    shown = subprocess.run(cli("status", str(sweep), "--tracking-uri", url), env={**base_env(), "SLURM_CONF": str(slurm.conf)},
                           capture_output=True, text=True, timeout=600)
    assert shown.returncode == 0, shown.stderr
    assert "8 cells: 8 finished, 0 running, 0 failed, 0 pending" in shown.stdout
    assert f"Slurm job array {array}: 0 pending, 0 running, 2 done (of 2 tasks)" in shown.stdout


@pytest.mark.parametrize("signal", ["TERM", "USR1"])
def test_a_preempted_task_is_requeued_and_the_sweep_completes_once(slurm, server, tmp_path, signal):  # noqa: F811
    url, _, _ = server
    name = f"preempt-{signal.lower()}"
    sweep = sweep_file(tmp_path, name, epochs=40, seeds=(0,))  # 4 cells of several seconds each
    logs = tmp_path / "logs"
    env = {**base_env(), "SLURM_CONF": str(slurm.conf)}
    driver = subprocess.Popen(cli("run", str(sweep), "--executor", "slurm", "--max-in-flight", "1", "--time", "10",
                                  "--tracking-uri", url, "--slurm-logs", str(logs)),
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    client = MlflowClient(url)
    deadline, victim, during = time.time() + 600, None, None
    while time.time() < deadline and driver.poll() is None:
        found = client.get_experiment_by_name(name)
        running = [r for r in client.search_runs([found.experiment_id])
                   if r.data.tags["status"] == "running"] if found else []
        if running:
            time.sleep(2)  # inside the cell's training
            victim = running[0].data.tags["cell_id"]
            jobs = subprocess.run(["squeue", "-h", "-r", "-n", f"prunebench-{name}", "-t", "R", "-o", "%i"], env=env,
                                  capture_output=True, text=True).stdout.split()
            during = array_status(client.get_experiment_by_name(name).tags)  # what `status` prints meanwhile
            subprocess.run(["scancel", f"--signal={signal}", jobs[0]], env=env, check=True)
            break
        time.sleep(0.5)
    output = driver.communicate(timeout=900)[0]
    print(output)
    assert victim is not None, output
    assert driver.returncode == 0, output + slurm.log("slurmctld")
    statuses = cell_statuses(url, name)
    finished_once(statuses, 4)
    # the signal never reads as the method's fault: no cell failed (submitit's exit raised inside a
    # hook once failed the cell, and the task went on to the next one)
    assert not any("failed" in runs for runs in statuses.values()), statuses
    log = next(logs.glob("*_log.out")).read_text()
    closed = re.findall(r"cell (\w+) closed as interrupted; requeueing this task", log)
    assert closed == [victim] or (len(closed) == 1 and statuses[victim] == ["finished"]), (closed, victim, log)
    assert "interrupted" in statuses[closed[0]], statuses  # the cell running at the signal, closed and run again
    assert "restart 1" in log  # the same array task, requeued by Slurm, resumed the sweep
    assert during == f"Slurm job array {jobs[0]}: 0 pending, 1 running, 0 done (of 1 tasks)"


def test_the_postgres_server_serves_the_narrow_reads(server, capsys):
    """``prunebench server`` on PostgreSQL answers the finished cell ids and the leaderboard's
    fields with SQL on its database, the same as MLflow's REST search gives; the claims' tags
    index is on the database."""
    import math

    import psycopg

    from benchmark.boards.leaderboard import RUN_METRICS, RUN_PARAMS, RUN_TAGS
    from benchmark.sweeps.cells import Cell
    from benchmark.sweeps.store_query import TAG_INDEX, StoreQuery
    from benchmark.sweeps.tracking import Tracker

    url, process, pg = server
    tracker = Tracker(url, "pgreads")
    tags = {"family": "data", "provenance": "reference-code", "data_origin": "real", "metric": "accuracy"}
    cells = [Cell("fashion-mnist", "random", 0.5, seed, "smoke", label="random") for seed in range(4)]
    for seed, cell in enumerate(cells[:3]):
        tracker.start_cell(cell, "pgreads", {}, tags).finish(
            {"test_accuracy": 0.5 + seed / 10, "n_train": 100, "peak_device_mb": float("nan")})
    tracker.start_cell(cells[3], "pgreads", {}, tags).fail(RuntimeError("boom"), "Traceback: boom")
    before = len(process.log_path.read_text(errors="replace"))
    served = StoreQuery(tracker.client, url)
    assert served.finished_cell_ids(tracker.experiment_id) == {c.id for c in cells[:3]}
    fast = served.finished_runs(tracker.experiment_id, RUN_TAGS, RUN_PARAMS, RUN_METRICS, ("test_",))
    slow = StoreQuery(tracker.client, url, sql=False).finished_runs(
        tracker.experiment_id, RUN_TAGS, RUN_PARAMS, RUN_METRICS, ("test_",))
    assert [r.run_id for r in fast] == [r.run_id for r in slow] and len(fast) == 3
    for a, b in zip(fast, slow):
        assert a.tags == {k: v for k, v in b.tags.items() if k in RUN_TAGS}
        assert a.params == {k: v for k, v in b.params.items() if k in RUN_PARAMS}
        wanted = {k: v for k, v in b.metrics.items() if k in RUN_METRICS or k.startswith("test_")}
        assert a.metrics.keys() == wanted.keys() and math.isnan(a.metrics["peak_device_mb"])
        assert all(a.metrics[k] == v for k, v in wanted.items() if not math.isnan(v))
    log = process.log_path.read_text(errors="replace")[before:]
    assert log.count("POST /prunebench/api/v1/finished-cells HTTP/1.1\" 200") == 1
    assert log.count("POST /prunebench/api/v1/finished-runs HTTP/1.1\" 200") == 1
    assert "note:" not in capsys.readouterr().err
    with psycopg.connect(f"postgresql://{pg.user}@{pg.host}:{pg.port}/mlflow", password=pg.password) as conn:
        assert conn.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", (TAG_INDEX,)).fetchone()
