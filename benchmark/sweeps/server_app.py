"""The MLflow server app ``prunebench``: MLflow's own app plus two read-only endpoints that run
:mod:`.store_query`'s SQL on the server's backend store, so that a client over HTTP reads cell
ids (``run`` start) and the leaderboard's fields, not every run through REST search.

``prunebench server`` starts ``mlflow server --app-name prunebench``. MLflow finds apps by the
``mlflow.app`` entry point (``mlflow/server/__init__.py: _find_app``); the project declares it
in ``pyproject.toml``, and for a source tree that is not installed :func:`app_env` writes a
one-entry distribution record (``*.dist-info/entry_points.txt``) and puts it on the server's
``PYTHONPATH``. The app is MLflow's Flask app with the two routes added, wrapped as MLflow
wraps it (FastAPI under uvicorn, its default; the Flask app itself under gunicorn/waitress).
"""
from __future__ import annotations

import math
import os
from pathlib import Path

from .store_query import CELLS_ENDPOINT, MAX_KEYS, RUNS_ENDPOINT, TAG_INDEX, StoreQuery

APP_NAME = "prunebench"
ENTRY_POINT = "benchmark.sweeps.server_app:create_app"
_DIST = "prunebench_server_app-1.dist-info"


def app_env(folder: str | Path, environ: dict[str, str] | None = None) -> dict[str, str]:
    """The ``PYTHONPATH`` entry that lets ``mlflow server --app-name prunebench`` find this app
    (and this package) in a server started from a source tree; ``folder`` holds the record."""
    import benchmark

    record = Path(folder).resolve() / ".mlflow-app"
    dist = record / _DIST
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: prunebench-server-app\nVersion: 1\n")
    (dist / "entry_points.txt").write_text(f"[mlflow.app]\n{APP_NAME} = {ENTRY_POINT}\n")
    package_root = str(Path(benchmark.__file__).resolve().parent.parent)
    path = (environ if environ is not None else os.environ).get("PYTHONPATH", "")
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(record), package_root, path) if p)}


def _finite(value: float) -> float | str:
    """JSON has no NaN or infinity: those go as text (``float()`` reads them back)."""
    return value if math.isfinite(value) else str(value)


def _names(body: dict, key: str) -> list[str]:
    names = body.get(key) or []
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names) or len(names) > MAX_KEYS:
        raise ValueError(f"{key!r} must be a list of at most {MAX_KEYS} names")
    return names


def _query() -> StoreQuery:
    from mlflow.server.handlers import _get_tracking_store

    store = _get_tracking_store()
    engine = getattr(store, "engine", None)
    if engine is None:  # a file store: no SQL to run; the client falls back to REST search
        raise LookupError(f"the server's store ({type(store).__name__}) is not a SQL database")
    return StoreQuery(None, str(engine.url), engine=engine, remote=False)


def _ensure_index(query: StoreQuery) -> None:
    """The claims' tags index on a server database other than SQLite (``prunebench server``
    adds it to a SQLite file before the server starts); a worker that loses the race to create
    it, or may not, leaves it to the others."""
    import sqlalchemy

    if query.engine.dialect.name == "sqlite":
        return
    try:
        with query.engine.begin() as conn:
            conn.execute(sqlalchemy.text(f'CREATE INDEX IF NOT EXISTS {TAG_INDEX} ON tags ("key", value)'))
    except sqlalchemy.exc.SQLAlchemyError:
        pass


def add_routes(flask_app) -> None:
    """The two read-only endpoints on ``flask_app`` (JSON body in, JSON out)."""
    from flask import jsonify, request

    def answer(read):
        try:
            body = request.get_json(force=True, silent=True) or {}
            experiment_id = str(int(body.get("experiment_id")))
            return jsonify(read(_query(), experiment_id, body))
        except (TypeError, ValueError) as error:
            return jsonify({"error": f"bad request: {error}"}), 400
        except LookupError as error:
            return jsonify({"error": str(error)}), 404

    def finished_cells():
        return answer(lambda query, experiment, body: {"cell_ids": sorted(query.finished_cell_ids(experiment))})

    def finished_runs():
        def read(query, experiment, body):
            runs = query.finished_runs(experiment, _names(body, "tags"), _names(body, "params"),
                                       _names(body, "metrics"), _names(body, "metric_prefixes"),
                                       _names(body, "param_prefixes"))
            return {"runs": [[r.run_id, r.start_time, r.tags, r.params,
                              {k: _finite(v) for k, v in r.metrics.items()}] for r in runs]}
        return answer(read)

    flask_app.add_url_rule(CELLS_ENDPOINT, "prunebench_finished_cells", finished_cells, methods=["POST"])
    flask_app.add_url_rule(RUNS_ENDPOINT, "prunebench_finished_runs", finished_runs, methods=["POST"])


def create_app():
    """The app ``mlflow server --app-name prunebench`` serves (the ``mlflow.app`` entry point)."""
    from mlflow.environment_variables import _MLFLOW_SGI_NAME
    from mlflow.server import app as flask_app

    add_routes(flask_app)
    try:
        _ensure_index(_query())
    except LookupError:
        pass
    if _MLFLOW_SGI_NAME.get() == "uvicorn":
        from mlflow.server.fastapi_app import create_fastapi_app

        return create_fastapi_app(flask_app)
    return flask_app
