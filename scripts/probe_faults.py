"""Probe the harness with faults and hostile input; write the outcomes to results/faults.md.

    python scripts/probe_faults.py [--trials 5] [--out results/faults.md]

Every probe works in a fresh temporary folder, on real parts: real ``prunebench`` processes
(``validate``, ``run``, ``leaderboard``), a real SQLite MLflow store or a real
``mlflow server``, data files written in their real formats. A probe *holds* when the harness
refuses the input or survives the fault with a clear message and nothing recorded is lost;
the table shows what the harness said. Fault injections work as root too (chmod does not
stop root): the artifact folder is replaced by a plain file, the store file is made
immutable with ``chattr +i`` (skipped where the file system has no such attribute).
"""
from __future__ import annotations

import argparse
import gzip
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

PROBES = []


def probe(fault: str, command: str):
    def register(function):
        PROBES.append((fault, command, function))
        return function
    return register


def prunebench(*args: str, cwd: Path, env: dict | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
                   **(env or {})}
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], cwd=cwd, env=environment,
                          capture_output=True, text=True, timeout=timeout)


def start(*args: str, cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "benchmark.cli", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def said(result, needle: str | None = None) -> str:
    """The line of ``result``'s output that holds ``needle`` (else the last non-empty line), cut short."""
    text = result if isinstance(result, str) else (result.stdout or "") + (result.stderr or "")
    lines = [line.strip() for line in text.splitlines() if line.strip() and "INFO mlflow" not in line]
    chosen = next((line for line in lines if needle and needle in line), lines[-1] if lines else "(no output)")
    return chosen[:400]


def sweep_file(directory: Path, name: str = "probe", methods=("random",), ratios=(0.5,), seeds=(0,), size: int = 28,
               **task_options) -> Path:
    from tasks.vision.fashion_mnist import write_synthetic

    data = write_synthetic(directory / "data", size=size)
    task = {"name": "fashion-mnist", "data_dir": str(data), "options": {"epochs": 1, **task_options}}
    path = directory / "sweep.yaml"
    path.write_text(yaml.safe_dump({"name": name, "profile": "smoke", "seeds": list(seeds), "ratios": list(ratios),
                                    "tasks": [task], "methods": list(methods)}, width=10**9))
    return path


def sweep_with(directory: Path, **changes) -> Path:
    base = yaml.safe_load(sweep_file(directory).read_text())
    base.update(changes)
    path = directory / "sweep.yaml"
    path.write_text(yaml.safe_dump(base, width=10**9))
    return path


def statuses(uri: str, experiment: str) -> list[str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    return sorted(r.data.tags.get("status", "?") for r in client.search_runs([found.experiment_id]))


def refused(result, needle: str) -> tuple[bool, str]:
    """Held if the command exited non-zero with ``needle`` in what it said, and no traceback."""
    text = result.stdout + result.stderr
    held = result.returncode != 0 and needle in text and "Traceback" not in text
    return held, f"exit {result.returncode}: {said(result, needle)}"


# --- the store ---------------------------------------------------------------------------------


def race(tmp: Path, runners: int, trials: int) -> tuple[bool, str]:
    sweep = sweep_file(tmp)
    crashes, bad_stores = 0, 0
    for trial in range(trials):
        uri = f"sqlite:///{tmp}/trial-{trial}/mlflow.db"
        (tmp / f"trial-{trial}").mkdir()
        processes = [start("run", str(sweep), "--tracking-uri", uri, "--cache-dir", str(tmp / "c"), "--quiet", cwd=tmp)
                     for _ in range(runners)]
        for process in processes:
            process.communicate(timeout=600)
            crashes += process.returncode != 0
        try:
            bad_stores += statuses(uri, "probe").count("finished") != 2
        except Exception:
            bad_stores += 1
    return crashes == 0 and bad_stores == 0, (f"{trials} trials x {runners} runners: {crashes} crashed, "
                                              f"{bad_stores} store(s) unusable or with a cell not finished once")


@probe("two `prunebench run` started at once on a NEW SQLite store", "2 x `prunebench run tiny.yaml --tracking-uri sqlite:///NEW.db`, N trials")
def two_runners(tmp, trials):
    return race(tmp, 2, trials)


@probe("four `prunebench run` started at once on a NEW SQLite store", "4 x `prunebench run tiny.yaml --tracking-uri sqlite:///NEW.db`, N trials")
def four_runners(tmp, trials):
    return race(tmp, 4, trials)


@probe("the artifact folder is replaced by a plain file mid-sweep, then a cell fails (works as root)",
       "`prunebench run` in-process, a test method that breaks `mlartifacts/` and raises at ratio 0.5")
def artifacts_broken(tmp, trials):
    import contextlib
    import io

    import torch

    from benchmark import cli
    from benchmark.api.method import DataPruner
    from benchmark.api.registry import register_method

    @register_method("probe-breaks-artifacts")
    class BreaksArtifacts(DataPruner):
        def prepare(self, context) -> None:
            if self.ratio == 0.5:
                shutil.rmtree(tmp / "mlartifacts", ignore_errors=True)
                (tmp / "mlartifacts").write_text("not a folder")
                raise RuntimeError("cell fault while the artifact store is broken")

        def on_epoch_start(self, state):
            return torch.arange(self.n_keep(state.n_train))

    sweep = sweep_file(tmp, methods=["probe-breaks-artifacts"], ratios=[0.3, 0.5, 0.7])
    uri = f"sqlite:///{tmp}/mlflow.db"
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["run", str(sweep), "--tracking-uri", uri, "--cache-dir", str(tmp / "c"), "--quiet"])
    errors = [line for line in err.getvalue().splitlines() if line.startswith("error:")]
    states = statuses(uri, "probe")
    held = code == cli.STORE_FAULT and len(errors) == 1 and "running" not in states
    return held, f"exit {code}, cells {states}: {errors[0][:400] if errors else err.getvalue()[-300:]}"


@probe("a read-only store (`chattr +i mlflow.db`: read-only even for root)", "`prunebench run tiny.yaml` on it")
def read_only(tmp, trials):
    from benchmark.sweeps.tracking import Tracker

    sweep = sweep_file(tmp, ratios=[0.3, 0.5])
    uri = f"sqlite:///{tmp}/mlflow.db"
    Tracker(uri, "probe")
    db = tmp / "mlflow.db"
    if subprocess.run(["chattr", "+i", str(db)], capture_output=True).returncode != 0:
        return None, "skipped: this file system has no immutable attribute"
    try:
        result = prunebench("run", str(sweep), "--tracking-uri", uri, "--quiet", cwd=tmp)
    finally:
        subprocess.run(["chattr", "-i", str(db)])
    lines = len((result.stdout + result.stderr).splitlines())
    held, outcome = refused(result, "tracking store")
    return held and lines < 15 and not statuses(uri, "probe"), f"{outcome} ({lines} lines of output)"


@probe("tracking server unreachable (nothing on the port), password in the URI",
       "`MLFLOW_HTTP_REQUEST_MAX_RETRIES=0 prunebench run tiny.yaml --tracking-uri http://alice:SECRET@127.0.0.1:PORT`")
def unreachable(tmp, trials):
    from benchmark.sweeps.server import free_port

    sweep = sweep_file(tmp)
    result = prunebench("run", str(sweep), "--tracking-uri", f"http://alice:SECRET@127.0.0.1:{free_port()}", cwd=tmp,
                        env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "3"})
    held, outcome = refused(result, "tracking store")
    return held and "SECRET" not in result.stdout + result.stderr, outcome


