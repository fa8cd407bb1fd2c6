"""How long a sweep's cells will take one runner, before the first starts and as they finish.

- Each cell's **training sample-passes** come from its recipe, read without loading data: the
  task's training-set size (:meth:`Task.train_size`, from file headers) times the epochs it trains
  (the recipe's, or the method's own :meth:`Method.train_epochs`), times the fraction a data
  method keeps (``n - round(ratio * n)`` of ``n``; under ``budget: steps`` a subset trains as
  many passes as the full data, so it keeps ``n``). A method's own scoring (EL2N's proxy runs)
  is not in the recipe and comes on top.
- Seconds per cell = the task's declared cost for the profile (:attr:`Task.PASS_SECONDS`: seconds
  per cell, seconds per training sample-pass on 2 idle CPU cores) applied to those passes.
- **Refined as cells finish**: per task, the estimate of the cells left is scaled by the ratio of
  the seconds the task's finished cells took to the seconds predicted for them (a loaded machine,
  a method's scoring, show up there). A task with no finished cell yet is scaled by the other
  tasks' ratio; a task that declares no cost is unknown until one of its cells finishes, and is
  then estimated at its finished cells' seconds per sample-pass; its cells that train nothing
  (one-shot post-training pruning), and every cell of a task whose training-set size cannot be
  read without loading its data, at the mean seconds of such finished cells of the task. Cells
  finished before this run (in the store) count as finished cells.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from .cells import Cell


@dataclass(frozen=True)
class CellCost:
    """A cell's planned work: training sample-passes (None: the training-set size is unknown
    without loading data) and the seconds the task's declared cost gives them (None: no declared cost)."""

    cell: Cell
    passes: float | None
    seconds: float | None


def training_passes(n_train: int, epochs: int, ratio: float, family: str, budget: str = "epochs") -> int:
    """Training sample-passes of a cell: ``epochs`` over the samples it keeps (see the module's docstring)."""
    from ..api.masks import count_removed

    kept = n_train - count_removed(ratio, n_train) if family == "data" and budget == "epochs" else n_train
    return epochs * kept


def cell_cost(cell: Cell, data_dir: str | None = None, tasks: dict | None = None) -> CellCost:
    """The planned work of ``cell`` from its recipe (its task's and method's constructors only: no data
    is loaded). ``tasks`` caches the task objects across the cells of a sweep."""
    from ..api.registry import get_method, get_task

    key = (cell.task, cell.profile, cell.task_options, data_dir)
    tasks = {} if tasks is None else tasks
    if key not in tasks:
        try:
            tasks[key] = get_task(cell.task)(cell.profile, data_dir=data_dir, **dict(cell.task_options))
        except Exception:  # the runner reports a task that cannot be built; this is only an estimate
            tasks[key] = None
    task = tasks[key]
    if task is None:
        return CellCost(cell, None, None)
    try:
        n_train = task.train_size()
    except Exception:
        n_train = None
    if n_train is None:
        return CellCost(cell, None, None)
    method_cls = get_method(cell.method)
    epochs = task.recipe.epochs
    try:
        own = method_cls(cell.ratio, cell.seed, **dict(cell.method_options)).train_epochs(task)
        epochs = own if own is not None else epochs
    except Exception:
        pass
    passes = training_passes(n_train, epochs, cell.ratio, method_cls.family, cell.budget)
    declared = task.pass_seconds()
    seconds = None if declared is None else declared[0] + declared[1] * passes
    return CellCost(cell, float(passes), seconds)


def sweep_costs(cells: Iterable[Cell], data_dirs: dict[str, str | None] | None = None) -> list[CellCost]:
    tasks: dict = {}
    return [cell_cost(cell, (data_dirs or {}).get(cell.task), tasks) for cell in cells]


class SweepEstimate:
    """The seconds left for one runner: each cell's planned cost, scaled per task by what the
    finished cells took (see the module's docstring)."""

    def __init__(self, costs: Iterable[CellCost]):
        self.costs = {c.cell.id: c for c in costs}
        self.took: dict[str, float] = {}  # cell id -> seconds, finished cells

    def observe(self, cell: Cell, seconds: float) -> None:
        """``cell`` finished in ``seconds`` (a cell not planned here is ignored)."""
        if cell.id in self.costs:
            self.took[cell.id] = float(seconds)

    def _finished(self, task: str | None = None) -> list[tuple[CellCost, float]]:
        return [(self.costs[i], s) for i, s in self.took.items() if task is None or self.costs[i].cell.task == task]

    def scale(self, task: str) -> float:
        """Seconds taken / seconds predicted: over the task's finished cells, else over every
        finished cell with a prediction, else 1."""
        for pairs in (self._finished(task), self._finished()):
            predicted = sum(c.seconds for c, _ in pairs if c.seconds is not None)
            if predicted > 0:
                return sum(s for c, s in pairs if c.seconds is not None) / predicted
        return 1.0

    def per_pass(self, task: str) -> float | None:
        """Seconds per training sample-pass of the task's finished cells (for a task without a declared cost)."""
        pairs = [(c, s) for c, s in self._finished(task) if c.passes]
        return sum(s for _, s in pairs) / sum(c.passes for c, _ in pairs) if pairs else None

    def cell_seconds(self, cost: CellCost) -> float | None:
        if cost.cell.id in self.took:
            return self.took[cost.cell.id]
        if cost.seconds is not None:
            return cost.seconds * self.scale(cost.cell.task)
        if not cost.passes:  # trains nothing (one-shot post-training), or its training set's size is
            # unknown without loading data: as long as the task's cells of the same kind took on average
            took = [s for c, s in self._finished(cost.cell.task) if c.passes == cost.passes]
            return sum(took) / len(took) if took else None
        rate = self.per_pass(cost.cell.task)
        return None if rate is None else cost.passes * rate

    def left(self, cells: Iterable[Cell]) -> tuple[float, list[Cell]]:
        """(seconds for the cells of ``cells`` that can be estimated, those that cannot yet)."""
        seconds, unknown = 0.0, []
        for cell in cells:
            cost = self.costs.get(cell.id)
            value = self.cell_seconds(cost) if cost is not None else None
            if value is None:
                unknown.append(cell)
            else:
                seconds += value
        return seconds, unknown

    def passes(self, cells: Iterable[Cell]) -> float:
        return sum(self.costs[c.id].passes or 0.0 for c in cells if c.id in self.costs)


def finished_seconds(query, experiment_id: str) -> dict[str, float]:
    """Cell id -> seconds, for the finished cells of an experiment in the store: the load, training,
    evaluation and scoring seconds each recorded (the cell's wall time, less the store's share)."""
    parts = ("load_seconds", "train_seconds", "eval_seconds", "scoring_wall_seconds")
    records = query.finished_runs(experiment_id, tags=["cell_id"], params=[], metrics=parts)
    return {r.tags["cell_id"]: sum(r.metrics.get(p, 0.0) for p in parts)
            for r in records if r.tags.get("cell_id") and "train_seconds" in r.metrics}


def describe_seconds(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min" if hours else f"{minutes} min {secs:02d} s" if minutes else f"{secs} s"
