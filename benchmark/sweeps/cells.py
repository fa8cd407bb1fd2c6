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

A sweep of more than 20,000 cells is refused as a likely typo (a seed list pasted twice)
unless it says how many it means: ``max_cells: 100000``.

The ratio-0 reference cell (full data / dense model) is added once per
(task, seed); a cell's id is a hash of its content, so it is the same on every
machine and in every sweep.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import reprlib
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from .names import label_problem, name_problem
from .slurm_options import check_keys as check_slurm_keys
from ..api.registry import METHODS, TASKS, RegistryError
from ..api.task import BUDGETS, DataFormatError, DataNotFoundError

REFERENCE_METHOD = "none"
REFERENCE_LABEL = "full"
SWEEP_KEYS = ("name", "profile", "budget", "seeds", "ratios", "tasks", "methods", "description", "max_cells",
              "slurm")
TASK_KEYS = ("name", "options", "data_dir")
METHOD_KEYS = ("name", "options", "ratios", "label")
MAX_SEED = 2**32  # numpy's legacy seeding and the methods' derived torch seeds need seeds below this
MAX_DEPTH = 20  # nesting of the whole sweep; real ones stay under 6
MAX_VALUES = 100_000  # values in the whole sweep, aliases counted each time they are used
MAX_CELLS = 20_000  # a paper-scale sweep is a few thousand cells; more is a typo (seeds: range(2000)) ...
CELLS_CEILING = 1_000_000  # ... unless the sweep says `max_cells: N` (up to this)
#: bytes of a sweep file, checked before it is parsed: a real sweep is a few KB; parsing a 25 MB
#: list takes minutes and a GB of memory before any other check can speak
MAX_SWEEP_BYTES = 1024 * 1024

_SHOW = reprlib.Repr()  # bounded reprs: a huge or deeply nested value must not flood the message
_SHOW.maxstring = _SHOW.maxother = 80
_SHOW.maxlist = _SHOW.maxtuple = _SHOW.maxdict = _SHOW.maxset = 8
_SHOW.maxlevel = 3


