"""Reads of a sweep's runs that fetch only what the caller uses: the one module that knows
MLflow's tracking schema, so that a new MLflow version touches this file alone.

- A SQLite store (``sqlite:///``) is read with plain SQL on MLflow's tables (``runs``, ``tags``,
  ``params``, ``latest_metrics``) through SQLAlchemy: rows come back as tuples and no
  per-run object is built. ``MlflowClient.search_runs`` would build ORM objects for every
  tag, param, metric and dataset input of every run (1.7 M at 5,000 cells), and Python's
  cyclic garbage collector then spends more time on them than the query takes.
- An ``http(s)://`` server started by ``prunebench server`` runs the same SQL on its own
  backend store (SQLite or PostgreSQL) and serves the rows on two read-only endpoints
  (:mod:`.server_app`); the client asks there first. A plain ``mlflow server`` has no such
  endpoint (404): the client says so once and reads through its REST search, as below.
- Any other store (``postgresql://`` given directly ...) is read through ``search_runs`` with
  the narrowest filter MLflow offers (``tags.status = 'finished'``), paged.

Claims look a cell's runs up by its ``cell_id`` tag. MLflow indexes ``tags`` by key and run
only, so that look-up scans every ``cell_id`` tag of the store; :func:`ensure_tag_index` adds
an index on ``tags (key, value)`` to a SQLite store (MLflow's own tag search then uses it; a
server started by ``prunebench server`` gets it on its store too). It is created when the store
is opened, under the store lock; a store made before it is upgraded in place with a one-line
notice, and nothing recorded is changed.
"""
from __future__ import annotations

import functools
import sys
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from typing import Any

TAG_INDEX = "prunebench_tags_key_value"
FINISHED = "finished"
PAGE = 1000  # runs per search_runs page (non-SQL stores)
SQL_BATCH = 10_000  # rows fetched at a time by the SQL reads
#: the narrow reads a ``prunebench server`` serves next to MLflow's REST API (:mod:`.server_app`)
CELLS_ENDPOINT = "/prunebench/api/v1/finished-cells"
RUNS_ENDPOINT = "/prunebench/api/v1/finished-runs"
MAX_KEYS = 500  # names one finished-runs request may ask for (the leaderboard asks for about 60)
BUSY_TIMEOUT_S = 20  # as MLflow's own SQLite engine: wait for another runner's write
#: database bytes a finished cell adds to a SQLite store: 499 MiB for 19,980 smoke cells (2 epochs of
#: metric history each; results/bench-store.md); artifacts (results/store-size.md) come on top
DB_BYTES_PER_CELL = 26_200


@dataclass(frozen=True)
class RunRecord:
    """What a reader asked for of one run: the tags, params and latest metrics named, no more."""

    run_id: str
    start_time: int
    tags: dict[str, str]
    params: dict[str, str]
    metrics: dict[str, float]


def store_estimate(cells: int) -> str:
    """What ``cells`` finished cells add to the tracking database, in words."""
    size = cells * DB_BYTES_PER_CELL
    shown = f"{size / 2**30:.1f} GiB" if size >= 2**30 else f"{size / 2**20:.0f} MiB" if size >= 2**20 else \
        f"{size / 2**10:.0f} KiB"
    return f"about {shown} in the tracking database ({DB_BYTES_PER_CELL / 1000:.0f} kB a cell; artifacts apart)"


def is_http(tracking_uri: str) -> bool:
    return tracking_uri.startswith(("http://", "https://"))


def is_sql(tracking_uri: str) -> bool:
    """Whether the store is read with SQL here (a SQLite file; not ``:memory:``, which each
    connection would see empty)."""
    from .uris import sqlite_path

    return sqlite_path(tracking_uri) is not None


@functools.lru_cache(maxsize=8)
def sql_engine(tracking_uri: str) -> Any:
    import sqlalchemy

    return sqlalchemy.create_engine(tracking_uri, connect_args={"timeout": BUSY_TIMEOUT_S})


