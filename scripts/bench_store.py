"""Benchmark: what the tracking store costs the harness at 1k-100k finished cells (results/bench-store.md).

How a store of N real-shaped finished cells is built (``build``):

1. ``template``: the smoke sweep's methods (random, el2n, magnitude, random-weights on
   Fashion-MNIST) at nine ratios plus the reference cell, seed 0 (37 cells, the grid of the issue's
   measurements), are run once for real (``prunebench run``) with the code of ``--template-tree``
   (results/bench-store.md: ba16d62, so that every store is in the format before this change),
   into ``DIR/template/mlflow.db``.
2. For N cells (N/37 seeds), the template database file is copied and, in one SQL transaction
   on MLflow's own tables, each template run is copied once per further seed: a new
   ``runs`` row (new run id, run name and artifact URI), its ``tags`` (``cell_id`` set to the
   copy's cell id, computed by :class:`benchmark.sweeps.cells.Cell` with the seed replaced, and
   ``mlflow.runName``), ``params`` (``seed`` replaced), its whole metric history (``metrics``)
   and ``latest_metrics`` (``test_*`` values moved by a seeded +-0.01 so that seeds differ),
   and its dataset input (``inputs`` + ``input_tags``, pointing at the template's dataset).
   Nothing else is touched: the store is what N real cells would have left, less the artifacts.

Each measurement is a fresh process (``python -m benchmark.cli ...`` with ``PYTHONPATH`` on
the tree measured), its CPU seconds (user + system) and peak RSS from ``wait4``, its wall
seconds from the clock; repeats are interleaved (size by size, tree by tree, command by
command, then again). Commands: ``run`` with nothing to do (every cell finished),
``leaderboard --no-mlflow``, ``publish`` (``leaderboard`` with its summary runs and HTML board
logged to MLflow), ``cell`` (``run --max-cells 1`` of the sweep with its last seed replaced by a
new one, so the same number of cells: one claim and
one real smoke cell, the seed's reference cell, checked finished in the store afterwards),
``validate``, and one claim look-up (``Tracker.runs_of_cell``
of one cell, CPU ms, median of 5 calls after one warm-up, in a process that opened the store).
A tree whose code upgrades a store (adds an index) does so in one warm-up run per store
before the timed repeats; that one-time cost is reported on its own.

    python scripts/bench_store.py build --dir /tmp/bs --sizes 1000 5000 20000 --template-tree /tmp/base
    python scripts/bench_store.py measure --dir /tmp/bs --sizes 1000 5000 20000 --repeats 3 \\
        --tree before=/tmp/base --tree after=. --json results/bench-store.json
    python scripts/bench_store.py report --json results/bench-store.json --out results/bench-store.md

``--server`` measures through a local server per store, by default ``prunebench server``'s app
(MLflow's plus the narrow reads, :mod:`benchmark.sweeps.server_app`), its SQLite file given the
claims' tags index first as ``prunebench server`` does; ``--plain-server``: MLflow's app alone.
``--postgres`` (with ``--server``): the server's store is a PostgreSQL database holding a copy of
the store's rows (``pgcopy`` below), on a PostgreSQL started as the cluster tests start it
(``tests/helpers_cluster.start_postgres``: Debian's ``initdb`` + ``pg_ctl`` on 127.0.0.1); the
database's CPU (postmaster, its backends and the backends it reaped) counts as server CPU.

How a PostgreSQL copy of a store is made (:func:`pgcopy`): MLflow creates its schema in the
new database (``SqlAlchemyStore``, the same MLflow version that wrote the SQLite file: same
alembic head), every table is emptied, and each SQLite table's rows are copied into the
PostgreSQL table of the same name with ``COPY ... FROM STDIN`` (psycopg), columns matched by
name, foreign-key triggers off for the copy (``session_replication_role = replica``); then each
serial column's sequence is set past its largest value and the database is vacuumed and
analysed (``VACUUM (FREEZE, ANALYZE)``, as autovacuum leaves a database that grew run by run;
without it autovacuum does that work during the first measurements, counted as server CPU).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
EXPERIMENT = "bench"
SWEEP = {"name": EXPERIMENT, "profile": "smoke", "ratios": [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9],
         "tasks": ["fashion-mnist"], "methods": ["random", "el2n", "magnitude", "random-weights"]}
CELLS_PER_SEED = 37  # the reference cell and four methods at nine ratios
LIMIT = 20_000  # the sweep cell limit before this issue: a larger sweep says so (max_cells)
COMMANDS = ("run", "leaderboard", "validate", "claim", "cell", "publish", "gc", "stages")
# gc: the pending-cell read alone, with the collector's share of it; stages: the leaderboard's
# steps in one process, each one's CPU seconds and peak resident set (VmHWM, reset between steps)
DEFAULT_COMMANDS = COMMANDS[:6]


def sweep_file(path: Path, seeds: int, extra_seed: int | None = None) -> Path:
    """The store's sweep (seeds 0..seeds-1), with one more seed whose cells are all pending if given."""
    data = {**SWEEP, "seeds": list(range(seeds)) + ([] if extra_seed is None else [extra_seed])}
    if len(data["seeds"]) * CELLS_PER_SEED > LIMIT:
        data["max_cells"] = len(data["seeds"]) * CELLS_PER_SEED
    path.write_text(yaml.safe_dump(data, default_flow_style=True, width=1 << 20))
    return path


