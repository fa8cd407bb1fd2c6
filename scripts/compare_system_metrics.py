"""One cell, run with and without MLflow's system metrics monitor: what each memory figure
says, what the monitor costs in time and in store size (results/system-metrics.md).

After one warm-up run (which loads the data for the rest), each variant runs in a fresh store,
alternating (A B A B ...); the harness's own
``peak_rss_mb`` (benchmark/training/memory.py) is logged by both. MLflow's monitor needs psutil.

    python scripts/compare_system_metrics.py [--repeats 2] [--interval 1] [--out results/system-metrics.json]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmark.sweeps.cells import Cell
from benchmark.sweeps.evidence_log import log_evidence
from benchmark.sweeps.execute import plan_cell, run_cell
from benchmark.sweeps.tracking import Tracker

CELL = Cell("fashion-mnist", "el2n", 0.5, 0, "cpu", task_options=(("epochs", 3), ("train_limit", 8000)), label="el2n")


def store_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def one_run(folder: Path, monitor_interval: float | None) -> dict:
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    uri = f"sqlite:///{folder}/mlflow.db"
    tracker = Tracker(uri, "system-metrics")
    plan = plan_cell(CELL)
    run = tracker.start_cell(CELL, "system-metrics", plan.params(), plan.tags())
    empty = store_bytes(folder)
    monitor = None
    if monitor_interval is not None:
        monitor = SystemMetricsMonitor(run.run_id, sampling_interval=monitor_interval, tracking_uri=uri)
        monitor.start()
    began = time.perf_counter()
    result = run_cell(plan, torch.device("cpu"), folder / "cache")
    wall = time.perf_counter() - began
    if monitor is not None:
        monitor.finish()
    log_evidence(run, plan, result.evidence, "system-metrics", tracker.code_version)
    run.finish(result.metrics, result.tags)
    client = tracker.client
    system = {}
    for key in client.get_run(run.run_id).data.metrics:
        if key.startswith("system/"):
            history = [m.value for m in client.get_metric_history(run.run_id, key)]
            system[key] = {"samples": len(history), "max": max(history), "min": min(history)}
    return {"wall_seconds": wall, "peak_rss_mb": result.metrics["peak_rss_mb"],
            "store_growth_bytes": store_bytes(folder) - empty, "system_metrics": system}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--interval", type=float, default=1.0, help="the monitor's sampling interval (s)")
    parser.add_argument("--out", default="results/system-metrics.json")
    args = parser.parse_args()
    rows: dict[str, list[dict]] = {"peak-memory only": [], f"+ mlflow system metrics ({args.interval:g} s)": []}
    with tempfile.TemporaryDirectory() as folder:  # warm-up: the data load is cached for the rest
        one_run(Path(folder), None)
    for _ in range(args.repeats):
        for name, interval in zip(rows, (None, args.interval)):
            with tempfile.TemporaryDirectory() as folder:
                rows[name].append(one_run(Path(folder), interval))
                print(name, json.dumps(rows[name][-1]["wall_seconds"]), flush=True)
    summary = {name: {"wall_seconds_median": statistics.median(r["wall_seconds"] for r in runs),
                      "peak_rss_mb_median": statistics.median(r["peak_rss_mb"] for r in runs),
                      "store_growth_bytes_median": statistics.median(r["store_growth_bytes"] for r in runs),
                      "runs": runs} for name, runs in rows.items()}
    summary["cell"] = CELL.content()
    summary["cpus"] = os.cpu_count()
    Path(args.out).write_text(json.dumps(summary, indent=1))
    print(json.dumps({k: {kk: vv for kk, vv in v.items() if kk != "runs"} if isinstance(v, dict) and "runs" in v else v
                      for k, v in summary.items()}, indent=1))


if __name__ == "__main__":
    main()