def _show(value: Any) -> str:
    return _SHOW.repr(value)


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
        # the fields as they are (no deep copy: dataclasses.asdict was most of a 100,000-cell sweep's
        # start); the options' tuples are written by json as the lists asdict gave
        data = {f.name: getattr(self, f.name) for f in _CELL_FIELDS if f.name != "label"}
        data["ratio"] = float(self.ratio)
        data["method_options"] = dict(self.method_options)
        data["task_options"] = dict(self.task_options)
        return data

    @functools.cached_property  # computed once per cell (a frozen dataclass keeps it in __dict__)
    def id(self) -> str:
        canonical = json.dumps(self.content(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    @property
    def display(self) -> str:
        return f"{self.task} {self.label or self.method} r={self.ratio:g} seed={self.seed}"


_CELL_FIELDS = fields(Cell)


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
    max_cells: int = MAX_CELLS  # the guard on the cell count (the sweep's `max_cells`, if given)
    #: resources of the Slurm executor's array tasks (:mod:`.slurm_options`); not part of any cell
    slurm: dict[str, Any] = field(default_factory=dict, compare=False)
    #: what a method cannot do under a task's recipe although it runs (``validate`` and ``run`` print them)
    warnings: tuple[str, ...] = field(default=(), compare=False)

    def cells(self) -> list[Cell]:
        """Every cell, reference cells included, seed by seed so early seeds finish first (the same
        Cell objects on every call, so that each one's id is computed once per command)."""
        return list(self._cells)

    def __getstate__(self) -> dict[str, Any]:
        # without the built cells: they are rebuilt from the fields, and a pickled sweep (the Slurm
        # executor's array task) need not carry 100,000 of them
        return {k: v for k, v in self.__dict__.items() if k != "_cells"}

    @functools.cached_property  # a frozen dataclass keeps it in __dict__
    def _cells(self) -> tuple[Cell, ...]:
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
        return tuple(out)

    def cell_count(self) -> int:
        """``len(self.cells())``, counted without building them."""
        per_seed = 1 + sum(sum(1 for r in (m.ratios or self.ratios) if r != 0) for m in self.methods)
        return len(self.tasks) * len(self.seeds) * per_seed

    def data_dirs(self) -> dict[str, str | None]:
        return {t.name: t.data_dir for t in self.tasks}


# --- loading and validation --------------------------------------------------------

def read_sweep_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise SweepError(str(path), [f"sweep file {str(path)!r} does not exist"])
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_SWEEP_BYTES + 1)  # never more than the cap, whatever stat says
    except OSError as error:
        raise SweepError(str(path), [f"cannot read the file: {error}"]) from None
    if len(raw) > MAX_SWEEP_BYTES:
        raise SweepError(str(path), [f"the file is larger than {MAX_SWEEP_BYTES:,} bytes (the limit for a sweep file, "
                                     "checked before parsing); a sweep needs a few KB: list seeds and ratios, "
                                     "do not generate them into the file"])
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise SweepError(str(path), [f"line {line}: not UTF-8 text (byte {raw[error.start]:#04x}); "
                                     "save the sweep file as UTF-8"]) from None
    try:
        data = tomllib.loads(text) if path.suffix == ".toml" else yaml.load(text, Loader=UniqueKeyLoader)
    except tomllib.TOMLDecodeError as error:  # its message ends in "(at line L, column C)"
        raise SweepError(str(path), [f"cannot parse the file as TOML: {error}"]) from None
    except yaml.YAMLError as error:
        raise SweepError(str(path), [_yaml_problem(error, text)]) from None
    except RecursionError:  # both parsers recurse once per nesting level
        raise SweepError(str(path), [f"cannot parse the file: it is nested too deeply (a sweep needs at most "
                                     f"{MAX_DEPTH} levels)"]) from None
    if not isinstance(data, dict):
        raise SweepError(str(path), [f"the top level must be a mapping with keys {list(SWEEP_KEYS)}, "
                                     f"got {type(data).__name__} {_show(data)}"])
    return data


class DuplicateKeyError(yaml.constructor.ConstructorError):
    """A key given twice in one YAML mapping."""


class UniqueKeyLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a key given twice in one mapping (``name:`` twice): YAML
    would keep the later value without a word, TOML refuses it. A key a merge (``<<: *alias``)
    brings in may be overridden, as YAML intends."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            first: dict[Any, Any] = {}
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=True)
                try:
                    seen = first.setdefault(key, key_node.start_mark)
                except TypeError:  # an unhashable key: the base class reports it
                    continue
                if seen is not key_node.start_mark:
                    raise DuplicateKeyError(
                        None, None, f"the key {_show(key)} is given twice (first at line {seen.line + 1}); "
                        "YAML would keep the later value silently: keep one", key_node.start_mark)
        return super().construct_mapping(node, deep)


UniqueKeyLoader.add_constructor("tag:yaml.org,2002:map", UniqueKeyLoader.construct_yaml_map)


def _yaml_problem(error: yaml.YAMLError, text: str) -> str:
    """'cannot parse ... at line L, column C: what' from PyYAML's error, without its
    '<unicode string>' stream name (the SweepError names the file)."""
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        what = "; ".join(p for p in (getattr(error, "context", None), getattr(error, "problem", None)) if p)
        fix = "" if isinstance(error, DuplicateKeyError) else "; check the indentation, brackets and quotes there"
        return f"cannot parse the file as YAML at line {mark.line + 1}, column {mark.column + 1}: {what}{fix}"
    position = getattr(error, "position", None)  # ReaderError: a character YAML does not allow
    if position is not None:
        line = text[:position].count("\n") + 1
        return (f"cannot parse the file as YAML at line {line}: the character {getattr(error, 'character', '?')!r} "
                "is not allowed in YAML; remove it")
    return f"cannot parse the file as YAML: {error}"


