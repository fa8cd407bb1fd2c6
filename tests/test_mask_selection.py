"""The linear-time mask selection against the sort-based one it replaced (kept here as the
reference): identical masks on random scores, heavy ties, every edge ratio, both scopes."""
from __future__ import annotations

import pytest
import torch

import benchmark.api.masks as masks_module
from benchmark.api.masks import count_removed, global_masks, layerwise_masks, lowest_k_mask, select_masks


@pytest.fixture(params=["host", "device"])
def path(request, monkeypatch):
    """``device``: the code a GPU runs (torch.kthvalue, ties ranked by cumulative counts),
    forced on the CPU so that it is checked here too."""
    if request.param == "device":
        monkeypatch.setattr(masks_module, "on_host", lambda device: False)
    else:
        monkeypatch.setattr(masks_module, "TIE_CHUNK", 16)  # the cut falls inside a later chunk
    return request.param


# --- the previous implementation, verbatim in behaviour: stable argsort on the host ---------
def reference_lowest_k_mask(scores: torch.Tensor, k: int) -> torch.Tensor:
    flat = scores.flatten()
    keep = torch.ones_like(flat, dtype=torch.bool)
    if k > 0:
        keep[torch.argsort(flat, stable=True)[:k]] = False
    return keep.view_as(scores)


def reference_global_masks(scores: dict[str, torch.Tensor], ratio: float) -> dict[str, torch.Tensor]:
    names = list(scores)
    flat = torch.cat([scores[n].detach().flatten().float().cpu() for n in names])
    keep = reference_lowest_k_mask(flat, count_removed(ratio, flat.numel()))
    out, offset = {}, 0
    for n in names:
        size = scores[n].numel()
        out[n] = keep[offset : offset + size].view_as(scores[n]).to(scores[n].device)
        offset += size
    return out


def reference_layerwise_masks(scores: dict[str, torch.Tensor], ratio: float) -> dict[str, torch.Tensor]:
    return {n: reference_lowest_k_mask(s.detach().float().cpu(), count_removed(ratio, s.numel())).to(s.device)
            for n, s in scores.items()}


SHAPES = {"conv": (8, 3, 3, 3), "conv1d": (5, 2, 7), "fc": (33, 17), "bias_like": (1,), "head": (10, 4)}
RATIOS = (0.0, 1e-4, 0.003, 0.1, 0.5, 0.731, 0.999)


def _random(shape, g):
    return torch.rand(shape, generator=g)


def _quantised(shape, g):
    return torch.randint(0, 4, shape, generator=g).float() / 4  # four values: ties everywhere


def _all_equal(shape, g):
    return torch.full(shape, 0.25)


def _zeros(shape, g):
    return torch.zeros(shape)


def _seven_like(shape, g):
    """SEVEN's ranking: -1 where already pruned, 0 for live weights with no importance yet."""
    s = torch.rand(shape, generator=g)
    s[torch.rand(shape, generator=g) < 0.4] = -1.0
    s[torch.rand(shape, generator=g) < 0.2] = 0.0
    return s


def _negative_zero(shape, g):
    s = torch.randint(-1, 2, shape, generator=g).float() * 0.0  # -0.0 and 0.0 compare equal
    return s


def _bf16(shape, g):
    return torch.randn(shape, generator=g).abs().to(torch.bfloat16)  # few distinct values


KINDS = [_random, _quantised, _all_equal, _zeros, _seven_like, _negative_zero, _bf16]


def _scores(kind, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: kind(shape, g) for name, shape in SHAPES.items()}


def _assert_same(new: dict, old: dict):
    assert list(new) == list(old)
    for name in old:
        assert new[name].dtype == torch.bool and new[name].shape == old[name].shape, name
        assert torch.equal(new[name], old[name]), name


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__.strip("_"))
@pytest.mark.parametrize("ratio", RATIOS)
def test_global_selection_equals_the_sort_based_reference(kind, ratio, path):
    for seed in range(3):
        scores = _scores(kind, seed)
        _assert_same(global_masks(scores, ratio), reference_global_masks(scores, ratio))
        _assert_same(select_masks(scores, ratio, "global"), reference_global_masks(scores, ratio))


