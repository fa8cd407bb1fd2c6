"""The method/task registries: decorator registration, clashes, did-you-mean lookups,
entry-point plugins (a real plugin package made on disk, used from a fresh interpreter),
and lazy imports (listing never imports heavy libraries)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmark.method import DataPruner
from benchmark.registry import (
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


def fresh_registry() -> Registry:
    """A registry with no built-ins and an entry-point group nobody declares."""
    return Registry("method", builtin_modules=[], entry_point_group="prunebench.test-no-such-group")


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
    assert "methods.el2n.EL2N" in message
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

from benchmark.method import DataPruner
from benchmark.registry import register_method


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
        from benchmark.registry import get_method, METHODS
        cls = get_method("demo-keep-first")
        assert cls.__module__ == "pb_plugin_demo", cls.__module__
        assert METHODS.plugin_errors == {}, METHODS.plugin_errors
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


def test_broken_plugin_is_reported_and_builtins_still_list(tmp_path: Path):
    site = tmp_path / "site"
    package = site / "pb_plugin_broken"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text('raise RuntimeError("boom from the broken plugin")\n')
    write_dist_info(site, "pb_plugin_broken", "[prunebench.methods]\nbroken-demo = pb_plugin_broken\n")

    result = run_python(["-m", "benchmark.cli", "list"], site, tmp_path)
    assert result.returncode == 0, result.stderr
    broken = [line for line in result.stdout.splitlines() if "broken-demo" in line]
    assert len(broken) == 1, result.stdout
    assert "PLUGIN FAILED TO LOAD" in broken[0]
    assert "RuntimeError: boom from the broken plugin" in broken[0]
    names = {line.split()[0] for line in result.stdout.splitlines() if line.startswith("  ")}
    assert BUILTIN_METHODS <= names
    assert BUILTIN_TASKS <= names


# --- lazy imports ---------------------------------------------------------------------


def test_listing_names_imports_no_heavy_library(tmp_path: Path):
    code = textwrap.dedent("""
        import sys
        import benchmark.registry as r
        assert "methods.el2n" not in sys.modules  # nothing is imported before the first lookup
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


def test_builtin_index_is_current():
    """`prunebench list` shows the built-ins from builtin_index.json; it must say what the
    classes say. If this fails after changing a built-in: python -m benchmark.registry_index"""
    from benchmark.registry import read_index
    from benchmark.registry_index import build_index

    assert read_index() == build_index()


def test_list_imports_no_torch_and_shows_every_builtin(tmp_path: Path):
    code = textwrap.dedent("""
        import sys
        from benchmark.cli import main
        main(["list"])
        print("imported:", sorted(m for m in ("torch", "numpy", "mlflow", "pandas", "transformers", "methods.el2n")
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
