"""The tracking store as a whole: opening it safely, telling its faults from a cell's, and
never printing its credentials.

- Several runners may start at once on a SQLite file that does not exist yet; MLflow creates
  and migrates the schema on first use, and two migrations at once corrupt it. :func:`open_client`
  holds an exclusive ``fcntl`` lock on ``<db>.lock`` (beside the file) while the store is first
  opened, so one runner migrates and the others wait, then find it current. Remote stores
  (``http://``, ``postgresql://`` ...) are opened as they are: their server serialises this.
- A fault of the store itself (read-only, unreachable after MLflow's retries, artifacts that
  cannot be written) is not a fault of the cell that met it: every cell after it would meet it
  too. The tracking layer raises :class:`StoreError` for it, and the runner stops the sweep with
  that one message instead of failing each cell in turn.
- URIs are shown through :func:`.uris.redact`, which replaces every secret a URI can hold with
  ``***`` (a password or token in the user-info part, parameters named like secrets, bearer tokens).
- A password in a URI handed to another process (the server, a Slurm task) moves to the
  environment variable its client reads (:func:`move_password_to_env`), so that it is in no
  command line or job file.
- A server database (PostgreSQL, MySQL) needs no lock: its server serialises MLflow's schema
  migration and its writes; the runners' claims (:mod:`.claims`) keep cells apart.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Callable, Iterator, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from .uris import redact, sqlite_path  # noqa: F401 - where the store's callers have always found them

T = TypeVar("T")
MAX_DETAIL = 300  # characters of the underlying error kept in a StoreError (not a 600-line SQL dump)


class StoreError(RuntimeError):
    """The tracking store (not one cell) failed: stop the sweep; the message names the store and the fix."""

    def __init__(self, uri: str, what: str, cause: BaseException | None = None, fix: str | None = None):
        self.uri = redact(uri)
        detail = ""
        if cause is not None:
            lines = [line.strip() for line in redact(str(cause)).splitlines() if line.strip()]
            # the driver's own line ("(sqlite3.OperationalError) attempt to write a readonly database")
            # says most; MLflow's first line is often a generic preamble
            said = next((line for line in lines if "Error)" in line), lines[0] if lines else "")
            detail = f" ({type(cause).__name__}: {said[:MAX_DETAIL]})"
        self.fix = fix or fix_for(cause, uri)
        super().__init__(f"tracking store {self.uri}: {what}{detail}. Fix: {self.fix}")


#: what a store says when its disk is full: SQLite, PostgreSQL, MySQL, the OS (an artifact write)
_DISK_FULL = ("disk is full", "no space left", "diskfull", "disk full", "errno 28", "could not extend file",
              "quota exceeded")


def fix_for(cause: BaseException | None, uri: str = "") -> str:
    """The likely fix, from what the store said."""
    import errno

    text = str(cause).lower() if cause is not None else ""
    if any(mark in text for mark in _DISK_FULL) or getattr(cause, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        filename = getattr(cause, "filename", None)
        where = (Path(filename).parent if filename else sqlite_path(uri).parent if sqlite_path(uri) else
                 "the store's database and artifacts (on its server)")
        return (f"free space on the disk that holds {where}, then run the same command again to resume; "
                "finished cells are kept")
    if "readonly" in text or "read-only" in text or "read only" in text:
        return ("make the store writable for this user (file and folder permissions, a read-only mount), "
                "or pass --tracking-uri to a writable store; finished cells are kept")
    if isinstance(cause, OSError) or "artifact" in text or "no such file" in text or "not a directory" in text:
        return ("make the artifact location writable (it must be a folder with free space), "
                "then run the same command again to resume")
    if any(w in text for w in ("password authentication failed", "authentication failed", "access denied",
                               "401", "unauthorized", "no password supplied")):
        return ("check the user and password: give the password by environment (PGPASSWORD for postgresql://, "
                "MLFLOW_TRACKING_PASSWORD for a server) or ~/.pgpass, never in a command line")
    if "connection to server" in text or "can't connect to mysql" in text:
        return ("check that the database server is running and reachable at that host and port (and that "
                "its pg_hba.conf / bind address admits this machine), then run the same command again")
    if any(w in text for w in ("connection", "max retries", "timed out", "unreachable", "refused")):
        return ("check that the tracking server is running and reachable (`prunebench server`), "
                "then run the same command again to resume")
    return "check the store (`prunebench ui` opens it), then run the same command again to resume"


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """An exclusive lock on ``<db>.lock`` for a SQLite store (a no-op for any other store).
    ``fcntl`` locks are released by the kernel when the holder dies, so a killed runner
    never leaves the store locked."""
    path = sqlite_path(uri)
    if path is None:
        yield
        return
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


DATABASE_SCHEMES = ("postgresql", "postgres", "mysql", "mssql")


def probe_database(uri: str) -> None:
    """Connect once to a database store (PostgreSQL, MySQL): a wrong password or an unreachable
    server is reported at once, instead of after MLflow's ten retries (about 100 s)."""
    if uri.split(":", 1)[0].split("+", 1)[0] not in DATABASE_SCHEMES:
        return
    import sqlalchemy

    def connect() -> None:
        engine = sqlalchemy.create_engine(uri, poolclass=sqlalchemy.pool.NullPool)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()

    guarded(uri, "cannot be opened", connect)


def open_client(uri: str) -> Any:
    """An ``MlflowClient`` on ``uri`` whose store has been created and migrated, and given the
    harness's index (:func:`.store_query.ensure_tag_index`), one runner at a time."""
    from mlflow.tracking import MlflowClient

    from .artifact_root import use_store_relative_artifacts
    from .store_query import ensure_tag_index

    use_store_relative_artifacts()  # relative artifact locations read against the store's folder
    probe_database(uri)
    with store_lock(uri):  # the client's constructor opens (creates, migrates) the store
        client = guarded(uri, "cannot be opened", lambda: MlflowClient(tracking_uri=uri))
        guarded(uri, "cannot be read", lambda: ensure_tag_index(uri))
        return client


def mute_store_error_logs() -> None:
    """Silence MLflow's own log of a failed SQL session (the statement, its parameters and a
    traceback, per failed call): the error is raised as well, and reported as one StoreError."""
    import logging

    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


def guarded(uri: str, what: str, call: Callable[[], T]) -> T:
    """``call()``, with any failure raised as a :class:`StoreError` about ``uri``."""
    try:
        return call()
    except StoreError:
        raise
    except Exception as error:
        raise StoreError(uri, what, error) from error


#: where a password found in the tracking URI goes, by scheme, for the tasks to read
PASSWORD_ENV = {"postgresql": "PGPASSWORD", "postgres": "PGPASSWORD", "mysql": "MYSQL_PWD",
                "http": "MLFLOW_TRACKING_PASSWORD", "https": "MLFLOW_TRACKING_PASSWORD"}


def move_password_to_env(uri: str, environ: dict[str, str] = os.environ) -> str:
    """``uri`` without its password; the password is put in the environment variable its
    client reads (so that it reaches a server or Slurm tasks by environment, not by argv or a file)."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in PASSWORD_ENV:
        raise ValueError(f"cannot pass the password of a {scheme}:// URI on by environment; "
                         "give it through the store's own environment variable or file instead")
    environ[PASSWORD_ENV[scheme]] = unquote(parts.password)  # a URI holds it percent-encoded
    if scheme.startswith("http") and parts.username:
        environ["MLFLOW_TRACKING_USERNAME"] = unquote(parts.username)
        netloc = parts.hostname + (f":{parts.port}" if parts.port else "")
    else:
        netloc = (parts.username or "") + "@" + parts.hostname + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))
