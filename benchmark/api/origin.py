"""Where a method or task class comes from: the harness itself, or another package.

A class defined under this project's ``benchmark/``, ``methods/`` or ``tasks/`` folders is
built in; any other is third-party, and its runs carry the installed distribution's name and
version (``importlib.metadata``). A third-party method's provenance is what that package
declares on its own classes, else ``unknown``: inheriting a built-in's ``reference-code``
says nothing about the plugin's code.
"""
from __future__ import annotations

import functools
import sys
from importlib import metadata
from pathlib import Path

UNKNOWN = "unknown"
_ROOT = Path(__file__).resolve().parents[2]  # the project folder, above benchmark/api/
_BUILTIN_DIRS = tuple(_ROOT / name for name in ("benchmark", "methods", "tasks"))


def is_builtin(cls: type) -> bool:
    """Whether ``cls`` is defined in one of this project's own source folders."""
    module = sys.modules.get(cls.__module__)
    source = getattr(module, "__file__", None)
    if not source:
        return False
    path = Path(source).resolve()
    return any(path.is_relative_to(folder) for folder in _BUILTIN_DIRS)


def provenance_of(cls: type) -> str:
    """A built-in's own ``provenance``; for a third-party class, the value the nearest
    third-party class in its ancestry declares, else ``unknown``."""
    if is_builtin(cls):
        return getattr(cls, "provenance", UNKNOWN)
    for klass in cls.__mro__:
        if "provenance" in vars(klass) and not is_builtin(klass):
            return str(vars(klass)["provenance"])
    return UNKNOWN


@functools.lru_cache(maxsize=256)
def _distribution_of(top_level: str) -> str | None:
    names = metadata.packages_distributions().get(top_level) or []
    return names[0] if names else None


def package_of(cls: type) -> dict[str, str]:
    """``{"package": distribution, "package_version": version}`` of a third-party class
    (the module's name and its ``__version__``, or ``unknown``, when no installed
    distribution holds it); empty for a built-in."""
    if is_builtin(cls):
        return {}
    top_level = cls.__module__.split(".")[0]
    distribution = _distribution_of(top_level)
    if distribution is not None:
        try:
            return {"package": distribution, "package_version": metadata.version(distribution)}
        except metadata.PackageNotFoundError:
            pass
    version = getattr(sys.modules.get(top_level), "__version__", UNKNOWN)
    return {"package": top_level, "package_version": str(version)}


def origin_tags(kind: str, cls: type) -> dict[str, str]:
    """Run tags ``{kind}_package`` and ``{kind}_package_version`` for a third-party class."""
    return {f"{kind}_{key}": value for key, value in package_of(cls).items()}
