"""Cells (task x method x ratio x seed) and the sweep files that expand into them.

A sweep file (YAML or TOML)::

    name: fashion-mnist-cpu        # MLflow experiment the cells are tracked in
    profile: cpu                   # smoke | cpu | paper
    budget: epochs                 # epochs (a subset trains fewer steps) | steps (same steps as full data)
    seeds: [0, 1, 2]
    ratios: [0.3, 0.5, 0.7, 0.9]   # fraction REMOVED, in [0, 1)
    tasks:
      - fashion-mnist
      - name: cifar10
        options: {epochs: 30}      # recipe overrides: part of the cell
        data_dir: /data/cifar      # where the data is: not part of the cell
    methods:
      - random
      - name: el2n
        options: {proxy_runs: 2}
      - name: magnitude
        ratios: [0.5, 0.8, 0.9]    # per-method ratios replace the sweep's
      - name: random
        label: random-dynamic      # a second entry of one method needs its own label
        options: {dynamic: true}

The ratio-0 reference cell (full data / dense model) is added once per
(task, seed); a cell's id is a hash of its content, so it is the same on every
machine and in every sweep.
"""
from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .registry import METHODS, TASKS, RegistryError
from .task import DataNotFoundError, Recipe
from .trainer import BUDGETS

REFERENCE_METHOD = "none"
REFERENCE_LABEL = "full"
SWEEP_KEYS = ("name", "profile", "budget", "seeds", "ratios", "tasks", "methods", "description")
TASK_KEYS = ("name", "options", "data_dir")
METHOD_KEYS = ("name", "options", "ratios", "label")


