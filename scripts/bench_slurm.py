"""The Slurm executor's own overhead per cell against the local and Ray executors, on one smoke sweep.

Starts a single-node Slurm (the test fixture's: munged, slurmctld, slurmd in a temporary folder;
needs root and Debian's slurmctld / slurmd / munge, see scripts/ensure-cluster.sh) and one
``prunebench server`` (SQLite), writes tiny Fashion-MNIST files, then runs the same sweep through
``prunebench run`` with ``--executor local``, ``ray`` and ``slurm``, one cell at a time
(``--max-in-flight 1``), each into its own experiment. Per executor: the wall-clock of the
command, the sum of the cells' own run times (each run's start to end in MLflow: claim,
training, recording), and the difference per cell, which is what the executor adds (process
and job start, submission and scheduling, polling).

    python scripts/bench_slurm.py [--seeds 4] [--out results/bench-slurm.md]
"""
from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from helpers_cluster import start_slurm  # noqa: E402
from helpers_tiny import write_tiny_fashion_mnist  # noqa: E402
from mlflow.tracking import MlflowClient  # noqa: E402

from benchmark.sweeps.server import free_port, start_server, stop_server, wait_healthy  # noqa: E402


def run_once(executor: str, experiment: str, sweep: Path, url: str, env: dict[str, str],
             folder: Path) -> tuple[float, str]:
    # a fresh score cache each time: a cached el2n score would make a later executor's cells cheaper
    command = [sys.executable, "-m", "benchmark.cli", "run", str(sweep), "--tracking-uri", url, "--quiet",
               "--experiment", experiment, "--cache-dir", str(folder / f"cache-{experiment}")]
    if executor != "local":
        command += ["--executor", executor, "--max-in-flight", "1"]
    if executor == "slurm":
        command += ["--time", "10", "--slurm-logs", str(folder / "slurm-logs")]
    began = time.perf_counter()
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - began
    if out.returncode != 0:
        raise RuntimeError(f"{executor}: {out.stderr[-3000:]}")
    return wall, out.stderr.strip().splitlines()[-1]


def cell_times(url: str, experiment: str) -> tuple[int, int, float]:
    """(cells finished, most finished runs of one cell, sum of the finished runs' durations in s)."""
    client = MlflowClient(url)
    runs = client.search_runs([client.get_experiment_by_name(experiment).experiment_id], max_results=1000)
    finished = [r for r in runs if r.data.tags.get("status") == "finished"]
    per_cell = Counter(r.data.tags["cell_id"] for r in finished)
    return len(per_cell), max(per_cell.values()), sum((r.info.end_time - r.info.start_time) / 1000 for r in finished)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2, help="each executor this many times, in turn")
    parser.add_argument("--out", default="results/bench-slurm.md")
    args = parser.parse_args()
    rows, load_before = [], os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data = write_tiny_fashion_mnist(folder / "fm", n_train=400, n_test=100)
        sweep_data = {"name": "bench", "profile": "smoke", "seeds": list(range(args.seeds)), "ratios": [0.5],
                      "tasks": [{"name": "fashion-mnist", "data_dir": str(data), "options": {"epochs": 1}}],
                      "methods": ["random", "magnitude", "el2n"]}
        sweep = folder / "bench.yaml"
        sweep.write_text(yaml.safe_dump(sweep_data))
        cluster, stop_slurm = start_slurm()
        port = free_port()
        server = start_server(folder / "server", port, workers=2)
        url = f"http://127.0.0.1:{port}"
        env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "SLURM_CONF": str(cluster.conf),
               "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
        try:
            wait_healthy(url, server)
            for round_ in range(1, args.rounds + 1):
                for executor in ("local", "ray", "slurm"):
                    experiment = f"bench-{executor}-{round_}"
                    wall, summary = run_once(executor, experiment, sweep, url, env, folder)
                    cells, most, in_cells = cell_times(url, experiment)
                    rows.append((f"{executor} (round {round_})", cells, most, wall, in_cells,
                                 (wall - in_cells) / cells, summary))
                print(rows[-1], file=sys.stderr)
        finally:
            stop_server(server)
            stop_slurm()
    load_after = os.getloadavg()
    lines = [
        "# Slurm executor: overhead per cell against the local and Ray executors",
        "",
        f"Command: `python scripts/bench_slurm.py --seeds {args.seeds} --rounds {args.rounds}` (as root; Debian's slurmctld, slurmd, munge)  ",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, shared; a single-node Slurm 22.05 started by the "
        "test fixture, one `prunebench server` (SQLite) on the same machine.  ",
        f"Sweep: Fashion-MNIST smoke profile on tiny generated files (400 training images, 1 epoch), "
        f"{args.seeds} seeds x (full + random, magnitude, el2n) = {4 * args.seeds} cells, one at a time "
        "(`--max-in-flight 1`; local is sequential anyway), each run with a fresh score cache; the executors "
        "take turns, round after round.  ",
        f"Load average (1, 5, 15 min) before: {', '.join(f'{x:.2f}' for x in load_before)}; after: "
        f"{', '.join(f'{x:.2f}' for x in load_after)}.",
        "",
        "| executor | cells finished (most runs finished per cell) | wall-clock | sum of cell runs | executor overhead per cell |",
        "|---|---|---:|---:|---:|",
    ]
    for executor, cells, most, wall, in_cells, overhead, _ in rows:
        lines.append(f"| {executor} | {cells} ({most}) | {wall:.1f} s | {in_cells:.1f} s | {overhead:.2f} s |")
    lines += ["", "Overhead per cell = (wall-clock - sum of the cells' run times) / cells: for local the process "
              "start and imports, for Ray the instance's start and task dispatch, for Slurm `sbatch`, scheduling "
              "(sched_interval=2 s), the job's Python start and the driver's polling (every 5 s). Most of it is "
              "paid once per command or per array task, so it shrinks per cell as cells grow in number or length.",
              "", "Runs' summary lines:", ""]
    lines += [f"- {executor}: `{summary}`" for executor, *_, summary in rows]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"written: {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