def python_env(tree: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": "1",
            "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true"}


# --- building ---------------------------------------------------------------------------

def make_template(out: Path, tree: Path = ROOT) -> Path:
    """The template's cells, run for real once with the code in ``tree``."""
    db = out / "template" / "mlflow.db"
    if db.is_file():
        return db
    db.parent.mkdir(parents=True, exist_ok=True)
    sweep = sweep_file(db.parent / "sweep.yaml", 1)
    subprocess.run([sys.executable, "-m", "benchmark.cli", "run", str(sweep), "--tracking-uri", f"sqlite:///{db}",
                    "--cache-dir", str(db.parent / "cache"), "--quiet"], check=True, env=python_env(tree),
                   cwd=db.parent)
    return db


def template_cells() -> dict[str, object]:
    """cell id -> the seed-0 cells of the template sweep (their ids recomputed per seed)."""
    from benchmark.sweeps.cells import parse_sweep

    sweep = parse_sweep({**SWEEP, "seeds": [0]}, check_data=False)
    return {cell.id: cell for cell in sweep.cells()}


def columns(db: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in db.execute(f"PRAGMA table_info({table})")]


def rows_of(db: sqlite3.Connection, table: str, where: str, value: str) -> tuple[list[str], list[tuple]]:
    names = columns(db, table)
    return names, db.execute(f"SELECT {', '.join(names)} FROM {table} WHERE {where} = ?", (value,)).fetchall()