@probe("the SQLite store path is a folder", "`prunebench run tiny.yaml --tracking-uri sqlite:///DIR`")
def store_is_folder(tmp, trials):
    (tmp / "adir").mkdir()
    return refused(prunebench("run", str(sweep_file(tmp)), "--tracking-uri", f"sqlite:///{tmp}/adir", cwd=tmp),
                   "tracking store")


@probe("a tracking URI of an unknown scheme", "`prunebench run tiny.yaml --tracking-uri foo://bar`")
def unknown_scheme(tmp, trials):
    return refused(prunebench("run", str(sweep_file(tmp)), "--tracking-uri", "foo://bar", cwd=tmp), "tracking store")


@probe("SIGTERM (Slurm, Kubernetes) mid-sweep", "`prunebench run` (16 cells), `kill -TERM` after the first cell")
def sigterm(tmp, trials):
    # cells of a few seconds each, so that the signal finds the sweep inside one
    sweep = sweep_file(tmp, ratios=[0.3, 0.5, 0.7], seeds=[0, 1, 2, 3], epochs=40)
    uri = f"sqlite:///{tmp}/mlflow.db"
    process = start("run", str(sweep), "--tracking-uri", uri, "--cache-dir", str(tmp / "c"), cwd=tmp)
    deadline = time.time() + 300
    while time.time() < deadline:
        try:
            if "finished" in statuses(uri, "probe"):
                break
        except Exception:
            pass
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    began = time.time()
    output = process.communicate(timeout=120)[0]
    states = statuses(uri, "probe")
    held = process.returncode == 143 and "running" not in states
    return held, (f"exit {process.returncode} after {time.time() - began:.1f}s, cells {states}: "
                  f"{said(output, 'terminated')}")


# --- claims and experiments ----------------------------------------------------------------------


def stuck_claim(tmp: Path, heartbeat: str) -> tuple[bool, str]:
    from benchmark.sweeps.cells import Cell
    from benchmark.sweeps.tracking import Tracker

    tracker = Tracker(f"sqlite:///{tmp}/mlflow.db", "probe")
    cell = Cell("fashion-mnist", "random", 0.5, 0, "smoke", label="random")
    stuck = tracker.start_cell(cell, "probe", {}, {})
    tracker.client.set_tag(stuck.run_id, "heartbeat", heartbeat)
    tracker.client.set_tag(stuck.run_id, "claim_host", "another-host")
    run = tracker.try_claim(cell, "probe", {}, {})
    if run is None:
        return False, "the cell was left to the impossible claim: it would never run again"
    run.finish({})
    return True, f"the claim was judged dead and closed; the cell ran again (runs: {statuses(tracker.tracking_uri, 'probe')})"


for _beat, _what in (("inf", "`inf`"), ("nan", "`nan`"), (f"{time.time() + 86400:.0f}", "a day in the future"),
                     ("garbage", "not a number")):
    probe(f"a claim whose heartbeat is {_what}", "`Tracker.try_claim` on the cell")(
        lambda tmp, trials, beat=_beat: stuck_claim(tmp, beat))


@probe("sweep named like a DELETED experiment", "`mlflow` delete, then `prunebench run tiny.yaml`")
def deleted_experiment(tmp, trials):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp}/mlflow.db"
    client = MlflowClient(uri)
    client.delete_experiment(client.create_experiment("probe"))
    return refused(prunebench("run", str(sweep_file(tmp)), "--tracking-uri", uri, cwd=tmp), "restore")


@probe("sweep named like another tool's experiment", "another tool's run in `probe`, then `prunebench run tiny.yaml`")
def foreign_experiment(tmp, trials):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp}/mlflow.db"
    client = MlflowClient(uri)
    client.create_run(client.create_experiment("probe"), tags={"status": "finished"})
    return refused(prunebench("run", str(sweep_file(tmp)), "--tracking-uri", uri, cwd=tmp), "not made by prunebench")


@probe("leaderboard of an experiment holding another tool's finished run",
       "`prunebench leaderboard --experiment probe --no-mlflow`")
def foreign_runs_on_board(tmp, trials):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp}/mlflow.db"
    done = prunebench("run", str(sweep_file(tmp)), "--tracking-uri", uri, "--quiet", "--cache-dir", str(tmp / "c"),
                      cwd=tmp)
    client = MlflowClient(uri)
    client.create_run(client.get_experiment_by_name("probe").experiment_id, tags={"status": "finished"})
    result = prunebench("leaderboard", "--tracking-uri", uri, "--experiment", "probe", "--no-mlflow", "--out",
                        str(tmp / "out"), cwd=tmp)
    held = done.returncode == 0 and result.returncode == 0 and "from 2 finished cells" in result.stdout
    return held, f"exit {result.returncode}: {said(result, 'finished cells')}"


# --- caches ---------------------------------------------------------------------------------------


