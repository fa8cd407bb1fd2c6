"""N:M patterns, the one-shot post-training protocol (calibration drawn from the training
split, no training, cost charged) and its bad-input errors, and wanda / sparsegpt / magnitude
post-training cells on tiny real tasks (the tiny Llama of the SFT smoke profile, a tiny BERT)."""
from __future__ import annotations

import itertools

import pytest
import torch
from torch import nn

from benchmark.training.calibration import CalibrationBatch, prune_sequentially
from benchmark.sweeps.cells import Cell, parse_sweep, SweepError
from benchmark.sweeps.execute import plan_cell, run_cell
from benchmark.api.sparsity_patterns import Pattern, nm_keep_mask, parse_pattern, row_keep_mask
from helpers_text import write_rt_corpus, write_tiny_bert
from helpers_tiny import make_state, one_cpu_thread, tiny_task  # noqa: F401
from methods.model.magnitude import Magnitude
from methods.model.sparsegpt import SparseGPT
from methods.model.wanda import InputNorms, Wanda


# --- N:M selection ----------------------------------------------------------------------------


def groups_of(keep: torch.Tensor, m: int) -> torch.Tensor:
    return keep.reshape(keep.shape[0], -1).reshape(keep.shape[0], -1, m)


@pytest.mark.parametrize("pattern,shape", list(itertools.product(["2:4", "4:8", "1:4", "3:8"],
                                                             [(6, 16), (5, 8, 2, 2), (3, 64)])))
def test_every_nm_mask_keeps_exactly_n_in_every_group_of_m_the_n_largest(pattern, shape):
    p = parse_pattern("magnitude", pattern)
    scores = torch.randn(shape, generator=torch.Generator().manual_seed(7)).abs()
    keep = nm_keep_mask(scores, p)
    assert keep.shape == scores.shape and keep.dtype == torch.bool
    kept = groups_of(keep, p.m).sum(dim=-1)
    assert torch.equal(kept, torch.full_like(kept, p.n))
    # independently, group by group: the kept ones are the n largest
    flat_scores, flat_keep = scores.reshape(shape[0], -1), keep.reshape(shape[0], -1)
    for row in range(shape[0]):
        for start in range(0, flat_scores.shape[1], p.m):
            values = flat_scores[row, start : start + p.m].tolist()
            largest = sorted(range(p.m), key=lambda i: values[i], reverse=True)[: p.n]
            assert sorted(largest) == flat_keep[row, start : start + p.m].nonzero().flatten().tolist()


def test_nm_ties_remove_the_lower_index_first():
    keep = nm_keep_mask(torch.ones(2, 8), Pattern(2, 4))
    assert keep.tolist() == [[False, False, True, True] * 2] * 2


def test_row_mask_removes_round_ratio_in_per_row():
    scores = torch.randn(7, 10, generator=torch.Generator().manual_seed(1))
    keep = row_keep_mask(scores, 0.35)  # round(3.5) = 4 per row
    assert keep.sum(dim=1).tolist() == [6] * 7
    for row in range(7):
        lowest = set(scores[row].argsort()[:4].tolist())
        assert lowest == set((~keep[row]).nonzero().flatten().tolist())


# --- bad input, before any compute -------------------------------------------------------------


def test_a_pattern_the_layers_cannot_hold_is_refused_naming_method_task_and_width():
    task = tiny_task()
    state = make_state(task)
    before = {k: v.clone() for k, v in state.model.state_dict().items()}
    method = Magnitude(0.5, schedule="posttrain", pattern="2:4")
    with pytest.raises(ValueError, match=r"method 'magnitude' on task 'test-tiny-fashion': pattern 2:4 needs every "
                                         r"prunable layer's input width to be a multiple of 4, but body.0.0.weight "
                                         r"\(input width 9\)"):
        method.on_run_start(state)
    assert all(torch.equal(before[k], v) for k, v in state.model.state_dict().items())


def test_pattern_and_ratio_must_agree_and_options_are_checked():
    with pytest.raises(ValueError, match=r"pattern 2:4 removes 0.5 of the weights, but the cell's ratio is 0.7; "
                                         r"give this method ratios: \[0.5\]"):
        Wanda(0.7, pattern="2:4")
    Wanda(0.75, pattern="1:4")
    with pytest.raises(ValueError, match="calibration_samples must be an integer >= 1, got 0"):
        SparseGPT(0.5, calibration_samples=0)
    with pytest.raises(ValueError, match="blocksize 6 must be a multiple of M = 4"):
        SparseGPT(0.5, pattern="2:4", blocksize=6)
    with pytest.raises(ValueError, match="count_rule 'approx' is unknown"):
        SparseGPT(0.5, count_rule="approx")
    with pytest.raises(ValueError, match="finetune_epochs 2 applies to schedule 'posttrain' only"):
        Magnitude(0.5, finetune_epochs=2)
    with pytest.raises(ValueError, match="pattern '2:4' is one-shot"):
        Magnitude(0.5, schedule="gradual", pattern="2:4")


def test_the_sweep_checks_patterns_against_each_ratio_and_needs_a_pretrained_task():
    base = {"name": "s", "profile": "smoke", "seeds": [0], "tasks": ["fashion-mnist"]}
    with pytest.raises(SweepError) as error:
        parse_sweep({**base, "ratios": [0.5, 0.7],
                     "methods": [{"name": "magnitude", "options": {"pattern": "2:4", "schedule": "oneshot"}},
                                 "wanda"]}, check_data=False)
    text = str(error.value)
    assert "pattern 2:4 removes 0.5 of the weights, but the cell's ratio is 0.7" in text
    assert ("method 'wanda' prunes a pre-trained model from calibration data, but task 'fashion-mnist' trains "
            "its model from scratch") in text
    parse_sweep({**base, "tasks": ["rt-polarity"], "ratios": [0.5, 0.7],
                 "methods": [{"name": "wanda", "options": {"pattern": "2:4"}, "ratios": [0.5]}, "sparsegpt"]},
                check_data=False)


