"""Load figure: a smoke sweep of many cells through the Ray executor against an MLflow server.

Starts ``prunebench server`` on a free local port (SQLite store in a temporary directory),
runs a Fashion-MNIST smoke sweep of ``--seeds`` x 4 cells (full, random, magnitude,
random-weights) with ``--executor ray`` on a local Ray instance, then counts the finished
runs per cell (zero lost, zero duplicated is the requirement) and writes cells per minute
and the tracking overhead per cell (claim + recording the outcome, timed by the driver).

    python scripts/load_ray.py [--seeds 50] [--out results/load-ray.md]
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmark.sweeps.cells import parse_sweep
from benchmark.sweeps.ray_executor import run_sweep_ray
from benchmark.sweeps.server import free_port, start_server, stop_server, wait_healthy
from benchmark.sweeps.tracking import Tracker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--out", default="results/load-ray.md")
    args = parser.parse_args()

    methods = ["random", "magnitude", "random-weights"]
    sweep = parse_sweep({"name": "load", "profile": "smoke", "seeds": list(range(args.seeds)), "ratios": [0.5],
                         "tasks": ["fashion-mnist"], "methods": methods})
    cells = len(sweep.cells())
    with tempfile.TemporaryDirectory() as tmp:
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(Path(tmp) / "server", port, workers=2)
        try:
            wait_healthy(url, server)
            tracker = Tracker(url, "load")
            began = time.perf_counter()
            report = run_sweep_ray(sweep, tracker, Path(tmp) / "cache", quiet=True)
            wall = time.perf_counter() - began
            runs = tracker.runs_by_cell()
        finally:
            stop_server(server)
    finished = Counter(cid for cid, rs in runs.items() for r in rs if r.data.tags.get("status") == "finished")
    lost = cells - len(finished)
    duplicated = sum(n - 1 for n in finished.values() if n > 1)
    overhead = report.tracking_seconds
    command = f"python scripts/load_ray.py --seeds {args.seeds}"
    text = "\n".join([
        "# Load: a smoke sweep through the Ray executor against an MLflow server", "",
        f"Command: `{command}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; a local Ray instance "
        f"(1 CPU per cell) and `prunebench server` (SQLite) on the same machine.  ",
        f"Data: real Fashion-MNIST, smoke profile (640 training images, 2 epochs), {args.seeds} seeds x "
        f"(full + {', '.join(methods)}) = {cells} cells.", "",
        "| figure | value |", "|---|---|",
        f"| cells finished | {len(report.finished)} of {cells} (failed {len(report.failed)}) |",
        f"| lost / duplicated runs | {lost} / {duplicated} |",
        f"| wall-clock | {wall:.0f} s |",
        f"| cells per minute | {len(report.finished) / wall * 60:.1f} |",
        f"| tracking overhead per cell (claim + record), median | {statistics.median(overhead):.3f} s |",
        f"| tracking overhead per cell, max | {max(overhead):.3f} s |", "",
    ])
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
