"""PLATON: pruning large transformers with upper confidence bound of weight importance
(Zhang et al., ICML 2022, arXiv 2206.12562), pruning during fine-tuning.

``variant: official`` (default) is the official code, ``QingruZhang/PLATON`` ``Pruner.py``
(``update_and_pruning``, called after every ``optimizer.step()`` with the 0-based step ``t``).
For every prunable weight ``W`` with gradient ``G``, with ``t' = t mod deltaT``::

    t' = 0:  Ibar <- beta1 * Ibar + (1 - beta1) * I          (I: the last window's mean)
             U    <- beta2 * U    + (1 - beta2) * |I - Ibar|
             I    <- |W * G|
    t' > 0:  I    <- (t' * I + |W * G|) / (t' + 1)             (running mean over the window)
    score = Ibar * U

The kept fraction ``r_t`` follows the cubic schedule of the official code (``initial_threshold``
1 for ``initial_warmup * warmup_steps`` steps, then
``final + (1 - final) * (1 - (t - w0) / (T - w0 - w1))^3`` with masks set every ``deltaT``
steps, then ``final_threshold = 1 - ratio`` at every step of the last
``final_warmup * warmup_steps``); masks are one global cut over all pruned matrices. Its
constants are the README's GLUE commands': ``beta1`` 0.85, ``beta2`` 0.95, ``deltaT`` 10,
``initial_warmup`` 1, ``final_warmup`` 5; ``warmup_steps`` is a fraction of the run here (the
official code counts steps), default 0.05. The official code prunes the encoder's matrices
(names containing ``attention.self``, ``attention.output.dense``, ``output.dense``,
``intermediate.dense``), not the pooler: here every prunable weight except those whose name
contains ``pooler``.

Deliberate differences: the official code zeroes weights below the threshold after the step and
keeps no mask (the optimizer may move a zeroed weight again until the next masking step, and it
selects parameters by name substring, so matching biases are cut too); here a removed weight
stays removed (:class:`benchmark.api.masks.Masker`), only weights are pruned, and removed ones
rank below every live score. Counts follow ``count_rule``: ``harness`` removes
``round((1 - r) * n)`` (ties by index); ``reference`` removes the scores ``<`` the
``int(n * (1 - r))``-th smallest, as the official ``torch.kthvalue`` cut does (one fewer).

``variant: seven`` is the re-implementation in SEVEN's repository (``xiaojinying/SEVEN``,
``strategies/pruner.py``, ``pruning_algo: PLATON``), inside SEVEN's window (``start``,
``length``; see :mod:`methods.model.seven`) at every step::

    g = |W * G|;  m <- beta1 * m + (1 - beta1) * g;  v <- beta2 * v + (1 - beta2) * |g - m|
    score = m * v (0 where pruned)

with SEVEN's constants (``beta1`` 0.8, ``beta2`` 0.9, its ``alpha_1``/``alpha_2``), SEVEN's cubic
keep schedule, one global top-k, the pooler pruned; ``count_rule: reference`` keeps every score
``>=`` the ``int(keep * n)``-th largest (its ``fraction_threshold``).
"""
from __future__ import annotations

from benchmark.api.hooks import TrainState
from benchmark.api.lazy import lazy_import, no_grad
from benchmark.api.masks import Masker, flat_views, select_masks
from benchmark.api.method import ModelPruner, check_count
from benchmark.api.registry import register_method
from benchmark.api.sparsity_patterns import check_count_rule
from methods.model.movement import at_least_kth_mask, check_warmup, schedule_threshold
from methods.model.seven import check_window, keep_fraction, run_window

torch = lazy_import("torch")

VARIANTS = ("official", "seven")
DEFAULT_BETAS = {"official": (0.85, 0.95), "seven": (0.8, 0.9)}


def platon_schedule(step: int, total_steps: int, warmup_steps: float, final: float, initial_warmup: float,
                    final_warmup: float, delta_t: int) -> tuple[float, bool]:
    """(kept fraction, whether to mask) after 0-based ``step``, as the official
    ``schedule_threshold_comb`` (initial threshold 1)."""
    if step <= initial_warmup * warmup_steps:
        return 1.0, False
    if step > total_steps - final_warmup * warmup_steps:
        return final, True
    kept = schedule_threshold(step, total_steps, warmup_steps, 1.0, final, initial_warmup, final_warmup)
    return kept, step % delta_t == 0


