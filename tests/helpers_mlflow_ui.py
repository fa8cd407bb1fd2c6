"""Driving MLflow's own UI in headless Chromium: a 2-seed smoke sweep into a store, its board,
``prunebench ui`` on it, and the board's view read back from the rendered page. Used by
tests/test_mlflow_ui.py and scripts/mlflow_ui_screenshots.py (which commits the screenshots)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
SWEEP = {"name": "smoke2", "profile": "smoke", "seeds": [0, 1], "ratios": [0.5], "tasks": ["fashion-mnist"],
         "methods": ["random", "el2n", "magnitude", "random-weights"]}
PAGE_TIMEOUT = 180  # seconds for a page of the UI to render on a loaded 2-core machine
VIEW_URL = re.compile(r"(http://\S+#/experiments/\d+/runs\?\S*viewStateShareKey=\S+)")


def cli(*args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)


def smoke_store(directory: Path, cache: Path) -> tuple[str, subprocess.CompletedProcess]:
    """A store holding the finished 2-seed smoke sweep and its board: (tracking URI, the
    ``leaderboard`` command's result)."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "smoke2.yaml").write_text(yaml.safe_dump(SWEEP))
    uri = f"sqlite:///{directory / 'mlflow.db'}"
    run = cli("run", "smoke2.yaml", "--tracking-uri", uri, "--cache-dir", str(cache), "--quiet", cwd=directory)
    assert run.returncode == 0 and "finished 10, failed 0" in run.stderr, run.stderr[-3000:]
    board = cli("leaderboard", "--experiment", SWEEP["name"], "--tracking-uri", uri, "--out", "board", cwd=directory)
    assert board.returncode == 0, board.stderr[-3000:]
    return uri, board


def start_ui(uri: str, port: int, cwd: Path) -> tuple[subprocess.Popen, list[str], str]:
    """``prunebench ui`` on ``uri``; returns once it printed the sweep's view URL: the process,
    its output lines (stdout and stderr together; up to the URL, and on as they come) and the URL."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # a generous start: on a loaded 2-core machine the server's workers take minutes to answer
    command = [sys.executable, "-m", "benchmark.cli", "ui", "--port", str(port), "--tracking-uri", uri,
               "--start-timeout", str(PAGE_TIMEOUT * 2)]
    process = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               start_new_session=True)
    lines: list[str] = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if found := VIEW_URL.search(line):
            break
    else:
        raise AssertionError("prunebench ui printed no view URL:\n" + "\n".join(lines[-40:]))
    # keep reading: a pipe nobody reads fills with the server's request log and blocks it
    threading.Thread(target=lambda: [lines.append(x.rstrip("\n")) for x in process.stdout], daemon=True).start()
    return process, lines, found.group(1)


def close_assistant(driver, base: str) -> None:
    """Keep MLflow's assistant panel (it opens on a first visit) from covering half the page."""
    driver.get(base + "/#/")
    driver.execute_script("localStorage.setItem('mlflow.assistant.panelOpen_v1', 'false');"
                          "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');")


def wait_for(driver, find, timeout: float = PAGE_TIMEOUT):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout, poll_frequency=0.5).until(lambda d: find(d))


def runs_table(driver) -> list[dict[str, str]]:
    """The rendered runs table, top to bottom: per row, column id (``params.`ratio```,
    ``metrics.`accuracy```, ``run_name`` ...) -> the text shown. The run name sits in the grid's
    pinned-left part, the other columns in its centre; both are matched by row index."""
    rows = driver.execute_script("""
        const out = {};
        document.querySelectorAll('.ag-row').forEach(row => {
            const index = row.getAttribute('row-index');
            out[index] = out[index] || {};
            row.querySelectorAll('.ag-cell').forEach(cell => {
                out[index][cell.getAttribute('col-id')] = cell.innerText.trim();
            });
        });
        return Object.keys(out).sort((a, b) => a - b).map(k => out[k]);""")
    return rows


GROUP = re.compile(r"^Group: (.*)\n?\d*$")


