"""The board in MLflow's own UI, read in headless Chromium from a real ``prunebench ui`` on a
store with a finished 2-seed smoke sweep (slow: the sweep trains 10 cells, and the UI's server
and pages take their time on 2 cores)."""
from __future__ import annotations

import re
import urllib.request
from pathlib import Path

import pytest

from helpers_mlflow_ui import (SWEEP, VIEW_URL, close_assistant, expand_description, runs_table,
                               smoke_store, start_ui, wait_for)
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
        wait_for(driver, lambda d: len(runs_table(d)) == 5 and all(r.get("metrics.`mean`") for r in runs_table(d)))
        # model-training view: the runs table, no GenAI pages in the sidebar
        assert "workflowType=machine_learning" in driver.current_url
        sidebar = driver.find_element(By.TAG_NAME, "aside").text
        assert "Runs" in sidebar and "Evaluation runs" not in sidebar and "Prompts & versions" not in sidebar
        assert SWEEP["name"] in driver.find_element(By.CSS_SELECTOR, "[data-testid='experiment-link']").text

        rows = runs_table(driver)
        shown = {(r["params.`method`"], r["params.`ratio`"]): r for r in rows}
        assert set(shown) == set(expected)
        for key, numbers in expected.items():
            for metric, value in numbers.items():
                cell = shown[key][f"metrics.`{metric}`"]
                # the board rounds to 4 decimals (p to 3), the table shows the logged 6 significant digits
                assert float(cell) == pytest.approx(value, abs=6e-4 if metric.startswith("p_") else 6e-5), (key, metric)
        means = [float(r["metrics.`mean`"]) for r in rows]
        assert means == sorted(means, reverse=True)  # sorted by the headline metric, best first

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
