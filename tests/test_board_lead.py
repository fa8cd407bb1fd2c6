"""The board leads with the answer: per task (one tab each) and family a methods x ratio table
whose best cell of every ratio is marked, significance as its own mark, one-seed boards saying
so once; its rows link into the MLflow UI; the plots keep one style per method, say SIMULATED,
hold every element in their legends and draw one ratio as markers. Boards built from known
cells in memory (no store), the marks checked against an independent computation."""
from __future__ import annotations

import itertools
from html import escape as html_escape
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from benchmark.boards.format import BEST_MARK, LEGEND, ONE_SEED_NOTE, TOP_MARK
from benchmark.boards.html import render_html
from benchmark.boards.leaderboard import RUN_METRICS, build_board
from benchmark.boards.links import BoardLinks, cells_url, run_url
from benchmark.boards.markdown import render_markdown, render_note
from benchmark.boards.plots import board_figures

RNG = np.random.default_rng(7)
DATA = ("random", "el2n", "emp", "ted", "forgetting")
MODEL = ("random-weights", "magnitude", "wanda")
# each method's true accuracy drop per unit ratio: the boards' order is decided by these
SLOPE = {"random": 0.20, "el2n": 0.35, "emp": 0.15, "ted": 0.10, "forgetting": 0.25,
         "random-weights": 0.30, "magnitude": 0.08, "wanda": 0.12}


def make_runs(tasks=("cwru-sim", "fashion-mnist"), seeds=(0, 1, 2), ratios=(0.3, 0.5, 0.7, 0.9),
              noise=0.01) -> pd.DataFrame:
    """Finished cells as :func:`benchmark.boards.leaderboard.load_runs` gives them."""
    rows = []
    for task in tasks:
        origin = "simulated" if task.endswith("-sim") else "real"
        cells = [("reference", "full", 0.0)] + [("data", m, r) for m in DATA for r in ratios] + [
            ("model", m, r) for m in MODEL for r in ratios]
        for (family, label, ratio), seed in itertools.product(cells, seeds):
            value = float(np.clip(0.9 - SLOPE.get(label, 0.0) * ratio + RNG.normal(0, noise), 0, 1))
            row = {name: None for name in RUN_METRICS}
            row.update({
                "cell_id": f"{task}-{label}-{ratio}-{seed}", "run_id": f"run{len(rows):04d}", "task": task,
                "method": "none" if label == "full" else label, "label": label, "family": family,
                "provenance": "reference-code", "data_origin": origin, "code_version": "abc", "metric": "accuracy",
                "chance_level": 0.1, "metric_low": 0.0, "metric_high": 1.0, "ratio": ratio, "seed": seed,
                "value": value, "start_time": len(rows),
                "kept_fraction": 1 - ratio if family == "data" else 1.0,
                "realised_sparsity": ratio if family == "model" else 0.0,
                "total_sample_passes_rel": 1 - ratio if family == "data" else 1.0,
                "cost_rel": ((1 - ratio) * (1.1 if label in ("el2n", "forgetting") else 1.0) if family == "data"
                             else 1.0),
                "forward_rel": 0.0, "forward_derived": False, "seconds_derived": False, "scoring_seconds": 0.0,
                "train_seconds": 100 * (1 - ratio) + seed, "seconds": 100 * (1 - ratio) + seed,
                "params_total": 1000.0, "params_remaining": 1000 * (1 - ratio) if family == "model" else 1000.0,
                "flops_remaining_rel": 1 - ratio if family == "model" else 1.0, "test_loss": 1 - value})
            rows.append(row)
    return pd.DataFrame(rows)


