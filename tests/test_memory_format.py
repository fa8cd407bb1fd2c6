"""Vision models train in channels-last memory: same seed, same result; the same function
as the NCHW model; masks and pruning go by logical index, so they do not change."""
from __future__ import annotations

import torch

from benchmark.masks import global_masks, prunable_weights
from helpers_tiny import fit, one_cpu_thread, tiny_task  # noqa: F401
from methods.magnitude import Magnitude
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
