"""Movement pruning and soft movement pruning (Sanh, Wolf & Rush, NeurIPS 2020, arXiv 2005.07683),
pruning during fine-tuning, as Hugging Face's movement-pruning research code computes them.

``variant: paper`` (default), the reference ``huggingface/transformers``
``examples/research_projects/movement-pruning`` (``emmental/modules/binarizer.py``,
``masked_nn.py``, ``masked_run_glue.py``). Every prunable weight ``W`` has a score ``S``
(start 0, the reference's ``mask_init: constant``, ``mask_scale: 0``). The forward pass of step
``t`` uses ``W * M_t``; the straight-through gradient of the loss with respect to ``S`` is
``G * W`` (``G = dL/d(W * M)``, ``W`` as it was in that forward pass), so with plain SGD of
learning rate ``mask_scores_learning_rate`` (``lr``)::

    movement:       S <- S - lr * W * G                    (S = -lr * sum_t W_t * G_t)
    soft-movement:  S <- S - lr * (W * G + lambda_t * dR/dS)
                    R = mean over weight matrices of sum(sigmoid(S)) / numel   (l1 regularisation)

``movement`` keeps the top ``keep_t`` fraction of ``S`` in each weight matrix (the reference's
``TopKBinarizer``; ``scope: global`` ranks all matrices together); ``keep_t`` follows the reference's
``schedule_threshold``: ``initial_threshold`` for ``initial_warmup * warmup_steps`` steps,
then cubic, ``final + (initial - final) * (1 - (t - w0) / (T - w0 - w1))^3``, then
``final_threshold`` for the last ``final_warmup * warmup_steps`` steps (0-based ``t``; the
state is two float32 tensors per weight: ``S`` and the weight as the forward pass saw it); here
``initial_threshold = 1`` and ``final_threshold = 1 - ratio``. ``soft-movement`` keeps
``sigmoid(S) > tau_t`` (``selection: sigmoid_threshold``, the reference's
``sigmoied_threshold``: ``tau`` scheduled from ``initial_threshold`` 0 to ``final_threshold``
0.1, at least 0.5% of each matrix kept; the final sparsity follows from ``final_lambda``, not
from ``ratio``) or, by default (``selection: topk``), the scheduled top ``keep_t`` of ``S``
over all matrices, so the run ends at ``ratio`` like every other cell. In both,
``lambda_t = final_lambda * threshold_t / final_threshold``.

``warmup_steps`` is a fraction of the run here (the reference counts steps: 5400 of about
55000 in its SQuAD commands, 0.1), so a shortened run keeps the schedule's shape.

Deliberate differences, all from the harness's masks being permanent (a removed weight is
zeroed and never returns, :class:`benchmark.api.masks.Masker`): a pruned weight's score stops
moving (``W = 0``), where the reference keeps the weight and its score may bring it back; a
removed weight ranks below every live one. Scores use plain SGD (the reference trains them with AdamW,
``mask_scores_learning_rate`` 1e-2); for ``movement`` the learning rate does not change the
ranking, and SGD makes the score the paper's accumulated ``-sum W * G``. Counts follow
``count_rule``: ``harness`` removes ``round((1 - keep) * n)``, ``reference`` keeps
``int(keep * n)`` as ``TopKBinarizer`` does (ties: the harness keeps the later index; the
reference's descending sort decides); for ``soft-movement``'s top-k, ``reference`` keeps
``int(keep * n) + 1`` as the reference's ``global_topk`` threshold does.

``variant: seven`` is what SEVEN's repository (``xiaojinying/SEVEN``, ``strategies/pruner.py``)
runs as its "movement" baseline, in SEVEN's window (``start``, ``length``; see
:mod:`methods.model.seven`): after each optimizer step the score is the per-step
``|W * G|`` (no accumulation, pruned weights scored 0), one global top-k on SEVEN's cubic keep
schedule. ``count_rule: reference`` keeps every score ``>=`` the ``int(keep * n)``-th largest as
its ``fraction_threshold`` does. SEVEN's soft movement adds ``r * sum sigmoid(G * W) / n`` to
the loss, built from the gradient with ``create_graph``: a second-order term the training hooks
cannot add, so ``soft-movement`` has no ``seven`` variant.
"""
from __future__ import annotations

