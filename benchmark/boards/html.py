"""The leaderboard as one self-contained HTML page that leads with the answer: per task (one
tab each) and family a compact table of methods by ratio, the headline metric with its
interval, the best of each ratio marked and significance as a separate mark; the definitions
behind a disclosure and in the column headings' tooltips; then the plots, the detail tables
(sortable: click a heading; numbers never wrap) and the provenance. With :class:`.links.BoardLinks`
every row links to its summary run and its cells in the MLflow UI. No network assets: the
plots are inlined as PNG data, the tabs are CSS."""
from __future__ import annotations

import base64
import html
import math

from .format import (BEST_MARK, LEGEND, OFF_RATIO_KEY, ONE_SEED_NOTE, ORDER_RULES, TOP_MARK, column_help, cost_sections,
                     detail_tables, lead_grid, mark_key, missing, normalised_grid, normalised_note, normalised_tasks,
                     one_seed, ranks, reference_line, simulated, task_heading)
from .leaderboard import FAMILIES, FAMILY_TITLE, Board, table_baseline
from .links import BoardLinks
from .method_notes import FILLED_NOTE, notes_table
from .plots import slug

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.2em 2em; color: #222; max-width: 1500px; }
h1 { font-size: 22px; margin: 0 0 0.2em; }
h2 { font-size: 18px; margin: 0.5em 0 0.2em; }
h3 { font-size: 15px; margin: 0.7em 0 0.2em; }
p { margin: 0.3em 0; }
table { border-collapse: collapse; margin: 0.3em 0 0.8em; font-size: 13px; }
th, td { border: 1px solid #ccc; padding: 3px 7px; text-align: left; white-space: nowrap; }
/* long headings ("Δ random-weights @ equal FLOPs") wrap, so a detail table fits a laptop's width */
th { background: #f0f0f0; white-space: normal; vertical-align: bottom; min-width: 3.5em; }
th[title] { text-decoration: underline dotted #999; cursor: help; }
/* a wide table scrolls on its own, its first column kept in view; numbers never wrap */
.wide { overflow-x: auto; max-width: 100%; }
.wide th:first-child, .wide td:first-child { position: sticky; left: 0; z-index: 1; background: #fff; }
.wide th:first-child { background: #f0f0f0; }
table.lead { font-size: 14px; }
table.lead td.top { background: #eaf5ea; }
table.lead .ci { color: #666; font-size: 12px; }
table.lead .off { color: #a15c00; font-size: 12px; }
table.lead a { color: inherit; }
.mark { color: #1a7f37; font-weight: bold; }
table.sortable { font-size: 12px; }
table.sortable th, table.sortable td { padding: 3px 5px; }
table.equal-cost td { white-space: normal; max-width: 36em; }
tr.top td:first-child { font-weight: bold; }
tr.top td { background: #eaf5ea; }
table.sortable th { cursor: pointer; }
table.sortable th[aria-sort=ascending]::after { content: " ▲"; }
table.sortable th[aria-sort=descending]::after { content: " ▼"; }
.simulated { color: #b00; font-weight: bold; }
.note { font-weight: bold; color: #8a4b00; }
.key, .meta, .info, details { font-size: 13px; color: #444; max-width: 1100px; }
details { margin: 0.3em 0; }
details summary { cursor: pointer; color: #0550ae; }
a { color: #0550ae; text-decoration: none; }
a:hover { text-decoration: underline; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.3em 0; }
code { background: #f6f6f6; padding: 1px 4px; }
/* tabs: one radio button per task; the checked one's panel shows (no script needed) */
.tabs > input { position: absolute; opacity: 0; pointer-events: none; }
.tabs > label { display: inline-block; padding: 5px 14px; border: 1px solid #ccc; border-bottom: none;
  background: #f6f6f6; cursor: pointer; font-size: 14px; margin-right: 2px; border-radius: 4px 4px 0 0; }
.tabs > input:checked + label { background: #fff; font-weight: bold; position: relative; top: 1px; }
.tabs > input:focus-visible + label { outline: 2px solid #0550ae; }
.tabs > section { display: none; border-top: 1px solid #ccc; padding-top: 0.2em; }
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


def _link(text: str, url: str | None, title: str) -> str:
    return f'<a href="{_e(url)}" title="{_e(title)}">{text}</a>' if url else text


def _heading(text: str, help_text: dict[str, str]) -> str:
    tip = help_text.get(text)
    return f'<th title="{_e(tip)}">{_e(text)}</th>' if tip else f"<th>{_e(text)}</th>"


def _plain_table(headers: list[str], rows: list[list[str]], css: str = "",
                 help_text: dict[str, str] | None = None) -> str:
    head = "".join(_heading(h, help_text or {}) for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<div class="wide"><table class="{css}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _sortable_table(headers: list[str], rows: list[list[tuple[str, object]]], table_id: str,
                    classes: list[str], help_text: dict[str, str], links: list[dict[int, tuple[str, str]]]) -> str:
    """``links``: per row, column -> (url, title) for the cells that link out."""
    head = "".join(_heading(h, help_text) for h in headers)
    body = "".join(
        f'<tr class="{css}">' + "".join(
            f'<td data-sort="{_e(_sort_key(key))}">'
            f'{_link(_e(text), *out.get(i, (None, "")))}</td>' for i, (text, key) in enumerate(row)) + "</tr>"
        for row, css, out in zip(rows, classes, links))
    return (f'<div class="wide"><table class="sortable" id="{_e(table_id)}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _image(name: str, png: bytes) -> str:
    data = base64.b64encode(png).decode("ascii")
    return f'<img alt="{_e(name)}" src="data:image/png;base64,{data}">'


def lead_table(board: Board, task: str, family: str, single: bool, links: BoardLinks | None) -> str:
    """Methods by ratio: the mean with its interval, the best of each ratio bold and marked
    (:data:`TOP_MARK`), significance against the next best as its own mark (:data:`BEST_MARK`)."""
    table = board.tables[(task, family)]
    metric = board.task_info(task)["metric"]
    ratios, rows = lead_grid(table, single)
    what = "training samples" if family == "data" else "prunable weights"
    cell_tip = (f"mean test {metric} over seeds" + ("" if single else " [95% CI]")
                + f"; {TOP_MARK} best mean at this ratio; {BEST_MARK} ahead of the next best (paired t-test, p < 0.05)")
    head = ('<th title="methods by their mean rank over the ratios, then by name">method</th>'
            + "".join(f'<th title="{_e(f"ratio {r:g}: fraction of {what} removed. Cell: {cell_tip}")}">r={r:g}</th>'
                      for r in ratios))
    body = []
    for method, cells in rows:
        tds = [f"<td>{_e(method)}</td>"]
        for ratio, cell in zip(ratios, cells):
            if cell is None:
                tds.append("<td></td>")
                continue
            value = f"<b>{_e(cell.value)}</b>" if cell.top else _e(cell.value)
            url = links.summary(task, family, method, ratio) if links else None
            parts = [_link(value, url, "the summary run in MLflow")]
            if cell.interval:
                parts.append(f'<span class="ci">{_e(cell.interval)}</span>')
            if cell.top:
                parts.append(f'<span class="mark" title="best mean at r={ratio:g}">{TOP_MARK}</span>')
            if cell.significant:
                parts.append(f'<span class="mark" title="ahead of the next best at r={ratio:g} by more than noise '
                             f'(paired t-test, p &lt; 0.05)">{BEST_MARK}</span>')
            if cell.removed:
                parts.append(f'<span class="off" title="{_e(OFF_RATIO_KEY)}">{_e(cell.removed)}</span>')
            tds.append(f'<td class="{"top" if cell.top else ""}">{" ".join(parts)}</td>')
        body.append("<tr>" + "".join(tds) + "</tr>")
    return (f'<div class="wide"><table class="lead" id="lead-{_e(task)}--{family}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table></div>")


def _detail(board: Board, task: str, family: str, single: bool, links: BoardLinks | None) -> list[str]:
    table = board.tables[(task, family)]
    info = board.task_info(task)
    metric = info["metric"]
    help_text = column_help(family, metric, table_baseline(table, family))
    parts = []
    row_keys = list(zip(table.method, table.ratio))
    for i, (caption, headers, rows) in enumerate(detail_tables(table, family, metric, single,
                                                                             info["higher_is_better"])):
        best = [not missing(b) and bool(b) for b in table.get("best", [False] * len(table))]
        classes = [" ".join((["top"] if rank == 1 else []) + (["best"] if marked else []))
                   for rank, marked in zip(ranks(table), best)]
        out = []
        for method, ratio in row_keys:
            cells = {}
            if links:
                cells[0] = (links.summary(task, family, method, ratio), "the summary run in MLflow")
                if "seeds" in headers:
                    cells[headers.index("seeds")] = (links.cells(board.runs, task, family, method, ratio),
                                                     "the row's cells in MLflow")
            out.append({k: v for k, v in cells.items() if v[0]})
        table_id = f"{task}--{family}" + ("" if i == 0 else "--cost")
        parts += [f"<p>{_e(caption)}:</p>", _sortable_table(headers, rows, table_id, classes, help_text, out)]
    for caption, headers, rows in cost_sections(board, task, family, single):
        parts.append(f"<p>{_e(caption)}</p>")
        if headers:
            parts.append(_plain_table(headers, rows, "equal-cost"))
    return parts


def _task_panel(board: Board, task: str, plots: dict[str, bytes], single: bool, links: BoardLinks | None) -> str:
    parts = [f'<h2 class="{"simulated" if simulated(board, task) else ""}">{_e(task_heading(board, task))}</h2>',
             f"<p>{_e(reference_line(board, task, single))}</p>"]
    families = [f for f in FAMILIES if (task, f) in board.tables]
    for family in families:
        parts += [f"<h3>{_e(FAMILY_TITLE[family])}</h3>", lead_table(board, task, family, single, links)]
    shown = [(name, png) for name, png in plots.items() if name.startswith(f"{slug(task)}-")]
    if shown:
        parts.append("<h3>Plots: the difference to the reference, the metric, the metric against cost</h3>")
        parts += [_image(name, png) for name, png in shown]
    for family in families:
        parts.append(f"<h3>Details, {_e(FAMILY_TITLE[family])}</h3>")
        parts += _detail(board, task, family, single, links)
    return "".join(parts)


def _tabs(board: Board, panels: list[str]) -> str:
    """One tab per task (radio buttons and CSS: the page needs no script to switch)."""
    if len(panels) == 1:
        return f"<section>{panels[0]}</section>"
    inputs, sections, rules = [], [], []
    for i, (task, panel) in enumerate(zip(board.tasks, panels)):
        mark = " (SIMULATED)" if simulated(board, task) else ""
        inputs.append(f'<input type="radio" name="task-tab" id="tab-{i}"{" checked" if i == 0 else ""}>'
                      f'<label for="tab-{i}" class="tab">{_e(task + mark)}</label>')
        sections.append(f'<section id="panel-{i}" class="panel" data-task="{_e(task)}">{panel}</section>')
        rules.append(f"#tab-{i}:checked ~ #panel-{i}")
    style = f"<style>{', '.join(rules)} {{ display: block; }}</style>"
    return f'{style}<div class="tabs">{"".join(inputs)}{"".join(sections)}</div>'


def _meta(board: Board) -> str:
    origins = {task: board.task_info(task)["data_origin"] for task in board.tasks}
    return "".join([
        '<div class="meta"><h2>Provenance</h2>',
        f"<p>Command: <code>{_e(board.command or '-')}</code></p>",
        f"<p>Code version(s): <code>{_e(', '.join(board.code_versions))}</code>.</p>",
        "<p>Method provenance: " + ", ".join(f"<b>{_e(m)}</b> {_e(p)}" for m, p in board.provenance().items())
        + ".</p>",
        "<p>Task data: " + ", ".join(
            f'<b>{_e(t)}</b> <span class="{"simulated" if o == "simulated" else ""}">'
            f'{_e("SIMULATED" if o == "simulated" else o)}</span>' for t, o in origins.items()) + ".</p>",
        "</div>"])


def render_html(board: Board, plots: dict[str, bytes], links: BoardLinks | None = None) -> str:
    parts = [f"<h1>Leaderboard: {_e(board.experiment)}</h1>"]
    if board.runs.empty:
        parts.append("<p>No finished cells yet.</p>")
    else:
        single = one_seed(board)
        tasks = len(board.tasks)
        parts.append(f'<p class="info">{len(board.runs)} finished cells, {tasks} task{"s" if tasks != 1 else ""}; '
                     f"generated {_e(board.generated)}. "
                     + ("Each figure links to its run in MLflow." if links else "") + "</p>")
        if single:
            parts.append(f'<p class="note" id="one-seed">{_e(ONE_SEED_NOTE)}</p>')
        parts += [f'<p class="key">{_e(mark_key(single))} {_e(ORDER_RULES)}</p>',
                  f"<details><summary>Definitions of every column and figure</summary><p>{_e(LEGEND)}</p></details>",
                  _tabs(board, [_task_panel(board, task, plots, single, links) for task in board.tasks])]
        if tasks > 1:
            for family in FAMILIES:
                headers, rows = normalised_grid(board, family)
                if rows:
                    parts += [f"<h2>Normalised score over {normalised_tasks(board, family)} tasks, "
                              f"{_e(FAMILY_TITLE[family])}</h2>",
                              _plain_table(headers, rows, "normalised")]
        if normalised_note(board):
            parts.append(f"<p>{_e(normalised_note(board))}</p>")
        headers, rows, filled = notes_table(board.runs)
        if rows:
            parts += ["<h2>Methods on this board: settings as run</h2>", _plain_table(headers, rows, "methods")]
            if filled:
                parts.append(f"<p>{_e(FILLED_NOTE)}</p>")
        parts.append(_meta(board))
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>Leaderboard: {_e(board.experiment)}</title><style>{STYLE}</style></head>"
            f"<body>{''.join(parts)}<script>{SCRIPT}</script></body></html>\n")