def el2n_cache(tmp: Path, corrupt) -> tuple[bool, str]:
    import contextlib
    import io

    import torch

    from benchmark.training.context import RunContext
    from benchmark.api.registry import get_method
    from tasks.vision.fashion_mnist import FashionMNIST, write_synthetic

    task = FashionMNIST("smoke", data_dir=str(write_synthetic(tmp / "data")), epochs=1)
    splits = task.load_splits()

    def prepare():
        method = get_method("el2n")(0.5, 0, proxy_runs=1, score_epochs=1)
        method.prepare(RunContext(task=task, splits=splits, device=torch.device("cpu"), seed=0, cache_dir=tmp / "c"))
        return method

    first = prepare()
    [path] = list((tmp / "c" / "el2n").glob("*.pt"))
    corrupt(path)
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            again = prepare()
    except Exception as error:
        return False, f"{type(error).__name__}: {str(error)[:300]}"
    held = torch.equal(again.scores, first.scores) and str(path) in err.getvalue()
    return held, said(err.getvalue(), "invalid").replace(str(tmp), "TMP")


def _edit_entry(change):
    def corrupt(path):
        import torch

        entry = torch.load(path, weights_only=True)
        entry = change(entry)
        torch.save(entry, path)
    return corrupt


for _what, _corrupt in (
        ("10 scores for 180 samples", _edit_entry(lambda e: {**e, "scores": e["scores"][:10]})),
        ("a NaN score", _edit_entry(lambda e: {**e, "scores": e["scores"].index_fill(0, __import__("torch").tensor([3]),
                                                                                    float("nan"))})),
        ("`seconds = -1e9`", _edit_entry(lambda e: {**e, "seconds": -1e9})),
        ("another key's entry", _edit_entry(lambda e: {**e, "key": "{'task': 'other'}"})),
        ("a list, not an entry", _edit_entry(lambda e: [1, 2, 3])),
        ("truncated to 100 bytes", lambda p: p.write_bytes(p.read_bytes()[:100])),
        ("500 random bytes", lambda p: p.write_bytes(os.urandom(500)))):
    probe(f"EL2N score cache holding {_what}", "`EL2N.prepare` reading the cache (a later cell of the sweep)")(
        lambda tmp, trials, corrupt=_corrupt: el2n_cache(tmp, corrupt))


def token_cache(tmp: Path, bad) -> tuple[bool, str]:
    import contextlib
    import io

    import torch
    from transformers import BertTokenizerFast

    os.environ["PRUNEBENCH_CACHE"] = str(tmp / "cache")
    from tasks.text import tokenized

    (tmp / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "good", "film"]) + "\n")
    tokenizer = BertTokenizerFast(vocab_file=str(tmp / "vocab.txt"))
    first = tokenized.encode_cached("probe", ["good film", "film"], None, tokenizer, 8)
    [path] = list((tmp / "cache" / "tokenized").glob("*.pt"))
    torch.save(bad, path)
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        again = tokenized.encode_cached("probe", ["good film", "film"], None, tokenizer, 8)
    held = isinstance(again, torch.Tensor) and torch.equal(again, first) and str(path) in err.getvalue()
    return held, said(err.getvalue(), "invalid").replace(str(tmp), "TMP")


probe("token cache holding a str", "`encode_cached` reading the cache")(
    lambda tmp, trials: token_cache(tmp, "a string"))
probe("token cache holding a wrong-shape tensor", "`encode_cached` reading the cache")(
    lambda tmp, trials: token_cache(tmp, __import__("torch").zeros(2, 3, 5, dtype=__import__("torch").int32)))


# --- credentials -----------------------------------------------------------------------------------


@probe("`--tracking-uri http://user:SECRET@host:port` (a real `mlflow server`), then `--leaderboard`",
       "`prunebench run tiny.yaml --tracking-uri http://alice:SECRET@127.0.0.1:PORT --leaderboard`")
def credentials(tmp, trials):
    from mlflow.tracking import MlflowClient

    from benchmark.sweeps.server import free_port, start_server, stop_server, wait_healthy

    port = free_port()
    server = start_server(tmp / "server", port)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", server)
        uri = f"http://alice:SECRET@127.0.0.1:{port}"
        result = prunebench("run", str(sweep_file(tmp)), "--tracking-uri", uri, "--leaderboard", "--results-dir",
                            str(tmp / "results"), "--cache-dir", str(tmp / "c"), cwd=tmp)
        client = MlflowClient(f"http://127.0.0.1:{port}")
        tags = [str(r.data.tags) for e in client.search_experiments() for r in client.search_runs([e.experiment_id])]
    finally:
        stop_server(server)
    where = {"output": result.stdout + result.stderr, "tags": " ".join(tags),
             **{p.name: p.read_text() for p in (tmp / "results").glob("*.*") if p.suffix in (".md", ".html")}}
    leaked = [name for name, text in where.items() if "SECRET" in text]
    held = result.returncode == 0 and not leaked and "alice:***@" in where["output"]
    return held, (f"exit {result.returncode}; 'SECRET' found in: {leaked or 'nothing'} "
                  f"(searched output, {len(tags)} runs' tags, {len(where) - 2} board files); "
                  f"{said(result, 'tracking:')}")


# --- names, labels, limits, types, ranges ------------------------------------------------------------


def validate_refuses(tmp: Path, needle: str, **changes) -> tuple[bool, str]:
    return refused(prunebench("validate", str(sweep_with(tmp, **changes)), cwd=tmp), needle)


for _name, _what in (("/abs/path", "`/abs/path`"), ("../../x", "`../../x`"), ("x" * 10_000, "10,000 characters"),
                     ("caf\u00e9 board", "`café board` (space, non-ASCII)")):
    probe(f"sweep name {_what}", "`prunebench validate sweep.yaml`")(
        lambda tmp, trials, name=_name: validate_refuses(tmp, "'name'", name=name))

probe("`--experiment ../../x` for the board", "`prunebench leaderboard --experiment ../../x`")(
    lambda tmp, trials: refused(prunebench("leaderboard", "--experiment", "../../x", cwd=tmp), "may hold only"))


@probe("method labels `$\\frac{$`, `a | b`, `<b>bold</b>`, `_hidden`",
       "`prunebench run` with those labels, then `prunebench leaderboard --no-mlflow`")
