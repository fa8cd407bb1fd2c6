"""A smoke sweep with the dynamic baselines (infobatch, ucb, epsilon-greedy) finishes, and the kept
fraction and cost its cells log are the ones the trainer measured."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from benchmark.cells import parse_sweep
from benchmark.runner import run_sweep
from benchmark.tracking import Tracker
from tasks.vision.fashion_mnist import DEBIAN_DIR

pytestmark = pytest.mark.skipif(not Path(DEBIAN_DIR).is_dir(), reason="needs Debian's dataset-fashion-mnist")

EPOCHS = 4  # the smoke profile's 2 would leave InfoBatch no pruning epoch after the first (delta 0.875)


@pytest.mark.slow
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
    assert info["pruning_epochs"] == 3.0 and 0.5 < info["kept_fraction"] < 1.0
