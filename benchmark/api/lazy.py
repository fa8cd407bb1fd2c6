"""Heavy modules imported at their first use, not when the module naming them is imported.

The method and task classes are read by `prunebench list` and `validate` (names, options,
profiles, data checks), which never touch a tensor; their modules write
``torch = lazy_import("torch")`` so that reading them does not cost torch's 2 s import::

    torch = lazy_import("torch")
    nn = lazy_import("torch.nn")

    @no_grad                     # instead of @torch.no_grad(), which would import torch here
    def update(self): ...

Subclassing ``nn.Module`` or calling torch at module level still imports it: such code lives
in model modules that the task classes import inside the functions that build models.
"""
from __future__ import annotations

import functools
import importlib
import sys
import types
from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class _LazyModule(types.ModuleType):
    """Stands in for a module until an attribute is read; then imports it and takes its names."""

    def __getattr__(self, attr: str) -> Any:
        module = importlib.import_module(self.__name__)
        self.__dict__.update(module.__dict__)  # later reads are plain attribute hits
        return getattr(module, attr)


def lazy_import(name: str) -> types.ModuleType:
    """The module itself when it is already imported, else a stand-in importing it on first use."""
    return sys.modules.get(name) or _LazyModule(name)


def no_grad(function: F) -> F:
    """``@torch.no_grad()`` that imports torch when the function is called, not when it is defined."""

    @functools.wraps(function)
    def without_grad(*args: Any, **kwargs: Any) -> Any:
        import torch

        with torch.no_grad():
            return function(*args, **kwargs)

    return without_grad  # type: ignore[return-value]
