"""Faults and hostile input (issue 18): each test reproduces one way the harness broke and
checks that it now holds: the store survives concurrent creation, a store fault stops the
sweep with one message, claims refuse impossible heartbeats, foreign and deleted experiments
are refused, caches are validated, credentials never leave the process, names and labels
cannot escape the board, options and loaders name what is wrong, SIGTERM is Ctrl-C."""
from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml
from mlflow.tracking import MlflowClient

from benchmark import cli
from benchmark.boards.publish import build_and_publish, write_files
from benchmark.sweeps.cells import Cell, Sweep, SweepError, parse_sweep
from benchmark.sweeps.claims import ClaimPolicy, is_live
from benchmark.boards.leaderboard import build_board, load_runs
from benchmark.api.method import DataPruner
from benchmark.api.registry import METHODS, register_method
from benchmark.api.task import DataFormatError
from benchmark.sweeps.tracking import Tracker
from helpers_server import free_port
from helpers_tiny import cpu, one_cpu_thread, tiny_task  # noqa: F401  (fixture)
from tasks.vision.fashion_mnist import FILES, FashionMNIST, write_synthetic

ROOT = Path(__file__).resolve().parent.parent
STORE_FAULT = 3  # the exit status of prunebench when the tracking store failed (benchmark.cli.STORE_FAULT)


def sqlite_uri(directory: Path) -> str:
    return f"sqlite:///{directory}/mlflow.db"


def tiny_sweep_file(directory: Path, name: str = "tiny", methods=("random",), ratios=(0.5,), **task_options) -> Path:
    data = write_synthetic(directory / "data")
    task = {"name": "fashion-mnist", "data_dir": str(data), "options": {"epochs": 1, **task_options}}
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"name": name, "profile": "smoke", "seeds": [0], "ratios": list(ratios),
                                    "tasks": [task], "methods": list(methods)}))
    return path


def statuses(uri: str, experiment: str) -> list[tuple[str, str]]:
    client = MlflowClient(uri)
    found = client.get_experiment_by_name(experiment)
    return [(r.data.tags.get("cell_id"), r.data.tags.get("status"))
            for r in client.search_runs([found.experiment_id], max_results=1000)]


def run_cli(capsys, *args: str) -> tuple[int, str]:
    code = cli.main(list(args))
    captured = capsys.readouterr()
    return code, captured.out + captured.err


# --- the store: concurrent creation, faults stop the sweep with one message ---------------------


def _runner(sweep: Path, uri: str, cache: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "benchmark.cli", "run", str(sweep), "--tracking-uri", uri,
                             "--cache-dir", str(cache), "--quiet"], env=env, cwd=sweep.parent,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
@pytest.mark.parametrize("runners", [2, 4])
def test_runners_started_at_once_on_a_new_sqlite_store_all_succeed(tmp_path, runners):
    """Each trial: a fresh store that does not exist yet, ``runners`` real ``prunebench run``
    started at the same moment. Before the lock, one runner died in MLflow's schema migration."""
    trials = int(os.environ.get("PRUNEBENCH_RACE_TRIALS", "20"))
    sweep = tiny_sweep_file(tmp_path)
    crashes = []
    for trial in range(trials):
        store = tmp_path / f"trial-{trial}"
        store.mkdir()
        uri = sqlite_uri(store)
        processes = [_runner(sweep, uri, tmp_path / "cache") for _ in range(runners)]
        outputs = [p.communicate(timeout=600)[0] for p in processes]
        crashes += [(trial, out[-2000:]) for p, out in zip(processes, outputs) if p.returncode != 0]
        # the store opens afterwards and holds each of the 2 cells finished exactly once
        finished = sorted(c for c, s in statuses(uri, "tiny") if s == "finished")
        assert len(finished) == len(set(finished)) == 2, (trial, finished, outputs)
    assert not crashes, crashes


