"""Real servers for the integration tests: the package's own helpers, named for the tests,
plus a bare ``mlflow server`` (the tests check the harness against MLflow's own command too)."""
from __future__ import annotations

import subprocess
from pathlib import Path

from benchmark.sweeps.server import free_port, wait_healthy  # noqa: F401  (re-exported for the tests)
from benchmark.sweeps.server import stop_server as stop  # noqa: F401


def start_mlflow_server(directory: Path, port: int) -> subprocess.Popen:
    """``mlflow server`` itself on 127.0.0.1:``port``, store and artifacts in ``directory``,
    output in ``directory/mlflow-server.log`` (a pipe nobody reads would block it)."""
    import sys

    with open(directory / "mlflow-server.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{directory}/server.db",
             "--artifacts-destination", str(directory / "artifacts"), "--host", "127.0.0.1", "--port", str(port),
             "--workers", "1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    process.log_path = directory / "mlflow-server.log"
    return process
