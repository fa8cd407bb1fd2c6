"""Old import paths of modules that moved, kept working with a DeprecationWarning.

In version 0.1 every harness module sat flat in ``benchmark/`` and every method in
``methods/``; plugins written then import ``benchmark.method``, ``benchmark.registry``,
``benchmark.hooks`` and so on. Importing an old path gives the very module object at the new
path (the same classes, so ``isinstance`` and monkeypatching still agree) and warns once with
the path to write instead. The table is the whole mechanism: no file stays at an old path.
"""
from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings

#: old dotted path -> new dotted path
MOVED: dict[str, str] = {
    **{f"benchmark.{name}": f"benchmark.api.{name}" for name in (
        "cache_files", "discovery", "hooks", "lazy", "masks", "method", "origin", "registry", "sequence", "task")},
    **{f"benchmark.{name}": f"benchmark.training.{name}" for name in ("context", "flops", "memory", "trainer")},
    **{f"benchmark.{name}": f"benchmark.sweeps.{name}" for name in (
        "cells", "claims", "evidence", "execute", "names", "progress", "ray_executor", "runner", "server", "store",
        "tracking")},
    **{f"benchmark.{name}": f"benchmark.boards.{name}" for name in ("cost_stats", "leaderboard", "stats")},
    **{f"benchmark.board_{name}": f"benchmark.boards.{name}" for name in (
        "format", "html", "markdown", "plots", "publish")},
    "benchmark.board_mlflow": "benchmark.boards.in_mlflow",
    **{f"methods.{name}": f"methods.data.{name}" for name in ("el2n", "emp", "random_data", "selection", "ted")},
    **{f"methods.{name}": f"methods.model.{name}" for name in ("magnitude", "random_weights", "seven")},
}


class _Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds an old path and hands back the module imported from its new one."""

    def find_spec(self, fullname, path=None, target=None):
        if fullname not in MOVED:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec):
        new = MOVED[spec.name]
        warnings.warn(f"{spec.name} has moved to {new}; import it from there (the old path goes in 0.3)",
                      DeprecationWarning, stacklevel=2)  # warnings skips importlib's frames: the importer's line
        module = importlib.import_module(new)
        spec.loader_state = module.__spec__  # the import system sets the alias's spec on the module next
        return module

    def exec_module(self, module):
        module.__spec__ = module.__spec__.loader_state  # ... and the module gets its own back


_FINDER = _Alias()


def install() -> None:
    """Put the alias finder first on the import path (once)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
