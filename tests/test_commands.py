"""The everyday commands: --version, a sub-command's own usage on a bad option, `status`
(read-only, every cell state), `compare` (paired statistics of two labels) and `export`
(cells and board tables, round-tripping to the board's numbers)."""
from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from benchmark.boards.leaderboard import build_board, load_runs
from benchmark.cli import main
from benchmark.sweeps.cells import parse_sweep
from benchmark.sweeps.claims import HOST
from benchmark.sweeps.tracking import Tracker
from benchmark.version import __version__
from helpers_tiny import write_tiny_fashion_mnist


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out == f"prunebench {__version__}\n"


@pytest.mark.parametrize("command", [["run", "x.yaml", "--no-such-option"], ["leaderboard", "--experiment", "e", "-z"],
                                     ["status", "x.yaml", "--bogus", "1"]])
def test_an_unknown_option_shows_the_sub_commands_usage(capsys, command):
    with pytest.raises(SystemExit) as stop:
        main(command)
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith(f"usage: prunebench {command[0]} ")
    assert err.rstrip().endswith(f"error: unrecognized arguments: {' '.join(command[2:] if command[0] != 'leaderboard' else command[3:])}")


# --- a store with cells in every state, written through the tracker (no training) ----------------

VALUES = {  # label -> seed -> test accuracy
    "full": {0: 0.90, 1: 0.91, 2: 0.92},
    "random": {0: 0.80, 1: 0.83, 2: 0.79},
    "random-b": {0: 0.82, 1: 0.81, 2: 0.84},
}


def sweep_of(tmp_path: Path):
    data = write_tiny_fashion_mnist(tmp_path / "fm")
    return parse_sweep({"name": "cmds", "profile": "smoke", "seeds": [0, 1, 2], "ratios": [0.5],
                        "tasks": [{"name": "fashion-mnist", "data_dir": str(data)}],
                        "methods": ["random", {"name": "random", "label": "random-b", "options": {"dynamic": True}}]})


def finish(tracker: Tracker, cell, value: float, seconds: float) -> None:
    family = "reference" if cell.method == "none" else "data"
    run = tracker.start_cell(cell, "cmds", {}, {"family": family, "provenance": "reference-code", "metric": "accuracy"})
    run.finish({"test_accuracy": value, "kept_fraction": 1.0 if family == "reference" else 0.5,
                "train_seconds": seconds})


@pytest.fixture
def store(tmp_path: Path):
    """The 9 cells of the sweep, every one finished with the accuracy of VALUES."""
    sweep = sweep_of(tmp_path)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    tracker = Tracker(uri, experiment="cmds")
    cells = {(c.label, c.seed): c for c in sweep.cells()}
    for (label, seed), cell in cells.items():
        finish(tracker, cell, VALUES[label][seed], seconds=1.0)
    return sweep, uri, tracker, cells


def test_compare_gives_the_paired_statistics(store, capsys):
    _, uri, _, _ = store
    code = main(["compare", "--tracking-uri", uri, "--experiment", "cmds", "--ratio", "0.5", "random-b", "random"])
    assert code == 0
    a, b = np.array(list(VALUES["random-b"].values())), np.array(list(VALUES["random"].values()))
    p = scipy_stats.ttest_rel(a, b).pvalue
    wins = int((a > b).sum())
    assert capsys.readouterr().out.splitlines() == [
        f"random-b: mean {a.mean():.4f} over 3 seed(s) (seed 0: 0.8200, seed 1: 0.8100, seed 2: 0.8400)",
        f"random: mean {b.mean():.4f} over 3 seed(s) (seed 0: 0.8000, seed 1: 0.8300, seed 2: 0.7900)",
        f"random-b - random: {(a - b).mean():+.4f} over 3 common seed(s), p={p:.3f}, random-b won {wins}/3"
        + (" (within noise)" if p >= 0.05 else ""),
    ]


def test_compare_names_what_is_there_when_a_label_is_missing(store, capsys):
    _, uri, _, _ = store
    code = main(["compare", "--tracking-uri", uri, "--experiment", "cmds", "--ratio", "0.5", "el2n", "random"])
    assert code == 2
    assert capsys.readouterr().err == ("error: no finished cell of 'el2n' at ratio 0.5 on fashion-mnist; labels there: "
                                       "random, random-b\n")


def test_export_round_trips_to_the_boards_numbers(store, tmp_path: Path):
    _, uri, _, _ = store
    board = build_board(load_runs(uri, "cmds"), "cmds")
    expected = pd.concat([board.tables[key] for key in sorted(board.tables)], ignore_index=True)
    for fmt in ("json", "csv", "parquet"):
        out = tmp_path / f"export-{fmt}"
        assert main(["export", "--tracking-uri", uri, "--experiment", "cmds", "--format", fmt, "--out", str(out)]) == 0
        if fmt == "json":
            document = json.loads((out / "cmds.json").read_text())
            assert document["schema_version"] == 1 and document["experiment"] == "cmds"
            cells, rows = pd.DataFrame(document["cells"]), pd.DataFrame(document["board"])
        else:
            read = pd.read_csv if fmt == "csv" else pd.read_parquet
            cells, rows = read(out / f"cmds-cells.{fmt}"), read(out / f"cmds-board.{fmt}")
            assert set(cells.schema_version) == {1} and set(rows.schema_version) == {1}
        assert len(cells) == 9 and cells.cell_id.is_unique
        by_cell = cells.set_index(["label", "seed"]).value
        for (label, seed), value in ((k, v) for label, seeds in VALUES.items() for k, v in
                                     (((label, s), x) for s, x in seeds.items())):
            assert by_cell[(label, seed)] == pytest.approx(value)
        assert list(rows.method) == list(expected.method)
        for column in ("ratio", "seeds", "mean", "ci_low", "ci_high", "delta_full", "p_full"):
            assert rows[column].astype(float).to_numpy() == pytest.approx(expected[column].astype(float).to_numpy())


