"""The leaderboard as one self-contained HTML page: sortable tables (click a column
heading), the plots inlined as PNG data, each method's provenance and each task's data
origin, and the command and code version that made it. No network assets."""
from __future__ import annotations

import base64
import html
import math

from .format import (LEGEND, cost_sections, detail_columns, detail_rows, normalised_grid, normalised_note,
                     overview, reference_line, task_heading)
from .plots import slug
from .method_notes import FILLED_NOTE, notes_table
from .leaderboard import FAMILIES, FAMILY_TITLE, Board

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 1500px; }
table { border-collapse: collapse; margin: 0.6em 0 1.4em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; white-space: nowrap; }
th { background: #f0f0f0; }
/* a wide table scrolls on its own, its first column kept in view; the detail tables wrap
   their cells instead, so that they fit a 1400-pixel window */
.wide { overflow-x: auto; max-width: 100%; }
.wide table { margin: 0.2em 0 0.8em; }
.wide th:first-child, .wide td:first-child { position: sticky; left: 0; z-index: 1; background: #fff; }
.wide th:first-child { background: #f0f0f0; }
table.sortable { font-size: 12px; }
table.sortable th, table.sortable td { white-space: normal; max-width: 11em; padding: 3px 5px; }
table.sortable td:first-child { max-width: 14em; }
table.equal-cost td { white-space: normal; max-width: 36em; }
tr.best td { background: #eaf5ea; }
.wide tr.best td:first-child { background: #eaf5ea; font-weight: bold; }
table.sortable th { cursor: pointer; }
table.sortable th[aria-sort=ascending]::after { content: " ▲"; }
table.sortable th[aria-sort=descending]::after { content: " ▼"; }
.simulated { color: #b00; font-weight: bold; }
.legend, .meta { font-size: 13px; color: #444; max-width: 1100px; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.3em 0; }
code { background: #f6f6f6; padding: 1px 4px; }
"""

# Sort on click: numbers by value (data-sort), text otherwise; empty keys always last.
SCRIPT = """
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, column) {
    th.addEventListener('click', function () {
      var ascending = th.getAttribute('aria-sort') !== 'ascending';
      table.querySelectorAll('th').forEach(function (other) { other.removeAttribute('aria-sort'); });
      th.setAttribute('aria-sort', ascending ? 'ascending' : 'descending');
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      function key(row) { return row.cells[column].getAttribute('data-sort'); }
      rows.sort(function (a, b) {
        var x = key(a), y = key(b);
        if (x === '') return y === '' ? 0 : 1;
        if (y === '') return -1;
        var nx = parseFloat(x), ny = parseFloat(y);
        var cmp = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
        return ascending ? cmp : -cmp;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"""


def _e(text) -> str:
    return html.escape(str(text))


def _sort_key(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, (bool,)):
        return str(int(value))
    if isinstance(value, (int, float)):
        return repr(float(value))
    return str(value)


def _plain_table(headers: list[str], rows: list[list[str]], css: str = "") -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="wide"><table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _sortable_table(headers: list[str], rows: list[list[tuple[str, object]]], table_id: str,
                    best: list[bool]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join(
        f'<tr{" class=best" if marked else ""}>'
        + "".join(f'<td data-sort="{_e(_sort_key(key))}">{_e(text)}</td>' for text, key in row) + "</tr>"
        for row, marked in zip(rows, best))
    return (f'<div class="wide"><table class="sortable" id="{_e(table_id)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _image(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_e(name)}" src="data:image/png;base64,{data}">'


def render_html(board: Board, plots: dict[str, bytes]) -> str:
    parts = [f"<h1>Leaderboard: {_e(board.experiment)}</h1>"]
    if board.runs.empty:
        parts.append("<p>No finished cells yet.</p>")
    else:
        origins = {task: board.task_info(task)["data_origin"] for task in board.tasks}
        parts += [
            '<div class="meta">',
            f"<p>Generated {_e(board.generated)} from {len(board.runs)} finished cells. "
            f"Code version(s): <code>{_e(', '.join(board.code_versions))}</code>.</p>",
            f"<p>Command: <code>{_e(board.command or '-')}</code></p>",
            "<p>Method provenance: " + ", ".join(f"<b>{_e(m)}</b> {_e(p)}" for m, p in board.provenance().items())
            + ".</p>",
            "<p>Task data: " + ", ".join(
                f'<b>{_e(t)}</b> <span class="{"simulated" if o == "simulated" else ""}">'
                f'{_e("SIMULATED" if o == "simulated" else o)}</span>' for t, o in origins.items()) + ".</p>",
            "</div>",
            f'<p class="legend">{_e(LEGEND)}</p>',
        ]
        for family in FAMILIES:
            headers, rows = normalised_grid(board, family)
            if rows:
                parts += [f"<h2>Normalised score, {_e(FAMILY_TITLE[family])}</h2>",
                          _plain_table(headers, rows, "normalised")]
        if normalised_note(board):
            parts.append(f"<p>{_e(normalised_note(board))}</p>")
        for task in board.tasks:
            info = board.task_info(task)
            heading = task_heading(board, task)
            parts += [f'<h2 class="{"simulated" if info["data_origin"] == "simulated" else ""}">{_e(heading)}</h2>',
                      f"<p>{_e(reference_line(board, task))}</p>"]
            for family in FAMILIES:
                table = board.tables.get((task, family))
                if table is None:
                    continue
                parts += [f"<h3>{_e(FAMILY_TITLE[family])}</h3>", _plain_table(*overview(table), "overview"),
                          _sortable_table(detail_columns(family, info["metric"], info["higher_is_better"]),
                                          detail_rows(table, family),
                                          f"{task}--{family}", [bool(b) for b in table["best"]])]
                for caption, headers, rows in cost_sections(board, task, family):
                    parts.append(f"<p>{_e(caption)}</p>")
                    if headers:
                        parts.append(_plain_table(headers, rows, "equal-cost"))
            for name, png in plots.items():
                if name.startswith(f"{slug(task)}-"):
                    parts.append(_image(name, png))
        headers, rows, filled = notes_table(board.runs)
        if rows:
            parts += ["<h2>Methods on this board: settings as run</h2>", _plain_table(headers, rows, "methods")]
            if filled:
                parts.append(f"<p>{_e(FILLED_NOTE)}</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Leaderboard: {_e(board.experiment)}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(parts)}<script>{SCRIPT}</script></body></html>\n")
