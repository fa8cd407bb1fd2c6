"""The leaderboard as markdown (printed with tabulate, written to ``results/``)."""
from __future__ import annotations

from tabulate import tabulate

from .format import (BEST_MARK, LEGEND, cost_sections, detail_columns, detail_rows, normalised_grid,
                     normalised_note, overview, reference_line, task_heading)
from .method_notes import FILLED_NOTE, notes_table
from .leaderboard import FAMILIES, FAMILY_TITLE, Board
from ..sweeps.names import markdown_cell, markdown_code, markdown_text
from ..sweeps.tracking import SUMMARY_FILTER


def _table(headers: list[str], rows: list[list[str]]) -> str:
    # labels are free text: escaped, so a '|' cannot add a column nor '<b>' carry HTML
    return tabulate([[markdown_cell(c) for c in row] for row in rows], headers=[markdown_cell(h) for h in headers],
                    tablefmt="github", disable_numparse=True)


def render_markdown(board: Board) -> str:
    lines = [f"# Leaderboard: {board.experiment}", ""]
    if board.runs.empty:
        return "\n".join(lines + ["No finished cells yet."]) + "\n"
    # run tags (code_version, task, data_origin, metric) are free text: escaped wherever they land
    lines += [f"Generated {board.generated} from {len(board.runs)} finished cells; "
              f"code version(s): {markdown_text(', '.join(board.code_versions))}."]
    if board.command:
        lines += ["", f"Command: {markdown_code(board.command)}"]
    lines += ["", LEGEND, ""]
    for family in FAMILIES:
        headers, rows = normalised_grid(board, family)
        if rows:
            lines += [f"## Normalised score, {FAMILY_TITLE[family]}", "", _table(headers, rows), ""]
    if normalised_note(board):
        lines += [markdown_text(normalised_note(board)), ""]
    for task in board.tasks:
        info = board.task_info(task)
        lines += [f"## {markdown_text(task_heading(board, task))}", "", reference_line(board, task), ""]
        for family in FAMILIES:
            table = board.tables.get((task, family))
            if table is None:
                continue
            body = [[text for text, _ in row] for row in detail_rows(table, family)]
            lines += [f"### {FAMILY_TITLE[family]}", "", _table(*overview(table)), "",
                      _table(detail_columns(family, info["metric"], info["higher_is_better"]), body), ""]
            for caption, headers, rows in cost_sections(board, task, family):
                lines += [markdown_text(caption), ""] + ([_table(headers, rows), ""] if headers else [])
    headers, rows, filled = notes_table(board.runs)
    if rows:
        lines += ["## Methods on this board: settings as run", "", _table(headers, rows), ""]
        lines += [FILLED_NOTE, ""] if filled else []
    return "\n".join(lines) + "\n"


MAX_NOTE = 16000  # characters: MLflow allows 20,000 in an experiment tag; the full board is the HTML


def render_note(board: Board, board_link: str = "", view_link: str = "") -> str:
    """The compact board for the experiment's description in MLflow: per task, the reference
    and each family's method x ratio overview (best marked); tasks that do not fit are named."""
    head = [f"## Leaderboard: {board.experiment}", "",
            f"{len(board.runs)} finished cells, generated {board.generated}; code version(s): "
            f"{markdown_text(', '.join(board.code_versions))}. Mean ± std over seeds of the test metric at the end of training; "
            f"{BEST_MARK} marks the best method of a ratio when its paired difference to the next best is not "
            "noise (p < 0.05)."]
    view = f"[the board's view]({view_link})" if view_link else "the board's view"
    head += ["", f"The runs table in {view} (filter `{SUMMARY_FILTER}`, sorted by `mean`) is the leaderboard: one "
             "summary run per task, method and ratio, every figure of the board a metric (`ci_low`, "
             "`delta_full`, `p_random`, `cost_rel`, `speedup` ...). "
             + (f"Detail tables, equal-cost comparisons and plots: [the full board]({board_link})." if board_link
                else "Detail tables, equal-cost comparisons and plots: the full board (HTML)."), ""]
    blocks = []
    for task in board.tasks:
        lines = [f"### {markdown_text(task_heading(board, task))}", "", reference_line(board, task), ""]
        for family in FAMILIES:
            table = board.tables.get((task, family))
            if table is not None:
                lines += [f"**{FAMILY_TITLE[family]}**", "", _table(*overview(table)), ""]
        blocks.append("\n".join(lines))
    text = "\n".join(head)
    for shown, block in enumerate(blocks):
        if len(text) + len(block) > MAX_NOTE - 200:
            rest = board.tasks[shown:]
            return text + f"\n… and {len(rest)} more task(s) ({markdown_text(', '.join(rest)[:500])}): see the full board.\n"
        text += "\n" + block
    return text
