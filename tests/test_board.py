"""The published board (markdown, HTML read back in headless Chromium, MLflow table) holds
exactly the numbers an independent computation gives from a store filled with known runs."""
from __future__ import annotations

import json
import os
import re
import shutil
import statistics
from pathlib import Path

import numpy as np
import pytest
from mlflow.tracking import MlflowClient
from scipy import special, stats

from benchmark.boards.publish import LEADERBOARD_EXPERIMENT, build_and_publish, table_artifact
from benchmark.sweeps.cells import Cell
from benchmark.sweeps.tracking import Tracker

# test accuracy per (task, label, ratio) by seed: invented, logged as if cells had produced them
KNOWN = {
    ("fashion-mnist", "full", 0.0): [0.90, 0.92, 0.91],
    ("fashion-mnist", "random", 0.5): [0.85, 0.86, 0.84],
    ("fashion-mnist", "el2n", 0.5): [0.88, 0.87, 0.89],
    ("fashion-mnist", "magnitude", 0.8): [0.89, 0.90, 0.88],
    ("fashion-mnist", "magnitude", 0.9): [0.70],  # one seed only
    ("fashion-mnist", "random-weights", 0.8): [0.80, 0.83, 0.81],
    ("cifar10", "full", 0.0): [0.60, 0.64],
    ("cifar10", "random", 0.5): [0.50, 0.55],
}
FAMILY = {"full": "reference", "random": "data", "el2n": "data", "magnitude": "model", "random-weights": "model"}
SECONDS = {"full": 100.0, "random": 50.0, "el2n": 80.0, "magnitude": 100.0, "random-weights": 100.0}
# el2n's runs also log test loss and peak memory (GPU on seed 0 only); the others log neither
EL2N_LOSS, EL2N_RSS, EL2N_GPU = [0.31, 0.29, 0.36], [1500.0, 1700.0, 1650.0], [900.0]


def fill_store(uri: str) -> None:
    tracker = Tracker(uri, "board")
    for (task, label, ratio), values in KNOWN.items():
        method = "none" if label == "full" else label
        for seed, value in enumerate(values):
            cell = Cell(task, method, ratio, seed, "cpu", label=label)
            tags = {"family": FAMILY[label], "provenance": "reconstructed" if label == "el2n" else "reference-code",
                    "data_origin": "real", "task_family": "vision", "metric": "accuracy", "chance_level": "0.1"}
            run = tracker.start_cell(cell, "board", {}, tags)
            extra = {}
            if label == "el2n":
                extra = {"test_loss": EL2N_LOSS[seed], "peak_rss_mb": EL2N_RSS[seed]}
                extra.update({"peak_device_mb": EL2N_GPU[seed]} if seed < len(EL2N_GPU) else {})
            run.finish({**extra, "test_accuracy": value, "kept_fraction": 1 - ratio if FAMILY[label] == "data" else 1.0,
                        "total_sample_passes_rel": 1 - ratio if FAMILY[label] == "data" else 1.0,
                        "train_seconds": SECONDS[label], "scoring_seconds": 0.0,
                        "params_total": 1000.0, "params_remaining": 1000.0 - 800 * ratio * (FAMILY[label] == "model"),
                        "flops_remaining_rel": 1 - ratio if FAMILY[label] == "model" else 1.0,
                        **({"realised_sparsity": ratio} if FAMILY[label] == "model" else {})})


def values(task, label, ratio):
    return KNOWN[(task, label, ratio)]


def ci(xs):
    return stats.t.interval(0.95, len(xs) - 1, loc=np.mean(xs), scale=stats.sem(xs))


def accuracy_ci(xs):
    """The interval of an accuracy: the t-interval of the logits, mapped back into [0, 1]."""
    logits = special.logit(np.clip(xs, 1e-4, 1 - 1e-4))
    return tuple(special.expit(ci(logits)))


