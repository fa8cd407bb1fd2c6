"""The sweep's time estimate: exact sample-passes and seconds from a known recipe, refined by the
cells that finish (in this run and, before it, in the store), and the progress lines that say it."""
from __future__ import annotations

import io

import pytest
import yaml

from benchmark.sweeps import progress as progress_module
from benchmark.sweeps.cells import Cell, load_sweep
from benchmark.sweeps.estimate import CellCost, SweepEstimate, cell_cost, sweep_costs, training_passes
from benchmark.sweeps.progress import SweepProgress
from benchmark.sweeps.runner import plan_estimate
from benchmark.sweeps.tracking import Tracker
from tasks.vision.fashion_mnist import FashionMNIST, write_synthetic

# 200 training images in the files: 20 (a tenth) go to validation, 180 train; cpu profile: 6 epochs
N_TRAIN, EPOCHS = 180, 6
PER_CELL, PER_PASS = FashionMNIST.PASS_SECONDS["cpu"]


def cell(method: str, ratio: float, budget: str = "epochs", task: str = "fashion-mnist") -> Cell:
    return Cell(task, method, ratio, 0, "cpu", budget=budget)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return str(write_synthetic(tmp_path_factory.mktemp("fm"), n_train=200, n_test=50))


def test_passes_and_seconds_of_a_known_recipe(data):
    assert (PER_CELL, PER_PASS) == (4.1, 1.9e-4)  # the figures the numbers below are worked out with
    expected = {  # epochs x samples kept: 180 - round(ratio * 180) for a data method under budget: epochs
        ("none", 0.0, "epochs"): 6 * 180,
        ("random", 0.5, "epochs"): 6 * 90,
        ("el2n", 0.9, "epochs"): 6 * 18,
        ("random", 0.5, "steps"): 6 * 180,  # a subset trains the full data's steps
        ("magnitude", 0.9, "epochs"): 6 * 180,  # model pruning trains on every sample
    }
    for (method, ratio, budget), passes in expected.items():
        cost = cell_cost(cell(method, ratio, budget), data)
        assert cost.passes == passes, (method, ratio, budget)
        assert cost.seconds == pytest.approx(4.1 + 1.9e-4 * passes, rel=1e-12)
    assert training_passes(55_000, 6, 0.9, "data") == 6 * 5_500  # the main job's r=0.9 data cells


def test_a_task_whose_size_is_unknown_is_not_estimated(tmp_path):
    cost = cell_cost(cell("random", 0.5), str(tmp_path / "no-data-here"))
    assert cost == CellCost(cost.cell, None, None)


def costs() -> list[CellCost]:
    """Two tasks with declared costs (a, b) and one without (c): 100 s, 100 s, 50 s, 200 s planned."""
    return [CellCost(cell("random", 0.1, task="a"), 1000.0, 100.0), CellCost(cell("random", 0.2, task="a"), 1000.0, 100.0),
            CellCost(cell("random", 0.3, task="b"), 500.0, 50.0), CellCost(cell("random", 0.4, task="c"), 2000.0, None),
            CellCost(cell("random", 0.5, task="c"), 4000.0, None)]


def test_the_estimate_is_refined_by_the_cells_that_finish():
    plan = costs()
    estimate = SweepEstimate(plan)
    cells = [c.cell for c in plan]
    assert estimate.left(cells) == (250.0, cells[3:])  # c has no declared cost: unknown
    estimate.observe(cells[0], 300.0)  # task a runs three times slower than declared
    assert estimate.scale("a") == 3.0 and estimate.scale("b") == 3.0  # b: no cell yet, the machine's ratio
    assert estimate.left(cells[1:3]) == (300.0 + 150.0, [])
    estimate.observe(cells[2], 25.0)  # b runs twice as fast as declared
    assert estimate.scale("b") == 0.5 and estimate.scale("a") == 3.0
    estimate.observe(cells[3], 40.0)  # c: 40 s for 2,000 passes -> 0.02 s a pass
    assert estimate.left(cells[4:]) == (4000 * 0.02, [])
    assert estimate.left(cells) == (300.0 + 300.0 + 25.0 + 40.0 + 80.0, [])  # finished cells at what they took


