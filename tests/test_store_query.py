"""The narrow reads of :mod:`benchmark.sweeps.store_query` return exactly what MLflow's ``search_runs``
returned; the tags index is added to an older store in place; a store written by the harness
at ba16d62 (before both) is read correctly and resumed without duplicates."""
from __future__ import annotations

import gzip
import math
import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from benchmark.sweeps.cells import Cell, parse_sweep
from benchmark.boards.leaderboard import RUN_METRICS, RUN_PARAMS, RUN_TAGS, load_runs
from benchmark.sweeps.store_query import TAG_INDEX, StoreQuery
from benchmark.sweeps.tracking import Tracker

FIXTURES = Path(__file__).resolve().parent / "fixtures"
TAGS = {"family": "data", "provenance": "reference-code", "data_origin": "real", "metric": "accuracy"}


def cell(seed: int, method: str = "random", ratio: float = 0.5) -> Cell:
    return Cell("fashion-mnist", method, ratio, seed, "smoke", label=method)


def old_finished_cell_ids(client: MlflowClient, experiment_id: str) -> set[str]:
    """The pending-cell read as it was at ba16d62: every run, then any finished one per cell."""
    runs = client.search_runs([experiment_id], max_results=50_000)
    by_cell: dict[str, list] = {}
    for run in runs:
        if run.data.tags.get("cell_id"):
            by_cell.setdefault(run.data.tags["cell_id"], []).append(run)
    return {c for c, rs in by_cell.items() if any(r.data.tags.get("status") == "finished" for r in rs)}


def mixed_store(tmp_path) -> tuple[str, Tracker, dict[str, Cell]]:
    """Cells finished, failed, running, superseded, deleted; a foreign run, a summary run, another experiment."""
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    tracker = Tracker(uri, "mixed")
    cells = {name: cell(seed) for seed, name in enumerate(("finished", "failed", "running", "twice", "deleted",
                                                           "long", "history"))}
    cells["reference"] = Cell("fashion-mnist", "none", 0.0, 0, "smoke", label="full")
    extra = {"method_options.proxy_runs": 3}
    for name in ("finished", "reference"):
        tracker.start_cell(cells[name], "mixed", extra, {**TAGS, "family": "reference" if name == "reference" else "data"}
                           ).finish({"test_accuracy": 0.8, "test_loss": 0.5, "n_train": 576, "kept_fraction": 0.5,
                                     "peak_device_mb": float("nan"), "sample_passes": 576, "sample_passes_rel": 0.5})
    failed = tracker.start_cell(cells["failed"], "mixed", {}, TAGS)
    failed.fail(RuntimeError("boom"), "Traceback: boom")
    tracker.start_cell(cells["running"], "mixed", {}, TAGS)
    first, second = sorted((tracker.start_cell(cells["twice"], "mixed", {}, TAGS) for _ in range(2)),
                           key=lambda run: run.run_id)
    first.finish({"test_accuracy": 0.7})
    second.finish({"test_accuracy": 0.71})  # finished second, with the higher run id: superseded
    assert not first.superseded and second.superseded
    gone = tracker.start_cell(cells["deleted"], "mixed", {}, TAGS)
    gone.finish({"test_accuracy": 0.6})
    tracker.client.delete_run(gone.run_id)
    tracker.start_cell(cells["long"], "mixed", {}, {**TAGS, "scores_cached": "true", "note": "x" * 5000}
                       ).finish({"test_accuracy": 0.65, "cached_scoring_seconds": 1.5})
    history = tracker.start_cell(cells["history"], "mixed", {}, TAGS)
    for step, value in enumerate((0.1, 0.9, 0.4)):  # the latest (highest step) value is the one read
        history.log_metrics({"val_accuracy": value, "test_accuracy": value}, step=step)
    history.finish({})
    client = tracker.client
    client.create_run(tracker.experiment_id, tags={"status": "finished", "tool": "someone else's"})
    client.create_run(tracker.experiment_id, tags={"run_type": "summary", "status": "finished", "cell_id": ""})
    elsewhere = Tracker(uri, "elsewhere")
    elsewhere.start_cell(cell(99), "elsewhere", {}, TAGS).finish({"test_accuracy": 0.5})
    return uri, tracker, cells


