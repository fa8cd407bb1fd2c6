"""Data sets on the Hugging Face hub, read through the ``datasets`` library.

A :class:`HubDataset` names a hub repository (``nyu-mll/glue``), a config (``sst2``) and a
revision (a branch, tag or commit; default the main branch). ``datasets`` keeps what it
fetched in the Hugging Face cache (``$HF_HOME/datasets``, or ``$HF_DATASETS_CACHE``), and with
``HF_DATASETS_OFFLINE=1`` (or ``HF_HUB_OFFLINE=1``) it reads only that cache, never the network.
``prunebench download TASK`` fills the cache once.

A local copy in the hub's own repository layout (``<repo>/README.md`` declaring the configs,
``<repo>/<config>/<split>-00000-of-00001.parquet``) is read by the same code: pass its folder as
the task's ``hub_id``, or point ``$PRUNEBENCH_HUB_ROOT`` at a folder holding ``<owner>/<name>/``
copies (a mirror), which then stand in for the hub ids they are named after.

A local copy's revision is the SHA-256 of its files (every file's path and bytes; names
starting with ``.`` skipped): ``data.hub_revision`` then changes exactly when the folder does,
and ``datasets`` prepares it into a cache folder named by that hash, so an edited folder is read
again, never served from what ``datasets`` prepared from it before (``datasets`` keys a local
folder's cache by its file names, not their contents).

``datasets`` is imported only when data is checked or read, so listing tasks stays cheap.
"""
from __future__ import annotations

import functools
import hashlib
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmark.api.task import DataFormatError, DataNotFoundError

HUB_ROOT_ENV = "PRUNEBENCH_HUB_ROOT"


def check_hub_options(task: str, hub_id: Any, revision: Any) -> None:
    """Refuse a hub id or revision that is not a non-empty string, naming the option."""
    if not isinstance(hub_id, str) or not hub_id.strip():
        raise ValueError(f"task {task!r}: option hub_id must be a hub dataset id like 'owner/name' or a local "
                         f"folder in the hub layout, got {hub_id!r}")
    if revision is not None and (not isinstance(revision, str) or not revision.strip()):
        raise ValueError(f"task {task!r}: option revision must be a branch, tag or commit of {hub_id}, "
                         f"got {revision!r}")


