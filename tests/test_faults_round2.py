"""Faults and hostile input, second round (issue 28): each test reproduces one row of the
issue's table on purpose (a race forced at its window, a symlink, a secret, a signal, a full
disk) and checks that the harness now holds."""
from __future__ import annotations

import threading
from pathlib import Path

import pytest
from mlflow.entities import Dataset, DatasetInput, InputTag

from benchmark.sweeps import evidence_log as evidence
from benchmark.sweeps.cells import Cell
from benchmark.sweeps.tracking import Tracker


def sqlite_uri(directory: Path) -> str:
    return f"sqlite:///{directory}/mlflow.db"


# --- two runners recording the same data set input at once ----------------------------------------


def same_dataset() -> DatasetInput:
    dataset = Dataset(name="fashion-mnist", digest="d1g3st", source_type="local", source='"/data"', profile="{}")
    return DatasetInput(dataset, tags=[InputTag("mlflow.data.context", "train")])


def test_two_runners_logging_the_same_new_data_set_at_once_both_record_it(tmp_path, monkeypatch):
    """The race forced at its window: runner A has looked for the data set row (none yet) and is
    about to insert it when runner B inserts the same row. Before the fix A's insert hit the
    store's key on (experiment, name, digest) and the sweep stopped with a store fault."""
    import mlflow.store.tracking.sqlalchemy_store as sql_store

    tracker = Tracker(sqlite_uri(tmp_path), "race")
    runs = [tracker.start_cell(Cell("fashion-mnist", "random", r, 0, "smoke", label="random"), "race", {}, {})
            for r in (0.3, 0.5)]
    real_uuid = sql_store.uuid
    raced = []

    class RaceAtTheWindow:
        """``uuid.uuid4`` as the store calls it, between its look-up and its insert: the first
        call lets the other runner (its own thread and connection) log the same data set first."""

        @staticmethod
        def uuid4():
            if not raced:
                raced.append(True)
                other = threading.Thread(target=lambda: runs[1].client.log_inputs(runs[1].run_id,
                                                                                    datasets=[same_dataset()]))
                other.start()
                other.join()
            return real_uuid.uuid4()

    monkeypatch.setattr(sql_store, "uuid", RaceAtTheWindow)
    monkeypatch.setattr(evidence, "write_artifacts", lambda *args: [])
    monkeypatch.setattr(evidence, "dataset_input", lambda plan, ev: same_dataset())
    evidence.log_evidence(runs[0], None, None, "race", "v")
    assert raced
    for run in runs:
        [logged] = tracker.client.get_run(run.run_id).inputs.dataset_inputs
        assert (logged.dataset.name, logged.dataset.digest) == ("fashion-mnist", "d1g3st")


# --- links planted in the results folder ---------------------------------------------------------


def published_board(tmp_path: Path, out: Path):
    from test_board import fill_store

    from benchmark.boards.publish import build_and_publish

    uri = sqlite_uri(tmp_path)
    fill_store(uri)
    return build_and_publish(uri, "board", out, log_board=False)


@pytest.mark.parametrize("planted", ["board.md", "board.html", "board-plots"])
def test_the_board_never_writes_through_a_link_out_of_its_folder(tmp_path, planted):
    from benchmark.boards.safe_files import UnsafePathError

    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "results"
    out.mkdir()
    (out / planted).symlink_to(outside if planted.endswith("plots") else victim)
    with pytest.raises(UnsafePathError, match="symbolic link"):
        published_board(tmp_path, out)
    assert victim.read_text() == "keep me"
    assert sorted(p.name for p in outside.iterdir()) == ["victim.txt"]


def test_the_leaderboard_command_refuses_a_planted_link_with_one_message(tmp_path, capsys):
    from test_board import fill_store

    from benchmark import cli

    uri = sqlite_uri(tmp_path)
    fill_store(uri)
    out = tmp_path / "results"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / "board.md").symlink_to(victim)
    code = cli.main(["leaderboard", "--tracking-uri", uri, "--experiment", "board", "--out", str(out), "--no-mlflow"])
    said = capsys.readouterr().err
    assert code == 1 and "board.md" in said and "symbolic link" in said and "Traceback" not in said
    assert victim.read_text() == "keep me"


