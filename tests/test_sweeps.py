"""Sweeps and cells: expansion into exactly the expected cells, stable content-hash ids,
and validation that rejects every bad input up front, each problem naming the value and the fix."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import textwrap
from pathlib import Path

import pytest

from benchmark.sweeps.cells import Cell, SweepError, load_sweep, parse_sweep
from benchmark.api.task import Recipe, Task
from benchmark.api.registry import TASKS, register_task
from helpers_tiny import write_tiny_fashion_mnist


@pytest.fixture
def fm_dir(tmp_path: Path) -> Path:
    return write_tiny_fashion_mnist(tmp_path / "fashion-mnist")


def sweep_dict(**changes) -> dict:
    data = {
        "name": "test-sweep",
        "profile": "smoke",
        "seeds": [0],
        "ratios": [0.5],
        "tasks": ["fashion-mnist"],
        "methods": ["random"],
    }
    data.update(changes)
    return data


def problems_of(data: dict, check_data: bool = False) -> list[str]:
    with pytest.raises(SweepError) as info:
        parse_sweep(data, check_data=check_data)
    assert info.value.problems, "a SweepError must list its problems"
    assert all(p in str(info.value) for p in info.value.problems)  # the message shows every problem
    return info.value.problems


def one_problem(data: dict, check_data: bool = False) -> str:
    problems = problems_of(data, check_data)
    assert len(problems) == 1, problems
    return problems[0]


# --- expansion -------------------------------------------------------------------------


def test_sweep_expands_to_exactly_the_expected_cells(fm_dir: Path):
    sweep = parse_sweep(sweep_dict(
        seeds=[0, 1],
        ratios=[0.5, 0.8],
        tasks=[{"name": "fashion-mnist", "data_dir": str(fm_dir)}],
        methods=["random", {"name": "el2n", "options": {"proxy_runs": 1}},
                 {"name": "magnitude", "ratios": [0.3, 0.6, 0.9]}],
    ), check_data=True)
    cells = sweep.cells()
    # 1 task x 2 seeds x (1 reference + 2 methods x 2 ratios + 1 method x 3 own ratios) = 16
    assert len(cells) == 1 * 2 * (1 + 2 * 2 + 3) == 16
    assert len({c.id for c in cells}) == 16
    expected = set()
    for seed in (0, 1):
        expected.add(("none", 0.0, seed, "full", ()))
        for ratio in (0.5, 0.8):
            expected.add(("random", ratio, seed, "random", ()))
            expected.add(("el2n", ratio, seed, "el2n", (("proxy_runs", 1),)))
        for ratio in (0.3, 0.6, 0.9):
            expected.add(("magnitude", ratio, seed, "magnitude", ()))
    assert {(c.method, c.ratio, c.seed, c.label, c.method_options) for c in cells} == expected
    for cell in cells:
        assert (cell.task, cell.profile, cell.budget, cell.task_options) == ("fashion-mnist", "smoke", "epochs", ())

    # exactly one reference cell per (task, seed): method none, ratio 0, label full
    references = [c for c in cells if c.is_reference]
    assert [(c.task, c.seed) for c in references] == [("fashion-mnist", 0), ("fashion-mnist", 1)]
    assert all(c.method == "none" and c.ratio == 0.0 and c.label == "full" for c in references)
    # seed by seed, the reference first, so early seeds finish first
    assert [c.seed for c in cells] == [0] * 8 + [1] * 8
    assert cells[0].is_reference and cells[8].is_reference
    assert sweep.data_dirs() == {"fashion-mnist": str(fm_dir)}


def test_two_tasks_get_their_own_reference_cells():
    sweep = parse_sweep(sweep_dict(seeds=[3], tasks=["fashion-mnist", {"name": "cifar10", "options": {"epochs": 1}}]),
                        check_data=False)
    cells = sweep.cells()
    assert len(cells) == 2 * 1 * (1 + 1)
    references = [(c.task, c.seed, c.task_options) for c in cells if c.is_reference]
    assert references == [("fashion-mnist", 3, ()), ("cifar10", 3, (("epochs", 1),))]


def test_ratio_zero_does_not_duplicate_the_reference():
    sweep = parse_sweep(sweep_dict(
        seeds=[0, 1], ratios=[0.0, 0.5],
        methods=["random", {"name": "magnitude", "ratios": [0, 0.7]}],
    ), check_data=False)
    cells = sweep.cells()
    # per seed: reference + random 0.5 + magnitude 0.7
    assert len(cells) == 2 * 3
    assert [(c.method, c.ratio) for c in cells if c.seed == 0] == [("none", 0.0), ("random", 0.5), ("magnitude", 0.7)]
    assert sum(c.ratio == 0 for c in cells) == 2
    assert len({c.id for c in cells}) == len(cells)


def test_labels_carry_to_cells_and_options_are_part_of_them():
    sweep = parse_sweep(sweep_dict(methods=[
        "random", {"name": "random", "label": "random-dynamic", "options": {"dynamic": True}}]), check_data=False)
    cells = [c for c in sweep.cells() if not c.is_reference]
    assert [(c.label, c.method_options) for c in cells] == [("random", ()), ("random-dynamic", (("dynamic", True),))]
    assert cells[0].id != cells[1].id


# --- cell ids --------------------------------------------------------------------------

#: computed once; must never change (it names finished cells in every MLflow store)
KNOWN_CELL = dict(task="fashion-mnist", method="el2n", ratio=0.5, seed=0, profile="smoke", budget="epochs",
                  method_options=(("mode", "offset"), ("offset", 0.1)), task_options=(("epochs", 1),))
KNOWN_ID = "ccf9e0e3e6648145"


def independent_id(task, method, ratio, seed, profile, budget, method_options, task_options) -> str:
    content = {"task": task, "method": method, "ratio": float(ratio), "seed": seed, "profile": profile,
               "budget": budget, "method_options": dict(method_options), "task_options": dict(task_options)}
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]


def test_cell_id_is_a_stable_hash_of_its_content():
    cell = Cell(**KNOWN_CELL, label="el2n-offset")
    assert cell.id == KNOWN_ID
    assert cell.id == independent_id(**KNOWN_CELL)
    assert len(cell.id) == 16 and int(cell.id, 16) >= 0


def test_cell_id_from_a_sweep_matches_the_known_id(fm_dir: Path):
    sweep = parse_sweep(sweep_dict(
        ratios=[0.5],
        tasks=[{"name": "fashion-mnist", "options": {"epochs": 1}, "data_dir": str(fm_dir)}],
        # options written in the other order: the id must not care
        methods=[{"name": "el2n", "label": "el2n-offset", "options": {"offset": 0.1, "mode": "offset"}}],
    ), check_data=True)
    (cell,) = [c for c in sweep.cells() if not c.is_reference]
    assert cell.id == KNOWN_ID


def test_cell_id_ignores_label_and_data_dir(tmp_path: Path):
    cell = Cell(**KNOWN_CELL)
    assert dataclasses.replace(cell, label="something else").id == cell.id

    def ids(data_dir):
        task = {"name": "fashion-mnist", "data_dir": data_dir} if data_dir else "fashion-mnist"
        return [c.id for c in parse_sweep(sweep_dict(tasks=[task]), check_data=False).cells()]

    assert ids(None) == ids(str(tmp_path / "a")) == ids(str(tmp_path / "b"))


@pytest.mark.parametrize("change", [
    {"seed": 1},
    {"ratio": 0.6},
    {"method_options": (("mode", "offset"), ("offset", 0.2))},
    {"method_options": ()},
    {"task_options": (("epochs", 2),)},
    {"profile": "cpu"},
    {"budget": "steps"},
    {"task": "cifar10"},
    {"method": "random"},
])
def test_cell_id_changes_with_content(change):
    assert Cell(**{**KNOWN_CELL, **change}).id != KNOWN_ID


def test_integer_ratio_gives_the_same_id_as_float():
    assert Cell(**{**KNOWN_CELL, "ratio": 0}).id == Cell(**{**KNOWN_CELL, "ratio": 0.0}).id


def test_cell_is_frozen():
    cell = Cell(**KNOWN_CELL)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cell.ratio = 0.9
    with pytest.raises(dataclasses.FrozenInstanceError):
        cell.label = "x"
    assert cell.id == KNOWN_ID


# --- validation: each bad input names the value and the fix ------------------------------


def test_unknown_method_suggests_the_close_name():
    problem = one_problem(sweep_dict(methods=["el2m"]))
    assert "'el2m'" in problem and "Did you mean" in problem and "'el2n'" in problem


def test_unknown_task_suggests_the_close_name():
    problem = one_problem(sweep_dict(tasks=["cifar1O"]))
    assert "'cifar1O'" in problem and "'cifar10'" in problem


@pytest.mark.parametrize("ratio", [1.0, -0.1, "half", 1, True])
def test_bad_ratio(ratio):
    problem = one_problem(sweep_dict(ratios=[0.5, ratio]))
    assert repr(ratio) in problem
    assert "[0, 1)" in problem and "fraction removed" in problem


def test_bad_per_method_ratio_names_the_method():
    problem = one_problem(sweep_dict(methods=[{"name": "magnitude", "ratios": [0.5, 1.5]}]))
    assert "'magnitude'" in problem and "1.5" in problem and "[0, 1)" in problem


def test_unknown_top_level_key_suggests_the_close_key():
    problem = one_problem(sweep_dict(decription="typo"))
    assert "'decription'" in problem and "did you mean 'description'" in problem
    assert "valid keys" in problem


def test_unknown_method_option_lists_valid_options():
    problem = one_problem(sweep_dict(methods=[{"name": "el2n", "options": {"proxy_run": 2}}]))
    assert "'el2n'" in problem and "proxy_run" in problem
    assert "valid options" in problem and "'proxy_runs'" in problem and "'mode'" in problem


def test_bad_method_option_value():
    problem = one_problem(sweep_dict(methods=[{"name": "el2n", "options": {"mode": "easiest"}}]))
    assert "'easiest'" in problem
    for mode in ("hardest", "offset", "stratified"):
        assert mode in problem


def test_unknown_task_option_lists_recipe_fields():
    problem = one_problem(sweep_dict(tasks=[{"name": "fashion-mnist", "options": {"epoch": 3}}]))
    assert "'fashion-mnist'" in problem and "epoch" in problem and "'epochs'" in problem


def test_profile_the_task_lacks():
    problem = one_problem(sweep_dict(profile="gpu"))
    assert "'fashion-mnist'" in problem and "'gpu'" in problem
    assert "smoke" in problem and "cpu" in problem and "paper" in problem


def test_missing_data_directory_names_the_path_and_the_fix(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    problem = one_problem(sweep_dict(tasks=[{"name": "fashion-mnist", "data_dir": str(empty)}]), check_data=True)
    assert str(empty) in problem
    assert "Fix" in problem and "prunebench download fashion-mnist" in problem
    # not checked when asked not to
    parse_sweep(sweep_dict(tasks=[{"name": "fashion-mnist", "data_dir": str(empty)}]), check_data=False)


def test_data_directory_with_the_files_passes(fm_dir: Path):
    sweep = parse_sweep(sweep_dict(tasks=[{"name": "fashion-mnist", "data_dir": str(fm_dir)}]), check_data=True)
    assert len(sweep.cells()) == 2


def test_duplicate_method_entries_need_labels():
    problem = one_problem(sweep_dict(methods=["random", {"name": "random", "options": {"dynamic": True}}]))
    assert "'random'" in problem and "more than once" in problem and "label" in problem
    # with a label it is fine
    parse_sweep(sweep_dict(methods=["random", {"name": "random", "label": "random-dynamic",
                                              "options": {"dynamic": True}}]), check_data=False)


def test_reference_method_is_not_listed_by_hand():
    problem = one_problem(sweep_dict(methods=["none"]))
    assert "'none'" in problem and "automatically" in problem


def test_method_that_cannot_apply_to_the_task():
    if "test-regression-task" not in TASKS:

        @register_task("test-regression-task")
        class RegressionTask(Task):
            capabilities = frozenset({"regression"})
            profiles = {"smoke": Recipe(model="mlp", epochs=1, batch_size=8, lr=0.1)}

    problem = one_problem(sweep_dict(tasks=["test-regression-task"], methods=["el2n", "random", "magnitude"]))
    assert "'el2n'" in problem and "'test-regression-task'" in problem
    assert "classification" in problem and "regression" in problem
    assert "remove the pair" in problem


def test_all_problems_are_collected_at_once(tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    problems = problems_of({
        "profile": "smoke", "seeds": [0], "ratios": [1.0, -0.1, "half", 0.5], "decription": "typo",
        "tasks": ["cifar1O", {"name": "fashion-mnist", "data_dir": str(empty)}],
        "methods": ["el2m", {"name": "el2n", "options": {"proxy_run": 2}},
                    {"name": "el2n", "label": "el2n-easy", "options": {"mode": "easiest"}}, "random", "random"],
    }, check_data=True)
    expected = ["'decription'", "ratio 1.0", "ratio -0.1", "ratio 'half'", "'cifar1O'", str(empty), "'el2m'",
                "'proxy_run'", "'easiest'", "'random' appears more than once"]
    for fragment in expected:
        assert sum(fragment in p for p in problems) == 1, (fragment, problems)
    assert len(problems) == len(expected), problems


@pytest.mark.parametrize("changes, fragment", [
    ({"seeds": []}, "seeds"),
    ({"seeds": [0, 0]}, "duplicates"),
    ({"seeds": [-1]}, "non-negative"),
    ({"budget": "hours"}, "'hours'"),
    ({"methods": []}, "'methods'"),
    ({"tasks": "fashion-mnist"}, "'tasks'"),
    ({"ratios": [0.5, 0.5]}, "duplicates"),
])
def test_other_bad_values(changes, fragment):
    problem = one_problem(sweep_dict(**changes))
    assert fragment in problem


@pytest.mark.parametrize("changes, expected", [
    ({"name": 2024}, "'name' (the MLflow experiment) must be a non-empty string, got 2024"),
    ({"name": "  "}, "'name' (the MLflow experiment) must be a non-empty string, got '  '"),
    ({"description": ["a"]}, "'description' must be a string, got ['a']"),
    ({"seeds": [0, 2**32]}, f"seed {2**32} must be a non-negative integer below 2**32"),
    ({"seeds": [True]}, "seed True must be a non-negative integer"),
    ({"seeds": [0.0]}, "seed 0.0 must be a non-negative integer"),
    ({"ratios": [float("nan")]}, "ratio nan is outside [0, 1)"),
    ({"budget": ["steps"]}, "budget ['steps'] is unknown"),
    ({"tasks": None}, "'tasks' must be a non-empty list, got None"),
    ({"methods": None}, "'methods' must be a non-empty list, got None"),
    ({"tasks": ["fashion-mnist", "fashion-mnist"]}, "tasks: 'fashion-mnist' is listed more than once"),
    ({"tasks": [{"name": "fashion-mnist", "options": []}]}, "task 'fashion-mnist': 'options' must be a mapping"),
    ({"tasks": [{"name": "fashion-mnist", "options": {"lr": float("inf")}}]}, "option 'lr' must be a finite number"),
    ({"tasks": [{"name": "fashion-mnist", "options": {"model_options": {1: 2}}}]},
     "option name 1 in model_options must be a string"),
    ({"tasks": [{"name": "fashion-mnist", "data_dir": 5}]}, "'data_dir' must be the path of a folder, got 5"),
    ({"tasks": [{"name": "fashion-mnist", "data_dir": ""}]}, "'data_dir' must be the path of a folder, got ''"),
    ({"methods": [{"name": "random", "options": "dynamic"}]}, "method 'random': 'options' must be a mapping"),
    ({"methods": [{"name": "random", "options": {"dynamic": {1, 2}}}]}, "option 'dynamic' must be a string, number"),
    ({"methods": [{"name": "random", "options": {"dynamic": "no"}}]},
     "method 'random' option 'dynamic' must be true or false, got 'no'"),
    ({"methods": [{"name": "el2n", "options": {"proxy_runs": 2.5}}]},
     "method 'el2n' option 'proxy_runs' must be an integer, got 2.5"),
    ({"methods": [{"name": "el2n", "options": {"score_epochs": "1"}}]},
     "option 'score_epochs' must be an integer or null, got '1'"),
    ({"methods": [{"name": "random", "label": ["x"]}]}, "'label' must be a non-empty string, got ['x']"),
    ({"methods": [{"name": "random", "label": "full"}]}, "the label 'full' is the full-data / dense reference's"),
    ({"methods": [{"name": "magnitude", "ratios": "0.5"}]}, "'ratios' must be a non-empty list"),
])
def test_every_field_names_its_bad_value(changes, expected):
    problem = one_problem(sweep_dict(**changes))
    assert expected in problem, problem


@pytest.mark.parametrize("options, expected", [
    ({"optimizer": "adam"}, "recipe field 'optimizer' must be one of ['sgd', 'adamw'], got 'adam'"),
    ({"schedule": "linear"}, "recipe field 'schedule' must be one of ['cosine', 'step', 'constant']"),
    ({"epochs": 0}, "recipe field 'epochs' must be at least 1, got 0"),
    ({"batch_size": -8}, "recipe field 'batch_size' must be at least 1, got -8"),
    ({"lr": -0.1}, "recipe field 'lr' must be a finite number >= 0, got -0.1"),
    ({"weight_decay": 10**400}, "recipe field 'weight_decay' must be a finite number >= 0"),
    ({"milestones": [0.5, "late"]}, "recipe field 'milestones' must be a list of fractions of the run in [0, 1]"),
])
def test_recipe_values_training_would_choke_on_are_rejected(options, expected):
    problem = one_problem(sweep_dict(tasks=[{"name": "fashion-mnist", "options": options}]))
    assert expected in problem, problem


def test_top_level_that_is_not_a_mapping_is_a_sweep_error():
    with pytest.raises(SweepError, match="top level must be a mapping"):
        parse_sweep(["fashion-mnist", "random"], check_data=False)


def test_huge_values_are_shown_shortened():
    problem = one_problem(sweep_dict(budget="x" * 100_000))
    assert "budget 'xxx" in problem and len(problem) < 500
    problem = one_problem(sweep_dict(seeds=list(range(5000)) + [-1]))
    assert "seed -1" in problem and len(problem) < 500


def test_missing_required_keys():
    problems = problems_of({"name": "x"})
    for key in ("tasks", "methods", "ratios", "seeds", "profile"):
        assert any(f"missing required key {key!r}" in p for p in problems), (key, problems)


@pytest.mark.parametrize("changes, expected", [
    ({"profile": ["smoke"]}, "'profile' must be a name"),
    ({"methods": [{"name": ["random"]}]}, "method name must be a string, got ['random']"),
    ({"tasks": [{"name": {"fashion": "mnist"}}]}, "task name must be a string"),
])
def test_non_string_values_give_a_sweep_error(changes, expected):
    with pytest.raises(SweepError) as info:
        parse_sweep(sweep_dict(**changes), check_data=False)
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_entries_differing_only_by_label_are_rejected():
    with pytest.raises(SweepError) as info:
        parse_sweep(sweep_dict(methods=["random", {"name": "random", "label": "random-again"}]), check_data=False)
    assert any("['random', 'random-again'] describe the same cells" in p for p in info.value.problems)


@pytest.mark.parametrize("options, expected", [
    ({"epochs": "ten"}, "recipe field 'epochs' must be an integer, got 'ten'"),
    ({"lr": True}, "recipe field 'lr' must be a number, got True"),
    ({"train_limit": 0}, "recipe field 'train_limit' must be a positive integer or null, got 0"),
    ({"augment": "yes"}, "recipe field 'augment' must be true or false, got 'yes'"),
])
def test_badly_typed_task_option_is_rejected(options, expected):
    with pytest.raises(SweepError) as info:
        parse_sweep(sweep_dict(tasks=[{"name": "fashion-mnist", "options": options}]), check_data=False)
    assert any(expected in p for p in info.value.problems), info.value.problems


def test_task_option_of_the_right_type_is_accepted():
    sweep = parse_sweep(sweep_dict(tasks=[{"name": "fashion-mnist", "options": {"lr": 1, "milestones": [0.5]}}]),
                        check_data=False)
    assert dict(sweep.tasks[0].options) == {"lr": 1, "milestones": [0.5]}


# --- files ----------------------------------------------------------------------------------


def test_yaml_syntax_error(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\ntasks: [fashion-mnist\nmethods: [random]\n")
    with pytest.raises(SweepError) as info:
        load_sweep(path, check_data=False)
    assert len(info.value.problems) == 1
    assert "cannot parse" in info.value.problems[0]
    assert str(path) in str(info.value)


def test_yaml_syntax_error_names_the_line(tmp_path: Path):
    path = tmp_path / "broken.yaml"
    path.write_text("name: broken\nprofile: smoke\nseeds: [0\nratios: [0.5]\n")
    with pytest.raises(SweepError) as info:
        load_sweep(path, check_data=False)
    (problem,) = info.value.problems
    assert "line 4" in problem and "<unicode string>" not in problem


def test_sweep_file_that_is_not_utf8_names_the_line(tmp_path: Path):
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: x\ndescription: caf\xe9\n".encode("latin-1"))
    with pytest.raises(SweepError) as info:
        load_sweep(path, check_data=False)
    assert str(path) in str(info.value) and "line 2: not UTF-8" in info.value.problems[0]


def test_missing_sweep_file(tmp_path: Path):
    with pytest.raises(SweepError) as info:
        load_sweep(tmp_path / "nope.yaml")
    assert "does not exist" in str(info.value) and "nope.yaml" in str(info.value)


def test_top_level_must_be_a_mapping(tmp_path: Path):
    path = tmp_path / "list.yaml"
    path.write_text("- fashion-mnist\n- random\n")
    with pytest.raises(SweepError, match="mapping"):
        load_sweep(path, check_data=False)


def test_yaml_and_toml_sweeps_give_the_same_cells(tmp_path: Path, fm_dir: Path):
    yaml_path = tmp_path / "sweep.yaml"
    yaml_path.write_text(textwrap.dedent(f"""
        name: files
        profile: smoke
        seeds: [0, 1]
        ratios: [0.5, 0.9]
        tasks:
          - name: fashion-mnist
            data_dir: {fm_dir}
            options: {{epochs: 1}}
        methods:
          - random
          - name: el2n
            options: {{mode: offset, offset: 0.1}}
            ratios: [0.3]
    """))
    toml_path = tmp_path / "sweep.toml"
    toml_path.write_text(textwrap.dedent(f"""
        name = "files"
        profile = "smoke"
        seeds = [0, 1]
        ratios = [0.5, 0.9]
        methods = ["random", {{ name = "el2n", options = {{ mode = "offset", offset = 0.1 }}, ratios = [0.3] }}]

        [[tasks]]
        name = "fashion-mnist"
        data_dir = "{fm_dir}"
        options = {{ epochs = 1 }}
    """))
    from_yaml, from_toml = load_sweep(yaml_path), load_sweep(toml_path)
    assert from_toml.name == "files"
    assert [c.id for c in from_toml.cells()] == [c.id for c in from_yaml.cells()]
    assert len(from_toml.cells()) == 2 * (1 + 2 + 1)


def test_toml_syntax_error(tmp_path: Path):
    path = tmp_path / "broken.toml"
    path.write_text('name = "x\nprofile = smoke\n')
    with pytest.raises(SweepError, match="cannot parse"):
        load_sweep(path, check_data=False)


def test_sweep_name_defaults_to_the_file_stem(tmp_path: Path):
    data = sweep_dict()
    del data["name"]
    path = tmp_path / "my-sweep.yaml"
    path.write_text(json.dumps(data))  # JSON is YAML
    assert load_sweep(path, check_data=False).name == "my-sweep"


def test_cells_with_list_options_are_hashable_and_keep_their_id():
    sweep = parse_sweep(sweep_dict(tasks=[{"name": "fashion-mnist", "options": {"milestones": [0.5, 0.75]}}]),
                        check_data=False)
    cell = sweep.cells()[0]
    assert hash(cell) == hash(sweep.cells()[0])
    assert cell.content()["task_options"] == {"milestones": (0.5, 0.75)}
    canonical = json.dumps(cell.content(), sort_keys=True, separators=(",", ":"))
    assert '"task_options":{"milestones":[0.5,0.75]}' in canonical