def hostile_labels(tmp, trials):
    labels = ["el2n $\\frac{$", "a | b", "<b>bold</b>", "_hidden"]
    methods = [{"name": "random", "label": label, "options": {"class_balanced": i % 2 == 1, "dynamic": i >= 2}}
               for i, label in enumerate(labels)]
    sweep = sweep_with(tmp, methods=methods)
    uri = f"sqlite:///{tmp}/mlflow.db"
    run = prunebench("run", str(sweep), "--tracking-uri", uri, "--quiet", "--cache-dir", str(tmp / "c"), cwd=tmp)
    board = prunebench("leaderboard", "--tracking-uri", uri, "--experiment", "probe", "--no-mlflow", "--out",
                       str(tmp / "out"), cwd=tmp)
    plots = list((tmp / "out" / "probe-plots").glob("*.png")) if (tmp / "out" / "probe-plots").is_dir() else []
    markdown = (tmp / "out" / "probe.md").read_text() if (tmp / "out" / "probe.md").is_file() else ""
    html = (tmp / "out" / "probe.html").read_text() if (tmp / "out" / "probe.html").is_file() else ""
    held = (run.returncode == 0 and board.returncode == 0 and len(plots) == 2 and "a \\| b" in markdown
            and "<b>" not in markdown and "<b>bold" not in html)
    return held, (f"run exit {run.returncode}, leaderboard exit {board.returncode}: {len(plots)} plots; markdown "
                  f"shows `a \\| b` and `&lt;b&gt;`; HTML escapes them" if held else said(board))


probe("30,000 seeds (a typo: 2000 x 200 tasks gave 1.6 M cells)", "`prunebench validate sweep.yaml`")(
    lambda tmp, trials: validate_refuses(tmp, "exceed the limit", seeds=list(range(30_000))))
probe('`ratios: ["0.5"]` (a string)', "`prunebench validate sweep.yaml`")(
    lambda tmp, trials: validate_refuses(tmp, "must be a number", ratios=["0.5"]))
probe('`seeds: ["0"]` (a string)', "`prunebench validate sweep.yaml`")(
    lambda tmp, trials: validate_refuses(tmp, "non-negative integer", seeds=["0"]))
probe("el2n `bins: 0` (stratified)", "`prunebench validate sweep.yaml`")(
    lambda tmp, trials: validate_refuses(tmp, "bins must be", methods=[
        {"name": "el2n", "options": {"mode": "stratified", "bins": 0}}]))
probe("el2n `proxy_runs: 10**30`", "`prunebench validate sweep.yaml`")(
    lambda tmp, trials: validate_refuses(tmp, "proxy_runs must be", methods=[
        {"name": "el2n", "options": {"proxy_runs": 10**30}}]))
probe("el2n `proxy_runs: 1.0e30` (a float)", "`prunebench validate sweep.yaml`")(
    lambda tmp, trials: validate_refuses(tmp, "proxy_runs", methods=[
        {"name": "el2n", "options": {"proxy_runs": 1.0e30}}]))
probe("a 500-character method label", "`prunebench validate sweep.yaml`")(
    lambda tmp, trials: validate_refuses(tmp, "characters long", methods=[{"name": "random", "label": "x" * 500}]))

for _args, _needle in ((["--max-cells", "-5"], "--max-cells"), (["--max-cells", "0"], "--max-cells"),
                       (["--claim-ttl", "inf"], "--claim-ttl"), (["--heartbeat", "nan"], "--heartbeat"),
                       (["--max-in-flight", "0"], "--max-in-flight")):
    probe(f"`{' '.join(_args)}`", f"`prunebench run sweep.yaml {' '.join(_args)}`")(
        lambda tmp, trials, args=_args, needle=_needle: refused(
            prunebench("run", str(sweep_file(tmp)), *args, cwd=tmp), needle))
probe("`--port 0`", "`prunebench server --port 0`")(
    lambda tmp, trials: refused(prunebench("server", "--port", "0", cwd=tmp), "--port"))


# --- loaders -----------------------------------------------------------------------------------------


@probe("32x32 images in a Fashion-MNIST file", "`prunebench validate sweep.yaml` (data_dir holds the file)")
def fashion_32(tmp, trials):
    sweep_file(tmp, size=32)
    return refused(prunebench("validate", str(tmp / "sweep.yaml"), cwd=tmp), "28x28")


def nested_alpaca(tmp: Path, suffix: str) -> tuple[bool, str]:
    from benchmark.api.task import DataFormatError
    from tasks.sft.records import read_records

    record = '{"instruction": "a", "output": "b", "extra": ' + "[" * 200_000 + "]" * 200_000 + "}"
    text = record + "\n" if ".jsonl" in suffix else "[" + record + "]"
    path = tmp / f"alpaca{suffix}"
    path.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
    try:
        read_records(path)
    except DataFormatError as error:
        return str(path) in str(error), f"DataFormatError: {str(error).replace(str(tmp), 'TMP')[:300]}"
    except BaseException as error:  # RecursionError before the fix
        return False, f"{type(error).__name__}: {str(error)[:200]}"
    return False, "accepted"


for _suffix in (".json", ".jsonl", ".json.gz"):
    probe(f"Alpaca `{_suffix}` file nested 200,000 levels deep", "`read_records(path)` (what the SFT task loads with)")(
        lambda tmp, trials, suffix=_suffix: nested_alpaca(tmp, suffix))


# --- issue 28: races, links, secrets, child servers, markup, limits, full disks, stale data ------------


@probe("two runners log the same NEW data set input at once (the race forced between MLflow's look-up and insert)",
       "`log_evidence` of run A while run B inserts the same data set row (in-process, a hook in the store)")
def dataset_race(tmp, trials):
    import threading

    import mlflow.store.tracking.sqlalchemy_store as sql_store
    from mlflow.entities import Dataset, DatasetInput, InputTag

    from benchmark.sweeps import evidence_log as evidence
    from benchmark.sweeps.cells import Cell
    from benchmark.sweeps.store import StoreError
    from benchmark.sweeps.tracking import Tracker

    def same():
        return DatasetInput(Dataset(name="fashion-mnist", digest="d1g3st", source_type="local", source='"/d"',
                                    profile="{}"), tags=[InputTag("mlflow.data.context", "train")])

    tracker = Tracker(f"sqlite:///{tmp}/mlflow.db", "probe")
    runs = [tracker.start_cell(Cell("fashion-mnist", "random", r, 0, "smoke", label="random"), "probe", {}, {})
            for r in (0.3, 0.5)]
    real, raced = sql_store.uuid, []

    class Window:
        @staticmethod
        def uuid4():
            if not raced:
                raced.append(True)
                other = threading.Thread(target=lambda: runs[1].client.log_inputs(runs[1].run_id, datasets=[same()]))
                other.start()
                other.join()
            return real.uuid4()

    saved = (sql_store.uuid, evidence.write_artifacts, evidence.dataset_input)
    sql_store.uuid, evidence.write_artifacts, evidence.dataset_input = Window, lambda *a: [], lambda p, e: same()
    try:
        evidence.log_evidence(runs[0], None, None, "probe", "v")
    except StoreError as error:
        return False, f"StoreError: {str(error)[:300]}"
    finally:
        sql_store.uuid, evidence.write_artifacts, evidence.dataset_input = saved
    logged = [len(tracker.client.get_run(r.run_id).inputs.dataset_inputs) for r in runs]
    return bool(raced) and logged == [1, 1], f"race forced: {bool(raced)}; data set inputs per run: {logged}"