def expected_rows():
    """The el2n and random rows of fashion-mnist's data table, computed independently."""
    full = values("fashion-mnist", "full", 0.0)
    out = {}
    for label in ("el2n", "random"):
        xs = values("fashion-mnist", label, 0.5)
        low, high = accuracy_ci(xs)
        diffs = [a - b for a, b in zip(xs, full)]
        p = stats.ttest_rel(xs, full).pvalue
        mark = " ≈" if p >= 0.05 else ""
        # el2n has the best mean at 0.5 (◆) but is not ahead of random by more than noise (no ▲)
        row = [f"{label} ◆" if label == "el2n" else label, "0.5",
               f"{statistics.mean(xs):.4f} ± {statistics.stdev(xs):.4f}", f"[{low:.4f}, {high:.4f}]",
               "3", f"{statistics.mean(diffs):+.4f}{mark} (p={p:.3f}, won {sum(d > 0 for d in diffs)}/3)"]
        if label == "el2n":
            base = values("fashion-mnist", "random", 0.5)
            p_base = stats.ttest_rel(xs, base).pvalue
            d = [a - b for a, b in zip(xs, base)]
            row.append(f"{statistics.mean(d):+.4f}{' ≈' if p_base >= 0.05 else ''} "
                       f"(p={p_base:.3f}, won {sum(x > 0 for x in d)}/3)")
            # random's curve of each seed runs from (0.5, random) to (1.0, full): at el2n's cost 0.5 it is random
            at_cost = [a - np.interp(0.5, [0.5, 1.0], [b, f]) for a, b, f in zip(xs, base, full)]
            low_c, high_c = ci(at_cost)
            row.append(f"{np.mean(at_cost):+.4f} [{low_c:+.4f}, {high_c:+.4f}] (3 seeds)")
        else:
            row += ["-", "baseline"]
        row.append(f"{statistics.mean(EL2N_LOSS):.4f}" if label == "el2n" else "-")
        # every seed's full cell took 100 s: no timing spread, so the speed-up is not marked indicative
        speed = 100 / SECONDS[label]
        row += ["0.500", "0.50", "-", f"{speed:.2f} [{speed:.2f}, {speed:.2f}]", f"{SECONDS[label]:.0f}"]
        # the GPU mean is over the one seed that logged it
        row.append(f"{statistics.mean(EL2N_RSS):,.0f} / {statistics.mean(EL2N_GPU):,.0f} GPU" if label == "el2n" else "-")
        # el2n (0.5, 0.88) beats random (0.5, 0.85) at the same cost: only el2n is on the front
        row.append("★" if label == "el2n" else "")
        row.append("reconstructed" if label == "el2n" else "reference-code")
        out[label] = row
    return out


def expected_normalised_random():
    scores = []
    for task in ("fashion-mnist", "cifar10"):
        full = statistics.mean(values(task, "full", 0.0))
        scores.append(statistics.mean(100 * (v - 0.1) / (full - 0.1) for v in values(task, "random", 0.5)))
    return statistics.mean(scores)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("board")
    uri = f"sqlite:///{tmp}/mlflow.db"
    fill_store(uri)
    result = build_and_publish(uri, "board", tmp / "results", command="prunebench leaderboard --experiment board")
    return uri, tmp, result


def detail_rows(text: str, first: str) -> list[list[str]]:
    """Rows that start with ``first`` of the markdown detail tables, each family's two joined
    back into one (the metric's table: 8 columns for data pruning, 9 for model pruning; the
    costs' table: 11, the first two of them method and ratio again)."""
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.startswith(f"| {first} ")]
    metric, costs = [r for r in rows if len(r) in (8, 9)], [r for r in rows if len(r) == 11]
    assert len(metric) == len(costs) and all(m[:2] == c[:2] for m, c in zip(metric, costs))
    return [m + c[2:] for m, c in zip(metric, costs)]