class Tables(HTMLParser):
    """Every table of a page: its id and class, the tab panel it is in, and its cells' text
    and class (the panels are <section>s)."""

    def __init__(self):
        super().__init__()
        self.tables, self.panel, self.cell, self.inputs, self.labels, self.label = [], None, None, [], [], None
        self.links = []  # (href, text of the cell it is in)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "section":
            self.panel = attrs.get("data-task")
        elif tag == "table":
            self.tables.append({"id": attrs.get("id", ""), "class": attrs.get("class", ""), "panel": self.panel,
                                "head": [], "rows": []})
        elif tag == "tr" and self.tables:
            self.tables[-1]["rows"].append([])
        elif tag in ("td", "th") and self.tables:
            self.cell = {"text": "", "class": attrs.get("class") or "", "tag": tag, "href": None}
        elif tag == "a" and self.cell is not None:
            self.cell["href"] = attrs.get("href")
        elif tag == "input":
            self.inputs.append(attrs)
        elif tag == "label":
            self.label = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self.cell is not None:
            table = self.tables[-1]
            (table["head"] if self.cell["tag"] == "th" else table["rows"][-1]).append(self.cell)
            self.cell = None
        elif tag == "label" and self.label is not None:
            self.labels.append(self.label)
            self.label = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell["text"] += data
        if self.label is not None:
            self.label += data


def parse(html: str) -> Tables:
    parser = Tables()
    parser.feed(html)
    for table in parser.tables:
        table["rows"] = [r for r in table["rows"] if r]
    return parser


def expected_marks(runs: pd.DataFrame, task: str, family: str, ratio: float) -> tuple[str, bool]:
    """The best mean's method at (task, family, ratio), and whether it beats the next by a paired
    t-test at p < 0.05 (scipy, independently of the board's code)."""
    rows = runs[(runs.task == task) & (runs.family == family) & (runs.ratio == ratio)]
    means = rows.groupby("label").value.mean().sort_values(ascending=False)
    first, second = means.index[:2]
    a = rows[rows.label == first].sort_values("seed").value.values
    b = rows[rows.label == second].sort_values("seed").value.values
    return first, bool(stats.ttest_rel(a, b).pvalue < 0.05 and a.mean() > b.mean())


@pytest.fixture(scope="module")
def board():
    return build_board(make_runs(), "lead")


@pytest.fixture(scope="module")
def figures(board):
    return board_figures(board)


def test_each_task_is_a_tab_and_its_first_tables_are_the_lead_with_the_best_of_every_ratio_marked(board):
    runs = board.runs
    page = parse(render_html(board, {}))
    assert [i["id"] for i in page.inputs if i.get("type") == "radio"] == ["tab-0", "tab-1"]
    assert page.labels == ["cwru-sim (SIMULATED)", "fashion-mnist"]  # alphabetical
    significant = 0
    for task in ("cwru-sim", "fashion-mnist"):
        tables = [t for t in page.tables if t["panel"] == task]
        assert [t["id"] for t in tables[:2]] == [f"lead-{task}--data", f"lead-{task}--model"]
        for table, family in zip(tables[:2], ("data", "model")):
            heads = [c["text"] for c in table["head"]]
            assert heads == ["method", "r=0.3", "r=0.5", "r=0.7", "r=0.9"]
            assert sorted(r[0]["text"] for r in table["rows"]) == sorted(DATA if family == "data" else MODEL)
            for column, ratio in enumerate((0.3, 0.5, 0.7, 0.9), start=1):
                best, ahead = expected_marks(runs, task, family, ratio)
                top = [r for r in table["rows"] if TOP_MARK in r[column]["text"]]
                assert len(top) == 1 and top[0][0]["text"] == best and top[0][column]["class"] == "top"
                assert (BEST_MARK in top[0][column]["text"]) == ahead
                assert sum(BEST_MARK in r[column]["text"] for r in table["rows"]) == int(ahead)
                significant += ahead
                # the value with its interval: 0.8123 [0.8001, 0.8240]
                mean = runs[(runs.task == task) & (runs.label == best) & (runs.ratio == ratio)].value.mean()
                assert top[0][column]["text"].startswith(f"{mean:.4f} [")
    assert significant > 0  # the check saw the mark drawn, not only left out