def _fails_after_breaking_artifacts(directory: Path):
    """A method whose cell fails after the artifact folder of the store in ``directory`` has
    been replaced by a plain file: a fault injection that works as root, where chmod does not
    stop writes."""
    name = f"test-breaks-artifacts-{abs(hash(str(directory)))}"
    if name in METHODS:
        return name

    @register_method(name)
    class BreaksArtifacts(DataPruner):
        def prepare(self, context) -> None:
            if self.ratio == 0.5:
                shutil.rmtree(directory / "mlartifacts", ignore_errors=True)
                (directory / "mlartifacts").write_text("not a folder any more")
                raise RuntimeError("a cell fault, met while the artifact store is broken")

        def on_epoch_start(self, state):
            return torch.arange(self.n_keep(state.n_train))

    return name


def test_artifact_store_broken_mid_sweep_stops_with_one_message_and_no_running_cell(tmp_path, capsys):
    method = _fails_after_breaking_artifacts(tmp_path)
    sweep = tiny_sweep_file(tmp_path, methods=[method], ratios=[0.3, 0.5, 0.7])
    uri = sqlite_uri(tmp_path)
    code, output = run_cli(capsys, "run", str(sweep), "--tracking-uri", uri, "--cache-dir", str(tmp_path / "c"))
    assert code == STORE_FAULT, output
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "tracking store" in errors[0] and "Fix:" in errors[0], output
    assert "artifact" in errors[0] and "Traceback" not in output
    states = sorted(s for _, s in statuses(uri, "tiny"))
    # reference and 0.3 finished; 0.5 closed as failed (its status went in before the traceback);
    # 0.7 never started: the sweep stopped at the store fault
    assert states == ["failed", "finished", "finished"], states


def test_unreachable_store_is_one_message_without_the_password(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    sweep = tiny_sweep_file(tmp_path)
    uri = f"http://alice:SECRET@127.0.0.1:{free_port()}"
    code, output = run_cli(capsys, "run", str(sweep), "--tracking-uri", uri)
    assert code == STORE_FAULT, output
    assert "SECRET" not in output and "alice:***@" in output
    assert "tracking server is running" in output and "Traceback" not in output
    assert len(output.strip().splitlines()) <= 3, output


def _immutable(path: Path, on: bool) -> bool:
    """chattr +i / -i: a file even root cannot write (chmod does not stop root)."""
    return subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True).returncode == 0


@pytest.mark.slow
def test_read_only_store_stops_at_once_with_one_message(tmp_path):
    sweep = tiny_sweep_file(tmp_path, ratios=[0.3, 0.5])
    uri = sqlite_uri(tmp_path)
    Tracker(uri, "tiny")  # the store and experiment exist, no cell yet
    db = tmp_path / "mlflow.db"
    if shutil.which("chattr") is None or not _immutable(db, True):
        pytest.skip("needs chattr +i (ext2/3/4, xfs, btrfs) to make a file read-only for root")
    try:
        process = _runner(sweep, uri, tmp_path / "cache")
        output = process.communicate(timeout=300)[0]
    finally:
        _immutable(db, False)
    assert process.returncode == STORE_FAULT, output
    assert "readonly" in output and "make the store writable" in output, output
    assert "[SQL:" not in output and len(output.splitlines()) < 15, output
    assert not [s for _, s in statuses(uri, "tiny")]  # no cell was claimed, none left running


# --- claims: impossible heartbeats --------------------------------------------------------------


def fake_run(heartbeat: str | None, status: str = "running"):
    tags = {"status": status, "claim_host": "another-host", "claim_pid": "1"}
    if heartbeat is not None:
        tags["heartbeat"] = heartbeat
    return SimpleNamespace(data=SimpleNamespace(tags=tags), info=SimpleNamespace(start_time=time.time() * 1000))


@pytest.mark.parametrize("beat", ["inf", "-inf", "nan", "1e300", "garbage", str(time.time() + 3600)])
def test_a_heartbeat_from_the_future_or_not_finite_is_a_dead_claim(beat):
    assert not is_live(fake_run(beat), ClaimPolicy())


