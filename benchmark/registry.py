"""Name -> class registries for pruning methods and tasks.

A method or task is registered with a decorator::

    @register_method("el2n")
    class EL2N(DataPruner): ...

Third-party packages add their own through entry points in the groups
``prunebench.methods`` and ``prunebench.tasks``; an entry point names a module
(or an object in it) whose import runs the decorators. Built-in modules and
plugins are imported the first time a registry is looked up, never at import
time of this module. `prunebench list` imports none of them: it reads what it shows
of the built-ins from ``builtin_index.json`` (written by ``python -m benchmark.registry_index``,
checked against the classes by the tests), so it starts without torch.
"""
from __future__ import annotations

import difflib
import importlib
import json
import re
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterable

_NAME_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
INDEX_PATH = Path(__file__).with_name("builtin_index.json")


class RegistryError(KeyError):
    """An unknown or clashing name; the message says what would be right."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class Registry:
    """One namespace of unique, lower-case names mapped to classes."""

    def __init__(self, kind: str, builtin_modules: Iterable[str], entry_point_group: str,
                 describe: Callable[[type], dict[str, Any]] | None = None):
        self.kind = kind
        self.describe = describe or (lambda cls: {})  # what `prunebench list` shows of a class
        self.entry_point_group = entry_point_group
        self._builtin_modules = tuple(builtin_modules)
        self._entries: dict[str, type] = {}
        self._loaded = False
        self._plugin_errors: dict[str, str] = {}

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
        self._load()
        try:
            return self._entries[name]
        except (KeyError, TypeError):  # TypeError: an unhashable name from a malformed file
            raise RegistryError(self._unknown_message(name)) from None

    def names(self) -> list[str]:
        self._load()
        return sorted(self._entries)

    def items(self) -> list[tuple[str, type]]:
        return [(name, self._entries[name]) for name in self.names()]

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._entries

    @property
    def plugin_errors(self) -> dict[str, str]:
        """Entry points that failed to import, with the error; shown by `prunebench list`."""
        self._load()
        return dict(self._plugin_errors)

    def listing(self) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, str]]:
        """``([(name, description)], plugin errors)``, sorted by name. With no plugin installed
        and an index that covers exactly the built-in modules, nothing is imported."""
        index = read_index().get(self.kind)
        if (not self._loaded and index is not None and index["modules"] == list(self._builtin_modules)
                and not metadata.entry_points(group=self.entry_point_group)):
            return sorted(index["entries"].items()), {}
        return [(name, self.describe(cls)) for name, cls in self.items()], self.plugin_errors

    def index(self) -> dict[str, Any]:
        """The built-ins' descriptions, as ``builtin_index.json`` holds them (imports them all)."""
        for module in self._builtin_modules:
            importlib.import_module(module)
        builtin = {n: cls for n, cls in self._entries.items() if cls.__module__ in self._builtin_modules}
        return {"modules": list(self._builtin_modules),
                "entries": {n: self.describe(builtin[n]) for n in sorted(builtin)}}

    def _unknown_message(self, name: str) -> str:
        close = difflib.get_close_matches(str(name).lower(), self._entries, n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        return (
            f"unknown {self.kind} {name!r}.{hint} Registered: {', '.join(sorted(self._entries))}. "
            f"Run `prunebench list` to see every {self.kind}."
        )

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True  # set first: modules being imported call register()
        try:
            for module in self._builtin_modules:
                importlib.import_module(module)
        except BaseException:
            self._loaded = False  # fail again on the next lookup rather than return a partial registry
            raise
        for entry_point in metadata.entry_points(group=self.entry_point_group):
            try:
                entry_point.load()
            except Exception as error:  # a broken plugin must not hide the built-ins
                self._plugin_errors[entry_point.name] = f"{type(error).__name__}: {error}"

    def reload(self) -> None:
        """Look for entry points again (used after installing a plugin at run time)."""
        self._loaded = False
        self._load()


def _qualname(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def read_index() -> dict[str, Any]:
    try:
        return json.loads(INDEX_PATH.read_text())
    except (OSError, ValueError):  # no index (or a broken one): list imports the modules instead
        return {}


def _describe_method(cls: type) -> dict[str, Any]:
    return {"family": cls.family, "provenance": cls.provenance, "options": cls.option_names()}


def _describe_task(cls: type) -> dict[str, Any]:
    return {"family": cls.family, "data_origin": cls.data_origin, "metric": cls.metric,
            "profiles": list(cls.profiles), "chance_level": cls.chance_level,
            "data_summary": getattr(cls, "data_summary", "")}


METHODS = Registry(
    "method",
    builtin_modules=[
        "methods.reference",
        "methods.random_data",
        "methods.el2n",
        "methods.emp",
        "methods.ted",
        "methods.magnitude",
        "methods.random_weights",
        "methods.seven",
    ],
    entry_point_group="prunebench.methods",
    describe=_describe_method,
)
TASKS = Registry(
    "task",
    builtin_modules=["tasks.vision.fashion_mnist", "tasks.vision.cifar", "tasks.cwru.task", "tasks.text.task",
                     "tasks.sft.task"],
    entry_point_group="prunebench.tasks",
    describe=_describe_task,
)

register_method = METHODS.register
register_task = TASKS.register
get_method = METHODS.get
get_task = TASKS.get
