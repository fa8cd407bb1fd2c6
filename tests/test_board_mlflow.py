"""The board's MLflow side on a real SQLite store: summary runs updated in place (one per
board row, values as an independent pandas computation gives them), never read as cells,
the experiment's description and view, the one board run per sweep, the experiment kind."""
from __future__ import annotations

import json

import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from benchmark.boards.in_mlflow import KEY_TAG, NOTE_TAG, VIEW_TAG, sweep_views, ui_base, ui_url
from benchmark.boards.publish import LEADERBOARD_EXPERIMENT, build_and_publish
from benchmark.sweeps.cells import Cell
from benchmark.boards.leaderboard import load_runs
from benchmark.sweeps.tracking import EXPERIMENT_KIND_TAG, MODEL_TRAINING, SUMMARY_FILTER, Tracker
from test_board import KNOWN, fill_store


def summaries(client: MlflowClient, experiment_id: str, view: str = "ACTIVE_ONLY") -> list:
    from mlflow.entities import ViewType

    return client.search_runs([experiment_id], SUMMARY_FILTER, run_view_type=getattr(ViewType, view),
                              max_results=1000)


def cells_by_pandas(client: MlflowClient, experiment_id: str) -> pd.DataFrame:
    """Mean test accuracy per (task, label, ratio) of the finished cell runs, straight from MLflow."""
    runs = client.search_runs([experiment_id], "tags.status = 'finished'", max_results=1000)
    frame = pd.DataFrame([{"task": r.data.tags["task"], "label": r.data.tags["label"],
                           "ratio": float(r.data.params["ratio"]), "value": r.data.metrics["test_accuracy"]}
                          for r in runs if "cell_id" in r.data.tags])
    return frame.groupby(["task", "label", "ratio"])["value"].agg(["mean", "count"])


