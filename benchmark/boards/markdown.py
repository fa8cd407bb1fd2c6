"""The leaderboard as markdown (printed with tabulate, written to ``results/``)."""
from __future__ import annotations

from tabulate import tabulate

from .format import (BEST_MARK, LEGEND, OFF_RATIO_KEY, ONE_SEED_NOTE, ORDER_RULES, cost_sections, detail_tables,
                     lead_grid, lead_text, mark_key, normalised_grid, normalised_note, normalised_tasks, one_seed,
                     overview, reference_line, task_heading)
from .method_notes import FILLED_NOTE, notes_table
from .leaderboard import FAMILIES, FAMILY_TITLE, Board
from ..sweeps.names import markdown_cell, markdown_code, markdown_text
from ..sweeps.tracking import SUMMARY_FILTER


def _table(headers: list[str], rows: list[list[str]]) -> str:
    # labels are free text: escaped, so a '|' cannot add a column nor '<b>' carry HTML
    return tabulate([[markdown_cell(c) for c in row] for row in rows], headers=[markdown_cell(h) for h in headers],
                    tablefmt="github", disable_numparse=True)


def lead_markdown(table, single: bool) -> tuple[list[str], list[list[str]]]:
    """The HTML board's lead table as markdown: methods by ratio, the best bold and marked."""
    ratios, rows = lead_grid(table, single)
    return ["method"] + [f"r={r:g}" for r in ratios], [[method] + [lead_text(c) for c in cells]
                                                       for method, cells in rows]


def render_markdown(board: Board) -> str:
    """As the HTML board: the answer first (per task and family a methods x ratio table), then
    the cross-task scores, the detail tables, the provenance and the definitions."""
    lines = [f"# Leaderboard: {board.experiment}", ""]
    if board.runs.empty:
        return "\n".join(lines + ["No finished cells yet."]) + "\n"
    single = one_seed(board)
    # run tags (code_version, task, data_origin, metric) are free text: escaped wherever they land
    lines += [f"{len(board.runs)} finished cells, {len(board.tasks)} task(s); generated {board.generated}.", ""]
    if single:
        lines += [f"**{ONE_SEED_NOTE}**", ""]
    lines += [f"{mark_key(single)} {ORDER_RULES} Definitions of every column: at the end.", ""]
    for task in board.tasks:
        lines += [f"## {markdown_text(task_heading(board, task))}", "", reference_line(board, task, single), ""]
        for family in FAMILIES:
            table = board.tables.get((task, family))
            if table is not None:
                lines += [f"**{FAMILY_TITLE[family]}**", "", _table(*lead_markdown(table, single)), ""]
    if len(board.tasks) > 1:
        for family in FAMILIES:
            headers, rows = normalised_grid(board, family)
            if rows:
                title = f"Normalised score over {normalised_tasks(board, family)} tasks, {FAMILY_TITLE[family]}"
                lines += [f"## {title}", "", _table(headers, rows), ""]
    if normalised_note(board):
        lines += [markdown_text(normalised_note(board)), ""]
    for task in board.tasks:
        info = board.task_info(task)
        lines += [f"## Details: {markdown_text(task_heading(board, task))}", ""]
        for family in FAMILIES:
            table = board.tables.get((task, family))
            if table is None:
                continue
            lines += [f"### {FAMILY_TITLE[family]}", ""]
            for caption, headers, rows in detail_tables(table, family, info["metric"], single,
                                                        info["higher_is_better"]):
                lines += [f"{caption}:", "", _table(headers, [[text for text, _ in row] for row in rows]), ""]
            for caption, headers, rows in cost_sections(board, task, family, single):
                lines += [markdown_text(caption), ""] + ([_table(headers, rows), ""] if headers else [])
    headers, rows, filled = notes_table(board.runs)
    if rows:
        lines += ["## Methods on this board: settings as run", "", _table(headers, rows), ""]
        lines += [FILLED_NOTE, ""] if filled else []
    lines += ["## Provenance", "", f"Code version(s): {markdown_text(', '.join(board.code_versions))}."]
    if board.command:
        lines += ["", f"Command: {markdown_code(board.command)}"]
    lines += ["", "## Definitions", "", LEGEND]
    return "\n".join(lines) + "\n"


MAX_NOTE = 16000  # characters: MLflow allows 20,000 in an experiment tag; the full board is the HTML


def render_note(board: Board, board_link: str = "", view_link: str = "") -> str:
    """The compact board for the experiment's description in MLflow: per task, the reference
    and each family's method x ratio overview (best marked); tasks that do not fit are named."""
    head = [f"## Leaderboard: {board.experiment}", "",
            f"{len(board.runs)} finished cells, generated {board.generated}; code version(s): "
            f"{markdown_text(', '.join(board.code_versions))}. Mean ± std over seeds of the test metric at the end of training; "
            f"{BEST_MARK} marks the best method of a ratio when its paired difference to the next best is not "
            f"noise (p < 0.05); {OFF_RATIO_KEY}"]
    view = f"[the board's view]({view_link})" if view_link else "the board's view"
    head += ["", f"The runs table in {view} (filter `{SUMMARY_FILTER}`, grouped by ratio, family and task in "
             "the board's order, `rank` 1 = best within a group) is the leaderboard: one summary run per task, "
             "method and ratio, each describing its columns and linking its cells. Choose *Model training* "
             "once in the sidebar: MLflow opens run pages in its GenAI layout until then. "
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
