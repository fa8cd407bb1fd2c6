"""Cache files (method scores, token tensors): written atomically, validated on every load.

A cache file is trusted for nothing: it may be torn by a kill, truncated by a full disk,
copied from another machine or version, or edited. :func:`load_entry` reads it with
``torch.load(weights_only=True)`` (no pickled code runs) and hands it to the caller's
``check``, which raises :class:`CacheEntryError` saying what is wrong; a bad entry is
reported on stderr with its path, deleted, and the caller rebuilds it as if it had never
been there.
"""
from __future__ import annotations

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


def save_entry(path: Path, value: Any) -> None:
    """Write ``value`` to ``path`` atomically: a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    torch.save(value, partial)
    partial.replace(path)


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