def test_lead_rows_go_by_mean_rank_over_the_ratios(board):
    page = parse(render_html(board, {}))
    table = next(t for t in page.tables if t["id"] == "lead-fashion-mnist--data")
    runs = board.runs[(board.runs.task == "fashion-mnist") & (board.runs.family == "data")]
    means = runs.groupby(["ratio", "label"]).value.mean()
    rank = means.groupby(level="ratio").rank(ascending=False).groupby(level="label").mean()
    expected = sorted(rank.index, key=lambda m: (rank[m], m))
    assert [r[0]["text"] for r in table["rows"]] == expected


def test_definitions_sit_behind_a_disclosure_and_headings_carry_tooltips(board):
    html = render_html(board, {})
    assert html.index("<details>") < html.index('<table class="lead"')
    assert f"<p>{LEGEND[:40]}" in html.replace("&#x27;", "'")
    page = parse(html)
    detail = next(t for t in page.tables if t["id"] == "fashion-mnist--data")
    assert [c["text"] for c in detail["head"]][:3] == ["method", "ratio", "accuracy mean ± std"]
    assert len(detail["head"]) == 8  # method, ratio, mean, CI, seeds, Δ full, Δ random at ratio and at cost
    assert html.count('<th title="') >= 2 * 2 * 8  # every detail heading of both tasks and families explained


def test_a_one_seed_board_says_so_once_and_shows_values_only():
    single = build_board(make_runs(tasks=("cwru-sim", "fashion-mnist"), ratios=(0.3, 0.5, 0.7, 0.9), seeds=(0,)),
                         "single")
    html, markdown = render_html(single, {}), render_markdown(single)
    for text in (html, markdown):
        assert text.count(ONE_SEED_NOTE) == 1
        # the cells and tables, without the note and the definitions (which explain the general case)
        text = text.replace(ONE_SEED_NOTE, "").replace(LEGEND, "").replace(html_escape(LEGEND), "")
        assert "(1 seed" not in text and "too few seeds" not in text and "no test" not in text
        assert "interval" not in text.split("Definitions")[0].lower()
    page = parse(html)
    lead = next(t for t in page.tables if t["id"] == "lead-fashion-mnist--data")
    cells = [c["text"] for r in lead["rows"] for c in r[1:]]
    assert cells and all("[" not in c and c.split()[0].replace(".", "").isdigit() for c in cells)
    assert all(sum(TOP_MARK in r[col]["text"] for r in lead["rows"]) == 1 for col in range(1, 5))
    assert BEST_MARK not in "".join(cells)  # no test on one seed, so no significance
    detail = next(t for t in page.tables if t["id"] == "fashion-mnist--data")
    assert "95% CI" not in [c["text"] for c in detail["head"]]
    # a board with two seeds says nothing of the kind
    assert ONE_SEED_NOTE not in render_html(build_board(make_runs(tasks=("fashion-mnist",), ratios=(0.5,),
                                                                  seeds=(0, 1)), "two"), {})


def test_rows_link_to_their_summary_run_and_their_cells(board):
    ids = {(t, f, m, r): f"sum-{t}-{m}-{r}" for (t, f), table in board.tables.items()
           for m, r in zip(table.method, table.ratio)}
    links = BoardLinks("http://ui.example:5000", "7", ids)
    page = parse(render_html(board, {}, links))
    lead = next(t for t in page.tables if t["id"] == "lead-fashion-mnist--model")
    row = next(r for r in lead["rows"] if r[0]["text"] == "magnitude")
    assert row[2]["href"] == "http://ui.example:5000/#/experiments/7/runs/sum-fashion-mnist-magnitude-0.5" \
                             "?workflowType=machine_learning"
    assert row[2]["href"] == run_url("http://ui.example:5000", "7", "sum-fashion-mnist-magnitude-0.5")
    detail = next(t for t in page.tables if t["id"] == "fashion-mnist--model")
    first = detail["rows"][0]
    method, ratio = first[0]["text"].split(" ")[0], float(first[1]["text"])
    runs = board.runs
    cells = runs[(runs.task == "fashion-mnist") & (runs.label == method) & (runs.ratio == ratio)]
    assert first[0]["href"] == run_url("http://ui.example:5000", "7", ids[("fashion-mnist", "model", method, ratio)])
    assert first[4]["href"] == cells_url("http://ui.example:5000", "7", list(cells.run_id))
    assert all(f"%27{run_id}%27" in first[4]["href"] for run_id in cells.run_id) and len(cells) == 3
    # without links: no anchors at all
    assert "<a " not in render_html(board, {})