class SweepError(ValueError):
    """A sweep that must not run; ``problems`` lists every reason, each naming the value and the fix."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: {len(problems)} problem(s):\n" + "\n".join(f"  - {p}" for p in problems))


def _frozen(value: Any) -> Any:
    """Lists and mappings as tuples, so a cell is hashable; JSON still writes them as lists."""
    if isinstance(value, (list, tuple)):
        return tuple(_frozen(v) for v in value)
    if isinstance(value, dict):
        return _frozen_items(value)
    return value


def _frozen_items(mapping: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((k, _frozen(v)) for k, v in (mapping or {}).items()))


@dataclass(frozen=True)
class Cell:
    task: str
    method: str
    ratio: float
    seed: int
    profile: str
    budget: str = "epochs"
    method_options: tuple[tuple[str, Any], ...] = ()
    task_options: tuple[tuple[str, Any], ...] = ()
    label: str = ""  # display name on the leaderboard; not part of the id

    @property
    def is_reference(self) -> bool:
        return self.method == REFERENCE_METHOD

    def content(self) -> dict[str, Any]:
        """The canonical content the id is computed from."""
        data = asdict(self)
        data.pop("label")
        data["ratio"] = float(self.ratio)
        data["method_options"] = dict(self.method_options)
        data["task_options"] = dict(self.task_options)
        return data

    @property
    def id(self) -> str:
        canonical = json.dumps(self.content(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def display(self) -> str:
        return f"{self.task} {self.label or self.method} r={self.ratio:g} seed={self.seed}"


@dataclass(frozen=True)
class TaskEntry:
    name: str
    options: dict[str, Any] = field(default_factory=dict)
    data_dir: str | None = None


@dataclass(frozen=True)
class MethodEntry:
    name: str
    label: str
    options: dict[str, Any] = field(default_factory=dict)
    ratios: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Sweep:
    name: str
    profile: str
    budget: str
    seeds: tuple[int, ...]
    ratios: tuple[float, ...]
    tasks: tuple[TaskEntry, ...]
    methods: tuple[MethodEntry, ...]
    source: str = "<sweep>"

    def cells(self) -> list[Cell]:
        """Every cell, reference cells included, seed by seed so early seeds finish first."""
        out: list[Cell] = []
        for task in self.tasks:
            task_options = _frozen_items(task.options)
            for seed in self.seeds:
                common = dict(task=task.name, seed=seed, profile=self.profile, budget=self.budget,
                              task_options=task_options)
                out.append(Cell(method=REFERENCE_METHOD, ratio=0.0, label=REFERENCE_LABEL, **common))
                for method in self.methods:
                    for ratio in method.ratios or self.ratios:
                        if ratio == 0:
                            continue  # the reference cell above already is this cell
                        out.append(Cell(method=method.name, ratio=float(ratio), label=method.label,
                                        method_options=_frozen_items(method.options), **common))
        return out

    def data_dirs(self) -> dict[str, str | None]:
        return {t.name: t.data_dir for t in self.tasks}


# --- loading and validation --------------------------------------------------------

def read_sweep_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SweepError(str(path), [f"sweep file {str(path)!r} does not exist"])
    text = path.read_text()
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.safe_load(text)
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as error:
        raise SweepError(str(path), [f"cannot parse the file: {error}"]) from None
    if not isinstance(data, dict):
        raise SweepError(str(path), [f"the top level must be a mapping with keys {list(SWEEP_KEYS)}, got {type(data).__name__}"])
    return data


def load_sweep(path: str | Path, check_data: bool = True) -> Sweep:
    """Read and fully validate a sweep file; raise SweepError listing every problem."""
    return parse_sweep(read_sweep_file(path), source=str(path), check_data=check_data)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _unknown_keys(where: str, given: dict, allowed: tuple[str, ...]) -> list[str]:
    import difflib

    problems = []
    for key in given:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{where}: unknown key {key!r}{hint}; valid keys: {list(allowed)}")
    return problems


def _check_ratios(where: str, ratios: Any, problems: list[str]) -> tuple[float, ...]:
    if not isinstance(ratios, list) or not ratios:
        problems.append(f"{where}: 'ratios' must be a non-empty list of fractions removed in [0, 1), got {ratios!r}")
        return ()
    good = []
    for ratio in ratios:
        if not _is_number(ratio) or not 0 <= ratio < 1:
            problems.append(
                f"{where}: ratio {ratio!r} is outside [0, 1); a ratio is the fraction removed, "
                "e.g. 0.9 keeps 10%"
            )
        else:
            good.append(float(ratio))
    if len(set(good)) != len(good):
        problems.append(f"{where}: ratios {ratios} contain duplicates")
    return tuple(good)


def parse_sweep(data: dict[str, Any], source: str = "<sweep>", check_data: bool = True) -> Sweep:
    problems: list[str] = _unknown_keys("sweep", data, SWEEP_KEYS)
    for required in ("tasks", "methods", "ratios", "seeds", "profile"):
        if required not in data:
            problems.append(f"sweep: missing required key {required!r}")

    name = str(data.get("name") or Path(source).stem)
    profile = data.get("profile", "cpu")
    budget = data.get("budget", "epochs")
    if not isinstance(profile, str):
        problems.append(f"sweep: 'profile' must be a name such as 'smoke', 'cpu' or 'paper', got {profile!r}")
        profile = "cpu"
    if budget not in BUDGETS:
        problems.append(f"sweep: budget {budget!r} is unknown; use one of {list(BUDGETS)}")

    seeds = data.get("seeds", [])
    if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        problems.append(f"sweep: 'seeds' must be a non-empty list of non-negative integers, got {seeds!r}")
        seeds = []
    elif len(set(seeds)) != len(seeds):
        problems.append(f"sweep: seeds {seeds} contain duplicates")
    ratios = _check_ratios("sweep", data.get("ratios", [0.5]), problems)

    tasks = [_parse_task(entry, profile, check_data, problems) for entry in _as_list(data.get("tasks"), "tasks", problems)]
    methods = [_parse_method(entry, problems) for entry in _as_list(data.get("methods"), "methods", problems)]
    tasks = [t for t in tasks if t is not None]
    methods = [m for m in methods if m is not None]

    labels = [m.label for m in methods]
    for label in sorted({l for l in labels if labels.count(l) > 1}):
        problems.append(f"methods: {label!r} appears more than once; give each entry a distinct 'label'")
    if len({t.name for t in tasks}) != len(tasks):
        problems.append("tasks: a task is listed more than once")

    for task in tasks:
        task_cls = TASKS.get(task.name)
        for method in methods:
            reason = METHODS.get(method.name).incompatibility(task_cls)
            if reason:
                problems.append(f"{reason}; remove the pair from the sweep (or split it into two sweeps)")

    sweep = Sweep(name=name, profile=profile, budget=budget, seeds=tuple(seeds), ratios=ratios,
                  tasks=tuple(tasks), methods=tuple(methods), source=source)
    if not problems:
        problems.extend(_same_cell_twice(sweep))
    if problems:
        raise SweepError(source, problems)
    return sweep


def _same_cell_twice(sweep: Sweep) -> list[str]:
    """Entries that differ only by label would run (and track) one cell twice."""
    labels_by_id: dict[str, set[str]] = {}
    for cell in sweep.cells():
        labels_by_id.setdefault(cell.id, set()).add(cell.label)
    return [f"methods {sorted(labels)} describe the same cells (same method, options and ratios); "
            "remove one or give them different options" for labels in labels_by_id.values() if len(labels) > 1]


def _as_list(value: Any, key: str, problems: list[str]) -> list:
    if value is None:
        return []
    if not isinstance(value, list) or not value:
        problems.append(f"sweep: {key!r} must be a non-empty list, got {value!r}")
        return []
    return value


def _entry(entry: Any, kind: str, keys: tuple[str, ...], problems: list[str]) -> dict | None:
    if isinstance(entry, str):
        return {"name": entry}
    if isinstance(entry, dict) and "name" in entry:
        if not isinstance(entry["name"], str):
            problems.append(f"{kind} name must be a string, got {entry['name']!r}")
            return None
        problems.extend(_unknown_keys(f"{kind} {entry['name']!r}", entry, keys))
        return entry
    problems.append(f"{kind} entry {entry!r} must be a name or a mapping with a 'name' key")
    return None


def _parse_task(entry: Any, profile: str, check_data: bool, problems: list[str]) -> TaskEntry | None:
    entry = _entry(entry, "task", TASK_KEYS, problems)
    if entry is None:
        return None
    name, options = entry["name"], entry.get("options") or {}
    try:
        task_cls = TASKS.get(name)
    except RegistryError as error:
        problems.append(str(error))
        return None
    if not isinstance(options, dict):
        problems.append(f"task {name!r}: 'options' must be a mapping of recipe fields, got {options!r}")
        return None
    if profile not in task_cls.profiles:
        problems.append(f"task {name!r} has no profile {profile!r}; choose one of {sorted(task_cls.profiles)}")
        return TaskEntry(name, options, entry.get("data_dir"))
    try:
        task = task_cls(profile, data_dir=entry.get("data_dir"), **options)
    except (TypeError, ValueError) as error:
        problems.append(f"task {name!r}: {error}")
        return None
    if check_data:
        try:
            task.check_data()
        except DataNotFoundError as error:
            problems.append(f"task {name!r}: {error}")
    return TaskEntry(name, options, entry.get("data_dir"))


def _parse_method(entry: Any, problems: list[str]) -> MethodEntry | None:
    entry = _entry(entry, "method", METHOD_KEYS, problems)
    if entry is None:
        return None
    name, options = entry["name"], entry.get("options") or {}
    try:
        method_cls = METHODS.get(name)
    except RegistryError as error:
        problems.append(str(error))
        return None
    if not isinstance(options, dict):
        problems.append(f"method {name!r}: 'options' must be a mapping, got {options!r}")
        return None
    try:
        method_cls.check_options(options)
        method_cls(0.5, 0, **options)  # parameters only: catches bad option values, computes nothing
    except (TypeError, ValueError) as error:
        problems.append(f"method {name!r}: {error}")
    ratios = None
    if "ratios" in entry:
        ratios = _check_ratios(f"method {name!r}", entry["ratios"], problems)
    return MethodEntry(name=name, label=str(entry.get("label") or name), options=dict(options), ratios=ratios)
