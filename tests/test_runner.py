"""The runner and MLflow tracking: skip finished cells, isolate failures, resume after a kill."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from benchmark.sweeps.cells import parse_sweep
from benchmark.api.hooks import TrainState
from benchmark.api.method import DataPruner
from benchmark.api.registry import METHODS, register_method
from benchmark.sweeps.runner import run_sweep
from benchmark.sweeps.store import open_client
from benchmark.sweeps.tracking import Tracker
from tasks.vision.fashion_mnist import DEBIAN_DIR

pytestmark = pytest.mark.skipif(not Path(DEBIAN_DIR).is_dir(), reason="needs Debian's dataset-fashion-mnist")

ROOT = Path(__file__).resolve().parent.parent

if "test-fails-at-half" not in METHODS:

    @register_method("test-fails-at-half")
    class FailsAtHalf(DataPruner):
        """Keeps the first samples; raises at ratio 0.5 (a method bug, isolated by the runner)."""

        def on_epoch_start(self, state: TrainState) -> torch.Tensor:
            if self.ratio == 0.5:
                raise RuntimeError("deliberate failure at ratio 0.5")
            return torch.arange(self.n_keep(state.n_train))


if "test-nan-loss" not in METHODS:

    @register_method("test-nan-loss")
    class NanLoss(DataPruner):
        """Weights every sample's loss by NaN from the third step on: a diverging run."""

        def on_batch_loss(self, state, indices, logits, losses, targets, features):
            return torch.full_like(losses, float("nan")) if state.step >= 2 else None


def smoke_sweep(methods, ratios=(0.3, 0.5), seeds=(0,), name="t"):
    return parse_sweep({"name": name, "profile": "smoke", "seeds": list(seeds), "ratios": list(ratios),
                        "tasks": ["fashion-mnist"], "methods": list(methods)})


def statuses(uri: str, experiment: str) -> list[tuple[str, str, str]]:
    # opened as the runner opens it (under the store lock): polling a store the runner is still
    # creating must not migrate it a second time at once
    client = open_client(uri)
    exp = client.get_experiment_by_name(experiment)
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    return [(r.data.tags["cell_id"], r.data.tags["status"], r.info.status) for r in runs]


