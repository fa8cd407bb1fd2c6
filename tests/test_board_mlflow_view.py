"""The board's MLflow view: ranks, the board's order, the readable columns, each summary run's
column descriptions, and the link from a summary run to its cells, whose filter is run through a
real ``mlflow server`` (the UI sends the same filter to the same search endpoint)."""
from __future__ import annotations

import json
import re
from urllib.parse import parse_qs, unquote, urlsplit

import pandas as pd
from mlflow.tracking import MlflowClient

from benchmark.boards.in_mlflow import NOTE_TAG, VIEW_TAG, view_columns
from benchmark.boards.leaderboard import build_board, load_runs
from benchmark.boards.mlflow_view import (RANK, SORT_KEY, board_order_keys, board_ranks, cells_filter, ci_text,
                                          headline_key, significance)
from benchmark.boards.publish import build_and_publish
from benchmark.sweeps.tracking import SUMMARY_FILTER
from helpers_mlflow_ui import RATIO_BOARD, ratio_store
from helpers_server import free_port, start_mlflow_server, stop, wait_healthy


def test_ranks_come_from_the_tables_rank_column_when_it_has_one():
    table = pd.DataFrame({"task": ["t"] * 5, "family": ["data"] * 5, "ratio": [0.3, 0.3, 0.5, 0.5, 0.5],
                          "method": list("abcde"), "mean": [0.8, 0.9, 0.1, 0.3, 0.2]})
    # no rank column: the row order within each ratio (the table puts the best first)
    assert board_ranks(table) == [1, 2, 1, 2, 3]
    # a rank column (direction-aware, from leaderboard.family_table) wins over the row order
    assert board_ranks(table.assign(rank=[2, 1, 3, 1, 2])) == [2, 1, 3, 1, 2]


def test_board_order_puts_ratios_in_numeric_order_and_the_reference_first():
    rows = [("b", "data", 0.9, 1), ("a", "model", 0.5, 2), ("a", "data", 0.75, 1), ("a", "data", 0.3, 2),
            ("a", "reference", 0.0, 0), ("a", "data", 0.3, 1), ("a", "data", 0.05, 1), ("a", "model", 0.5, 1),
            ("a", "data", 0.5, 1), ("b", "reference", 0.0, 0)]
    keys = board_order_keys(rows)
    assert sorted(keys) == list(range(1, len(rows) + 1))
    ordered = [row for _, row in sorted(zip(keys, rows))]
    assert ordered == [("a", "reference", 0.0, 0), ("a", "data", 0.05, 1), ("a", "data", 0.3, 1),
                       ("a", "data", 0.3, 2), ("a", "data", 0.5, 1), ("a", "data", 0.75, 1),
                       ("a", "model", 0.5, 1), ("a", "model", 0.5, 2), ("b", "reference", 0.0, 0),
                       ("b", "data", 0.9, 1)]


def test_readable_columns():
    assert headline_key("accuracy") == "accuracy"
    assert headline_key("loss") == "test loss"  # 'loss' is already the board's test-loss column
    assert headline_key("f1%") == "test f1_"  # '%' is no valid MLflow key character
    assert [significance(p, False) for p in (0.049, 0.05, 0.5, None, float("nan"))] == ["yes", "no", "no", "-", "-"]
    assert significance(None, True) == "baseline"
    assert ci_text(0.81234, 0.9, 3) == "[0.8123, 0.9000]"
    assert ci_text(float("nan"), None, 1) == "none (1 seed(s))"


def test_cells_filter_quotes_labels_mlflow_can_parse():
    assert cells_filter("t", "el2n", 0.3) == ("tags.task = 't' AND tags.label = 'el2n' AND params.ratio = '0.3' "
                                              "AND tags.status = 'finished'")
    assert "tags.label = \"o'brien\"" in cells_filter("t", "o'brien", 0.5)
    assert cells_filter("t", "a'b\"c", 0.5) is None  # no MLflow string literal holds both quotes


