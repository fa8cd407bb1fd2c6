"""Claims: two runners on one sweep never both run a cell; a dead runner's claim expires.

The unit tests drive :class:`Tracker` on a SQLite store with rival runs written by hand;
the slow test starts two real runner processes at once against a real ``mlflow server``."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from helpers_server import free_port, stop, wait_healthy
from mlflow.tracking import MlflowClient

from benchmark.sweeps.cells import Cell
from benchmark.sweeps.claims import HOST, ClaimPolicy, Heartbeat, is_live, resolve_duplicates
from benchmark.sweeps.tracking import Tracker
from tasks.vision.fashion_mnist import DEBIAN_DIR

ROOT = Path(__file__).resolve().parent.parent
CELL = Cell("fashion-mnist", "random", 0.5, 0, "smoke")


def tracker(tmp_path, ttl=600.0, heartbeat=30.0) -> Tracker:
    return Tracker(f"sqlite:///{tmp_path}/mlflow.db", "claims", claims=ClaimPolicy(ttl_s=ttl, heartbeat_s=heartbeat))


def rival(t: Tracker, status="running", host="elsewhere", pid="1", heartbeat=None) -> str:
    """A run of CELL as another runner would have written it."""
    tags = {"cell_id": CELL.id, "status": status, "claim_host": host, "claim_pid": pid,
            "heartbeat": f"{time.time() if heartbeat is None else heartbeat:.3f}"}
    return t.client.create_run(t.experiment_id, tags=tags).info.run_id


def statuses(t: Tracker) -> Counter:
    return Counter(r.data.tags["status"] for r in t.runs_of_cell(CELL.id))


def test_a_live_claim_elsewhere_keeps_the_cell(tmp_path):
    t = tracker(tmp_path)
    rival(t)
    assert t.try_claim(CELL, "s", {}, {}) is None
    assert statuses(t) == {"running": 1}  # nothing of ours left behind


def test_a_claim_without_heartbeat_for_the_ttl_is_dead_and_closed(tmp_path):
    t = tracker(tmp_path, ttl=60)
    old = rival(t, heartbeat=time.time() - 61)
    run = t.try_claim(CELL, "s", {}, {})
    assert run is not None
    run.finish({"test_accuracy": 0.5})
    assert t.client.get_run(old).data.tags["status"] == "interrupted"
    assert statuses(t) == {"interrupted": 1, "finished": 1}


def test_a_claim_of_a_dead_process_on_this_host_is_dead_at_once(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    t = tracker(tmp_path)
    rival(t, host=HOST, pid=str(dead.pid))
    alive = rival(t, host=HOST, pid=str(os.getpid()))
    runs = {r.info.run_id: r for r in t.runs_of_cell(CELL.id)}
    assert [is_live(r, t.claims) for r in runs.values()].count(True) == 1
    assert is_live(runs[alive], t.claims)


def test_a_finished_cell_is_never_claimed(tmp_path):
    t = tracker(tmp_path)
    rival(t, status="finished")
    assert t.try_claim(CELL, "s", {}, {}) is None


def test_simultaneous_claims_withdraw_and_never_both_hold(tmp_path):
    """A rival claim created between our write and our read: we must withdraw."""
    t = tracker(tmp_path)
    create = t._create_run

    def create_then_rival(*args):
        run_id = create(*args)
        rival(t)
        return run_id

    t._create_run = create_then_rival
    assert t.try_claim(CELL, "s", {}, {}) is None
    assert statuses(t) == {"running": 1}  # ours was withdrawn (deleted), the rival's stands


def test_duplicate_finished_runs_resolve_to_the_lowest_run_id(tmp_path):
    t = tracker(tmp_path)
    first, second = sorted([rival(t, status="finished"), rival(t, status="finished")])
    runs = t.runs_of_cell(CELL.id)
    assert resolve_duplicates(t.client, runs, first) is True
    assert resolve_duplicates(t.client, runs, second) is False
    assert t.client.get_run(second).data.tags["status"] == "superseded"
    assert t.client.get_run(second).data.tags["superseded_by"] == first


@pytest.mark.parametrize("second", ["lower id", "higher id"])
def test_a_runner_with_a_clock_five_minutes_fast_leaves_one_finished_run(tmp_path, monkeypatch, second):
    """Issue 28: runner A's clock is 5 minutes fast, so runner B finds A's claim's heartbeat in
    the future, judges it invalid and runs the cell too. Whichever finishes second (the race is
    set up on purpose, both orders), exactly one finished run stands and the other is superseded."""
    import benchmark.sweeps.claims as claims
    import benchmark.sweeps.tracking as tracking

    fast = tracker(tmp_path)
    slow = Tracker(fast.tracking_uri, "claims", claims=fast.claims)
    real_tags = claims.claim_tags
    monkeypatch.setattr(tracking, "claim_tags", lambda: {**real_tags(), "heartbeat": f"{time.time() + 300:.3f}"})
    run_a = fast.try_claim(CELL, "s", {}, {})
    monkeypatch.setattr(tracking, "claim_tags", real_tags)
    run_b = slow.try_claim(CELL, "s", {}, {})  # A's heartbeat is 300 s ahead (> 60 s allowed): invalid
    assert run_a is not None and run_b is not None
    lower, higher = sorted([run_a, run_b], key=lambda r: r.run_id)
    first, last = (higher, lower) if second == "lower id" else (lower, higher)
    first.finish({"test_accuracy": 0.5})
    last.finish({"test_accuracy": 0.6})

    runs = {r.info.run_id: r.data.tags for r in fast.runs_of_cell(CELL.id)}
    assert Counter(t["status"] for t in runs.values()) == {"finished": 1, "superseded": 1}
    assert runs[lower.run_id]["status"] == "finished"  # the lowest run id stands, whoever finished first
    assert runs[higher.run_id]["superseded_by"] == lower.run_id
    assert last.superseded is (last is higher)


def test_resolving_marks_every_loser_whoever_calls_it(tmp_path):
    t = tracker(tmp_path)
    ids = sorted(rival(t, status="finished") for _ in range(3))
    assert resolve_duplicates(t.client, t.runs_of_cell(CELL.id), ids[2]) is False
    assert [t.client.get_run(i).data.tags["status"] for i in ids] == ["finished", "superseded", "superseded"]


def test_heartbeat_refreshes_the_tag(tmp_path):
    t = tracker(tmp_path)
    run_id = rival(t, heartbeat=0.0)
    beat = Heartbeat(t.client, run_id, 0.05).start()
    deadline = time.time() + 20
    while float(t.client.get_run(run_id).data.tags["heartbeat"]) == 0.0 and time.time() < deadline:
        time.sleep(0.05)
    beat.stop()
    assert float(t.client.get_run(run_id).data.tags["heartbeat"]) > time.time() - 30


def test_server_command_defaults_to_a_local_sqlite_store(tmp_path):
    from benchmark.sweeps.server import server_command

    child = server_command(tmp_path, port=5123)
    assert child.env["MLFLOW_BACKEND_STORE_URI"] == f"sqlite:///{tmp_path.resolve()}/mlflow.db"
    assert child.argv[child.argv.index("--host") + 1] == "127.0.0.1"
    assert child.argv[child.argv.index("--port") + 1] == "5123"
    # MLflow's app plus the narrow reads, found through the entry point recorded beside the store
    assert child.argv[child.argv.index("--app-name") + 1] == "prunebench"
    record = child.env["PYTHONPATH"].split(os.pathsep)[0]
    assert (Path(record) / "prunebench_server_app-1.dist-info" / "entry_points.txt").read_text() == \
        "[mlflow.app]\nprunebench = benchmark.sweeps.server_app:create_app\n"
    assert "--app-name" not in server_command(tmp_path, narrow_reads=False).argv


def test_policy_is_checked():
    with pytest.raises(ValueError, match="heartbeat"):
        ClaimPolicy(ttl_s=10, heartbeat_s=10)


@pytest.mark.slow
@pytest.mark.skipif(not Path(DEBIAN_DIR).is_dir(), reason="needs Debian's dataset-fashion-mnist")
def test_two_runners_at_once_against_a_server_finish_every_cell_exactly_once(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    (tmp_path / "server").mkdir()
    with open(tmp_path / "server" / "cli.log", "ab") as log:  # a file, not a pipe nobody reads
        server = subprocess.Popen([sys.executable, "-m", "benchmark.cli", "server", "--dir", str(tmp_path / "server"),
                                   "--port", str(port), "--workers", "1"], env=env, stdout=log,
                                  stderr=subprocess.STDOUT, start_new_session=True)
    server.log_path = tmp_path / "server" / "cli.log"
    try:
        wait_healthy(url, server)
        sweep = {"name": "pair", "profile": "smoke", "seeds": [0, 1, 2], "ratios": [0.5],
                 "tasks": ["fashion-mnist"], "methods": ["random", "random-weights"]}
        (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
        command = [sys.executable, "-m", "benchmark.cli", "run", "sweep.yaml", "--tracking-uri", url]
        runners = [subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True) for _ in range(2)]
        outputs = [r.communicate(timeout=900)[0] for r in runners]
        assert [r.returncode for r in runners] == [0, 0], "\n=====\n".join(outputs)

        client = MlflowClient(url)
        runs = client.search_runs([client.get_experiment_by_name("pair").experiment_id], max_results=1000)
        finished = Counter(r.data.tags["cell_id"] for r in runs if r.data.tags["status"] == "finished")
        assert len(finished) == 9 and set(finished.values()) == {1}  # 3 seeds x (full + 2 methods), once each
        assert not [r for r in runs if r.data.tags["status"] not in ("finished", "superseded")]
        # the work was shared: each runner finished some cells and left the others
        done = [int(o.split("finished ")[-1].split(",")[0]) for o in outputs]
        assert sum(done) == 9 and min(done) >= 1, outputs
        assert (tmp_path / "server" / "mlflow.db").is_file()  # prunebench server's default store
    finally:
        stop(server)


@pytest.mark.slow
@pytest.mark.skipif(not Path(DEBIAN_DIR).is_dir(), reason="needs Debian's dataset-fashion-mnist")
def test_a_tracking_server_outage_mid_sweep_loses_and_duplicates_nothing(tmp_path):
    from benchmark.sweeps.server import start_server, stop_server

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_server(tmp_path / "server", port)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    try:
        wait_healthy(url, server)
        sweep = {"name": "outage", "profile": "smoke", "seeds": [0, 1], "ratios": [0.5],
                 "tasks": [{"name": "fashion-mnist", "options": {"epochs": 3}}], "methods": ["random", "magnitude"]}
        (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
        runner = subprocess.Popen([sys.executable, "-m", "benchmark.cli", "run", "sweep.yaml", "--tracking-uri", url],
                                  cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        client = MlflowClient(url)
        deadline = time.time() + 600
        while time.time() < deadline:  # wait until the sweep is under way: one cell done
            experiment = client.get_experiment_by_name("outage")
            if experiment and client.search_runs([experiment.experiment_id], "tags.status = 'finished'"):
                break
            time.sleep(0.5)
        stop_server(server)  # the server goes away mid-sweep ...
        time.sleep(5)
        server = start_server(tmp_path / "server", port)  # ... and comes back on the same store
        wait_healthy(url, server)
        output = runner.communicate(timeout=900)[0]
        assert runner.returncode == 0, output
        runs = client.search_runs([client.get_experiment_by_name("outage").experiment_id], max_results=100)
        finished = Counter(r.data.tags["cell_id"] for r in runs if r.data.tags["status"] == "finished")
        assert len(finished) == 6 and set(finished.values()) == {1}, output
    finally:
        stop_server(server)