def test_markdown_leads_with_the_same_tables_and_ends_with_the_definitions(board):
    text = render_markdown(board)
    first_table = text.index("\n| method ")
    assert text.index("## cwru-sim (SIMULATED data)") < first_table < text.index(LEGEND)
    header = text[first_table + 1:].splitlines()[0]
    assert [c.strip() for c in header.strip("|").split("|")] == ["method", "r=0.3", "r=0.5", "r=0.7", "r=0.9"]
    best, _ = expected_marks(board.runs, "cwru-sim", "data", 0.3)
    row = next(line for line in text[first_table:].splitlines() if line.startswith(f"| {best} "))
    assert row.split("|")[2].strip().startswith("**") and TOP_MARK in row.split("|")[2]


# --- plots ------------------------------------------------------------------------------------


def drawn_styles(fig) -> dict[str, set]:
    """Method label -> the (colour, marker) of every line drawn under that label."""
    from matplotlib.colors import to_hex

    out: dict[str, set] = {}
    for ax in fig.axes:
        for line in ax.get_lines():
            if not line.get_label().startswith("_"):
                out.setdefault(line.get_label(), set()).add((to_hex(line.get_color()), line.get_marker()))
        for container in ax.containers:
            line = container.lines[0] if hasattr(container, "lines") else None
            if line is not None and not container.get_label().startswith("_"):
                out.setdefault(container.get_label(), set()).add((to_hex(line.get_color()), line.get_marker()))
    return out


def test_one_colour_and_marker_per_method_across_every_plot(figures):
    assert len(figures) == 6
    seen: dict[str, set] = {}
    for fig in figures.values():
        for label, styles in drawn_styles(fig).items():
            seen.setdefault(label, set()).update(styles)
    methods = {label: styles for label, styles in seen.items() if label in DATA + MODEL}
    assert set(methods) == set(DATA + MODEL)
    assert all(len(styles) == 1 for styles in methods.values()), methods
    pairs = [next(iter(s)) for s in methods.values()]
    assert len(set(pairs)) == len(pairs) and len({c for c, _ in pairs}) == len(pairs)  # 8 methods, 8 colours


def test_the_delta_plot_comes_first_with_error_bars_against_the_family_baseline(board, figures):
    assert list(figures)[:3] == ["cwru-sim-delta-vs-ratio.png", "cwru-sim-metric-vs-ratio.png",
                                 "cwru-sim-metric-vs-cost.png"]
    ax = figures["fashion-mnist-delta-vs-ratio.png"].axes[0]
    container = next(c for c in ax.containers if c.get_label() == "el2n")
    runs = board.runs[board.runs.task == "fashion-mnist"]
    el2n = runs[(runs.label == "el2n") & (runs.ratio == 0.5)].sort_values("seed").value.values
    rand = runs[(runs.label == "random") & (runs.ratio == 0.5)].sort_values("seed").value.values
    diffs = el2n - rand
    low, high = stats.t.interval(0.95, 2, loc=diffs.mean(), scale=stats.sem(diffs))
    xs, ys = container.lines[0].get_data()
    i = int(np.argmin(np.abs(np.asarray(xs) - 0.5)))
    assert ys[i] == pytest.approx(diffs.mean())
    segments = container.lines[2][0].get_segments()
    assert segments[i][0][1] == pytest.approx(low) and segments[i][1][1] == pytest.approx(high)
    assert "random" not in {c.get_label() for c in ax.containers}  # the reference is the zero line
    assert "random (Δ = 0)" in [t.get_text() for t in ax.get_legend().get_texts()]