def test_a_heartbeat_within_the_clock_skew_allowance_is_live():
    policy = ClaimPolicy(max_skew_s=60)
    assert is_live(fake_run(str(time.time() + 30)), policy)
    assert is_live(fake_run(str(time.time() - 100)), policy)
    assert not is_live(fake_run(str(time.time() + 90)), policy)


def test_a_cell_whose_claim_has_an_inf_heartbeat_is_run_again(tmp_path):
    tracker = Tracker(sqlite_uri(tmp_path), "t")
    cell = Cell("fashion-mnist", "random", 0.5, 0, "smoke", label="random")
    stuck = tracker.start_cell(cell, "t", {}, {})
    tracker.client.set_tag(stuck.run_id, "heartbeat", "inf")
    tracker.client.set_tag(stuck.run_id, "claim_host", "another-host")
    run = tracker.try_claim(cell, "t", {}, {})
    assert run is not None
    run.finish({"test_accuracy": 0.5})
    assert sorted(s for _, s in statuses(tracker.tracking_uri, "t")) == ["finished", "interrupted"]


# --- experiments: deleted ones and other tools' are refused; the board reads cells only ----------


def test_a_deleted_experiment_of_the_same_name_is_refused_with_the_fix(tmp_path, capsys):
    uri = sqlite_uri(tmp_path)
    client = MlflowClient(uri)
    client.delete_experiment(client.create_experiment("tiny"))
    sweep = tiny_sweep_file(tmp_path)
    code, output = run_cli(capsys, "run", str(sweep), "--tracking-uri", uri)
    assert code == STORE_FAULT, output
    assert "deleted" in output and "mlflow experiments restore" in output and "another name" in output


def _foreign_experiment(uri: str) -> str:
    client = MlflowClient(uri)
    other = client.create_experiment("shared-name")
    foreign = client.create_run(other, tags={"status": "finished"})  # another tool's run
    client.log_metric(foreign.info.run_id, "test_accuracy", 0.99)
    return other


def test_another_tools_experiment_is_refused(tmp_path):
    uri = sqlite_uri(tmp_path)
    _foreign_experiment(uri)
    with pytest.raises(Exception, match="not made by prunebench"):  # a StoreError, reported as one message
        Tracker(uri, "shared-name")


def test_the_board_reads_only_the_cells_of_an_experiment_holding_foreign_runs(tmp_path):
    uri = sqlite_uri(tmp_path)
    other = _foreign_experiment(uri)
    client = MlflowClient(uri)
    cell = Cell("fashion-mnist", "none", 0.0, 0, "smoke", label="full")  # a harness cell, written directly
    run = client.create_run(other, tags={"cell_id": cell.id, "task": cell.task, "method": cell.method,
                                         "label": "full", "family": "reference", "status": "finished"})
    client.log_param(run.info.run_id, "ratio", "0.0")
    client.log_param(run.info.run_id, "seed", "0")
    client.log_metric(run.info.run_id, "test_accuracy", 0.5)
    runs = load_runs(uri, "shared-name")
    assert list(runs.cell_id) == [cell.id]


def test_an_untagged_harness_experiment_from_before_the_tag_is_adopted(tmp_path):
    uri = sqlite_uri(tmp_path)
    client = MlflowClient(uri)
    old = client.create_experiment("old-sweep")
    client.create_run(old, tags={"cell_id": "abc", "status": "finished"})
    from benchmark.sweeps.tracking import KIND_TAG

    tracker = Tracker(uri, "old-sweep")
    assert tracker.experiment_id == old
    assert client.get_experiment(old).tags[KIND_TAG] == "cells"


# --- caches: validated on load, a bad entry deleted and rebuilt ---------------------------------


@pytest.fixture(scope="module")
def tiny():
    task = tiny_task()
    return task, task.load_splits()