def below_kth_removed(scores: torch.Tensor, removed: int) -> torch.Tensor:
    """The official cut: keep every score ``>=`` the ``removed``-th smallest."""
    if removed <= 0:
        return torch.ones_like(scores, dtype=torch.bool)
    return scores >= torch.kthvalue(scores.flatten(), removed).values


class PlatonScore:
    """The official code's three tensors per weight and their update (formula above)."""

    def __init__(self, weights: dict[str, torch.Tensor], beta1: float, beta2: float, delta_t: int):
        self.weights, self.beta1, self.beta2, self.delta_t = weights, beta1, beta2, delta_t
        self.ipt = {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights.items()}
        self.exp_avg_ipt = {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights.items()}
        self.exp_avg_unc = {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights.items()}

    @no_grad
    def update(self, step: int) -> None:
        local = step % self.delta_t
        for name, weight in self.weights.items():
            if weight.grad is None:
                continue
            current = (weight.detach() * weight.grad).abs().float()
            ipt = self.ipt[name]
            if local == 0:
                self.exp_avg_ipt[name].mul_(self.beta1).add_(ipt, alpha=1.0 - self.beta1)
                self.exp_avg_unc[name].mul_(self.beta2).add_((ipt - self.exp_avg_ipt[name]).abs_(),
                                                             alpha=1.0 - self.beta2)
                ipt.copy_(current)
            else:
                ipt.mul_(local).add_(current).div_(local + 1)

    def scores(self) -> dict[str, torch.Tensor]:
        return {n: self.exp_avg_ipt[n] * self.exp_avg_unc[n] for n in self.weights}


class SevenPlatonScore:
    """SEVEN's re-implementation: the EMAs at every step, score ``m * v``."""

    def __init__(self, weights: dict[str, torch.Tensor], beta1: float, beta2: float):
        self.weights, self.beta1, self.beta2 = weights, beta1, beta2
        self.m = {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights.items()}
        self.v = {n: torch.zeros_like(w, dtype=torch.float32) for n, w in weights.items()}

    @no_grad
    def update(self) -> None:
        for name, weight in self.weights.items():
            if weight.grad is None:
                continue
            g = (weight.grad * weight.detach()).abs().float()
            self.m[name].mul_(self.beta1).add_(g, alpha=1.0 - self.beta1)
            self.v[name].mul_(self.beta2).add_((g - self.m[name]).abs_(), alpha=1.0 - self.beta2)

    def scores(self) -> dict[str, torch.Tensor]:
        return {n: self.m[n] * self.v[n] for n in self.weights}


#: the base summary's figures, renamed for official PLATON: they count only the weights it prunes
OWN_FIGURES = {"realised_sparsity": "platon_pruned_layers_sparsity",
               "prunable_params": "platon_pruned_layers_params",
               "prunable_params_remaining": "platon_pruned_layers_params_remaining"}