def build_store(template: Path, out: Path, n_cells: int, seed: int = 0) -> Path:
    """``out/<n>/mlflow.db``: the template copied to ``n_cells`` finished cells (see the module's note)."""
    seeds = n_cells // CELLS_PER_SEED
    target = out / str(n_cells)
    db_path = target / "mlflow.db"
    if db_path.is_file():
        return db_path
    target.mkdir(parents=True, exist_ok=True)
    building = target / "building.db"  # renamed when complete: a half-built store is never reused
    shutil.copyfile(template, building)
    sweep_file(target / "sweep.yaml", seeds)
    cells = template_cells()
    rng = random.Random(seed)
    db = sqlite3.connect(building)
    artifact_root = (target / "mlartifacts").resolve().as_uri()
    db.execute("UPDATE experiments SET artifact_location = ? WHERE name = ?", (artifact_root, EXPERIMENT))
    runs = db.execute("SELECT r.run_uuid, t.value FROM runs r JOIN tags t ON t.run_uuid = r.run_uuid "
                      "AND t.key = 'cell_id'").fetchall()
    assert sorted(c for _, c in runs) == sorted(cells), runs
    for run_uuid, cell_id in runs:
        run_cols, (run_row,) = rows_of(db, "runs", "run_uuid", run_uuid)
        tag_cols, tags = rows_of(db, "tags", "run_uuid", run_uuid)
        param_cols, params = rows_of(db, "params", "run_uuid", run_uuid)
        metric_cols, metrics = rows_of(db, "metrics", "run_uuid", run_uuid)
        latest_cols, latest = rows_of(db, "latest_metrics", "run_uuid", run_uuid)
        input_cols, inputs = rows_of(db, "inputs", "destination_id", run_uuid)
        input_tags = {row[0]: db.execute("SELECT name, value FROM input_tags WHERE input_uuid = ?", (row[0],)).fetchall()
                      for row in inputs}
        cell = cells[cell_id]
        for s in range(1, seeds):
            copy = dataclasses.replace(cell, seed=s)
            new = uuid.uuid4().hex
            name = f"{copy.task}/{copy.label}/r{copy.ratio:g}/s{s}"
            run = dict(zip(run_cols, run_row), run_uuid=new, name=name,
                       artifact_uri=f"{artifact_root}/{new}/artifacts")
            run["start_time"] += s
            run["end_time"] += s
            insert(db, "runs", [run])
            overrides = {"cell_id": copy.id, "mlflow.runName": name}
            insert(db, "tags", [dict(zip(tag_cols, t), run_uuid=new, **({"value": overrides[t[0]]} if t[0] in overrides else {}))
                                for t in tags])
            insert(db, "params", [dict(zip(param_cols, p), run_uuid=new, **({"value": str(s)} if p[0] == "seed" else {}))
                                  for p in params])
            shift = {key: rng.uniform(-0.01, 0.01) for key in {m[0] for m in latest} if key.startswith("test_")}
            insert(db, "metrics", [shifted(dict(zip(metric_cols, m), run_uuid=new), shift) for m in metrics])
            insert(db, "latest_metrics", [shifted(dict(zip(latest_cols, m), run_uuid=new), shift) for m in latest])
            for row in inputs:
                record = dict(zip(input_cols, row), input_uuid=uuid.uuid4().hex, destination_id=new)
                insert(db, "inputs", [record])
                insert(db, "input_tags", [{"input_uuid": record["input_uuid"], "name": k, "value": v}
                                          for k, v in input_tags[row[0]]])
    db.commit()
    found = db.execute("SELECT COUNT(*) FROM runs").fetchone()[0]
    db.close()
    assert found == seeds * CELLS_PER_SEED, (found, n_cells)
    building.rename(db_path)
    return db_path


def shifted(row: dict, shift: dict[str, float]) -> dict:
    if row["key"] in shift:
        row["value"] += shift[row["key"]]
    return row


def insert(db: sqlite3.Connection, table: str, rows: list[dict]) -> None:
    if rows:
        names = list(rows[0])
        db.executemany(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                       [tuple(r[n] for n in names) for r in rows])


# --- measuring --------------------------------------------------------------------------

# The probes run in the tree measured (PYTHONPATH). The installed checkout's import finder would
# supply a module that tree lacks (ba16d62 has no benchmark.sweeps): the old module path is used
# (in later trees an alias of the new one), and the probe checks the code came from the tree.
TRACKER_IMPORT = """
import os, sys, warnings
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from benchmark.tracking import Tracker
_source = sys.modules[Tracker.__module__].__file__
assert _source.startswith(os.environ["PYTHONPATH"]), (_source, os.environ["PYTHONPATH"])
"""

