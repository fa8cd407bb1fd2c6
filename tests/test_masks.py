"""Weight masks: agreement with torch.nn.utils.prune, exact counts, enforcement through
optimizer steps, and the magnitude / random-weights methods driven through their hooks."""
from __future__ import annotations

import copy

import pytest
import torch
from torch.nn.utils import prune

from benchmark.api.hooks import Hook
from benchmark.api.masks import (
    Masker,
    count_removed,
    global_masks,
    layerwise_masks,
    lowest_k_mask,
    prunable_weights,
    select_masks,
    sparsity,
)
from helpers_tiny import fit, make_state, one_cpu_thread, prunable, small_cnn, tiny_task  # noqa: F401
from methods.model.magnitude import Magnitude, cubic_sparsity
from methods.model.random_weights import RandomWeights

RATIOS = (0.1, 0.5, 0.9, 0.37)


def torch_global_masks(model, ratio: float) -> dict[str, torch.Tensor]:
    """Masks torch.nn.utils.prune computes on a deep copy of ``model``."""
    clone = copy.deepcopy(model)
    weights = prunable(clone)
    modules = dict(clone.named_modules())
    pairs = [(modules[name.rsplit(".", 1)[0]], "weight") for name in weights]
    prune.global_unstructured(pairs, pruning_method=prune.L1Unstructured, amount=ratio)
    return {name: module.weight_mask.bool() for name, (module, _) in zip(weights, pairs)}


def torch_layer_masks(model, ratio: float) -> dict[str, torch.Tensor]:
    clone = copy.deepcopy(model)
    modules = dict(clone.named_modules())
    out = {}
    for name in prunable(clone):
        module = modules[name.rsplit(".", 1)[0]]
        prune.l1_unstructured(module, "weight", amount=ratio)
        out[name] = module.weight_mask.bool()
    return out


def n_prunable(model) -> int:
    return sum(w.numel() for w in prunable(model).values())


# --- prunable set ---------------------------------------------------------------------


def test_prunable_weights_are_conv_and_linear_weights_outside_the_head():
    model = small_cnn()
    names = list(prunable(model))
    assert names == ["body.0.0.weight", "body.2.0.weight", "body.5.weight"]
    assert all(not n.startswith("head") for n in names)
    assert "head.weight" in prunable_weights(model)  # without exclusion the head is a Linear like any other


# --- one-shot masks against torch.nn.utils.prune --------------------------------------


@pytest.mark.parametrize("ratio", RATIOS)
def test_global_magnitude_masks_equal_torch_global_unstructured(ratio):
    model = small_cnn(seed=3)
    weights = prunable(model)
    expected = torch_global_masks(model, ratio)
    masks = select_masks({n: w.detach().abs() for n, w in weights.items()}, ratio, "global")
    assert list(masks) == list(expected)
    for name in masks:
        assert masks[name].dtype == torch.bool and masks[name].shape == weights[name].shape
        assert torch.equal(masks[name], expected[name]), name
    n = n_prunable(model)
    assert sum(int((~m).sum()) for m in masks.values()) == round(ratio * n)


@pytest.mark.parametrize("ratio", RATIOS)
def test_layerwise_magnitude_masks_equal_torch_l1_unstructured_per_tensor(ratio):
    model = small_cnn(seed=4)
    weights = prunable(model)
    expected = torch_layer_masks(model, ratio)
    masks = select_masks({n: w.detach().abs() for n, w in weights.items()}, ratio, "layer")
    for name, weight in weights.items():
        assert torch.equal(masks[name], expected[name]), name
        assert int((~masks[name]).sum()) == round(ratio * weight.numel())


@pytest.mark.parametrize("ratio", RATIOS)
def test_oneshot_magnitude_method_through_hooks_equals_torch_prune(ratio):
    task = tiny_task()
    model = small_cnn(seed=5)
    original = {n: w.detach().clone() for n, w in prunable(model).items()}
    expected = torch_global_masks(model, ratio)
    method = Magnitude(ratio, schedule="oneshot")
    method.on_run_start(make_state(task, model))
    assert method.resolved_schedule == "oneshot"
    n = n_prunable(model)
    for name, weight in prunable(model).items():
        assert torch.equal(method.masker.masks[name], expected[name]), name
        # the model's weights are now exactly the masked originals
        assert torch.equal(weight.detach(), original[name] * expected[name])
    assert method.masker.kept() == n - round(ratio * n)
    assert method.summary()["realised_sparsity"] == round(ratio * n) / n
    assert method.summary()["prunable_params"] == n
    assert method.summary()["prunable_params_remaining"] == n - round(ratio * n)
    # the head and the biases are never touched
    assert torch.count_nonzero(model.head.weight) == model.head.weight.numel()


