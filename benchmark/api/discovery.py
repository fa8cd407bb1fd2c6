"""Which module of a package registers which name, read from the source files without importing them.

Every ``.py`` file under the built-in packages (``methods/``, ``tasks/`` and their
subpackages) that mentions the registering decorator is a built-in module; its literal
``@register_method("name")`` / ``@register_task("name")`` decorators say which names it
defines. So a new file dropped into ``methods/`` is registered with no list to edit, and a
lookup imports only the module that defines the name (like timm's and lm-evaluation-harness's
lazy registries). A file that cannot be read is still returned, with no names: importing
it reports its error.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path


def package_files(package: str) -> dict[str, Path]:
    """``{module name: file}`` for every Python file under the top-level ``package``, found
    on the path as an import would find it, but not imported."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return {}
    files: dict[str, Path] = {}
    for root in map(Path, spec.submodule_search_locations):
        for path in sorted(root.rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if any(not part.isidentifier() for part in parts):  # __pycache__ copies, "foo-old.py": not importable
                continue
            if parts[-1] == "__init__":
                parts = parts[:-1]
            files.setdefault(".".join((package, *parts)), path)
    return files


def registered_names(source: str, decorator: str) -> list[str]:
    """The literal names ``source`` registers with ``@decorator("name")`` (also written
    ``@module.decorator(...)``), one decorator per line, as the built-ins write them. A
    pattern, not a parse: parsing every file costs more than `prunebench list` may take, and a
    name it misses is still found (by importing every built-in) when it is looked up."""
    pattern = _patterns.get(decorator)
    if pattern is None:
        pattern = _patterns[decorator] = re.compile(
            rf"^[ \t]*@(?:\w+\.)*{re.escape(decorator)}\(\s*(['\"])([^'\"\n]+)\1\s*\)", re.MULTILINE)
    return [match.group(2) for match in pattern.finditer(source)]


_patterns: dict[str, re.Pattern] = {}


def discover(packages: tuple[str, ...], decorator: str) -> dict[str, list[str] | None]:
    """``{module: names it registers (None: unreadable)}`` for the modules of ``packages``
    that mention ``decorator``, in file order."""
    found: dict[str, list[str] | None] = {}
    for package in packages:
        for module, path in package_files(package).items():
            try:
                source = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                found[module] = None  # importing it will say what is wrong
                continue
            if decorator in source:
                found[module] = registered_names(source, decorator)
    return found
