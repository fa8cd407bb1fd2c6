"""SEVEN on a tiny BERT fine-tuned through the real text task: its importance against an
independent re-computation of the formula, the cubic keep schedule at every step, the
exact target at the window's end, and pruned weights staying zero under AdamW."""
from __future__ import annotations

import pytest
import torch

from benchmark.api.hooks import Hook
from benchmark.api.masks import count_removed
from methods.model.seven import Seven, keep_fraction, window_steps
from helpers_text import tiny_rt_task
from helpers_tiny import fit, one_cpu_thread  # noqa: F401  (autouse fixture)

EPOCHS, BATCH = 2, 8


@pytest.fixture(scope="module")
def text_task(tmp_path_factory):
    return tiny_rt_task(tmp_path_factory.mktemp("seven"), EPOCHS, BATCH)


class BeforeSeven(Hook):
    """Placed before SEVEN in the hook list: sees each step's weights, gradients and masks
    exactly as SEVEN's update will."""

    def __init__(self, method: Seven):
        self.method = method
        self.steps: list[dict] = []

    def on_step_end(self, state):
        weights = self.method._weights
        masks = {n: m.clone() for n, m in self.method.masker.masks.items()}
        self.steps.append({"step": state.step,
                           "w": {n: w.detach().double().clone() for n, w in weights.items()},
                           "g": {n: w.grad.detach().double().clone() for n, w in weights.items()},
                           "mask": masks})


class AfterSeven(Hook):
    """Placed after SEVEN: the kept count and the zero count of the weights after each step."""

    def __init__(self, method: Seven):
        self.method = method
        self.kept: dict[int, int] = {}
        self.pruned_nonzero: dict[int, int] = {}

    def on_step_end(self, state):
        masks = self.method.masker.masks
        if masks:
            self.kept[state.step] = self.method.masker.kept()
            self.pruned_nonzero[state.step] = sum(int((w[~masks[n]] != 0).sum())
                                                  for n, w in self.method._weights.items())


def run_seven(text_task, ratio=0.5, **options):
    task, splits = text_task
    method = Seven(ratio, seed=0, start=0.1, length=0.5, **options)
    before, after = BeforeSeven(method), AfterSeven(method)
    model, result = fit(task, hooks=[before, method, after], seed=0, splits=splits)
    return method, before, after, model, result


def test_window_is_a_fraction_of_the_run(text_task):
    method, before, after, model, result = run_seven(text_task)
    total = result.state.total_steps
    assert total == EPOCHS * 12  # 96 training snippets in batches of 8
    first, count = window_steps(total, 0.1, 0.5)
    assert (first, count) == (2, 12)
    assert [step for step, _ in method.keep_history] == list(range(first + 1, first + count + 1))


def test_importance_matches_an_independent_computation(text_task):
    method, before, after, model, result = run_seven(text_task)
    a1, a2, eps = 0.8, 0.9, 1e-9
    first, count = window_steps(result.state.total_steps, 0.1, 0.5)
    names = list(method._weights)
    m = {n: 0.0 for n in names}
    v = {n: 0.0 for n in names}
    importance = {n: torch.zeros_like(before.steps[0]["w"][n]) for n in names}
    for record in before.steps:
        t = record["step"] - 1 - first
        if not 0 <= t < count:
            continue
        for n in names:
            g, w = record["g"][n], record["w"][n]
            m[n] = a1 * m[n] + (1 - a1) * g.abs()
            v[n] = a2 * v[n] + (1 - a2) * g * g
            m_hat = m[n] / (1 - a1 ** (t + 1))
            v_hat = torch.sqrt(v[n] / (1 - a2 ** (t + 1))) + eps
            importance[n] = importance[n] + (w * g.abs() * m_hat / v_hat).abs()
            if n in record["mask"]:
                importance[n] = importance[n] * record["mask"][n]
    for n in names:
        assert torch.allclose(method.score.importance[n].double(), importance[n], rtol=1e-4, atol=1e-12), n
    assert sum(float(i.sum()) for i in importance.values()) > 0


