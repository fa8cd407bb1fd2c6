"""Narrow reads over HTTP: a ``prunebench server`` (MLflow's app plus :mod:`benchmark.sweeps.server_app`)
answers the finished cell ids and the leaderboard's fields from its own store, exactly what the
local SQL read and MLflow's REST search give, without a REST search; a plain ``mlflow server``
has no such endpoint and the client falls back to REST search with one notice line."""
from __future__ import annotations

import math
import shutil

import pandas as pd
import pytest
from helpers_server import free_port, start_mlflow_server, stop, wait_healthy
from mlflow.tracking import MlflowClient
from test_store_query import mixed_store

from benchmark.boards.leaderboard import RUN_METRICS, RUN_PARAMS, RUN_TAGS, load_runs
from benchmark.sweeps.server import start_server
from benchmark.sweeps.store_query import CELLS_ENDPOINT, RUNS_ENDPOINT, StoreQuery

pytestmark = pytest.mark.slow  # two real servers start (10-40 s each on a loaded machine)
FINISHED = ("finished", "reference", "twice", "long", "history")


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """The same mixed store behind a ``prunebench``-app server and behind a plain ``mlflow server``."""
    folder = tmp_path_factory.mktemp("reads")
    uri, tracker, cells = mixed_store(folder)
    plain_dir = folder / "plain"
    plain_dir.mkdir()
    shutil.copy(folder / "mlflow.db", plain_dir / "server.db")  # the plain server's own file, same rows
    ports = free_port(), free_port()
    app = start_server(folder / "app", ports[0], workers=1, backend_store_uri=uri)
    plain = start_mlflow_server(plain_dir, ports[1])
    try:
        for port, process in zip(ports, (app, plain)):
            wait_healthy(f"http://127.0.0.1:{port}", process, timeout=300)
        yield uri, tracker, cells, (f"http://127.0.0.1:{ports[0]}", app), (f"http://127.0.0.1:{ports[1]}", plain)
    finally:
        stop(app)
        stop(plain)


def _log_since(process, start: int) -> str:
    return process.log_path.read_text(errors="replace")[start:]


def _same_records(got, expected) -> None:
    assert [r.run_id for r in got] == [r.run_id for r in expected]  # same runs, same order
    for a, b in zip(got, expected):
        assert (a.start_time, a.tags, a.params) == (b.start_time, b.tags, b.params)
        assert a.metrics.keys() == b.metrics.keys()
        assert all(a.metrics[k] == v or (math.isnan(v) and math.isnan(a.metrics[k])) for k, v in b.metrics.items())


def test_a_prunebench_server_answers_the_narrow_reads_without_a_rest_search(servers, capsys):
    uri, tracker, cells, (url, app), _ = servers
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("mixed").experiment_id
    before = len(app.log_path.read_text(errors="replace"))
    query = StoreQuery(client, url)
    assert query.remote and not query.sql
    assert query.finished_cell_ids(experiment) == {cells[n].id for n in FINISHED}
    local = StoreQuery(tracker.client, uri, sql=True)
    _same_records(query.finished_runs(experiment, RUN_TAGS, RUN_PARAMS, RUN_METRICS, ("test_",)),
                  local.finished_runs(tracker.experiment_id, RUN_TAGS, RUN_PARAMS, RUN_METRICS, ("test_",)))
    pd.testing.assert_frame_equal(load_runs(url, "mixed"), load_runs(uri, "mixed", sql=True))
    log = _log_since(app, before)
    assert log.count(f"POST {CELLS_ENDPOINT} HTTP/1.1\" 200") == 1
    assert log.count(f"POST {RUNS_ENDPOINT} HTTP/1.1\" 200") == 2
    assert "runs/search" not in log  # nothing read through MLflow's REST search
    assert "note:" not in capsys.readouterr().err


def test_a_plain_mlflow_server_is_read_through_rest_search_with_one_notice(servers, capsys):
    uri, tracker, cells, _, (url, plain) = servers
    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("mixed").experiment_id
    before = len(plain.log_path.read_text(errors="replace"))
    query = StoreQuery(client, url)
    assert query.finished_cell_ids(experiment) == {cells[n].id for n in FINISHED}
    slow = StoreQuery(client, url, sql=False).finished_runs(experiment, RUN_TAGS, RUN_PARAMS, RUN_METRICS, ("test_",))
    assert [r.run_id for r in query.finished_runs(experiment, RUN_TAGS, RUN_PARAMS, RUN_METRICS, ("test_",))] == \
        [r.run_id for r in slow]
    pd.testing.assert_frame_equal(load_runs(url, "mixed"), load_runs(uri, "mixed", sql=True))
    err = capsys.readouterr().err
    notices = [line for line in err.splitlines() if line.startswith("note:")]
    assert len(notices) == 1, err  # said once per server, however many reads follow
    assert "has no prunebench read endpoint (a plain `mlflow server`)" in notices[0]
    assert "REST search" in notices[0]
    log = _log_since(plain, before)
    assert log.count(f"POST {CELLS_ENDPOINT} HTTP/1.1\" 404") == 1  # asked once, then not again
    assert "runs/search" in log


def test_bad_requests_to_the_endpoint_are_refused_with_the_reason(servers):
    import requests

    _, _, _, (url, _), _ = servers
    answer = requests.post(url + RUNS_ENDPOINT, json={"experiment_id": "x"}, timeout=30)
    assert answer.status_code == 400 and "bad request" in answer.json()["error"]
    answer = requests.post(url + RUNS_ENDPOINT, json={"experiment_id": "1", "tags": "cell_id"}, timeout=30)
    assert answer.status_code == 400 and "'tags' must be a list" in answer.json()["error"]
    answer = requests.get(url + CELLS_ENDPOINT, timeout=30)  # read-only and POST only
    assert answer.status_code == 405