def test_a_board_in_a_clean_folder_is_written_whole(tmp_path):
    out = tmp_path / "results"
    published = published_board(tmp_path, out)
    assert [p.name for p in published.files[:2]] == ["board.md", "board.html"]
    assert published.files[0].read_text() == published.markdown
    pngs = sorted((out / "board-plots").iterdir())
    assert pngs and all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)
    assert not [p for p in out.rglob(".*.tmp")]


# --- secrets in URIs -------------------------------------------------------------------------------


@pytest.mark.parametrize("text, shown", [
    ("postgresql://h/db?user=u&password=S3CRET", "postgresql://h/db?user=u&password=***"),
    ("http://T0KEN@host:5000", "http://***@host:5000"),
    ("https://alice:S3CRET@host/x?token=T0KEN&page=2", "https://alice:***@host/x?token=***&page=2"),
    ("s3://b/k?X-Amz-Signature=S1G&X-Amz-Credential=AK%2Fx&x=1", "s3://b/k?X-Amz-Signature=***&X-Amz-Credential=***&x=1"),
    ("mysql://u@h/db?ssl_key=/k&sslpassword=S3CRET", "mysql://***@h/db?ssl_key=***&sslpassword=***"),
    ("host=h password=S3CRET dbname=d", "host=h password=*** dbname=d"),
    ("run --tracking-uri=http://a:S3CRET@h --api_key=K3Y", "run --tracking-uri=http://a:***@h --api_key=***"),
    ("Authorization: Bearer T0KEN.abc", "Authorization: Bearer ***"),
    ("http://host:5000/path?experiment=3&author=me", "http://host:5000/path?experiment=3&author=me"),
    ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
])
def test_redact_hides_every_secret_a_uri_can_hold(text, shown):
    from benchmark.sweeps.store import redact

    assert redact(text) == shown


@pytest.mark.parametrize("uri", ["postgresql://127.0.0.1:1/db?user=u&password=S3CRET", "http://T0KEN@127.0.0.1:1"])
def test_a_store_error_never_prints_a_secret_of_the_uri(tmp_path, capsys, monkeypatch, uri):
    from benchmark import cli

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "3")
    sweep = tmp_path / "s.yaml"
    sweep.write_text("name: tiny\nprofile: smoke\nseeds: [0]\nratios: [0.5]\ntasks: [fashion-mnist]\nmethods: [random]\n")
    code = cli.main(["run", str(sweep), "--tracking-uri", uri])
    captured = capsys.readouterr()
    said = captured.out + captured.err
    assert code == 3 and "tracking store" in said, said
    assert "S3CRET" not in said and "T0KEN" not in said and "***" in said, said


# --- child servers: secrets out of argv, signals forwarded ------------------------------------------


def test_the_server_child_gets_its_store_uri_in_the_environment_not_in_argv(tmp_path):
    from benchmark.sweeps.server import mlflow_child, server_command

    child = server_command(tmp_path, backend_store_uri="postgresql://u:S3CRET@db/mlflow",
                           artifacts_destination="s3://bucket/a?X-Amz-Signature=S1G")
    assert "S3CRET" not in " ".join(child.argv) and "S1G" not in " ".join(child.argv)
    # besides the store and artifacts, only the path that finds the narrow-read app (no secret)
    assert {k: v for k, v in child.env.items() if k != "PYTHONPATH"} == {
        "MLFLOW_BACKEND_STORE_URI": "postgresql://u:S3CRET@db/mlflow",
        "MLFLOW_ARTIFACTS_DESTINATION": "s3://bucket/a?X-Amz-Signature=S1G"}
    assert "S3CRET" not in child.env["PYTHONPATH"] and ".mlflow-app" in child.env["PYTHONPATH"]
    ui = mlflow_child("ui", "postgresql://u:S3CRET@db/mlflow", "127.0.0.1", 5000)
    assert "S3CRET" not in " ".join(ui.argv) and ui.env["MLFLOW_BACKEND_STORE_URI"].endswith("@db/mlflow")