def load_sweep(path: str | Path, check_data: bool = True) -> Sweep:
    """Read and fully validate a sweep file; raise SweepError listing every problem."""
    return parse_sweep(read_sweep_file(path), source=str(path), check_data=check_data)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _shape_problem(data: Any) -> str | None:
    """Why the loaded sweep is not a plain, finite tree (a YAML anchor can make a value contain
    itself, or be reused into an exponentially large one), or None. Checked first: the rest of
    the validation, and the cell ids, walk every value."""
    count = 0
    stack = [(data, 0, frozenset())]
    while stack:
        value, depth, ancestors = stack.pop()
        count += 1
        if count > MAX_VALUES:
            return (f"the sweep holds more than {MAX_VALUES} values (YAML aliases counted each time they are "
                    "used); a sweep file is a short list of tasks, methods, ratios and seeds")
        if isinstance(value, (dict, list, tuple)):
            if id(value) in ancestors:
                return "a value contains itself (a YAML alias to one of its own anchors); write it out instead"
            if depth >= MAX_DEPTH:
                return f"the sweep is nested deeper than {MAX_DEPTH} levels; nothing in a sweep needs that many"
            children = list(value.keys()) + list(value.values()) if isinstance(value, dict) else value
            stack.extend((child, depth + 1, ancestors | {id(value)}) for child in children)
    return None


def _unknown_keys(where: str, given: dict, allowed: tuple[str, ...]) -> list[str]:
    import difflib

    problems = []
    for key in given:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            problems.append(f"{where}: unknown key {_show(key)}{hint}; valid keys: {list(allowed)}")
    return problems