@pytest.mark.parametrize("ratio", (0.5, 0.37))
def test_oneshot_layer_scope_method_equals_torch_l1_unstructured(ratio):
    task = tiny_task()
    model = small_cnn(seed=6)
    expected = torch_layer_masks(model, ratio)
    method = Magnitude(ratio, schedule="oneshot", scope="layer")
    method.on_run_start(make_state(task, model))
    for name in expected:
        assert torch.equal(method.masker.masks[name], expected[name]), name


def test_auto_schedule_is_gradual_from_scratch_and_oneshot_when_pretrained():
    task = tiny_task()
    method = Magnitude(0.5)
    method.on_run_start(make_state(task, small_cnn()))
    assert method.resolved_schedule == "gradual"
    assert sparsity(method._weights) == 0.0  # nothing pruned before the window opens

    class Pretrained(type(task)):
        pretrained = True

    method = Magnitude(0.5)
    model = small_cnn()
    method.on_run_start(make_state(Pretrained(), model))
    assert method.resolved_schedule == "oneshot"
    assert sparsity(prunable(model)) == round(0.5 * n_prunable(model)) / n_prunable(model)


# --- mask maths ----------------------------------------------------------------------


def test_lowest_k_mask_breaks_ties_by_lower_index():
    scores = torch.tensor([3.0, 1.0, 1.0, 0.5, 1.0, 2.0, 1.0])
    keep = lowest_k_mask(scores, 3)  # 0.5 (index 3), then the two 1.0s of lowest index (1, 2)
    assert keep.tolist() == [True, False, False, False, True, True, True]
    assert lowest_k_mask(scores, 0).all()
    assert not lowest_k_mask(scores, 7).any()


def test_global_ties_across_tensors_go_to_the_first_tensor_in_order():
    scores = {"a": torch.ones(2, 2), "b": torch.ones(3)}
    masks = global_masks(scores, 3 / 7)
    assert masks["a"].flatten().tolist() == [False, False, False, True]
    assert masks["b"].tolist() == [True, True, True]


def test_layerwise_removes_per_tensor_and_global_does_not():
    scores = {"small": torch.full((10,), 0.01), "large": torch.arange(1.0, 11.0)}
    g = global_masks(scores, 0.5)
    assert int((~g["small"]).sum()) == 10 and int((~g["large"]).sum()) == 0
    lw = layerwise_masks(scores, 0.5)
    assert int((~lw["small"]).sum()) == 5 and int((~lw["large"]).sum()) == 5


def test_count_removed_is_pythons_round_half_to_even():
    assert count_removed(0.5, 5) == 2  # round(2.5) == 2
    assert count_removed(0.5, 7) == 4  # round(3.5) == 4
    assert count_removed(0.37, 1000) == 370
    with pytest.raises(ValueError):
        select_masks({"a": torch.ones(3)}, 0.5, "row")


def test_masker_masks_are_anded_so_a_removed_weight_never_returns():
    w = torch.nn.Parameter(torch.arange(1.0, 7.0))
    masker = Masker({"w": w})
    masker.set({"w": torch.tensor([False, True, True, True, True, True])})
    masker.set({"w": torch.tensor([True, False, True, True, True, True])})
    assert masker.masks["w"].tolist() == [False, False, True, True, True, True]
    assert w.detach().tolist() == [0.0, 0.0, 3.0, 4.0, 5.0, 6.0]
    assert masker.kept() == 4


def test_masker_zeroes_gradients_and_keeps_weights_zero_against_existing_momentum():
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(50))
    optimizer = torch.optim.SGD([w], lr=0.1, momentum=0.9, weight_decay=1e-2)
    for _ in range(3):  # momentum builds up on every entry before the mask exists
        optimizer.zero_grad()
        (w * torch.randn(50)).sum().backward()
        optimizer.step()
    masker = Masker({"w": w})
    mask = torch.rand(50, generator=torch.Generator().manual_seed(1)) < 0.5
    masker.set({"w": mask})
    for _ in range(4):
        optimizer.zero_grad()
        (w * torch.randn(50)).sum().backward()
        assert torch.all(w.grad[~mask] == 0)  # the gradient filter
        optimizer.step()
        masker.enforce()
        assert torch.all(w.detach()[~mask] == 0)
        assert torch.all(w.detach()[mask] != 0)
    masker.remove()
    optimizer.zero_grad()
    (w * torch.ones(50)).sum().backward()
    assert torch.all(w.grad == 1)  # the hook is gone after remove()


# --- random weights --------------------------------------------------------------------


