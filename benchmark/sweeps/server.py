"""The shared MLflow tracking server: its command line, starting and stopping it, and
waiting until it answers. Used by ``prunebench server``, the load script and the tests."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path


def server_command(directory: str | Path, host: str = "127.0.0.1", port: int = 5000, workers: int = 2,
                   backend_store_uri: str | None = None, artifacts_destination: str | None = None) -> list[str]:
    """``mlflow server`` with a SQLite store and an artifact root in ``directory`` unless given."""
    directory = Path(directory).resolve()
    store = backend_store_uri or f"sqlite:///{directory / 'mlflow.db'}"
    artifacts = artifacts_destination or str(directory / "mlartifacts")
    return [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", store,
            "--artifacts-destination", artifacts, "--host", host, "--port", str(port), "--workers", str(workers)]


def server_env(backend_store_uri: str | None, password_file: str | Path | None = None,
               environ: dict[str, str] | None = None) -> tuple[str | None, dict[str, str]]:
    """(the store URI without its password, the server's environment with the password in it):
    from the URI, else from ``password_file`` (its first line), else as the environment has it
    (``PGPASSWORD``, ``~/.pgpass``). The password never goes into the server's command line."""
    from .store import PASSWORD_ENV, move_password_to_env

    env = dict(os.environ if environ is None else environ)
    if backend_store_uri is None:
        return None, env
    uri = move_password_to_env(backend_store_uri, env)
    if password_file is not None:
        scheme = backend_store_uri.split(":", 1)[0].split("+", 1)[0]
        if scheme not in PASSWORD_ENV:
            raise ValueError(f"--password-file is for postgresql:// or mysql:// stores, not {scheme}://")
        lines = Path(password_file).read_text().splitlines()
        if not lines or not lines[0]:
            raise ValueError(f"password file {password_file} is empty; write the password on its first line")
        env[PASSWORD_ENV[scheme]] = lines[0]
    return uri, env


def start_server(directory: str | Path, port: int, workers: int = 1, env: dict[str, str] | None = None,
                 **kwargs) -> subprocess.Popen:
    """The server in the background, in its own process group so that :func:`stop_server`
    ends its workers too. Its output goes to ``directory/server.log``: a pipe nobody reads
    would fill up and block the server."""
    Path(directory).mkdir(parents=True, exist_ok=True)
    with open(Path(directory) / "server.log", "ab") as log:
        process = subprocess.Popen(server_command(directory, port=port, workers=workers, **kwargs),
                                   stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    process.log_path = Path(directory) / "server.log"
    return process


def stop_server(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, process: subprocess.Popen | None = None, timeout: float = 120) -> None:
    """Return once ``url/health`` answers 200; raise if ``process`` exits or time runs out."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            log = getattr(process, "log_path", None)
            output = log.read_text(errors="replace")[-4000:] if log else process.stdout.read() if process.stdout else ""
            raise RuntimeError(f"the tracking server exited before answering: {output}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer /health within {timeout}s")