def descendants(pid: int) -> list[int]:
    """Every live process below ``pid`` (read from /proc: Linux)."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found, frontier = [], [pid]
    while frontier:
        children = [p for p, parent in parents.items() if parent in frontier]
        found += children
        frontier = children
    return found


def command_line(pid: int) -> str:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def alive(pid: int) -> bool:
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def answers(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url + "/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.mark.slow  # a real MLflow server starts: 30-60 s on a loaded machine
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc (Linux)")
@pytest.mark.parametrize("verb", ["server", "ui"])
def test_sigterm_to_prunebench_stops_its_mlflow_child_and_no_argv_shows_the_store(tmp_path, verb):
    """A real ``prunebench server`` / ``ui``: once it answers, no process of its tree shows the
    store's URI on its command line; SIGTERM to prunebench (not to its group) stops the child
    and its workers, and the port stops answering."""
    import os
    import signal
    import subprocess
    import sys
    import time

    from benchmark.sweeps.server import free_port, wait_healthy

    port = free_port()
    store = f"sqlite:///{tmp_path}/secret-store-name.db"
    args = (["server", "--dir", str(tmp_path / "srv"), "--backend-store-uri", store, "--workers", "1"]
            if verb == "server" else ["ui", "--tracking-uri", store])
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen([sys.executable, "-m", "benchmark.cli", *args, "--port", str(port)],
                               env={**os.environ, "PYTHONPATH": str(root)}, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL, start_new_session=True)
    tree = []
    try:
        wait_healthy(f"http://127.0.0.1:{port}", timeout=180)
        tree = descendants(process.pid)
        assert tree, "the server runs in a child process"
        shown = [command_line(pid) for pid in tree]
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
        deadline = time.time() + 30
        while time.time() < deadline and any(alive(pid) for pid in tree):
            time.sleep(0.2)
        assert not [pid for pid in tree if alive(pid)], [command_line(pid) for pid in tree if alive(pid)]
        assert not answers(f"http://127.0.0.1:{port}")
        assert not [line for line in shown if "secret-store-name" in line], shown
    finally:
        for pid in [process.pid, *tree]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        process.wait()


# --- run tags holding markup -------------------------------------------------------------------------


MARKUP = {"task": "t<script>alert(1)</script>", "code_version": "v<img src=x onerror=alert(1)>",
          "data_origin": "[click](javascript:alert(1)) *real*"}


@pytest.fixture
def tagged_board(tmp_path):
    """A real store whose cells' tags task, code_version and data_origin hold HTML and markdown,
    published everywhere: files, the board's run, the experiment description, summary runs."""
    from benchmark.boards.publish import build_and_publish

    uri = sqlite_uri(tmp_path)
    tracker = Tracker(uri, "tagged")
    tags = {"family": "data", "provenance": "reconstructed", "metric": "accuracy", "chance_level": "0.1"}
    for seed in (0, 1):
        for method, ratio, family in (("none", 0.0, "reference"), ("random", 0.5, "data")):
            run = tracker.start_cell(Cell("fashion-mnist", method, ratio, seed, "smoke", label=method), "tagged", {},
                                     {**tags, "family": family})
            for key, value in MARKUP.items():
                tracker.client.set_tag(run.run_id, key, value)
            run.finish({"test_accuracy": 0.8 + 0.01 * seed - 0.1 * ratio, "kept_fraction": 1 - ratio,
                        "total_sample_passes_rel": 1 - ratio, "train_seconds": 1.0})
    published = build_and_publish(uri, "tagged", tmp_path / "out", command="prunebench leaderboard `x` --y")
    return tracker, published


def raw_markup(text: str) -> list[str]:
    import re

    return re.findall(r"<script|<img|<b>|(?<!\\)\[click(?<!\\)\]|(?<!\\)\*real", text)


