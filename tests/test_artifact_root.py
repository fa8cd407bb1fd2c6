"""Self-contained stores: a new SQLite store records its artifact locations relative to its folder,
so a copied store folder reads (and writes) its own artifacts, with the original gone; the one-time
fix rewrites an older store's absolute locations and nothing else."""
from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service import utils as tracking_utils

from benchmark.sweeps.artifact_root import ARTIFACT_FOLDER, use_store_relative_artifacts
from benchmark.sweeps.store_paths import RelocationError, absolute_locations, relativize_store
from benchmark.sweeps.cells import Cell
from benchmark.sweeps.store import open_client
from benchmark.sweeps.tracking import Tracker

CELL = Cell("fashion-mnist", "random", 0.5, 0, "smoke")


def rows(db: Path, sql: str) -> list[tuple]:
    connection = sqlite3.connect(str(db))
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def fresh_reads():
    """Forget the artifact repositories MLflow cached per run id (a copied store has the same ids)."""
    tracking_utils._artifact_repos_cache.clear()


def test_a_new_store_records_relative_locations_and_a_copied_folder_reads_its_own(tmp_path, monkeypatch):
    original, copy, elsewhere = tmp_path / "made", tmp_path / "moved", tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the working directory is neither store's folder
    tracker = Tracker(f"sqlite:///{original}/mlflow.db", "sweep")
    run = tracker.start_cell(CELL, "sweep", {}, {})
    tracker.client.log_text(run.run_id, "the cell's own record", "cell.txt")
    run.finish({"test_accuracy": 0.5})

    db = original / "mlflow.db"
    assert rows(db, "SELECT experiment_id, artifact_location FROM experiments ORDER BY experiment_id") == [
        (0, ARTIFACT_FOLDER), (1, ARTIFACT_FOLDER)]
    assert rows(db, "SELECT artifact_uri FROM runs") == [(f"{ARTIFACT_FOLDER}/{run.run_id}/artifacts",)]
    assert (original / ARTIFACT_FOLDER / run.run_id / "artifacts" / "cell.txt").read_text() == "the cell's own record"
    assert not (elsewhere / ARTIFACT_FOLDER).exists() and not (elsewhere / "mlruns").exists()

    shutil.copytree(original, copy)
    shutil.rmtree(original)  # the copy must not need the folder it was made in
    fresh_reads()
    client = open_client(f"sqlite:///{copy}/mlflow.db")
    local = client.download_artifacts(run.run_id, "cell.txt", str(tmp_path / "download"))
    assert Path(local).read_text() == "the cell's own record"
    client.log_text(run.run_id, "written to the copy", "later.txt")  # writes land in the copy too
    assert (copy / ARTIFACT_FOLDER / run.run_id / "artifacts" / "later.txt").is_file()
    assert not original.exists()


def test_plain_mlflow_in_the_store_folder_reads_the_relative_locations(tmp_path, monkeypatch):
    """What `mlflow ui` started in the store's folder (as `prunebench ui` starts it) does: MLflow's
    own local repository, relative to the working directory."""
    from mlflow.store.artifact.local_artifact_repo import LocalArtifactRepository

    tracker = Tracker(f"sqlite:///{tmp_path}/a/mlflow.db", "sweep")
    run = tracker.start_cell(CELL, "sweep", {}, {})
    tracker.client.log_text(run.run_id, "x", "cell.txt")
    uri = tracker.client.get_run(run.run_id).info.artifact_uri
    monkeypatch.chdir(tmp_path / "a")
    assert [f.path for f in LocalArtifactRepository(uri).list_artifacts()] == ["cell.txt"]


def test_the_ui_child_runs_in_the_store_folder_with_an_absolute_store_uri(tmp_path, monkeypatch):
    from benchmark.sweeps.server import mlflow_child, server_command

    monkeypatch.chdir(tmp_path)
    child = mlflow_child("ui", "sqlite:///results/x/mlflow.db", "127.0.0.1", 5000)
    assert child.cwd == str(tmp_path / "results" / "x")
    assert child.store == f"sqlite:///{tmp_path}/results/x/mlflow.db"
    remote = mlflow_child("ui", "postgresql://u@db/mlflow", "127.0.0.1", 5000)
    assert remote.cwd is None and remote.store == "postgresql://u@db/mlflow"
    server = server_command("srv", artifacts_destination="art")
    assert server.cwd == str(tmp_path / "srv") and server.artifacts == str(tmp_path / "art")


# --- the one-time fix of older stores ---------------------------------------------------------------


def old_store(folder: Path) -> tuple[str, str]:
    """A store made as before relative locations: absolute ``file://`` locations; (run id, board run id)."""
    uri = f"sqlite:///{folder}/mlflow.db"
    client = MlflowClient(uri)
    cells = client.create_experiment("cells", artifact_location=(folder / ARTIFACT_FOLDER).as_uri())
    boards = client.create_experiment("leaderboards", artifact_location=(folder / ARTIFACT_FOLDER).as_uri())
    client.create_experiment("unused", artifact_location=(folder / "nowhere").as_uri())
    run = client.create_run(cells, tags={"cell_id": "c1"}).info.run_id
    board = client.create_run(boards).info.run_id
    client.create_run(cells, tags={"cell_id": "c2"})  # a run that logged no artifact
    client.log_param(run, "data_dir", str(folder))  # not an artifact location: the fix leaves it
    client.log_text(run, "cell", "cell.json")
    client.log_text(board, "board", "leaderboard.md")
    return run, board


