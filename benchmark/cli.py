"""`prunebench` command line: list | validate | run | status | leaderboard | compare | export | ui | server | download."""
from __future__ import annotations

import argparse
import math
import os
import shlex
import sys
from pathlib import Path

DEFAULT_CACHE = ".prunebench-cache"
STORE_FAULT = 3  # exit status when the tracking store (not a cell) failed


#: `prunebench ui`'s worker processes
UI_WORKERS = 1


def _int_in(low: int, high: int | None = None):
    """An argparse type: an integer in [low, high], else a message naming the value and the range."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(
                f"must be an integer >= {low}" + (f" and <= {high}" if high is not None else "") + f", got {value}")
        return value
    return parse


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number of seconds > 0, got {text!r}")
    return value


def _experiment_name(text: str) -> str:
    from .sweeps.names import name_problem

    problem = name_problem(text, "experiment name")
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return text


def _ui_url(text: str) -> str:
    """An http(s) address of the MLflow UI, or '' for a board without links."""
    from urllib.parse import urlsplit

    parts = urlsplit(text)
    if text and not (parts.scheme in ("http", "https") and parts.hostname and not parts.query and not parts.fragment):
        raise argparse.ArgumentTypeError(f"{text!r} is not the UI's address: give http(s)://HOST[:PORT][/PATH], "
                                         "e.g. http://127.0.0.1:5000, or '' for no links")
    return text.rstrip("/")


def _store_fault(error: Exception) -> int:
    print(f"error: {error}", file=sys.stderr)
    return STORE_FAULT


def _tracking_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tracking-uri", default=None,
                        help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else sqlite:///./mlflow.db)")


def cmd_list(args: argparse.Namespace) -> int:
    from .api.registry import METHODS, TASKS

    if args.what in ("methods", "all"):
        print("methods:")
        entries, errors = METHODS.listing()
        for name, about in entries:
            options = ", ".join(about["options"]) or "-"
            print(f"  {name:16s} family={about['family']:9s} provenance={about['provenance']:15s} options: {options}")
        for name, error in errors.items():
            print(f"  {name:16s} {error}")
    if args.what in ("tasks", "all"):
        print("tasks:")
        entries, errors = TASKS.listing()
        for name, about in entries:
            print(f"  {name:16s} family={about['family']:7s} data={about['data_origin']:9s} "
                  f"metric={about['metric']:14s} profiles: {', '.join(about['profiles'])}")
            if about.get("data_summary"):
                print(f"  {'':16s} {about['data_summary']}")
        for name, error in errors.items():
            print(f"  {name:16s} {error}")
    return 0


def _load_sweep_or_report(path: str):
    """The validated sweep (its warnings printed to stderr), or None after printing every problem."""
    from .sweeps.cells import SweepError, load_sweep

    try:
        sweep = load_sweep(path)
    except SweepError as error:
        print(f"invalid sweep {error}", file=sys.stderr)
        return None
    for warning in sweep.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return sweep


def cmd_validate(args: argparse.Namespace) -> int:
    sweep = _load_sweep_or_report(args.sweep)
    if sweep is None:
        return 2
    from .sweeps.store_query import store_estimate

    cells = sweep.cells()
    print(f"{args.sweep}: valid. {len(cells)} cells "
          f"({len(sweep.tasks)} task(s) x {len(sweep.seeds)} seed(s); reference cells included), "
          f"profile {sweep.profile}, budget {sweep.budget}, experiment {sweep.name!r}; "
          f"store: {store_estimate(len(cells))}")
    if args.cells:
        for cell in cells:
            print(f"  {cell.id}  {cell.display}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    # the progress lines name every cell; MLflow's own "View run at <url>" line per cell is noise
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
    sweep = _load_sweep_or_report(args.sweep)
    if sweep is None:
        return 2
    from .sweeps.claims import ClaimPolicy
    from .sweeps.runner import Terminated, sigterm_as_interrupt
    from .sweeps.store import StoreError, mute_store_error_logs

    try:
        claims = ClaimPolicy(ttl_s=args.claim_ttl, heartbeat_s=args.heartbeat)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    mute_store_error_logs()
    try:
        with sigterm_as_interrupt():
            return _run(args, sweep, claims)
    except StoreError as error:  # one message, not one failed cell after another
        return _store_fault(error)
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM (Terminated): the cell is already closed
        terminated = isinstance(interrupt, Terminated)
        print(f"sweep {'terminated (SIGTERM)' if terminated else 'interrupted'}; finished cells are kept. "
              "Run the same command to resume.", file=sys.stderr)
        return 143 if terminated else 130


def _slurm_plan(args: argparse.Namespace, sweep):
    """(options, one cell's estimate) of the Slurm executor, checked against the cluster; raises
    SlurmError (one line with the fix) before the store is touched or anything submitted."""
    from .api.registry import TASKS
    from .sweeps.slurm_options import SLURM_KEYS, preflight, resolve

    tasks = [TASKS.get(t.name)(sweep.profile, data_dir=t.data_dir, **t.options) for t in sweep.tasks]
    options, estimate = resolve(tasks, sweep.slurm, {k: getattr(args, k) for k in SLURM_KEYS})
    preflight(options, estimate, dry_run=args.dry_run)
    return options, estimate


def _run(args: argparse.Namespace, sweep, claims) -> int:
    from .sweeps.runner import run_sweep
    from .sweeps.tracking import Tracker

    if args.executor == "slurm":
        from .sweeps.slurm_options import SlurmError

        try:
            options, estimate = _slurm_plan(args, sweep)
        except SlurmError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        if args.dry_run:
            from .sweeps.slurm_executor import dry_run, logs_folder
            from .sweeps.tracking import default_tracking_uri

            uri = args.tracking_uri or default_tracking_uri()
            print(dry_run(sweep, options, estimate, logs_folder(uri, args.experiment or sweep.name, args.slurm_logs),
                          args.max_in_flight))
            return 0
    elif args.dry_run:
        print("error: --dry-run goes with --executor slurm (it prints the job script)", file=sys.stderr)
        return 2
    # opened (and the experiment created) here, once, before any runner fans out
    tracker = Tracker(args.tracking_uri, experiment=args.experiment or sweep.name, claims=claims)
    print(f"tracking: {tracker.uri} (experiment {tracker.experiment_name!r})", file=sys.stderr)
    if args.executor == "slurm":
        from .sweeps.slurm_executor import run_sweep_slurm

        try:
            report = run_sweep_slurm(sweep, tracker, options, claims, Path(args.cache_dir), device=args.device,
                                     max_in_flight=args.max_in_flight, logs=args.slurm_logs, wait=not args.no_wait)
        except SlurmError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        if args.no_wait:
            return 0
    elif args.executor == "ray":
        from .sweeps.ray_executor import run_sweep_ray

        report = run_sweep_ray(sweep, tracker, Path(args.cache_dir).resolve(), address=args.address,
                               device=args.device, quiet=args.quiet, max_cells=args.max_cells,
                               max_in_flight=args.max_in_flight)
    else:
        report = run_sweep(sweep, tracker, args.device, Path(args.cache_dir),
                           quiet=args.quiet, max_cells=args.max_cells)
    print(f"finished {len(report.finished)}, failed {len(report.failed)}, skipped (already finished) "
          f"{len(report.skipped)}" + (f", left to other runners {len(report.busy)}" if report.busy else ""),
          file=sys.stderr)
    for cell_id, error in report.failed.items():
        print(f"  failed {cell_id}: {error}", file=sys.stderr)
    if args.leaderboard:
        lb_args = argparse.Namespace(tracking_uri=tracker.tracking_uri, experiment=tracker.experiment_name,
                                     out=args.results_dir, no_mlflow=False)
        cmd_leaderboard(lb_args)
    return 1 if report.failed else 0


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from .boards.publish import LEADERBOARD_EXPERIMENT, build_and_publish
    from .sweeps.tracking import default_tracking_uri

    from .boards.safe_files import UnsafePathError
    from .sweeps.store import StoreError, mute_store_error_logs, redact

    mute_store_error_logs()
    uri = args.tracking_uri or default_tracking_uri()
    from .sweeps.uris import portable_argument

    # as the board records it: no absolute path of this machine (a store under the working directory is relative)
    command = redact("prunebench " + " ".join(shlex.quote(portable_argument(a)) for a in sys.argv[1:]))
    try:
        published = build_and_publish(uri, args.experiment, Path(args.out), command=command,
                                      log_board=not args.no_mlflow, ui_base=getattr(args, "ui_url", None))
    except StoreError as error:
        return _store_fault(error)
    except UnsafePathError as error:  # a link planted in --out: nothing written through it
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(published.markdown)
    for path in published.files[:2]:
        print(f"written: {path}", file=sys.stderr)
    if len(published.files) > 2:
        print(f"written: {len(published.files) - 2} plot(s) in {published.files[2].parent}", file=sys.stderr)
    if published.mlflow_run_id:
        summary = published.summary
        print(f"logged to MLflow: the board's files in experiment {LEADERBOARD_EXPERIMENT!r}, run "
              f"{published.mlflow_run_id}; on experiment {args.experiment!r}: its description and "
              f"{summary.created + summary.updated} summary runs ({summary.created} new, {summary.updated} "
              f"updated, {summary.removed} removed)", file=sys.stderr)
        served = "" if uri.startswith(("http://", "https://")) else (
            f" (with `prunebench ui --tracking-uri {redact(uri)}` running)")
        print(f"MLflow view{served}: {published.ui_url}", file=sys.stderr)
    return 0


def _finished_runs(args: argparse.Namespace):
    """The experiment's finished cells as the board reads them (exits with a message if none)."""
    from .boards.leaderboard import load_runs
    from .sweeps.tracking import default_tracking_uri

    return load_runs(args.tracking_uri or default_tracking_uri(), args.experiment)


def cmd_status(args: argparse.Namespace) -> int:
    sweep = _load_sweep_or_report(args.sweep)
    if sweep is None:
        return 2
    from .sweeps.claims import ClaimPolicy
    from .sweeps.status import render_status, sweep_states
    from .sweeps.store import StoreError, mute_store_error_logs
    from .sweeps.store import guarded, open_client, redact
    from .sweeps.tracking import default_tracking_uri, runs_by_cell

    mute_store_error_logs()
    uri, name = args.tracking_uri or default_tracking_uri(), args.experiment or sweep.name
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).exists():
        print(f"{args.sweep}: no store at {redact(uri)} yet: every cell is pending")
        print(render_status(sweep_states(sweep.cells(), {}, ClaimPolicy()), limit=args.limit))
        return 0
    try:  # read-only: no experiment is created for a sweep that never ran
        client = open_client(uri)
        found = guarded(uri, f"cannot open experiment {name!r}", lambda: client.get_experiment_by_name(name))
        runs = guarded(uri, "cannot list the sweep's runs",
                       lambda: runs_by_cell(client, found.experiment_id)) if found is not None else {}
    except StoreError as error:
        return _store_fault(error)
    policy = ClaimPolicy(ttl_s=args.claim_ttl, heartbeat_s=min(30.0, args.claim_ttl / 2))
    print(f"{args.sweep}: experiment {name!r} at {redact(uri)}" + ("" if found else " (not created yet)"))
    print(render_status(sweep_states(sweep.cells(), runs, policy), limit=args.limit))
    if found is not None:  # submitted through `--executor slurm`: the job array's tasks too
        from .sweeps.slurm_executor import array_status

        if line := array_status(found.tags):
            print(line)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from .boards.compare import compare_lines, task_of

    runs = _finished_runs(args)
    try:
        lines = compare_lines(runs, task_of(runs, args.task), args.ratio, args.a, args.b)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print("\n".join(lines))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .boards.export import export
    from .boards.leaderboard import build_board

    board = build_board(_finished_runs(args), args.experiment)
    for path in export(board, Path(args.out), args.format):
        print(f"written: {path}", file=sys.stderr)
    return 0


