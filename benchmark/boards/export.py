"""A sweep's cells and board tables written out for a paper's own plots: CSV, JSON or parquet,
in a documented schema with a version (docs/export.md)."""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .leaderboard import Board

#: bumped whenever a column is renamed or removed (adding one keeps the version)
SCHEMA_VERSION = 1
FORMATS = ("csv", "json", "parquet")
#: a cell row's identity columns, first in every file
CELL_IDENTITY = ("cell_id", "task", "family", "method", "label", "ratio", "seed")


def cell_table(board: Board) -> pd.DataFrame:
    """One row per finished cell: identity, the headline metric (``metric``, ``value``), the
    realised figures and costs, and provenance; ``start_time`` as UTC milliseconds."""
    runs = board.runs
    if runs.empty:
        return pd.DataFrame(columns=["schema_version", *CELL_IDENTITY])
    rest = [c for c in runs.columns if c not in CELL_IDENTITY]
    cells = runs[[*CELL_IDENTITY, *rest]].sort_values(["task", "family", "label", "ratio", "seed"])
    return cells.reset_index(drop=True).assign(schema_version=SCHEMA_VERSION)[["schema_version", *cells.columns]]


def board_table(board: Board) -> pd.DataFrame:
    """Every board row (task, family, method label, ratio), in the board's order."""
    tables = [board.tables[key] for key in sorted(board.tables)]
    if not tables:
        return pd.DataFrame(columns=["schema_version", "task", "family", "method", "ratio"])
    rows = pd.concat(tables, ignore_index=True)
    return rows.assign(schema_version=SCHEMA_VERSION)[["schema_version", *rows.columns]]


def export(board: Board, out_dir: Path, fmt: str) -> list[Path]:
    """Write the cell and board tables of ``board`` into ``out_dir``; the paths written."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    out_dir.mkdir(parents=True, exist_ok=True)
    cells, rows = cell_table(board), board_table(board)
    stem = out_dir / board.experiment
    if fmt == "json":
        path = stem.with_name(f"{board.experiment}.json")
        document = {"schema_version": SCHEMA_VERSION, "experiment": board.experiment, "generated": board.generated,
                    "cells": json.loads(cells.drop(columns="schema_version").to_json(orient="records")),
                    "board": json.loads(rows.drop(columns="schema_version").to_json(orient="records"))}
        path.write_text(json.dumps(document, indent=1), encoding="utf-8")
        return [path]
    paths = [stem.with_name(f"{board.experiment}-cells.{fmt}"), stem.with_name(f"{board.experiment}-board.{fmt}")]
    for table, path in zip((cells, rows), paths):
        if fmt == "csv":
            table.to_csv(path, index=False)
        else:
            table.to_parquet(path, index=False)
    return paths
