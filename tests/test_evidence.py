"""Each cell's evidence read back from a real MLflow store and checked against independent
records: the samples the trainer consumed (a hook of the test's own), scores recomputed from
scratch, the trained model's zeros, the cell id, the data's digest; and a third-party method's
provenance and package version."""
from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from benchmark.sweeps import evidence
from benchmark.sweeps.cells import Cell, parse_sweep
from benchmark.training.context import RunContext
from benchmark.sweeps.evidence import epoch_indices, splits_digest, unpack_mask
from benchmark.sweeps.evidence_log import cell_from_record, log_evidence
from benchmark.sweeps.execute import plan_cell, run_cell
from benchmark.api.hooks import Hook
from benchmark.sweeps.runner import run_sweep
from benchmark.sweeps.tracking import Tracker
from benchmark.api.registry import METHODS
from tasks.vision.fashion_mnist import DEBIAN_DIR, FashionMNIST

pytestmark = pytest.mark.skipif(not Path(DEBIAN_DIR).is_dir(), reason="needs Debian's dataset-fashion-mnist")
CPU = torch.device("cpu")


class Batches(Hook):
    """The test's own record of what the trainer fed the model: each batch's indices, losses
    and logits, per epoch."""

    def on_run_start(self, state):
        self.epochs = []

    def on_epoch_start(self, state):
        self.epochs.append([])

    def on_batch_loss(self, state, indices, logits, losses, targets, features):
        self.epochs[-1].append((indices.clone(), logits.clone(), losses.clone(), targets.clone()))

    def consumed(self, epoch: int) -> np.ndarray:
        return np.sort(torch.cat([b[0] for b in self.epochs[epoch]]).numpy())


def run_logged(store: Path, method: str, ratio: float = 0.5, **options):
    """One smoke cell on real Fashion-MNIST, run with the test's batch record and logged as the
    runner logs it; returns (run, the batch record, the cell result)."""
    cell = Cell("fashion-mnist", method, ratio, 0, "smoke", method_options=tuple(sorted(options.items())),
                label=method)
    tracker = Tracker(f"sqlite:///{store}/mlflow.db", "evidence")
    plan = plan_cell(cell)
    run = tracker.start_cell(cell, "evidence-sweep", plan.params(), plan.tags())
    batches = Batches()
    result = run_cell(plan, CPU, store / "cache", hooks=[batches])
    log_evidence(run, plan, result.evidence, "evidence-sweep", tracker.code_version)
    run.finish(result.metrics, result.tags)
    return tracker.client.get_run(run.run_id), batches, result


def artifact(client: MlflowClient, run, name: str, tmp: Path):
    path = Path(client.download_artifacts(run.info.run_id, name, str(tmp)))
    return json.loads(path.read_text()) if name.endswith(".json") else dict(np.load(path))


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return tmp_path_factory.mktemp("evidence-store")


@pytest.fixture(scope="module")
def el2n_cell(store):
    return run_logged(store, "el2n")


def test_logged_indices_are_the_ones_trained_on(el2n_cell, store, tmp_path):
    run, batches, _ = el2n_cell
    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    samples = artifact(client, run, "samples.npz", tmp_path)
    logged = epoch_indices(samples)
    metrics = run.data.metrics
    epochs, n = int(metrics["epochs_run"]), int(metrics["n_train"])
    assert len(logged) == epochs == len(batches.epochs) == 2
    assert sum(len(e) for e in logged) == round(metrics["kept_fraction"] * n * epochs) == 2 * (n - round(0.5 * n))
    for epoch, indices in enumerate(logged):
        assert np.array_equal(indices, batches.consumed(epoch))
    assert len(samples["rows"]) == 1  # a fixed subset: one bitset for both epochs


def test_el2n_scores_match_an_independent_recomputation(el2n_cell, store, tmp_path):
    run, _, _ = el2n_cell
    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    scores = artifact(client, run, "scores.npz", tmp_path)
    assert scores["scores"].dtype == np.float32 and list(scores["epochs"]) == [0]
    # from scratch: the same proxies (seeds of Data Diet's protocol), our own error norm
    task = FashionMNIST("smoke")
    splits = task.load_splits()
    context = RunContext(task=task, splits=splits, device=CPU, seed=0, cache_dir=tmp_path / "fresh")
    total = torch.zeros(len(splits.train))
    for proxy in range(2):
        model, _ = context.train_proxy(seed=1_000_003 * (proxy + 1), epochs=1)
        probs = torch.softmax(context.predict(model), dim=1)
        total += (probs - torch.nn.functional.one_hot(splits.train.y, 10).float()).norm(dim=1)
    np.testing.assert_allclose(scores["scores"][0], (total / 2).numpy(), rtol=1e-5, atol=1e-6)
    # and the samples kept are the highest-scoring half of them
    kept = epoch_indices(artifact(client, run, "samples.npz", tmp_path))[0]
    n = len(total)
    assert np.array_equal(kept, np.sort(np.argsort(-scores["scores"][0], kind="stable")[: n - round(0.5 * n)]))