def _el2n_prepare(tiny, cache_dir: Path):
    from benchmark.training.context import RunContext

    task, splits = tiny
    method = METHODS.get("el2n")(0.5, 0, proxy_runs=1, score_epochs=1)
    context = RunContext(task=task, splits=splits, device=cpu(), seed=0, cache_dir=cache_dir)
    method.prepare(context)
    return method, context


def _corrupt(path: Path, how: str) -> None:
    if how == "truncated":
        path.write_bytes(path.read_bytes()[:100])
    elif how == "garbage":
        path.write_bytes(os.urandom(500))
    else:
        entry = torch.load(path, weights_only=True)
        if how == "ten scores":
            entry["scores"] = entry["scores"][:10]
        elif how == "nan scores":
            entry["scores"][3] = float("nan")
        elif how == "negative cost":
            entry["seconds"] = -1e9
        elif how == "other key":
            entry["key"] = "{'task': 'another'}"
        elif how == "a list":
            entry = [1, 2, 3]
        torch.save(entry, path)


@pytest.mark.parametrize("how", ["ten scores", "nan scores", "negative cost", "truncated", "garbage", "other key",
                                 "a list"])
def test_a_bad_el2n_score_cache_is_reported_deleted_and_rebuilt(tiny, tmp_path, capsys, how):
    first, _ = _el2n_prepare(tiny, tmp_path)
    [path] = list((tmp_path / "el2n").glob("*.pt"))
    _corrupt(path, how)
    again, context = _el2n_prepare(tiny, tmp_path)
    err = capsys.readouterr().err
    assert f"EL2N score cache {path} is invalid" in err, err
    assert not context.scores_cached and context.scoring_seconds >= 0  # recomputed, charged afresh
    assert torch.equal(again.scores, first.scores)  # same proxy seeds: the same scores
    assert len(again.subset) == again.n_keep(len(tiny[1].train))
    assert torch.load(path, weights_only=True)["scores"].shape == first.scores.shape  # rebuilt on disk


@pytest.mark.parametrize("bad", ["a string", torch.zeros(2, 3, 5, dtype=torch.int32), torch.zeros(2, 3, 16)])
def test_a_bad_token_cache_entry_is_reported_and_rebuilt(tmp_path, monkeypatch, capsys, bad):
    from helpers_text import write_tiny_bert
    from tasks.text import tokenized
    from tasks.text.encoders import load_tokenizer

    monkeypatch.setenv("PRUNEBENCH_CACHE", str(tmp_path / "cache"))
    tokenizer = load_tokenizer(str(write_tiny_bert(tmp_path / "bert")))
    texts = ["good film", "the movie was very dull"]
    first = tokenized.encode_cached("t", texts, None, tokenizer, 16)
    [path] = list((tmp_path / "cache" / "tokenized").glob("*.pt"))
    torch.save(bad, path)
    again = tokenized.encode_cached("t", texts, None, tokenizer, 16)
    assert f"token cache {path} is invalid" in capsys.readouterr().err
    assert torch.equal(again, first)


# --- credentials ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text, shown", [
    ("http://user:SECRET@host:5000", "http://user:***@host:5000"),
    ("postgresql://u:p%40ss@db/mlflow?x=1", "postgresql://u:***@db/mlflow?x=1"),
    ("run --tracking-uri https://me:tok@h/ --x", "run --tracking-uri https://me:***@h/ --x"),
    ("http://host:5000/path", "http://host:5000/path"),
    ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
])
def test_redact_hides_only_the_password(text, shown):
    from benchmark.sweeps.store import redact

    assert redact(text) == shown


def test_a_password_in_the_command_never_reaches_the_board_files_or_the_board_run(tmp_path):
    from test_board import fill_store

    uri = sqlite_uri(tmp_path)
    fill_store(uri)
    command = "prunebench leaderboard --tracking-uri http://alice:SECRET@example.org:5000 --experiment board"
    published = build_and_publish(uri, "board", tmp_path / "out", command=command)
    for path in published.files[:2]:
        text = path.read_text()
        assert "SECRET" not in text and "alice:***@example.org" in text
    assert "SECRET" not in published.markdown
    run = MlflowClient(uri).get_run(published.mlflow_run_id)
    assert "SECRET" not in json.dumps(run.data.tags)