def test_markdown_holds_the_independently_computed_numbers(published):
    _, tmp, result = published
    text = result.markdown
    assert (tmp / "results" / "board.md").read_text(encoding="utf-8") == text
    expected = expected_rows()
    assert detail_rows(text, "el2n") == [expected["el2n"]]
    assert detail_rows(text, "random")[1] == expected["random"]  # cifar10 sorts first
    # one seed: no interval and no test, said in words
    one = [r for r in detail_rows(text, "magnitude") if r[1] == "0.9"][0]
    assert one[2:5] == ["0.7000 (1 seed)", "too few seeds", "1"]
    assert one[5] == f"{0.70 - 0.90:+.4f} (1 seed: no test)"
    assert one[9] == "-" and one[15] == "-"  # no test loss or peak memory logged
    assert one[11:14] == ["280", "0.100", "1.00"]  # params left, FLOPs x dense, cost x full
    # random-weights measured FLOPs 0.2 (0.8) and 1.0 (dense), params 360 and 1000: 0.1 and 280 are below both
    assert one[7:9] == ["out of range (1 below range)", "out of range (1 below range)"]
    # random's score is over both tasks (the most): no count; el2n's over one of them, said
    assert re.search(rf"^\| random +\| {expected_normalised_random():.1f} +\|", text, re.M)
    assert re.search(r"^\| el2n +\| [0-9.]+ \(1 of 2 tasks\) +\|", text, re.M)
    assert "Command: `prunebench leaderboard --experiment board`" in text
    full = values("fashion-mnist", "full", 0.0)
    low, high = accuracy_ci(full)
    assert (f"Full data / dense reference: {statistics.mean(full):.4f} ± {statistics.stdev(full):.4f} over 3 seeds, "
            f"95% CI [{low:.4f}, {high:.4f}].") in text
    plots = sorted(p.name for p in (tmp / "results" / "board-plots").iterdir())
    # cifar10 has random alone: no Δ to draw
    assert plots == ["cifar10-metric-vs-cost.png", "cifar10-metric-vs-ratio.png", "fashion-mnist-delta-vs-ratio.png",
                     "fashion-mnist-metric-vs-cost.png", "fashion-mnist-metric-vs-ratio.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in (tmp / "results" / "board-plots").iterdir())


def test_mlflow_holds_the_board_as_a_run_with_its_tables(published):
    uri, tmp, result = published
    client = MlflowClient(tracking_uri=uri)
    run = client.get_run(result.mlflow_run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags["source_experiment"] == "board"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == LEADERBOARD_EXPERIMENT
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"leaderboard.md", "leaderboard.html", "plots", "tables"} <= artifacts
    local = client.download_artifacts(run.info.run_id, table_artifact("fashion-mnist", "data"), str(tmp))
    table = json.loads(Path(local).read_text())
    rows = {r[table["columns"].index("method")]: dict(zip(table["columns"], r)) for r in table["data"]}
    xs, full = values("fashion-mnist", "el2n", 0.5), values("fashion-mnist", "full", 0.0)
    assert rows["el2n"]["mean"] == pytest.approx(statistics.mean(xs))
    assert rows["el2n"]["ci_low"] == pytest.approx(accuracy_ci(xs)[0])
    assert rows["el2n"]["p_full"] == pytest.approx(stats.ttest_rel(xs, full).pvalue)
    assert rows["el2n"]["wins_random"] == 3
    assert rows["random"]["speedup"] == pytest.approx(2.0)
    assert rows["el2n"]["on_front"] and not rows["random"]["on_front"]
    # el2n has one cost point (0.5), where random's curve is random itself: the area gap is the Δ there
    local = client.download_artifacts(run.info.run_id, "tables/fashion-mnist--data--area-gap.json", str(tmp))
    area = json.loads(Path(local).read_text())
    gap = dict(zip(area["columns"], area["data"][0]))
    assert gap["method"] == "el2n"
    assert gap["area_gap"] == pytest.approx(np.mean(np.subtract(xs, values("fashion-mnist", "random", 0.5))))
    assert run.data.metrics["area_gap/fashion-mnist/data/el2n"] == pytest.approx(gap["area_gap"])


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not (chromium and driver):
        if os.environ.get("PRUNEBENCH_REQUIRE_BROWSER") == "1":
            pytest.fail("PRUNEBENCH_REQUIRE_BROWSER=1 but chromium / chromedriver are missing; "
                        "run scripts/ensure-browser.sh")
        pytest.skip("needs Debian's chromium and chromium-driver (scripts/ensure-browser.sh)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"):
        options.add_argument(flag)
    os.environ.setdefault("SE_OFFLINE", "true")  # never let selenium fetch drivers
    return webdriver.Chrome(service=Service(driver), options=options)


def network_references(html: str) -> list[str]:
    """Every address the page would fetch by itself (images, scripts, styles, frames): a link
    the reader follows (``<a href>``) is not one."""
    from html.parser import HTMLParser

    found = []

    class Fetches(HTMLParser):
        def handle_starttag(self, tag, attrs):
            for name, value in attrs:
                if name in ("src", "srcset", "data") or (name == "href" and tag != "a"):
                    if value and not value.startswith("data:"):
                        found.append(f"<{tag} {name}={value}>")

    Fetches().feed(html)
    return found + re.findall(r"url\((?!data:)[^)]*\)|@import", html)


def show_task(driver, task: str) -> None:
    """Click the tab of ``task`` (the tasks' panels are tabs; only the chosen one shows)."""
    from selenium.webdriver.common.by import By

    for label in driver.find_elements(By.CSS_SELECTOR, ".tabs > label"):
        if label.text.split(" (")[0] == task:
            label.click()
            return
    raise AssertionError(f"no tab for {task}")


def test_html_in_chromium_holds_the_numbers_and_sorts(published):
    from selenium.webdriver.common.by import By

    _, tmp, _ = published
    page = tmp / "results" / "board.html"
    html = page.read_text(encoding="utf-8")
    assert network_references(html) == []  # self-contained: no network assets (links out are anchors)
    driver = browser()
    try:
        driver.get(page.as_uri())
        assert driver.title == "Leaderboard: board"
        show_task(driver, "fashion-mnist")

        def rows(table):
            return [[td.text for td in tr.find_elements(By.TAG_NAME, "td")]
                    for tr in table.find_elements(By.CSS_SELECTOR, "tbody tr")]

        table = driver.find_element(By.ID, "fashion-mnist--data")
        costs = driver.find_element(By.ID, "fashion-mnist--data--cost")
        expected = expected_rows()
        assert [m + c[2:] for m, c in zip(rows(table), rows(costs))] == [expected["el2n"], expected["random"]]
        headers = table.find_elements(By.TAG_NAME, "th")
        mean_header = [h for h in headers if h.text.startswith("accuracy mean")][0]
        assert "mean and sample std over seeds" in mean_header.get_attribute("title")  # the column's tooltip
        mean_header.click()  # ascending: random (0.85) first
        assert [r[0] for r in rows(table)] == ["random", "el2n ◆"]
        assert mean_header.get_attribute("aria-sort") == "ascending"
        mean_header.click()
        assert [r[0] for r in rows(table)] == ["el2n ◆", "random"]
        speedup_header = [h for h in costs.find_elements(By.TAG_NAME, "th") if h.text.startswith("speedup")][0]
        speedup_header.click()  # 1.25 (el2n) < 2.00 (random)
        assert [r[0] for r in rows(costs)] == ["el2n ◆", "random"]
        images = driver.find_elements(By.TAG_NAME, "img")
        assert len(images) == 5
        assert all(driver.execute_script("return arguments[0].naturalWidth", img) > 0 for img in images)
        assert "reconstructed" in driver.find_element(By.CLASS_NAME, "meta").text
    finally:
        driver.quit()


def test_html_numbers_never_wrap_at_1400_pixels_sorted_by_mean_with_the_best_marked(published):
    from selenium.webdriver.common.by import By

    _, tmp, _ = published
    # magnitude beats random-weights at 0.8 on every seed, by more than noise: marked best and significant
    magnitude, rivals = values("fashion-mnist", "magnitude", 0.8), values("fashion-mnist", "random-weights", 0.8)
    assert stats.ttest_rel(magnitude, rivals).pvalue < 0.05
    driver = browser()
    try:
        driver.set_window_size(1400, 900)
        driver.get((tmp / "results" / "board.html").as_uri())
        viewport = driver.execute_script("return document.documentElement.clientWidth")
        for task, count in (("cifar10", 4), ("fashion-mnist", 10)):
            show_task(driver, task)
            # per visible table: its right edge, the widest of its rows' heights over the cells' font size
            shapes = driver.execute_script("""return Array.from(document.querySelectorAll('table'))
                .filter(t => t.offsetParent !== null).map(t => [t.id || t.className,
                  Math.min(t.getBoundingClientRect().right, t.parentElement.getBoundingClientRect().right),
                  Math.max(...Array.from(t.tBodies[0].rows).map(r => r.getBoundingClientRect().height
                    / parseFloat(getComputedStyle(r.cells[0]).fontSize)))])""")
            # lead 1 / 2, detail 2 per family, area gap (fashion-mnist), rankings; outside the tabs 2
            # normalised and the methods' settings
            assert len(shapes) == count + 3, shapes
            for name, right, height in shapes:
                assert right <= viewport, name
                if name != "equal-cost":  # the rankings' text may wrap, a number never does
                    assert height < 2.3, name  # one line of text and the cell's padding
        table = driver.find_element(By.ID, "fashion-mnist--model")
        rows = table.find_elements(By.CSS_SELECTOR, "tbody tr")
        cells = [[td.text for td in tr.find_elements(By.TAG_NAME, "td")][:2] for tr in rows]
        assert cells == [["magnitude ◆ ▲", "0.8"], ["random-weights", "0.8"], ["magnitude ◆", "0.9"]]
        assert [tr.get_attribute("class") for tr in rows] == ["top best", "", "top"]
        # el2n (0.88) over random (0.85) is not significant with three seeds: the best (◆), no ▲
        assert stats.ttest_rel(values("fashion-mnist", "el2n", 0.5), values("fashion-mnist", "random", 0.5)).pvalue >= 0.05
        data = driver.find_element(By.ID, "fashion-mnist--data").find_elements(By.CSS_SELECTOR, "tbody tr td:first-child")
        assert [td.text for td in data] == ["el2n ◆", "random"]
    finally:
        driver.quit()


def test_plot_texts_stay_inside_their_figures(published, monkeypatch):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    from benchmark.boards.plots import board_figures
    from benchmark.boards.leaderboard import build_board, load_runs

    from matplotlib.text import Annotation

    drawn = []  # every text as drawn (ticks outside the view are not), with where it landed
    draw = Text.draw

    def recording(self, renderer):
        draw(self, renderer)
        if self.get_visible() and self.get_text():
            # a point's ratio label must stay inside its panel, any other text inside the figure
            box = self.axes.bbox if isinstance(self, Annotation) else self.figure.bbox
            drawn.append((self.get_text(), self.get_window_extent(renderer), box))

    monkeypatch.setattr(Text, "draw", recording)
    uri, _, _ = published
    figures = board_figures(build_board(load_runs(uri, "board"), "board"))
    assert len(figures) == 5
    for name, fig in figures.items():
        drawn.clear()
        FigureCanvasAgg(fig).draw()  # drawn as saved, before bbox_inches='tight' would crop
        assert len(drawn) > 10
        outside = [text for text, e, box in drawn
                   if not (box.x0 - 1 <= e.x0 and e.x1 <= box.x1 + 1 and box.y0 - 1 <= e.y0 and e.y1 <= box.y1 + 1)]
        assert outside == [], name


def test_html_rows_link_to_their_summary_runs_and_cells_in_the_store(published):
    """Every lead cell links to the summary run of its row (found in the store by id, its params
    the row's), every detail row's seed count to exactly its cells; at `prunebench ui`'s address."""
    from urllib.parse import unquote

    from test_board_lead import parse

    uri, tmp, result = published
    client = MlflowClient(tracking_uri=uri)
    page = parse((tmp / "results" / "board.html").read_text(encoding="utf-8"))
    checked = 0
    for table in (t for t in page.tables if t["class"] == "lead"):
        task, family = table["id"][len("lead-"):].split("--")
        ratios = [float(c["text"][2:]) for c in table["head"][1:]]
        for row in table["rows"]:
            for ratio, cell in zip(ratios, row[1:]):
                if not cell["text"]:
                    continue
                prefix = f"http://127.0.0.1:5000/#/experiments/{result.experiment_id}/runs/"
                assert cell["href"].startswith(prefix), cell
                run = client.get_run(cell["href"][len(prefix):].split("?")[0])
                assert run.data.params == {"task": task, "family": family, "method": row[0]["text"],
                                           "ratio": f"{ratio:g}"}
                checked += 1
    assert checked == 6  # cifar10 random; fashion-mnist random, el2n, magnitude x2, random-weights
    detail = next(t for t in page.tables if t["id"] == "fashion-mnist--data")
    el2n = next(r for r in detail["rows"] if r[0]["text"].startswith("el2n"))
    ids = re.findall(r"'([0-9a-f]{32})'", unquote(el2n[4]["href"]))
    runs = client.search_runs([result.experiment_id], "tags.label = 'el2n'")
    assert sorted(ids) == sorted(r.info.run_id for r in runs) and len(ids) == 3