def test_markup_in_run_tags_is_escaped_in_every_board(tagged_board):
    tracker, published = tagged_board
    assert "alert(1)" in published.markdown  # shown, as text
    assert raw_markup(published.markdown) == [], published.markdown
    assert "t&lt;script>alert(1)&lt;/script>" in published.markdown
    assert "\\[click\\](javascript:alert(1)) \\*real\\*" in published.markdown
    assert "Command: ``prunebench leaderboard `x` --y``" in published.markdown  # one code span, not two
    html = published.files[1].read_text()
    assert "<script>alert" not in html and "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html
    experiment = tracker.client.get_experiment(published.experiment_id)
    note = experiment.tags["mlflow.note.content"]
    assert "alert(1)" in note and raw_markup(note) == [], note
    summaries = tracker.client.search_runs([published.experiment_id], "tags.run_type = 'summary'")
    assert summaries
    for run in summaries:
        assert raw_markup(run.data.tags["mlflow.note.content"]) == [], run.data.tags["mlflow.note.content"]


# --- a local Ray instance ----------------------------------------------------------------------------


def listening_addresses(pids: list[int]) -> list[str]:
    """The local addresses of the TCP sockets the processes ``pids`` listen on (from /proc)."""
    import ipaddress
    import os

    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    found = []
    for table, width in (("tcp", 8), ("tcp6", 32)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] != "0A" or fields[9] not in inodes:  # 0A: LISTEN
                continue
            raw = bytes.fromhex(fields[1].split(":")[0])
            # /proc prints each 32-bit word in host (little-endian) order
            swapped = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
            found.append(str(ipaddress.ip_address(swapped)))
    return found


def is_loopback(address: str) -> bool:
    import ipaddress

    ip = ipaddress.ip_address(address)
    ip = ip.ipv4_mapped or ip if isinstance(ip, ipaddress.IPv6Address) else ip
    return ip.is_loopback


@pytest.mark.slow  # a local Ray instance starts: about 25 s here
@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="reads /proc (Linux)")
def test_a_local_ray_instance_listens_on_loopback_only(tmp_path, monkeypatch):
    """``--executor ray`` without ``--address``: while the sweep runs, every TCP socket that Ray's
    processes (GCS, raylet, workers, agents) and the driver listen on is bound to loopback."""
    import os

    ray = pytest.importorskip("ray")
    from benchmark.sweeps import ray_executor
    from benchmark.sweeps.cells import parse_sweep

    seen = {}
    # servers this session started before (a session fixture's Slurm daemons listen on 0.0.0.0)
    # are not Ray's: only the processes that appear while the sweep runs are looked at
    before = set(descendants(os.getpid()))

    def drive(ray_module, *args):
        ray_module.get(ray_module.remote(lambda: 1).remote())  # a worker is up
        started = [pid for pid in descendants(os.getpid()) if pid not in before]
        seen["addresses"] = listening_addresses([os.getpid(), *started])

    monkeypatch.setattr(ray_executor, "_drive", drive)
    sweep = parse_sweep({"name": "ray-bind", "profile": "smoke", "seeds": [0], "ratios": [0.5],
                         "tasks": ["fashion-mnist"], "methods": ["random"]}, check_data=False)
    assert not ray.is_initialized()
    ray_executor.run_sweep_ray(sweep, Tracker(sqlite_uri(tmp_path), "ray-bind"), tmp_path / "cache", quiet=True)
    assert len(seen["addresses"]) >= 3, seen  # GCS, raylet, a worker at least
    assert [a for a in seen["addresses"] if not is_loopback(a)] == [], seen
    assert not ray.is_initialized() and os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") is None


# --- sweep files: a size cap before parsing, duplicate keys -------------------------------------------


SWEEP_TEXT = "name: ok\nprofile: smoke\nseeds: [0]\nratios: [0.5]\ntasks: [fashion-mnist]\nmethods: [random]\n"