def _option_problems(where: str, options: Any) -> list[str]:
    """Options must be plain data (string keys; strings, finite numbers, booleans, null, and
    lists and mappings of them): they go into the cell id and the MLflow params as they are."""
    if not isinstance(options, dict):
        return [f"{where}: 'options' must be a mapping of option names to values, got {_show(options)}"]
    problems: list[str] = []

    def visit(path: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    problems.append(f"{where}: option name {_show(key)}{path and ' in ' + path} must be a string")
                else:
                    visit(f"{path}.{key}" if path else key, item)
        elif isinstance(value, list):
            for item in value:
                visit(path, item)
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{where}: option {path!r} must be a finite number, got {value!r}")
        elif not (value is None or isinstance(value, (str, int, float))):
            problems.append(f"{where}: option {path!r} must be a string, number, boolean, null, list or "
                            f"mapping, got {type(value).__name__} {_show(value)}")

    visit("", options)
    return problems


def _parses_as_number(value: Any) -> bool:
    try:
        float(value)
        return isinstance(value, str)
    except (TypeError, ValueError):
        return False


def _check_ratios(where: str, ratios: Any, problems: list[str]) -> tuple[float, ...]:
    if not isinstance(ratios, list) or not ratios:
        problems.append(f"{where}: 'ratios' must be a non-empty list of fractions removed in [0, 1), "
                        f"got {_show(ratios)}")
        return ()
    good = []
    for ratio in ratios:
        if not _is_number(ratio):
            problems.append(f"{where}: ratio {_show(ratio)} must be a number (the fraction removed, in "
                            f"[0, 1)), got a {type(ratio).__name__}"
                            + ("; write it without quotes" if _parses_as_number(ratio) else ""))
        elif not 0 <= ratio < 1:  # NaN fails the comparison too
            problems.append(
                f"{where}: ratio {_show(ratio)} is outside [0, 1); a ratio is the fraction removed, "
                "e.g. 0.9 keeps 10%"
            )
        else:
            good.append(float(ratio))
    if len(set(good)) != len(good):
        problems.append(f"{where}: ratios {_show(ratios)} contain duplicates")
    return tuple(good)


def _check_seeds(seeds: Any, problems: list[str]) -> tuple[int, ...]:
    if not isinstance(seeds, list) or not seeds:
        problems.append(f"sweep: 'seeds' must be a non-empty list of non-negative integers, got {_show(seeds)}")
        return ()
    good = []
    for seed in seeds:
        if not isinstance(seed, int) or isinstance(seed, bool):
            problems.append(f"sweep: seed {_show(seed)} must be a non-negative integer, e.g. 0; got a "
                            f"{type(seed).__name__}")
        elif not 0 <= seed < MAX_SEED:
            problems.append(f"sweep: seed {_show(seed)} must be a non-negative integer below 2**32, e.g. 0")
        else:
            good.append(seed)
    if len(set(good)) != len(good):
        problems.append(f"sweep: seeds {_show(seeds)} contain duplicates")
    return tuple(good)


def parse_sweep(data: dict[str, Any], source: str = "<sweep>", check_data: bool = True) -> Sweep:
    if not isinstance(data, dict):
        raise SweepError(source, [f"the top level must be a mapping with keys {list(SWEEP_KEYS)}, "
                                  f"got {type(data).__name__} {_show(data)}"])
    shape = _shape_problem(data)
    if shape:
        raise SweepError(source, [shape])
    problems: list[str] = _unknown_keys("sweep", data, SWEEP_KEYS)
    for required in ("tasks", "methods", "ratios", "seeds", "profile"):
        if required not in data:
            problems.append(f"sweep: missing required key {required!r}")

    name = data.get("name")
    if name is None:
        name = Path(source).stem if source != "<sweep>" else "sweep"
    problem = name_problem(name, "'name' (the MLflow experiment)")
    if problem:
        problems.append(f"sweep: {problem}" + (" (the name comes from the file's; add a 'name' key)"
                                               if "name" not in data else ""))
        name = "sweep"
    description = data.get("description")
    if description is not None and not isinstance(description, str):
        problems.append(f"sweep: 'description' must be a string, got {_show(description)}")
    profile = data.get("profile", "cpu")
    budget = data.get("budget", "epochs")
    if not isinstance(profile, str):
        problems.append(f"sweep: 'profile' must be a name such as 'smoke', 'cpu' or 'paper', got {_show(profile)}")
        profile = "cpu"
    if budget not in BUDGETS:
        problems.append(f"sweep: budget {_show(budget)} is unknown; use one of {list(BUDGETS)}")
        budget = BUDGETS[0]

    slurm = data.get("slurm") or {}
    problems.extend(check_slurm_keys(slurm, "sweep: slurm"))
    seeds = _check_seeds(data.get("seeds", [0]), problems)
    ratios = _check_ratios("sweep", data.get("ratios", [0.5]), problems)

    train_sizes: dict[str, int] = {}  # task -> training samples, where the task can tell before loading
    recipe_epochs: dict[str, int] = {}  # task -> its recipe's epochs under the profile
    tasks = [_parse_task(entry, profile, check_data, problems, train_sizes, recipe_epochs)
             for entry in _as_list(data, "tasks", problems)]
    methods = [_parse_method(entry, problems, ratios) for entry in _as_list(data, "methods", problems)]
    tasks = [t for t in tasks if t is not None]
    methods = [m for m in methods if m is not None]

    labels = [m.label for m in methods]
    for label in sorted({l for l in labels if labels.count(l) > 1}):
        problems.append(f"methods: {label!r} appears more than once; give each entry a distinct 'label'")
    task_names = [t.name for t in tasks]
    for task_name in sorted({n for n in task_names if task_names.count(n) > 1}):
        problems.append(f"tasks: {task_name!r} is listed more than once; list each task once")

    for task in tasks:
        task_cls = TASKS.get(task.name)
        for method in methods:
            reason = METHODS.get(method.name).incompatibility(task_cls)
            if reason:
                problems.append(f"{reason}; remove the pair from the sweep (or split it into two sweeps)")
    warnings = _recipe_checks(tasks, methods, recipe_epochs, profile, problems)

    max_cells = _check_max_cells(data, problems)
    sweep = Sweep(name=name, profile=profile, budget=budget, seeds=seeds, ratios=ratios,
                  tasks=tuple(tasks), methods=tuple(methods), source=source, max_cells=max_cells,
                  slurm=dict(slurm) if isinstance(slurm, dict) else {}, warnings=tuple(warnings))
    if not problems:
        problems.extend(_ratios_keeping_nothing(sweep, train_sizes))
    count = sweep.cell_count()
    if count > max_cells:  # before anything builds the cells
        size = f"{count:,} cells ({len(tasks)} task(s) x {len(seeds)} seed(s) x methods and ratios)"
        if "max_cells" in data:
            problems.append(f"sweep: {size} exceed its max_cells of {max_cells:,}; raise max_cells to {count} "
                            "if you mean them all, or use fewer seeds, tasks or ratios")
        else:
            problems.append(f"sweep: {size} exceed the limit of {MAX_CELLS:,} (a guard against a typo such as a "
                            f"seed list pasted twice); if you mean {count:,} cells, add `max_cells: {count}` to "
                            "the sweep, else split it into several sweeps or use fewer seeds, tasks or ratios")
    if not problems:
        problems.extend(_same_cell_twice(sweep))
    if problems:
        raise SweepError(source, problems)
    return sweep


def _recipe_checks(tasks: list[TaskEntry], methods: list[MethodEntry], recipe_epochs: dict[str, int],
                   profile: str, problems: list[str]) -> list[str]:
    """Each method's verdict on each task's recipe (:meth:`Method.recipe_problem` is added to
    ``problems``); the warnings of :meth:`Method.recipe_warning` are returned. Only pairs whose
    options are valid are asked."""
    asked = []  # (entry, class, settings) of each method whose options are valid, read once
    for method in methods:
        method_cls = METHODS.get(method.name)
        try:
            method_cls.check_options(method.options)
        except ValueError:
            continue  # reported by _parse_method
        asked.append((method, method_cls, method_cls.settings(method.options)))
    warnings = []
    for task in tasks:
        epochs = recipe_epochs.get(task.name)
        if epochs is None:
            continue
        for method, method_cls, settings in asked:
            where = f"method {method.label!r} on task {task.name!r} ({profile} profile, {epochs} epoch(s))"
            try:  # a plugin's check that raises is its own fault: named, never a traceback
                problem = method_cls.recipe_problem(settings, epochs)
                warning = method_cls.recipe_warning(settings, epochs)
            except Exception as error:  # noqa: BLE001
                problems.append(f"{where}: its recipe check raised {type(error).__name__}: {error}; fix the "
                                f"method's recipe_problem / recipe_warning")
                continue
            if problem:
                problems.append(f"{where}: {problem}")
            if warning:
                warnings.append(f"{where} {warning}")
    return warnings


def _ratios_keeping_nothing(sweep: Sweep, train_sizes: dict[str, int]) -> list[str]:
    """A data-pruning ratio that would keep no training sample of a task whose training size is
    known before loading (the trainer would stop the cell with "the hooks selected no training
    samples" after the data was read). The count is the method's own :meth:`n_keep`."""
    problems = []
    for task in sweep.tasks:
        n = train_sizes.get(task.name)
        if n is None:
            continue
        for method in sweep.methods:
            method_cls = METHODS.get(method.name)
            if getattr(method_cls, "family", "") != "data":
                continue
            for ratio in method.ratios or sweep.ratios:
                try:
                    kept = method_cls(ratio, 0, **method.options).n_keep(n)
                except (TypeError, ValueError):
                    continue  # its options are reported elsewhere
                if kept < 1:
                    largest = max((r / 10_000 for r in range(10_000) if n - round(r / 10_000 * n) >= 1), default=0)
                    problems.append(f"method {method.label!r} on task {task.name!r}: ratio {ratio:g} keeps {kept} of "
                                    f"the {n} training samples; every epoch needs at least one: use a ratio of at "
                                    f"most {largest:g}")
    return problems


def _check_max_cells(data: dict[str, Any], problems: list[str]) -> int:
    """The sweep's ``max_cells`` (default :data:`MAX_CELLS`): an integer from 1 to :data:`CELLS_CEILING`."""
    value = data.get("max_cells", MAX_CELLS)
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= CELLS_CEILING:
        problems.append(f"sweep: 'max_cells' must be the number of cells you mean to run, an integer from 1 to "
                        f"{CELLS_CEILING:,}; got {_show(value)}")
        return MAX_CELLS
    return value


def _same_cell_twice(sweep: Sweep) -> list[str]:
    """Entries that differ only by label would run (and track) one cell twice."""
    labels_by_id: dict[str, set[str]] = {}
    for cell in sweep.cells():
        labels_by_id.setdefault(cell.id, set()).add(cell.label)
    return [f"methods {sorted(labels)} describe the same cells (same method, options and ratios); "
            "remove one or give them different options" for labels in labels_by_id.values() if len(labels) > 1]


def _as_list(data: dict, key: str, problems: list[str]) -> list:
    if key not in data:
        return []  # reported as a missing required key
    value = data[key]
    if not isinstance(value, list) or not value:
        problems.append(f"sweep: {key!r} must be a non-empty list, got {_show(value)}")
        return []
    return value


def _entry(entry: Any, kind: str, keys: tuple[str, ...], problems: list[str]) -> dict | None:
    if isinstance(entry, str):
        return {"name": entry}
    if isinstance(entry, dict) and "name" in entry:
        if not isinstance(entry["name"], str):
            problems.append(f"{kind} name must be a string, got {_show(entry['name'])}")
            return None
        problems.extend(_unknown_keys(f"{kind} {_show(entry['name'])}", entry, keys))
        return entry
    problems.append(f"{kind} entry {_show(entry)} must be a name or a mapping with a 'name' key")
    return None


def _parse_task(entry: Any, profile: str, check_data: bool, problems: list[str],
                train_sizes: dict[str, int] | None = None,
                recipe_epochs: dict[str, int] | None = None) -> TaskEntry | None:
    entry = _entry(entry, "task", TASK_KEYS, problems)
    if entry is None:
        return None
    name, options, data_dir = entry["name"], entry.get("options"), entry.get("data_dir")
    try:
        task_cls = TASKS.get(name)
    except RegistryError as error:
        problems.append(str(error))
        return None
    options = {} if options is None else options
    bad = _option_problems(f"task {name!r}", options)
    if data_dir is not None and (not isinstance(data_dir, str) or not data_dir.strip() or "\0" in data_dir):
        bad.append(f"task {name!r}: 'data_dir' must be the path of a folder, got {_show(data_dir)}")
    if bad:
        problems.extend(bad)
        return None
    if profile not in task_cls.profiles:
        problems.append(f"task {name!r} has no profile {profile!r}; choose one of {sorted(task_cls.profiles)}")
        return TaskEntry(name, options, data_dir)
    try:
        task = task_cls(profile, data_dir=data_dir, **options)
    except (TypeError, ValueError) as error:
        problems.append(f"task {name!r}: {error}")
        return None
    if recipe_epochs is not None:
        recipe_epochs[name] = task.recipe.epochs
    if check_data:
        try:
            task.check_data()
            size = task.train_size()
        except (DataNotFoundError, DataFormatError) as error:
            problems.append(f"task {name!r}: {error}")
        else:
            if size is not None and train_sizes is not None:
                train_sizes[name] = size
    return TaskEntry(name, options, data_dir)


def _parse_method(entry: Any, problems: list[str], sweep_ratios: tuple[float, ...] = ()) -> MethodEntry | None:
    entry = _entry(entry, "method", METHOD_KEYS, problems)
    if entry is None:
        return None
    name, options, label = entry["name"], entry.get("options"), entry.get("label")
    try:
        method_cls = METHODS.get(name)
    except RegistryError as error:
        problems.append(str(error))
        return None
    options = {} if options is None else options
    bad = _option_problems(f"method {name!r}", options)
    if label is not None and label_problem(label):
        bad.append(f"method {name!r}: {label_problem(label)}")
    elif label == REFERENCE_LABEL:
        bad.append(f"method {name!r}: the label {REFERENCE_LABEL!r} is the full-data / dense reference's; "
                   "choose another")
    if bad:
        problems.extend(bad)
        return None
    ratios = None
    if "ratios" in entry:
        ratios = _check_ratios(f"method {name!r}", entry["ratios"], problems)
    try:
        method_cls.check_options(options)
        # parameters only: catches bad option values (and options that do not fit a ratio, such as
        # an N:M pattern), computes nothing
        for ratio in [r for r in (ratios or sweep_ratios) if r != 0] or [0.5]:
            method_cls(ratio, 0, **options)
    except (TypeError, ValueError) as error:
        problems.append(f"method {name!r}: {error}")
    return MethodEntry(name=name, label=label or name, options=dict(options), ratios=ratios)