def run_rows(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """The rows of :func:`runs_table` that are runs (not a group's header row)."""
    return [r for r in rows if not GROUP.match(r.get("attributes.`Run Name`", ""))]


def group_of(row: dict[str, str]) -> dict[str, str] | None:
    """A group header row's grouping values (``{"ratio": "0.3", "family": "data", ...}``), else None."""
    found = GROUP.match(row.get("attributes.`Run Name`", ""))
    if not found:
        return None
    return dict(part.split(": ", 1) for part in found.group(1).split(", "))


def expand_description(driver) -> str:
    """Open the experiment's description (shown collapsed to its first line) and return its text."""
    from selenium.webdriver.common.by import By

    button = driver.find_elements(By.CSS_SELECTOR, "[data-component-id='mlflow.experiment.metadata_editor.expand_button']")
    if button:
        button[0].click()
        time.sleep(1)
    heading = driver.find_element(By.XPATH, "//h2[starts-with(normalize-space(.), 'Leaderboard:')]")
    return heading.find_element(By.XPATH, "./ancestor::div[1]").text


#: test accuracy by seed per (label, ratio) of a two-family board whose means do not fall with
#: the ratio (0.8 beats 0.7), so a view sorted by mean would show the ratios out of order
RATIO_BOARD = {
    ("full", 0.0): [0.910, 0.915],
    ("random", 0.3): [0.880, 0.884], ("el2n", 0.3): [0.890, 0.896], ("forgetting", 0.3): [0.870, 0.873],
    ("random", 0.5): [0.860, 0.866], ("el2n", 0.5): [0.875, 0.879], ("forgetting", 0.5): [0.881, 0.889],
    ("random", 0.7): [0.820, 0.826], ("el2n", 0.7): [0.700, 0.706], ("forgetting", 0.7): [0.850, 0.852],
    ("random", 0.8): [0.890, 0.892], ("el2n", 0.8): [0.893, 0.899], ("forgetting", 0.8): [0.800, 0.809],
    ("random", 0.9): [0.600, 0.610], ("el2n", 0.9): [0.256, 0.260], ("forgetting", 0.9): [0.650, 0.655],
    ("random-weights", 0.5): [0.840, 0.846], ("magnitude", 0.5): [0.900, 0.904],
    ("random-weights", 0.9): [0.500, 0.510], ("magnitude", 0.9): [0.700, 0.720],
}
RATIO_FAMILY = {"full": "reference", "random": "data", "el2n": "data", "forgetting": "data",
                "random-weights": "model", "magnitude": "model"}


def ratio_store(uri: str, experiment: str = "ratios", board: dict | None = None,
                rename: dict[str, str] | None = None) -> None:
    """A real store holding ``board`` (default :data:`RATIO_BOARD`) as finished cells of
    ``experiment``, written through the harness's own Tracker as a sweep writes them; ``rename``
    gives some methods another label."""
    from benchmark.sweeps.cells import Cell
    from benchmark.sweeps.tracking import Tracker

    tracker = Tracker(uri, experiment)
    for (method, ratio), values in (board or RATIO_BOARD).items():
        family = RATIO_FAMILY[method]
        label = (rename or {}).get(method, method)
        for seed, value in enumerate(values):
            cell = Cell("fashion-mnist", "none" if method == "full" else method, ratio, seed, "cpu", label=label)
            tags = {"family": family, "provenance": "reference-code", "data_origin": "real",
                    "task_family": "vision", "metric": "accuracy", "chance_level": "0.1"}
            tracker.start_cell(cell, experiment, {}, tags).finish({
                "test_accuracy": value, "kept_fraction": 1 - ratio if family == "data" else 1.0,
                "total_sample_passes_rel": 1 - ratio if family == "data" else 1.0, "train_seconds": 100 * (1 - ratio) + 1,
                "scoring_seconds": 0.0, "params_total": 1000.0,
                "params_remaining": 1000.0 - 800 * ratio * (family == "model"),
                "flops_remaining_rel": 1 - ratio if family == "model" else 1.0,
                **({"realised_sparsity": ratio} if family == "model" else {})})