@probe("symlinks in the results folder (`probe.md -> a file outside`, `probe-plots -> a folder outside`)",
       "`prunebench leaderboard --experiment probe --out results --no-mlflow`")
def results_symlinks(tmp, trials):
    uri = f"sqlite:///{tmp}/mlflow.db"
    prunebench("run", str(sweep_file(tmp)), "--tracking-uri", uri, "--quiet", "--cache-dir", str(tmp / "c"), cwd=tmp)
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "victim").write_text("keep")
    outcomes = []
    for planted, target in (("probe.md", outside / "victim"), ("probe-plots", outside)):
        out = tmp / f"results-{planted}"
        out.mkdir()
        (out / planted).symlink_to(target)
        result = prunebench("leaderboard", "--tracking-uri", uri, "--experiment", "probe", "--no-mlflow", "--out",
                            str(out), cwd=tmp)
        outcomes.append(refused(result, "symbolic link"))
    untouched = (outside / "victim").read_text() == "keep" and sorted(p.name for p in outside.iterdir()) == ["victim"]
    return all(h for h, _ in outcomes) and untouched, f"outside untouched: {untouched}; " + outcomes[0][1]


@probe("secrets in URIs: `postgresql://h/db?user=u&password=SECRET`, a token as the user (`http://TOKEN@host`)",
       "`prunebench run tiny.yaml --tracking-uri URI` (nothing answers)")
