"""Faults and hostile input, second round (issue 28): each test reproduces one row of the
issue's table on purpose (a race forced at its window, a symlink, a secret, a signal, a full
disk) and checks that the harness now holds."""
from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.entities import Dataset, DatasetInput, InputTag

from benchmark import evidence
from benchmark.cells import Cell
from benchmark.tracking import Tracker


def sqlite_uri(directory: Path) -> str:
    return f"sqlite:///{directory}/mlflow.db"


# --- two runners recording the same data set input at once ----------------------------------------


def same_dataset() -> DatasetInput:
    dataset = Dataset(name="fashion-mnist", digest="d1g3st", source_type="local", source='"/data"', profile="{}")
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "train")])


def test_two_runners_logging_the_same_new_data_set_at_once_both_record_it(tmp_path, monkeypatch):
    """The race forced at its window: runner A has looked for the data set row (none yet) and is
    about to insert it when runner B inserts the same row. Before the fix A's insert hit the
    store's key on (experiment, name, digest) and the sweep stopped with a store fault."""
    import mlflow.store.tracking.sqlalchemy_store as sql_store

    tracker = Tracker(sqlite_uri(tmp_path), "race")
    runs = [tracker.start_cell(Cell("fashion-mnist", "random", r, 0, "smoke", label="random"), "race", {}, {})
            for r in (0.3, 0.5)]
    real_uuid = sql_store.uuid
    raced = []

    class RaceAtTheWindow:
        """``uuid.uuid4`` as the store calls it, between its look-up and its insert: the first
        call lets the other runner (its own thread and connection) log the same data set first."""

        @staticmethod
        def uuid4():
            if not raced:
                raced.append(True)
                other = threading.Thread(target=lambda: runs[1].client.log_inputs(runs[1].run_id,
                                                                                    datasets=[same_dataset()]))
                other.start()
                other.join()
            return real_uuid.uuid4()

    monkeypatch.setattr(sql_store, "uuid", RaceAtTheWindow)
    monkeypatch.setattr(evidence, "write_artifacts", lambda *args: [])
    monkeypatch.setattr(evidence, "dataset_input", lambda plan, ev: same_dataset())
    evidence.log_evidence(runs[0], None, None, "race", "v")
    assert raced
    for run in runs:
        [logged] = tracker.client.get_run(run.run_id).inputs.dataset_inputs
        assert (logged.dataset.name, logged.dataset.digest) == ("fashion-mnist", "d1g3st")
