"""The `prunebench` command line, run as a user would (in a subprocess): help for every
sub-command, and `validate` on good and bad sweeps."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from benchmark.sweeps.cells import load_sweep
from helpers_tiny import write_tiny_fashion_mnist

SUBCOMMANDS = ("list", "validate", "run", "leaderboard", "ui", "download")
CONSOLE_SCRIPT = Path(sys.executable).parent / "prunebench"


def prunebench(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run the CLI through `python -m benchmark.cli` (the same main() the console script calls)."""
    return subprocess.run([sys.executable, "-m", "benchmark.cli", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=180, env={**os.environ, "PYTHONUNBUFFERED": "1"})


@pytest.fixture
def good_sweep(tmp_path: Path) -> Path:
    data = write_tiny_fashion_mnist(tmp_path / "fm")
    path = tmp_path / "good.yaml"
    path.write_text(textwrap.dedent(f"""
        name: cli-smoke
        profile: smoke
        seeds: [0, 1]
        ratios: [0.5, 0.9]
        tasks:
          - name: fashion-mnist
            data_dir: {data}
        methods:
          - random
          - name: magnitude
            ratios: [0.3]
    """))
    return path


# --- help -----------------------------------------------------------------------------------


@pytest.mark.skipif(shutil.which("prunebench", path=str(CONSOLE_SCRIPT.parent)) is None,
                    reason="console script not installed next to this interpreter")
def test_console_script_help():
    result = subprocess.run([str(CONSOLE_SCRIPT), "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: prunebench")
    for sub in SUBCOMMANDS:
        assert sub in result.stdout


def test_main_help():
    result = prunebench("--help")
    assert result.returncode == 0, result.stderr
    assert "usage: prunebench" in result.stdout


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_subcommand_help(sub):
    result = prunebench(sub, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: prunebench {sub}")


def test_no_subcommand_is_a_usage_error():
    result = prunebench()
    assert result.returncode == 2
    assert "usage: prunebench" in result.stderr


# --- validate -------------------------------------------------------------------------------


def test_validate_bad_sweep_exits_2_and_prints_the_problems(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text(textwrap.dedent("""
        profile: smoke
        seeds: [0]
        ratios: [0.5, 1.5]
        tasks: [fashion-mnist]
        methods: [el2m]
    """))
    result = prunebench("validate", str(path))
    assert result.returncode == 2
    assert "invalid sweep" in result.stderr and str(path) in result.stderr
    assert "2 problem(s)" in result.stderr
    assert "unknown method 'el2m'" in result.stderr and "Did you mean 'el2n'" in result.stderr
    assert "ratio 1.5 is outside [0, 1)" in result.stderr
    assert "valid." not in result.stdout


def test_validate_yaml_syntax_error_exits_2(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("tasks: [fashion-mnist\n")
    result = prunebench("validate", str(path))
    assert result.returncode == 2
    assert "cannot parse" in result.stderr


def test_validate_missing_file_exits_2(tmp_path: Path):
    result = prunebench("validate", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2
    assert "does not exist" in result.stderr


def test_validate_good_sweep_prints_the_cell_count(good_sweep: Path):
    result = prunebench("validate", str(good_sweep))
    assert result.returncode == 0, result.stderr
    # 1 task x 2 seeds x (reference + random x 2 ratios + magnitude x 1 ratio) = 8
    assert f"{good_sweep}: valid. 8 cells" in result.stdout
    assert "experiment 'cli-smoke'" in result.stdout
    assert result.stdout.count("\n") == 1  # no cell list without --cells


def test_validate_prints_a_recipe_warning_and_still_passes(good_sweep: Path):
    good_sweep.write_text(good_sweep.read_text().replace("  - random\n", "  - infobatch\n"))
    result = prunebench("validate", str(good_sweep))
    assert result.returncode == 0, result.stderr
    assert f"{good_sweep}: valid. 8 cells" in result.stdout
    # the smoke profile's 2 epochs: InfoBatch's delta 0.875 reaches no epoch after the first
    assert result.stderr.splitlines() == [
        "warning: method 'infobatch' on task 'fashion-mnist' (smoke profile, 2 epoch(s)) prunes nothing with delta "
        "0.875: only epochs e with e + 1 <= delta x epochs may prune, and epoch 0's well-learned pool is empty "
        "(every score starts at 3), so every epoch trains on all the data; give the task at least 3 epochs (task "
        "option epochs) or set delta to at least 1"]


def test_validate_cells_prints_every_cell_id(good_sweep: Path):
    result = prunebench("validate", "--cells", str(good_sweep))
    assert result.returncode == 0, result.stderr
    cells = load_sweep(good_sweep).cells()
    assert len(cells) == 8
    listed = [line.split()[0] for line in result.stdout.splitlines()[1:]]
    assert listed == [cell.id for cell in cells]
    for cell in cells:
        assert f"{cell.id}  {cell.display}" in result.stdout
