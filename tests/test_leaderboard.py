"""The leaderboard is a pure function of the finished runs in MLflow: exact numbers from known runs."""
from __future__ import annotations

import statistics

import pandas as pd
import pytest

from benchmark.sweeps.cells import Cell
from benchmark.boards.leaderboard import family_table, load_runs
from benchmark.sweeps.tracking import Tracker

# test accuracy per (label, ratio, seed): invented numbers, logged as if cells had produced them
KNOWN = {
    ("full", 0.0): [0.90, 0.92, 0.91],
    ("random", 0.5): [0.85, 0.86, 0.84],
    ("el2n", 0.5): [0.88, 0.87, 0.89],
    ("magnitude", 0.8): [0.89, 0.90, 0.88],
    ("random-weights", 0.8): [0.80, 0.83, 0.81],
}
FAMILY = {"full": "reference", "random": "data", "el2n": "data", "magnitude": "model", "random-weights": "model"}


def fill_store(uri: str) -> None:
    tracker = Tracker(uri, "board")
    for (label, ratio), values in KNOWN.items():
        method = "none" if label == "full" else label
        for seed, value in enumerate(values):
            cell = Cell("fashion-mnist", method, ratio, seed, "cpu", label=label)
            tags = {"family": FAMILY[label], "provenance": "reference-code", "data_origin": "real",
                    "task_family": "vision", "metric": "accuracy"}
            run = tracker.start_cell(cell, "board", {}, tags)
            run.finish({"test_accuracy": value, "kept_fraction": 1 - ratio, "total_sample_passes_rel": 1.0,
                        "train_seconds": 10.0, "scoring_seconds": 0.0,
                        **({"realised_sparsity": ratio} if FAMILY[label] == "model" else {})})
    # an unfinished run and a failed run must not count
    cell = Cell("fashion-mnist", "random", 0.5, 7, "cpu", label="random")
    tracker.start_cell(cell, "board", {}, {"family": "data", "metric": "accuracy"})
    failed = tracker.start_cell(Cell("fashion-mnist", "el2n", 0.5, 8, "cpu", label="el2n"), "board", {},
                                {"family": "data", "metric": "accuracy"})
    failed.fail(RuntimeError("boom"), "Traceback: boom")


def paired(label: str, ratio: float, reference: list[float]) -> float:
    return statistics.mean(v - r for v, r in zip(KNOWN[(label, ratio)], reference))


def test_tables_hold_exactly_the_expected_numbers(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    fill_store(uri)
    runs = load_runs(uri, "board")
    assert len(runs) == 15  # the running and the failed run are left out

    data = family_table(runs, "fashion-mnist", "data").set_index("method")
    full = KNOWN[("full", 0.0)]
    assert data.loc["el2n", "mean"] == pytest.approx(statistics.mean(KNOWN[("el2n", 0.5)]))
    assert data.loc["el2n", "std"] == pytest.approx(statistics.stdev(KNOWN[("el2n", 0.5)]))
    assert data.loc["el2n", "delta_full"] == pytest.approx(paired("el2n", 0.5, full))
    assert data.loc["el2n", "delta_random"] == pytest.approx(paired("el2n", 0.5, KNOWN[("random", 0.5)]))
    assert pd.isna(data.loc["random", "delta_random"])
    assert data.loc["el2n", "seeds"] == 3

    model = family_table(runs, "fashion-mnist", "model").set_index("method")
    assert model.loc["magnitude", "delta_random"] == pytest.approx(
        paired("magnitude", 0.8, KNOWN[("random-weights", 0.8)]))
    assert model.loc["magnitude", "realised"] == pytest.approx(0.8)

    assert data.loc["el2n", "speedup"] == pytest.approx(1.0)  # every cell logged 10 s


def test_unknown_experiment_is_a_clear_error(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    Tracker(uri, "exists")
    with pytest.raises(SystemExit, match="no MLflow experiment 'nope'"):
        load_runs(uri, "nope")


def test_leaderboard_on_the_committed_store_imports_neither_torch_nor_the_tasks(tmp_path):
    """81 finished cells, some logged before the chance_level tag: the board is built, and
    the fallback reads the class of the one task the runs name (its module imports no torch
    and no model), not the whole task registry, and the methods table reads the classes of the
    board's methods only."""
    import shutil
    import subprocess
    import sys
    from pathlib import Path

    store = tmp_path / "mlflow.db"
    shutil.copy(Path(__file__).parent.parent / "results" / "fashion-mnist-cpu" / "mlflow.db", store)
    code = (
        "import sys\n"
        "from benchmark.cli import main\n"
        f"main(['leaderboard', '--tracking-uri', 'sqlite:///{store}', '--experiment', 'fashion-mnist-cpu',"
        f" '--out', '{tmp_path / 'out'}', '--no-mlflow'])\n"
        "print('imported:', sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'tasks', 'methods') "
        "or m.startswith('scipy.stats')))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    imported = eval(result.stdout.splitlines()[-1].removeprefix("imported: "))
    assert [m for m in imported if not m.startswith("methods")] == [
        "tasks", "tasks.download", "tasks.vision", "tasks.vision.augment", "tasks.vision.base",
        "tasks.vision.fashion_mnist", "tasks.vision.idx"]
    # the methods table fills the older cells' settings from the classes of the methods on the
    # board only (their modules import no torch): none of the others is loaded
    assert "methods.data.el2n" in imported and not {"methods.model.wanda", "methods.model.sparsegpt",
                                                     "methods.model.seven", "methods.model.platon"} & set(imported)
    assert "| magnitude " in result.stdout and (tmp_path / "out" / "fashion-mnist-cpu.md").is_file()


def test_chance_level_of_an_untagged_builtin_run_comes_from_the_index():
    from benchmark.boards.leaderboard import _chance_level

    assert _chance_level({"task": "cifar100"}) == pytest.approx(0.01)
    assert _chance_level({"task": "cifar100", "chance_level": "0.5"}) == 0.5
    assert _chance_level({"task": "no-such-task"}) is None