def ensure_tag_index(tracking_uri: str, notice=None) -> bool:
    """Add :data:`TAG_INDEX` to a SQLite store that lacks it; whether it is there afterwards.
    Call under the store lock (:func:`.store.open_client` does). A store that cannot be
    written (read-only) is left as it is and read without it."""
    if not is_sql(tracking_uri):
        return False
    import sqlalchemy

    engine = sql_engine(tracking_uri)
    with engine.connect() as conn:
        if conn.execute(sqlalchemy.text("SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = :n"),
                        {"n": TAG_INDEX}).first():
            return True
        older = conn.execute(sqlalchemy.text("SELECT 1 FROM tags LIMIT 1")).first() is not None
    say = notice or (lambda text: print(text, file=sys.stderr))
    try:
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f'CREATE INDEX IF NOT EXISTS {TAG_INDEX} ON tags ("key", value)'))
    except sqlalchemy.exc.OperationalError as error:  # read-only: claims and reads still work, by scanning
        say(f"note: tracking store {_shown(tracking_uri)}: cannot add the index that makes claims constant-time "
            f"({str(error.orig)[:120]}); reading it without")
        return False
    if older:
        say(f"note: tracking store {_shown(tracking_uri)}: added an index on run tags (key, value) so that a "
            "cell's runs are found without a scan (once; nothing recorded was changed)")
    return True


def _shown(uri: str) -> str:
    from .uris import redact

    return redact(uri)


