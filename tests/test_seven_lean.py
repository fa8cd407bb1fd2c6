"""SEVEN's in-place state update against the allocating formula it replaced (kept here as
the reference): bit-identical importance, m and v, and the same masks, step after step."""
from __future__ import annotations

import pytest
import torch

from benchmark.api.masks import Masker, select_masks
from methods.model.seven import SevenScore


class ReferenceScore:
    """The previous SevenScore: fresh temporaries for every intermediate."""

    def __init__(self, weights, alpha1, alpha2, eps=1e-9):
        self.weights, self.alpha1, self.alpha2, self.eps = weights, alpha1, alpha2, eps
        self.m = {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights.items()}
        self.v = {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights.items()}
        self.importance = {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights.items()}

    @torch.no_grad()
    def update(self, t, masks):
        m_correction = 1.0 - self.alpha1 ** (t + 1)
        v_correction = 1.0 - self.alpha2 ** (t + 1)
        for name, weight in self.weights.items():
            grad = weight.grad
            if grad is None:
                continue
            grad = grad.float()
            magnitude = grad.abs()
            self.m[name].mul_(self.alpha1).add_(magnitude, alpha=1.0 - self.alpha1)
            self.v[name].mul_(self.alpha2).add_(grad * grad, alpha=1.0 - self.alpha2)
            m_hat = self.m[name] / m_correction
            v_hat = (self.v[name] / v_correction).sqrt() + self.eps
            self.importance[name].add_((weight.float() * magnitude * m_hat / v_hat).abs())
            mask = masks.get(name)
            if mask is not None:
                self.importance[name].mul_(mask)

    def ranking(self, masks):
        return {n: torch.where(masks[n], s, torch.full_like(s, -1.0)) if n in masks else s
                for n, s in self.importance.items()}


def _weights(dtype, seed):
    g = torch.Generator().manual_seed(seed)
    shapes = {"a": (16, 8), "b": (7, 3, 3, 3), "c": (5,), "d": (40, 2)}
    return {n: torch.nn.Parameter(torch.randn(s, generator=g).to(dtype)) for n, s in shapes.items()}


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_in_place_update_is_bit_identical_to_the_allocating_formula(dtype):
    new_w, ref_w = _weights(dtype, 0), _weights(dtype, 0)
    new, ref = SevenScore(new_w, 0.8, 0.9), ReferenceScore(ref_w, 0.8, 0.9)
    new_masker, ref_masker = Masker(new_w), Masker(ref_w)
    g = torch.Generator().manual_seed(1)
    for t in range(6):
        for name in new_w:
            grad = torch.randn(new_w[name].shape, generator=g).to(dtype)
            if t == 2 and name == "c":  # a tensor without a gradient this step is skipped
                new_w[name].grad = ref_w[name].grad = None
                continue
            new_w[name].grad = grad * new_masker.masks.get(name, 1)
            ref_w[name].grad = grad.clone() * ref_masker.masks.get(name, 1)
        new_masks = new_masker.masks or {n: torch.ones_like(w, dtype=torch.bool) for n, w in new_w.items()}
        ref_masks = ref_masker.masks or {n: torch.ones_like(w, dtype=torch.bool) for n, w in ref_w.items()}
        new.update(t, new_masks)
        ref.update(t, ref_masks)
        for name in new_w:
            for state in ("m", "v", "importance"):
                assert torch.equal(getattr(new, state)[name], getattr(ref, state)[name]), (t, name, state)
        sparsity = 0.1 * (t + 1)
        for scope in ("global", "layer"):
            views, flat = new.ranking(new_masks)
            expected = ref.ranking(ref_masks)
            assert all(torch.equal(views[n], expected[n]) for n in expected)
            assert torch.equal(flat, torch.cat([expected[n].flatten() for n in expected]))
            got = select_masks(views, sparsity, scope, flat=flat)
            want = select_masks(expected, sparsity, scope)
            assert all(torch.equal(got[n], want[n]) for n in want), scope
        new_masker.set(select_masks(views, sparsity, "global", flat=flat))
        ref_masker.set(select_masks(ref.ranking(ref_masks), sparsity, "global"))
    assert new_masker.kept() == ref_masker.kept() < sum(w.numel() for w in new_w.values())
    new.release()
    assert new._scratch is None and new._ranking is None
