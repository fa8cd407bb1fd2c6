"""The method contract (issue 28), checked where the harness receives what a method returns:
indices from on_epoch_start, loss weights from on_batch_loss, masks through the Masker and
final_masks(), figures from summary(). Each bad value fails with an error naming the method,
the hook, what was expected and what came; a method's exceptions (SystemExit included) come
named too. Driven through the real trainer on the tiny in-memory task."""
from __future__ import annotations

import re

import pytest
import torch
from helpers_tiny import fit, one_cpu_thread, prunable, small_cnn, tiny_task  # noqa: F401  (fixture)

from benchmark.api.contract import (
    MethodError,
    check_final_masks,
    check_indices,
    check_mask,
    check_summary,
    third_party,
)
from benchmark.api.hooks import Hook
from benchmark.api.method import DataPruner, ModelPruner

N = 270  # the tiny task's training samples


@pytest.fixture(scope="module")
def tiny():
    task = tiny_task(epochs=1)
    return task, task.load_splits()


class Returns(DataPruner):
    """A data pruner whose on_epoch_start returns whatever it is given (a function of n)."""

    name = "test-returns"

    def __init__(self, make):
        super().__init__(0.5, 0)
        self.make = make

    def on_epoch_start(self, state):
        return self.make(state.n_train)


def fails(tiny, method, *patterns: str) -> str:
    task, splits = tiny
    with pytest.raises(MethodError) as caught:
        fit(task, [method], splits=splits)
    text = str(caught.value)
    for pattern in patterns:
        assert re.search(pattern, text), (pattern, text)
    return text


# --- indices -------------------------------------------------------------------------------------

