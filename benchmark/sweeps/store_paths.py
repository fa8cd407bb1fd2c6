"""Rewriting a SQLite store's artifact locations to the form relative to its folder
(:mod:`.artifact_root`): a new experiment's at once, an older store's in a one-time fix."""
from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

from . import store_query
from .artifact_root import ARTIFACT_FOLDER, is_relative_location
from .store import store_lock
from .uris import sqlite_path


def _connect(db: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(str(db), timeout=60)
    connection.isolation_level = None  # explicit BEGIN IMMEDIATE below
    return connection


def relocate_new_experiment(tracking_uri: str, experiment_id: str) -> None:
    """Give a just-created experiment of a SQLite store (and the store's default experiment, while
    it holds no run) the relative artifact location :data:`ARTIFACT_FOLDER`. The caller holds the
    store's lock; the experiment has no run yet."""
    db = sqlite_path(tracking_uri)
    if db is None:
        return
    connection = _connect(db)
    try:
        connection.execute("BEGIN IMMEDIATE")
        store_query.set_experiment_location(connection, experiment_id, ARTIFACT_FOLDER)
        # MLflow made the default experiment at <working directory>/mlruns/0 when it created the store
        store_query.set_experiment_location(connection, "0", ARTIFACT_FOLDER, only_without_runs=True)
        connection.execute("COMMIT")
    except BaseException:
        connection.execute("ROLLBACK")
        raise
    finally:
        connection.close()


# --- the one-time fix of stores made before relative locations ---------------------------------

@dataclass
class Relocation:
    """What :func:`relativize_store` changed (or, on a dry run, would change)."""

    experiments: dict[str, tuple[str, str]] = field(default_factory=dict)  # id -> (old, new)
    runs: int = 0  # runs whose artifact_uri was rewritten
    already_relative: int = 0  # experiments left as they were
    missing_folders: list[str] = field(default_factory=list)  # run ids with an artifact folder absent beside the store

    def describe(self) -> str:
        lines = [f"experiment {eid}: {old} -> {new}" for eid, (old, new) in sorted(self.experiments.items(), key=lambda i: int(i[0]))]
        lines.append(f"{len(self.experiments)} experiment(s) and {self.runs} run(s) rewritten; "
                     f"{self.already_relative} experiment(s) already relative")
        if self.missing_folders:
            lines.append(f"{len(self.missing_folders)} run(s) have no artifact folder beside the store "
                         f"(they logged none, or it was not copied): {', '.join(self.missing_folders[:5])}"
                         + (" ..." if len(self.missing_folders) > 5 else ""))
        return "\n".join(lines)


class RelocationError(ValueError):
    """A location that cannot be made relative to the store (its artifacts are elsewhere)."""


def _local_path(location: str) -> str | None:
    """The absolute local path of ``location`` (a ``file:`` URI or an absolute path), else None."""
    if location.startswith("file:"):
        return unquote(urlsplit(location).path)
    if "://" not in location and os.path.isabs(location):
        return location
    return None


def _relative_to_store(path: str, folder: Path) -> str | None:
    """The shortest tail of ``path`` that names a folder under ``folder`` (``/old/place/mlartifacts``
    -> ``mlartifacts`` when ``folder/mlartifacts`` exists), else None."""
    parts = PurePosixPath(path).parts[1:]
    for start in range(len(parts) - 1, -1, -1):
        tail = PurePosixPath(*parts[start:])
        if (folder / tail).is_dir():
            return tail.as_posix()
    return None


def relativize_store(db: str | Path, dry_run: bool = False) -> Relocation:
    """Rewrite a SQLite store's absolute artifact locations (``experiments.artifact_location``,
    ``runs.artifact_uri``) to the form relative to the store's folder, in one transaction under
    the store's lock; nothing else is changed. An experiment's location becomes the tail of its
    old path that exists beside the store (``mlartifacts``); its runs' URIs keep their part after
    it; an old location that ends in ``mlartifacts`` becomes ``mlartifacts`` even where that folder
    was not copied (its runs are then counted as missing). An experiment with no run whose folder
    is nowhere beside the store (MLflow's default experiment) gets ``mlartifacts``. Refused, with nothing changed: a run whose artifacts lie
    outside its experiment's folder, an experiment with runs whose folder is not beside the store."""
    db = Path(db).resolve()
    if not db.is_file():
        raise FileNotFoundError(f"no SQLite store at {db}: give the path of an mlflow.db")
    folder = db.parent
    result = Relocation()
    with store_lock(f"sqlite:///{db}"):
        connection = _connect(db)
        try:
            connection.execute("BEGIN IMMEDIATE")
            for experiment_id, location in store_query.experiment_locations(connection):
                runs = store_query.run_artifact_uris(connection, experiment_id)
                _relocate_experiment(connection, folder, experiment_id, location, runs, result)
            connection.execute("ROLLBACK" if dry_run else "COMMIT")
        except BaseException:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        finally:
            connection.close()
    return result


def _relocate_experiment(connection: sqlite3.Connection, folder: Path, experiment_id: str, location: str,
                         runs: list[tuple[str, str]], result: Relocation) -> None:
    old = _local_path(location)
    if old is None:  # relative already, or a remote scheme (s3://, mlflow-artifacts:/): left alone
        result.already_relative += is_relative_location(location)
        runs_to_fix = [(r, u) for r, u in runs if _local_path(u or "") is not None]
        if runs_to_fix:
            raise RelocationError(f"experiment {experiment_id} ({location!r}) has runs with absolute artifact URIs "
                                  f"(e.g. {runs_to_fix[0][1]!r}); fix them by hand")
        return
    new = _relative_to_store(old, folder)
    if new is None and PurePosixPath(old).name == ARTIFACT_FOLDER:
        new = ARTIFACT_FOLDER  # the harness's own layout, whose folder was not copied (or holds nothing yet)
    if new is None:
        if runs:
            raise RelocationError(f"experiment {experiment_id}'s artifacts ({location}) are not beside the store in "
                                  f"{folder}: copy that folder there first (as {ARTIFACT_FOLDER}/), then run this again")
        new = ARTIFACT_FOLDER
    base = old.rstrip("/")
    for run_id, uri in runs:
        path = _local_path(uri or "")
        if path is None:
            if is_relative_location(uri or ""):
                continue
            raise RelocationError(f"run {run_id} of experiment {experiment_id} has artifact URI {uri!r}, "
                                  "neither local nor relative; fix it by hand")
        if not path.startswith(base + "/"):
            raise RelocationError(f"run {run_id}'s artifacts ({uri}) are outside its experiment's folder "
                                  f"({location}); nothing was changed")
        relative = new + path[len(base):]
        if not (folder / relative).exists():
            result.missing_folders.append(run_id)
        store_query.set_run_artifact_uri(connection, run_id, relative)
        result.runs += 1
    store_query.set_experiment_location(connection, experiment_id, new)
    result.experiments[experiment_id] = (location, new)


def absolute_locations(db: str | Path) -> list[str]:
    """Every absolute local artifact location or URI a SQLite store holds (experiments and runs)."""
    connection = sqlite3.connect(f"file:{Path(db)}?mode=ro", uri=True)
    try:
        values = [v for _, v in store_query.experiment_locations(connection)]
        values += [v for _, v in store_query.run_artifact_uris(connection)]
    finally:
        connection.close()
    return [value for value in values if value and _local_path(value) is not None]
