"""The hostile plugin suite (issue 28): methods written to game or break the harness
(tests/hostile_plugins/, one file per behaviour) run in a real smoke sweep on a real SQLite
store beside honest ones. Each hostile cell fails with a message naming it (or, for a plugin
that hangs at import, is refused before running), no hostile cell reaches the board, and
every other cell finishes."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

# each import registers its hostile method in the global registry
import hostile_plugins.overwrite_metric
import hostile_plugins.raise_in_init
import hostile_plugins.raise_in_recipe_check
import hostile_plugins.repeat_indices
import hostile_plugins.system_exit_in_hook
import hostile_plugins.wrong_mask_shape  # noqa: F401
import pytest
import torch
import yaml
from helpers_tiny import one_cpu_thread  # noqa: F401  (fixture)
from mlflow.tracking import MlflowClient

from benchmark.sweeps.cells import parse_sweep
from benchmark.boards.leaderboard import build_board, load_runs
from benchmark.sweeps.runner import run_sweep
from benchmark.sweeps.tracking import Tracker
from tasks.vision.fashion_mnist import write_synthetic

ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent

#: method -> what its failed cell's error must say (seed 0 and seed 1 alike, except raise-in-init)
EXPECTED = {
    "hostile-overwrite-metric": r"method 'hostile-overwrite-metric' summary\(\) returned 'test_accuracy' = 1.0, "
                                r"but the harness measured 0\.\d+",
    "hostile-repeat-indices": r"method 'hostile-repeat-indices' on_epoch_start returned 90 indices of which only 1 "
                              r"are distinct",
    "hostile-wrong-mask-shape": r"method 'hostile-wrong-mask-shape' broke the method contract in on_run_start: the "
                                r"mask of '[\w.]+' has shape \(1,\); expected exactly its weight's shape",
    "hostile-system-exit": r"method 'hostile-system-exit' raised in on_epoch_end: SystemExit: 3",
    "hostile-raise-in-init": r"method 'hostile-raise-in-init' raised in __init__: RuntimeError: hostile __init__ "
                             r"refuses seed 1",
}


def sweep_of(tmp_path: Path, methods: list[str]):
    data = write_synthetic(tmp_path / "data")  # 200 images: 180 train, 20 validation
    return parse_sweep({"name": "hostile", "profile": "smoke", "seeds": [0, 1], "ratios": [0.5],
                        "tasks": [{"name": "fashion-mnist", "data_dir": str(data), "options": {"epochs": 1}}],
                        "methods": methods})


def test_hostile_methods_fail_their_own_cells_and_never_reach_the_board(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    sweep = sweep_of(tmp_path, ["random", *EXPECTED])
    report = run_sweep(sweep, Tracker(uri, "hostile"), torch.device("cpu"), tmp_path / "cache", quiet=True)

    cells = {(c.method, c.seed): c.id for c in sweep.cells()}
    hostile = {key: cid for key, cid in cells.items()
               if key[0] in EXPECTED and key != ("hostile-raise-in-init", 0)}
    honest = {key: cid for key, cid in cells.items() if key not in hostile}
    assert len(hostile) == 9 and len(honest) == 5  # reference, random and raise-in-init's seed 0, x seeds
    assert set(report.failed) == set(hostile.values()), report.failed
    assert sorted(report.finished) == sorted(honest.values())  # every other cell finished
    for (method, _), cid in hostile.items():
        assert re.match(rf"MethodError: {EXPECTED[method]}", report.failed[cid]), report.failed[cid]

    # in the store: each hostile cell is one failed run carrying its error and its traceback
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("hostile").experiment_id], max_results=1000)
    by_cell = {}
    for run in runs:
        by_cell.setdefault(run.data.tags["cell_id"], []).append(run)
    for (method, _), cid in hostile.items():
        [run] = by_cell[cid]
        assert run.data.tags["status"] == "failed" and run.info.status == "FAILED"
        assert method in run.data.tags["error"]
        traceback_text = Path(client.download_artifacts(run.info.run_id, "traceback.txt", str(tmp_path))).read_text()
        assert f"MethodError: method '{method}'" in traceback_text
    assert all(run.data.tags["status"] == "finished" for cid in honest.values() for run in by_cell[cid])

    board = build_board(load_runs(uri, "hostile"), "hostile")
    assert set(board.runs.cell_id) == set(honest.values())
    assert not set(board.runs.cell_id) & set(hostile.values())
    assert (board.runs.value < 1.0).all()  # no claimed 1.0 anywhere


def test_a_recipe_check_that_raises_refuses_the_sweep_naming_the_method(tmp_path):
    from benchmark.sweeps.cells import SweepError

    with pytest.raises(SweepError) as error:
        sweep_of(tmp_path, ["random", "hostile-raise-in-recipe-check"])
    assert error.value.problems == [
        "method 'hostile-raise-in-recipe-check' on task 'fashion-mnist' (smoke profile, 1 epoch(s)): its recipe "
        "check raised KeyError: 'epochs_total'; fix the method's recipe_problem / recipe_warning"]


def test_a_plugin_hanging_at_import_is_reported_and_blocks_nothing(tmp_path):
    """Issue 28: an entry-point plugin that hangs at import made `list`, and `validate` of any
    sweep naming another plugin, hang silently. With a 3 s limit both answer, name it, and a
    sweep naming another plugin validates; one naming it is refused before running."""
    site = tmp_path / "site"
    info = site / "pb_hostile-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pb_hostile\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[prunebench.methods]\n"
                                           "hostile-hang-at-import = hostile_plugins.hang_at_import\n"
                                           "hostile-repeat-indices = hostile_plugins.repeat_indices\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(TESTS), str(ROOT)]),
           "PRUNEBENCH_IMPORT_TIMEOUT_S": "3"}
    data = write_synthetic(tmp_path / "data")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    def sweep(methods: list[str]) -> str:
        path = tmp_path / f"{'-'.join(methods)}.yaml"
        path.write_text(yaml.safe_dump({"name": "h", "profile": "smoke", "seeds": [0], "ratios": [0.5],
                                        "tasks": [{"name": "fashion-mnist", "data_dir": str(data)}],
                                        "methods": methods}))
        return str(path)

    hang = ("failed to load: plugin module hostile_plugins.hang_at_import (entry point 'hostile-hang-at-import' "
            "in prunebench.methods) import took longer than 3 s")
    began = time.monotonic()
    listed = cli("list", "methods")
    assert listed.returncode == 0, listed.stderr
    assert any(line.split()[:1] == ["hostile-hang-at-import"] and hang in line for line in listed.stdout.splitlines()), \
        listed.stdout
    assert any(line.split()[:1] == ["random"] for line in listed.stdout.splitlines())

    other = cli("validate", sweep(["random", "hostile-repeat-indices"]))  # names the other plugin
    assert other.returncode == 0, other.stderr
    refused = cli("validate", sweep(["random", "hostile-hang-at-import"]))
    assert refused.returncode == 2 and f"method 'hostile-hang-at-import' {hang}" in refused.stderr, refused.stderr
    assert time.monotonic() - began < 100  # three commands, each waiting the 3 s limit once, never an hour


@pytest.mark.parametrize("limit", ["0", "-1", "soon"])
def test_a_bad_import_time_limit_is_refused_naming_it(limit, monkeypatch):
    from benchmark.api.registry import RegistryError, import_time_limit

    monkeypatch.setenv("PRUNEBENCH_IMPORT_TIMEOUT_S", limit)
    with pytest.raises(RegistryError, match=f"PRUNEBENCH_IMPORT_TIMEOUT_S='{limit}'"):
        import_time_limit()


def test_a_plugin_calling_sys_exit_at_import_fails_to_load_and_list_goes_on(tmp_path):
    site = tmp_path / "site"
    (site / "pb_exits").mkdir(parents=True)
    (site / "pb_exits" / "__init__.py").write_text("import sys\nsys.exit(3)\n")
    info = site / "pb_exits-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pb_exits\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[prunebench.methods]\nexits = pb_exits\n")
    code = textwrap.dedent("""
        from benchmark.api.registry import METHODS
        print(METHODS.load_errors["exits"])
        print("random" in METHODS.names())
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT)])}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "failed to load: plugin module pb_exits (entry point 'exits' in prunebench.methods) raised SystemExit: 3",
        "True"]


