"""The dynamic baselines (infobatch, ucb, epsilon-greedy) as a user meets them: listed by `prunebench
list`, runnable on every task, and a smoke sweep with them finishes with the kept fraction and cost
the trainer measured."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from benchmark.sweeps.cells import parse_sweep
from benchmark.api.registry import METHODS, TASKS
from benchmark.sweeps.runner import run_sweep
from benchmark.sweeps.tracking import Tracker
from tasks.vision.fashion_mnist import DEBIAN_DIR

EPOCHS = 4  # the smoke profile's 2 would leave InfoBatch no pruning epoch after the first (delta 0.875)


DYNAMIC = {"infobatch": ("reference-code", "delta, ratio_of"), "ucb": ("reconstructed", "c, alpha, bonus"),
           "epsilon-greedy": ("reconstructed", "epsilon, alpha")}


def test_prunebench_list_shows_them_with_family_provenance_and_options():
    listed = subprocess.run([sys.executable, "-m", "benchmark.cli", "list", "methods"], capture_output=True,
                            text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines() if line.startswith("  ")}
    for name, (provenance, options) in DYNAMIC.items():
        assert "family=data" in rows[name] and f"provenance={provenance} " in rows[name]
        assert rows[name].endswith(f"options: {options}")


@pytest.mark.parametrize("task", ["fashion-mnist", "rt-polarity", "stsb", "rt-instruct", "cwru"])
def test_they_need_only_per_sample_losses_which_every_task_has(task):
    for name in DYNAMIC:
        assert METHODS.get(name).requires == frozenset()
        assert METHODS.get(name).incompatibility(TASKS.get(task)) is None


@pytest.mark.slow
@pytest.mark.skipif(not Path(DEBIAN_DIR).is_dir(), reason="needs Debian's dataset-fashion-mnist")
def test_smoke_sweep_with_the_dynamic_baselines_finishes_with_measured_costs(tmp_path):
    sweep = parse_sweep({"name": "dyn", "profile": "smoke", "seeds": [0], "ratios": [0.5],
                         "tasks": [{"name": "fashion-mnist", "options": {"epochs": EPOCHS}}],
                         "methods": ["infobatch", "ucb", "epsilon-greedy"]})
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "dyn")
    report = run_sweep(sweep, tracker, torch.device("cpu"), tmp_path / "cache", quiet=True)
    assert not report.failed
    runs = {r.data.params["method"]: r for r in MlflowClient(tracker.tracking_uri).search_runs([tracker.experiment_id])}
    assert set(runs) == {"none", "infobatch", "ucb", "epsilon-greedy"}
    for name in ("infobatch", "ucb", "epsilon-greedy"):
        m, t = runs[name].data.metrics, runs[name].data.tags
        assert t["status"] == "finished" and t["family"] == "data"
        n = int(m["n_train"])
        # every batch of every epoch is trained (budget: epochs), so the passes are the kept samples
        assert m["kept_fraction"] == m["sample_passes"] / (EPOCHS * n) == m["sample_passes_rel"]
        assert m["cost_rel"] == m["sample_passes_rel"]  # no scoring passes: the training forward scores
    n = int(runs["ucb"].data.metrics["n_train"])
    for name in ("ucb", "epsilon-greedy"):
        assert runs[name].data.metrics["sample_passes"] == n + (EPOCHS - 1) * (n - round(0.5 * n))
        assert runs[name].data.tags["provenance"] == "reconstructed"
    info = runs["infobatch"].data.metrics
    assert runs["infobatch"].data.tags["provenance"] == "reference-code"
    # epochs 0-2 prune (epoch 0 trivially), epoch 3 anneals: strictly between full and half data
    assert info["method.pruning_epochs"] == 3.0 and 0.5 < info["kept_fraction"] < 1.0  # a method figure: its own namespace