# --- names and labels ----------------------------------------------------------------------------


def sweep_dict(**changes):
    base = {"name": "ok", "profile": "smoke", "seeds": [0], "ratios": [0.5], "tasks": ["fashion-mnist"],
            "methods": ["random"]}
    return {**base, **changes}


def problems_of(data) -> list[str]:
    with pytest.raises(SweepError) as error:
        parse_sweep(data, check_data=False)
    return error.value.problems


@pytest.mark.parametrize("name", ["/abs/path", "../../x", "..", "a/b", "x" * 10_000, "with space", "-leading",
                                  "a\0b", "é"])
def test_sweep_names_that_could_leave_the_output_folder_are_refused(name):
    [problem] = problems_of(sweep_dict(name=name))
    assert "'name'" in problem


def test_the_board_refuses_to_write_outside_its_folder(tmp_path):
    board = build_board(load_runs_empty(), "../escape")
    with pytest.raises(ValueError, match="may hold only"):
        write_files(board, "md", "html", {}, tmp_path / "out")
    assert not (tmp_path / "escape.md").exists()


def load_runs_empty():
    import pandas as pd

    return pd.DataFrame(columns=["cell_id"])


def test_cli_refuses_a_path_as_experiment(capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["leaderboard", "--experiment", "../../etc/x"])
    assert exit_.value.code == 2 and "may hold only" in capsys.readouterr().err


HOSTILE = "el2n $\\frac{$ | <b>bold</b> _x"


@pytest.fixture
def hostile_board(tmp_path):
    """A real store whose cells carry a hostile label, published to markdown, HTML and plots."""
    uri = sqlite_uri(tmp_path)
    tracker = Tracker(uri, "hostile")
    tags = {"family": "data", "provenance": "reconstructed", "data_origin": "real", "metric": "accuracy",
            "chance_level": "0.1"}
    for seed in (0, 1):
        for method, label, ratio, family in (("none", "full", 0.0, "reference"), ("el2n", HOSTILE, 0.5, "data")):
            run = tracker.start_cell(Cell("fashion-mnist", method, ratio, seed, "smoke", label=label), "hostile", {},
                                     {**tags, "family": family})
            run.finish({"test_accuracy": 0.8 + 0.01 * seed - 0.1 * ratio, "kept_fraction": 1 - ratio,
                        "total_sample_passes_rel": 1 - ratio, "train_seconds": 1.0})
    return build_and_publish(uri, "hostile", tmp_path / "out", log_board=False)


def test_a_hostile_label_gives_a_board_with_plots(hostile_board):
    pngs = [p for p in hostile_board.files if p.suffix == ".png"]
    assert len(pngs) == 3 and all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)


def test_a_hostile_label_cannot_add_a_markdown_column_or_carry_html(hostile_board):
    import re

    tables, block = [], []
    for line in hostile_board.markdown.splitlines() + [""]:
        if line.startswith("|"):
            block.append(len(re.findall(r"(?<!\\)\|", line)))  # column separators: unescaped pipes
        elif block:
            tables.append(block)
            block = []
    assert any("frac" in line for line in hostile_board.markdown.splitlines() if line.startswith("|"))
    assert tables and all(len(set(counts)) == 1 for counts in tables), tables
    assert "<b>" not in hostile_board.markdown and "&lt;b>bold&lt;/b>" in hostile_board.markdown
    html = hostile_board.files[1].read_text()
    assert "<b>bold</b>" not in html and "&lt;b&gt;bold&lt;/b&gt;" in html


# --- limits, types and ranges --------------------------------------------------------------------


def test_too_many_cells_are_refused_before_they_are_built(monkeypatch):
    from benchmark.sweeps.cells import MAX_CELLS

    monkeypatch.setattr(Sweep, "cells", lambda self: pytest.fail("built the cells of an over-limit sweep"))
    problems = problems_of(sweep_dict(seeds=list(range(MAX_CELLS)), ratios=[0.1, 0.5]))
    assert any("exceed the limit" in p and f"{3 * MAX_CELLS:,} cells" in p for p in problems), problems


