"""Zero-shot accuracy through lm-evaluation-harness (the ``prunebench[lm-eval]`` extra) on a
cell's pruned causal LM, in memory: a local multiple-choice task (YAML + JSONL written here)
on the tiny random Llama; the logged ``acc`` / ``acc_norm`` against the argmax of summed
continuation log-likelihoods computed here from the final model. Skipped where lm_eval is not
installed, unless ``PRUNEBENCH_REQUIRE_LM_EVAL=1`` (CI), where a skip would hide a break."""
from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest
import torch

from benchmark.api.registry import get_task
from helpers_tiny import one_cpu_thread  # noqa: F401
from test_perplexity import write_speeches

ITEMS = [
    {"question": "The sky on a clear day is", "choices": ["blue", "green", "a piano"], "label": 0},
    {"question": "Two plus two is", "choices": ["four", "seven"], "label": 0},
    {"question": "A cat says", "choices": ["woof", "meow", "moo", "quack"], "label": 1},
    {"question": "Water is", "choices": ["dry", "wet"], "label": 1},
    {"question": "Fire is", "choices": ["hot", "cold", "made of ice cream"], "label": 0},
    {"question": "The opposite of up is", "choices": ["left", "sideways", "down"], "label": 2},
]


def require_lm_eval() -> None:
    if importlib.util.find_spec("lm_eval") is None:
        message = "lm_eval is not installed: pip install 'prunebench[lm-eval]'"
        if os.environ.get("PRUNEBENCH_REQUIRE_LM_EVAL") == "1":
            pytest.fail(f"PRUNEBENCH_REQUIRE_LM_EVAL=1 but {message}")
        pytest.skip(message)


def write_local_task(folder: Path) -> Path:
    """A multiple-choice lm-eval task over a JSONL file, as lm-eval's own YAML tasks are written."""
    folder.mkdir(parents=True, exist_ok=True)
    data = folder / "items.jsonl"
    data.write_text("".join(json.dumps(item) + "\n" for item in ITEMS))
    (folder / "tiny_mc.yaml").write_text(
        "task: tiny_mc\n"
        "dataset_path: json\n"
        f"dataset_kwargs:\n  data_files:\n    test: {data}\n"
        "test_split: test\n"
        "output_type: multiple_choice\n"
        'doc_to_text: "Question: {{question}}\\nAnswer:"\n'
        "doc_to_target: label\n"
        'doc_to_choice: "{{choices}}"\n'
        "metric_list:\n  - metric: acc\n  - metric: acc_norm\n"
        "metadata:\n  version: 2.0\n")
    return folder


def expected_accuracy(lm, tokenizer) -> tuple[float, float]:
    """acc: argmax over choices of the summed log-probability of ``" " + choice`` after the
    prompt; acc_norm: the same divided by the choice's length in characters."""
    right = right_norm = 0
    with torch.no_grad():
        for item in ITEMS:
            prompt = tokenizer(f"Question: {item['question']}\nAnswer:")["input_ids"]
            scores = []
            for choice in item["choices"]:
                ids = tokenizer(f"Question: {item['question']}\nAnswer: {choice}")["input_ids"]
                assert ids[: len(prompt)] == prompt
                logits = lm(input_ids=torch.tensor([ids])).logits[0].double()
                log_probs = torch.log_softmax(logits, dim=-1)
                scores.append(sum(float(log_probs[t - 1, ids[t]]) for t in range(len(prompt), len(ids))))
            best = max(range(len(scores)), key=scores.__getitem__)
            best_norm = max(range(len(scores)), key=lambda c: scores[c] / len(item["choices"][c]))
            right += best == item["label"]
            right_norm += best_norm == item["label"]
    return right / len(ITEMS), right_norm / len(ITEMS)


@pytest.mark.slow  # importing lm_eval and its datasets pipeline: about half a minute here
def test_a_pruned_cell_logs_lm_eval_accuracy_equal_to_an_independent_computation(tmp_path, monkeypatch):
    require_lm_eval()
    import lm_eval

    from benchmark.sweeps.cells import Cell
    from benchmark.sweeps.execute import plan_cell, run_cell
    from tasks.sft.models import byte_tokenizer

    monkeypatch.setenv("PRUNEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf"))
    include = write_local_task(tmp_path / "lm-eval-tasks")
    cell = Cell(task="ppl-speeches", method="magnitude", ratio=0.5, seed=1, profile="smoke",
                task_options=(("lm_eval_include", str(include)), ("lm_eval_tasks", ("tiny_mc",))))
    plan = plan_cell(cell, data_dir=str(write_speeches(tmp_path / "speeches")))
    plan.task.check_data()
    result = run_cell(plan, torch.device("cpu"), tmp_path / "scores")
    metrics, tags = result.metrics, result.tags

    assert metrics["realised_sparsity"] == 0.5  # the model lm-eval saw is the pruned one
    acc, acc_norm = expected_accuracy(result.evidence.model.lm, byte_tokenizer())
    assert metrics["lm_eval.tiny_mc.acc"] == pytest.approx(acc, abs=1e-12)
    assert metrics["lm_eval.tiny_mc.acc_norm"] == pytest.approx(acc_norm, abs=1e-12)
    n = len(ITEMS)  # lm-eval's closed-form standard error of a mean of 0/1 scores
    assert metrics["lm_eval.tiny_mc.acc_stderr"] == pytest.approx((acc * (1 - acc) / (n - 1)) ** 0.5, abs=1e-12)
    assert metrics["lm_eval.tiny_mc.samples"] == len(ITEMS) and metrics["post_eval_seconds"] > 0
    assert tags["lm_eval.version"] == lm_eval.__version__ == "0.4.13"
    assert tags["lm_eval.task_version.tiny_mc"] == "2.0" and tags["lm_eval.tasks"] == "tiny_mc"
    assert len(tags["lm_eval.config_hash.tiny_mc"]) == 16 and len(tags["lm_eval.task_hash.tiny_mc"]) == 64