def cmd_ui(args: argparse.Namespace) -> int:
    from .boards.in_mlflow import sweep_views
    from .sweeps.server import forwarding_signals, mlflow_child, start_foreground, wait_healthy, wait_stopping
    from .sweeps.store import StoreError, redact
    from .sweeps.tracking import default_tracking_uri

    uri = args.tracking_uri or default_tracking_uri()
    # the URI goes in the child's environment, not in `ps`
    child = mlflow_child("ui", uri, args.host, args.port, workers=args.workers)
    base = f"http://{args.host}:{args.port}"
    print(f"starting the MLflow UI for {redact(uri)} ...", file=sys.stderr)
    # read before the server starts (this opens, and if need be creates, the store under its
    # lock: two processes must not migrate a new SQLite file at once); printed once it answers
    try:
        views = sweep_views(uri, base)
    except StoreError as error:
        return _store_fault(error)
    except KeyboardInterrupt:
        return 130
    process = start_foreground(child)
    with forwarding_signals(process) as received:  # SIGTERM / Ctrl-C stop the UI too
        try:
            wait_healthy(base, process, timeout=args.start_timeout)
            if process.poll() is not None:  # another server answered on that port
                raise RuntimeError(f"the MLflow UI exited; is port {args.port} taken? (--port)")
        except RuntimeError as error:
            if received:  # stopped while starting
                return wait_stopping(process, received)
            print(f"error: {error}", file=sys.stderr)
            return process.poll() or 1
        print(f"MLflow UI on {base} (Ctrl-C to stop)", file=sys.stderr)
        # MLflow 3.17 keeps the GenAI | Model training choice in the browser only (default GenAI)
        print(f"  first visit: open {base} and click 'Model training' in the sidebar once, or run pages "
              "open in MLflow's GenAI layout", file=sys.stderr)
        for name, url in views:
            print(f"  {name}: {url}", file=sys.stderr)
        return wait_stopping(process, received)