def test_cells_that_train_nothing_are_estimated_at_what_such_cells_took():
    """One-shot post-training cells (0 training passes, a task without a declared cost): unknown until
    one finishes, then the mean of such cells; a training cell of the task is not mixed in."""
    wanda = [CellCost(cell("wanda", r, task="ppl"), 0.0, None) for r in (0.5, 0.6, 0.7)]
    dense = CellCost(cell("none", 0.0, task="ppl"), 0.0, None)
    tuned = CellCost(cell("wanda", 0.8, task="ppl"), 1000.0, None)  # with finetune_epochs
    estimate = SweepEstimate([*wanda, dense, tuned])
    cells = [c.cell for c in (*wanda, dense, tuned)]
    assert estimate.left(cells) == (0.0, cells)
    estimate.observe(cells[0], 90.0)
    estimate.observe(cells[3], 30.0)
    assert estimate.left(cells[1:3]) == (2 * 60.0, [])  # (90 + 30) / 2 each
    assert estimate.left(cells[4:]) == (0.0, cells[4:])  # no training cell finished: no rate yet
    estimate.observe(cells[4], 500.0)
    assert estimate.left(cells[1:3]) == (2 * 60.0, [])


def test_cells_of_a_task_of_unknown_size_are_estimated_at_the_mean_of_its_finished_cells():
    unknown = [CellCost(cell("random", r, task="text"), None, None) for r in (0.3, 0.5, 0.7)]
    estimate = SweepEstimate(unknown)
    cells = [c.cell for c in unknown]
    assert estimate.left(cells) == (0.0, cells)
    estimate.observe(cells[0], 100.0)
    assert estimate.left(cells[1:]) == (2 * 100.0, [])
    estimate.observe(cells[1], 300.0)
    assert estimate.left(cells[2:]) == (200.0, [])


def test_progress_says_the_estimate_before_the_first_cell_and_refines_it(monkeypatch):
    plan = costs()[:3]
    cells = [c.cell for c in plan]
    clock = iter([0.0, 10.0, 310.0])  # created; the first cell starts at 10 s and ends 300 s later
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: next(clock))
    out = io.StringIO()
    shown = SweepProgress(3, 1, stream=out, estimate=SweepEstimate(plan), cells=cells)
    shown.start_cell("first", cells[0])
    shown.end_cell("test_accuracy 0.9", finished=True)
    assert out.getvalue().splitlines() == [
        "3 cell(s) to run, 1 already finished (skipped); expected to take about 4 min 10 s (2,500 training "
        "sample-passes by the recipes, at the tasks' declared speed on 2 idle CPU cores; a method's own scoring "
        "comes on top; refined as cells finish)",
        "[1/3] first",
        "    test_accuracy 0.9 in 5m00s; sweep 1/3, about 7 min 30 s left (at the speed of the cells finished)",
    ]


def test_a_failed_cell_does_not_refine_the_estimate(monkeypatch):
    plan = costs()[:2]
    cells = [c.cell for c in plan]
    clock = iter([0.0, 0.0, 5.0])
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: next(clock))
    out = io.StringIO()
    shown = SweepProgress(2, 0, stream=out, estimate=SweepEstimate(plan), cells=cells)
    shown.start_cell("first", cells[0])
    shown.end_cell("FAILED (ValueError: x)")
    assert out.getvalue().splitlines()[-1] == (
        "    FAILED (ValueError: x) in 5s; sweep 1/2, about 1 min 40 s left (1,000 training sample-passes by the "
        "recipes, at the tasks' declared speed on 2 idle CPU cores; a method's own scoring comes on top; refined "
        "as cells finish)")


def test_cells_finished_in_the_store_refine_the_first_estimate(tmp_path, data):
    sweep_file = tmp_path / "s.yaml"
    sweep_file.write_text(yaml.safe_dump({"name": "s", "profile": "cpu", "seeds": [0], "ratios": [0.5],
                                          "tasks": [{"name": "fashion-mnist", "data_dir": data}],
                                          "methods": ["random"]}))
    sweep = load_sweep(sweep_file)
    full, random = sorted(sweep.cells(), key=lambda c: c.ratio)
    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "s")
    run = tracker.start_cell(full, "s", {}, {})
    run.finish({"train_seconds": 20.0, "load_seconds": 1.0, "eval_seconds": 3.0, "test_accuracy": 0.5})
    estimate = plan_estimate(sweep, [random], [full], tracker)
    assert estimate.took == {full.id: 24.0}
    planned = {c.cell.id: c for c in sweep_costs(sweep.cells(), sweep.data_dirs())}
    scale = 24.0 / planned[full.id].seconds
    assert estimate.left([random]) == (pytest.approx(planned[random.id].seconds * scale), [])