def test_legends_hold_every_drawn_element_and_cost_plots_have_error_bars(board, figures):
    for name, fig in figures.items():
        for ax in fig.axes:
            _, labels = ax.get_legend_handles_labels()
            shown = [t.get_text() for t in ax.get_legend().get_texts()]
            assert shown == labels and labels, name
            drawn = [a.get_label() for a in (*ax.lines, *ax.collections, *ax.patches, *ax.containers)
                     if not a.get_label().startswith("_")]
            assert set(drawn) <= set(shown), (name, drawn, shown)
            if "metric-vs-ratio" in name:
                assert {"full / dense (mean)", "full / dense 95% CI"} <= set(shown)
            if "metric-vs-cost" in name:
                assert {"full / dense", "Pareto front", "on the front (ringed)"} <= set(shown)
                bars = [c for c in ax.containers if c.has_yerr]
                assert len(bars) == len(set(board.tables[(name.split("-metric")[0], "data" if ax is fig.axes[0]
                                                           else "model")].method))


def test_ratio_labels_on_cost_plots_never_overlap(figures):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Annotation

    fig = figures["fashion-mnist-metric-vs-cost.png"]
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    for ax in fig.axes:
        boxes = [t.get_window_extent(renderer) for t in ax.texts if isinstance(t, Annotation)]
        assert len(boxes) >= 4
        assert not any(a.overlaps(b) for a, b in itertools.combinations(boxes, 2))


def test_simulated_tasks_say_so_in_every_plot_title(figures):
    for name, fig in figures.items():
        titles = [ax.get_title() for ax in fig.axes]
        if name.startswith("cwru-sim"):
            assert all(t.startswith("SIMULATED cwru-sim:") for t in titles), titles
        else:
            assert not any("SIMULATED" in t for t in titles), titles


def test_one_ratio_is_drawn_as_markers_per_method_not_a_line():
    one = build_board(make_runs(tasks=("fashion-mnist",), ratios=(0.5,)), "one")
    figures = board_figures(one)
    for name in ("fashion-mnist-delta-vs-ratio.png", "fashion-mnist-metric-vs-ratio.png"):
        ax = figures[name].axes[0]
        lines = [c.lines[0] for c in ax.containers]
        assert lines and all(line.get_linestyle() == "None" and line.get_marker() not in (None, "None")
                             for line in lines)
        ticks = [t.get_text() for t in ax.get_xticklabels()]
        expected = sorted(DATA) if "metric" in name else sorted(m for m in DATA if m != "random")
        assert ticks == expected, (name, ticks)
        assert ax.get_xlabel() == "method (ratio removed 0.5)"


def test_ui_url_is_checked_before_anything_runs(capsys):
    from benchmark.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(["leaderboard", "--experiment", "x", "--ui-url", "127.0.0.1:5000"])
    assert exit_info.value.code == 2
    assert "is not the UI's address: give http(s)://HOST[:PORT]" in capsys.readouterr().err