def test_emp_scores_are_the_losses_and_entropies_of_the_previous_epoch(store, tmp_path):
    run, batches, _ = run_logged(store, "emp")
    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    scores = artifact(client, run, "scores.npz", tmp_path)
    assert list(scores["epochs"]) == [1]  # epoch 0 trains on all: no ranking until epoch 1
    expected = np.zeros(scores["scores"].shape[1], dtype=np.float32)
    for indices, logits, losses, targets in batches.epochs[0]:
        log_p = torch.log_softmax(logits.float(), dim=1)
        expected[indices.numpy()] = (losses + -(log_p.exp() * log_p).sum(dim=1)).numpy()  # beta = 1
    np.testing.assert_allclose(scores["scores"][0], expected, rtol=1e-5, atol=1e-6)
    logged = epoch_indices(artifact(client, run, "samples.npz", tmp_path))
    n = len(expected)
    assert len(logged[0]) == n and np.array_equal(logged[1], batches.consumed(1))
    assert np.array_equal(logged[1], np.sort(np.argsort(-expected.astype(np.float64), kind="stable")[: n - n // 2]))


def test_mask_counts_are_the_trained_models_zeros(store, tmp_path):
    run, _, result = run_logged(store, "magnitude")
    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    summary = artifact(client, run, "masks.json", tmp_path)
    bits = artifact(client, run, "masks.npz", tmp_path)
    weights = dict(result.evidence.model.named_parameters())
    assert set(summary["layers"]) == set(bits) and summary["layers"]
    for name, layer in summary["layers"].items():
        weight = weights[name].detach()
        assert layer["total"] == weight.numel() and layer["zero"] == int((weight == 0).sum())
        assert layer["kept"] == weight.numel() - layer["zero"]
        assert np.array_equal(unpack_mask(bits[name], layer["shape"]), (weight != 0).numpy())
    assert summary["kept"] == round(run.data.metrics["prunable_params_remaining"])
    # a full-data model-pruning cell trains on every sample: no samples file
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert names == {"cell.json", "masks.json", "masks.npz"}


def test_masks_over_the_threshold_keep_only_their_counts(store, tmp_path, monkeypatch):
    monkeypatch.setattr(evidence, "MASK_MAX_WEIGHTS", 1000)
    run, _, _ = run_logged(store, "random-weights")
    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    names = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert names == {"cell.json", "masks.json"}
    summary = artifact(client, run, "masks.json", tmp_path)
    assert summary["bits"] is None and summary["kept"] == summary["total"] - round(0.5 * summary["total"])


def test_cell_json_round_trips_to_the_cell_id_and_the_data_is_the_runs_input(el2n_cell, store, tmp_path):
    run, _, _ = el2n_cell
    client = MlflowClient(f"sqlite:///{store}/mlflow.db")
    record = artifact(client, run, "cell.json", tmp_path)
    assert cell_from_record(record).id == record["cell_id"] == run.data.tags["cell_id"]
    assert record["sweep"] == "evidence-sweep" and record["code_version"] == run.data.tags["code_version"]
    assert record["recipe"]["epochs"] == 2 and record["method"]["options"]["proxy_runs"] == 2
    assert record["libraries"]["torch"] == torch.__version__
    inputs = run.inputs.dataset_inputs
    assert len(inputs) == 1
    dataset = inputs[0].dataset
    digest = splits_digest(FashionMNIST("smoke").load_splits())
    assert dataset.name == "fashion-mnist" and dataset.digest == digest == run.data.tags["data.digest"]
    assert json.loads(dataset.source) == {"uri": str(Path(DEBIAN_DIR))} and dataset.source_type == "local"
    assert json.loads(dataset.profile)["splits"] == {"train": 576, "val": 64, "test": 256}
    assert [(t.key, t.value) for t in inputs[0].tags] == [("mlflow.data.context", "train")]


def test_digest_changes_with_the_data():
    splits = FashionMNIST("smoke").load_splits()
    before = splits_digest(splits)
    splits.train.x[0, 0, 0, 0] ^= 1
    assert splits_digest(splits) != before


def test_score_snapshots_stay_within_the_budget(monkeypatch):
    recorder = evidence.EvidenceRecorder(method=None)
    recorder.n = 1000
    recorder.score_epochs = list(range(1, 11))
    recorder.score_rows = [np.full(1000, e, dtype=np.float32) for e in range(1, 11)]
    monkeypatch.setattr(evidence, "SCORE_BUDGET_BYTES", 3 * 4 * 1000)
    kept = recorder.scores_arrays()
    assert list(kept["epochs"]) == [1, 5, 10] and kept["scores"][:, 0].tolist() == [1, 5, 10]


PLUGIN = '''
from methods.data.random_data import RandomData
from benchmark.api.registry import register_method

__version__ = "ignored: the distribution's version wins"


@register_method("test-plugin-random")
class PluginRandom(RandomData):
    """A third-party method that inherits a built-in's provenance and declares none."""


@register_method("test-plugin-declared")
class PluginDeclared(RandomData):
    provenance = "reconstructed"
'''


def test_a_third_party_method_has_unknown_provenance_and_its_package_version(tmp_path):
    package = tmp_path / "pbplugin_evidence"
    package.mkdir()
    (package / "__init__.py").write_text(PLUGIN)
    info = tmp_path / "pbplugin_evidence-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pbplugin-evidence\nVersion: 1.2.3\n")
    (info / "top_level.txt").write_text("pbplugin_evidence\n")
    sys.path.insert(0, str(tmp_path))
    try:
        importlib.import_module("pbplugin_evidence")
        sweep = parse_sweep({"name": "plugin", "profile": "smoke", "seeds": [0], "ratios": [0.5],
                             "tasks": ["fashion-mnist"], "methods": ["test-plugin-random", "test-plugin-declared"]})
        uri = f"sqlite:///{tmp_path}/mlflow.db"
        report = run_sweep(sweep, Tracker(uri, "plugin"), CPU, tmp_path / "cache", quiet=True)
    finally:
        sys.path.remove(str(tmp_path))
    assert len(report.finished) == 3, report.failed
    client = MlflowClient(uri)
    runs = {r.data.tags["method"]: r for r in client.search_runs(
        [client.get_experiment_by_name("plugin").experiment_id])}
    plugin, declared, builtin = runs["test-plugin-random"], runs["test-plugin-declared"], runs["none"]
    assert plugin.data.tags["provenance"] == plugin.data.params["provenance"] == "unknown"
    assert declared.data.tags["provenance"] == "reconstructed"
    for run in (plugin, declared):
        assert run.data.tags["method_package"] == "pbplugin-evidence"
        assert run.data.tags["method_package_version"] == "1.2.3"
    assert builtin.data.tags["provenance"] == "reference-code" and "method_package" not in builtin.data.tags
    listed = dict(METHODS.listing()[0])  # `prunebench list` says what the run tags say
    assert listed["test-plugin-random"]["provenance"] == "unknown"
    assert listed["test-plugin-declared"]["provenance"] == "reconstructed"
    assert listed["random"]["provenance"] == "reference-code"
    record = artifact(client, plugin, "cell.json", tmp_path / "dl")
    assert record["method"]["provenance"] == "unknown" and record["method"]["package_version"] == "1.2.3"
    assert {a.path for a in client.list_artifacts(plugin.info.run_id)} == {"cell.json", "samples.npz"}


@pytest.mark.slow
def test_evidence_goes_through_a_real_mlflow_server(tmp_path):
    """The runner's own path (run_sweep) against `mlflow server`: artifacts proxied by the
    server, the data set input in its store."""
    from helpers_server import free_port, start_mlflow_server, stop, wait_healthy

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_mlflow_server(tmp_path, port)
    try:
        wait_healthy(url, server)
        sweep = parse_sweep({"name": "remote-evidence", "profile": "smoke", "seeds": [0], "ratios": [0.5],
                             "tasks": ["fashion-mnist"], "methods": [{"name": "random", "options": {"dynamic": True}}]})
        report = run_sweep(sweep, Tracker(url, "remote-evidence"), CPU, tmp_path / "cache", quiet=True)
        assert len(report.finished) == 2, report.failed
        client = MlflowClient(url)
        runs = {r.data.tags["method"]: r for r in client.search_runs(
            [client.get_experiment_by_name("remote-evidence").experiment_id])}
        dynamic = runs["random"]
        samples = artifact(client, dynamic, "samples.npz", tmp_path)
        assert len(samples["rows"]) == 2 and list(samples["epoch_row"]) == [0, 1]  # a new subset each epoch
        assert list(samples["counts"]) == [288, 288]
        record = artifact(client, dynamic, "cell.json", tmp_path)
        assert cell_from_record(record).id == dynamic.data.tags["cell_id"]
        for run in runs.values():
            assert run.inputs.dataset_inputs[0].dataset.digest == run.data.tags["data.digest"]
        assert {a.path for a in client.list_artifacts(runs["none"].info.run_id)} == {"cell.json"}
    finally:
        stop(server)
