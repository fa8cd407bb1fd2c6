"""The shared MLflow tracking server: its command line, starting and stopping it, and
waiting until it answers. Used by ``prunebench server``, the load script and the tests.

- The store's URI may hold a password (``postgresql://user:PASS@host/db``). A child's argv is
  public (``ps`` shows it to every local user); its environment is not (``/proc/PID/environ``
  is readable by its owner only). So the URIs go to ``mlflow server`` / ``mlflow ui`` in the
  environment variables their own options read (``MLFLOW_BACKEND_STORE_URI``,
  ``MLFLOW_ARTIFACTS_DESTINATION``: click ``envvar`` options of mlflow's CLI), never in argv.
- ``prunebench server`` and ``prunebench ui`` run the child in its own process group and
  forward SIGTERM, SIGINT and SIGHUP to that group (:func:`forwarding_signals`): stopping
  prunebench stops the server and its workers, it never leaves one serving the port.
"""
from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path


#: the environment variables ``mlflow server`` reads its store options from (mlflow/cli/__init__.py)
STORE_ENV, ARTIFACTS_ENV = "MLFLOW_BACKEND_STORE_URI", "MLFLOW_ARTIFACTS_DESTINATION"
STOP_GRACE_S = 20.0  # seconds a server has to stop after a forwarded signal before it is killed


@dataclass
class ChildServer:
    """An ``mlflow server`` / ``mlflow ui`` to start: its argv (no secrets) and the environment
    entries that carry its store and artifact URIs."""

    argv: list[str]
    env: dict[str, str]

    @property
    def store(self) -> str:
        return self.env[STORE_ENV]

    @property
    def artifacts(self) -> str | None:
        return self.env.get(ARTIFACTS_ENV)

    def environment(self) -> dict[str, str]:
        return {**os.environ, **self.env}


def mlflow_child(verb: str, store: str, host: str, port: int, artifacts: str | None = None,
                 workers: int | None = None, app_folder: str | Path | None = None) -> ChildServer:
    """``python -m mlflow VERB`` on ``host:port``, its store (and artifacts) passed in the
    environment; with ``app_folder``, as the app ``prunebench`` (:mod:`.server_app`: MLflow's
    own plus the narrow reads), its entry point recorded there."""
    argv = [sys.executable, "-m", "mlflow", verb, "--host", host, "--port", str(port)]
    if workers is not None:
        argv += ["--workers", str(workers)]
    env = {STORE_ENV: store, **({ARTIFACTS_ENV: artifacts} if artifacts is not None else {})}
    if app_folder is not None:
        from .server_app import APP_NAME, app_env

        argv += ["--app-name", APP_NAME]
        env.update(app_env(app_folder))
    return ChildServer(argv, env)


def server_command(directory: str | Path, host: str = "127.0.0.1", port: int = 5000, workers: int = 2,
                   backend_store_uri: str | None = None, artifacts_destination: str | None = None,
                   narrow_reads: bool = True) -> ChildServer:
    """``mlflow server`` with a SQLite store and an artifact root in ``directory`` unless given;
    ``narrow_reads``: as the app ``prunebench`` (:mod:`.server_app`), else MLflow's app alone."""
    directory = Path(directory).resolve()
    store = backend_store_uri or f"sqlite:///{directory / 'mlflow.db'}"
    artifacts = artifacts_destination or str(directory / "mlartifacts")
    return mlflow_child("server", store, host, port, artifacts, workers, directory if narrow_reads else None)


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
    child = server_command(directory, port=port, workers=workers, **kwargs)
    with open(Path(directory) / "server.log", "ab") as log:
        process = subprocess.Popen(child.argv, env={**(os.environ if env is None else env), **child.env}, stdout=log,
                                   stderr=subprocess.STDOUT, start_new_session=True)
    process.log_path = Path(directory) / "server.log"
    return process


def start_foreground(child: ChildServer) -> subprocess.Popen:
    """``child`` with its output on this terminal, in its own process group (see :func:`forwarding_signals`)."""
    return subprocess.Popen(child.argv, env=child.environment(), start_new_session=True)


@contextlib.contextmanager
def forwarding_signals(process: subprocess.Popen, signals=(signal.SIGTERM, signal.SIGINT, signal.SIGHUP)):
    """While inside: SIGTERM, SIGINT or SIGHUP to this process is sent on to ``process``'s group
    (the child runs in its own session, so a terminal's Ctrl-C reaches it only this way). On
    leaving, by any path, the group is stopped if it still runs. Yields a list that holds the
    signals forwarded."""
    received: list[int] = []

    def forward(signum, frame):
        received.append(signum)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signum)

    previous = {number: signal.signal(number, forward) for number in signals}
    try:
        yield received
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        if process.poll() is None:
            stop_server(process)


def wait_stopping(process: subprocess.Popen, received: list[int]) -> int:
    """Wait for ``process``; once a signal was forwarded, give it :data:`STOP_GRACE_S` to stop,
    then kill its group. 0 if it was stopped by a forwarded signal, else its exit status."""
    while True:
        try:
            code = process.wait(timeout=STOP_GRACE_S if received else 1.0)
            return 0 if received else code
        except subprocess.TimeoutExpired:
            if received:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
                return 0


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
    from .store import redact

    deadline = time.time() + timeout
    while time.time() < deadline:
        if process is not None and process.poll() is not None:
            log = getattr(process, "log_path", None)
            output = log.read_text(errors="replace")[-4000:] if log else process.stdout.read() if process.stdout else ""
            raise RuntimeError(f"the tracking server exited before answering: {redact(output)}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"{url} did not answer /health within {timeout}s")
