"""Publish a leaderboard: markdown, HTML and plots into a results directory; in MLflow, the
board on its sweep's experiment page (description, summary runs, a view: see
:mod:`.in_mlflow`) and its files as the one run of the experiment ``leaderboards`` that
belongs to the sweep (tables with ``log_table``, the markdown, the HTML and the plots as
artifacts), updated in place by each ``leaderboard``."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .html import render_html
from .markdown import render_markdown, render_note
from .plots import board_plots, slug
from .leaderboard import Board, build_board, load_runs
from ..sweeps.names import check_name
from .safe_files import write_inside
from ..sweeps.store import open_client, redact

if TYPE_CHECKING:
    import pandas as pd

    from .in_mlflow import Synced

LEADERBOARD_EXPERIMENT = "leaderboards"


@dataclass
class Published:
    markdown: str
    files: list[Path] = field(default_factory=list)
    mlflow_run_id: str | None = None  # the board's run in the experiment 'leaderboards'
    experiment_id: str | None = None  # the sweep's experiment, where the summary runs are
    summary: "Synced | None" = None
    ui_url: str | None = None  # the sweep's experiment page on the board's view


def table_artifact(task: str, family: str) -> str:
    return f"tables/{slug(task)}--{family}.json"


def write_files(board: Board, markdown: str, html: str, plots: dict[str, bytes], out_dir: Path) -> list[Path]:
    stem = check_name(board.experiment, "experiment name")  # never a path: the files stay in out_dir
    # write_inside follows no link below out_dir (a planted NAME.md -> ~/.bashrc is refused)
    written = [write_inside(out_dir, f"{stem}.md", markdown), write_inside(out_dir, f"{stem}.html", html)]
    for name, png in plots.items():
        written.append(write_inside(out_dir, f"{stem}-plots/{name}", png))
    return written


def board_run(client, tracking_uri: str, board: Board) -> tuple[str, str, int]:
    """(experiment id, run id, step) of the sweep's one run in ``leaderboards``: the latest one
    found, its tags refreshed (older copies, from before runs were updated in place, deleted),
    else a new one."""
    from mlflow.entities import RunTag

    from ..sweeps.tracking import code_version, ensure_experiment

    experiment_id = ensure_experiment(client, tracking_uri, LEADERBOARD_EXPERIMENT, kind="leaderboards")
    # sweep names are letters, digits and . _ - (names.check_name): safe inside the quotes
    found = client.search_runs([experiment_id], filter_string=f"tags.source_experiment = '{board.experiment}'",
                               max_results=1000, order_by=["attributes.start_time DESC"])
    tags = {"source_experiment": board.experiment, "command": board.command, "code_version": code_version(),
            "cell_code_versions": ", ".join(board.code_versions), "finished_cells": str(len(board.runs)),
            "board_generated": board.generated}
    if not found:
        run = client.create_run(experiment_id, run_name=f"board: {board.experiment}",
                                tags={**tags, "board_refresh": "0"})
        return experiment_id, run.info.run_id, 0
    for older in found[1:]:
        client.delete_run(older.info.run_id)
    run = found[0]
    step = int(run.data.tags.get("board_refresh", "0")) + 1
    client.log_batch(run.info.run_id, tags=[RunTag(k, v) for k, v in {**tags, "board_refresh": str(step)}.items()])
    return experiment_id, run.info.run_id, step


def log_tables(client, run_id: str, tables: dict[str, "pd.DataFrame"]) -> None:
    """Each table as a JSON artifact in ``log_table``'s format (pandas' "split" orientation,
    listed in ``mlflow.loggedArtifacts`` so the UI shows it as a table), replacing the file
    a previous board left: ``log_table`` would append the new rows to the old ones."""
    import json

    with tempfile.TemporaryDirectory() as tmp:
        for path, table in tables.items():
            local = Path(tmp) / path
            local.parent.mkdir(parents=True, exist_ok=True)
            table.to_json(local, orient="split", index=False, date_format="iso")
            client.log_artifact(run_id, str(local), str(Path(path).parent))
    listed = json.loads(client.get_run(run_id).data.tags.get("mlflow.loggedArtifacts", "[]"))
    listed += [entry for entry in ({"path": path, "type": "table"} for path in tables) if entry not in listed]
    client.set_tag(run_id, "mlflow.loggedArtifacts", json.dumps(listed))


def log_to_mlflow(board: Board, markdown: str, plots: dict[str, bytes], tracking_uri: str, client=None) -> str:
    """The board run: tables, area gaps, markdown and plots (the HTML follows once its links exist)."""
    client = client or open_client(tracking_uri)
    _, run_id, step = board_run(client, tracking_uri, board)
    try:
        tables = {table_artifact(task, family): table for (task, family), table in board.tables.items()}
        for (task, family), areas in board.areas.items():
            tables[f"tables/{slug(task)}--{family}--area-gap.json"] = areas
            # one metric per method too, so the MLflow UI can chart and compare the summary number
            for method, gap in zip(areas.method, areas.area_gap):
                if gap is not None and gap == gap:
                    client.log_metric(run_id, f"area_gap/{slug(task)}/{family}/{slug(method)}", float(gap), step=step)
        if not board.normalised.empty:
            tables["tables/normalised.json"] = board.normalised
        log_tables(client, run_id, tables)
        client.log_text(run_id, markdown, "leaderboard.md")
        with tempfile.TemporaryDirectory() as tmp:
            for name, png in plots.items():
                (Path(tmp) / name).write_bytes(png)
                client.log_artifact(run_id, str(Path(tmp) / name), "plots")
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id


def publish(board: Board, out_dir: Path | None, tracking_uri: str | None, client=None,
            ui_base: str | None = None) -> Published:
    """The board's files into ``out_dir``, and into MLflow at ``tracking_uri`` (through ``client``,
    the store's open ``MlflowClient``, if given: the store is opened once per command). The HTML
    is made once, after the summary runs exist, with each row linked to its summary run and cells
    in the UI at ``ui_base`` (default: :func:`.in_mlflow.ui_base`; ``""``: no links). If MLflow
    fails, the files are still written (without links) before the error is raised."""
    markdown = render_markdown(board)
    plots = board_plots(board)
    published = Published(markdown)
    links = None
    try:
        if tracking_uri is not None:
            client = client or open_client(tracking_uri)
            published.mlflow_run_id = log_to_mlflow(board, markdown, plots, tracking_uri, client)
            publish_on_experiment(published, board, tracking_uri, client, plots)
            if ui_base != "":
                from .in_mlflow import ui_base as default_base
                from .links import read_links

                links = read_links(client, published.experiment_id, ui_base or default_base(tracking_uri))
    finally:
        html = render_html(board, plots, links)
        if out_dir is not None:
            published.files = write_files(board, markdown, html, plots, out_dir)
    if tracking_uri is not None:
        client.log_text(published.mlflow_run_id, html, "leaderboard.html")
    return published


def publish_on_experiment(published: Published, board: Board, tracking_uri: str, client=None,
                          plots: dict[str, bytes] | None = None) -> None:
    """The board on the sweep's own experiment page (:mod:`.in_mlflow`)."""
    from .in_mlflow import publish_to_experiment, ui_base, ui_url
    from ..sweeps.tracking import adopt_experiment

    client = client or open_client(tracking_uri)
    experiment = client.get_experiment_by_name(board.experiment)
    published.experiment_id = adopt_experiment(client, tracking_uri, experiment, "cells")
    base = ui_base(tracking_uri)
    published.ui_url = ui_url(base, published.experiment_id)
    # links inside the UI (its hash routes): the board run's artifacts, and the view itself
    board_experiment = client.get_run(published.mlflow_run_id).info.experiment_id
    board_page = f"#/experiments/{board_experiment}/runs/{published.mlflow_run_id}/artifacts"
    note = render_note(board, board_page, published.ui_url[len(base) + 1:])
    published.summary = publish_to_experiment(client, published.experiment_id, board, note, plots)


def build_and_publish(tracking_uri: str, experiment: str, out_dir: Path | None, command: str = "",
                      log_board: bool = True, ui_base: str | None = None) -> Published:
    """Read ``experiment``'s finished cells from ``tracking_uri`` and publish their board (the
    store opened once for both)."""
    client = open_client(tracking_uri)
    board = build_board(load_runs(tracking_uri, experiment, client), experiment, command=redact(command))
    return publish(board, out_dir, tracking_uri if log_board and not board.runs.empty else None, client, ui_base)
