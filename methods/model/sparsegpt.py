"""SparseGPT: massive language models can be accurately pruned in one shot (Frantar and
Alistarh, ICML 2023, arXiv 2301.00774; reference code ``IST-DASLab/sparsegpt`` as vendored in
``locuslab/wanda``, ``lib/sparsegpt.py``, commit 8e8fc87, which the test fixtures ran).

Per Linear layer, from its calibration inputs ``X [tokens, in]``: the Hessian of the
layer-wise reconstruction error ``H = 2 X^T X / tokens``, dampened by ``percdamp`` (0.01) of
its mean diagonal (inputs that are always zero get ``H_jj = 1`` and their weights zeroed);
``U`` = the upper Cholesky factor of ``H^-1``. Columns are visited in blocks of
``blocksize`` (128). Unstructured: at each block's start the mask is chosen adaptively from
the block's current (already updated) weights by the OBS saliency ``w^2 / U_jj^2``, removing
the ``round(ratio * rows * block)`` lowest (``count_rule: reference``: the reference's
``<= sorted[int(ratio * numel)]``, one more per block). ``pattern: N:M``: at every ``M``-th
column, each row's group of ``M`` keeps its ``N`` highest saliencies. Then column by column
the pruned weights are set to zero and the error ``(w - q) / U_jj`` is spread over the
remaining columns of the block through row ``j`` of ``U``, and after each block over all
later columns (the lazy batch update). Layers are pruned block by block on the pruned
model's own inputs (:mod:`benchmark.training.calibration`). Ties go to the lower index (the
reference's ``topk`` leaves their order unspecified).
"""
from __future__ import annotations

from benchmark.api.lazy import lazy_import, no_grad
from benchmark.api.masks import count_removed, lowest_k_mask
from benchmark.api.registry import register_method
from benchmark.api.sparsity_patterns import Pattern, check_count_rule, nm_keep_mask, threshold_keep_mask

from .posttrain import PostTrainingPruner

torch = lazy_import("torch")


class Hessian:
    """``sum X^T X`` over the calibration tokens, in float32."""

    def __init__(self, features: int, device):
        self.sum = torch.zeros(features, features, dtype=torch.float32, device=device)
        self.tokens = 0

    def add(self, rows) -> None:
        rows = rows.float()
        self.sum.addmm_(rows.t(), rows)
        self.tokens += rows.shape[0]

    def matrix(self):
        return self.sum.mul_(2.0 / max(self.tokens, 1))  # in place: the sum is not needed again


def inverse_cholesky(hessian, weight, percdamp: float):
    """Upper Cholesky factor of the dampened Hessian's inverse; zeroes ``weight``'s dead inputs."""
    dead = torch.diag(hessian) == 0
    hessian[dead, dead] = 1
    weight[:, dead] = 0
    hessian.diagonal().add_(percdamp * torch.mean(torch.diag(hessian)))
    lower = torch.linalg.cholesky(hessian)
    return torch.linalg.cholesky(torch.cholesky_inverse(lower), upper=True)


def _block_mask(block, diag, ratio: float, count_rule: str):
    """Unstructured: the block's pruned entries (True = pruned) by OBS saliency."""
    saliency = block.pow(2) / diag.reshape(1, -1).pow(2)
    if count_rule == "reference":
        return ~threshold_keep_mask(saliency, ratio)
    return ~lowest_k_mask(saliency, count_removed(ratio, saliency.numel()))


@no_grad
def sparsegpt_prune(weight, hessian, ratio: float, pattern: Pattern, blocksize: int = 128, percdamp: float = 0.01,
                    count_rule: str = "harness"):
    """OBS pruning of ``weight [out, in]`` (not modified) with ``hessian [in, in]`` (consumed).
    Returns (pruned float32 weight, boolean keep-mask, per-row loss sum (w - q)^2 / U_jj^2 / 2)."""
    W = weight.detach().clone().float()
    rows, columns = W.shape
    U = inverse_cholesky(hessian, W, percdamp)
    pruned = torch.zeros(rows, columns, dtype=torch.bool, device=W.device)
    losses = torch.zeros(rows, dtype=torch.float32, device=W.device)
    for first in range(0, columns, blocksize):
        last = min(first + blocksize, columns)
        block = W[:, first:last].clone()
        errors = torch.zeros_like(block)
        U_block = U[first:last, first:last]
        diag = torch.diag(U_block)
        block_pruned = pruned[:, first:last]
        if not pattern.structured:
            block_pruned.copy_(_block_mask(block, diag, ratio, count_rule))
        for i in range(last - first):
            if pattern.structured and i % pattern.m == 0:
                group = block[:, i : i + pattern.m].pow(2) / diag[i : i + pattern.m].reshape(1, -1).pow(2)
                block_pruned[:, i : i + pattern.m] = ~nm_keep_mask(group, pattern)
            w = block[:, i]
            q = torch.where(block_pruned[:, i], torch.zeros_like(w), w)
            d = U_block[i, i]
            losses += (w - q).pow(2) / d.pow(2) / 2
            error = (w - q) / d
            block[:, i:] -= error.unsqueeze(1) * U_block[i, i:].unsqueeze(0)  # column i becomes q
            block[:, i] = q
            errors[:, i] = error
        W[:, first:last] = block
        W[:, last:] -= errors.matmul(U[first:last, last:])
    return W, ~pruned, losses


@register_method("sparsegpt")
class SparseGPT(PostTrainingPruner):
    provenance = "reference-code"

    def __init__(self, ratio: float, seed: int = 0, *, pattern: str = "unstructured", calibration_samples: int = 128,
                 finetune_epochs: int = 0, blocksize: int = 128, percdamp: float = 0.01, count_rule: str = "harness"):
        super().__init__(ratio, seed, pattern=pattern, calibration_samples=calibration_samples,
                         finetune_epochs=finetune_epochs)
        if not isinstance(blocksize, int) or isinstance(blocksize, bool) or blocksize < 1:
            raise ValueError(f"method 'sparsegpt': blocksize must be a positive integer, got {blocksize!r}")
        if self.pattern.structured and blocksize % self.pattern.m:
            raise ValueError(f"method 'sparsegpt': blocksize {blocksize} must be a multiple of M = {self.pattern.m} "
                             f"(pattern {self.pattern}), so that no group of M straddles two blocks")
        if not 0 <= percdamp < 1:
            raise ValueError(f"method 'sparsegpt': percdamp must be in [0, 1), got {percdamp!r}")
        check_count_rule("sparsegpt", count_rule)
        self.blocksize, self.percdamp, self.count_rule = blocksize, percdamp, count_rule
        self.reconstruction_loss = 0.0

    def observer(self, name: str, module) -> Hessian:
        return Hessian(module.in_features, module.weight.device)

    @no_grad
    def prune_layer(self, name: str, module, observer: Hessian):
        W, keep, losses = sparsegpt_prune(module.weight, observer.matrix(), self.ratio, self.pattern,
                                          self.blocksize, self.percdamp, self.count_rule)
        module.weight.copy_(W.to(module.weight.dtype))
        self.reconstruction_loss += float(losses.sum())
        return keep

    def summary(self) -> dict[str, float]:
        out = super().summary()
        out["sparsegpt_obs_loss"] = self.reconstruction_loss
        return out
