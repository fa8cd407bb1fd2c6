"""Name -> class registries for pruning methods and tasks.

A method or task is registered with a decorator::

    @register_method("el2n")
    class EL2N(DataPruner): ...

Built-ins are found, not listed: every module under the ``methods`` and ``tasks`` packages
(subpackages included) whose source uses the decorator is one (see :mod:`benchmark.api.discovery`),
and looking a name up imports only the module that registers it. Third-party packages add
their own through entry points in the groups ``prunebench.methods`` and ``prunebench.tasks``;
an entry point names a module (or an object in it) whose import runs the decorators.

Nothing is imported at import time of this module. The built-in classes' modules import
torch only where they compute, so `prunebench list` and `validate` run without it. A module or
plugin whose import fails is not an unknown name: every lookup that could have found the name
there, and ``list``, say ``failed to load: <the error>``, naming the module.
"""
from __future__ import annotations

import difflib
import importlib
import math
import os
import re
import threading
from typing import Any, Callable

from .discovery import discover

_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


class RegistryError(KeyError):
    """An unknown, clashing or unloadable name; the message says what would be right."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry:
    """One namespace of unique, lower-case names mapped to classes."""

    def __init__(self, kind: str, packages: tuple[str, ...] = (), entry_point_group: str = "",
                 describe: Callable[[type], dict[str, Any]] | None = None, decorator: str = ""):
        self.kind = kind
        self.describe = describe or (lambda cls: {})  # what `prunebench list` shows of a class
        self.entry_point_group = entry_point_group
        self.packages = tuple(packages)
        self.decorator = decorator or f"register_{kind}"
        self._entries: dict[str, type] = {}
        self._modules: dict[str, list[str] | None] | None = None  # discovered: module -> its names
        self._imported: set[str] = set()
        self._plugins_loaded = False
        self._errors: dict[str, str] = {}  # module or entry point -> "failed to load: ..."
        self._error_names: dict[str, str] = {}  # a name whose module failed -> that module's key

    def register(self, name: str) -> Callable[[type], type]:
        if not _NAME_PATTERN.match(name):
            raise RegistryError(
                f"{self.kind} name {name!r} is invalid: use lower case letters, digits, '-', '_' or '.'"
            )

        def decorate(cls: type) -> type:
            existing = self._entries.get(name)
            if existing is not None and existing is not cls and _qualname(existing) != _qualname(cls):
                raise RegistryError(
                    f"{self.kind} {name!r} is already registered by {_qualname(existing)}; "
                    f"choose another name for {_qualname(cls)}"
                )
            cls.name = name
            self._entries[name] = cls
            return cls

        return decorate

    def get(self, name: str) -> type:
        try:
            if name in self._entries:
                return self._entries[name]
        except TypeError:  # an unhashable name from a malformed file
            raise RegistryError(self._unknown_message(name)) from None
        # the module that registers it; else every built-in (a name registered by code the
        # source scan cannot read, e.g. in a loop) and the plugins
        for load in (lambda: self._import_all(self._modules_naming(name)), self._load):
            load()
            if name in self._entries:
                return self._entries[name]
        if name in self._error_names:
            raise RegistryError(f"{self.kind} {name!r} {self._errors[self._error_names[name]]}")
        raise RegistryError(self._unknown_message(name))

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, type]]:
        return [(name, self._entries[name]) for name in self.names()]

    def __contains__(self, name: str) -> bool:
        try:
            self.get(name)
        except RegistryError:
            return False
        return True

    @property
    def load_errors(self) -> dict[str, str]:
        """``{name (or module, if its names are unknown): "failed to load: ..."}`` for every
        built-in module and plugin whose import failed."""
        self._load()
        named = {name: self._errors[key] for name, key in self._error_names.items()}
        anonymous = {key: error for key, error in self._errors.items() if key not in self._error_names.values()}
        return {**named, **anonymous}

    def listing(self) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, str]]:
        """``([(name, description)], load errors)``, sorted by name."""
        return [(name, self.describe(cls)) for name, cls in self.items()], self.load_errors

    def reload(self) -> None:
        """Look for entry points again (used after installing a plugin at run time)."""
        self._plugins_loaded = False
        self._modules = None
        self._load()

    # --- loading --------------------------------------------------------------------

    def _discovered(self) -> dict[str, list[str] | None]:
        if self._modules is None:
            self._modules = discover(self.packages, self.decorator)
        return self._modules

    def _modules_naming(self, name: str) -> list[str]:
        return [module for module, names in self._discovered().items() if names and name in names]

    def _import_all(self, modules) -> None:
        for module in modules:
            if module in self._imported:
                continue
            error = import_with_time_limit(lambda name=module: importlib.import_module(name))
            if error is not None:  # one broken module must not hide the others
                self._failed(module, f"failed to load: module {module} {error}", self._discovered().get(module) or [])
            self._imported.add(module)  # not on Ctrl-C: the next lookup tries again

    def _load(self) -> None:
        """Every built-in module, then the plugins (so a plugin cannot take a built-in's name)."""
        self._import_all(self._discovered())
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        from importlib import metadata  # not needed to look a built-in up

        for entry_point in metadata.entry_points(group=self.entry_point_group):
            error = import_with_time_limit(entry_point.load)
            if error is not None:  # a broken plugin must not hide the built-ins
                self._failed(entry_point.name,
                             f"failed to load: plugin module {entry_point.value} (entry point "
                             f"{entry_point.name!r} in {self.entry_point_group}) {error}", [entry_point.name])

    def _failed(self, key: str, message: str, names: list[str]) -> None:
        self._errors[key] = message
        for name in names:
            if name not in self._entries:
                self._error_names.setdefault(name, key)

    def _unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(str(name).lower(), self._entries, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        failed = "".join(f" Not loaded (it may be there): {error}." for error in self._errors.values())
        return (
            f"unknown {self.kind} {name!r}.{hint} Registered: {', '.join(sorted(self._entries))}.{failed} "
            f"Run `prunebench list` to see every {self.kind}."
        )


def _error_text(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


IMPORT_TIME_LIMIT_ENV = "PRUNEBENCH_IMPORT_TIMEOUT_S"
DEFAULT_IMPORT_TIME_LIMIT_S = 60.0
_IMPORT_THREAD = "prunebench-import"


def import_time_limit() -> float:
    """Seconds a module's or plugin's import may take (``$PRUNEBENCH_IMPORT_TIMEOUT_S``, else 60:
    ample for a module that imports torch on a loaded machine)."""
    raw = os.environ.get(IMPORT_TIME_LIMIT_ENV, "")
    try:
        value = float(raw) if raw else DEFAULT_IMPORT_TIME_LIMIT_S
    except ValueError:
        raise RegistryError(f"{IMPORT_TIME_LIMIT_ENV}={raw!r} is not a number of seconds; unset it or give "
                            f"one such as 60") from None
    if not math.isfinite(value) or value <= 0:
        raise RegistryError(f"{IMPORT_TIME_LIMIT_ENV}={raw!r} must be a positive number of seconds")
    return value


def import_with_time_limit(load: Callable[[], Any]) -> str | None:
    """Run ``load`` (an import) in a daemon thread for at most :func:`import_time_limit` seconds;
    None if it succeeded, else what went wrong ("raised ...", "import took longer than N s").
    Python's import lock is per module, so a plugin stuck in its import holds up no other
    import; its thread is left behind (a daemon: it does not keep the process alive). Anything
    the import raises, SystemExit included, is reported, never propagated."""
    if threading.current_thread().name == _IMPORT_THREAD:  # an import that looks a name up: the outer
        try:                                                # limit covers it (a thread per level could
            load()                                          # deadlock on the outer module's lock)
        except BaseException as error:
            return f"raised {_error_text(error)}"
        return None
    limit = import_time_limit()
    outcome: list[BaseException | None] = []

    def target() -> None:
        try:
            load()
            outcome.append(None)
        except BaseException as error:  # a plugin's sys.exit must not end `list`
            outcome.append(error)

    thread = threading.Thread(target=target, name=_IMPORT_THREAD, daemon=True)
    thread.start()
    thread.join(limit)
    if thread.is_alive():
        return f"import took longer than {limit:g} s (still running; set {IMPORT_TIME_LIMIT_ENV} to wait longer)"
    error = outcome[0] if outcome else RuntimeError("the import thread ended without a result")
    return None if error is None else f"raised {_error_text(error)}"


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _describe_method(cls: type) -> dict[str, Any]:
    from .origin import provenance_of  # a plugin subclassing a built-in is not the built-in's code

    return {"family": cls.family, "provenance": provenance_of(cls), "options": cls.option_names()}


def _describe_task(cls: type) -> dict[str, Any]:
    return {"family": cls.family, "data_origin": cls.data_origin, "metric": cls.metric,
            "profiles": list(cls.profiles), "chance_level": cls.chance_level,
            "data_summary": getattr(cls, "data_summary", "")}


METHODS = Registry("method", packages=("methods",), entry_point_group="prunebench.methods",
                   describe=_describe_method)
TASKS = Registry("task", packages=("tasks",), entry_point_group="prunebench.tasks", describe=_describe_task)

register_method = METHODS.register
register_task = TASKS.register
get_method = METHODS.get
get_task = TASKS.get