def test_options_are_checked_before_any_compute(tmp_path, monkeypatch):
    speeches = str(write_speeches(tmp_path / "speeches"))
    task_cls = get_task("ppl-speeches")
    for bad, message in (("boolq", r"option lm_eval_tasks must be a non-empty list of lm-eval task names, or true "
                                   r"for the Wanda repository's \['boolq', 'rte', 'hellaswag', 'winogrande', "
                                   r"'arc_easy', 'arc_challenge', 'openbookqa'\]; got 'boolq'"),
                         ([], r"option lm_eval_tasks must be .*; got \[\]")):
        with pytest.raises(ValueError, match=rf"task 'ppl-speeches': {message}"):
            task_cls("smoke", data_dir=speeches, lm_eval_tasks=bad)
    with pytest.raises(ValueError, match=r"option lm_eval_limit must be a positive integer, got 0"):
        task_cls("smoke", data_dir=speeches, lm_eval_tasks=True, lm_eval_limit=0)
    assert task_cls("smoke", data_dir=speeches).zero_shot is None  # off by default

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "lm_eval" else
                        real_find_spec(name, *a))
    with pytest.raises(ValueError, match=r"task 'alpaca': option lm_eval_tasks needs lm-evaluation-harness, and "
                                         r"\['lm_eval'\] is not installed: pip install 'prunebench\[lm-eval\]' "
                                         r"\(lm_eval==0.4.13 and accelerate\)"):
        get_task("alpaca")("smoke", lm_eval_tasks=True)


def test_the_wanda_tasks_by_default_and_a_missing_include_folder(tmp_path):
    require_lm_eval()
    from benchmark.api.task import DataNotFoundError

    speeches = str(write_speeches(tmp_path / "speeches"))
    task = get_task("ppl-speeches")("smoke", data_dir=speeches, lm_eval_tasks=True)
    assert task.zero_shot.tasks == ["boolq", "rte", "hellaswag", "winogrande", "arc_easy", "arc_challenge",
                                    "openbookqa"]
    task.check_data()  # the Wanda repository's names need no index of lm-eval's tasks
    task = get_task("ppl-speeches")("smoke", data_dir=speeches, lm_eval_tasks=["tiny_mc"],
                                    lm_eval_include=str(tmp_path / "nowhere"))
    with pytest.raises(DataNotFoundError, match=r"lm_eval_include '.*nowhere' is not a folder of lm-eval task YAML"):
        task.check_data()
    get_task("ppl-speeches")("smoke", data_dir=speeches, lm_eval_tasks=["tiny_mc"],
                             lm_eval_include=str(write_local_task(tmp_path / "tasks"))).check_data()


def test_a_post_evaluation_adds_figures_and_never_replaces_a_measured_one(tmp_path, monkeypatch):
    from benchmark.sweeps.cells import Cell
    from benchmark.sweeps.execute import plan_cell, run_cell
    from tasks.lm.perplexity import PplSpeeches

    monkeypatch.setenv("PRUNEBENCH_CACHE", str(tmp_path / "cache"))
    speeches = str(write_speeches(tmp_path / "speeches"))
    cell = Cell(task="ppl-speeches", method="none", ratio=0.0, seed=0, profile="smoke")
    seen = []

    def extra(task, model, device):
        seen.append(float(model.head.weight.abs().sum()))  # the final model itself
        return {"extra.figure": 2.5}, {"extra.tag": "on record"}

    monkeypatch.setattr(PplSpeeches, "post_evaluation", extra)
    result = run_cell(plan_cell(cell, data_dir=speeches), torch.device("cpu"), tmp_path / "scores")
    assert result.metrics["extra.figure"] == 2.5 and result.tags["extra.tag"] == "on record"
    assert result.metrics["post_eval_seconds"] >= 0
    assert seen == [float(result.evidence.model.head.weight.abs().sum())]

    monkeypatch.setattr(PplSpeeches, "post_evaluation", lambda task, model, device: ({"test_perplexity": 1.0}, {}))
    with pytest.raises(ValueError, match=r"task 'ppl-speeches': post_evaluation\(\) returned \['test_perplexity'\], "
                                         r"figures the harness measures itself"):
        run_cell(plan_cell(cell, data_dir=speeches), torch.device("cpu"), tmp_path / "scores")