def _link_filter(note: str) -> str | None:
    found = re.search(r"\[Its cells\]\((#/experiments/\d+/runs\?[^)]*)\)", note)
    if not found:
        return None
    query = urlsplit(found.group(1).split("#", 1)[1]).query
    assert parse_qs(query)["workflowType"] == ["machine_learning"]
    return unquote(query.split("searchFilter=", 1)[1].split("&", 1)[0])


def test_summary_runs_link_their_cells_through_a_filter_a_real_mlflow_server_runs(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = start_mlflow_server(tmp_path, port)
    try:
        wait_healthy(url, server)
        # a label with a quote: the filter switches to double quotes
        small = {key: RATIO_BOARD[key] for key in (("full", 0.0), ("random", 0.3), ("el2n", 0.3), ("random", 0.7))}
        ratio_store(url, "links", board=small, rename={"el2n": "el2n 'v2'"})
        published = build_and_publish(url, "links", None)
        client = MlflowClient(url)
        cells = load_runs(url, "links")
        summaries = client.search_runs([published.experiment_id], SUMMARY_FILTER, max_results=100)
        assert len(summaries) == 4
        for run in summaries:
            task, family, label, ratio = json.loads(run.data.tags["summary_key"])
            search = _link_filter(run.data.tags[NOTE_TAG])
            found = client.search_runs([published.experiment_id], search, max_results=100)
            expected = cells[(cells.label == label) & (cells.ratio == ratio)].cell_id
            assert sorted(r.data.tags["cell_id"] for r in found) == sorted(expected), (label, ratio, search)
            assert len(found) == len(RATIO_BOARD[("el2n" if "el2n" in label else label, ratio)])
        # the filter the view itself uses (and its sort key) is accepted by the server too
        view = json.loads(client.get_experiment(published.experiment_id).tags[VIEW_TAG])
        ordered = client.search_runs([published.experiment_id], view["searchFilter"],
                                     order_by=[f"{view['orderByKey'].replace('`', '')} ASC"])
        assert [r.data.metrics[SORT_KEY] for r in ordered] == [1.0, 2.0, 3.0, 4.0]
        assert [json.loads(r.data.tags["summary_key"])[3] for r in ordered] == [0.0, 0.3, 0.3, 0.7]
    finally:
        stop(server)


def test_every_summary_run_describes_every_column_of_the_view(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    small = {key: RATIO_BOARD[key] for key in (("full", 0.0), ("random", 0.5), ("el2n", 0.5), ("forgetting", 0.5),
                                               ("random-weights", 0.5), ("magnitude", 0.5))}
    ratio_store(uri, "ratios", board=small)
    published = build_and_publish(uri, "ratios", None)
    client = MlflowClient(uri)
    board = build_board(load_runs(uri, "ratios"), "ratios")
    columns = view_columns(board)
    runs = client.search_runs([published.experiment_id], SUMMARY_FILTER, max_results=100)
    assert len(runs) == len(small)
    # the task's plot is kept once, by its first summary run (the reference), and every run's
    # description links and shows that one
    keepers = [r for r in runs if client.list_artifacts(r.info.run_id, "board-plot")]
    assert [r.data.params["method"] for r in keepers] == ["full"]
    keeper = keepers[0].info.run_id
    assert [a.path for a in client.list_artifacts(keeper, "board-plot")] == ["board-plot/fashion-mnist-metric-vs-ratio.png"]
    for run in runs:
        note = run.data.tags[NOTE_TAG]
        described = {name for names in re.findall(r"^\| `([^`]+)` \|", note, flags=re.M)
                     for name in names.split(", ")}
        for column in columns:
            assert column.split(".", 1)[1].strip("`") in described, (column, run.info.run_name)
        assert f"get-artifact?path=board-plot/fashion-mnist-metric-vs-ratio.png&run_uuid={keeper}" in note
    # ranks are the board's: within (family, ratio) in the board table's order
    for (task, family), table in board.tables.items():
        for (_, row), rank in zip(table.iterrows(), board_ranks(table)):
            run = next(r for r in runs if json.loads(r.data.tags["summary_key"]) == [task, family, row.method, row.ratio])
            assert run.data.metrics[RANK] == rank
