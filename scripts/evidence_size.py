"""The evidence artifacts of real cpu-profile cells: run fashion-mnist cpu cells (ratio 0.5,
seed 0) of the given methods into a fresh store in FOLDER, logged as the runner logs them,
for results/store-size.md.

    PYTHONPATH=$PWD python scripts/evidence_size.py FOLDER emp magnitude
    find FOLDER/mlartifacts -type f -printf "%s %p\\n"
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from benchmark.sweeps.cells import Cell
from benchmark.sweeps.evidence_log import log_evidence
from benchmark.sweeps.execute import plan_cell, run_cell
from benchmark.sweeps.tracking import Tracker


def main(folder: Path, methods: list[str]) -> None:
    tracker = Tracker(f"sqlite:///{folder}/mlflow.db", "evidence-size")
    for method in methods:
        cell = Cell("fashion-mnist", method, 0.5, 0, "cpu", label=method)
        plan = plan_cell(cell)
        run = tracker.start_cell(cell, "evidence-size", plan.params(), plan.tags())
        result = run_cell(plan, torch.device("cpu"), folder / "cache")
        log_evidence(run, plan, result.evidence, "evidence-size", tracker.code_version)
        run.finish(result.metrics, result.tags)
        print(method, "test_accuracy", result.metrics["test_accuracy"], flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