def test_in_chromium_the_first_table_is_in_the_first_screen_with_the_best_of_every_ratio_marked(board, tmp_path):
    """At 1400 x 900 the page opens on the first task's lead table, whole, with one best cell
    marked per ratio column; the second tab shows the second task's in the same place."""
    from matplotlib.figure import Figure
    from selenium.webdriver.common.by import By
    from test_board import browser

    from benchmark.boards.plots import _png

    # the plots' places held by a small image each (they come after the tables; drawing them takes long)
    png = _png(Figure(figsize=(8, 3)))
    plots = {f"{task}-{kind}.png": png for task in board.tasks for kind in ("delta-vs-ratio", "metric-vs-ratio")}
    page = tmp_path / "lead.html"
    page.write_text(render_html(board, plots), encoding="utf-8")
    driver = browser()
    try:
        driver.set_window_size(1400, 900)
        driver.get(page.as_uri())
        height = driver.execute_script("return window.innerHeight")
        width = driver.execute_script("return document.documentElement.clientWidth")
        assert height <= 900
        for tab, task in enumerate(("cwru-sim", "fashion-mnist")):
            driver.find_element(By.CSS_SELECTOR, f"label[for=tab-{tab}]").click()
            first = driver.execute_script("""
                const table = Array.from(document.querySelectorAll('table')).find(t => t.offsetParent !== null);
                const box = table.getBoundingClientRect();
                return [table.id, box.top, box.bottom, box.right, window.scrollY];""")
            assert first[0] == f"lead-{task}--data"
            assert first[4] == 0 and 0 < first[1] and first[2] <= height and first[3] <= width, first
            table = driver.find_element(By.ID, f"lead-{task}--data")
            rows = [tr.find_elements(By.TAG_NAME, "td") for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
            for column, ratio in enumerate((0.3, 0.5, 0.7, 0.9), start=1):
                marked = [r[0].text for r in rows if TOP_MARK in r[column].text]
                assert marked == [expected_marks(board.runs, task, "data", ratio)[0]], (task, ratio)
                top = next(r[column] for r in rows if TOP_MARK in r[column].text)
                assert top.find_element(By.TAG_NAME, "b").text == top.text.split()[0]  # bold
            # the model table follows; the plots and details below
            model = driver.find_element(By.ID, f"lead-{task}--model").rect
            assert model["y"] + model["height"] <= height
    finally:
        driver.quit()


def test_methods_that_tie_for_the_best_mean_are_both_marked():
    runs = make_runs(tasks=("fashion-mnist",), ratios=(0.5,), noise=0.0)
    # no noise: the values are 0.9 - slope * ratio; give wanda magnitude's slope, so they tie
    tie = (runs.label == "wanda")
    runs.loc[tie, "value"] = runs[(runs.label == "magnitude")].value.values
    page = parse(render_html(build_board(runs, "tie"), {}))
    lead = next(t for t in page.tables if t["id"] == "lead-fashion-mnist--model")
    assert sorted(r[0]["text"] for r in lead["rows"] if TOP_MARK in r[1]["text"]) == ["magnitude", "wanda"]


def test_a_cell_that_removed_other_than_its_ratio_says_what_it_removed():
    runs = make_runs(tasks=("fashion-mnist",), ratios=(0.3, 0.5), seeds=(0, 1))
    # emp removed half its ratio (a dynamic method's full first epoch); ted 0.04 less than its ratio
    # (within the 0.05 tolerance); magnitude's realised sparsity 0.1 under its ratio
    runs.loc[runs.label == "emp", "kept_fraction"] = 1 - runs[runs.label == "emp"].ratio / 2
    runs.loc[runs.label == "ted", "kept_fraction"] = 1 - runs[runs.label == "ted"].ratio + 0.04
    runs.loc[runs.label == "magnitude", "realised_sparsity"] = runs[runs.label == "magnitude"].ratio - 0.1
    board = build_board(runs, "off")
    page = parse(render_html(board, {}))
    marked = {}
    for family in ("data", "model"):
        lead = next(t for t in page.tables if t["id"] == f"lead-fashion-mnist--{family}")
        for row in lead["rows"]:
            for ratio, cell in zip((0.3, 0.5), row[1:]):
                if "removed" in cell["text"]:
                    marked[(row[0]["text"], ratio)] = cell["text"].rsplit("removed ", 1)[1]
    assert marked == {("emp", 0.3): "0.15", ("emp", 0.5): "0.25", ("magnitude", 0.3): "0.20",
                      ("magnitude", 0.5): "0.40"}
    lead_md = render_markdown(board).split("**data pruning")[1].split("**model pruning")[0]
    emp_row = next(line for line in lead_md.splitlines() if line.startswith("| emp "))
    assert emp_row.count(" · removed ") == 2 and "removed 0.15" in emp_row and "removed 0.25" in emp_row
    assert "'removed x': the cell removed x" in render_markdown(board)
    note = render_note(board)  # the experiment's description in MLflow says it the same way
    note_row = next(line for line in note.splitlines() if line.startswith("| emp "))
    assert note_row.count(" · removed ") == 2 and "removed 0.15" in note_row and "'removed x'" in note
    assert " · removed " not in next(line for line in note.splitlines() if line.startswith("| random "))
