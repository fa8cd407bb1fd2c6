"""A sweep over the 20,000-cell guard runs only when it says how many cells it means
(``max_cells``); ``validate`` prints the count and what the store will hold."""
from __future__ import annotations

import pytest
import yaml

from benchmark.sweeps.cells import MAX_CELLS, SweepError, parse_sweep
from benchmark.cli import main
from benchmark.sweeps.store_query import DB_BYTES_PER_CELL

SEEDS = MAX_CELLS // 2 + 1  # 2 cells a seed (reference + random): 20,002 cells, just over the guard


def sweep(**extra) -> dict:
    return {"name": "big", "profile": "smoke", "seeds": list(range(SEEDS)), "ratios": [0.5],
            "tasks": ["cwru-sim"], "methods": ["random"], **extra}


def problems(data: dict) -> list[str]:
    with pytest.raises(SweepError) as error:
        parse_sweep(data, check_data=False)
    return error.value.problems


def test_over_the_guard_without_max_cells_is_refused_with_the_fix():
    (problem,) = problems(sweep())
    assert f"{2 * SEEDS:,} cells" in problem and f"limit of {MAX_CELLS:,}" in problem
    assert f"add `max_cells: {2 * SEEDS}`" in problem


def test_max_cells_lets_a_deliberate_large_sweep_through():
    big = parse_sweep(sweep(max_cells=2 * SEEDS), check_data=False)
    assert big.max_cells == 2 * SEEDS and len(big.cells()) == big.cell_count() == 2 * SEEDS
    (problem,) = problems(sweep(max_cells=2 * SEEDS - 1))
    assert f"exceed its max_cells of {2 * SEEDS - 1:,}" in problem and f"raise max_cells to {2 * SEEDS}" in problem


@pytest.mark.parametrize("value", ["100000", True, 0, -5, 1.5, 2_000_000])
def test_max_cells_must_be_a_count(value):
    assert any("'max_cells' must be the number of cells" in p and repr(value) in p
               for p in problems(sweep(max_cells=value)))


def test_validate_prints_the_count_and_the_store_estimate(tmp_path, capsys):
    path = tmp_path / "big.yaml"
    path.write_text(yaml.safe_dump(sweep(max_cells=100_000)))
    assert main(["validate", str(path)]) == 0
    out = capsys.readouterr().out
    size = 2 * SEEDS * DB_BYTES_PER_CELL / 2**20
    assert f"valid. {2 * SEEDS} cells" in out and f"about {size:.0f} MiB in the tracking database" in out


def test_a_run_computes_each_cell_id_once(monkeypatch, tmp_path):
    """Parsing checks the cells (two labels for one cell) and the runner then asks which are
    pending: both see the same Cell objects, so each id (a SHA-256 of the cell) is computed once."""
    from collections import Counter

    from benchmark.sweeps.cells import Cell
    from benchmark.sweeps.runner import pending_cells
    from benchmark.sweeps.tracking import Tracker

    computed = Counter()
    content = Cell.content
    monkeypatch.setattr(Cell, "content", lambda cell: computed.update([cell]) or content(cell))
    parsed = parse_sweep({"name": "ids", "profile": "smoke", "seeds": [0, 1, 2], "ratios": [0.3, 0.5],
                          "tasks": ["cwru-sim"], "methods": ["random", "magnitude"]}, check_data=False)
    pending, finished = pending_cells(parsed, Tracker(f"sqlite:///{tmp_path}/mlflow.db", "ids"))
    assert len(pending) == 15 and not finished  # 3 seeds x (reference + 2 methods x 2 ratios)
    assert len(computed) == 15 and set(computed.values()) == {1}


def test_a_pickled_sweep_leaves_its_built_cells_behind():
    """The Slurm executor pickles the sweep into each array task: the cells are rebuilt from the
    fields there, not carried."""
    import pickle

    parsed = parse_sweep({"name": "p", "profile": "smoke", "seeds": [0, 1], "ratios": [0.5], "tasks": ["cwru-sim"],
                          "methods": ["random"]}, check_data=False)
    built = parsed.cells()
    copy = pickle.loads(pickle.dumps(parsed))
    assert "_cells" in parsed.__dict__ and "_cells" not in copy.__dict__
    assert copy == parsed and [c.id for c in copy.cells()] == [c.id for c in built] and len(built) == 4