def test_finished_cell_ids_are_exactly_what_search_runs_gave(tmp_path):
    uri, tracker, cells = mixed_store(tmp_path)
    expected = {cells[name].id for name in ("finished", "reference", "twice", "long", "history")}
    assert old_finished_cell_ids(tracker.client, tracker.experiment_id) == expected
    assert StoreQuery(tracker.client, uri, sql=True).finished_cell_ids(tracker.experiment_id) == expected
    assert StoreQuery(tracker.client, uri, sql=False).finished_cell_ids(tracker.experiment_id) == expected
    assert tracker.query.sql and tracker.finished_cell_ids() == expected


def test_the_leaderboard_reads_the_same_runs_and_values_either_way(tmp_path):
    uri, tracker, cells = mixed_store(tmp_path)
    fast = load_runs(uri, "mixed", sql=True)
    slow = load_runs(uri, "mixed", sql=False)
    pd.testing.assert_frame_equal(fast, slow)
    assert sorted(fast.cell_id) == sorted(cells[n].id for n in ("finished", "reference", "twice", "long", "history"))
    rows = fast.set_index("cell_id")
    assert rows.loc[cells["history"].id, "value"] == 0.4  # the latest step's value, not the best
    assert rows.loc[cells["finished"].id, "n_train"] == 576 and pd.isna(rows.loc[cells["finished"].id, "peak_device_mb"])
    # the standing run of the duplicated cell, as MLflow returns it (one row per cell, the latest start)
    twice = [r for r in tracker.runs_of_cell(cells["twice"].id) if r.data.tags["status"] == "finished"]
    assert rows.loc[cells["twice"].id, "start_time"] == max(r.info.start_time for r in twice)

    sql, mlflow = (StoreQuery(tracker.client, uri, sql=flag).finished_runs(
        tracker.experiment_id, RUN_TAGS, RUN_PARAMS, RUN_METRICS, ("test_",), ("method_options.",))
        for flag in (True, False))
    assert [r.run_id for r in sql] == [r.run_id for r in mlflow]  # same runs, same order
    for fast_run, slow_run in zip(sql, mlflow):
        assert fast_run.start_time == slow_run.start_time
        assert fast_run.tags == {k: v for k, v in slow_run.tags.items() if k in RUN_TAGS}
        assert fast_run.params == {k: v for k, v in slow_run.params.items()
                                   if k in RUN_PARAMS or k.startswith("method_options.")}
        wanted = {k: v for k, v in slow_run.metrics.items() if k in RUN_METRICS or k.startswith("test_")}
        assert fast_run.metrics.keys() == wanted.keys()
        assert all(fast_run.metrics[k] == v or (math.isnan(v) and math.isnan(fast_run.metrics[k]))
                   for k, v in wanted.items())
    # the flattened options of older cells come back under the prefix, on the two runs that logged them only
    flat = {r.tags.get("cell_id"): r.params["method_options.proxy_runs"] for r in sql if "method_options.proxy_runs" in r.params}
    assert flat == {cells["finished"].id: "3", cells["reference"].id: "3"}


def index_names(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}