@pytest.mark.parametrize("ratio", RATIOS)
@pytest.mark.parametrize("scope", ("global", "layer"))
def test_random_weights_exact_count_and_seeded(ratio, scope):
    task = tiny_task()

    def masks_for(seed):
        model = small_cnn(seed=0)
        method = RandomWeights(ratio, seed=seed, scope=scope)
        method.on_run_start(make_state(task, model))
        return model, {n: m.clone() for n, m in method.masker.masks.items()}

    model, first = masks_for(seed=1)
    n = n_prunable(model)
    assert sum(int((~m).sum()) for m in first.values()) == (
        round(ratio * n) if scope == "global"
        else sum(round(ratio * w.numel()) for w in prunable(model).values())
    )
    if scope == "layer":
        for name, w in prunable(model).items():
            assert int((~first[name]).sum()) == round(ratio * w.numel())
    for name, w in prunable(model).items():
        assert torch.all(w.detach()[~first[name]] == 0)
    _, again = masks_for(seed=1)
    _, other = masks_for(seed=2)
    assert all(torch.equal(first[n_], again[n_]) for n_ in first)
    assert not all(torch.equal(first[n_], other[n_]) for n_ in first)


def test_random_weights_mask_does_not_depend_on_the_weights():
    task = tiny_task()
    masks = []
    for model_seed in (0, 1):
        method = RandomWeights(0.5, seed=7)
        method.on_run_start(make_state(task, small_cnn(seed=model_seed)))
        masks.append(method.masker.masks)
    assert all(torch.equal(masks[0][n], masks[1][n]) for n in masks[0])


# --- enforcement through the trainer ------------------------------------------------------


class ZeroWatcher(Hook):
    """Placed AFTER the method: records the zero pattern of the prunable weights after every step."""

    def __init__(self):
        self.sparsities: list[float] = []
        self.zero_sets: list[dict[str, torch.Tensor]] = []
        self.initial: dict[str, torch.Tensor] = {}

    def on_run_start(self, state):
        self.weights = prunable(state.model)
        self.initial = {n: w.detach().clone() for n, w in self.weights.items()}

    def on_step_end(self, state):
        self.sparsities.append(sparsity(self.weights))
        self.zero_sets.append({n: (w.detach() == 0) for n, w in self.weights.items()})


@pytest.mark.parametrize("optimizer", ("sgd", "adamw"))
@pytest.mark.parametrize("method_cls", (Magnitude, RandomWeights))
def test_pruned_weights_stay_exactly_zero_through_training(optimizer, method_cls):
    ratio = 0.37
    overrides = {"optimizer": optimizer, "momentum": 0.9, "weight_decay": 5e-2}
    if optimizer == "adamw":
        overrides["lr"] = 1e-2
    task = tiny_task(epochs=2, **overrides)
    options = {"schedule": "oneshot"} if method_cls is Magnitude else {}
    method = method_cls(ratio, seed=3, **options)
    watcher = ZeroWatcher()
    model, result = fit(task, [method, watcher], seed=0)
    assert result.state.step >= 8
    masks = method.masker.masks
    n = sum(m.numel() for m in masks.values())
    removed = n - method.masker.kept()
    assert removed == round(ratio * n)
    for zeros in watcher.zero_sets:  # after every single step
        for name, mask in masks.items():
            assert torch.all(zeros[name][~mask]), name
    final = prunable(model)
    for name, mask in masks.items():
        assert torch.all(final[name].detach()[~mask] == 0)
        # kept weights did train (the test would pass trivially if nothing moved)
        assert not torch.equal(final[name].detach()[mask], watcher.initial[name][mask])
    assert method.summary()["realised_sparsity"] == round(ratio * n) / n
    assert method.summary()["prunable_params_remaining"] == n - round(ratio * n)
    # the gradient hooks are removed at the end of the run
    assert all(not w._backward_hooks for w in final.values())


# --- gradual magnitude ----------------------------------------------------------------------


def zhu_gupta(t: int, s_f: float, t0: int, t_end: int, s_i: float = 0.0) -> float:
    """s_t = s_f + (s_i - s_f) (1 - (t - t0) / (n dt))^3, clamped outside [t0, t0 + n dt]."""
    span = t_end - t0
    frac = min(max((t - t0) / span, 0.0), 1.0)
    return s_f + (s_i - s_f) * (1.0 - frac) ** 3