import math

from benchmark.api.hooks import TrainState
from benchmark.api.lazy import lazy_import, no_grad
from benchmark.api.masks import flat_views, select_masks
from benchmark.api.method import ModelPruner
from benchmark.api.registry import register_method
from benchmark.api.sparsity_patterns import check_count_rule
from methods.model.seven import check_window, keep_fraction, run_window

torch = lazy_import("torch")

VARIANTS = ("paper", "seven")
SELECTIONS = ("topk", "sigmoid_threshold")
PRUNED = -math.inf  # a removed weight's rank: below every live score


def schedule_threshold(step: int, total_steps: int, warmup_steps: float, initial: float, final: float,
                       initial_warmup: float, final_warmup: float) -> float:
    """The reference's cubic schedule of the threshold at 0-based ``step`` of ``total_steps``
    (``warmup_steps`` in steps)."""
    if step <= initial_warmup * warmup_steps:
        return initial
    if step > total_steps - final_warmup * warmup_steps:
        return final
    progress = (step - initial_warmup * warmup_steps) / (total_steps - (initial_warmup + final_warmup) * warmup_steps)
    return final + (initial - final) * (1.0 - progress) ** 3


def check_warmup(method: str, warmup_steps: float, initial_warmup: float, final_warmup: float) -> None:
    if not 0 <= warmup_steps < 1:
        raise ValueError(f"{method} warmup_steps {warmup_steps!r} is a fraction of the run's steps: use a value "
                         f"in [0, 1) (the reference's 5400 of ~55000 steps is 0.1)")
    for name, value in (("initial_warmup", initial_warmup), ("final_warmup", final_warmup)):
        if value < 0:
            raise ValueError(f"{method} {name} {value!r} must be >= 0 (a multiple of warmup_steps)")
    if (initial_warmup + final_warmup) * warmup_steps >= 1:
        raise ValueError(f"{method}: (initial_warmup + final_warmup) * warmup_steps = "
                         f"{(initial_warmup + final_warmup) * warmup_steps:g} leaves no pruning steps; "
                         f"make it < 1 (fractions of the run)")