class StoreQuery:
    """The narrow reads of one store (``client`` is its ``MlflowClient``). ``sql``: read with SQL
    (default: a SQLite file) or not (False: MLflow's search, which tests compare with);
    ``engine``: the SQLAlchemy engine to read with (a server's own store, :mod:`.server_app`);
    ``remote``: ask a ``prunebench server``'s endpoints first (default: an ``http(s)://`` URI)."""

    #: servers found without the endpoints (said once per process and server)
    _plain_servers: set[str] = set()

    def __init__(self, client: Any, tracking_uri: str, sql: bool | None = None, engine: Any = None,
                 remote: bool | None = None):
        self.client = client
        self.tracking_uri = tracking_uri
        self.engine = engine
        self.sql = (engine is not None or is_sql(tracking_uri)) if sql is None else sql
        self.remote = (is_http(tracking_uri) and sql is None) if remote is None else remote

    # --- which cells are finished: ids only -------------------------------------------

    def finished_cell_ids(self, experiment_id: str) -> set[str]:
        """The ``cell_id`` of every active run of the experiment whose ``status`` is finished."""
        if self.sql:
            rows = self._sql(
                "SELECT DISTINCT c.value FROM runs r "
                "JOIN tags s ON s.run_uuid = r.run_uuid AND s.\"key\" = 'status' AND s.value = :finished "
                "JOIN tags c ON c.run_uuid = r.run_uuid AND c.\"key\" = 'cell_id' "
                "WHERE r.experiment_id = :experiment AND r.lifecycle_stage = 'active'",
                experiment=int(experiment_id), finished=FINISHED)
            return {value for (value,) in rows if value}
        if self.remote and (served := self._ask(CELLS_ENDPOINT, {"experiment_id": experiment_id})) is not None:
            return set(served["cell_ids"])
        return {cell for run in self._search(experiment_id) if (cell := run.data.tags.get("cell_id"))}

    # --- finished runs: the named fields only ----------------------------------------

    def finished_runs(self, experiment_id: str, tags: Collection[str], params: Collection[str],
                      metrics: Collection[str], metric_prefixes: Collection[str] = (),
                      param_prefixes: Collection[str] = ()) -> list[RunRecord]:
        """Every active finished run, newest first (``search_runs``' order): the ``tags`` named,
        the ``params`` named or starting with one of ``param_prefixes``, and the latest value of
        each metric named or starting with one of ``metric_prefixes``. (A server from before
        ``param_prefixes`` ignores them: the params named come back, not the prefixed ones.)"""
        if not self.sql and self.remote:
            served = self._ask(RUNS_ENDPOINT, {"experiment_id": experiment_id, "tags": list(tags),
                                               "params": list(params), "metrics": list(metrics),
                                               "metric_prefixes": list(metric_prefixes),
                                               "param_prefixes": list(param_prefixes)})
            if served is not None:
                return [RunRecord(run_id, start, tags_, params_, {k: float(v) for k, v in metrics_.items()})
                        for run_id, start, tags_, params_, metrics_ in served["runs"]]
        if not self.sql:
            return [RunRecord(run.info.run_id, run.info.start_time, run.data.tags, run.data.params,
                              run.data.metrics) for run in self._search(experiment_id)]
        finished = ("SELECT r.run_uuid FROM runs r JOIN tags s ON s.run_uuid = r.run_uuid AND s.\"key\" = 'status' "
                    "AND s.value = :finished WHERE r.experiment_id = :experiment AND r.lifecycle_stage = 'active'")
        bind = {"experiment": int(experiment_id), "finished": FINISHED}
        records: dict[str, RunRecord] = {}
        for run_uuid, start_time in self._sql(
                "SELECT r.run_uuid, r.start_time FROM runs r JOIN tags s ON s.run_uuid = r.run_uuid "
                "AND s.\"key\" = 'status' AND s.value = :finished "
                "WHERE r.experiment_id = :experiment AND r.lifecycle_stage = 'active' "
                "ORDER BY r.start_time DESC, r.run_uuid", **bind):
            records[run_uuid] = RunRecord(run_uuid, start_time, {}, {}, {})
        for table, keys, key_prefixes in (("tags", tags, ()), ("params", params, param_prefixes)):
            if keys or key_prefixes:
                names, named = _in_list("k", keys or [""])
                prefixed = _prefixed("t", key_prefixes, named)
                into = {run_uuid: getattr(record, table) for run_uuid, record in records.items()}
                for run_uuid, key, value in self._sql(
                        f"SELECT t.run_uuid, t.\"key\", t.value FROM {table} t WHERE (t.\"key\" IN ({names}){prefixed}) "
                        f"AND t.run_uuid IN ({finished})", **bind, **named):
                    into[run_uuid][sys.intern(key)] = value
        names, named = _in_list("m", metrics or [""])
        prefixes = _prefixed("m", metric_prefixes, named)
        for run_uuid, key, value, is_nan in self._sql(
                f"SELECT m.run_uuid, m.\"key\", m.value, m.is_nan FROM latest_metrics m "
                f"WHERE (m.\"key\" IN ({names}){prefixes}) AND m.run_uuid IN ({finished})", **bind, **named):
            records[run_uuid].metrics[sys.intern(key)] = float("nan") if is_nan else value  # as MLflow's entity reads it
        return list(records.values())

    # --- the three ways in -------------------------------------------------------------

    def _sql(self, statement: str, **bind: Any) -> Iterator[tuple]:
        """The rows as the driver returns them (plain tuples: SQLAlchemy's row objects cost more
        than the query at 20,000 runs), a batch at a time: all of them at once were a transient
        gigabyte at 100,000 runs, beside the records built from them. sqlite3 takes the ``:name``
        parameters as they are. Another database (a server's PostgreSQL) gets them through
        SQLAlchemy's ``text``."""
        engine = self.engine if self.engine is not None else sql_engine(self.tracking_uri)
        if engine.dialect.name != "sqlite":
            import sqlalchemy

            with engine.connect() as conn:
                result = conn.execution_options(stream_results=True).execute(sqlalchemy.text(statement), bind)
                while batch := result.fetchmany(SQL_BATCH):
                    yield from (tuple(row) for row in batch)
            return
        conn = engine.raw_connection()
        try:
            cursor = conn.cursor()
            try:
                cursor.execute(statement, bind)
                while batch := cursor.fetchmany(SQL_BATCH):
                    yield from batch
            finally:
                cursor.close()
        finally:
            conn.close()  # back to the pool

    def _ask(self, endpoint: str, body: dict) -> dict | None:
        """The server's answer on ``endpoint``, or None where it has none (a plain ``mlflow
        server``: 404), said once on stderr; the caller then reads through REST search."""
        from mlflow.utils.rest_utils import http_request

        server = self.tracking_uri.rstrip("/")
        if server in self._plain_servers:
            return None
        # the client's own credentials (MLFLOW_TRACKING_USERNAME/TOKEN, TLS options): its REST store's
        creds = self.client._tracking_client.store.get_host_creds()
        response = http_request(creds, endpoint, "POST",
                                json=body, max_retries=2, raise_on_status=False)
        if response.status_code == 200:
            return response.json()
        self._plain_servers.add(server)
        why = ("has no prunebench read endpoint (a plain `mlflow server`)" if response.status_code in (404, 405)
               else f"answered {response.status_code} on the prunebench read endpoint ({response.text[:120]!r})")
        print(f"note: tracking server {_shown(server)} {why}; reading every run through MLflow's REST search "
              "instead (slow at thousands of cells; `prunebench server` serves the narrow read)", file=sys.stderr)
        return None

    def _search(self, experiment_id: str) -> Iterator[Any]:
        token = None
        while True:
            page = self.client.search_runs([experiment_id], filter_string=f"tags.status = '{FINISHED}'",
                                           max_results=PAGE, page_token=token)
            yield from page
            token = page.token
            if not token:
                return


