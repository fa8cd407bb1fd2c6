"""The Ray executor, with the real things: a local Ray instance with 2 workers and a real
``mlflow server`` on 127.0.0.1. A worker is SIGKILLed mid-cell; the cell is recorded as
failed, a re-run finishes it, and every cell ends finished exactly once with the same
results as a sequential run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from helpers_server import free_port, start_mlflow_server, stop, wait_healthy
from mlflow.tracking import MlflowClient

from tasks.vision.fashion_mnist import DEBIAN_DIR

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(DEBIAN_DIR).is_dir(), reason="needs Debian's dataset-fashion-mnist")]
ray = pytest.importorskip("ray")

ROOT = Path(__file__).resolve().parent.parent
SWEEP = {"name": "ray", "profile": "smoke", "seeds": [0, 1], "ratios": [0.5],
         "tasks": [{"name": "fashion-mnist", "options": {"epochs": 4}}], "methods": ["random", "magnitude"]}


def command(*args: str) -> list[str]:
    return [sys.executable, "-m", "benchmark.cli", "run", "sweep.yaml", *args]


def finished_results(url: str, experiment: str) -> dict[str, float]:
    client = MlflowClient(url)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=1000)
    counts = Counter(r.data.tags["cell_id"] for r in runs if r.data.tags["status"] == "finished")
    assert set(counts.values()) == {1}, counts  # never twice
    return {r.data.tags["cell_id"]: r.data.metrics["test_accuracy"] for r in runs
            if r.data.tags["status"] == "finished"}


def ray_workers_running_a_cell() -> list[int]:
    """PIDs of Ray worker processes inside a cell (Ray titles them after the task)."""
    out = subprocess.run(["ps", "-eo", "pid,args"], capture_output=True, text=True).stdout
    return [int(line.split()[0]) for line in out.splitlines() if "ray::remote_cell" in line]


def test_ray_executor_survives_a_killed_worker_and_matches_a_sequential_run(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_mlflow_server(tmp_path, port)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(SWEEP))
    try:
        wait_healthy(url, server)
        sequential = subprocess.run(command("--tracking-uri", url, "--experiment", "sequential"), cwd=tmp_path,
                                    env=env, capture_output=True, text=True, timeout=900)
        assert sequential.returncode == 0, sequential.stderr
        expected = finished_results(url, "sequential")
        assert len(expected) == 6  # 2 seeds x (full + 2 methods)

        first = subprocess.Popen(command("--tracking-uri", url, "--executor", "ray"), cwd=tmp_path, env=env,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 600
        while not ray_workers_running_a_cell() and time.time() < deadline and first.poll() is None:
            time.sleep(0.2)
        time.sleep(1.0)  # inside the cell's training, not at its start
        victims = ray_workers_running_a_cell()
        assert victims, "no Ray worker was seen running a cell"
        os.kill(victims[0], signal.SIGKILL)
        output = first.communicate(timeout=900)[0]
        assert first.returncode == 1, output  # the killed cell is reported failed
        assert "failed 1" in output

        client = MlflowClient(url)
        runs = client.search_runs([client.get_experiment_by_name("ray").experiment_id])
        failed = [r for r in runs if r.data.tags["status"] == "failed"]
        assert len(failed) == 1 and failed[0].info.status == "FAILED"
        assert "Worker" in failed[0].data.tags["error"] or "died" in failed[0].data.tags["error"]

        again = subprocess.run(command("--tracking-uri", url, "--executor", "ray"), cwd=tmp_path, env=env,
                               capture_output=True, text=True, timeout=900)
        assert again.returncode == 0, again.stderr
        assert "1 cell(s) to run, 5 already finished" in again.stderr
        assert finished_results(url, "ray") == expected  # same cells, same results, each once
    finally:
        stop(server)
        subprocess.run([str(Path(sys.executable).parent / "ray"), "stop", "--force"], capture_output=True)