def cmd_server(args: argparse.Namespace) -> int:
    from .sweeps.server import forwarding_signals, server_command, server_env, start_foreground, wait_stopping
    from .sweeps.store import redact

    if args.backend_store_uri and redact(args.backend_store_uri) != args.backend_store_uri:
        print("warning: a password in --backend-store-uri is visible in the process list while this command "
              "runs; give it by PGPASSWORD (MYSQL_PWD) or --password-file instead", file=sys.stderr)
    try:
        store_uri, env = server_env(args.backend_store_uri, args.password_file)
    except (OSError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    child = server_command(args.dir, args.host, args.port, args.workers, store_uri, args.artifacts_destination)
    child.env.update({k: v for k, v in env.items() if os.environ.get(k) != v})  # a password moved out of the URI
    Path(args.dir).mkdir(parents=True, exist_ok=True)
    store, artifacts = child.store, child.artifacts
    from .sweeps.store import StoreError, open_client
    from .sweeps.store_query import is_sql

    if is_sql(store):  # created, migrated and given the claims' tags index before the server opens it
        try:
            open_client(store)
        except StoreError as error:
            return _store_fault(error)
    print(f"MLflow tracking server on http://{args.host}:{args.port} (store {redact(store)}, "
          f"artifacts {redact(artifacts)}); "
          f"point runners at it with --tracking-uri http://{args.host}:{args.port}. Ctrl-C to stop.", file=sys.stderr)
    process = start_foreground(child)  # the store URI in its environment, not in `ps`
    with forwarding_signals(process) as received:  # SIGTERM / Ctrl-C stop the server and its workers
        return wait_stopping(process, received)


def _task_option(text: str) -> tuple[str, object]:
    """``KEY=VALUE`` of ``--task-option``, the value read as YAML (``c4`` a string, ``3`` a number)."""
    import yaml

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--task-option takes KEY=VALUE (a task option of the sweep file), got {text!r}")
    return key, yaml.safe_load(value)


def cmd_download(args: argparse.Namespace) -> int:
    from .api.registry import RegistryError, get_task

    try:
        task_cls = get_task(args.task)
    except RegistryError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if not hasattr(task_cls, "download"):
        what = task_cls.data_summary or "its data ships in a package or is simulated"
        print(f"error: task {args.task!r} has no download: {what}; see docs/data.md", file=sys.stderr)
        return 2
    if args.dir is None and not getattr(task_cls, "download_to_cache", False):
        print(f"error: give the destination folder: prunebench download {args.task} DIR", file=sys.stderr)
        return 2
    try:
        options = dict(_task_option(text) for text in args.task_option)
        message = task_cls(**options).download(Path(args.dir) if args.dir else None)
    except TypeError as error:  # an option the task does not take
        print(f"error: task {args.task!r}: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as error:  # offline, a bad file (deleted), a data format problem
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(message)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="prunebench", description="Benchmark data- and model-pruning methods; track cells in MLflow.")
    from .version import __version__

    parser.add_argument("--version", action="version", version=f"prunebench {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list registered methods and tasks")
    p.add_argument("what", nargs="?", choices=("all", "methods", "tasks"), default="all")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("validate", help="check a sweep file without running anything")
    p.add_argument("sweep", help="sweep file (.yaml or .toml)")
    p.add_argument("--cells", action="store_true", help="also print every cell with its id")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("run", help="run a sweep's unfinished cells (finished ones are skipped)",
                       epilog="exit status: 0 every cell finished; 1 some cell failed; 2 invalid sweep or option; "
                              f"{STORE_FAULT} the tracking store failed (one message names it and the fix); "
                              "130 Ctrl-C; 143 SIGTERM (the running cell is marked interrupted)")
    p.add_argument("sweep", help="sweep file (.yaml or .toml)")
    _tracking_arg(p)
    p.add_argument("--experiment", default=None, type=_experiment_name,
                   help="MLflow experiment (default: the sweep's name)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N | mps (default: auto)")
    p.add_argument("--cache-dir", default=os.environ.get("PRUNEBENCH_CACHE", DEFAULT_CACHE),
                   help=f"where method scores are cached (default: $PRUNEBENCH_CACHE or {DEFAULT_CACHE})")
    p.add_argument("--max-cells", type=_int_in(1), default=None, help="run at most this many pending cells (>= 1)")
    p.add_argument("--leaderboard", action="store_true", help="print and write the leaderboard afterwards")
    p.add_argument("--results-dir", default="results", help="where --leaderboard writes (default: results)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--executor", choices=("local", "ray", "slurm"), default="local",
                   help="local: cells one after another in this process (default); ray: each cell a Ray task "
                        "with its profile's resources (pip install 'prunebench[ray]'); slurm: a job array "
                        "whose tasks claim and run cells, requeued on preemption (pip install 'prunebench[slurm]')")
    p.add_argument("--address", default=None,
                   help="with --executor ray: the cluster to join ('auto', or ray://HOST:10001); "
                        "default: start a local Ray instance, listening on 127.0.0.1 only")
    p.add_argument("--max-in-flight", type=_int_in(1), default=None,
                   help="with --executor ray: cells claimed and submitted at once (default: the cluster's CPUs); "
                        "with --executor slurm: array tasks running at once (%%N; default: one per unfinished cell)")
    slurm = p.add_argument_group("with --executor slurm (override the task's recipe and the sweep's 'slurm:' keys)")
    slurm.add_argument("--partition", default=None)
    slurm.add_argument("--account", default=None)
    slurm.add_argument("--qos", default=None)
    slurm.add_argument("--time", default=None,
                       help="time limit per array task: minutes, HH:MM:SS or D-HH:MM (default: twice one cell's "
                            "estimate for the profile; a task reaching it is requeued)")
    slurm.add_argument("--cpus-per-task", dest="cpus_per_task", type=_int_in(1), default=None)
    slurm.add_argument("--gpus-per-task", dest="gpus_per_task", type=_int_in(0), default=None)
    slurm.add_argument("--mem", default=None, help="memory per task, e.g. 8G")
    slurm.add_argument("--slurm-logs", default=None,
                       help="folder for every task's log (default: slurm-logs/EXPERIMENT beside a SQLite store, "
                            "else in the working directory; it must be on a file system the nodes share)")
    slurm.add_argument("--dry-run", action="store_true", help="print the job script and resources; submit nothing")
    slurm.add_argument("--no-wait", action="store_true",
                       help="submit and return (default: wait, printing pending / running / done tasks)")
    p.add_argument("--claim-ttl", type=_positive_seconds, default=600.0,
                   help="seconds without a heartbeat after which another runner's claim on a cell is dead "
                        "and the cell runs again (default: 600)")
    p.add_argument("--heartbeat", type=_positive_seconds, default=30.0,
                   help="seconds between a running cell's heartbeats (default: 30)")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("status", help="where a sweep stands: finished, running, failed and pending cells (read-only)")
    p.add_argument("sweep", help="sweep file (.yaml or .toml)")
    _tracking_arg(p)
    p.add_argument("--experiment", default=None, type=_experiment_name,
                   help="MLflow experiment (default: the sweep's name)")
    p.add_argument("--claim-ttl", type=_positive_seconds, default=600.0,
                   help="seconds without a heartbeat after which a running cell counts as pending (default: 600, "
                        "as run's)")
    p.add_argument("--limit", type=_int_in(1), default=20, help="cells listed per state (default: 20)")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("leaderboard", help="aggregate finished cells from MLflow into tables, plots and HTML")
    _tracking_arg(p)
    p.add_argument("--experiment", required=True, type=_experiment_name, help="MLflow experiment (the sweep's name)")
    p.add_argument("--out", default="results",
                   help="directory for EXPERIMENT.md, EXPERIMENT.html and EXPERIMENT-plots/ (default: results)")
    p.add_argument("--no-mlflow", action="store_true",
                   help="write nothing to MLflow (by default: the experiment's description and summary runs, "
                        "and the board's files as its run of the experiment 'leaderboards')")
    p.add_argument("--ui-url", default=None, type=_ui_url,
                   help="the MLflow UI's address, for the HTML board's links to each row's summary run and cells "
                        "(default: the tracking server's, else what `prunebench ui` prints, http://127.0.0.1:5000; "
                        "'' for no links)")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("compare", help="two method labels at one ratio: seeds, means, paired difference and p-value")
    _tracking_arg(p)
    p.add_argument("--experiment", required=True, type=_experiment_name, help="MLflow experiment (the sweep's name)")
    p.add_argument("--task", default=None, help="the task (default: the experiment's only task)")
    p.add_argument("--ratio", type=float, required=True, help="the ratio both labels ran at")
    p.add_argument("a", help="method label")
    p.add_argument("b", help="method label to compare against")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("export", help="write the finished cells and the board's tables as CSV, JSON or parquet",
                       description="One row per finished cell (identity, metrics, realised figures, costs, "
                                   "provenance) and one per board row, with a schema version; docs/export.md.")
    _tracking_arg(p)
    p.add_argument("--experiment", required=True, type=_experiment_name, help="MLflow experiment (the sweep's name)")
    p.add_argument("--format", choices=("csv", "json", "parquet"), default="csv")
    p.add_argument("--out", default="results/export", help="directory to write into (default: results/export)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("server", help="start a shared MLflow tracking server for several runners (127.0.0.1)")
    p.add_argument("--dir", default="mlflow-server",
                   help="where the default SQLite store and artifacts live (default: ./mlflow-server)")
    p.add_argument("--backend-store-uri", default=None,
                   help="e.g. postgresql://user@host:5432/db, the multi-runner set-up (pip install "
                        "'prunebench[postgres]'); password by PGPASSWORD, ~/.pgpass or --password-file, never "
                        "here (default: sqlite:///DIR/mlflow.db)")
    p.add_argument("--password-file", default=None,
                   help="a file whose first line is the database password (passed to the server by environment)")
    p.add_argument("--artifacts-destination", default=None, help="artifact root (default: DIR/mlartifacts)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface to listen on (default 127.0.0.1; 0.0.0.0 to serve a cluster)")
    p.add_argument("--port", type=_int_in(1, 65535), default=5000)
    p.add_argument("--workers", type=_int_in(1, 256), default=2, help="server worker processes (default: 2)")
    p.set_defaults(func=cmd_server)

    p = sub.add_parser("ui", help="start the MLflow UI on the same store (127.0.0.1)")
    _tracking_arg(p)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=_int_in(1, 65535), default=5000)
    # one worker: the UI serves one reader, and `mlflow ui`'s own default of 4 workers each import
    # MLflow's server at start, which on a busy 2-core machine kept /health unanswered for minutes
    p.add_argument("--workers", type=_int_in(1, 256), default=UI_WORKERS,
                   help=f"UI worker processes (default: {UI_WORKERS}; MLflow's own default is 4)")
    p.add_argument("--start-timeout", type=_positive_seconds, default=120.0,
                   help="seconds to wait for the UI to answer before giving up (default: 120)")
    p.set_defaults(func=cmd_ui)

    p = sub.add_parser("download", help="download a task's public data (needs internet)",
                       description="Fetch a task's public data once: files into DIR, checked on arrival (CIFAR, "
                                   "Fashion-MNIST, CWRU, HumanEval); hub data sets (GLUE, rotten-tomatoes, alpaca) "
                                   "into the Hugging Face cache ($HF_HOME), or DIR if given, so that later runs "
                                   "work offline. $PRUNEBENCH_DOWNLOAD_MIRROR=URL fetches files from a mirror.")
    p.add_argument("task")
    p.add_argument("dir", nargs="?", default=None,
                   help="destination folder (files); for hub data sets an optional cache folder")
    p.add_argument("--task-option", action="append", default=[], metavar="KEY=VALUE",
                   help="a task option as in the sweep file, e.g. calibration=c4 (the C4 calibration shard)")
    p.set_defaults(func=cmd_download)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # argparse would blame the top-level command; the sub-command's usage is what helps
        subcommands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        subcommands.choices[args.command].error(f"unrecognized arguments: {' '.join(unknown)}")
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