@pytest.mark.parametrize("make, came", [
    (lambda n: torch.arange(-5, n // 2 - 5), r"5 index\(es\) outside \[0, 270\) \(smallest -5"),
    (lambda n: torch.arange(n // 2) + n // 2 + 10, r"outside \[0, 270\) .*largest 279"),
    (lambda n: torch.arange(n // 2, dtype=torch.float32), r"returned a torch.float32 tensor of shape \(135,\)"),
    (lambda n: torch.arange(n).view(2, -1), r"returned a torch.int64 tensor of shape \(2, 135\)"),
    (lambda n: list(range(n // 2)), r"returned list \[0, 1, 2"),
    (lambda n: torch.ones(n, dtype=torch.bool), r"returned a torch.bool tensor"),
], ids=["negative", "past-the-end", "float", "2-D", "list", "bool-mask"])
def test_bad_indices_fail_naming_the_method_the_hook_and_what_came(tiny, make, came):
    fails(tiny, Returns(make), r"^method 'test-returns' on_epoch_start returned", came,
          r"expected a 1-D integer torch.Tensor of distinct training-set indices in \[0, 270\)")


def test_one_index_repeated_n_over_2_times_is_refused(tiny):
    """Issue 28: it trained on one distinct sample, and counted n/2 kept."""
    fails(tiny, Returns(lambda n: torch.zeros(n // 2, dtype=torch.long)),
          r"returned 135 indices of which only 1 are distinct \(1 repeated, e.g. 0 135 times\)",
          "repeats are never allowed")


def test_three_n_indices_at_ratio_half_are_refused(tiny):
    """Issue 28: 'kept 3.000' at ratio 0.5 on the board."""
    fails(tiny, Returns(lambda n: torch.arange(n).repeat(3)), r"returned 810 indices of which only 270 are distinct")


def test_integer_indices_of_any_width_on_any_device_are_taken_as_indices(tiny):
    """uint8 would index as a mask; int32 from a device: both are converted to int64 indices."""
    task, splits = tiny
    chosen = torch.arange(0, 250, 2, dtype=torch.uint8)
    _, result = fit(task, [Returns(lambda n: chosen)], splits=splits)
    assert result.active_sizes == [125]
    assert check_indices(torch.tensor([3, 1], dtype=torch.int32), 5, Returns(None)).dtype == torch.int64


# --- loss weights ----------------------------------------------------------------------------------

class Weights(DataPruner):
    name = "test-weights"

    def __init__(self, make):
        super().__init__(0.0, 0)
        self.make = make

    def on_batch_loss(self, state, indices, logits, losses, targets, features):
        return self.make(losses)


@pytest.mark.parametrize("make, came", [
    (lambda losses: torch.ones(1), r"returned a torch.float32 tensor of shape \(1,\)"),
    (lambda losses: torch.ones(len(losses), 1), r"shape \(\d+, 1\)"),
    (lambda losses: torch.ones(len(losses), dtype=torch.long), r"returned a torch.int64 tensor"),
    (lambda losses: [1.0] * len(losses), r"returned list"),
], ids=["broadcast-scalar", "column", "integer", "list"])
def test_bad_loss_weights_fail_naming_the_method(tiny, make, came):
    fails(tiny, Weights(make), r"^method 'test-weights' on_batch_loss returned", came,
          r"expected a floating-point torch.Tensor of per-sample loss weights of shape \(\d+,\)")


# --- masks -----------------------------------------------------------------------------------------

class SetsMask(ModelPruner):
    """Installs ``make(name, weight)`` as the mask of ``name`` (the first prunable weight)."""

    name = "test-sets-mask"

    def __init__(self, make, name=None):
        super().__init__(0.5, 0)
        self.make, self.target = make, name

    def on_run_start(self, state):
        super().on_run_start(state)
        name = self.target or next(iter(self._weights))
        self.masker.set({name: self.make(self._weights.get(name, torch.empty(0)))})


@pytest.mark.parametrize("make, came", [
    (lambda w: torch.zeros(1, dtype=torch.bool), r"has shape \(1,\); expected exactly its weight's shape \(8, 1, 3, 3\)"),
    (lambda w: torch.zeros(w.shape[1:], dtype=torch.bool), r"has shape \(1, 3, 3\); expected exactly"),
    (lambda w: torch.zeros(w.shape[0], 1, 1, 1, dtype=torch.bool), r"has shape \(8, 1, 1, 1\)"),
    (lambda w: torch.zeros(5, 5, dtype=torch.bool), r"has shape \(5, 5\)"),
    (lambda w: torch.full(w.shape, 0.5), r"torch.float32 tensor with values other than 0 and 1"),
], ids=["one-entry", "row-mask", "column-mask", "incompatible", "fractional"])
def test_masks_of_the_wrong_shape_or_values_fail_naming_the_method_and_hook(tiny, make, came):
    fails(tiny, SetsMask(make), r"^method 'test-sets-mask' broke the method contract in on_run_start: "
          r"the mask of '[\w.]+'", came)


def test_a_mask_for_an_unknown_weight_name_fails(tiny):
    fails(tiny, SetsMask(lambda w: torch.zeros(3, dtype=torch.bool), name="no.such.weight"),
          r"on_run_start: a mask for 'no.such.weight', which is not a prunable weight; expected one of \[")


def test_a_zero_one_float_mask_is_taken_as_boolean():
    weights = {"w": torch.nn.Parameter(torch.ones(2, 2))}
    mask = check_mask("w", torch.tensor([[1.0, 0.0], [0.0, 1.0]]), weights)
    assert mask.dtype == torch.bool and mask.tolist() == [[True, False], [False, True]]


def test_final_masks_must_be_the_models_own():
    model = small_cnn()
    weights = prunable(model)
    name = next(iter(weights))
    honest = {name: torch.ones_like(weights[name], dtype=torch.bool)}
    assert check_final_masks(honest, weights, Returns(None))[name].all()
    lie = {name: torch.zeros_like(weights[name], dtype=torch.bool)}  # says all removed; the weight is dense
    with pytest.raises(MethodError, match=rf"final_masks\(\): the mask of '{name}' removes 72 entr\(ies\) the "
                                          "trained weight still holds as non-zero"):
        check_final_masks(lie, weights, Returns(None))
    with pytest.raises(MethodError, match=r"final_masks\(\): the mask of .* has shape \(1,\)"):
        check_final_masks({name: torch.ones(1, dtype=torch.bool)}, weights, Returns(None))


# --- summary() -------------------------------------------------------------------------------------

def test_summary_figures_go_to_their_own_namespace_and_cannot_replace_a_measured_one():
    method = Returns(None)
    measured = {"test_accuracy": 0.61, "realised_sparsity": 0.5}
    assert check_summary({"score_upkeep_seconds": 2.0, "realised_sparsity": 0.5}, method, measured) == {
        "method.score_upkeep_seconds": 2.0}  # an agreeing claim about a measured figure is dropped
    with pytest.raises(MethodError, match=r"^method 'test-returns' summary\(\) returned 'test_accuracy' = 1.0, "
                                          r"but the harness measured 0.61"):
        check_summary({"test_accuracy": 1.0}, method, measured)
    with pytest.raises(MethodError, match=r"summary\(\) returned 'x': str high; expected a real number"):
        check_summary({"x": "high"}, method, measured)
    with pytest.raises(MethodError, match=r"summary\(\) returned list"):
        check_summary([1.0], method, measured)


# --- a method's own exceptions -------------------------------------------------------------------

class ExitsInHook(DataPruner):
    name = "test-exits"

    def on_epoch_end(self, state, metrics):
        raise SystemExit(3)


def test_system_exit_in_a_hook_is_the_methods_error(tiny):
    text = fails(tiny, ExitsInHook(0.0, 0), r"^method 'test-exits' raised in on_epoch_end: SystemExit: 3$")
    assert text


def test_a_harness_hooks_errors_pass_unchanged():
    """Only a method's faults are wrapped: a harness hook's (a store fault) keeps its type."""

    class Logger(Hook):
        def on_epoch_end(self, state, metrics):
            raise KeyError("store")

    with pytest.raises(KeyError):
        third_party(Logger(), "on_epoch_end", Logger().on_epoch_end, None, {})
    with pytest.raises(KeyboardInterrupt):  # Ctrl-C from a method still stops the sweep
        third_party(Returns(None), "on_epoch_start", lambda: (_ for _ in ()).throw(KeyboardInterrupt()))


# --- costs and sparsity come from the harness ----------------------------------------------------

def test_scoring_charged_below_what_went_through_the_context_is_raised_to_it(tiny):
    """A method that trains a proxy and scores through the context but charges nothing is
    charged what the harness counted: one epoch on 270 samples, one forward pass over them."""
    from benchmark.training.context import RunContext

    task, splits = tiny
    context = RunContext(task=task, splits=splits, device=torch.device("cpu"), seed=0, cache_dir=None)
    model, passes = context.train_proxy(seed=1, epochs=1)
    context.predict(model)
    context.charge(0.0, 0, cached=False)  # the method's claim: free
    context.floor_to_measured()
    assert (passes, context.scoring_sample_passes, context.scoring_forward_passes) == (N, N, N)
    assert context.scoring_seconds == context.measured_seconds > 0
    context.charge(5.0, 10 * N, cached=False)  # charging more (work of its own) stands
    context.floor_to_measured()
    assert context.scoring_sample_passes == 11 * N


def test_realised_sparsity_is_measured_from_the_trained_weights(tiny):
    from benchmark.sweeps.execute import measured_sparsity

    task, _ = tiny
    model = small_cnn()
    weights = prunable(model)
    with torch.no_grad():
        for w in weights.values():
            w.view(-1)[::4] = 0.0  # every fourth entry (none was zero before)
    total = sum(w.numel() for w in weights.values())
    zeros = sum(len(range(0, w.numel(), 4)) for w in weights.values())
    figures = measured_sparsity(model, task)
    assert figures == {"realised_sparsity": zeros / total, "prunable_params": float(total),
                       "prunable_params_remaining": float(total - zeros), "empty_matrices": 0.0}
    name, last = list(weights.items())[-1]
    with torch.no_grad():
        last.zero_()  # one matrix emptied: counted, whatever its size
    assert measured_sparsity(model, task)["empty_matrices"] == 1.0
