"""SEVEN: pruning transformers by reserving "sentinel" weights (Xiao et al., IJCNN 2024,
arXiv 2403.12688), as the reference code's SEVEN_dyn branch computes it.

After every optimizer step inside the pruning window, for each prunable weight ``W``
with gradient ``g`` (pruned entries have ``g = 0``; t counts steps from the window start)::

    m  = a1 * m + (1 - a1) * |g|          m_hat = m / (1 - a1^(t+1))
    v  = a2 * v + (1 - a2) * g^2          v_hat = sqrt(v / (1 - a2^(t+1))) + 1e-9
    I += | W * |g| * m_hat / v_hat |      I = 0 where already pruned

``|W * g|`` is the first-order Taylor sensitivity; ``m_hat / v_hat`` (about E|g| / sqrt(E g^2))
is near 1 for weights whose gradient is steady and small for noisy ones, so summing over the
window favours consistently important weights. Masks are one global top-k over ``I``,
with Zhu & Gupta's cubic keep schedule ``keep(t) = k + (1 - k) * (1 - (t + 1) / T)^3``
(``k = 1 - ratio``); a pruned weight never returns.

The window is set as fractions of the run (``start``, ``length``), so a shortened run keeps
the shape of the reference (SST-2: starts at step 1000 of ~21000 and ramps over 4000).
Unless given, both come from the task's ``prune_window`` (the GLUE tasks carry the
reference's per-task windows; see :mod:`tasks.text.task`).
One deliberate difference: the reference's last update is at window step ``T - 2``, where
``keep = k + (1 - k) / T^3``; here the window includes ``T - 1``, so the run ends at exactly
``ratio``. Counts follow the harness rule (``round(sparsity * n)`` removed, ties by index)
rather than the reference's ``int(keep * n)`` kept.

``variant="pre"`` (SEVEN_pre, reconstructed: the reference code has no such branch) runs
``pre_batches`` forward/backward passes on the pre-trained weights before fine-tuning,
without weight updates, with the same score and the cubic schedule spread over them, then
fine-tunes with the mask fixed. Those passes are charged to the method as scoring cost.
"""
from __future__ import annotations

import time

from benchmark.api.hooks import TrainState
from benchmark.api.lazy import lazy_import, no_grad
from benchmark.api.masks import flat_views, select_masks
from benchmark.api.method import ModelPruner, check_count
from benchmark.api.registry import register_method

torch = lazy_import("torch")

VARIANTS = ("dyn", "pre")


def keep_fraction(t: int, window: int, ratio: float) -> float:
    """SEVEN's cubic keep schedule at window step ``t`` (0-based) of ``window`` steps."""
    keep = 1.0 - ratio
    return keep + (1.0 - keep) * (1.0 - (t + 1) / window) ** 3


def window_steps(total_steps: int, start: float, length: float) -> tuple[int, int]:
    """(first, count) of the optimizer steps SEVEN_dyn updates in, for a run of ``total_steps``."""
    return round(start * total_steps), max(1, round(length * total_steps))


def check_window(start: float, length: float) -> None:
    if not (0 <= start < 1 and 0 < length <= 1 and start + length <= 1):
        raise ValueError(f"seven needs 0 <= start, 0 < length, start + length <= 1 (fractions of the run), "
                         f"got start={start}, length={length}")


def run_window(start: float | None, length: float | None, state) -> tuple[float, float, int, int]:
    """A run's pruning window: ``start`` and ``length`` (the task's defaults where None),
    checked, and the (first step, step count) they give over the run's optimizer steps."""
    default_start, default_length = state.task.prune_window
    start = start if start is not None else default_start
    length = length if length is not None else default_length
    check_window(start, length)
    return (start, length, *window_steps(state.total_steps, start, length))


