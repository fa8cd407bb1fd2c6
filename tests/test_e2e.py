"""End to end through the console command, on real data and a real MLflow server (slow)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from helpers_server import free_port, start_mlflow_server, stop, wait_healthy

from tasks.vision.fashion_mnist import DEBIAN_DIR

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(DEBIAN_DIR).is_dir(), reason="needs Debian's dataset-fashion-mnist")]

ROOT = Path(__file__).resolve().parent.parent


def cli(*args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    result = subprocess.run([sys.executable, "-m", "benchmark.cli", *args], cwd=cwd, env=env,
                            capture_output=True, text=True, timeout=timeout)
    return result


def test_real_fashion_mnist_sweep_default_store_and_leaderboard(tmp_path):
    """A cut-down cpu-profile sweep on the real files, in the default ./mlflow.db, then the board."""
    sweep = {"name": "e2e", "profile": "cpu", "seeds": [0], "ratios": [0.5],
             "tasks": [{"name": "fashion-mnist", "options": {"epochs": 2, "train_limit": 8000}}],
             "methods": ["random", {"name": "el2n", "options": {"proxy_runs": 1, "score_epochs": 1}},
                         "magnitude", "random-weights"]}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    run = cli("run", "sweep.yaml", "--leaderboard", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "mlflow.db").is_file()
    assert "finished 5, failed 0" in run.stderr

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.get_experiment_by_name("e2e")
    runs = client.search_runs([experiment.experiment_id])
    cells = [r for r in runs if "cell_id" in r.data.tags]
    summaries = [r for r in runs if r.data.tags.get("run_type") == "summary"]
    assert len(cells) == 5 and len(summaries) == 5 and len(runs) == 10  # one summary run per board row
    by_label = {r.data.tags["label"]: r.data.metrics["test_accuracy"] for r in cells}
    assert set(by_label) == {"full", "random", "el2n", "magnitude", "random-weights"}
    for summary in summaries:  # one seed: each row's mean is its cell's figure
        assert summary.data.metrics["mean"] == pytest.approx(by_label[summary.data.params["method"]], rel=1e-5)
    assert by_label["full"] > 0.75  # 2 epochs on 7,200 real images: well above chance (0.1)

    board = (tmp_path / "results" / "e2e.md").read_text()
    # one seed: the board says so once, and its lead tables show the values only
    assert board.count("One seed: no intervals") == 1
    for label in ("random", "el2n", "magnitude", "random-weights"):
        # the lead table (method | r=0.5), the first row of the label on the board
        row = next(line for line in board.splitlines() if line.startswith(f"| {label} ") and line.count("|") == 3)
        shown = float(re.search(r"[0-9]+\.[0-9]+", row.split("|")[2]).group(0))
        assert shown == pytest.approx(by_label[label], abs=5e-5)
    assert f"{by_label['full']:.4f}" in board

    again = cli("run", "sweep.yaml", cwd=tmp_path)
    assert again.returncode == 0 and "0 cell(s) to run, 5 already finished" in again.stderr


def test_sweep_against_a_real_mlflow_server(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_mlflow_server(tmp_path, port)
    try:
        wait_healthy(url, server)
        sweep = {"name": "remote", "profile": "smoke", "seeds": [0, 1], "ratios": [0.5],
                 "tasks": ["fashion-mnist"], "methods": ["random", "magnitude"]}
        (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
        run = cli("run", "sweep.yaml", "--tracking-uri", url, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        assert not (tmp_path / "mlflow.db").exists()  # nothing went to the default store

        client = MlflowClient(url)
        runs = client.search_runs([client.get_experiment_by_name("remote").experiment_id])
        assert sorted(r.data.tags["status"] for r in runs) == ["finished"] * 6
        assert len({r.data.tags["cell_id"] for r in runs}) == 6

        again = cli("run", "sweep.yaml", "--tracking-uri", url, cwd=tmp_path)
        assert "0 cell(s) to run, 6 already finished" in again.stderr
        board = cli("leaderboard", "--experiment", "remote", "--tracking-uri", url, "--out", "board", cwd=tmp_path)
        assert board.returncode == 0 and "| magnitude " in (tmp_path / "board" / "remote.md").read_text()
        assert (tmp_path / "board" / "remote.html").is_file()
        # the board is also a run of the 'leaderboards' experiment, its artifacts stored through the server
        boards = client.search_runs([client.get_experiment_by_name("leaderboards").experiment_id])
        assert len(boards) == 1 and boards[0].data.tags["source_experiment"] == "remote"
        logged = {a.path for a in client.list_artifacts(boards[0].info.run_id)}
        assert {"leaderboard.html", "leaderboard.md", "plots", "tables"} <= logged
        html = client.download_artifacts(boards[0].info.run_id, "leaderboard.html", str(tmp_path))
        assert Path(html).read_text(encoding="utf-8") == (tmp_path / "board" / "remote.html").read_text(encoding="utf-8")
    finally:
        stop(server)


def test_ui_serves_the_same_store(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    ui = subprocess.Popen([sys.executable, "-m", "benchmark.cli", "ui", "--port", str(port),
                           "--tracking-uri", f"sqlite:///{tmp_path}/mlflow.db"],
                          cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", ui)
    finally:
        stop(ui)
