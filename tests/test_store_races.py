"""Races between runners on one store that are no store fault (issue 28), made to happen on
purpose: a SQLAlchemy event runs the other runner's write between this runner's look-up and
its insert, the window a loaded machine opens by chance."""
from __future__ import annotations

import pytest
import torch
from helpers_tiny import one_cpu_thread  # noqa: F401  (fixture)
from mlflow.tracking import MlflowClient
from sqlalchemy import event
from sqlalchemy.orm import Session

from benchmark.sweeps.cells import Cell
from benchmark.sweeps.evidence_log import log_evidence
from benchmark.sweeps.execute import plan_cell, run_cell
from benchmark.sweeps.tracking import Tracker
from tasks.vision.fashion_mnist import write_synthetic


def test_two_runners_recording_the_same_data_set_at_once_both_succeed(tmp_path):
    """Issue 28: four runners started at once on a new store, one stopped with exit 3 on
    `UNIQUE constraint failed: datasets.experiment_id, datasets.name, datasets.digest`. Here
    runner A records the data set right after runner B looked for it and found none."""
    data = write_synthetic(tmp_path / "data")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    cells = [Cell("fashion-mnist", "random", ratio, 0, "smoke", task_options=(("epochs", 1),))
             for ratio in (0.3, 0.5)]
    tracker_a, tracker_b = Tracker(uri, "race"), Tracker(uri, "race")
    done = []
    for tracker, cell in zip((tracker_a, tracker_b), cells):
        plan = plan_cell(cell, str(data))
        result = run_cell(plan, torch.device("cpu"), tmp_path / "cache")
        run = tracker.start_cell(cell, "race", plan.params(), plan.tags())
        done.append((run, plan, result))
    (run_a, plan_a, result_a), (run_b, plan_b, result_b) = done
    armed = {"on": True}

    def other_runner_writes_first(orm_state):
        # MLflow's look-up of the data set by (name, digest), the step before its insert
        if armed["on"] and orm_state.is_select and "datasets.digest IN" in str(orm_state.statement):
            armed["on"] = False
            looked = orm_state.invoke_statement().freeze()  # B found no such data set ...
            log_evidence(run_a, plan_a, result_a.evidence, "race", "v")  # ... A records it now
            return looked()
        return None

    event.listen(Session, "do_orm_execute", other_runner_writes_first)
    try:
        log_evidence(run_b, plan_b, result_b.evidence, "race", "v")
    finally:
        event.remove(Session, "do_orm_execute", other_runner_writes_first)
    assert not armed["on"]  # the race did happen
    client = MlflowClient(uri)
    digests = [[d.dataset.digest for d in client.get_run(r.run_id).inputs.dataset_inputs] for r in (run_a, run_b)]
    assert digests[0] == digests[1] and len(digests[0]) == 1  # both runs carry the one data set


def test_a_store_error_that_is_not_a_race_is_still_a_store_fault(tmp_path, monkeypatch):
    from benchmark.sweeps.evidence_log import log_inputs_once

    calls = []

    class Client:
        def log_inputs(self, run_id, datasets):
            calls.append(run_id)
            raise RuntimeError("attempt to write a readonly database")

    run = type("Run", (), {"client": Client(), "run_id": "r"})()
    with pytest.raises(RuntimeError, match="readonly"):
        log_inputs_once(run, [])
    assert calls == ["r"]  # not retried