CLAIM_PROBE = TRACKER_IMPORT + """
import json, statistics, sys, time
tracker = Tracker(sys.argv[1], sys.argv[2])
cell_id = sys.argv[3]
assert len(tracker.runs_of_cell(cell_id)) == 1
cpu, wall = [], []
for _ in range(5):
    c, w = time.process_time(), time.perf_counter()
    runs = tracker.runs_of_cell(cell_id)
    cpu.append(time.process_time() - c)
    wall.append(time.perf_counter() - w)
assert len(runs) == 1
print(json.dumps({"cpu_ms": 1000 * statistics.median(cpu), "wall_ms": 1000 * statistics.median(wall)}))
"""


GC_PROBE = TRACKER_IMPORT + """
import gc, json, sys, time
tracker = Tracker(sys.argv[1], sys.argv[2])
began, spent, collections = [0.0], [0.0], [0, 0, 0]
def watch(phase, info):
    if phase == "start":
        began[0] = time.perf_counter()
    else:
        spent[0] += time.perf_counter() - began[0]
        collections[info["generation"]] += 1
gc.callbacks.append(watch)
cpu = time.process_time()
finished = tracker.finished_cell_ids()
cpu = time.process_time() - cpu
gc.callbacks.remove(watch)
print(json.dumps({"read_cpu_s": cpu, "gc_s": spent[0], "gen0": collections[0], "gen1": collections[1],
                  "gen2": collections[2], "cells": len(finished)}))
"""


STAGES_PROBE = """
import json, os, sys, tempfile, time
from pathlib import Path
def kib(field):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
stages, last = [], [time.process_time()]
def stage(name, **extra):
    now = time.process_time()
    stages.append({"stage": name, "cpu_s": now - last[0], "peak_mb": kib("VmHWM") / 1024, "rss_mb": kib("VmRSS") / 1024,
                   **extra})
    Path("/proc/self/clear_refs").write_text("5")  # the next stage's peak starts from the resident set now
    last[0] = time.process_time()
from benchmark.boards.html import render_html
from benchmark.boards.leaderboard import build_board, load_runs
from benchmark.boards.markdown import render_markdown
from benchmark.boards.plots import board_plots
from benchmark.boards.publish import write_files
from benchmark.sweeps.store import open_client
assert sys.modules["benchmark.boards.leaderboard"].__file__.startswith(os.environ["PYTHONPATH"])  # the tree's code
stage("imports")
client = open_client(sys.argv[1])
stage("open the store")
runs = load_runs(sys.argv[1], sys.argv[2], client)
stage("read the finished cells", rows=len(runs), frame_mb=float(runs.memory_usage(deep=True).sum()) / 2**20)
board = build_board(runs, sys.argv[2])
stage("build the board (tables, statistics)")
markdown = render_markdown(board)
stage("markdown")
plots = board_plots(board)
stage("plots", plots=len(plots), png_mb=sum(len(p) for p in plots.values()) / 2**20)
html = render_html(board, plots, None)
stage("HTML", html_mb=len(html.encode()) / 2**20)
write_files(board, markdown, html, plots, Path(tempfile.mkdtemp()))
stage("write the files")
print(json.dumps(stages))
"""


_SERVERS: dict[Path, tuple[str, int]] = {}  # store -> (URL, process group) of its `mlflow server` (--server)
_POSTMASTER: list[int] = []  # the PostgreSQL server's pid (--postgres): its CPU is server CPU too