@pytest.mark.parametrize("t0,t_end,s_f", [(0, 100, 0.9), (10, 60, 0.5), (3, 4, 0.37), (200, 1000, 0.8)])
def test_cubic_sparsity_matches_zhu_gupta(t0, t_end, s_f):
    for t in sorted({t0 - 1, t0, t0 + 1, (t0 + t_end) // 2, t_end - 1, t_end, t_end + 5, (3 * t0 + t_end) // 4}):
        if t < 0:
            continue
        assert cubic_sparsity(t, s_f, t0, t_end) == pytest.approx(zhu_gupta(t, s_f, t0, t_end), abs=1e-12), t
    assert cubic_sparsity(t_end, s_f, t0, t_end) == s_f  # exact at the end
    assert cubic_sparsity(t0, s_f, t0, t_end) == 0.0


@pytest.mark.parametrize("scope", ("global", "layer"))
def test_gradual_magnitude_reaches_the_exact_ratio_monotonically(scope):
    ratio = 0.37
    task = tiny_task(epochs=4)  # 270 samples / 64 -> 5 steps per epoch, 20 steps
    method = Magnitude(ratio, schedule="gradual", scope=scope, start=0.1, end=0.6, updates=20)
    watcher = ZeroWatcher()
    model, result = fit(task, [method, watcher], seed=1)
    total = result.state.total_steps
    assert total == 20 and len(watcher.sparsities) == 20
    first, last = round(0.1 * total), round(0.6 * total)
    # every planned update is on the cubic curve, and the last one is the target exactly
    assert max(method.update_steps) == last
    for step, target in method.update_steps.items():
        assert first < step <= last or target == 0.0
        assert target == pytest.approx(zhu_gupta(step, ratio, first, last), abs=1e-12)
    weights = prunable(model)
    n = sum(w.numel() for w in weights.values())
    expected_removed = round(ratio * n) if scope == "global" else sum(round(ratio * w.numel()) for w in weights.values())
    assert sparsity(weights) == expected_removed / n
    assert method.summary()["realised_sparsity"] == expected_removed / n
    # zero before the window, non-decreasing, fixed after the window
    s = watcher.sparsities
    assert s[first - 1] == 0.0
    assert all(b >= a for a, b in zip(s, s[1:])), s
    assert len(set(s[last - 1 :])) == 1 and s[-1] == expected_removed / n
    assert len(set(s)) > 3  # really gradual, not one jump
    # a removed weight never comes back: each step's zero set contains the previous one
    for before, after in zip(watcher.zero_sets, watcher.zero_sets[1:]):
        for name in before:
            assert torch.all(after[name][before[name]]), name
    # (that each update step removes exactly round(target * n) is checked, deterministically,
    # by test_gradual_update_scores_weights_after_enforcing_the_previous_mask below)


class Toy(torch.nn.Module):
    """One prunable 10-weight layer and a head."""

    def __init__(self, weight):
        super().__init__()
        self.body = torch.nn.Linear(10, 1, bias=False)
        self.head = torch.nn.Linear(1, 1)
        with torch.no_grad():
            self.body.weight.copy_(torch.tensor(weight).view(1, 10))


def test_gradual_update_scores_weights_after_enforcing_the_previous_mask():
    model = Toy([1.0, 1.0, 1.0, 0.5, 0.5, 2.0, 3.0, 4.0, 5.0, 6.0])
    state = make_state(tiny_task(), model)
    method = Magnitude(0.4, schedule="gradual")
    method.on_run_start(state)
    method.update_steps = {1: 0.3, 2: 0.4}
    w = model.body.weight
    optimizer = torch.optim.SGD([w], lr=0.1, momentum=0.9)

    def step(grad):
        optimizer.zero_grad()
        (w * torch.tensor(grad).view(1, 10)).sum().backward()
        optimizer.step()
        state.step += 1
        method.on_step_end(state)

    step([10.0, 10.0, 10.0] + [0.0] * 7)  # drives w[0:3] to 0 with a large momentum buffer
    assert method.masker.kept() == 7 and torch.all(w[0, :3] == 0)
    step([0.0] * 10)  # momentum carries the pruned weights to -0.9 before enforce() runs
    # target 0.4 of 10 weights: exactly 4 removed, the three already pruned plus index 3
    assert method.masker.kept() == 6
    assert (w[0] == 0).tolist() == [True, True, True, True] + [False] * 6


def test_gradual_magnitude_cut_short_still_ends_at_the_target():
    ratio = 0.5
    task = tiny_task(epochs=4)
    method = Magnitude(ratio, schedule="gradual", start=0.5, end=1.0, updates=5)

    class StopEarly(Hook):
        def on_epoch_start(self, state):
            # one tiny batch per epoch: a run far shorter than the planned 20 steps
            return torch.arange(10)

    model, result = fit(task, [StopEarly(), method], seed=0)
    assert result.state.step == 4 < max(method.update_steps)
    n = sum(w.numel() for w in prunable(model).values())
    assert sparsity(prunable(model)) == round(ratio * n) / n
