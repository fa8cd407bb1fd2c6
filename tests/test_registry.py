"""The method/task registries: decorator registration, clashes, did-you-mean lookups,
discovery of built-in modules (a copy of the packages with files added), entry-point plugins
(a real plugin package made on disk, used from a fresh interpreter), modules and plugins that
fail to load, and lazy imports (list and validate never import torch)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmark.api.method import DataPruner
from benchmark.api.registry import (
    METHODS,
    TASKS,
    Registry,
    RegistryError,
    get_method,
    get_task,
    register_method,
)
from helpers_tiny import write_tiny_fashion_mnist

BUILTIN_METHODS = {"none", "random", "el2n", "magnitude", "random-weights"}
BUILTIN_TASKS = {"fashion-mnist", "cifar10", "cifar100"}
STATIC_BASELINES = {"forgetting", "aum", "uncertainty", "dyn-unc", "tdds", "ccs", "moderate", "grand"}


def fresh_registry() -> Registry:
    """A registry with no built-ins and an entry-point group nobody declares."""
    return Registry("method", packages=(), entry_point_group="prunebench.test-no-such-group")


# --- decorator registration and lookup ---------------------------------------------


def test_register_with_decorator_and_look_up():
    registry = fresh_registry()

    @registry.register("keep-all")
    class KeepAll:
        pass

    assert registry.get("keep-all") is KeepAll
    assert KeepAll.name == "keep-all"  # the decorator names the class
    assert "keep-all" in registry
    assert registry.names() == ["keep-all"]
    assert registry.items() == [("keep-all", KeepAll)]


def test_register_method_in_the_global_registry():
    @register_method("test-registry-keep-all")
    class KeepAll(DataPruner):
        pass

    assert get_method("test-registry-keep-all") is KeepAll
    assert "test-registry-keep-all" in METHODS.names()
    assert KeepAll.name == "test-registry-keep-all"
    # built-ins are still there next to it
    assert BUILTIN_METHODS <= set(METHODS.names())


def test_registering_the_same_class_twice_is_harmless():
    registry = fresh_registry()

    class Same:
        pass

    registry.register("same")(Same)
    registry.register("same")(Same)
    assert registry.get("same") is Same


def test_duplicate_name_by_a_different_class_names_both():
    registry = fresh_registry()

    @registry.register("clash")
    class First:
        pass

    class Second:
        pass

    with pytest.raises(RegistryError) as info:
        registry.register("clash")(Second)
    message = str(info.value)
    assert "'clash'" in message
    assert f"{__name__}.test_duplicate_name_by_a_different_class_names_both.<locals>.First" in message
    assert f"{__name__}.test_duplicate_name_by_a_different_class_names_both.<locals>.Second" in message
    assert registry.get("clash") is First  # the first registration is kept


def test_duplicate_of_a_builtin_name_is_an_error_and_keeps_the_builtin():
    builtin = get_method("el2n")

    class MyEL2N(DataPruner):
        pass

    with pytest.raises(RegistryError) as info:
        register_method("el2n")(MyEL2N)
    message = str(info.value)
    assert "methods.data.el2n.EL2N" in message
    assert "MyEL2N" in message
    assert get_method("el2n") is builtin


@pytest.mark.parametrize("bad", ["El2n", "EL2N", "", "-leading-dash", "has space", "ümlaut"])
def test_invalid_names_are_rejected(bad):
    registry = fresh_registry()
    with pytest.raises(RegistryError) as info:
        registry.register(bad)
    message = str(info.value)
    assert repr(bad) in message
    assert "lower case" in message


def test_invalid_name_in_the_global_registry_is_rejected():
    with pytest.raises(RegistryError, match="lower case"):
        register_method("MyMethod")
    assert "MyMethod" not in METHODS
    assert "mymethod" not in METHODS


def test_unknown_method_suggests_a_close_match():
    with pytest.raises(RegistryError) as info:
        get_method("el2m")
    message = str(info.value)
    assert "'el2m'" in message
    assert "Did you mean" in message and "'el2n'" in message
    assert "prunebench list" in message
    assert not message.startswith('"')  # a KeyError subclass, but the message is not quoted


def test_unknown_task_suggests_a_close_match():
    with pytest.raises(RegistryError) as info:
        get_task("cifar1O")
    message = str(info.value)
    assert "'cifar1O'" in message
    assert "Did you mean" in message and "'cifar10'" in message


def test_unknown_name_without_any_close_match_lists_what_is_registered():
    with pytest.raises(RegistryError) as info:
        get_method("zzzzzzzz")
    message = str(info.value)
    assert "Did you mean" not in message
    for name in BUILTIN_METHODS:
        assert name in message


def test_registry_error_is_a_key_error():
    with pytest.raises(KeyError):
        get_task("no-such-task")


def test_builtin_names():
    assert BUILTIN_METHODS <= set(METHODS.names())
    assert BUILTIN_TASKS <= set(TASKS.names())
    assert METHODS.names() == sorted(METHODS.names())
    for name in BUILTIN_METHODS:
        assert get_method(name).name == name
    for name in BUILTIN_TASKS:
        assert get_task(name).name == name


# --- entry points: a real plugin package on disk -------------------------------------


def run_python(code_or_args: list[str], path: Path, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(path) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return subprocess.run([sys.executable, *code_or_args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=180)


def write_dist_info(root: Path, dist: str, entry_points: str) -> None:
    info = root / f"{dist}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(entry_points)


PLUGIN_SOURCE = '''
"""A third-party data pruner: keeps the first n_keep training samples."""
import torch

from benchmark.api.method import DataPruner
from benchmark.api.registry import register_method


@register_method("demo-keep-first")
class KeepFirst(DataPruner):
    def on_epoch_start(self, state):
        return torch.arange(self.n_keep(state.n_train))
'''


@pytest.fixture
def demo_plugin(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    package = site / "pb_plugin_demo"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(PLUGIN_SOURCE)
    write_dist_info(site, "pb_plugin_demo", "[prunebench.methods]\ndemo-keep-first = pb_plugin_demo\n")
    return site


def test_entry_point_plugin_is_listed(demo_plugin: Path, tmp_path: Path):
    result = run_python(["-m", "benchmark.cli", "list", "methods"], demo_plugin, tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    demo = [line for line in lines if line.split() and line.split()[0] == "demo-keep-first"]
    assert len(demo) == 1, result.stdout
    assert "family=data" in demo[0]
    assert "FAILED" not in result.stdout
    for name in BUILTIN_METHODS:
        assert any(line.split() and line.split()[0] == name for line in lines), (name, result.stdout)


def test_entry_point_plugin_is_looked_up_and_selects_the_first_samples(demo_plugin: Path, tmp_path: Path):
    code = textwrap.dedent("""
        from types import SimpleNamespace
        from benchmark.api.registry import get_method, METHODS
        cls = get_method("demo-keep-first")
        assert cls.__module__ == "pb_plugin_demo", cls.__module__
        assert METHODS.load_errors == {}, METHODS.load_errors
        picked = cls(0.3, 0).on_epoch_start(SimpleNamespace(n_train=10))
        print(picked.tolist())
    """)
    result = run_python(["-c", code], demo_plugin, tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(list(range(7)))


def test_sweep_using_the_plugin_validates(demo_plugin: Path, tmp_path: Path):
    data = write_tiny_fashion_mnist(tmp_path / "fm")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(textwrap.dedent(f"""
        name: plugin-smoke
        profile: smoke
        seeds: [0]
        ratios: [0.5]
        tasks:
          - name: fashion-mnist
            data_dir: {data}
        methods: [demo-keep-first, random]
    """))
    result = run_python(["-m", "benchmark.cli", "validate", "--cells", str(sweep)], demo_plugin, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "valid. 3 cells" in result.stdout
    assert "fashion-mnist demo-keep-first r=0.5 seed=0" in result.stdout

    # the same sweep without the plugin on the path is rejected, naming the method
    without = run_python(["-m", "benchmark.cli", "validate", str(sweep)], tmp_path / "empty-site", tmp_path)
    assert without.returncode == 2
    assert "unknown method 'demo-keep-first'" in without.stderr


BROKEN_PLUGIN_ERROR = ("failed to load: plugin module pb_plugin_broken (entry point 'broken-demo' in "
                       "prunebench.methods) raised RuntimeError: boom from the broken plugin")


@pytest.fixture
def broken_plugin(tmp_path: Path) -> Path:
    site = tmp_path / "site"
    package = site / "pb_plugin_broken"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('raise RuntimeError("boom from the broken plugin")\n')
    write_dist_info(site, "pb_plugin_broken", "[prunebench.methods]\nbroken-demo = pb_plugin_broken\n")
    return site


def test_broken_plugin_is_reported_and_builtins_still_list(broken_plugin: Path, tmp_path: Path):
    result = run_python(["-m", "benchmark.cli", "list"], broken_plugin, tmp_path)
    assert result.returncode == 0, result.stderr
    broken = [line for line in result.stdout.splitlines() if "broken-demo" in line]
    assert broken == [f"  {'broken-demo':16s} {BROKEN_PLUGIN_ERROR}"], result.stdout
    names = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert BUILTIN_METHODS <= names
    assert BUILTIN_TASKS <= names


def plugin_sweep(tmp_path: Path, methods: str) -> Path:
    data = write_tiny_fashion_mnist(tmp_path / "fm")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(f"name: plugin-smoke\nprofile: smoke\nseeds: [0]\nratios: [0.5]\n"
                     f"tasks:\n  - name: fashion-mnist\n    data_dir: {data}\nmethods: {methods}\n")
    return sweep


@pytest.mark.parametrize("command", ["validate", "run"])
def test_broken_plugin_import_error_surfaces_in_validate_and_run(broken_plugin: Path, tmp_path: Path, command):
    sweep = plugin_sweep(tmp_path, "[random, broken-demo]")
    store = tmp_path / "store.db"
    args = ["-m", "benchmark.cli", command, str(sweep)]
    if command == "run":
        args += ["--tracking-uri", f"sqlite:///{store}"]
    result = run_python(args, broken_plugin, tmp_path)
    assert result.returncode == 2, (result.stdout, result.stderr)
    problems = [line for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert problems == [f"  - method 'broken-demo' {BROKEN_PLUGIN_ERROR}"], result.stderr
    assert "unknown method" not in result.stderr and "Did you mean" not in result.stderr
    assert not store.exists()  # refused before any run is tracked


def test_an_unknown_name_next_to_a_broken_plugin_says_what_did_not_load(broken_plugin: Path, tmp_path: Path):
    """The plugin that failed may be the one that defines the name: the message says so."""
    sweep = plugin_sweep(tmp_path, "[keep-nothing]")
    result = run_python(["-m", "benchmark.cli", "validate", str(sweep)], broken_plugin, tmp_path)
    assert result.returncode == 2
    assert "unknown method 'keep-nothing'" in result.stderr
    assert f"Not loaded (it may be there): {BROKEN_PLUGIN_ERROR}." in result.stderr


# --- discovery: files added to a copy of the built-in packages ------------------------------

ROOT = Path(__file__).resolve().parent.parent

KEEP_LAST = '''
"""Keeps the last n_keep training samples."""
from benchmark.api.lazy import lazy_import
from benchmark.api.method import DataPruner
from benchmark.api.registry import register_method

torch = lazy_import("torch")


@register_method("keep-last")
class KeepLast(DataPruner):
    def __init__(self, ratio, seed=0, *, offset: int = 0):
        super().__init__(ratio, seed)
        self.offset = offset

    def on_epoch_start(self, state):
        return torch.arange(state.n_train - self.n_keep(state.n_train), state.n_train)
'''


def copy_of_packages(tmp_path: Path) -> Path:
    """The built-in methods/ and tasks/ packages copied next to each other, first on the path."""
    site = tmp_path / "copy"
    for package in ("methods", "tasks"):
        shutil.copytree(ROOT / package, site / package, ignore=shutil.ignore_patterns("__pycache__"))
    return site


def test_a_file_added_to_methods_is_registered_without_editing_a_list(tmp_path: Path):
    site = copy_of_packages(tmp_path)
    (site / "methods" / "keep_last.py").write_text(KEEP_LAST)
    (site / "methods" / "extra").mkdir()  # a subpackage is searched too
    (site / "methods" / "extra" / "__init__.py").write_text("")
    (site / "methods" / "extra" / "keep_first.py").write_text(
        KEEP_LAST.replace("keep-last", "keep-first-extra").replace("KeepLast", "KeepFirst"))

    listed = run_python(["-m", "benchmark.cli", "list", "methods"], site, tmp_path)
    assert listed.returncode == 0, listed.stderr
    rows = {line.split()[0]: line for line in listed.stdout.splitlines() if line.startswith("  ")}
    assert set(rows) == BUILTIN_METHODS | STATIC_BASELINES | {"seven", "emp", "ted", "infobatch", "ucb", "epsilon-greedy",
                                                              "wanda", "sparsegpt", "movement", "soft-movement", "platon",
                                                              "keep-last", "keep-first-extra"}, listed.stdout
    assert "family=data" in rows["keep-last"] and "options: offset" in rows["keep-last"]

    sweep = plugin_sweep(tmp_path, "[keep-last, keep-first-extra]")
    code = textwrap.dedent(f"""
        import sys
        from benchmark.cli import main
        from benchmark.api.registry import get_method
        code = main(["validate", "--cells", {str(sweep)!r}])
        print("module:", get_method("keep-last").__module__, get_method("keep-first-extra").__module__)
        print("torch imported:", "torch" in sys.modules)
        sys.exit(code)
    """)
    result = run_python(["-c", code], site, tmp_path)
    assert result.returncode == 0, result.stderr
    assert "valid. 3 cells" in result.stdout  # the full-data reference and the two new methods
    assert "fashion-mnist keep-last r=0.5 seed=0" in result.stdout
    assert "module: methods.keep_last methods.extra.keep_first" in result.stdout
    assert result.stdout.splitlines()[-1] == "torch imported: False"


def test_a_task_file_added_to_a_tasks_subpackage_is_registered(tmp_path: Path):
    site = copy_of_packages(tmp_path)
    (site / "tasks" / "vision" / "tiny_fashion.py").write_text(textwrap.dedent('''
        from benchmark.api.registry import register_task
        from tasks.vision.fashion_mnist import FashionMNIST


        @register_task("fashion-mnist-copy")
        class FashionMNISTCopy(FashionMNIST):
            chance_level = 0.1
    '''))
    result = run_python(["-m", "benchmark.cli", "list", "tasks"], site, tmp_path)
    assert result.returncode == 0, result.stderr
    names = [line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ") and line[2] != " "]
    assert "fashion-mnist-copy" in names and BUILTIN_TASKS <= set(names)


def test_a_broken_builtin_module_fails_to_load_without_hiding_the_others(tmp_path: Path):
    site = copy_of_packages(tmp_path)
    (site / "methods" / "half_done.py").write_text(
        "import prunebench_no_such_module\n" + KEEP_LAST.replace("keep-last", "half-done"))
    error = ("failed to load: module methods.half_done raised ModuleNotFoundError: "
             "No module named 'prunebench_no_such_module'")

    listed = run_python(["-m", "benchmark.cli", "list", "methods"], site, tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert f"  {'half-done':16s} {error}" in listed.stdout.splitlines(), listed.stdout
    assert BUILTIN_METHODS <= {line.split()[0] for line in listed.stdout.splitlines() if line.startswith("  ")}

    bad = run_python(["-m", "benchmark.cli", "validate", str(plugin_sweep(tmp_path, "[random, half-done]"))],
                     site, tmp_path)
    assert bad.returncode == 2
    assert [line for line in bad.stderr.splitlines() if line.startswith("  - ")] == [f"  - method 'half-done' {error}"]
    good = run_python(["-m", "benchmark.cli", "validate", str(plugin_sweep(tmp_path, "[random, el2n]"))],
                      site, tmp_path)
    assert good.returncode == 0, good.stderr


def test_discovery_reads_the_decorators_without_importing():
    from benchmark.api.discovery import discover, registered_names

    source = textwrap.dedent('''
        @register_method("first")
        class A: ...

        @registry.register_method( 'second' )
        class B: ...

        # register_method(name) in a loop is not literal: found by importing every built-in
        register_method(f"loop-{i}")
    ''')
    assert registered_names(source, "register_method") == ["first", "second"]
    found = discover(("methods",), "register_method")
    assert found["methods.data.el2n"] == ["el2n"] and found["methods.data.random_data"] == ["random"]
    assert "methods.data.selection" not in found  # a helper module: never imported by the registry
    tasks = discover(("tasks",), "register_task")
    assert tasks["tasks.vision.cifar"] == ["cifar10", "cifar100"]
    assert tasks["tasks.sft.task"] == ["rt-instruct", "humaneval", "alpaca"]


def test_a_lookup_imports_only_the_module_that_registers_the_name(tmp_path: Path):
    code = textwrap.dedent("""
        import sys
        from benchmark.api.registry import get_method, get_task
        get_method("random"), get_task("cifar10")
        print(sorted(m for m in sys.modules if m.startswith(("methods.", "tasks.")) and m.count(".") < 3))
    """)
    result = run_python(["-c", code], tmp_path / "empty-site", tmp_path)
    assert result.returncode == 0, result.stderr
    imported = eval(result.stdout.strip())
    assert "methods.data.random_data" in imported and "tasks.vision.cifar" in imported
    assert not {"methods.data.el2n", "methods.model.seven", "tasks.text.task", "tasks.sft.task", "tasks.cwru.task"} & set(imported)


# --- lazy imports ---------------------------------------------------------------------


def test_listing_names_imports_no_heavy_library(tmp_path: Path):
    code = textwrap.dedent("""
        import sys
        import benchmark.api.registry as r
        assert "methods.data.el2n" not in sys.modules  # nothing is imported before the first lookup
        methods, tasks = r.METHODS.names(), r.TASKS.names()
        assert "el2n" in methods and "fashion-mnist" in tasks
        heavy = sorted(m for m in ("transformers", "mlflow", "scipy") if m in sys.modules)
        print("heavy:", heavy)
    """)
    result = run_python(["-c", code], tmp_path, tmp_path)
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert "'transformers'" not in line
    assert "'mlflow'" not in line
    assert line == "heavy: []"


def test_list_imports_no_torch_and_shows_every_builtin(tmp_path: Path):
    code = textwrap.dedent("""
        import sys
        from benchmark.cli import main
        main(["list"])
        print("imported:", sorted(m for m in ("torch", "numpy", "mlflow", "pandas", "transformers", "scipy", "datasets")
                                  if m in sys.modules))
    """)
    result = run_python(["-c", code], tmp_path / "empty-site", tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "imported: []", lines[-1]
    names = {line.split()[0] for line in lines if line.startswith("  ")}
    assert BUILTIN_METHODS | {"seven", "emp", "ted"} <= names and BUILTIN_TASKS | {"cwru", "sst2"} <= names
    seven = next(line for line in lines if line.split() and line.split()[0] == "seven")
    assert "family=model" in seven and "pre_batches" in seven


@pytest.mark.parametrize("sweep", ["sweeps/smoke.yaml", "sweeps/default.yaml", "sweeps/fashion-mnist-dynamic.yaml"])
def test_validate_of_a_real_sweep_imports_no_torch(sweep: str, tmp_path: Path):
    """Names, ratios, options (types, ranges) and the data check of every built-in method and
    the Fashion-MNIST task run from the classes, whose modules import torch only to compute."""
    write_tiny_fashion_mnist(tmp_path / "data" / "fashion-mnist")
    code = textwrap.dedent(f"""
        import sys
        from benchmark.cli import main
        code = main(["validate", {str(ROOT / sweep)!r}])
        print("imported:", sorted(m for m in ("torch", "numpy", "mlflow", "pandas", "transformers") if m in sys.modules))
        sys.exit(code)
    """)
    env = {**os.environ, "PRUNEBENCH_DATA": str(tmp_path / "data"), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=180)
    assert result.returncode == 0, result.stderr
    assert ": valid." in result.stdout
    assert result.stdout.splitlines()[-1] == "imported: []"