def pgcopy(db: Path, pg_uri: str) -> None:
    """The rows of the SQLite MLflow store ``db`` into the (new) PostgreSQL database ``pg_uri``
    (password by PGPASSWORD), as the module docstring says."""
    import psycopg
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    SqlAlchemyStore(pg_uri, str(db.parent / "mlartifacts")).engine.dispose()  # MLflow's schema, at its head
    source = sqlite3.connect(db)
    tables = [name for (name,) in source.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                 "AND name NOT IN ('alembic_version', 'sqlite_sequence')")]
    with psycopg.connect(pg_uri.replace("postgresql+psycopg://", "postgresql://")) as pg:
        present = {name for (name,) in pg.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
        tables = [t for t in tables if t in present]
        pg.execute("SET session_replication_role = replica")
        pg.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " CASCADE")
        for table in tables:
            theirs = {name for (name,) in pg.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = %s", (table,))}
            names = [c for c in columns(source, table) if c in theirs]
            listed = ", ".join(f'"{c}"' for c in names)
            with pg.cursor().copy(f'COPY "{table}" ({listed}) FROM STDIN') as copy:
                for row in source.execute(f'SELECT {listed} FROM "{table}"'):
                    copy.write_row(row)
        for table, column in pg.execute("SELECT table_name, column_name FROM information_schema.columns "
                                        "WHERE table_schema = 'public' AND column_default LIKE 'nextval%%'").fetchall():
            pg.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', '{column}'), "
                       f"GREATEST(1, (SELECT COALESCE(MAX(\"{column}\"), 0) FROM \"{table}\")))")
        pg.execute("SET session_replication_role = DEFAULT")
        pg.commit()
        pg.autocommit = True
        # as a database that grew cell by cell would be: vacuumed (visibility map set, tuples frozen)
        # and analysed; else autovacuum does it during the first measurements, in the server's CPU
        pg.execute("VACUUM (FREEZE, ANALYZE)")
    source.close()