def test_keep_fraction_is_exact_at_every_step_and_the_target_at_the_window_end(text_task):
    ratio = 0.7
    method, before, after, model, result = run_seven(text_task, ratio=ratio)
    total = sum(w.numel() for w in method._weights.values())
    first, count = window_steps(result.state.total_steps, 0.1, 0.5)
    for step, keep in method.keep_history:
        t = step - 1 - first
        assert keep == pytest.approx((1 - ratio) + ratio * (1 - (t + 1) / count) ** 3, abs=1e-15)
        assert after.kept[step] == total - count_removed(1 - keep, total)
    last = first + count
    assert method.keep_history[-1] == (last, pytest.approx(1 - ratio, abs=1e-15))
    assert after.kept[last] == total - count_removed(ratio, total)
    # the mask does not change after the window
    assert all(after.kept[s] == after.kept[last] for s in after.kept if s >= last)
    # realised sparsity, measured from the weights at the end of the run
    assert method.summary()["realised_sparsity"] == count_removed(ratio, total) / total


def test_pruned_weights_stay_exactly_zero_under_adamw(text_task):
    method, before, after, model, result = run_seven(text_task, ratio=0.5)
    assert isinstance(result.state.optimizer, torch.optim.AdamW)
    assert result.state.optimizer.param_groups[0]["weight_decay"] == 0.1
    assert after.pruned_nonzero and all(n == 0 for n in after.pruned_nonzero.values())
    # a weight once removed never returns: masks only shrink from step to step
    masks_seen = [r["mask"] for r in before.steps if r["mask"]]
    for older, newer in zip(masks_seen, masks_seen[1:]):
        assert all(not bool((newer[n] & ~older[n]).any()) for n in older)


def test_prunable_set_excludes_embeddings_norms_biases_and_the_classifier(text_task):
    method, *_ = run_seven(text_task)
    names = list(method._weights)
    assert "encoder.bert.pooler.dense.weight" in names
    assert "encoder.bert.encoder.layer.0.attention.self.query.weight" in names
    assert not any("embeddings" in n or "LayerNorm" in n or "classifier" in n or n.endswith("bias")
                   for n in names)
    assert len(names) == 2 * 6 + 1  # per layer: q, k, v, attention output, intermediate, output; + pooler


def test_seven_pre_prunes_before_fine_tuning_and_charges_its_passes(text_task):
    task, splits = text_task

    class Charged:
        def __init__(self):
            self.charges = []

        def charge(self, seconds, passes, cached):
            self.charges.append(passes)

    method = Seven(0.6, seed=0, variant="pre", pre_batches=5)
    ledger = Charged()
    method.prepare(ledger)
    after = AfterSeven(method)
    fit(task, hooks=[method, after], seed=0, splits=splits)
    total = sum(w.numel() for w in method._weights.values())
    assert ledger.charges == [5 * BATCH]
    assert [keep for _, keep in method.keep_history] == [pytest.approx(keep_fraction(t, 5, 0.6)) for t in range(5)]
    # fixed from the first fine-tuning step on, at the target
    assert set(after.kept.values()) == {total - count_removed(0.6, total)}


def test_keep_schedule_and_options():
    assert keep_fraction(0, 4, 0.8) == pytest.approx(0.2 + 0.8 * 0.75 ** 3)
    assert keep_fraction(3, 4, 0.8) == pytest.approx(0.2)
    with pytest.raises(ValueError, match="start \\+ length"):
        Seven(0.5, start=0.9, length=0.2)
    with pytest.raises(ValueError, match="variant 'post'"):
        Seven(0.5, variant="post")
    with pytest.raises(ValueError, match="alpha1"):
        Seven(0.5, alpha1=1.0)


def test_window_defaults_to_the_tasks_prune_window(text_task):
    from benchmark.api.registry import get_task
    from tasks.text.task import seven_window

    task, splits = text_task
    method = Seven(0.5, seed=0)
    fit(task, hooks=[method], seed=0, splits=splits)
    assert (method.start, method.length) == task.prune_window == (0.05, 0.2)
    assert method.summary()["seven_window_first_step"] == round(0.05 * 24) + 1
    assert method.summary()["seven_updates"] == round(0.2 * 24)
    # the GLUE tasks carry the reference's windows: SST-2 starts at step 1000 of 10 x 2105, ramps over 4000
    assert get_task("sst2").prune_window == pytest.approx((1000 / 21050, 4000 / 21050))
    start, length = seven_window("rte")  # ramps past the end in the reference: cut to end with the run
    assert start + length == pytest.approx(1.0)