def test_more_calibration_samples_than_the_split_is_refused_before_compute(tmp_path):
    from benchmark.training.context import RunContext

    task = tiny_task()
    splits = task.load_splits()
    context = RunContext(task=task, splits=splits, device=torch.device("cpu"), seed=0, cache_dir=tmp_path)
    with pytest.raises(ValueError, match=rf"method 'wanda' on task 'test-tiny-fashion': calibration_samples 5000 is "
                                         rf"larger than the training split \({len(splits.train)} samples\)"):
        Wanda(0.5, calibration_samples=5000).prepare(context)


# --- the calibration driver ----------------------------------------------------------------------


def test_padding_tokens_are_left_out_of_the_statistics():
    layer = nn.Linear(6, 4)
    x = torch.randn(3, 5, 6, generator=torch.Generator().manual_seed(0))
    tokens = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 0, 0, 0, 0]], dtype=torch.bool)
    seen = {}

    def prune(name, module, observer):
        seen[name] = observer
        return torch.ones_like(module.weight, dtype=torch.bool)

    _, passes = prune_sequentially(layer, [CalibrationBatch(x, tokens)], {"weight": layer},
                                   lambda n, m: InputNorms(6, "cpu"), prune)
    real = x[tokens]
    assert seen["weight"].tokens == 9 and passes == 1  # no blocks: one pass of the whole model
    torch.testing.assert_close(seen["weight"].norms(), real.pow(2).mean(dim=0).sqrt())


# --- cells on tiny real tasks ---------------------------------------------------------------------


@pytest.fixture
def corpus(tmp_path, monkeypatch):
    monkeypatch.setenv("PRUNEBENCH_CACHE", str(tmp_path / "cache"))
    return write_rt_corpus(tmp_path / "rt", n_fresh=40, n_rotten=40)


def cell(task, method, options, task_options, ratio=0.5):
    return Cell(task=task, method=method, ratio=ratio, seed=0, profile="smoke",
                method_options=tuple(sorted(options.items())), task_options=tuple(sorted(task_options.items())))


def run(c, data_dir, tmp_path):
    plan = plan_cell(c, data_dir=str(data_dir))
    result = run_cell(plan, torch.device("cpu"), tmp_path / "scores")
    return plan, result.metrics


LLAMA = {"train_limit": 32, "test_limit": 8}


@pytest.mark.parametrize("method,options", [
    ("wanda", {"calibration_samples": 16}), ("wanda", {"calibration_samples": 16, "pattern": "2:4"}),
    ("sparsegpt", {"calibration_samples": 16}), ("sparsegpt", {"calibration_samples": 16, "pattern": "4:8"}),
    ("magnitude", {"schedule": "posttrain", "pattern": "2:4"}),
])
def test_post_training_cells_on_the_tiny_llama_prune_once_and_do_not_train(method, options, corpus, tmp_path):
    plan, metrics = run(cell("rt-instruct", method, options, LLAMA), corpus.parent, tmp_path)
    assert metrics["epochs_run"] == 0 and metrics["optimizer_steps"] == 0 and metrics["sample_passes"] == 0
    assert metrics["realised_sparsity"] == 0.5 and metrics["kept_fraction"] == 1.0
    calibration = 0 if method == "magnitude" else 2 * 16  # each block runs twice over 16 samples
    assert metrics["scoring_forward_passes"] == calibration
    assert metrics["cost_passes"] == pytest.approx(calibration / 3)
    pattern = plan.method.pattern
    for name, keep in plan.method.final_masks().items():
        if pattern.structured:
            kept = groups_of(keep, pattern.m).sum(dim=-1)
            assert torch.equal(kept, torch.full_like(kept, pattern.n)), name
        else:  # wanda and sparsegpt (harness count): exactly half of every matrix
            assert int((~keep).sum()) == keep.numel() // 2, name


def test_finetune_epochs_train_with_the_mask_fixed(corpus, tmp_path):
    plan, metrics = run(cell("rt-instruct", "sparsegpt", {"calibration_samples": 8, "finetune_epochs": 1,
                                                           "pattern": "2:4"}, LLAMA), corpus.parent, tmp_path)
    assert metrics["epochs_run"] == 1 and metrics["optimizer_steps"] == 2  # 32 samples, batch 16
    assert metrics["realised_sparsity"] == 0.5 and metrics["sample_passes"] == 32


def test_post_training_cells_on_a_tiny_bert_prune_the_pooler_after_the_blocks(corpus, tmp_path):
    model = write_tiny_bert(tmp_path / "tiny-bert")
    options = {"model": str(model), "train_limit": 32, "test_limit": 8}
    plan, metrics = run(cell("rt-polarity", "wanda", {"calibration_samples": 8}, options), corpus.parent, tmp_path)
    assert metrics["epochs_run"] == 0 and metrics["realised_sparsity"] == 0.5
    assert metrics["scoring_forward_passes"] == 3 * 8  # blocks twice, then the whole model for the pooler
    assert "encoder.bert.pooler.dense.weight" in plan.method.final_masks()


def test_calibration_methods_refuse_non_linear_layers_before_compute():
    task = tiny_task()
    state = make_state(task)
    with pytest.raises(ValueError, match=r"method 'wanda' on task 'test-tiny-fashion' prunes Linear layers only; "
                                         r"the model's body.0.0.weight \(Conv2d\), body.2.0.weight \(Conv2d\)"):
        Wanda(0.5, calibration_samples=4).on_run_start(state)
