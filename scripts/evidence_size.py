"""The evidence artifacts of real cpu-profile cells: run fashion-mnist cpu cells (ratio 0.5,
seed 0) of the given methods into a fresh store in FOLDER, as the runner logs them, for
results/store-size.md.

    PYTHONPATH=$PWD python scripts/evidence_size.py FOLDER emp magnitude
    find FOLDER/mlartifacts -type f -printf "%s %p\\n"
"""
import sys, torch
from pathlib import Path
from benchmark.cells import Cell
from benchmark.evidence import log_evidence
from benchmark.execute import plan_cell, run_cell
from benchmark.tracking import Tracker
folder = Path(sys.argv[1])
for method in sys.argv[2:]:
    cell = Cell("fashion-mnist", method, 0.5, 0, "cpu", label=method)
    tracker = Tracker(f"sqlite:///{folder}/mlflow.db", "emp-cpu")
    plan = plan_cell(cell)
    run = tracker.start_cell(cell, "emp-cpu", plan.params(), plan.tags())
    result = run_cell(plan, torch.device("cpu"), folder / "cache")
    log_evidence(run, plan, result.evidence, "emp-cpu", tracker.code_version)
    run.finish(result.metrics, result.tags)
    print(method, "done", result.metrics["test_accuracy"], flush=True)