def test_failing_cell_is_recorded_and_the_sweep_goes_on(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sweep = smoke_sweep(["test-fails-at-half"])
    tracker = Tracker(uri, "t")
    report = run_sweep(sweep, tracker, torch.device("cpu"), tmp_path / "cache", quiet=True)
    cells = {c.ratio: c for c in sweep.cells()}
    assert set(report.failed) == {cells[0.5].id}
    assert set(report.finished) == {cells[0.0].id, cells[0.3].id}
    client = MlflowClient(uri)
    failed_run = [r for r in client.search_runs([tracker.experiment_id]) if r.data.tags["cell_id"] == cells[0.5].id][0]
    assert failed_run.info.status == "FAILED" and failed_run.data.tags["status"] == "failed"
    assert "deliberate failure at ratio 0.5" in failed_run.data.tags["error"]
    traceback_text = Path(client.download_artifacts(failed_run.info.run_id, "traceback.txt", str(tmp_path)))
    assert "RuntimeError: deliberate failure" in traceback_text.read_text()

    # a re-run skips the finished cells and tries the failed one again
    again = run_sweep(sweep, Tracker(uri, "t"), torch.device("cpu"), tmp_path / "cache", quiet=True)
    assert sorted(again.skipped) == sorted([cells[0.0].id, cells[0.3].id])
    assert set(again.failed) == {cells[0.5].id} and not again.finished
    rows = statuses(uri, "t")
    assert sorted(s for c, s, _ in rows if c == cells[0.5].id) == ["failed", "failed"]
    assert sum(1 for _, s, _ in rows if s == "finished") == 2


def test_nan_loss_ends_the_cell_as_failed_and_the_sweep_goes_on(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sweep = smoke_sweep(["test-nan-loss"], ratios=(0.5,))
    report = run_sweep(sweep, Tracker(uri, "t"), torch.device("cpu"), tmp_path / "cache", quiet=True)
    nan_cell = next(c for c in sweep.cells() if c.method == "test-nan-loss")
    assert set(report.failed) == {nan_cell.id} and len(report.finished) == 1  # the full cell
    assert "non-finite training loss nan at epoch 0, step 2" in report.failed[nan_cell.id]
    assert sorted(s for _, s, _ in statuses(uri, "t")) == ["failed", "finished"]


def test_cell_run_holds_params_metrics_and_tags(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sweep = smoke_sweep(["random"], ratios=(0.5,))
    tracker = Tracker(uri, "t")
    run_sweep(sweep, tracker, torch.device("cpu"), tmp_path / "cache", quiet=True)
    cell = [c for c in sweep.cells() if c.method == "random"][0]
    client = MlflowClient(uri)
    run = [r for r in client.search_runs([tracker.experiment_id]) if r.data.tags["cell_id"] == cell.id][0]
    p, m, t = run.data.params, run.data.metrics, run.data.tags
    assert (p["task"], p["method"], p["ratio"], p["seed"], p["profile"], p["budget"]) == (
        "fashion-mnist", "random", "0.5", "0", "smoke", "epochs")
    assert p["recipe.epochs"] == "2" and p["provenance"] == "reference-code"
    assert json.loads(p["method_settings"]) == {"dynamic": False, "class_balanced": False}  # its defaults
    assert p["method_ratio_means"] == "the fraction of training samples removed"
    assert t["status"] == "finished" and t["sweep"] == "t" and t["family"] == "data"
    assert t["provenance"] == "reference-code" and t["data_origin"] == "real" and t["code_version"]
    # smoke: 640 images, 64 carved for validation; ratio 0.5 keeps exactly 288 of 576
    assert m["n_train"] == 576 and m["kept_fraction"] == 288 / 576
    assert m["sample_passes"] == 2 * 288 and m["sample_passes_rel"] == 0.5
    assert 0.0 <= m["test_accuracy"] <= 1.0 and m["train_seconds"] > 0
    history = client.get_metric_history(run.info.run_id, "val_accuracy")
    assert [h.step for h in history] == [0, 1]


def test_same_seed_gives_the_same_result(tmp_path):
    values = []
    for name in ("a", "b"):
        tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", name)
        run_sweep(smoke_sweep(["el2n"], ratios=(0.5,), name=name), tracker, torch.device("cpu"),
                  tmp_path / f"cache-{name}", quiet=True)
        runs = MlflowClient(tracker.tracking_uri).search_runs([tracker.experiment_id])
        values.append(sorted((r.data.tags["cell_id"], r.data.metrics["test_loss"]) for r in runs))
    assert values[0] == values[1]


def test_progress_shows_proxy_epochs_once_then_the_cached_scores(tmp_path, capsys):
    from benchmark.sweeps.execute import plan_cell

    sweep = smoke_sweep(["el2n"], ratios=(0.3, 0.5), name="progress")
    run_sweep(sweep, Tracker(f"sqlite:///{tmp_path}/mlflow.db", "progress"), torch.device("cpu"),
              tmp_path / "cache", quiet=False)
    lines = capsys.readouterr().err.splitlines()
    plan = plan_cell([c for c in sweep.cells() if c.method == "el2n"][0])
    el2n, recipe_epochs = plan.method, plan.task.recipe.epochs
    proxy_epochs = el2n.score_epochs or max(1, recipe_epochs // 4)
    proxy = [i for i, line in enumerate(lines) if line.startswith("    proxy epoch ")]
    # the first el2n cell trains its proxies; the second reads their scores from the cache
    assert len(proxy) == el2n.proxy_runs * proxy_epochs
    assert all("train_loss" in lines[i] and "val_loss" not in lines[i] for i in proxy)
    assert len([line for line in lines if line.startswith("    epoch ")]) == 3 * recipe_epochs
    starts = [i for i, line in enumerate(lines) if line.startswith("[")]
    first_el2n = [i for i in starts if " el2n " in lines[i]][0]
    next_start = min(i for i in starts if i > first_el2n)
    assert all(first_el2n < i < next_start for i in proxy)


def _write_sweep(path: Path, seeds: list[int]) -> None:
    # cells of a few seconds each: plain smoke cells (well under a second) could all finish
    # between the third one and the signal, and then there is nothing left to interrupt
    task = {"name": "fashion-mnist", "options": {"epochs": 4, "train_limit": 2000}}
    path.write_text(yaml.safe_dump({"name": "kill", "profile": "smoke", "seeds": seeds, "ratios": [0.3, 0.7],
                                    "tasks": [task], "methods": ["random", "random-weights"]}))


def _as_at_a_terminal() -> None:
    # A shell without job control starts background jobs with SIGINT ignored, and Python
    # keeps an inherited "ignore" (no KeyboardInterrupt). When the tests themselves run in
    # such a job (CI scripts), the child must get SIGINT back, as it has at a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _start(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "benchmark.cli", *args], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            preexec_fn=_as_at_a_terminal)


def _wait_for_finished(uri: str, count: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert process.poll() is None, process.stdout.read()
        try:
            if sum(1 for _, s, _ in statuses(uri, "kill") if s == "finished") >= count:
                return
        except Exception:  # the database or experiment may not exist yet
            pass
        time.sleep(0.2)
    raise AssertionError(f"fewer than {count} cells finished in {timeout}s")


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT, signal.SIGTERM], ids=["sigkill", "ctrl-c", "sigterm"])
def test_interrupted_sweep_resumes_without_duplicates(tmp_path, sig):
    sweep_file = tmp_path / "sweep.yaml"
    _write_sweep(sweep_file, seeds=[0, 1])
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    args = ["run", str(sweep_file), "--tracking-uri", uri, "--cache-dir", str(tmp_path / "cache")]
    process = _start(args, tmp_path)
    _wait_for_finished(uri, 3, process)
    process.send_signal(sig)
    output = process.communicate(timeout=60)[0]
    if sig != signal.SIGKILL:  # Ctrl-C, and SIGTERM (Slurm, Kubernetes) alike: the cell is closed at once
        assert process.returncode == (130 if sig == signal.SIGINT else 143), output
        assert "Run the same command to resume" in output
    before = statuses(uri, "kill")
    if sig != signal.SIGKILL:
        assert "running" not in {s for _, s, _ in before}
    finished_before = {c for c, s, _ in before if s == "finished"}
    assert 3 <= len(finished_before) < 10

    resumed = _start(args, tmp_path)
    output = resumed.communicate(timeout=300)[0]
    assert resumed.returncode == 0, output
    assert f"{len(finished_before)} already finished (skipped)" in output
    after = statuses(uri, "kill")
    finished = [c for c, s, _ in after if s == "finished"]
    assert len(finished) == len(set(finished)) == 10  # 2 seeds x (1 reference + 2 methods x 2 ratios)
    # whatever was cut off mid-cell is closed as interrupted, never left 'running'
    assert all(s in ("finished", "interrupted") for _, s, _ in after)
    assert all(mlflow_status == ("FINISHED" if s == "finished" else "KILLED") for _, s, mlflow_status in after)
    # finished cells of the first process were not run again
    assert all(sum(1 for c, s, _ in after if c == cid) == sum(1 for c, s, _ in before if c == cid)
               for cid in finished_before)


def test_code_version_is_dirty_for_changed_code_not_for_a_changed_results_store(tmp_path):
    from benchmark.sweeps.tracking import code_version

    def git(*args):
        subprocess.run(["git", "-C", str(tmp_path), *args], check=True, capture_output=True)

    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "mlflow.db").write_bytes(b"store")
    (tmp_path / "code.py").write_text("x = 1\n")
    git("init", "-q")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "c", "--allow-empty")
    git("add", "-A")
    git("-c", "user.email=t@t", "-c", "user.name=t", "commit", "-qm", "files")
    clean = code_version(tmp_path)
    assert len(clean) == 12 and not clean.endswith("-dirty")
    (tmp_path / "results" / "mlflow.db").write_bytes(b"store with a new cell")
    assert code_version(tmp_path) == clean  # a sweep into a committed store
    (tmp_path / "code.py").write_text("x = 2\n")
    assert code_version(tmp_path) == f"{clean}-dirty"
