"""Fetch a public data file once, verifying its published checksum."""
from __future__ import annotations

import hashlib
import shutil
import sys
import urllib.request
from pathlib import Path


class ChecksumError(IOError):
    """A downloaded or local file does not match its published checksum."""


def md5_of(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def download(url: str, dest: Path, md5: str) -> Path:
    """Download ``url`` to ``dest`` unless a file with the right MD5 is already there."""
    dest = Path(dest)
    if dest.exists() and md5_of(dest) == md5:
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    print(f"downloading {url} -> {dest}", file=sys.stderr)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(partial, "wb") as out:
            shutil.copyfileobj(response, out)
    except OSError as error:
        partial.unlink(missing_ok=True)
        raise ConnectionError(
            f"could not download {url}: {error}. Without internet, place the file at {dest} yourself."
        ) from error
    actual = md5_of(partial)
    if actual != md5:
        partial.unlink(missing_ok=True)
        raise ChecksumError(f"{url}: MD5 {actual} does not match the published {md5}; the download is corrupt")
    partial.replace(dest)
    return dest
