"""Screenshots of the board in MLflow's own UI and of the HTML board, for results/mlflow-ui/.

Runs the 2-seed smoke sweep (10 cells on the real Fashion-MNIST files) into a fresh store,
builds its board with `prunebench leaderboard`, starts `prunebench ui` on it, opens the URL it
prints in headless Chromium and saves:

- runs-view.png: the experiment's runs page in model-training view, filtered on the summary
  runs, grouped by ratio and sorted by the board's order (the board's view), with the description collapsed;
- description.png: the same page with the description (the compact board) opened;
- charts-view.png: the charts view of the same runs;
- run-page.png: a summary run's page (training layout, chosen once as a reader would): its
  description with the link to its cells, its task's plot and what every column holds;
- html-board.png: the HTML board (the same sweep's) in a 1400-pixel window.

    python scripts/mlflow_ui_screenshots.py --out results/mlflow-ui
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from helpers_mlflow_ui import (close_assistant, expand_description, run_rows, runs_table,  # noqa: E402
                               smoke_store, start_ui, wait_for)
from helpers_server import free_port, stop  # noqa: E402
from test_board import browser  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(ROOT / "results" / "mlflow-ui"), help="folder for the PNG files")
    parser.add_argument("--width", type=int, default=1600, help="browser window width for the MLflow pages")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        uri, board = smoke_store(work / "store", work / "cache")
        print(board.stderr.strip().splitlines()[-1], file=sys.stderr)
        port = free_port()
        ui, _, url = start_ui(uri, port, work)
        driver = browser()
        try:
            print(f"opening {url}", file=sys.stderr)
            driver.set_window_size(args.width, 900)
            close_assistant(driver, f"http://127.0.0.1:{port}")
            driver.get(url)
            wait_for(driver, lambda d: len(run_rows(runs_table(d))) == 5
                     and all(r.get("metrics.`accuracy`") for r in run_rows(runs_table(d))))
            time.sleep(2)
            driver.save_screenshot(str(out / "runs-view.png"))
            expand_description(driver)
            driver.set_window_size(args.width, 1500)
            time.sleep(2)
            driver.save_screenshot(str(out / "description.png"))
            driver.set_window_size(args.width, 1200)
            driver.get(url + "&compareRunsMode=CHART")  # the view's mode switch, as a URL parameter
            wait_for(driver, lambda d: d.find_elements("css selector", ".js-plotly-plot, canvas, svg.main-svg"))
            time.sleep(8)
            driver.save_screenshot(str(out / "charts-view.png"))
            driver.set_window_size(args.width, 1400)
            driver.get(f"http://127.0.0.1:{port}/#/experiments")
            toggle = wait_for(driver, lambda d: d.find_elements("xpath", "//*[normalize-space(text())='Model training']"))
            driver.execute_script("arguments[0].click();", toggle[0])  # MLflow remembers it in the browser
            driver.get(url)
            run_link = wait_for(driver, lambda d: d.find_elements("link text", "el2n r=0.5 (fashion-mnist)"))
            driver.execute_script("arguments[0].click();", run_link[0])
            wait_for(driver, lambda d: d.find_elements("partial link text", "Its cells"))
            time.sleep(4)
            driver.save_screenshot(str(out / "run-page.png"))
            driver.set_window_size(1400, 2400)
            driver.get((work / "store" / "board" / "smoke2.html").as_uri())
            time.sleep(1)
            driver.save_screenshot(str(out / "html-board.png"))
        finally:
            driver.quit()
            stop(ui)
    print(f"written: {sorted(p.name for p in out.glob('*.png'))} in {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