def _prefixed(alias: str, prefixes: Collection[str], named: dict[str, str]) -> str:
    """`` OR substr(alias.key, 1, n) = :p0 ...`` for each prefix, its value bound into ``named``."""
    clauses = []
    for i, prefix in enumerate(prefixes):
        named[f"p{i}"] = prefix
        clauses.append(f" OR substr({alias}.\"key\", 1, {len(prefix)}) = :p{i}")
    return "".join(clauses)


def _in_list(prefix: str, values: Collection[str]) -> tuple[str, dict[str, str]]:
    """``:k0, :k1, ...`` and their bindings, for ``IN (...)``."""
    named = {f"{prefix}{i}": value for i, value in enumerate(values)}
    return ", ".join(f":{name}" for name in named), named


# --- artifact locations (:mod:`.artifact_root`): the two columns MLflow keeps them in, on a
# plain sqlite3 connection the caller holds (and commits)

def experiment_locations(connection: Any) -> list[tuple[str, str]]:
    """(experiment id, artifact location) of every experiment of a SQLite store."""
    return [(str(eid), location or "") for eid, location in
            connection.execute("SELECT experiment_id, artifact_location FROM experiments ORDER BY experiment_id")]


def run_artifact_uris(connection: Any, experiment_id: str | None = None) -> list[tuple[str, str]]:
    """(run id, artifact URI) of the runs of one experiment (of every experiment: None)."""
    if experiment_id is None:
        return [(r, u or "") for r, u in connection.execute("SELECT run_uuid, artifact_uri FROM runs")]
    return [(r, u or "") for r, u in connection.execute("SELECT run_uuid, artifact_uri FROM runs WHERE experiment_id = ?",
                                                        (int(experiment_id),))]


def set_experiment_location(connection: Any, experiment_id: str, location: str, only_without_runs: bool = False) -> None:
    """Set an experiment's artifact location (``only_without_runs``: only while it holds no run)."""
    guard = " AND NOT EXISTS (SELECT 1 FROM runs WHERE runs.experiment_id = experiments.experiment_id)"
    connection.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?"
                       + (guard if only_without_runs else ""), (location, int(experiment_id)))


def set_run_artifact_uri(connection: Any, run_id: str, uri: str) -> None:
    connection.execute("UPDATE runs SET artifact_uri = ? WHERE run_uuid = ?", (uri, run_id))
