"""The board's view read from MLflow's rendered UI in headless Chromium, on a real store whose
means do not fall with the ratio (a view sorted by mean would show the ratios out of order):
grouped by ratio in numeric order, the reference apart, each group's rows in the board's rank
order with the board's ranks, the readable columns in the first screen at 1400 px, the preset
chart, and a summary run's page (training layout once chosen) whose cells link finds its cells."""
from __future__ import annotations

import time

import pytest

from benchmark.boards.leaderboard import build_board, load_runs
from benchmark.boards.mlflow_view import board_ranks
from benchmark.boards.publish import build_and_publish
from helpers_mlflow_ui import (RATIO_BOARD, close_assistant, group_of, ratio_store, run_rows, runs_table,
                               start_ui, wait_for)
from helpers_server import free_port, stop
from test_board import browser

pytestmark = pytest.mark.slow  # 40 cells written, a UI server started and its pages rendered


def click(driver, element) -> None:
    """Click as a reader would, through whatever floats over the element (the assistant's
    button, a tooltip): the page's own click handler runs."""
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].click();", element)


def test_the_board_view_in_chromium_groups_ratios_in_numeric_order_with_the_boards_ranks(tmp_path):
    from selenium.webdriver.common.by import By

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    ratio_store(uri, "ratios")
    build_and_publish(uri, "ratios", None)
    board = build_board(load_runs(uri, "ratios"), "ratios")
    expected_rank = {}
    for (task, family), table in board.tables.items():
        for (_, row), rank in zip(table.iterrows(), board_ranks(table)):
            expected_rank[(row.method, f"{row.ratio:g}")] = rank

    driver = None
    ui, _, url = start_ui(uri, free_port(), tmp_path)
    try:
        driver = browser()
        driver.set_window_size(1400, 900)
        base = url.split("/#/")[0]
        close_assistant(driver, base)
        # as a reader would: choose 'Model training' once (MLflow keeps it in the browser)
        driver.get(base + "/#/experiments")
        wait_for(driver, lambda d: d.find_elements(By.XPATH, "//*[normalize-space(text())='Model training']"))
        click(driver, driver.find_element(By.XPATH, "//*[normalize-space(text())='Model training']"))
        wait_for(driver, lambda d: d.execute_script("return localStorage.getItem('mlflow.workflowType_v1')"))

        driver.get(url)
        wait_for(driver, lambda d: len(run_rows(runs_table(d))) >= 10)
        time.sleep(2)
        # the first screen at 1400 x 900 shows the readable columns (the grid renders only visible ones)
        shown = driver.execute_script("""
            return [...document.querySelectorAll('.ag-header-cell[col-id]')]
                .filter(h => { const box = h.getBoundingClientRect();
                               return box.width > 0 && box.left >= 0 && box.right <= window.innerWidth; })
                .map(h => h.getAttribute('col-id'));""")
        wanted = ["params.`method`", "metrics.`rank`", "metrics.`accuracy`", "tags.`CI`", "metrics.`vs baseline`",
                  "tags.`significant`"]
        assert set(wanted) <= set(shown), shown

        driver.set_window_size(1400, 4000)  # every row rendered (the grid renders only visible rows)
        wait_for(driver, lambda d: len(run_rows(runs_table(d))) == len(RATIO_BOARD))
        rows = runs_table(driver)
        groups = [group_of(r) for r in rows if group_of(r)]
        assert [g["family"] for g in groups] == ["reference"] + ["data"] * 5 + ["model"] * 2
        assert [g["ratio"] for g in groups] == ["0", "0.3", "0.5", "0.7", "0.8", "0.9", "0.5", "0.9"]

        current, seen = None, []
        for row in rows:
            if group_of(row):
                current = group_of(row)
                continue
            method, ratio = row["params.`method`"], row["attributes.`Run Name`"].split(" r=")[1].split(" ")[0]
            assert ratio == current["ratio"], row  # the row sits in its ratio's group
            if current["family"] == "reference":
                assert method == "full" and row["metrics.`rank`"] == "-"
                continue
            assert int(row["metrics.`rank`"]) == expected_rank[(method, ratio)], (method, ratio)
            seen.append((ratio, current["family"], int(row["metrics.`rank`"]), float(row["metrics.`accuracy`"])))
        assert len(seen) == len(expected_rank)
        for (ratio, family) in {(r, f) for r, f, _, _ in seen}:
            ranks = [k for r, f, k, _ in seen if (r, f) == (ratio, family)]
            means = [m for r, f, _, m in seen if (r, f) == (ratio, family)]
            assert ranks == list(range(1, len(ranks) + 1))  # rows of a group in rank order
            assert means == sorted(means, reverse=True)  # accuracy: higher is better

        # significance reads yes / no / baseline, never a raw p-value
        assert {r["tags.`significant`"] for r in run_rows(rows)} <= {"yes", "no", "baseline", "-"}

        # the preset chart: the headline against ratio, first in the charts view
        driver.set_window_size(1400, 900)
        driver.get(url + "&compareRunsMode=CHART")
        wait_for(driver, lambda d: "Board: headline metric against ratio" in d.find_element(By.TAG_NAME, "body").text)

        # a summary run's page: the training layout, its description linking its cells
        driver.get(url)
        wait_for(driver, lambda d: d.find_elements(By.LINK_TEXT, "el2n r=0.5 (fashion-mnist)"))
        click(driver, driver.find_element(By.LINK_TEXT, "el2n r=0.5 (fashion-mnist)"))
        wait_for(driver, lambda d: d.find_elements(By.PARTIAL_LINK_TEXT, "Its cells"))
        sidebar = driver.find_element(By.TAG_NAME, "aside").text
        assert "Runs" in sidebar and "Evaluation runs" not in sidebar
        before = set(driver.window_handles)
        click(driver, driver.find_element(By.PARTIAL_LINK_TEXT, "Its cells"))
        # MLflow's markdown opens links in a new tab
        opened = wait_for(driver, lambda d: set(d.window_handles) - before)
        driver.switch_to.window(opened.pop())
        wait_for(driver, lambda d: len(run_rows(runs_table(d))) == len(RATIO_BOARD[("el2n", 0.5)]))
        names = sorted(r["attributes.`Run Name`"].split("\n")[-1] for r in run_rows(runs_table(driver)))
        assert names == ["fashion-mnist/el2n/r0.5/s0", "fashion-mnist/el2n/r0.5/s1"]
    finally:
        if driver is not None:
            driver.quit()
        stop(ui)