def test_status_lists_cells_in_every_state_and_changes_nothing(tmp_path: Path, capsys):
    sweep = sweep_of(tmp_path)
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    tracker = Tracker(uri, experiment="cmds")
    cells = {(c.label, c.seed): c for c in sweep.cells()}
    for key in [("full", 0), ("full", 1), ("full", 2), ("random", 0)]:
        finish(tracker, cells[key], VALUES[key[0]][key[1]], seconds=1.0)
    failed = tracker.start_cell(cells[("random", 1)], "cmds", {}, {})
    failed.fail(ValueError("the data went away\nsecond line"), "traceback")
    live = tracker.start_cell(cells[("random", 2)], "cmds", {}, {})  # this process, a fresh heartbeat: running
    client = tracker.client
    client.set_tag(live.run_id, "heartbeat", f"{time.time() - 5:.3f}")
    dead = tracker.start_cell(cells[("random-b", 0)], "cmds", {}, {})
    client.set_tag(dead.run_id, "heartbeat", f"{time.time() - 7200:.3f}")  # two hours silent: its claim is dead
    before = sorted((r.info.run_id, r.data.tags["status"], r.info.status)
                    for r in client.search_runs([tracker.experiment_id]))
    finished_runs = [r for r in client.search_runs([tracker.experiment_id]) if r.data.tags["status"] == "finished"]
    seconds = {r.data.tags["task"]: [] for r in finished_runs}
    for r in finished_runs:
        seconds[r.data.tags["task"]].append((r.info.end_time - r.info.start_time) / 1000.0)
    median = float(np.median(seconds["fashion-mnist"]))

    sweep_file = tmp_path / "cmds.yaml"
    sweep_file.write_text(json.dumps({"name": "cmds", "profile": "smoke", "seeds": [0, 1, 2], "ratios": [0.5],
                                      "tasks": [{"name": "fashion-mnist", "data_dir": str(tmp_path / "fm")}],
                                      "methods": ["random", {"name": "random", "label": "random-b",
                                                             "options": {"dynamic": True}}]}))
    assert main(["status", str(sweep_file), "--tracking-uri", uri]) == 0
    lines = capsys.readouterr().out.splitlines()
    after = sorted((r.info.run_id, r.data.tags["status"], r.info.status)
                   for r in client.search_runs([tracker.experiment_id]))
    assert after == before  # read-only: the dead claim is reported, not closed

    assert lines[1] == "9 cells: 4 finished, 1 running, 1 failed, 3 pending"
    running = lines[lines.index("running:") + 1]
    assert running.startswith(f"  {cells[('random', 2)].id}  fashion-mnist random r=0.5 seed=2  (on {HOST} pid "
                              f"{os.getpid()}, heartbeat ")
    assert running.endswith(" s ago)") and 4 <= int(running.rsplit("heartbeat ", 1)[1].split()[0]) <= 30
    assert lines[lines.index("failed:") + 1] == (f"  {cells[('random', 1)].id}  fashion-mnist random r=0.5 seed=1  "
                                                 "(ValueError: the data went away)")
    pending = lines[lines.index("pending:") + 1: lines.index("pending:") + 4]
    assert pending == [f"  {cells[('random-b', 0)].id}  fashion-mnist random-b r=0.5 seed=0  "
                       "(its claim is dead (no heartbeat))",
                       f"  {cells[('random-b', 1)].id}  fashion-mnist random-b r=0.5 seed=1",
                       f"  {cells[('random-b', 2)].id}  fashion-mnist random-b r=0.5 seed=2"]
    eta = round(5 * median)
    shown = f"{eta // 60} min {eta % 60:02d} s"
    assert lines[-1] == (f"time left: about {shown} for one runner (5 cells at the median time of finished cells "
                         "of their task)")


def test_status_of_a_sweep_that_never_ran_creates_no_store(tmp_path: Path, capsys):
    data = write_tiny_fashion_mnist(tmp_path / "fm")
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text(json.dumps({"name": "never", "profile": "smoke", "seeds": [0], "ratios": [0.5],
                                      "tasks": [{"name": "fashion-mnist", "data_dir": str(data)}],
                                      "methods": ["random"]}))
    store = tmp_path / "none.db"
    assert main(["status", str(sweep_file), "--tracking-uri", f"sqlite:///{store}"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1:] == ["2 cells: 0 finished, 0 running, 0 failed, 2 pending", "pending:",
                       *[line for line in out[3:5]], "time left: unknown until a cell finishes"]
    assert not store.exists()
