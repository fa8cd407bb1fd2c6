"""Rewrite ``benchmark/builtin_index.json``: what `prunebench list` shows of the built-in
methods and tasks without importing them. Run after adding or changing a built-in::

    python -m benchmark.registry_index
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

from benchmark.registry import INDEX_PATH, METHODS, TASKS


def build_index() -> dict:
    return {registry.kind: registry.index() for registry in (METHODS, TASKS)}


def write_index(path: Path = INDEX_PATH) -> None:
    path.write_text(json.dumps(build_index(), indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    write_index()
    print(f"written: {INDEX_PATH}", file=sys.stderr)