def uri_secrets(tmp, trials):
    from benchmark.sweeps.server import free_port

    sweep = sweep_file(tmp)
    outcomes = []
    for uri in (f"postgresql://127.0.0.1:{free_port()}/db?user=u&password=SECRET", f"http://TOKEN@127.0.0.1:{free_port()}"):
        result = prunebench("run", str(sweep), "--tracking-uri", uri, cwd=tmp,
                            env={"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "3"})
        text = result.stdout + result.stderr
        outcomes.append((result.returncode == 3 and "SECRET" not in text and "TOKEN" not in text,
                         said(result, "tracking store")))
    return all(h for h, _ in outcomes), " / ".join(o[:200] for _, o in outcomes)


def _descendants(pid: int) -> list[int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    found, frontier = [], [pid]
    while frontier:
        frontier = [p for p, parent in parents.items() if parent in frontier]
        found += frontier
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def child_server(tmp: Path, verb: str) -> tuple[bool, str]:
    """A real `prunebench server` / `ui` on a store whose file name is the secret: argv of its
    process tree, then SIGTERM to prunebench alone."""
    from benchmark.sweeps.server import free_port, wait_healthy

    port = free_port()
    store = f"sqlite:///{tmp}/SECRET-store.db"
    args = (["server", "--dir", str(tmp / "srv"), "--backend-store-uri", store, "--workers", "1"] if verb == "server"
            else ["ui", "--tracking-uri", store])
    process = subprocess.Popen([sys.executable, "-m", "benchmark.cli", *args, "--port", str(port)],
                               env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    tree = []
    try:
        wait_healthy(f"http://127.0.0.1:{port}", timeout=240)
        tree = _descendants(process.pid)
        shown = [pid for pid in tree if b"SECRET" in (Path("/proc") / str(pid) / "cmdline").read_bytes()]
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        deadline = time.time() + 30
        while time.time() < deadline and any(_alive(p) for p in tree):
            time.sleep(0.2)
        left = [p for p in tree if _alive(p)]
    finally:
        for pid in [process.pid, *tree]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait()
    return not shown and not left, (f"{len(tree)} child process(es); the store URI on the command line of "
                                    f"{len(shown)}; after SIGTERM to prunebench (exit {process.returncode}) "
                                    f"{len(left)} still running")


probe("`prunebench server` with a secret in `--backend-store-uri`, then SIGTERM to prunebench",
      "`prunebench server --backend-store-uri sqlite:///TMP/SECRET-store.db`; `ps`; `kill -TERM`")(
    lambda tmp, trials: child_server(tmp, "server"))
probe("`prunebench ui` with a secret in `--tracking-uri`, then SIGTERM to prunebench",
      "`prunebench ui --tracking-uri sqlite:///TMP/SECRET-store.db`; `ps`; `kill -TERM`")(
    lambda tmp, trials: child_server(tmp, "ui"))


@probe("run tags `task`, `code_version`, `data_origin` holding HTML and markdown links",
       "tags set on finished cells, then `prunebench leaderboard` (files and MLflow)")
def markup_tags(tmp, trials):
    import re

    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp}/mlflow.db"
    prunebench("run", str(sweep_file(tmp)), "--tracking-uri", uri, "--quiet", "--cache-dir", str(tmp / "c"), cwd=tmp)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("probe")
    for run in client.search_runs([experiment.experiment_id]):
        client.set_tag(run.info.run_id, "task", "t<script>alert(1)</script>")
        client.set_tag(run.info.run_id, "code_version", "v<img src=x onerror=alert(1)>")
        client.set_tag(run.info.run_id, "data_origin", "[click](javascript:alert(1))")
    board = prunebench("leaderboard", "--tracking-uri", uri, "--experiment", "probe", "--out", str(tmp / "out"), cwd=tmp)
    raw = re.compile(r"<script|<img|(?<!\\)\[click")
    texts = {"markdown": (tmp / "out" / "probe.md").read_text() if (tmp / "out" / "probe.md").is_file() else "<script",
             "description": client.get_experiment(experiment.experiment_id).tags.get("mlflow.note.content", "")}
    html = (tmp / "out" / "probe.html").read_text() if (tmp / "out" / "probe.html").is_file() else "<script>"
    raw_in = [name for name, text in texts.items() if raw.search(text)] + (["html"] if "<script>alert" in html else [])
    return board.returncode == 0 and not raw_in, f"leaderboard exit {board.returncode}; raw markup in: {raw_in or 'none'}"


@probe("`--executor ray` without `--address`: the interfaces the local Ray instance listens on",
       "`run_sweep_ray` (in-process), listening TCP sockets of its processes read from /proc")
def ray_bind(tmp, trials):
    import ipaddress

    try:
        import ray
    except ImportError:
        return None, "skipped: Ray is not installed"
    from benchmark.sweeps import ray_executor
    from benchmark.sweeps.cells import parse_sweep
    from benchmark.sweeps.tracking import Tracker

    def listening(pids):
        inodes = set()
        for pid in pids:
            try:
                inodes |= {os.readlink(f"/proc/{pid}/fd/{fd}")[8:-1] for fd in os.listdir(f"/proc/{pid}/fd")
                           if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:[")}
            except OSError:
                continue
        found = []
        for table in ("tcp", "tcp6"):
            for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
                f = line.split()
                if f[3] == "0A" and f[9] in inodes:
                    raw = bytes.fromhex(f[1].split(":")[0])
                    ip = ipaddress.ip_address(b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)))
                    found.append(ip.ipv4_mapped or ip if ip.version == 6 else ip)
        return found

    seen = {}

    def drive(ray_module, *args):
        ray_module.get(ray_module.remote(lambda: 1).remote())
        seen["ips"] = listening([os.getpid(), *_descendants(os.getpid())])

    real_drive, ray_executor._drive = ray_executor._drive, drive
    try:
        sweep = parse_sweep({"name": "probe", "profile": "smoke", "seeds": [0], "ratios": [0.5],
                             "tasks": ["fashion-mnist"], "methods": ["random"]}, check_data=False)
        ray_executor.run_sweep_ray(sweep, Tracker(f"sqlite:///{tmp}/mlflow.db", "probe"), tmp / "c", quiet=True)
    finally:
        ray_executor._drive = real_drive
    ips = seen.get("ips", [])
    wide = sorted({str(ip) for ip in ips if not ip.is_loopback})
    return bool(ips) and not wide, f"{len(ips)} listening sockets; not on loopback: {wide or 'none'}"


@probe("a 25 MB `seeds:` list (YAML)", "`prunebench validate sweep.yaml`")
def huge_sweep(tmp, trials):
    path = tmp / "sweep.yaml"
    path.write_text("name: probe\nprofile: smoke\nratios: [0.5]\ntasks: [fashion-mnist]\nmethods: [random]\nseeds: ["
                    + ", ".join(["1234567"] * 2_800_000) + "]\n")
    began = time.time()
    result = prunebench("validate", str(path), cwd=tmp, timeout=300)
    held, outcome = refused(result, "larger than")
    return held, f"{outcome} ({path.stat().st_size / 1e6:.0f} MB, {time.time() - began:.1f} s)"


@probe("a duplicate YAML key (`name:` twice)", "`prunebench validate sweep.yaml`")
def duplicate_key(tmp, trials):
    path = sweep_file(tmp)
    path.write_text(path.read_text() + "name: other\n")
    return refused(prunebench("validate", str(path), cwd=tmp), "given twice")


probe("`epochs: 1000000000`", "`prunebench validate sweep.yaml`")(
    lambda tmp, trials: refused(prunebench("validate", str(sweep_file(tmp, epochs=1_000_000_000)), cwd=tmp),
                                "at most 10,000"))
@probe("`ratio: 0.9999` on 576 training samples (smoke Fashion-MNIST, 640 images)", "`prunebench validate sweep.yaml`")
def ratio_keeps_nothing(tmp, trials):
    from tasks.vision.fashion_mnist import write_synthetic

    data = write_synthetic(tmp / "d640", n_train=640)
    path = sweep_file(tmp, ratios=[0.9999])
    path.write_text(path.read_text().replace(str(tmp / "data"), str(data)))
    return refused(prunebench("validate", str(path), cwd=tmp), "keeps 0 of the 576")


@probe("a Fashion-MNIST folder with 5 training images", "`prunebench validate sweep.yaml` (data_dir holds it)")
def five_images(tmp, trials):
    from tasks.vision.fashion_mnist import write_synthetic

    data = write_synthetic(tmp / "five", n_train=5, n_test=5)
    path = sweep_file(tmp)
    path.write_text(path.read_text().replace(str(tmp / "data"), str(data)))
    return refused(prunebench("validate", str(path), cwd=tmp), "validation split")


def _mount_full_tmpfs(folder: Path) -> bool:
    """An 8 MiB tmpfs at ``folder`` (the probe fills it); False where mounting is not allowed."""
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(folder)], capture_output=True).returncode:
        return False
    return True


def _fill(folder: Path) -> None:
    with open(folder / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass


@probe("the cache folder on a full disk (an 8 MiB tmpfs, filled; else a cache file written through /dev/full)",
       "`EL2N.prepare` (scores computed, then the cache write fails)")
def cache_full(tmp, trials):
    import contextlib
    import io

    import torch

    from benchmark.training.context import RunContext
    from benchmark.api.registry import get_method
    from tasks.vision.fashion_mnist import FashionMNIST, write_synthetic

    task = FashionMNIST("smoke", data_dir=str(write_synthetic(tmp / "data")), epochs=1)
    splits = task.load_splits()
    cache = tmp / "full"
    mounted = _mount_full_tmpfs(cache)
    real_path = RunContext.cache_path
    if mounted:
        _fill(cache)
    else:
        target = cache / "el2n" / "entry.pt"
        target.parent.mkdir(parents=True)
        (target.parent / f"entry.pt.{os.getpid()}.tmp").symlink_to("/dev/full")
        RunContext.cache_path = lambda self, kind, key: target
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err):
            method = get_method("el2n")(0.5, 0, proxy_runs=1, score_epochs=1)
            method.prepare(RunContext(task=task, splits=splits, device=torch.device("cpu"), seed=0, cache_dir=cache))
    except Exception as error:
        return False, f"the cell failed: {type(error).__name__}: {str(error)[:300]}"
    finally:
        RunContext.cache_path = real_path
        if mounted:
            subprocess.run(["umount", "-l", str(cache)], capture_output=True)
    held = method.subset is not None and "No space left on device" in err.getvalue()
    return held, f"({'tmpfs' if mounted else '/dev/full'}) " + said(err.getvalue(), "cannot write")


@probe("the store on a full disk (a SQLite store on an 8 MiB tmpfs, filled)", "`prunebench run tiny.yaml`")
def store_full(tmp, trials):
    from benchmark.sweeps.tracking import Tracker

    disk = tmp / "full"
    if not _mount_full_tmpfs(disk):
        return None, "skipped: cannot mount a tmpfs here (needs root)"
    try:
        uri = f"sqlite:///{disk}/mlflow.db"
        Tracker(uri, "probe")
        _fill(disk)
        result = prunebench("run", str(sweep_file(tmp)), "--tracking-uri", uri, "--cache-dir", str(tmp / "c"), cwd=tmp)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)
    return refused(result, "free space on")


