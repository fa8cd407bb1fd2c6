"""The package layout: each room of ``benchmark/`` imports only the rooms below it, no module
circles, every module opens with a docstring, and a plugin written against the old flat
import paths still registers and runs."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from helpers_tiny import write_tiny_fashion_mnist

ROOT = Path(__file__).resolve().parent.parent
#: bottom to top; a module may import its own room and the rooms before it
ROOMS = ("version", "api", "training", "sweeps", "boards", "cli")
#: upward references that exist for type annotations only, listed so a new one is noticed:
#: a method's ``prepare(context: RunContext)`` names the context the training room builds
TYPE_ONLY_UPWARD = {("benchmark.api.method", "benchmark.training.context")}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def room(module: str) -> str | None:
    """The room of a ``benchmark`` module; None for the package root and its alias table."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in ROOMS else None


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def imports_of(path: Path) -> list[tuple[str, bool]]:
    """``(imported benchmark module, only under TYPE_CHECKING)`` for every import in ``path``,
    module level and inside functions, relative ones resolved."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found: list[tuple[str, bool]] = []

    def visit(node: ast.AST, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for item in child.body:
                    visit_one(item, True)
                for item in child.orelse:
                    visit_one(item, type_only)
            else:
                visit_one(child, type_only)

    def visit_one(node: ast.AST, type_only: bool) -> None:
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{alias.name}" for alias in node.names]
            for name in names:  # `from . import x` imports the module x; `from .m import f` the module m
                found.append((name if (ROOT / (name.replace(".", "/") + ".py")).exists() else target, type_only))
        elif isinstance(node, ast.Import):
            found.extend((alias.name, type_only) for alias in node.names)
        visit(node, type_only)

    visit(ast.parse(path.read_text()), False)
    return [(name, type_only) for name, type_only in found if name.split(".")[0] == "benchmark"]


def harness_modules() -> list[Path]:
    return sorted((ROOT / "benchmark").rglob("*.py"))


def test_every_room_imports_only_the_rooms_below_it():
    upward, type_only_upward = [], set()
    for path in harness_modules():
        own = room(module_name(path))
        if own is None:
            continue
        for target, type_only in imports_of(path):
            theirs = room(target)
            if theirs is not None and ROOMS.index(theirs) > ROOMS.index(own):
                if type_only:
                    type_only_upward.add((module_name(path), target))
                else:
                    upward.append(f"{module_name(path)} imports {target}")
    assert upward == []
    assert type_only_upward == TYPE_ONLY_UPWARD


def test_the_rooms_are_the_documented_ones_and_hold_every_module():
    folders = {p.name for p in (ROOT / "benchmark").iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert folders == {"api", "training", "sweeps", "boards"}
    loose = {p.stem for p in (ROOT / "benchmark").glob("*.py")}
    assert loose == {"__init__", "cli", "moved", "version"}


def test_no_module_imports_itself_back_through_another():
    """No circle among the harness's modules, type-only imports included (evidence and execute
    used to import each other)."""
    graph = {module_name(p): {t for t, _ in imports_of(p) if t != module_name(p)} for p in harness_modules()}
    graph = {m: {t for t in targets if t in graph} for m, targets in graph.items()}
    # a package imports its own modules to re-export them: that is not a circle through the package
    for m in graph:
        graph[m] = {t for t in graph[m] if not t.startswith(m + ".") and not m.startswith(t + ".")}
    index, low, stack, on_stack, circles, counter = {}, {}, [], set(), [], [0]

    def strongconnect(node: str) -> None:  # Tarjan
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                strongconnect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = set()
            while True:
                item = stack.pop()
                on_stack.discard(item)
                component.add(item)
                if item == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            strongconnect(node)
    assert circles == []


def test_every_module_opens_with_a_docstring():
    paths = [*harness_modules(), *(ROOT / "methods").rglob("*.py"), *(ROOT / "tasks").rglob("*.py")]
    missing = [str(p.relative_to(ROOT)) for p in paths if not ast.get_docstring(ast.parse(p.read_text()))]
    assert missing == []


def test_the_project_itself_imports_no_old_path():
    from benchmark.moved import MOVED

    offenders = []
    for folder in ("benchmark", "methods", "tasks", "tests", "scripts"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name in ("moved.py", "test_layout.py") or "fixtures" in path.parts:
                continue  # the alias table, this test's old-style plugin, and scripts run by older code
            for target, _ in imports_of(path) if folder == "benchmark" else _absolute_imports(path):
                if target in MOVED:
                    offenders.append(f"{path.relative_to(ROOT)}: {target}")
    assert offenders == []


def _absolute_imports(path: Path) -> list[tuple[str, bool]]:
    """Every module ``path`` imports, relative imports resolved (``from ..selection`` in
    ``methods/data/`` is the old ``methods.selection``)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.level or node.module):
            parts = package.split(".")
            base = parts[: len(parts) - node.level + 1] if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found.append((target, False))
            found.extend((f"{target}.{alias.name}", False) for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend((alias.name, False) for alias in node.names)
    return found


def test_an_old_path_is_the_new_module_and_says_where_it_went():
    import benchmark.api.method
    import benchmark.boards.in_mlflow
    import methods.data.el2n

    for old, new in (("benchmark.method", benchmark.api.method), ("benchmark.board_mlflow", benchmark.boards.in_mlflow),
                     ("methods.el2n", methods.data.el2n)):
        sys.modules.pop(old, None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            module = __import__(old, fromlist=["_"])
        assert module is new
        assert module.__spec__.name == new.__name__  # the module keeps its own identity
        assert [str(w.message) for w in caught if w.category is DeprecationWarning] == [
            f"{old} has moved to {new.__name__}; import it from there (the old path goes in 0.3)"]
        assert caught[0].filename == __file__  # the warning points at the line that imported


OLD_STYLE_PLUGIN = '''
"""A plugin written against the flat import paths of version 0.1."""
from benchmark.hooks import TrainState
from benchmark.lazy import lazy_import
from benchmark.masks import select_masks
from benchmark.method import DataPruner, ModelPruner
from benchmark.registry import register_method
from benchmark.task import DataFormatError

torch = lazy_import("torch")


@register_method("oldstyle-keep-last")
class KeepLast(DataPruner):
    def on_epoch_start(self, state: TrainState):
        return torch.arange(state.n_train - self.n_keep(state.n_train), state.n_train)


@register_method("oldstyle-smallest")
class Smallest(ModelPruner):
    def on_run_start(self, state: TrainState) -> None:
        super().on_run_start(state)
        if not self._weights:
            raise DataFormatError("no weights")
        self.masker.set(select_masks({n: w.detach().abs() for n, w in self._weights.items()}, self.ratio, self.scope))
'''


def test_a_plugin_written_against_the_flat_paths_registers_and_runs(tmp_path: Path):
    site = tmp_path / "site"
    (site / "pb_oldstyle").mkdir(parents=True)
    (site / "pb_oldstyle" / "__init__.py").write_text(OLD_STYLE_PLUGIN)
    info = site / "pb_oldstyle-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pb_oldstyle\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[prunebench.methods]\noldstyle-keep-last = pb_oldstyle\noldstyle-smallest = pb_oldstyle\n")
    data = write_tiny_fashion_mnist(tmp_path / "fm")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"name: oldstyle\nprofile: smoke\nseeds: [0]\nratios: [0.5]\n"
                     f"tasks:\n  - name: fashion-mnist\n    data_dir: {data}\n"
                     f"methods: [oldstyle-keep-last, oldstyle-smallest]\n")
    store = tmp_path / "store.db"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-W", "default::DeprecationWarning", "-m", "benchmark.cli", "run",
                             str(sweep), "--tracking-uri", f"sqlite:///{store}"],
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    for old, new in (("benchmark.method", "benchmark.api.method"), ("benchmark.hooks", "benchmark.api.hooks"),
                     ("benchmark.registry", "benchmark.api.registry")):
        assert f"{old} has moved to {new}" in result.stderr

    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{store}")
    runs = client.search_runs([client.get_experiment_by_name("oldstyle").experiment_id])
    finished = {run.data.tags["cell_id"]: run.data.params["method"] for run in runs
                if run.data.tags.get("status") == "finished"}
    assert sorted(finished.values()) == ["none", "oldstyle-keep-last", "oldstyle-smallest"]
    by_method = {run.data.params["method"]: run for run in runs}
    assert by_method["oldstyle-keep-last"].data.metrics["kept_fraction"] == pytest.approx(0.5)
    assert by_method["oldstyle-smallest"].data.metrics["realised_sparsity"] == pytest.approx(0.5, abs=1e-3)
    assert by_method["oldstyle-keep-last"].data.tags["method_package"] == "pb_oldstyle"