def top_count_mask(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """``TopKBinarizer``'s count: keep exactly the ``keep`` highest scores (stable sort, so
    among equal scores the lower flat index stays)."""
    flat = scores.flatten()
    order = torch.sort(flat, descending=True, stable=True).indices
    mask = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    mask[order[:keep]] = True
    return mask.view(scores.shape)


def at_least_kth_mask(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """SEVEN's ``fraction_threshold`` cut: keep every score ``>=`` the ``keep``-th largest."""
    flat = scores.flatten()
    if keep <= 0:
        return torch.zeros_like(scores, dtype=torch.bool)
    threshold = torch.topk(flat, keep).values[-1]
    return scores >= threshold


class _Movement(ModelPruner):
    """Shared machinery of ``movement`` and ``soft-movement``."""

    provenance = "reference-code"
    soft = False

    def __init__(self, ratio: float, seed: int = 0, *, scope: str | None = None, variant: str = "paper",
                 warmup_steps: float = 0.1, initial_warmup: float = 1.0, final_warmup: float = 2.0,
                 mask_scores_learning_rate: float = 1e-2, count_rule: str = "harness",
                 start: float | None = None, length: float | None = None):
        name = self.name or "movement"
        if variant not in VARIANTS:
            raise ValueError(f"{name} variant {variant!r} is unknown; use 'paper' (Sanh et al., Hugging Face's "
                             f"research code) or 'seven' (SEVEN repository's per-step |W * G|)")
        if scope is None:  # the references' own: per matrix (TopKBinarizer), global (SEVEN)
            scope = "layer" if variant == "paper" and not self.soft else "global"
        super().__init__(ratio, seed, scope=scope)
        check_warmup(name, warmup_steps, initial_warmup, final_warmup)
        if not mask_scores_learning_rate > 0:
            raise ValueError(f"{name} mask_scores_learning_rate {mask_scores_learning_rate!r} must be > 0")
        check_count_rule(name, count_rule)
        if start is not None or length is not None:
            if variant != "seven":
                raise ValueError(f"{name} start/length set SEVEN's window: they apply to variant 'seven' only; "
                                 f"variant 'paper' uses warmup_steps, initial_warmup, final_warmup")
            check_window(start if start is not None else 0.0, length if length is not None else 1e-9)
        self.variant, self.count_rule = variant, count_rule
        self.warmup_steps, self.initial_warmup, self.final_warmup = warmup_steps, initial_warmup, final_warmup
        self.lr = mask_scores_learning_rate
        self.start, self.length = start, length
        self.scores: dict[str, torch.Tensor] = {}
        self._before: dict[str, torch.Tensor] = {}  # each weight as the forward pass saw it
        self._handles: list = []
        self.updates = 0
        self._skipped = None  # steps skipped for non-finite gradients, a device counter
        self.window_start, self.window = 0, 1

    # -- the schedule ---------------------------------------------------------------------------
    def keep_at(self, step: int) -> float:
        """The kept fraction (top-k) for the forward pass of 0-based ``step``."""
        return schedule_threshold(step, self.total_steps, self.warmup_steps * self.total_steps, 1.0,
                                  1.0 - self.ratio, self.initial_warmup, self.final_warmup)

    # -- hooks ----------------------------------------------------------------------------------
    def on_run_start(self, state: TrainState) -> None:
        super().on_run_start(state)
        self.total_steps = state.total_steps
        if self.variant == "seven":
            self.start, self.length, self.window_start, self.window = run_window(self.start, self.length, state)
            return
        self.scores = {n: torch.zeros_like(w, dtype=torch.float32) for n, w in self._weights.items()}
        self._before = {n: torch.empty_like(w, dtype=torch.float32) for n, w in self._weights.items()}
        # registered before the Masker's own gradient hooks: the weight is still the one the
        # forward pass used (the optimizer steps after backward)
        self._handles = [w.register_hook(self._remember(n)) for n, w in self._weights.items()]

    def _remember(self, name: str):
        def hook(grad):
            self._before[name].copy_(self._weights[name].detach())
            return grad
        return hook

    def on_step_end(self, state: TrainState) -> None:
        if self.variant == "seven":
            t = (state.step - 1) - self.window_start
            if 0 <= t < self.window:
                self._seven_update(t)
        else:
            self._paper_update(state.step - 1)
        super().on_step_end(state)

    def on_run_end(self, state: TrainState) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self.variant == "seven" and self.updates < self.window:
            self._seven_update(None)  # a run cut short of the window still ends at the target
        elif self.variant == "paper":
            self._finish()
        super().on_run_end(state)

    # -- paper ----------------------------------------------------------------------------------
    @no_grad
    def _paper_update(self, step: int) -> None:
        """Fold in step ``step``'s gradients, then set the mask for the next forward pass."""
        grads = {n: w.grad for n, w in self._weights.items() if w.grad is not None}
        if not grads:
            return
        # a step the loss scaler skipped (non-finite gradients) moves no score either; decided
        # on the device, so nothing is read back to the host inside the step
        finite = torch.stack([torch.isfinite(g).all() for g in grads.values()]).all()
        self._skipped = self._skipped + (~finite).int() if self._skipped is not None else (~finite).int()
        regulariser = self._regulariser_gradients(step)
        for name, grad in grads.items():
            delta = self._before[name] * grad.float()
            if name in regulariser:
                delta.add_(regulariser[name])
            self.scores[name].sub_(torch.where(finite, delta, 0.0), alpha=self.lr)
        self.updates += 1
        self._paper_mask(step + 1)

    def _regulariser_gradients(self, step: int) -> dict[str, torch.Tensor]:
        return {}

    def _paper_mask(self, step: int) -> None:
        keep = self.keep_at(step)
        if keep < 1.0:
            self._select(self._ranking(), keep)

    def _finish(self) -> None:
        self._paper_mask(self.total_steps)

    def _ranking(self) -> dict[str, torch.Tensor]:
        masks = self.masker.masks
        return {n: torch.where(masks[n], s, PRUNED) if n in masks else s for n, s in self.scores.items()}

    def _select(self, ranking: dict[str, torch.Tensor], keep: float) -> None:
        if self.count_rule == "harness":
            self.masker.set(select_masks(ranking, 1.0 - keep, self.scope))
            return
        cut = self._reference_cut()
        if self.scope == "layer":
            self.masker.set({n: cut(s, int(keep * s.numel())) for n, s in ranking.items()})
            return
        flat = torch.cat([s.flatten() for s in ranking.values()])
        self.masker.set(flat_views(cut(flat, int(keep * flat.numel())), ranking))

    def _reference_cut(self):
        """How the reference counts: ``TopKBinarizer`` (paper), ``fraction_threshold`` (SEVEN)."""
        return top_count_mask if self.variant == "paper" else at_least_kth_mask

    # -- SEVEN's "movement" ---------------------------------------------------------------------
    @no_grad
    def _seven_ranking(self) -> dict[str, torch.Tensor]:
        masks = self.masker.masks
        out = {}
        for name, weight in self._weights.items():
            grad = weight.grad
            score = (weight.detach() * grad).abs().float() if grad is not None else torch.zeros_like(
                weight, dtype=torch.float32)
            out[name] = torch.where(masks[name], score, 0.0) if name in masks else score
        return out

    def _seven_update(self, t: int | None) -> None:
        """SEVEN's selection at window step ``t`` (None: at the target)."""
        keep = keep_fraction(t, self.window, self.ratio) if t is not None else 1.0 - self.ratio
        ranking = self._seven_ranking()
        if self.count_rule == "harness":  # pruned below live ones scoring 0
            masks = self.masker.masks
            ranking = {n: torch.where(masks[n], s, -1.0) if n in masks else s for n, s in ranking.items()}
        self._select(ranking, keep)
        self.updates += 1

    def summary(self) -> dict[str, float]:
        out = super().summary()
        out[f"{self.name}_updates"] = float(self.updates)
        out[f"{self.name}_variant_seven"] = float(self.variant == "seven")
        if self._skipped is not None:
            out[f"{self.name}_skipped_steps"] = float(self._skipped)
        return out


@register_method("movement")
class Movement(_Movement):
    pass


@register_method("soft-movement")
class SoftMovement(_Movement):
    soft = True

    def __init__(self, ratio: float, seed: int = 0, *, scope: str | None = None, variant: str = "paper",
                 selection: str = "topk", final_lambda: float = 400.0, initial_threshold: float = 0.0,
                 final_threshold: float = 0.1, warmup_steps: float = 0.1, initial_warmup: float = 1.0,
                 final_warmup: float = 2.0, mask_scores_learning_rate: float = 1e-2, count_rule: str = "harness"):
        if variant == "seven":
            raise ValueError("soft-movement variant 'seven' is not offered: SEVEN's soft movement adds "
                             "r * sum(sigmoid(G * W)) / n to the loss through a second-order gradient "
                             "(create_graph), which the training hooks cannot add; use variant 'paper', or "
                             "method 'movement' with variant 'seven' for SEVEN's per-step |W * G|")
        if selection not in SELECTIONS:
            raise ValueError(f"soft-movement selection {selection!r} is unknown; use 'topk' (scheduled top-k, "
                             f"ends at ratio) or 'sigmoid_threshold' (sigmoid(S) > tau, the reference's "
                             f"sigmoied_threshold; sparsity set by final_lambda)")
        if not final_lambda >= 0:
            raise ValueError(f"soft-movement final_lambda {final_lambda!r} must be >= 0")
        if selection == "sigmoid_threshold" and not 0 <= initial_threshold <= final_threshold < 1:
            raise ValueError(f"soft-movement initial_threshold {initial_threshold!r} and final_threshold "
                             f"{final_threshold!r} are sigmoid levels: need 0 <= initial <= final < 1 "
                             f"(the reference: 0 and 0.1)")
        if selection == "sigmoid_threshold" and final_threshold == 0:
            raise ValueError("soft-movement final_threshold 0 divides lambda_t = final_lambda * tau_t / "
                             "final_threshold; use a value in (0, 1), the reference's 0.1")
        super().__init__(ratio, seed, scope=scope, variant=variant, warmup_steps=warmup_steps,
                         initial_warmup=initial_warmup, final_warmup=final_warmup,
                         mask_scores_learning_rate=mask_scores_learning_rate, count_rule=count_rule)
        self.selection, self.final_lambda = selection, final_lambda
        self.initial_threshold, self.final_threshold = initial_threshold, final_threshold

    def threshold_at(self, step: int) -> tuple[float, float]:
        """(threshold, lambda) for the forward pass of 0-based ``step``: the threshold is the
        kept fraction (``topk``) or the sigmoid level tau (``sigmoid_threshold``)."""
        if self.selection == "topk":
            threshold, final = self.keep_at(step), 1.0 - self.ratio
        else:
            final = self.final_threshold
            threshold = schedule_threshold(step, self.total_steps, self.warmup_steps * self.total_steps,
                                           self.initial_threshold, final, self.initial_warmup, self.final_warmup)
        return threshold, self.final_lambda * threshold / final

    def _regulariser_gradients(self, step: int) -> dict[str, torch.Tensor]:
        """lambda_t * dR/dS with R = mean over matrices of sum(sigmoid(S)) / numel."""
        _, lam = self.threshold_at(step)
        if lam == 0:
            return {}
        count = len(self.scores)
        out = {}
        for name, score in self.scores.items():
            sig = torch.sigmoid(score)
            out[name] = sig.mul_(1.0 - sig).mul_(lam / (score.numel() * count))
        return out

    def _paper_mask(self, step: int) -> None:
        threshold, _ = self.threshold_at(step)
        if self.selection == "topk":
            if threshold < 1.0:
                self._select(self._ranking(), threshold)
            return
        if threshold <= 0:
            return  # sigmoid(S) > 0 everywhere
        self.masker.set({n: sigmoid_keep_mask(s, threshold) for n, s in self._ranking().items()})

    def _reference_cut(self):
        return global_topk_mask  # the reference ranks a threshold method's scores with global_topk

    def summary(self) -> dict[str, float]:
        out = super().summary()
        out["soft-movement_selection_topk"] = float(self.selection == "topk")
        return out


def global_topk_mask(scores: torch.Tensor, keep: int) -> torch.Tensor:
    """The reference's ``global_topk`` cut for ``keep = int(n * keep_fraction)``: keep the scores
    above the ``max(n - (keep + 1), 1)``-th smallest, i.e. ``keep + 1`` of them (one more)."""
    flat = scores.flatten()
    n = flat.numel()
    return scores > flat.kthvalue(max(n - (keep + 1), 1)).values


def sigmoid_keep_mask(scores: torch.Tensor, tau: float) -> torch.Tensor:
    """The reference's ``ThresholdBinarizer`` with sigmoid: ``sigmoid(S) > tau``, but at least
    ``int(0.005 * n) + 1`` entries of the matrix kept (then ``S`` above its
    ``(n - that)``-th smallest)."""
    n = scores.numel()
    least = int(0.005 * n) + 1
    mask = torch.sigmoid(scores) > tau
    floor = scores > scores.flatten().kthvalue(max(n - least, 1)).values
    return torch.where(mask.sum() < least, floor, mask)  # chosen on the device: no read-back
