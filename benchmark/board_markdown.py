"""The leaderboard as markdown (printed with tabulate, written to ``results/``)."""
from __future__ import annotations

from tabulate import tabulate

from .board_format import (LEGEND, cost_sections, detail_columns, detail_rows, normalised_grid, overview,
                           reference_line, task_heading)
from .leaderboard import FAMILIES, FAMILY_TITLE, Board
from .names import markdown_cell


def _table(headers: list[str], rows: list[list[str]]) -> str:
    # labels are free text: escaped, so a '|' cannot add a column nor '<b>' carry HTML
    return tabulate([[markdown_cell(c) for c in row] for row in rows], headers=[markdown_cell(h) for h in headers],
                    tablefmt="github", disable_numparse=True)


def render_markdown(board: Board) -> str:
    lines = [f"# Leaderboard: {board.experiment}", ""]
    if board.runs.empty:
        return "\n".join(lines + ["No finished cells yet."]) + "\n"
    lines += [f"Generated {board.generated} from {len(board.runs)} finished cells; "
              f"code version(s): {', '.join(board.code_versions)}."]
    if board.command:
        lines += ["", f"Command: `{board.command}`"]
    lines += ["", LEGEND, ""]
    for family in FAMILIES:
        headers, rows = normalised_grid(board, family)
        if rows:
            lines += [f"## Normalised score, {FAMILY_TITLE[family]}", "", _table(headers, rows), ""]
    for task in board.tasks:
        info = board.task_info(task)
        lines += [f"## {task_heading(board, task)}", "", reference_line(board, task), ""]
        for family in FAMILIES:
            table = board.tables.get((task, family))
            if table is None:
                continue
            body = [[text for text, _ in row] for row in detail_rows(table, family)]
            lines += [f"### {FAMILY_TITLE[family]}", "", _table(*overview(table)), "",
                      _table(detail_columns(family, info["metric"]), body), ""]
            for caption, headers, rows in cost_sections(board, task, family):
                lines += [markdown_cell(caption), ""] + ([_table(headers, rows), ""] if headers else [])
    return "\n".join(lines) + "\n"