@pytest.mark.slow
def test_the_ray_executor_isolates_hostile_cells_too(tmp_path):
    """The Ray driver builds each cell's method before its claim (plan_cell was outside the
    failure boundary there too); a hook's SystemExit runs in a Ray worker."""
    pytest.importorskip("ray")
    site = tmp_path / "site"
    info = site / "pb_hostile-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pb_hostile\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[prunebench.methods]\n"
                                           "hostile-raise-in-init = hostile_plugins.raise_in_init\n"
                                           "hostile-system-exit = hostile_plugins.system_exit_in_hook\n")
    data = write_synthetic(tmp_path / "data")
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({
        "name": "hostile-ray", "profile": "smoke", "seeds": [0, 1], "ratios": [0.5],
        "tasks": [{"name": "fashion-mnist", "data_dir": str(data), "options": {"epochs": 1}}],
        "methods": ["random", "hostile-raise-in-init", "hostile-system-exit"]}))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(TESTS), str(ROOT)]), "OMP_NUM_THREADS": "1",
           "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = subprocess.run([sys.executable, "-m", "benchmark.cli", "run", "sweep.yaml", "--tracking-uri", uri,
                             "--executor", "ray", "--max-in-flight", "1", "--quiet"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=900)
    assert result.returncode == 1, result.stderr[-3000:]
    failed = [line for line in result.stderr.splitlines() if line.strip().startswith("failed ")]
    assert len(failed) == 3, result.stderr[-3000:]
    assert sum("method 'hostile-raise-in-init' raised in __init__" in line for line in failed) == 1
    assert sum("method 'hostile-system-exit' raised in on_epoch_end: SystemExit: 3" in line for line in failed) == 2
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("hostile-ray").experiment_id], max_results=100)
    assert sorted(r.data.tags["status"] for r in runs) == ["failed"] * 3 + ["finished"] * 5