@dataclass(frozen=True)
class HubDataset:
    """One config of a hub data set, as the task ``task`` reads it."""

    task: str
    repo: str
    config: str | None = None
    revision: str | None = None
    #: ``{hub split: file pattern}``: read only these files of the config (one shard of C4),
    #: never the config's every file
    data_files: tuple[tuple[str, str], ...] | None = None
    #: what fetches it into the cache, where ``prunebench download TASK`` alone does not
    download_command: str | None = None

    @property
    def builder_options(self) -> dict[str, Any]:
        return {"data_files": dict(self.data_files)} if self.data_files else {}

    @property
    def path(self) -> str:
        """What ``datasets.load_dataset`` is given: the repo id, or the local copy standing in for it."""
        root = os.environ.get(HUB_ROOT_ENV)
        if root and (Path(root) / self.repo).is_dir():
            return str(Path(root) / self.repo)
        return self.repo

    @property
    def is_local(self) -> bool:
        return Path(self.path).is_dir()

    def local_revision(self) -> str | None:
        """``sha256:<16 hex digits>`` of a local copy's files, None for a hub id."""
        if not self.is_local:
            return None
        return "sha256:" + folder_digest(Path(self.path))

    def describe(self) -> str:
        where = f" (local copy {self.path})" if self.path != self.repo else ""
        config = f", config {self.config}" if self.config else ""
        revision = f", revision {self.revision}" if self.revision else ""
        files = f", file(s) {', '.join(pattern for _, pattern in self.data_files)}" if self.data_files else ""
        return f"the Hugging Face dataset {self.repo}{config}{files}{revision}{where}"

    def missing_message(self, error: BaseException, local_copy: str, suggest_download: bool = True) -> str:
        import datasets

        cache = datasets.config.HF_DATASETS_CACHE
        if isinstance(error, ConnectionError):
            why = "offline mode is on" if offline_mode() else f"the hub cannot be reached ({error})"
            command = self.download_command or f"prunebench download {self.task}"
            fetch = (f"Fetch it once where there is internet: {command} (it fills the "
                     "cache; later runs work offline, also with HF_DATASETS_OFFLINE=1). " if suggest_download else "")
            return (f"{self.describe()} is not in the Hugging Face cache ({cache}) and {why}. {fetch}"
                    f"Or use a local copy: {local_copy}")
        return (f"cannot open {self.describe()}: {type(error).__name__}: {error}. Check the task's hub_id / "
                f"revision options, or use a local copy: {local_copy}")

    def cached_copy(self) -> Path:
        """Where ``datasets`` caches this config of a hub data set (it may not exist)."""
        import datasets

        return Path(datasets.config.HF_DATASETS_CACHE) / self.repo.replace("/", "___") / (self.config or "default")

    def is_cached(self) -> bool:
        """Whether ``datasets`` holds a prepared copy (with ``data_files``, a folder
        ``<config>-<hash of the files>`` beside :meth:`cached_copy`)."""
        copy = self.cached_copy()
        return copy.is_dir() or (bool(self.data_files) and any(copy.parent.glob(f"{copy.name}-*")))

    def check(self, local_copy: str) -> None:
        """Raise DataNotFoundError (one message naming the id and the fixes) unless the data
        set can be opened: from the cache, a local copy, or the hub. Reads metadata only.
        Where the hub does not answer at all, this says so at once instead of after the hub
        client's retries (about 25 s per data set)."""
        import datasets

        if not self.is_local and not offline_mode():
            unreachable = hub_unreachable()
            if unreachable and not self.is_cached():
                raise DataNotFoundError(self.missing_message(ConnectionError(unreachable), local_copy))
            if unreachable:
                return  # cached: the run reads the cache once the hub client gives up on the network
        try:
            datasets.load_dataset_builder(self.path, self.config, revision=self.revision, **self.builder_options)
        except (ConnectionError, FileNotFoundError, ValueError) as error:  # DatasetNotFoundError is a FileNotFoundError
            raise DataNotFoundError(self.missing_message(error, local_copy)) from error

    def load(self, splits: dict[str, str], local_copy: str) -> tuple[dict[str, Any], dict[str, str]]:
        """``{name: hub split}`` loaded as ``datasets.Dataset``s (downloaded into the cache if
        they are not there), and the tags naming that data exactly (:meth:`provenance`). The
        steps of ``datasets.load_dataset``, with the builder kept for its revision."""
        import datasets

        local = self.local_revision()
        # a local copy is prepared into a cache folder of its content's hash: an edit is read again
        where = ({"cache_dir": str(Path(datasets.config.HF_DATASETS_CACHE) / "prunebench-local" / local[7:])}
                 if local else {})
        try:
            builder = datasets.load_dataset_builder(self.path, self.config, revision=self.revision, **where,
                                                    **self.builder_options)
            builder.download_and_prepare()
            loaded = {name: builder.as_dataset(split=split) for name, split in splits.items()}
        except (ConnectionError, FileNotFoundError) as error:
            raise DataNotFoundError(self.missing_message(error, local_copy)) from error
        except ValueError as error:  # an unknown split or config
            raise DataFormatError(f"{self.describe()}: {error}") from error
        return loaded, self.provenance(loaded, local or builder.hash)

    def download(self, cache_dir: Path | None = None) -> str:
        """Fetch every split into the Hugging Face cache (``cache_dir`` instead, when given);
        what was done, in one line."""
        import datasets

        hint = ("copy the Hugging Face datasets cache folder from a machine that has the data set, or pass "
                "the task a local folder in the hub layout as hub_id")
        unreachable = "" if self.is_local or offline_mode() else hub_unreachable()
        if unreachable:
            raise DataNotFoundError(self.missing_message(ConnectionError(unreachable), hint, suggest_download=False))
        try:
            loaded = datasets.load_dataset(self.path, self.config, revision=self.revision,
                                           cache_dir=str(cache_dir) if cache_dir else None, **self.builder_options)
        except (ConnectionError, FileNotFoundError) as error:
            raise DataNotFoundError(self.missing_message(error, hint, suggest_download=False)) from error
        sizes = ", ".join(f"{name} {len(split):,}" for name, split in loaded.items())
        where = (f"{cache_dir}; runs read it with HF_DATASETS_CACHE={cache_dir}" if cache_dir
                 else f"the Hugging Face cache ({datasets.config.HF_DATASETS_CACHE})")
        return (f"{self.task}: {self.describe()} ({sizes}) is in {where}; later runs read it from there, "
                f"offline too (HF_DATASETS_OFFLINE=1)")

    def provenance(self, splits: dict[str, Any], revision: str | None) -> dict[str, str]:
        """Tags naming this data exactly: id, config, the requested revision and the one used
        (the commit ``datasets`` resolved, or the hash of a local copy's files), and each
        split's name and fingerprint."""
        tags = {"data.source": "huggingface-hub", "data.hub_id": self.repo, "data.hub_config": self.config or "",
                "data.hub_revision_requested": self.revision or "main", "data.hub_revision": revision or "unknown"}
        if self.path != self.repo:
            tags["data.hub_local_copy"] = self.path
        if self.data_files:
            tags["data.hub_files"] = ",".join(f"{split}={pattern}" for split, pattern in self.data_files)
        for benchmark_split, dataset in splits.items():
            tags[f"data.hub_split.{benchmark_split}"] = str(dataset.split)
            tags[f"data.fingerprint.{benchmark_split}"] = dataset._fingerprint
        return tags