class SevenScore:
    """The cumulative SEVEN importance of a set of weights (the state of the formula above).

    The state is three float32 tensors per weight (m, v, importance), updated in place; the
    update's intermediates live in two scratch buffers of the largest tensor's size, reused
    for every tensor, and the ranking in one reusable vector of all weights, so the only
    model-sized memory beyond the state is that vector (freed by :meth:`release`)."""

    def __init__(self, weights: dict[str, torch.nn.Parameter], alpha1: float, alpha2: float, eps: float = 1e-9):
        self.weights, self.alpha1, self.alpha2, self.eps = weights, alpha1, alpha2, eps
        self.m = {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights.items()}
        self.v = {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights.items()}
        self.importance = {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights.items()}
        self._scratch: tuple[torch.Tensor, torch.Tensor] | None = None
        self._ranking: torch.Tensor | None = None

    def _scratch_for(self, weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self._scratch is None or self._scratch[0].device != weight.device:
            largest = max(w.numel() for w in self.weights.values())
            self._scratch = tuple(torch.empty(largest, dtype=torch.float32, device=weight.device) for _ in range(2))
        return tuple(buffer[: weight.numel()].view(weight.shape) for buffer in self._scratch)

    @no_grad
    def update(self, t: int, masks: dict[str, torch.Tensor]) -> None:
        """Fold in the gradients now in ``.grad``; ``t`` is the 0-based window step.
        Same operations in the same order as the formula, so the result is bit-identical
        to computing it with fresh temporaries."""
        m_correction = 1.0 - self.alpha1 ** (t + 1)
        v_correction = 1.0 - self.alpha2 ** (t + 1)
        for name, weight in self.weights.items():
            grad = weight.grad
            if grad is None:
                continue
            grad = grad.float()  # no copy for float32 gradients
            term, other = self._scratch_for(weight)
            torch.abs(grad, out=term)  # |g|
            self.m[name].mul_(self.alpha1).add_(term, alpha=1.0 - self.alpha1)
            torch.mul(grad, grad, out=other)
            self.v[name].mul_(self.alpha2).add_(other, alpha=1.0 - self.alpha2)
            torch.div(self.m[name], m_correction, out=other)  # m_hat
            term.mul_(weight).mul_(other)  # |g| * W == W * |g| exactly; then * m_hat
            torch.div(self.v[name], v_correction, out=other).sqrt_().add_(self.eps)  # v_hat
            self.importance[name].add_(term.div_(other).abs_())
            mask = masks.get(name)
            if mask is not None:
                self.importance[name].mul_(mask)

    def ranking(self, masks: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """Scores to rank by: pruned entries sit below every live one (a live weight may also
        score 0), so a new mask never trades a live weight for one already gone. Returns the
        per-weight views and the vector of all of them concatenated (for a global selection)."""
        first = next(iter(self.importance.values()))
        total = sum(s.numel() for s in self.importance.values())
        if self._ranking is None or self._ranking.numel() != total:
            self._ranking = torch.empty(total, dtype=torch.float32, device=first.device)
        views = flat_views(self._ranking, self.importance)
        pruned = torch.tensor(-1.0, device=first.device)
        for name, score in self.importance.items():
            if name in masks:
                torch.where(masks[name], score, pruned, out=views[name])
            else:
                views[name].copy_(score)
        return views, self._ranking

    def release(self) -> None:
        """Free the scratch buffers once no more updates come."""
        self._scratch = self._ranking = None


@register_method("seven")
class Seven(ModelPruner):
    provenance = "reference-code"

    def __init__(self, ratio: float, seed: int = 0, *, scope: str = "global", variant: str = "dyn",
                 start: float | None = None, length: float | None = None, alpha1: float = 0.8, alpha2: float = 0.9,
                 pre_batches: int = 100):
        super().__init__(ratio, seed, scope=scope)
        if variant not in VARIANTS:
            raise ValueError(f"seven variant {variant!r} is unknown; use one of {VARIANTS}")
        if start is not None or length is not None:
            check_window(start if start is not None else 0.0, length if length is not None else 1e-9)
        for name, alpha in (("alpha1", alpha1), ("alpha2", alpha2)):
            if not 0 <= alpha < 1:
                raise ValueError(f"seven {name} must be in [0, 1), got {alpha}")
        check_count("seven pre_batches", pre_batches, 1, 100_000)
        self.variant, self.start, self.length = variant, start, length
        self.alpha1, self.alpha2, self.pre_batches = alpha1, alpha2, pre_batches
        self.window_start = 0
        self.window = 1
        self.keep_history: list[tuple[int, float]] = []  # (global step, keep fraction) per update
        self._context = None

    def prepare(self, context) -> None:
        self._context = context  # SEVEN_pre charges its passes here

    def on_run_start(self, state: TrainState) -> None:
        super().on_run_start(state)
        self.score = SevenScore(self._weights, self.alpha1, self.alpha2)
        if self.variant == "pre":
            self._prune_before_training(state)
            return
        self.start, self.length, self.window_start, self.window = run_window(self.start, self.length, state)

    def _masks(self) -> dict[str, torch.Tensor]:
        masks = self.masker.masks
        return masks if masks else {n: torch.ones_like(w, dtype=torch.bool) for n, w in self._weights.items()}

    def _update(self, t: int, step: int) -> None:
        masks = self._masks()
        self.score.update(t, masks)
        keep = keep_fraction(t, self.window, self.ratio)
        self._select(1.0 - keep, masks)
        self.keep_history.append((step, keep))
        if t == self.window - 1:
            self.score.release()

    def _select(self, sparsity: float, masks: dict[str, torch.Tensor]) -> None:
        ranking, flat = self.score.ranking(masks)
        self.masker.set(select_masks(ranking, sparsity, self.scope, flat=flat))

    def on_step_end(self, state: TrainState) -> None:
        if self.variant == "dyn":
            t = (state.step - 1) - self.window_start  # state.step counts the step just taken
            if 0 <= t < self.window:
                self._update(t, state.step)
        super().on_step_end(state)

    def on_run_end(self, state: TrainState) -> None:
        if self.variant == "dyn" and self.keep_history and self.keep_history[-1][1] > 1.0 - self.ratio:
            # a run cut short of the window's end (step budget) still ends at the target sparsity
            self._select(self.ratio, self._masks())
            self.score.release()
        super().on_run_end(state)

    def _prune_before_training(self, state: TrainState) -> None:
        """SEVEN_pre: score the pre-trained weights on ``pre_batches`` batches, no updates."""
        began = time.perf_counter()
        model, task, train = state.model, state.task, state.splits.train
        batch_size = task.recipe.batch_size
        order = torch.randperm(len(train), generator=self.generator(salt=1))
        self.window = self.pre_batches
        was_training = model.training
        model.train()
        passes = 0
        for t in range(self.pre_batches):
            first = (t * batch_size) % len(train)
            indices = order[first : first + batch_size].to(train.y.device)
            x = task.prepare_batch(train.x[indices], train=False, generator=None)
            model.zero_grad(set_to_none=True)
            task.per_sample_loss(model(x), train.y[indices]).mean().backward()
            self._update(t, step=0)
            passes += len(indices)
        model.zero_grad(set_to_none=True)
        model.train(was_training)
        if self._context is not None:
            self._context.charge(time.perf_counter() - began, passes, cached=False)

    def summary(self) -> dict[str, float]:
        out = super().summary()
        if self.keep_history:
            out["seven_window_first_step"] = float(self.keep_history[0][0])
            out["seven_window_last_step"] = float(self.keep_history[-1][0])
            out["seven_updates"] = float(len(self.keep_history))
        if self.variant == "dyn" and self.start is not None:
            out["seven_window_start_frac"], out["seven_window_length_frac"] = self.start, self.length
        return out
