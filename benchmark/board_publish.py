"""Publish a leaderboard: markdown, HTML and plots into a results directory, and the same
board as a run of the MLflow experiment ``leaderboards`` (tables with ``log_table``, the
markdown, the HTML and the plots as artifacts), so that ``prunebench ui`` shows it next to
the cell runs it was built from."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from .board_html import render_html
from .board_markdown import render_markdown
from .board_plots import board_plots, slug
from .leaderboard import Board, build_board, load_runs
from .names import check_name
from .store import open_client, redact

LEADERBOARD_EXPERIMENT = "leaderboards"


@dataclass
class Published:
    markdown: str
    files: list[Path] = field(default_factory=list)
    mlflow_run_id: str | None = None


def table_artifact(task: str, family: str) -> str:
    return f"tables/{slug(task)}--{family}.json"


def write_files(board: Board, markdown: str, html: str, plots: dict[str, bytes], out_dir: Path) -> list[Path]:
    stem = check_name(board.experiment, "experiment name")  # never a path: the files stay in out_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / f"{stem}.md", out_dir / f"{stem}.html"]
    written[0].write_text(markdown, encoding="utf-8")
    written[1].write_text(html, encoding="utf-8")
    if plots:
        plot_dir = out_dir / f"{stem}-plots"
        plot_dir.mkdir(exist_ok=True)
        for name, png in plots.items():
            (plot_dir / name).write_bytes(png)
            written.append(plot_dir / name)
    return written


def log_to_mlflow(board: Board, markdown: str, html: str, plots: dict[str, bytes], tracking_uri: str) -> str:
    from .tracking import code_version, ensure_experiment

    client = open_client(tracking_uri)
    experiment_id = ensure_experiment(client, tracking_uri, LEADERBOARD_EXPERIMENT, kind="leaderboards")
    run = client.create_run(experiment_id, run_name=f"{board.experiment} @ {board.generated}", tags={
        "source_experiment": board.experiment, "command": board.command, "code_version": code_version(),
        "cell_code_versions": ", ".join(board.code_versions), "finished_cells": str(len(board.runs)),
    })
    run_id = run.info.run_id
    try:
        for (task, family), table in board.tables.items():
            client.log_table(run_id, table, table_artifact(task, family))
        for (task, family), areas in board.areas.items():
            client.log_table(run_id, areas, f"tables/{slug(task)}--{family}--area-gap.json")
            # one metric per method too, so the MLflow UI can chart and compare the summary number
            for method, gap in zip(areas.method, areas.area_gap):
                if gap is not None and gap == gap:
                    client.log_metric(run_id, f"area_gap/{slug(task)}/{family}/{slug(method)}", float(gap))
        if not board.normalised.empty:
            client.log_table(run_id, board.normalised, "tables/normalised.json")
        client.log_text(run_id, markdown, "leaderboard.md")
        client.log_text(run_id, html, "leaderboard.html")
        with tempfile.TemporaryDirectory() as tmp:
            for name, png in plots.items():
                (Path(tmp) / name).write_bytes(png)
                client.log_artifact(run_id, str(Path(tmp) / name), "plots")
    except Exception:
        client.set_terminated(run_id, status="FAILED")
        raise
    client.set_terminated(run_id, status="FINISHED")
    return run_id


def publish(board: Board, out_dir: Path | None, tracking_uri: str | None) -> Published:
    markdown = render_markdown(board)
    plots = board_plots(board)
    html = render_html(board, plots)
    published = Published(markdown)
    if out_dir is not None:
        published.files = write_files(board, markdown, html, plots, out_dir)
    if tracking_uri is not None:
        published.mlflow_run_id = log_to_mlflow(board, markdown, html, plots, tracking_uri)
    return published


def build_and_publish(tracking_uri: str, experiment: str, out_dir: Path | None, command: str = "",
                      log_board: bool = True) -> Published:
    """Read ``experiment``'s finished cells from ``tracking_uri`` and publish their board."""
    board = build_board(load_runs(tracking_uri, experiment), experiment, command=redact(command))
    return publish(board, out_dir, tracking_uri if log_board and not board.runs.empty else None)