@pytest.mark.parametrize("changes, fragment", [
    ({"ratios": ["0.5"]}, "ratio '0.5' must be a number"),
    ({"seeds": ["0"]}, "seed '0' must be a non-negative integer"),
    ({"methods": [{"name": "el2n", "options": {"bins": 0, "mode": "stratified"}}]}, "bins must be an integer in [1"),
    ({"methods": [{"name": "el2n", "options": {"proxy_runs": 10**30}}]}, "proxy_runs must be an integer in [1, 100]"),
    ({"methods": [{"name": "el2n", "options": {"score_epochs": 10**9}}]}, "score_epochs must be an integer in [1"),
    ({"methods": [{"name": "random", "label": "x" * 500}]}, "'label' is 500 characters long"),
    ({"methods": [{"name": "random", "label": "two\nlines"}]}, "one line"),
])
def test_wrong_types_and_ranges_are_named(changes, fragment):
    problems = problems_of(sweep_dict(**changes))
    assert any(fragment in p for p in problems), problems


def test_stratified_selection_refuses_zero_bins():
    from methods.data.selection import stratified

    with pytest.raises(ValueError, match="bins >= 1"):
        stratified(torch.rand(20), 5, 0, 0, torch.Generator().manual_seed(0))


@pytest.mark.parametrize("args, fragment", [
    (["--max-cells", "-5"], "--max-cells: must be an integer >= 1, got -5"),
    (["--max-cells", "0"], "--max-cells: must be an integer >= 1, got 0"),
    (["--claim-ttl", "inf"], "--claim-ttl: must be a finite number"),
    (["--heartbeat", "-1"], "--heartbeat: must be a finite number"),
    (["--max-in-flight", "x"], "--max-in-flight: must be an integer, got 'x'"),
    (["--experiment", "a/b"], "may hold only"),
])
def test_run_options_out_of_range_are_usage_errors(capsys, args, fragment):
    with pytest.raises(SystemExit) as exit_:
        cli.main(["run", "sweeps/smoke.yaml", *args])
    assert exit_.value.code == 2 and fragment in capsys.readouterr().err


# --- loaders: shape and nesting -------------------------------------------------------------------


def test_fashion_mnist_file_of_32x32_images_is_a_data_format_error_naming_it(tmp_path):
    data = write_synthetic(tmp_path / "data", size=32)
    with pytest.raises(DataFormatError) as error:
        FashionMNIST("smoke", data_dir=str(data)).read_arrays()
    assert str(data / FILES["train_images"]) in str(error.value) and "28x28" in str(error.value)
    # and validate says so before any compute, from the files' headers
    problems = problems_of_checked(sweep_dict(tasks=[{"name": "fashion-mnist", "data_dir": str(data)}]))
    assert any(str(data / FILES["train_images"]) in p and "28x28" in p for p in problems), problems


def problems_of_checked(data) -> list[str]:
    with pytest.raises(SweepError) as error:
        parse_sweep(data, check_data=True)
    return error.value.problems


@pytest.mark.parametrize("suffix", [".json", ".jsonl", ".json.gz"])
def test_deeply_nested_alpaca_json_is_a_data_format_error_naming_it(tmp_path, suffix):
    from tasks.sft.records import read_records

    deep = "[" * 200_000 + "]" * 200_000
    record = '{"instruction": "a", "output": "b", "extra": ' + deep + "}"
    text = record + "\n" if suffix == ".jsonl" else "[" + record + "]"
    path = tmp_path / f"alpaca{suffix}"
    path.write_bytes(gzip.compress(text.encode()) if suffix.endswith(".gz") else text.encode())
    with pytest.raises(DataFormatError) as error:
        read_records(path)
    assert str(path) in str(error.value) and "nested too deeply" in str(error.value)