@register_method("platon")
class Platon(ModelPruner):
    provenance = "reference-code"

    @classmethod
    def ratio_meaning(cls, settings: dict) -> str:
        if settings.get("variant", "official") == "official":
            return ("the fraction of the prunable weights outside the pooler removed (official PLATON leaves "
                    "the pooler dense, so the model's realised sparsity, in 'sparsity', is a little lower)")
        return "the fraction of prunable weights zeroed, the pooler included (SEVEN's re-implementation)"

    def __init__(self, ratio: float, seed: int = 0, *, variant: str = "official", beta1: float | None = None,
                 beta2: float | None = None, deltaT: int = 10, warmup_steps: float = 0.05,
                 initial_warmup: float = 1.0, final_warmup: float = 5.0, count_rule: str = "harness",
                 start: float | None = None, length: float | None = None):
        super().__init__(ratio, seed, scope="global")
        if variant not in VARIANTS:
            raise ValueError(f"platon variant {variant!r} is unknown; use 'official' (QingruZhang/PLATON) or "
                             f"'seven' (SEVEN repository's re-implementation)")
        default1, default2 = DEFAULT_BETAS[variant]
        beta1 = default1 if beta1 is None else beta1
        beta2 = default2 if beta2 is None else beta2
        for name, beta in (("beta1", beta1), ("beta2", beta2)):
            if not 0 < beta < 1:
                raise ValueError(f"platon {name} {beta!r} must be in (0, 1) (the official code: 0.85 and 0.95)")
        check_count("platon deltaT", deltaT, 1, 1_000_000)
        check_warmup("platon", warmup_steps, initial_warmup, final_warmup)
        check_count_rule("platon", count_rule)
        if start is not None or length is not None:
            if variant != "seven":
                raise ValueError("platon start/length set SEVEN's window: they apply to variant 'seven' only; "
                                 "variant 'official' uses warmup_steps, initial_warmup, final_warmup, deltaT")
            check_window(start if start is not None else 0.0, length if length is not None else 1e-9)
        self.variant, self.beta1, self.beta2, self.delta_t = variant, beta1, beta2, deltaT
        self.warmup_steps, self.initial_warmup, self.final_warmup = warmup_steps, initial_warmup, final_warmup
        self.count_rule, self.start, self.length = count_rule, start, length
        self.mask_steps: list[tuple[int, float]] = []  # (0-based step, kept fraction) of each masking
        self.window_start, self.window = 0, 1

    def on_run_start(self, state: TrainState) -> None:
        super().on_run_start(state)
        self.total_steps = state.total_steps
        if self.variant == "official":  # the official code leaves the pooler dense
            self._weights = {n: w for n, w in self._weights.items() if "pooler" not in n}
            if not self._weights:
                raise ValueError(f"platon on task {state.task.name!r}: no prunable weight outside the pooler")
            self.masker = Masker(self._weights)
            self.score = PlatonScore(self._weights, self.beta1, self.beta2, self.delta_t)
            return
        self.start, self.length, self.window_start, self.window = run_window(self.start, self.length, state)
        self.score = SevenPlatonScore(self._weights, self.beta1, self.beta2)

    def on_step_end(self, state: TrainState) -> None:
        step = state.step - 1
        if self.variant == "official":
            self.score.update(step)
            kept, mask_now = platon_schedule(step, self.total_steps, self.warmup_steps * self.total_steps,
                                             1.0 - self.ratio, self.initial_warmup, self.final_warmup,
                                             self.delta_t)
            if mask_now:
                self._mask(kept, step)
        else:
            t = step - self.window_start
            if 0 <= t < self.window:
                self.score.update()
                self._mask(keep_fraction(t, self.window, self.ratio), step)
        super().on_step_end(state)

    def on_run_end(self, state: TrainState) -> None:
        if not self.mask_steps or self.mask_steps[-1][1] > 1.0 - self.ratio:
            self._mask(1.0 - self.ratio, state.step)  # a run cut short still ends at the target
        super().on_run_end(state)

    def _mask(self, kept: float, step: int) -> None:
        masks = self.masker.masks
        scores = self.score.scores()
        if self.count_rule == "harness":
            ranking = {n: torch.where(masks[n], s, -1.0) if n in masks else s for n, s in scores.items()}
            self.masker.set(select_masks(ranking, 1.0 - kept, "global"))
        else:
            if self.variant == "seven":  # its pruned scores are 0, cut at the int(keep * n)-th largest
                scores = {n: torch.where(masks[n], s, 0.0) if n in masks else s for n, s in scores.items()}
            flat = torch.cat([s.flatten() for s in scores.values()])
            if self.variant == "seven":
                keep = at_least_kth_mask(flat, int(kept * flat.numel()))
            else:
                keep = below_kth_removed(flat, int(flat.numel() * (1.0 - kept)))
            self.masker.set(flat_views(keep, scores))
        self.mask_steps.append((step, kept))

    def summary(self) -> dict[str, float]:
        out = super().summary()
        if self.variant == "official":
            # figures over the weights PLATON prunes (the pooler apart), under names of their own: the
            # harness measures realised_sparsity over every prunable weight, the pooler included
            for key, own in OWN_FIGURES.items():
                out[own] = out.pop(key)
        out["platon_mask_updates"] = float(len(self.mask_steps))
        out["platon_variant_seven"] = float(self.variant == "seven")
        return out