@pytest.fixture()
def store(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    fill_store(uri)
    return uri, MlflowClient(tracking_uri=uri)


def test_rerun_updates_one_summary_run_per_row_in_place(store, tmp_path):
    uri, client = store
    first = build_and_publish(uri, "board", None)
    experiment_id = client.get_experiment_by_name("board").experiment_id
    assert first.experiment_id == experiment_id
    assert (first.summary.created, first.summary.updated, first.summary.removed) == (len(KNOWN), 0, 0)
    before = {r.data.tags[KEY_TAG]: r for r in summaries(client, experiment_id)}
    assert len(before) == len(KNOWN)  # every (task, label, ratio) of KNOWN, the references included

    # a new seed of el2n between the two boards, and a row that leaves the board (its one cell deleted)
    tracker = Tracker(uri, "board")
    cell = Cell("fashion-mnist", "el2n", 0.5, 3, "cpu", label="el2n")
    tags = {"family": "data", "provenance": "reconstructed", "data_origin": "real", "metric": "accuracy",
            "chance_level": "0.1"}
    tracker.start_cell(cell, "board", {}, tags).finish({
        "test_accuracy": 0.95, "kept_fraction": 0.5, "total_sample_passes_rel": 0.5, "train_seconds": 80.0,
        "scoring_seconds": 0.0, "params_total": 1000.0, "params_remaining": 1000.0, "flops_remaining_rel": 1.0})
    gone = [r for r in client.search_runs([experiment_id], "tags.label = 'magnitude'")
            if r.data.params["ratio"] == "0.9"]
    assert len(gone) == 1
    client.delete_run(gone[0].info.run_id)

    second = build_and_publish(uri, "board", None)
    assert (second.summary.created, second.summary.updated, second.summary.removed) == (0, len(KNOWN) - 1, 1)
    after = summaries(client, experiment_id)
    keys = [r.data.tags[KEY_TAG] for r in after]
    assert len(keys) == len(set(keys)) == len(KNOWN) - 1  # exactly one per row, none piled up
    assert {r.info.run_id for r in after} <= {r.info.run_id for r in before.values()}  # the same runs, updated

    expected = cells_by_pandas(client, experiment_id)
    assert len(expected) == len(after)
    for run in after:
        params = run.data.params
        row = expected.loc[(params["task"], params["method"], float(params["ratio"]))]
        assert run.data.metrics["mean"] == pytest.approx(row["mean"], rel=1e-5)
        assert run.data.metrics["seeds"] == row["count"]
        assert run.data.tags["board_refresh"] == "1"
    el2n = next(r for r in after if r.data.params["method"] == "el2n")
    assert el2n.data.metrics["mean"] == pytest.approx((0.88 + 0.87 + 0.89 + 0.95) / 4, rel=1e-5)
    history = client.get_metric_history(el2n.info.run_id, "mean")
    assert [m.step for m in history] == [0, 1]  # logged again at the next step, the old value kept as history
    deleted = summaries(client, experiment_id, "DELETED_ONLY")
    assert [json.loads(r.data.tags[KEY_TAG]) for r in deleted] == [["fashion-mnist", "model", "magnitude", 0.9]]

    # the summary runs are never read back as cells
    assert len(load_runs(uri, "board")) == sum(len(v) for v in KNOWN.values())  # 20 + 1 new - 1 deleted
    by_cell = Tracker(uri, "board").runs_by_cell()
    assert all(not any(r.data.tags.get("run_type") for r in runs) for runs in by_cell.values())

    # one board run per sweep in 'leaderboards', updated in place too
    boards = client.search_runs([client.get_experiment_by_name(LEADERBOARD_EXPERIMENT).experiment_id])
    assert len(boards) == 1 and boards[0].info.run_id == first.mlflow_run_id == second.mlflow_run_id
    assert boards[0].data.tags["board_refresh"] == "1"


def test_experiment_page_carries_the_board_and_its_view(store):
    uri, client = store
    published = build_and_publish(uri, "board", None)
    experiment = client.get_experiment(published.experiment_id)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING
    note = experiment.tags[NOTE_TAG]
    assert note.startswith("## Leaderboard: board\n") and "20 finished cells" in note
    assert "| el2n " in note and "0.8800 ± 0.0100" in note  # el2n's mean ± std over its three seeds
    assert f"#/experiments/{published.experiment_id}/runs?workflowType=machine_learning" in note
    # magnitude beats random-weights at 0.8 on every seed: p < 0.05, marked best in the overview
    assert "0.8900 ± 0.0100 ▲" in note
    view = json.loads(experiment.tags[VIEW_TAG])
    assert view["searchFilter"] == SUMMARY_FILTER and view["orderByKey"] == "metrics.`board_order`"
    assert view["orderByAsc"] is True and "tags.`significant`" in view["selectedColumns"]
    assert [k["groupByData"] for k in view["groupBy"]["groupByKeys"]] == ["ratio", "family", "task"]
    assert published.ui_url == ui_url("http://127.0.0.1:5000", published.experiment_id)
    assert sweep_views(uri, "http://h:1") == [("board", ui_url("http://h:1", published.experiment_id))]


def test_model_training_kind_is_set_on_old_experiments_and_a_chosen_kind_kept(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    client = MlflowClient(tracking_uri=uri)
    old = client.create_experiment("old", tags={"prunebench.kind": "cells"})  # made before the kind tag
    chosen = client.create_experiment("chosen", tags={"prunebench.kind": "cells",
                                                      EXPERIMENT_KIND_TAG: "genai_development"})
    Tracker(uri, "old"), Tracker(uri, "chosen"), Tracker(uri, "new")
    assert client.get_experiment(old).tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING
    assert client.get_experiment(chosen).tags[EXPERIMENT_KIND_TAG] == "genai_development"
    assert client.get_experiment_by_name("new").tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING


def test_ui_base_is_the_server_without_credentials():
    assert ui_base("http://user:secret@tracking.example:5001/mlflow/") == "http://tracking.example:5001/mlflow"
    assert ui_base("sqlite:////tmp/mlflow.db") == "http://127.0.0.1:5000"
    assert ui_base("postgresql://u:p@db/x") == "http://127.0.0.1:5000"


def test_a_leaderboard_killed_while_creating_summary_runs_is_repaired_by_the_next(store, monkeypatch):
    """Issue 28: a `leaderboard` killed right after creating a summary run left it RUNNING with
    no params through every later `leaderboard`. The kill is made on purpose: the first write
    after the run's creation raises KeyboardInterrupt, as Ctrl-C there would."""
    uri, client = store
    from mlflow.tracking import MlflowClient as Client

    real_log_batch = Client.log_batch
    calls = {"n": 0}

    def killed_once(self, run_id, *args, **kwargs):
        # the board run in 'leaderboards' is made first; the kill lands on a summary run's first batch
        if client.get_run(run_id).data.tags.get("summary_key") and calls["n"] == 0:
            calls["n"] += 1
            raise KeyboardInterrupt
        return real_log_batch(self, run_id, *args, **kwargs)

    monkeypatch.setattr(Client, "log_batch", killed_once)
    with pytest.raises(KeyboardInterrupt):
        build_and_publish(uri, "board", None)
    monkeypatch.setattr(Client, "log_batch", real_log_batch)
    experiment_id = client.get_experiment_by_name("board").experiment_id
    assert not summaries(client, experiment_id)  # the half-made run is not shown as a board row

    build_and_publish(uri, "board", None)
    after = summaries(client, experiment_id)
    assert len(after) == len({r.data.tags[KEY_TAG] for r in after}) == len(KNOWN)
    for run in after:
        task, family, method, ratio = json.loads(run.data.tags[KEY_TAG])
        assert run.info.status == "FINISHED", run.data.tags[KEY_TAG]
        assert run.data.params == {"task": task, "family": family, "method": method, "ratio": f"{ratio:g}"}


def test_a_summary_run_left_running_without_params_is_remade(store):
    """The state a killed `leaderboard` left before pending runs: a summary run, RUNNING, no params."""
    uri, client = store
    build_and_publish(uri, "board", None)
    experiment_id = client.get_experiment_by_name("board").experiment_id
    victim = summaries(client, experiment_id)[0]
    key = victim.data.tags[KEY_TAG]
    client.delete_run(victim.info.run_id)
    broken = client.create_run(experiment_id, tags={"run_type": "summary", KEY_TAG: key}).info.run_id

    build_and_publish(uri, "board", None)
    after = {r.data.tags[KEY_TAG]: r for r in summaries(client, experiment_id)}
    assert len(after) == len(KNOWN) and broken not in {r.info.run_id for r in after.values()}
    assert after[key].info.status == "FINISHED" and after[key].data.params["method"] == json.loads(key)[2]
    assert all(r.info.status == "FINISHED" for r in after.values())