def test_an_older_store_gets_the_index_once_with_a_notice(tmp_path, capsys):
    db = tmp_path / "mlflow.db"
    tracker = Tracker(f"sqlite:///{db}", "fresh")
    assert TAG_INDEX in index_names(db) and "added an index" not in capsys.readouterr().err  # a new store: silent
    tracker.start_cell(cell(0), "fresh", {}, TAGS).finish({"test_accuracy": 0.5})
    with sqlite3.connect(db) as conn:  # as a store from before the index
        conn.execute(f"DROP INDEX {TAG_INDEX}")
    assert TAG_INDEX not in index_names(db)
    Tracker(f"sqlite:///{db}", "fresh")
    Tracker(f"sqlite:///{db}", "fresh")
    err = capsys.readouterr().err
    assert err.count("added an index on run tags (key, value)") == 1 and TAG_INDEX in index_names(db)
    assert Tracker(f"sqlite:///{db}", "fresh").finished_cell_ids() == {cell(0).id}


@pytest.fixture
def old_store(tmp_path) -> Path:
    db = tmp_path / "mlflow.db"
    with gzip.open(FIXTURES / "old-store.db.gz", "rb") as source, open(db, "wb") as target:
        shutil.copyfileobj(source, target)
    return db


def _all_runs(uri: str) -> list:
    client = MlflowClient(uri)
    return client.search_runs([client.get_experiment_by_name("old").experiment_id], max_results=1000)


def test_a_store_from_ba16d62_is_read_the_same_way(old_store, capsys):
    uri = f"sqlite:///{old_store}"
    before = {r.info.run_id: r for r in _all_runs(uri)}  # read by MLflow, before the store is upgraded
    tracker = Tracker(uri, "old")
    assert "added an index on run tags" in capsys.readouterr().err and TAG_INDEX in index_names(old_store)
    sweep = parse_sweep(_fixture_sweep(), check_data=False)
    seed0 = {c.id for c in sweep.cells() if c.seed == 0}
    assert tracker.finished_cell_ids() == seed0 == old_finished_cell_ids(tracker.client, tracker.experiment_id)
    pd.testing.assert_frame_equal(load_runs(uri, "old", sql=True), load_runs(uri, "old", sql=False))
    assert set(load_runs(uri, "old").cell_id) == seed0
    after = {r.info.run_id: r for r in _all_runs(uri)}
    assert {k: (r.data.tags, r.data.params, r.data.metrics) for k, r in after.items()} == \
        {k: (r.data.tags, r.data.params, r.data.metrics) for k, r in before.items()}  # nothing rewritten


def _fixture_sweep() -> dict:
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_old_store", FIXTURES / "make_old_store.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.SWEEP


def test_a_store_from_ba16d62_resumes_without_duplicates(old_store, tmp_path):
    from tasks.vision.fashion_mnist import DEBIAN_DIR

    if not Path(DEBIAN_DIR).is_dir():
        pytest.skip("needs Debian's dataset-fashion-mnist")
    import torch

    from benchmark.sweeps.runner import run_sweep

    uri = f"sqlite:///{old_store}"
    old = {r.info.run_id: r for r in _all_runs(uri)}
    assert Counter(r.data.tags["status"] for r in old.values()) == {"finished": 2, "failed": 1, "running": 1}
    sweep = parse_sweep(_fixture_sweep())
    report = run_sweep(sweep, Tracker(uri, "old"), torch.device("cpu"), tmp_path / "cache", quiet=True)
    assert len(report.skipped) == 2 and len(report.finished) == 2 and not report.failed and not report.busy
    runs = _all_runs(uri)
    finished = Counter(r.data.tags["cell_id"] for r in runs if r.data.tags["status"] == "finished")
    assert set(finished) == {c.id for c in sweep.cells()} and set(finished.values()) == {1}
    statuses = {r.info.run_id: r.data.tags["status"] for r in runs}
    # the dead claim was closed as interrupted; the failed run kept; the old finished runs untouched
    assert sorted(statuses[run_id] for run_id in old) == ["failed", "finished", "finished", "interrupted"]
    for run_id, run in old.items():
        if run.data.tags["status"] == "finished":
            now = MlflowClient(uri).get_run(run_id)
            assert (now.data.tags, now.data.params, now.data.metrics) == (run.data.tags, run.data.params,
                                                                          run.data.metrics)