def folder_digest(folder: Path) -> str:
    """16 hex digits of SHA-256 over every file under ``folder`` (its relative path, size and
    bytes, in sorted order); files and folders whose names start with ``.`` are skipped."""
    digest = hashlib.sha256()
    files = sorted(path for path in folder.rglob("*") if path.is_file()
                   and not any(part.startswith(".") for part in path.relative_to(folder).parts))
    for path in files:
        digest.update(f"{path.relative_to(folder).as_posix()}\0{path.stat().st_size}\0".encode())
        with open(path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
    return digest.hexdigest()[:16]


def offline_mode() -> bool:
    """Whether ``HF_DATASETS_OFFLINE`` or ``HF_HUB_OFFLINE`` forbids the network."""
    return any(os.environ.get(v, "").upper() in ("1", "ON", "YES", "TRUE")
               for v in ("HF_DATASETS_OFFLINE", "HF_HUB_OFFLINE"))


@functools.lru_cache(maxsize=1)
def hub_unreachable(timeout: float = 5.0) -> str:
    """Why the hub's host cannot be reached (no address, no connection), or "" if it answers
    a TCP connection: one quick probe per process, before any request is retried."""
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    endpoint = urlsplit(constants.ENDPOINT)
    host, port = endpoint.hostname or "huggingface.co", endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as error:
        return f"{host}:{port}: {error.strerror or error}"
    return ""


def class_names(dataset, column: str) -> list[str] | None:
    """The label names a ``ClassLabel`` column declares, None for a plain column."""
    feature = dataset.features.get(column)
    return list(feature.names) if hasattr(feature, "names") else None


def require_columns(source: HubDataset, dataset, columns: list[str]) -> None:
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise DataFormatError(f"{source.describe()}, split {dataset.split}: missing column(s) {missing}; "
                              f"found {dataset.column_names}")