@probe("a local hub-layout folder edited after a first load", "`HubDataset.load` twice, the folder rewritten between")
def hub_edited(tmp, trials):
    import datasets

    from tasks.hub import HubDataset

    datasets.config.HF_DATASETS_CACHE = tmp / "hf-cache"
    repo = tmp / "repo"

    def write(texts):
        (repo / "c").mkdir(parents=True, exist_ok=True)
        datasets.Dataset.from_dict({"text": texts, "label": [0] * len(texts)}).to_parquet(
            str(repo / "c" / "train-00000-of-00001.parquet"))
        (repo / "README.md").write_text("---\nconfigs:\n- config_name: c\n  data_files:\n  - split: train\n"
                                        "    path: c/train-*\n---\n")

    source = HubDataset("probe", str(repo), "c")
    write(["a", "b"])
    first, first_tags = source.load({"train": "train"}, "-")
    write(["x", "y", "z"])
    second, second_tags = source.load({"train": "train"}, "-")
    rows = list(second["train"]["text"])
    revisions = (first_tags["data.hub_revision"], second_tags["data.hub_revision"])
    return rows == ["x", "y", "z"] and revisions[0] != revisions[1], f"second load: {rows}; revisions {revisions}"


# --- the report ----------------------------------------------------------------------------------------


# --- issue 28: hostile methods (tests/hostile_plugins/, installed as entry-point plugins) ----------

HOSTILE = ROOT / "tests" / "hostile_plugins"


def hostile_site(tmp: Path, modules: dict[str, str]) -> dict:
    """An environment in which ``modules`` ({method name: module under tests/hostile_plugins}) are
    entry-point plugins of a package installed in ``tmp/site``."""
    info = tmp / "site" / "pb_hostile-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pb_hostile\nVersion: 0.1\n")
    points = "".join(f"{name} = hostile_plugins.{module}\n" for name, module in modules.items())
    (info / "entry_points.txt").write_text(f"[prunebench.methods]\n{points}")
    return {"PYTHONPATH": os.pathsep.join([str(tmp / "site"), str(HOSTILE.parent), str(ROOT)])}


def hostile_sweep(tmp: Path, name: str, module: str, needle: str, seeds=(0,)) -> tuple[bool, str]:
    """Held if ``prunebench run`` fails the hostile cells with ``needle`` naming the method, every
    other cell finishes, and the board built afterwards holds no hostile cell."""
    env = hostile_site(tmp, {name: module})
    sweep = sweep_file(tmp, methods=["random", name], seeds=seeds)
    uri = f"sqlite:///{tmp}/mlflow.db"
    result = prunebench("run", str(sweep), "--tracking-uri", uri, "--cache-dir", str(tmp / "c"), "--quiet",
                        cwd=tmp, env=env, timeout=600)
    board = prunebench("leaderboard", "--tracking-uri", uri, "--experiment", "probe", "--out", str(tmp / "out"),
                       "--no-mlflow", cwd=tmp, env=env)
    text = result.stdout + result.stderr
    failed = [line for line in text.splitlines() if line.strip().startswith("failed ") and needle in line]
    others = 2 * len(seeds)  # the reference and random, per seed
    finished = statuses(uri, "probe").count("finished")
    board_text = (tmp / "out" / "probe.md").read_text() if (tmp / "out" / "probe.md").exists() else ""
    hostile_finished = finished - others
    held = result.returncode == 1 and failed and hostile_finished == 0 and name not in board_text \
        and board.returncode == 0
    return bool(held), (f"exit {result.returncode}; {finished} cells finished ({others} honest), "
                        f"board {'free of' if name not in board_text else 'SHOWS'} {name}: {said(result, needle)}")


@probe("a method's `summary()` returns `{\"test_accuracy\": 1.0}`", "`prunebench run` with it (entry point), then `leaderboard`")
def summary_overwrites_metric(tmp, trials):
    return hostile_sweep(tmp, "hostile-overwrite-metric", "overwrite_metric", "summary() returned 'test_accuracy'")


@probe("`on_epoch_start` returns one index repeated n/2 times", "`prunebench run` with it (entry point), then `leaderboard`")
def repeated_indices(tmp, trials):
    return hostile_sweep(tmp, "hostile-repeat-indices", "repeat_indices", "of which only 1 are distinct")


@probe("a mask of the wrong but broadcastable shape (`zeros(1)`)", "`prunebench run` with it (entry point), then `leaderboard`")
def wrong_mask_shape(tmp, trials):
    return hostile_sweep(tmp, "hostile-wrong-mask-shape", "wrong_mask_shape", "expected exactly its weight's shape")


@probe("a method's `__init__` raises for one seed (of 2)", "`prunebench run` with it (entry point), then `leaderboard`")
def raise_in_init(tmp, trials):
    env = hostile_site(tmp, {"hostile-raise-in-init": "raise_in_init"})
    sweep = sweep_file(tmp, methods=["random", "hostile-raise-in-init"], seeds=[0, 1])
    uri = f"sqlite:///{tmp}/mlflow.db"
    result = prunebench("run", str(sweep), "--tracking-uri", uri, "--cache-dir", str(tmp / "c"), "--quiet",
                        cwd=tmp, env=env)
    states = statuses(uri, "probe")
    held = result.returncode == 1 and states.count("finished") == 5 and states.count("failed") == 1 \
        and "raised in __init__" in result.stderr
    return held, f"exit {result.returncode}; statuses {states}: {said(result, 'raised in __init__')}"