def dump(db: Path) -> dict[str, list[tuple]]:
    """Every table's rows, the two artifact columns left out."""
    connection = sqlite3.connect(str(db))
    try:
        tables = [t for (t,) in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        out = {}
        for table in tables:
            columns = [c[1] for c in connection.execute(f"PRAGMA table_info({table})")
                       if (table, c[1]) not in (("experiments", "artifact_location"), ("runs", "artifact_uri"))]
            out[table] = sorted(connection.execute(f"SELECT {', '.join(columns)} FROM {table}").fetchall(), key=repr)
        return out
    finally:
        connection.close()


def test_the_fix_makes_an_old_store_self_contained_and_changes_nothing_else(tmp_path, monkeypatch):
    made, moved = tmp_path / "made", tmp_path / "moved"
    run, board = old_store(made)
    shutil.copytree(made, moved)
    db = moved / "mlflow.db"
    before = dump(db)
    assert len(absolute_locations(db)) == 4 + 3  # the default experiment, three made, three runs

    planned = relativize_store(db, dry_run=True)
    assert planned.runs == 3 and len(absolute_locations(db)) == 7  # a dry run changes nothing

    done = relativize_store(db)
    assert absolute_locations(db) == []
    assert done.runs == 3 and sorted(done.experiments) == ["0", "1", "2", "3"]
    assert {eid: new for eid, (_, new) in done.experiments.items()} == {
        "0": ARTIFACT_FOLDER, "1": ARTIFACT_FOLDER, "2": ARTIFACT_FOLDER, "3": ARTIFACT_FOLDER}
    assert len(done.missing_folders) == 1  # c2 logged nothing
    assert rows(db, f"SELECT artifact_uri FROM runs WHERE run_uuid = '{run}'") == [
        (f"{ARTIFACT_FOLDER}/{run}/artifacts",)]
    assert dump(db) == before  # nothing but the two columns changed
    assert relativize_store(db).runs == 0  # a second run finds nothing to do

    shutil.rmtree(made)
    monkeypatch.chdir(tmp_path)
    fresh_reads()
    client = open_client(f"sqlite:///{db}")
    assert Path(client.download_artifacts(board, "leaderboard.md", str(tmp_path / "dl"))).read_text() == "board"
    assert Path(client.download_artifacts(run, "cell.json", str(tmp_path / "dl"))).read_text() == "cell"


def test_the_fix_refuses_a_run_whose_artifacts_lie_outside_the_store_and_changes_nothing(tmp_path):
    run, _ = old_store(tmp_path)
    db = tmp_path / "mlflow.db"
    connection = sqlite3.connect(str(db))
    connection.execute("UPDATE runs SET artifact_uri = '/somewhere/else/artifacts' WHERE run_uuid = ?", (run,))
    connection.commit()
    connection.close()
    before = rows(db, "SELECT artifact_location FROM experiments UNION ALL SELECT artifact_uri FROM runs")
    with pytest.raises(RelocationError, match=f"run {run}'s artifacts .* outside"):
        relativize_store(db)
    assert rows(db, "SELECT artifact_location FROM experiments UNION ALL SELECT artifact_uri FROM runs") == before


def test_registering_the_resolver_twice_is_harmless():
    use_store_relative_artifacts()
    use_store_relative_artifacts()
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    repo = get_artifact_repository("mlartifacts/r/artifacts", tracking_uri="sqlite:////data/s/mlflow.db")
    assert repo.artifact_dir == "/data/s/mlartifacts/r/artifacts"
    assert get_artifact_repository("/abs/a").artifact_dir == "/abs/a"


@pytest.mark.slow
def test_the_ui_child_serves_the_artifacts_of_a_copied_store(tmp_path):
    """`prunebench ui`'s child (`mlflow ui`, started in the store's folder) on a copy whose original is gone."""
    import urllib.request

    from helpers_server import free_port

    from benchmark.cli import UI_WORKERS
    from benchmark.sweeps.server import mlflow_child, start_foreground, stop_server, wait_healthy

    tracker = Tracker(f"sqlite:///{tmp_path}/made/mlflow.db", "sweep")
    run = tracker.start_cell(CELL, "sweep", {}, {})
    tracker.client.log_text(run.run_id, "served from the copy", "cell.txt")
    shutil.copytree(tmp_path / "made", tmp_path / "copy")
    shutil.rmtree(tmp_path / "made")
    port = free_port()
    process = start_foreground(mlflow_child("ui", f"sqlite:///{tmp_path}/copy/mlflow.db", "127.0.0.1", port,
                                              workers=UI_WORKERS))
    try:
        wait_healthy(f"http://127.0.0.1:{port}", process, timeout=300)
        url = f"http://127.0.0.1:{port}/get-artifact?path=cell.txt&run_uuid={run.run_id}"
        assert urllib.request.urlopen(url, timeout=60).read() == b"served from the copy"
    finally:
        stop_server(process)