@pytest.mark.parametrize("suffix", [".yaml", ".toml"])
def test_a_sweep_file_over_the_size_cap_is_refused_before_it_is_parsed(tmp_path, monkeypatch, suffix):
    import tomllib

    import yaml

    from benchmark.sweeps.cells import MAX_SWEEP_BYTES, SweepError, read_sweep_file

    seeds = ", ".join(["7"] * (MAX_SWEEP_BYTES // 3 + 10))
    path = tmp_path / f"sweep{suffix}"
    path.write_text(f"seeds: [{seeds}]\n" if suffix == ".yaml" else f"seeds = [{seeds}]\n")
    assert path.stat().st_size > MAX_SWEEP_BYTES

    def never(*args, **kwargs):
        raise AssertionError("the parser ran on a file over the cap")

    for module, name in ((yaml, "safe_load"), (yaml, "load"), (tomllib, "loads")):
        monkeypatch.setattr(module, name, never)
    with pytest.raises(SweepError) as error:
        read_sweep_file(path)
    [problem] = error.value.problems
    assert f"larger than {MAX_SWEEP_BYTES:,} bytes" in problem


def test_the_size_cap_is_stated_in_the_readme():
    from benchmark.sweeps.cells import MAX_SWEEP_BYTES

    assert MAX_SWEEP_BYTES == 1024 * 1024
    assert "larger than 1 MiB" in (Path(__file__).resolve().parent.parent / "README.md").read_text()


@pytest.mark.parametrize("text, key, lines", [
    (SWEEP_TEXT + "name: other\n", "'name'", (7, 1)),
    (SWEEP_TEXT.replace("methods: [random]", "methods:\n  - name: el2n\n    options: {proxy_runs: 1, proxy_runs: 2}"),
     "'proxy_runs'", (8, 8)),
])
def test_a_key_given_twice_in_a_yaml_sweep_is_refused_naming_both_lines(tmp_path, text, key, lines):
    from benchmark.sweeps.cells import SweepError, read_sweep_file

    path = tmp_path / "sweep.yaml"
    path.write_text(text)
    with pytest.raises(SweepError) as error:
        read_sweep_file(path)
    [problem] = error.value.problems
    assert f"line {lines[0]}" in problem and f"the key {key} is given twice (first at line {lines[1]})" in problem


def test_a_merge_key_may_still_be_overridden(tmp_path):
    from benchmark.sweeps.cells import read_sweep_file

    path = tmp_path / "sweep.yaml"
    path.write_text("x: &base {epochs: 1, lr: 0.1}\ny: {<<: *base, epochs: 3}\n")
    assert read_sweep_file(path)["y"] == {"epochs": 3, "lr": 0.1}


# --- counts, ratios and split sizes, refused before any compute ----------------------------------------


def sweep_problems(tasks, methods=("random",), ratios=(0.5,), check_data=False) -> list[str]:
    from benchmark.sweeps.cells import SweepError, parse_sweep

    with pytest.raises(SweepError) as error:
        parse_sweep({"name": "t", "profile": "smoke", "seeds": [0], "ratios": list(ratios), "tasks": tasks,
                     "methods": list(methods)}, check_data=check_data)
    return error.value.problems


@pytest.mark.parametrize("task, methods, fragment", [
    ({"name": "fashion-mnist", "options": {"epochs": 1_000_000_000}}, ["random"], "'epochs' must be at most 10,000"),
    ({"name": "fashion-mnist", "options": {"batch_size": 10**9}}, ["random"], "'batch_size' must be at most"),
    ({"name": "fashion-mnist", "options": {"eval_batch_size": 10**9}}, ["random"], "'eval_batch_size' must be at most"),
    ({"name": "fashion-mnist", "options": {"train_limit": 10**12}}, ["random"], "'train_limit' must be at most"),
    ({"name": "fashion-mnist", "options": {"model_options": {"width": 10**9}}}, ["random"],
     "'model_options' must be a mapping whose integer values are in [0, 1,048,576]"),
    ({"name": "cwru-sim", "options": {"window": 10**9}}, ["random"], "window must be an integer in [256, 1048576]"),
    ("fashion-mnist", [{"name": "magnitude", "options": {"updates": 10**9}}], "updates must be an integer in [1, 100000]"),
    ("fashion-mnist", [{"name": "seven", "options": {"pre_batches": 10**9}}], "pre_batches must be an integer in"),
    ("fashion-mnist", [{"name": "ted", "options": {"stages": 10**9}}], "stages must be an integer in [1, 1000]"),
])
def test_every_count_option_has_an_upper_bound(task, methods, fragment):
    problems = sweep_problems([task], methods)
    assert any(fragment in p for p in problems), problems


def fashion_folder(tmp_path: Path, n_train: int, n_test: int = 100) -> str:
    from tasks.vision.fashion_mnist import write_synthetic

    return str(write_synthetic(tmp_path / f"fm-{n_train}", n_train=n_train, n_test=n_test))


def test_a_ratio_that_keeps_no_training_sample_is_refused_by_validate(tmp_path):
    folder = fashion_folder(tmp_path, 640)  # smoke: 640 images, 64 carved out: 576 to train on
    [problem] = sweep_problems([{"name": "fashion-mnist", "data_dir": folder}], ratios=(0.9999,), check_data=True)
    assert "ratio 0.9999 keeps 0 of the 576 training samples" in problem and "at most 0.9991" in problem
    from benchmark.sweeps.cells import parse_sweep

    kept = parse_sweep({"name": "t", "profile": "smoke", "seeds": [0], "ratios": [0.9991],
                        "tasks": [{"name": "fashion-mnist", "data_dir": folder}], "methods": ["random"]})
    assert len(kept.cells()) == 2  # the largest ratio it named keeps one sample: valid


def test_a_fashion_mnist_folder_too_small_for_its_splits_is_refused_by_validate(tmp_path):
    folder = fashion_folder(tmp_path, 5)
    [problem] = sweep_problems([{"name": "fashion-mnist", "data_dir": folder}], check_data=True)
    assert "validation split would hold 0 sample(s)" in problem
    assert "at least 10 training images" in problem and folder in problem


def test_a_split_too_small_fails_the_cell_with_the_message_not_a_torch_error(tmp_path):
    """Past validate (a folder that shrank after it): loading the cell's splits names the split."""
    from benchmark.sweeps.execute import load_splits_with_provenance, plan_cell
    from benchmark.api.task import DataFormatError

    folder = fashion_folder(tmp_path, 5)
    plan = plan_cell(Cell("fashion-mnist", "random", 0.5, 0, "smoke", label="random"), folder)
    with pytest.raises(DataFormatError, match="validation split would hold 0"):
        load_splits_with_provenance(plan, __import__("torch").device("cpu"))


# --- a full disk: the cache, the store ---------------------------------------------------------------


@pytest.fixture
def full_disk(tmp_path):
    """A folder on an 8 MiB tmpfs, which the test fills to the last byte (a real ENOSPC from the kernel);
    skipped where mounting is not allowed (not root, a container without CAP_SYS_ADMIN)."""
    import subprocess

    mount = tmp_path / "full"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): the /dev/full variant covers the cache")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def fill(folder: Path) -> None:
    import errno
    import os

    with open(folder / "filler", "wb", buffering=0) as handle:  # unbuffered: nothing left to flush on close
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError as error:
            assert error.errno == errno.ENOSPC
    assert os.statvfs(folder).f_bavail == 0


@pytest.fixture(scope="module")
def tiny_splits():
    from helpers_tiny import tiny_task

    task = tiny_task()
    return task, task.load_splits()


def el2n_scores(tiny_splits, cache_dir: Path):
    import torch

    from benchmark.training.context import RunContext
    from benchmark.api.registry import METHODS

    torch.set_num_threads(1)
    task, splits = tiny_splits
    method = METHODS.get("el2n")(0.5, 0, proxy_runs=1, score_epochs=1)
    context = RunContext(task=task, splits=splits, device=torch.device("cpu"), seed=0, cache_dir=cache_dir)
    method.prepare(context)
    return method, context


@pytest.fixture(scope="module")
def el2n_reference(tiny_splits, tmp_path_factory):
    method, _ = el2n_scores(tiny_splits, tmp_path_factory.mktemp("cache-ok"))
    return method.scores.clone(), method.subset.clone()


@pytest.mark.parametrize("disk", ["tmpfs", "dev-full"])
def test_a_cache_on_a_full_disk_costs_the_cell_nothing_and_names_the_path(tiny_splits, el2n_reference, tmp_path,
                                                                          capsys, monkeypatch, request, disk):
    """EL2N scores its data, then cannot write its cache (the disk is full): the cell keeps the
    scores it computed, with a warning naming the file and the cause. Before, torch.save failed
    with "enforce fail at inline_container.cc" and the cell, its scores with it, was lost."""
    import os

    import torch

    from benchmark.training.context import RunContext

    if disk == "tmpfs":
        cache = request.getfixturevalue("full_disk")
        fill(cache)
        target = None
    else:  # portable: the file the cache is written through is /dev/full (every write: ENOSPC)
        cache = tmp_path / "cache"
        target = cache / "el2n" / "entry.pt"
        target.parent.mkdir(parents=True)
        (target.parent / f"entry.pt.{os.getpid()}.tmp").symlink_to("/dev/full")
        monkeypatch.setattr(RunContext, "cache_path", lambda self, kind, key: target)
    method, context = el2n_scores(tiny_splits, cache)
    scores, subset = el2n_reference
    assert torch.equal(method.scores, scores) and torch.equal(method.subset, subset)
    assert context.scoring_sample_passes > 0  # charged as computed, not as cached
    said = capsys.readouterr().err
    assert "warning: cannot write the EL2N score cache" in said and "No space left on device" in said, said
    assert str(cache) in said and "goes on with the result it computed" in said
    if target is not None:
        assert not target.exists()
    else:
        assert [p.name for p in cache.rglob("*") if p.is_file()] == ["filler"]


def test_a_store_on_a_full_disk_stops_with_a_free_space_fix(full_disk, capsys):
    """A real SQLite store on a full tmpfs: the sweep stops at once (exit 3) and the fix says to
    free space where the store is, not "check the store"."""
    from benchmark import cli
    from benchmark.sweeps.tracking import Tracker

    uri = f"sqlite:///{full_disk}/mlflow.db"
    Tracker(uri, "tiny")  # the store exists; then the disk fills up
    fill(full_disk)
    sweep = full_disk.parent / "s.yaml"
    sweep.write_text(SWEEP_TEXT.replace("name: ok", "name: tiny"))
    code = cli.main(["run", str(sweep), "--tracking-uri", uri, "--cache-dir", str(full_disk.parent / "c")])
    said = capsys.readouterr().err
    assert code == 3, said
    [error] = [line for line in said.splitlines() if line.startswith("error:")]
    assert "disk is full" in error and f"Fix: free space on the disk that holds {full_disk}" in error, error


@pytest.mark.parametrize("cause", ["(sqlite3.OperationalError) database or disk is full",
                                   "(psycopg2.errors.DiskFull) could not extend file: No space left on device",
                                   "[Errno 28] No space left on device: '/srv/mlartifacts/1/abc'"])
def test_every_form_of_a_full_store_gets_the_free_space_fix(cause):
    from benchmark.sweeps.store import StoreError

    error = StoreError("postgresql://u:pw@db/mlflow", "cannot log", RuntimeError(cause))
    assert "Fix: free space on" in str(error) and "pw" not in str(error), str(error)


# --- a local hub-layout folder edited after a first load ---------------------------------------------


def test_an_edited_local_hub_folder_is_read_again_with_a_new_revision(tmp_path, monkeypatch):
    import datasets
    from helpers_hub import write_hub_repo

    from tasks.hub import HubDataset

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    repo = tmp_path / "repo"
    source = HubDataset("t", str(repo), "c")
    write_hub_repo(repo, {"c": {"train": {"text": ["a", "b"], "label": [0, 1]}}})
    first, first_tags = source.load({"train": "train"}, "-")
    write_hub_repo(repo, {"c": {"train": {"text": ["x", "y", "z"], "label": [0, 1, 1]}}})
    second, second_tags = source.load({"train": "train"}, "-")
    assert list(first["train"]["text"]) == ["a", "b"] and list(second["train"]["text"]) == ["x", "y", "z"]
    assert first_tags["data.hub_revision"] != second_tags["data.hub_revision"]
    # the revision is the content's: the same files in another folder give the same one
    copy = tmp_path / "copy"
    write_hub_repo(copy, {"c": {"train": {"text": ["x", "y", "z"], "label": [0, 1, 1]}}})
    same, same_tags = HubDataset("t", str(copy), "c").load({"train": "train"}, "-")
    assert same_tags["data.hub_revision"] == second_tags["data.hub_revision"]
    third, third_tags = source.load({"train": "train"}, "-")  # unchanged: the same revision again
    assert third_tags["data.hub_revision"] == second_tags["data.hub_revision"]
