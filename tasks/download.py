"""Fetch a public data file once, checking it on arrival.

Every file is written to a ``<stem>.part<pid>.<suffix>`` file beside its destination and renamed into place
only after it arrived whole and passed its check (a published MD5, or a check of its content
where no checksum is published), so a failed or interrupted download never leaves a file
where a later run would read it. Long downloads show their progress on stderr.
"""
from __future__ import annotations

import hashlib
import http.client
import os
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable

CHUNK = 1 << 16
#: a base URL that serves the same files under their own names (an institute's mirror):
#: when set, ``<mirror>/<file name>`` is fetched instead of each public URL
MIRROR_ENV = "PRUNEBENCH_DOWNLOAD_MIRROR"


class ChecksumError(IOError):
    """A downloaded or local file does not match its published checksum."""


class DownloadCheckError(IOError):
    """A downloaded file arrived but is not the file expected; it was deleted."""


class RemoteFileError(IOError):
    """The server answered, but with an error status instead of the file (404, 500, ...)."""


def md5_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


class ByteProgress:
    """``name  3.1 / 9.8 MB  32%`` on one line of stderr, redrawn at most twice a second on a
    terminal; elsewhere (a log file) a line per quarter, so logs stay short."""

    def __init__(self, name: str, total: int | None, stream=None):
        self.name, self.total, self.done = name, total, 0
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.last_draw, self.last_quarter = 0.0, 0

    def _line(self) -> str:
        if self.total:
            return f"  {self.name}  {self.done / 1e6:.1f} / {self.total / 1e6:.1f} MB  {100 * self.done // self.total}%"
        return f"  {self.name}  {self.done / 1e6:.1f} MB"

    def update(self, count: int) -> None:
        self.done += count
        now = time.monotonic()
        if self.tty and now - self.last_draw >= 0.5:
            self.last_draw = now
            print("\r" + self._line(), end="", file=self.stream, flush=True)
        elif not self.tty and self.total:
            quarter = 4 * self.done // self.total
            if self.last_quarter < quarter < 4:  # 25, 50, 75%; close() prints the end
                self.last_quarter = quarter
                print(self._line(), file=self.stream, flush=True)

    def close(self) -> None:
        print(("\r" if self.tty else "") + self._line() + " done", file=self.stream, flush=True)


def fetch(url: str, dest: Path, check: Callable[[Path], None] | None = None, timeout: float = 60) -> Path:
    """Download ``url`` to ``dest``. ``check(path)`` runs on the arrived file before it is put
    in place and raises (any exception, its message naming the problem) if the file is bad;
    a bad file is deleted and :class:`DownloadCheckError` raised. An unreachable URL raises
    ConnectionError naming the fix."""
    dest = Path(dest)
    url = source_url(url)
    dest.parent.mkdir(parents=True, exist_ok=True)
    # beside dest, under a name no reader looks for, keeping the suffix (.gz, .mat) the check reads by
    partial = dest.with_name(f"{dest.name.split('.')[0]}.part{os.getpid()}.{dest.name.split('.', 1)[-1]}"
                             if "." in dest.name else f"{dest.name}.part{os.getpid()}")
    print(f"downloading {url} -> {dest}", file=sys.stderr, flush=True)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            length = response.headers.get("Content-Length")
            expected = int(length) if length and length.isdigit() else None
            progress = ByteProgress(dest.name, expected)
            while block := response.read(CHUNK):
                out.write(block)
                progress.update(len(block))
            progress.close()
    except urllib.error.HTTPError as error:
        partial.unlink(missing_ok=True)
        raise RemoteFileError(f"could not download {url}: HTTP {error.code} {error.reason}") from error
    except http.client.HTTPException as error:  # IncompleteRead, a bad status line: this file only
        partial.unlink(missing_ok=True)
        raise RemoteFileError(f"could not download {url}: {type(error).__name__}: {error}") from error
    except (OSError, ValueError) as error:  # URLError, timeouts, a cut connection
        partial.unlink(missing_ok=True)
        raise ConnectionError(f"could not download {url}: {str(error).rstrip('.')}. Without internet, place the "
                              f"file at {dest} yourself") from error
    except BaseException:  # Ctrl-C: leave nothing behind either
        partial.unlink(missing_ok=True)
        raise
    if expected is not None and partial.stat().st_size != expected:
        arrived = partial.stat().st_size
        partial.unlink(missing_ok=True)
        raise RemoteFileError(f"could not download {url}: the connection closed after {arrived} of {expected} bytes")
    try:
        if check is not None:
            check(partial)
    except Exception as error:
        partial.unlink(missing_ok=True)
        raise DownloadCheckError(f"{url}: the downloaded file is not the expected one and was deleted: {error}") \
            from error
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(dest)
    return dest


def source_url(url: str) -> str:
    """``url``, or its file at the mirror named by ``$PRUNEBENCH_DOWNLOAD_MIRROR``."""
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    return f"{mirror.rstrip('/')}/{url.rsplit('/', 1)[-1]}" if mirror else url


def md5_check(md5: str) -> Callable[[Path], None]:
    def check(path: Path) -> None:
        actual = md5_of(path)
        if actual != md5:
            raise ChecksumError(f"MD5 {actual} does not match the published {md5}; the download is corrupt")
    return check


def download(url: str, dest: Path, md5: str) -> Path:
    """Download ``url`` to ``dest`` unless a file with the right MD5 is already there."""
    dest = Path(dest)
    if dest.exists() and md5_of(dest) == md5:
        return dest
    try:
        return fetch(url, dest, md5_check(md5))
    except DownloadCheckError as error:
        raise ChecksumError(str(error)) from error