def tree_cpu_s(root: int) -> float:
    """CPU seconds of ``root`` (the postmaster), its reaped children (backends that ended) and its live ones."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            pid = int(stat.parent.name)
        except (OSError, ValueError):
            continue
        if pid == root:  # utime stime cutime cstime: fields 11-14 after the name
            total += sum(int(f) for f in fields[11:15])
        elif int(fields[1]) == root:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def server_cpu_s(store: Path) -> float:
    return group_cpu_s(_SERVERS[store][1]) + (tree_cpu_s(_POSTMASTER[0]) if _POSTMASTER else 0.0)


def store_uri(store: Path) -> str:
    return _SERVERS[store][0] if store in _SERVERS else f"sqlite:///{store / 'mlflow.db'}"


def group_cpu_s(group: int) -> float:
    """CPU seconds (user + system) of the live processes of a process group (the server and its workers)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == group:  # fields after the name: state ppid pgrp ... utime(11) stime(12)
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def command_line(what: str, store: Path, scratch: Path) -> list[str]:
    uri = store_uri(store)
    sweep = str(store / "sweep.yaml")
    if what == "run":
        return ["-m", "benchmark.cli", "run", sweep, "--tracking-uri", uri, "--cache-dir", str(scratch / "cache"),
                "--quiet"]
    if what in ("leaderboard", "publish"):  # publish: the summary runs and the HTML board logged to MLflow too
        return ["-m", "benchmark.cli", "leaderboard", "--experiment", EXPERIMENT, "--tracking-uri", uri,
                "--out", str(scratch / "board"), *(["--no-mlflow"] if what == "leaderboard" else [])]
    if what == "cell":
        # the sweep with its last seed replaced by a new one (a number no other measurement used), so
        # that it has as many cells as the store's (ba16d62 refuses more than 20,000): the runner
        # claims that seed's first cell, the reference cell (a real smoke training run), runs it and stops
        extra = sweep_file(scratch / "sweep.yaml", _seeds(store) - 1, extra_seed=10**6 + random.randrange(10**9))
        return ["-m", "benchmark.cli", "run", str(extra), "--tracking-uri", uri, "--cache-dir",
                str(scratch / "cache"), "--max-cells", "1", "--quiet"]
    if what == "validate":
        return ["-m", "benchmark.cli", "validate", sweep]
    if what == "gc":
        return ["-c", GC_PROBE, uri, EXPERIMENT]
    if what == "stages":
        return ["-c", STAGES_PROBE, uri, EXPERIMENT]
    el2n = next(c for c in template_cells().values() if c.method == "el2n" and c.ratio == 0.5)
    middle = dataclasses.replace(el2n, seed=_seeds(store) // 2)
    return ["-c", CLAIM_PROBE, uri, EXPERIMENT, middle.id]


def _check_one_new_cell(store: Path, sweep: Path) -> None:
    """The extra seed's reference cell, and only it, is finished in the store (the measurement ran a cell)."""
    seed = yaml.safe_load(sweep.read_text())["seeds"][-1]
    db = sqlite3.connect(store / "mlflow.db")
    try:
        statuses = db.execute("SELECT s.value FROM params p JOIN tags s ON s.run_uuid = p.run_uuid AND s.key = 'status' "
                              "WHERE p.key = 'seed' AND p.value = ?", (str(seed),)).fetchall()
    finally:
        db.close()
    if statuses != [("finished",)]:
        raise RuntimeError(f"cell on {store}: expected one finished run of seed {seed}, found {statuses}")


def _seeds(store: Path) -> int:
    return len(yaml.safe_load((store / "sweep.yaml").read_text())["seeds"])


def measure_once(what: str, store: Path, tree: Path) -> dict:
    server_cpu = server_cpu_s(store) if store in _SERVERS else None
    with tempfile.TemporaryDirectory() as scratch:
        began = time.perf_counter()
        process = subprocess.Popen([sys.executable, *command_line(what, store, Path(scratch))], cwd=scratch,
                                   env=python_env(tree), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        out, err = process.communicate()
        wall = time.perf_counter() - began
        # the process is reaped by communicate(); its own resource use is in RUSAGE_CHILDREN's delta
        usage = _child_usage.pop(process.pid, None)
        if process.returncode != 0:
            raise RuntimeError(f"{what} on {store} with {tree} exited {process.returncode}:\n{err[-3000:]}")
        if what == "cell" and not _POSTMASTER:
            _check_one_new_cell(store, Path(scratch) / "sweep.yaml")
    result = {"wall_s": wall, "cpu_s": usage["cpu_s"], "peak_mb": usage["peak_mb"]}
    if server_cpu is not None:
        result["server_cpu_s"] = server_cpu_s(store) - server_cpu
        result["total_cpu_s"] = result["cpu_s"] + result["server_cpu_s"]
    if what in ("claim", "gc"):
        result.update(json.loads(out.strip().splitlines()[-1]))
    if what == "stages":
        result["stages"] = json.loads(out.strip().splitlines()[-1])
    return result


_child_usage: dict[int, dict] = {}


def _install_wait4() -> None:
    """Reap children with ``os.wait4`` so each one's own CPU time and peak RSS are known."""
    def try_wait(self, wait_flags):
        pid, status, usage = os.wait4(self.pid, wait_flags)
        if pid == self.pid:
            _child_usage[pid] = {"cpu_s": usage.ru_utime + usage.ru_stime, "peak_mb": usage.ru_maxrss / 1024}
        return pid, status

    subprocess.Popen._try_wait = try_wait


def measure(args: argparse.Namespace) -> None:
    _install_wait4()
    stores = {n: Path(args.dir) / str(n) for n in args.sizes}
    if not args.server:
        return _measure(args, stores)
    from benchmark.sweeps.server import free_port, start_server, stop_server, wait_healthy
    from benchmark.sweeps.store_query import ensure_tag_index

    servers, stop_postgres = [], None
    try:
        if args.postgres:
            sys.path.insert(0, str(ROOT / "tests"))
            from helpers_cluster import start_postgres

            postgres, stop_postgres = start_postgres()
            os.environ["PGPASSWORD"] = postgres.password  # this process's and the servers' (never in argv)
            _POSTMASTER.append(int((postgres.folder / "data" / "postmaster.pid").read_text().split()[0]))
        for n, store in stores.items():  # one server (--workers 1) per store
            if args.postgres:
                began = time.perf_counter()
                uri = postgres.create_database(f"bench{n}")
                pgcopy(store / "mlflow.db", uri)
                print(f"n={n}: rows copied to PostgreSQL in {time.perf_counter() - began:.0f} s", flush=True)
            else:
                uri = f"sqlite:///{store / 'mlflow.db'}"
                if not args.plain_server:
                    ensure_tag_index(uri)  # as `prunebench server` does before it starts
            port = free_port()
            log_dir = Path(tempfile.mkdtemp(prefix="bench-store-server-"))
            server = start_server(log_dir, port, workers=1, backend_store_uri=uri,
                                  artifacts_destination=str(store / "mlartifacts"), narrow_reads=not args.plain_server)
            servers.append(server)
            wait_healthy(f"http://127.0.0.1:{port}", server, timeout=600)
            _SERVERS[store] = (f"http://127.0.0.1:{port}", server.pid)
        _measure(args, stores)
    finally:
        for server in servers:
            stop_server(server)
        if stop_postgres:
            stop_postgres()


def _measure(args: argparse.Namespace, stores: dict[int, Path]) -> None:
    trees = dict(t.split("=", 1) for t in args.tree)
    results: dict = json.loads(Path(args.json).read_text()) if args.json and Path(args.json).is_file() else {}
    results.setdefault("machine", {"python": platform.python_version(), "cpus": os.cpu_count(),
                                   "platform": platform.platform()})
    runs = results.setdefault("runs", [])
    for label, tree in trees.items() if args.warmup else ():  # a store upgrade happens here, timed apart
        for n, store in stores.items():
            if n > LIMIT and label in args.no_large:
                continue
            first = measure_once("run", store, Path(tree))
            runs.append({"tree": label, "n": n, "command": "first-run", **first})
            print(f"{label} n={n} first run: {first}", flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(results, indent=1))
    for repeat in range(args.repeats):
        for n, store in stores.items():
            for label, tree in trees.items():
                for what in args.commands:
                    if what in ("run", "validate", "cell") and n > LIMIT and label in args.no_large:
                        continue
                    result = measure_once(what, store, Path(tree))
                    runs.append({"tree": label, "n": n, "command": what, "repeat": repeat,
                                 "load": os.getloadavg()[0], **result})
                    print(f"{label} n={n} {what} #{repeat}: " + ", ".join(
                        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in result.items()), flush=True)
                    if args.json:
                        Path(args.json).write_text(json.dumps(results, indent=1))


# --- reporting --------------------------------------------------------------------------

def medians(runs: list[dict]) -> dict:
    table: dict = {}
    for run in runs:
        table.setdefault((run["tree"], run["command"], run["n"]), []).append(run)
    out = {}
    for key, group in table.items():
        out[key] = {field: statistics.median(r[field] for r in group) for field in group[0]
                    if isinstance(group[0][field], (int, float)) and field not in ("n", "repeat", "load")} | {"count": len(group)}
    return out


def exponent(points: list[tuple[int, float]]) -> float | None:
    """Least-squares slope of log(value) on log(N)."""
    points = [(n, v) for n, v in points if v > 0]
    if len(points) < 2:
        return None
    xs, ys = [math.log(n) for n, _ in points], [math.log(v) for _, v in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)


SHOWN = {"run": "`run` with nothing to do,", "leaderboard": "`leaderboard --no-mlflow`",
         "publish": "`leaderboard` publishing to MLflow,", "cell": "`run --max-cells 1`: one claim + one smoke cell,",
         "claim": "one claim look-up,"}


def report(args: argparse.Namespace) -> None:
    data = json.loads(Path(args.json).read_text())
    table = medians(data["runs"])
    trees = sorted({t for t, _, _ in table}, key=lambda t: (t != "before", t))
    sizes = sorted({n for _, _, n in table})
    lines = []
    for what, field, unit in (("run", "total_cpu_s", "client + server CPU s"),
                              ("leaderboard", "total_cpu_s", "client + server CPU s"),
                              ("cell", "total_cpu_s", "client + server CPU s"),
                              ("publish", "total_cpu_s", "client + server CPU s"),
                              ("claim", "server_cpu_s", "server CPU s (process, 1 + 6 calls)"),
                              *((what, field, unit) for what in ("run", "leaderboard", "publish", "cell")
                                for field, unit in (("cpu_s", "CPU s"), ("peak_mb", "peak MB"), ("wall_s", "wall s"))),
                              ("validate", "cpu_s", "CPU s"),
                              ("claim", "cpu_ms", "CPU ms"), ("claim", "wall_ms", "wall ms"),
                              ("gc", "read_cpu_s", "pending read alone, CPU s"), ("gc", "gc_s", "of which in gc, s"),
                              ("gc", "gen2", "full collections")):
        for tree in trees:
            cells = [table.get((tree, what, n)) for n in sizes]
            if not any(cells):
                continue
            figures = [f"{c[field]:,.1f}" if c and field in c else "" for c in cells]
            slope = exponent([(n, c[field]) for n, c in zip(sizes, cells) if c and field in c])
            lines.append(f"| {SHOWN.get(what, f'`{what}`')} {unit} | {tree} | " + " | ".join(figures)
                         + f" | {'' if slope is None else f'{slope:.2f}'} |")
    head = "| command | tree | " + " | ".join(f"{n:,}" for n in sizes) + " | growth exponent |"
    print("\n".join([head, "|---|---|" + "---:|" * len(sizes) + "---:|", *lines]))
    stage_table(data["runs"])


def stage_table(runs: list[dict]) -> None:
    """The leaderboard's steps (``stages``): CPU s and peak resident MB of each, per size (last repeat)."""
    last = {(r["tree"], r["n"]): r["stages"] for r in runs if r["command"] == "stages"}
    if not last:
        return
    keys = sorted(last, key=lambda k: (k[0] != "before", k))
    print("\n| step of `leaderboard` | " + " | ".join(f"{tree} {n:,}: CPU s / peak MB" for tree, n in keys) + " |")
    print("|---|" + "---:|" * len(keys))
    for i, step in enumerate(last[keys[0]]):
        print(f"| {step['stage']} | " + " | ".join(
            f"{last[k][i]['cpu_s']:.1f} / {last[k][i]['peak_mb']:,.0f}" for k in keys) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("build")
    p.add_argument("--dir", required=True)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    p.add_argument("--template-tree", default=str(ROOT), help="the source tree that runs the template cells")
    p = sub.add_parser("measure")
    p.add_argument("--dir", required=True)
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 5000, 20000])
    p.add_argument("--tree", action="append", default=[], help="LABEL=PATH of a source tree (repeatable)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--commands", nargs="+", default=list(DEFAULT_COMMANDS), choices=COMMANDS)
    p.add_argument("--no-large", nargs="*", default=["before"],
                   help="trees that refuse sweeps over 20,000 cells (their run, cell and validate are skipped there)")
    p.add_argument("--json", default=None)
    p.add_argument("--server", action="store_true",
                   help="through a local `mlflow server` on each store (its CPU measured too); no validate")
    p.add_argument("--plain-server", action="store_true",
                   help="with --server: MLflow's app alone (no narrow-read endpoints, no index added)")
    p.add_argument("--postgres", action="store_true",
                   help="with --server: each store's rows copied into a PostgreSQL database, the server on it")
    p.add_argument("--no-warmup", dest="warmup", action="store_false",
                   help="no first run per tree and store before the repeats")
    p = sub.add_parser("report")
    p.add_argument("--json", required=True)
    args = parser.parse_args()
    if args.verb == "build":
        template = make_template(Path(args.dir), Path(args.template_tree))
        for n in args.sizes:
            began = time.perf_counter()
            path = build_store(template, Path(args.dir), n)
            print(f"{n} cells: {path} ({path.stat().st_size / 2**20:.0f} MiB, {time.perf_counter() - began:.0f} s)")
    elif args.verb == "measure":
        measure(args)
    else:
        report(args)


if __name__ == "__main__":
    main()
