"""Vision models train in channels-last memory: same seed, same result; the same function
as the NCHW model; masks and pruning go by logical index, so they do not change."""
from __future__ import annotations

import pytest
import torch

from benchmark.api.masks import global_masks, prunable_weights
from helpers_tiny import fit, one_cpu_thread, tiny_task  # noqa: F401
from methods.model.magnitude import Magnitude
from tasks.vision.models import MEMORY_FORMATS, build_image_model, in_memory_format


def test_built_image_models_are_channels_last_and_compute_what_nchw_computes():
    for name in MEMORY_FORMATS:
        torch.manual_seed(0)
        fast = build_image_model(name, 3, 10, image_size=32, width=8).eval()
        conv = next(m for m in fast.modules() if isinstance(m, torch.nn.Conv2d))
        assert conv.weight.is_contiguous(memory_format=torch.channels_last)
        plain = in_memory_format(build_image_model(name, 3, 10, image_size=32, width=8), torch.contiguous_format)
        plain.load_state_dict(fast.state_dict())
        plain.eval()
        assert next(m for m in plain.modules() if isinstance(m, torch.nn.Conv2d)).weight.is_contiguous()
        x = torch.randn(4, 3, 32, 32)
        with torch.no_grad():
            assert torch.allclose(fast(x), plain(x), atol=1e-5, rtol=1e-4), name


def test_masks_of_a_channels_last_model_equal_those_of_its_nchw_copy():
    torch.manual_seed(1)
    fast = build_image_model("small-cnn", 1, 10, image_size=28, width=8)
    plain = in_memory_format(build_image_model("small-cnn", 1, 10, image_size=28, width=8), torch.contiguous_format)
    plain.load_state_dict(fast.state_dict())
    fast_masks, plain_masks = (global_masks({n: w.abs() for n, w in prunable_weights(m, m.head).items()}, 0.6)
                               for m in (fast, plain))
    assert all(torch.equal(fast_masks[n], plain_masks[n]) for n in plain_masks)


def test_same_seed_same_weights_in_channels_last_with_pruning():
    task = tiny_task(epochs=2)
    splits = task.load_splits()
    first, _ = fit(task, [Magnitude(0.5, 0, schedule="gradual", updates=3)], seed=3, splits=splits)
    second, _ = fit(task, [Magnitude(0.5, 0, schedule="gradual", updates=3)], seed=3, splits=splits)
    conv = next(m for m in first.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    for (name, a), b in zip(first.state_dict().items(), second.state_dict().values()):
        assert torch.equal(a, b), name


# --- CWRU's 1-D CNN: the rows layout (2-D kernels over [N, C, 1, L] in channels-last) -------

def _cnn1d_pair(seed: int = 0):
    from tasks.cwru.models import CNN1d

    torch.manual_seed(seed)
    plain = CNN1d(10, width=8, hidden=32)
    torch.manual_seed(seed)
    rows = CNN1d(10, width=8, hidden=32, memory_format=torch.channels_last)
    return plain, rows


def test_cnn1d_rows_layout_keeps_parameters_initial_values_flops_and_prunable_set():
    from benchmark.training.flops import parameter_counts, weight_layer_flops
    from tasks.cwru.models import MEMORY_FORMATS, build_signal_model

    plain, rows = _cnn1d_pair()
    assert build_signal_model("cnn1d", 10).memory_format == MEMORY_FORMATS["cnn1d"]
    assert build_signal_model("cnn1d", 10, memory_format=torch.channels_last).memory_format == torch.channels_last
    assert [(n, p.shape) for n, p in plain.state_dict().items()] == [(n, p.shape) for n, p in rows.state_dict().items()]
    assert all(torch.equal(a, b) for a, b in zip(plain.state_dict().values(), rows.state_dict().values()))
    assert list(prunable_weights(rows, rows.head)) == list(prunable_weights(plain, plain.head))
    assert all(isinstance(m, torch.nn.Conv1d) for m in rows.modules() if "Conv" in type(m).__name__)
    x = torch.randn(3, 1, 1024)
    assert weight_layer_flops(rows, x) == weight_layer_flops(plain, x)
    rows.load_state_dict(plain.state_dict())  # a checkpoint of either loads into the other
    weights = prunable_weights(rows, rows.head)
    masks = global_masks({n: w.detach().abs() for n, w in weights.items()}, 0.6)
    for name, weight in weights.items():
        weight.data.mul_(masks[name])
    assert weight_layer_flops(rows, x)[1] < weight_layer_flops(rows, x)[0]
    assert parameter_counts(rows)[1] == parameter_counts(plain)[1] - sum(int((~m).sum()) for m in masks.values())


def test_cnn1d_rows_layout_computes_what_the_ncl_model_computes_forward_and_backward():
    plain, rows = _cnn1d_pair(3)
    x, y = torch.randn(6, 1, 777), torch.randint(0, 10, (6,))
    losses = []
    for model in (plain, rows):
        model.train()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        losses.append(loss.detach())
    assert torch.allclose(losses[0], losses[1], atol=1e-6, rtol=1e-5)
    for (name, a), b in zip(plain.named_parameters(), rows.parameters()):
        assert a.grad.shape == b.grad.shape and torch.allclose(a.grad, b.grad, atol=1e-6, rtol=1e-4), name
    for a, b in zip(plain.buffers(), rows.buffers()):  # batch-norm running statistics
        assert torch.allclose(a.float(), b.float(), atol=1e-6, rtol=1e-5)
    plain.eval(), rows.eval()
    with torch.no_grad():
        assert torch.allclose(plain.features(x), rows.features(x), atol=1e-5, rtol=1e-4)


def test_cnn1d_refuses_a_layout_it_does_not_have():
    from tasks.cwru.models import CNN1d, RowConv1d

    with pytest.raises(ValueError, match="channels_last"):
        CNN1d(10, memory_format=torch.channels_last_3d)
    with pytest.raises(ValueError, match="zero padding"):
        RowConv1d(1, 2, 3, padding="same")
