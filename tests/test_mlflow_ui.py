"""The board in MLflow's own UI, read in headless Chromium from a real ``prunebench ui`` on a
store with a finished 2-seed smoke sweep (slow: the sweep trains 10 cells, and the UI's server
and pages take their time on 2 cores)."""
from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from helpers_mlflow_ui import (SWEEP, VIEW_URL, close_assistant, expand_description, group_of, run_rows,
                               runs_table, smoke_store, start_ui, wait_for)
from helpers_server import free_port, stop
from test_board import browser

from tasks.vision.fashion_mnist import DEBIAN_DIR

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path(DEBIAN_DIR).is_dir(), reason="needs Debian's dataset-fashion-mnist")]
NUMBER = re.compile(r"[-+]?\d+\.\d+")


def board_numbers(markdown: str) -> dict[tuple[str, str], dict[str, float]]:
    """(method, ratio) -> the figures the markdown board shows for it, parsed from its text."""
    out = {}
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in markdown.splitlines()]
    # the detail tables' first part: method, ratio, mean ± std, CI, seeds, Δ full, ... (8 or 9 columns)
    for row in (r for r in rows if len(r) in (8, 9) and re.fullmatch(r"[0-9.]+", r[1])):
        label = row[0].replace(" ▲", "").replace(" ◆", "")
        mean, _ = NUMBER.findall(row[2])
        low, high = NUMBER.findall(row[3])
        numbers = {"mean": float(mean), "ci_low": float(low), "ci_high": float(high), "seeds": float(row[4]),
                   "delta_full": float(NUMBER.findall(row[5])[0]),
                   "p_full": float(re.search(r"p=([0-9.]+)", row[5]).group(1))}
        out[(label, row[1])] = numbers
    full = re.search(r"Full data / dense reference: ([0-9.]+) ± [0-9.]+ over (\d+) seeds, "
                     r"95% CI \[([0-9.]+), ([0-9.]+)\]", markdown)
    out[("full", "0")] = {"mean": float(full.group(1)), "seeds": float(full.group(2)),
                          "ci_low": float(full.group(3)), "ci_high": float(full.group(4))}
    return out


def test_prunebench_ui_shows_the_board_in_model_training_view(tmp_path):
    from selenium.webdriver.common.by import By

    uri, board = smoke_store(tmp_path / "store", tmp_path / "cache")
    markdown = board.stdout
    expected = board_numbers(markdown)
    assert len(expected) == 5  # 4 methods at one ratio and the full-data reference
    printed = VIEW_URL.search(board.stderr).group(1)  # `leaderboard` prints the view for `prunebench ui`
    assert printed.startswith("http://127.0.0.1:5000/#/experiments/")

    port = free_port()
    ui, lines, url = start_ui(uri, port, tmp_path)
    printed_at = len(lines)
    driver = None
    try:
        assert url == printed.replace(":5000", f":{port}")
        # printed once the server answers, not before
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=10) as response:
            assert response.status == 200
        assert any(line.startswith("MLflow UI on http://127.0.0.1:") for line in lines[:printed_at])

        driver = browser()
        driver.set_window_size(2200, 1200)  # every column of the view rendered (the grid draws only visible ones)
        close_assistant(driver, f"http://127.0.0.1:{port}")
        driver.get(url)
        wait_for(driver, lambda d: len(run_rows(runs_table(d))) == 5
                 and all(r.get("metrics.`accuracy`") for r in run_rows(runs_table(d))))
        # model-training view: the runs table, no GenAI pages in the sidebar
        assert "workflowType=machine_learning" in driver.current_url
        sidebar = driver.find_element(By.TAG_NAME, "aside").text
        assert "Runs" in sidebar and "Evaluation runs" not in sidebar and "Prompts & versions" not in sidebar
        assert SWEEP["name"] in driver.find_element(By.CSS_SELECTOR, "[data-testid='experiment-link']").text

        table = runs_table(driver)
        rows = run_rows(table)
        # the ratio is the group's (and in the run name); the view's readable columns hold the board's figures
        shown = {(r["params.`method`"], r["attributes.`Run Name`"].split(" r=")[1].split(" ")[0]): r for r in rows}
        assert set(shown) == set(expected)
        column = {"mean": "metrics.`accuracy`", "seeds": "metrics.`seeds`", "delta_full": "metrics.`vs full`"}
        for key, numbers in expected.items():
            low, high = NUMBER.findall(shown[key]["tags.`CI`"])
            numbers = {**numbers, "shown_low": float(low), "shown_high": float(high)}
            assert numbers["shown_low"] == pytest.approx(numbers["ci_low"], abs=6e-5)
            assert numbers["shown_high"] == pytest.approx(numbers["ci_high"], abs=6e-5)
            for metric in set(column) & set(numbers):
                # the board rounds to 4 decimals, the table shows the logged 6 significant digits
                assert float(shown[key][column[metric]]) == pytest.approx(numbers[metric], abs=6e-5), (key, metric)
            if key[0] not in ("full", "random", "random-weights"):  # a method against its random baseline
                assert shown[key]["tags.`significant`"] in ("yes", "no")
        # grouped by ratio and family, the reference apart; within a group by rank, best first
        groups = [(g["ratio"], g["family"]) for g in map(group_of, table) if g]
        assert groups == [("0", "reference"), ("0.5", "data"), ("0.5", "model")]
        by_group: dict = {}
        current = None
        for row in table:  # the rows under each group header, in the order shown
            if group_of(row):
                current = group_of(row)
            elif current["family"] != "reference":
                by_group.setdefault((current["ratio"], current["family"]), []).append(row)
        for members in by_group.values():
            assert [int(r["metrics.`rank`"]) for r in members] == list(range(1, len(members) + 1))
            means = [float(r["metrics.`accuracy`"]) for r in members]
            assert means == sorted(means, reverse=True)

        text = expand_description(driver)
        assert f"Leaderboard: {SWEEP['name']}" in text and "10 finished cells" in text
        leads = [line for line in markdown.splitlines() if "[" in line and line.count("|") == 3]
        assert len(leads) == 4
        for line in leads:  # the lead tables' means (one ratio: method | r=0.5), as the description has them
            assert NUMBER.findall(line.split("|")[2])[0] in text
    finally:
        if driver is not None:
            driver.quit()
        stop(ui)
