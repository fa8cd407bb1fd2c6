"""Cache files (method scores, token tensors): written atomically, validated on every load.

A cache file is trusted for nothing: it may be torn by a kill, truncated by a full disk,
copied from another machine or version, or edited. :func:`load_entry` reads it with
``torch.load(weights_only=True)`` (no pickled code runs) and hands it to the caller's
``check``, which raises :class:`CacheEntryError` saying what is wrong; a bad entry is
reported on stderr with its path, deleted, and the caller rebuilds it as if it had never
been there.

Writing is best effort: a cache that cannot be written (a full disk, a read-only or missing
folder) costs the next cell a recomputation, never this cell its result. :func:`save_entry`
encodes the entry in memory first (an encoding fault is the caller's bug and raises), then
writes the bytes itself, so a disk fault arrives as the operating system's own error (``No
space left on device``), not as torch's "enforce fail at inline_container.cc"; it is reported
on stderr with the path and the cause, and the caller goes on with the value it computed.
"""
from __future__ import annotations

import contextlib
import errno
import math
import os
import sys
from pathlib import Path
from typing import Any, Callable

from .lazy import lazy_import

torch = lazy_import("torch")


class CacheEntryError(ValueError):
    """What is wrong with a cache entry's content."""


def load_entry(path: Path, check: Callable[[Any], None], what: str = "cache entry") -> Any | None:
    """The content of ``path`` if it exists and passes ``check``, else None (a bad one is deleted)."""
    path = Path(path)
    if not path.is_file():
        return None
    try:
        value = torch.load(path, weights_only=True)
        check(value)
        return value
    except Exception as error:  # unreadable, not a torch file, or wrong content: all the same to us
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else type(error).__name__
        print(f"warning: {what} {path} is invalid ({reason}); deleted, rebuilding it", file=sys.stderr, flush=True)
        path.unlink(missing_ok=True)
        return None


def save_entry(path: Path, value: Any, what: str = "cache entry") -> bool:
    """Write ``value`` to ``path`` atomically (a reader never sees half a file); True if written.
    A write that fails is reported with the path and the cause and returns False: the caller keeps
    its value, uncached."""
    import io

    path = Path(path)
    buffer = io.BytesIO()
    torch.save(value, buffer)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as handle:
            handle.write(buffer.getbuffer())
        partial.replace(path)
        return True
    except OSError as error:
        with contextlib.suppress(OSError):
            partial.unlink(missing_ok=True)
        cause = f"{error.strerror} (errno {errno.errorcode.get(error.errno, error.errno)})" if error.strerror else str(error)
        fix = ("free space on the disk that holds it, or point --cache-dir ($PRUNEBENCH_CACHE) at a disk with room"
               if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) else
               "make the folder writable, or point --cache-dir ($PRUNEBENCH_CACHE) elsewhere")
        print(f"warning: cannot write the {what} {path}: {cause}; the cell goes on with the result it computed, "
              f"which is not cached (the next cell that needs it computes it again). Fix: {fix}",
              file=sys.stderr, flush=True)
        return False


def require(condition: bool, problem: str) -> None:
    if not condition:
        raise CacheEntryError(problem)


def check_tensor(value: Any, name: str, shape: tuple[int | None, ...], dtypes: tuple[torch.dtype, ...],
                 finite: bool = False) -> None:
    """``value`` is a tensor of ``shape`` (None: any size) and one of ``dtypes``, finite if asked."""
    require(isinstance(value, torch.Tensor), f"{name} is a {type(value).__name__}, not a tensor")
    require(value.dim() == len(shape) and all(want is None or got == want for got, want in zip(value.shape, shape)),
            f"{name} has shape {tuple(value.shape)}, expected {tuple('*' if s is None else s for s in shape)}")
    require(value.dtype in dtypes, f"{name} has dtype {value.dtype}, expected one of {list(dtypes)}")
    if finite:
        require(bool(torch.isfinite(value).all()), f"{name} holds NaN or infinite values")


def check_cost(value: Any, name: str, integer: bool = False) -> None:
    """``value`` is a finite, non-negative number (an integer if asked): a cost."""
    kinds = (int,) if integer else (int, float)
    require(isinstance(value, kinds) and not isinstance(value, bool),
            f"{name} is {type(value).__name__} {value!r}, not a number")
    require(math.isfinite(value) and value >= 0, f"{name} is {value!r}; a cost is a finite number >= 0")
