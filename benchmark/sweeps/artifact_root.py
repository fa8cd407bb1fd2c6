"""Artifact locations of a SQLite store written relative to the store's folder, so that a copied
or moved store folder (``mlflow.db`` with ``mlartifacts/`` beside it) reads its own artifacts.

- An experiment the harness creates in a SQLite store gets the artifact location ``mlartifacts``
  (relative), and MLflow gives each of its runs ``mlartifacts/<run id>/artifacts``. MLflow itself
  resolves a relative location against the working directory: ``mlflow ui`` started in the store's
  folder reads it as it is, and ``prunebench ui`` / ``prunebench server`` start their child there.
- In the harness's own processes (:func:`.store.open_client`, a Ray task), the local artifact
  repository is replaced by ``StoreRelativeRepository`` (:func:`repository_class`), which resolves a relative location
  against the folder of the SQLite database it belongs to (the tracking URI MLflow hands every
  repository), whatever the working directory. Absolute locations and other schemes are untouched.
- MLflow's ``create_experiment`` turns a relative location into an absolute one (against the
  working directory), so the harness creates the experiment with the absolute folder beside the
  database and rewrites it to the relative form at once, under the store's lock
  (:func:`.store_paths.relocate_new_experiment`); a runner that finds the experiment waits on that lock.
- Stores made before this keep their absolute locations until :func:`.store_paths.relativize_store` rewrites
  them (``python scripts/fix_store_paths.py DB``): the experiments' ``artifact_location`` and
  the runs' ``artifact_uri``, nothing else.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path, PurePosixPath

from .uris import sqlite_path

ARTIFACT_FOLDER = "mlartifacts"  # beside mlflow.db, as `mlflow server` / `mlflow ui` keep it


def is_relative_location(location: str) -> bool:
    """Whether ``location`` is a relative path (no scheme, not absolute): read against the store's folder."""
    if not location or "://" in location or location.startswith("file:"):
        return False
    return not PurePosixPath(location).is_absolute() and not os.path.isabs(location)


def store_folder(tracking_uri: str | None) -> Path | None:
    """The folder of a SQLite store's database file (absolute), else None."""
    path = sqlite_path(tracking_uri) if tracking_uri else None
    return Path(path).resolve().parent if path is not None else None


def resolve_location(location: str, tracking_uri: str | None) -> str:
    """``location`` as a path MLflow can use from any working directory: a relative one is put
    under the SQLite store's folder; anything else is returned as it is."""
    folder = store_folder(tracking_uri)
    if folder is None or not is_relative_location(location):
        return location
    return (folder / location).as_posix()


_registered = False


def use_store_relative_artifacts() -> None:
    """Make this process's MLflow read relative artifact locations against their store's folder
    (idempotent). Called wherever the harness opens a client."""
    global _registered
    if _registered:
        return
    from mlflow.store.artifact.artifact_repository_registry import _artifact_repository_registry

    _artifact_repository_registry.register("", repository_class())
    _registered = True


@functools.lru_cache(maxsize=1)
def repository_class() -> type:
    """:class:`StoreRelativeRepository` (built on first use: it subclasses an MLflow class)."""
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    class StoreRelativeRepository(LocalArtifactRepository):
        """MLflow's local artifact repository, with a relative location read against the folder of
        the SQLite store it belongs to (the tracking URI MLflow passes), not the working directory."""

        def __init__(self, artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None):
            if tracking_uri is None and is_relative_location(artifact_uri):
                import mlflow

                tracking_uri = mlflow.get_tracking_uri()  # a `runs:/` look-up made without one
            super().__init__(resolve_location(artifact_uri, tracking_uri), tracking_uri, registry_uri)

    return StoreRelativeRepository