@pytest.mark.parametrize("kind", KINDS, ids=lambda k: k.__name__.strip("_"))
@pytest.mark.parametrize("ratio", RATIOS)
def test_layerwise_selection_equals_the_sort_based_reference(kind, ratio, path):
    for seed in range(3):
        scores = _scores(kind, seed)
        _assert_same(layerwise_masks(scores, ratio), reference_layerwise_masks(scores, ratio))


def test_removed_count_is_exact_and_ties_go_to_the_lowest_flat_index(path):
    scores = torch.tensor([2.0, 1.0, 1.0, 0.5, 1.0, 1.0, 3.0])
    for k in range(len(scores) + 1):
        keep = lowest_k_mask(scores, k)
        assert int((~keep).sum()) == k
        assert torch.equal(keep, reference_lowest_k_mask(scores, k))
    assert lowest_k_mask(scores, 3).tolist() == [True, False, False, False, True, True, True]


def test_every_k_on_a_heavily_tied_vector(path):
    g = torch.Generator().manual_seed(7)
    scores = torch.randint(0, 3, (257,), generator=g).float()
    for k in range(0, 258, 3):
        assert torch.equal(lowest_k_mask(scores, k), reference_lowest_k_mask(scores, k)), k


def test_precomputed_flat_gives_the_same_masks_and_is_left_as_it_was(path):
    scores = _scores(_seven_like, 3)
    flat = torch.cat([s.flatten().float() for s in scores.values()])
    before = flat.clone()
    _assert_same(global_masks(scores, 0.5, flat=flat), reference_global_masks(scores, 0.5))
    assert torch.equal(flat, before)


def test_callers_scores_are_not_reordered_and_channels_last_scores_rank_by_logical_index(path):
    g = torch.Generator().manual_seed(4)
    conv = torch.randint(0, 5, (6, 3, 3, 3), generator=g).float().contiguous(memory_format=torch.channels_last)
    scores = {"conv": conv, "fc": torch.randint(0, 5, (40,), generator=g).float()}
    copies = {n: s.clone() for n, s in scores.items()}
    for ratio in (0.3, 0.5):
        _assert_same(global_masks(scores, ratio), reference_global_masks(copies, ratio))
        _assert_same(layerwise_masks(scores, ratio), reference_layerwise_masks(copies, ratio))
    assert all(torch.equal(scores[n], copies[n]) for n in scores)


def test_selection_stays_on_the_scores_device_and_dtype_of_masks():
    scores = {"a": torch.rand(4, 4, dtype=torch.float64), "b": torch.rand(3)}
    for masks in (global_masks(scores, 0.3), layerwise_masks(scores, 0.3)):
        for name, mask in masks.items():
            assert mask.device == scores[name].device and mask.dtype == torch.bool
            assert mask.shape == scores[name].shape


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_selection_equals_the_reference_and_stays_on_the_device():
    for kind in KINDS:
        scores = _scores(kind, 11)
        on_gpu = {n: s.cuda() for n, s in scores.items()}
        for ratio in RATIOS:
            new = global_masks(on_gpu, ratio)
            assert all(m.is_cuda for m in new.values())
            _assert_same({n: m.cpu() for n, m in new.items()}, reference_global_masks(scores, ratio))
            lw = layerwise_masks(on_gpu, ratio)
            _assert_same({n: m.cpu() for n, m in lw.items()}, reference_layerwise_masks(scores, ratio))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.int32])
def test_the_device_kthvalue_path_equals_the_reference(dtype):
    """Dtypes NumPy cannot select on go through torch.kthvalue, the path every GPU takes."""
    g = torch.Generator().manual_seed(5)
    scores = (torch.randint(0, 50, (999,), generator=g) - 10).to(dtype)
    for k in (0, 1, 17, 499, 998, 999):
        assert torch.equal(lowest_k_mask(scores, k), reference_lowest_k_mask(scores, k)), k


def test_scores_that_require_grad_are_selected_without_touching_autograd(path):
    scores = torch.rand(50, generator=torch.Generator().manual_seed(9), requires_grad=True)
    keep = lowest_k_mask(scores, 20)
    assert not keep.requires_grad and torch.equal(keep, reference_lowest_k_mask(scores.detach(), 20))