@probe("a hook raises `SystemExit(3)`", "`prunebench run` with it (entry point), then `leaderboard`")
def system_exit_in_hook(tmp, trials):
    return hostile_sweep(tmp, "hostile-system-exit", "system_exit_in_hook", "SystemExit: 3")


@probe("an entry-point plugin that hangs at import", "`PRUNEBENCH_IMPORT_TIMEOUT_S=5 prunebench list`, "
       "`validate` of a sweep naming another plugin")
def hang_at_import(tmp, trials):
    env = {**hostile_site(tmp, {"hostile-hang-at-import": "hang_at_import",
                                "hostile-repeat-indices": "repeat_indices"}), "PRUNEBENCH_IMPORT_TIMEOUT_S": "5"}
    began = time.time()
    listed = prunebench("list", "methods", cwd=tmp, env=env, timeout=300)
    other = prunebench("validate", str(sweep_file(tmp, methods=["random", "hostile-repeat-indices"])), cwd=tmp,
                       env=env, timeout=300)
    seconds = time.time() - began
    needle = "import took longer than 5 s"
    held = listed.returncode == 0 and needle in listed.stdout and other.returncode == 0
    return held, f"list exit {listed.returncode}, validate exit {other.returncode} in {seconds:.0f} s: {said(listed, needle)}"


@probe("two runners, one clock 5 minutes fast, finishing in the order that kept both",
       "in-process: A claims with its heartbeat 300 s ahead, B takes the cell over, B (higher run id) then A finish")
def clock_skew(tmp, trials):
    import benchmark.sweeps.claims as claims
    import benchmark.sweeps.tracking as tracking
    from benchmark.sweeps.cells import Cell
    from benchmark.sweeps.tracking import Tracker

    cell = Cell("fashion-mnist", "random", 0.5, 0, "smoke")
    uri = f"sqlite:///{tmp}/mlflow.db"
    fast, slow = Tracker(uri, "probe"), Tracker(uri, "probe")
    real = claims.claim_tags
    tracking.claim_tags = lambda: {**real(), "heartbeat": f"{time.time() + 300:.3f}"}
    try:
        run_a = fast.try_claim(cell, "probe", {}, {})
    finally:
        tracking.claim_tags = real
    run_b = slow.try_claim(cell, "probe", {}, {})
    if run_a is None or run_b is None:
        return False, "the fast runner's claim was not taken over"
    lower, higher = sorted([run_a, run_b], key=lambda r: r.run_id)
    higher.finish({"test_accuracy": 0.5})
    lower.finish({"test_accuracy": 0.6})
    states = statuses(uri, "probe")
    return states == ["finished", "superseded"], f"statuses of the cell's runs: {states}"


@probe("`leaderboard` killed right after creating a summary run", "in-process: Ctrl-C at a summary run's first "
       "write, then `leaderboard` again")
def killed_leaderboard(tmp, trials):
    from mlflow.tracking import MlflowClient

    from benchmark.boards.publish import build_and_publish

    sweep = sweep_file(tmp, methods=["random"])
    uri = f"sqlite:///{tmp}/mlflow.db"
    prunebench("run", str(sweep), "--tracking-uri", uri, "--cache-dir", str(tmp / "c"), "--quiet", cwd=tmp)
    real = MlflowClient.log_batch
    killed = []

    def kill_once(self, run_id, *args, **kwargs):
        if not killed and MlflowClient(uri).get_run(run_id).data.tags.get("summary_key"):
            killed.append(run_id)
            raise KeyboardInterrupt
        return real(self, run_id, *args, **kwargs)

    MlflowClient.log_batch = kill_once
    try:
        build_and_publish(uri, "probe", None)
    except KeyboardInterrupt:
        pass
    finally:
        MlflowClient.log_batch = real
    build_and_publish(uri, "probe", None)
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("probe").experiment_id], "tags.run_type = 'summary'")
    bad = [r for r in runs if r.info.status != "FINISHED" or not r.data.params]
    return bool(killed) and not bad and len(runs) == 2, (f"{len(runs)} summary runs after the second leaderboard, "
                                                         f"{len(bad)} running or without params")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--trials", type=int, default=5, help="trials of each concurrent-start probe (default 5)")
    parser.add_argument("--out", default=str(ROOT / "results" / "faults.md"))
    parser.add_argument("-k", default="", help="run only the probes whose fault contains this text")
    args = parser.parse_args(argv)
    rows, held_count = [], 0
    selected = [p for p in PROBES if args.k.lower() in p[0].lower()]
    for number, (fault, command, function) in enumerate(selected, start=1):
        began = time.time()
        with tempfile.TemporaryDirectory(prefix="probe-") as tmp:
            try:
                held, outcome = function(Path(tmp), args.trials)
            except Exception as error:  # a probe that crashed is a fault the harness did not hold
                held, outcome = False, f"probe crashed: {type(error).__name__}: {str(error)[:300]}"
            outcome = outcome.replace(str(Path(tmp).resolve()), "TMP").replace(tmp, "TMP")
        verdict = "skipped" if held is None else "held" if held else "**FAILED**"
        held_count += bool(held)
        outcome = outcome.replace("|", "\\|").replace("\n", " ")
        rows.append(f"| {number} | {fault} | {command} | {verdict} | {outcome} |")
        print(f"[{number}/{len(selected)}] {verdict:10s} {fault} ({time.time() - began:.0f}s)", file=sys.stderr)
    header = [
        "# Faults and hostile input",
        "",
        f"Generated by `python scripts/probe_faults.py --trials {args.trials}` on "
        f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: {held_count} of {len(rows)} probes held.",
        "Each probe runs in a fresh temporary folder on real parts (real `prunebench` processes, a real SQLite",
        "store or `mlflow server`, data files in their real formats); *held* means the harness refused the",
        "input or survived the fault with a clear message and lost nothing recorded. Fault injections work as",
        "root: the artifact folder is replaced by a plain file; the store is made immutable with `chattr +i`.",
        "Paths of temporary folders are shown as TMP.",
        "",
        "| # | fault or hostile input | command | verdict | what the harness did / said |",
        "|---|---|---|---|---|",
    ]
    Path(args.out).write_text("\n".join(header + rows) + "\n", encoding="utf-8")
    print(f"written: {args.out}", file=sys.stderr)
    return 0 if held_count == sum(1 for r in rows if "| skipped |" not in r) else 1


if __name__ == "__main__":
    sys.exit(main())
