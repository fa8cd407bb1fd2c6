"""Magnitude pruning: remove the weights of smallest |w|.

``schedule``:
- ``oneshot``: prune once, before the first step (for pre-trained models: before
  fine-tuning), then train with the mask fixed. Masks agree exactly with
  ``torch.nn.utils.prune.global_unstructured(..., L1Unstructured, amount=ratio)``.
- ``gradual``: Zhu & Gupta's cubic schedule, sparsity ``s_f * (1 - (1 - p)^3)`` at
  progress ``p`` through a window from ``start`` to ``end`` of the training steps,
  updated at ``updates`` evenly spaced steps; the last update (at ``end``) reaches
  ``ratio`` exactly, then training goes on with the mask fixed.
- ``auto`` (default): ``oneshot`` for tasks that fine-tune a pre-trained model,
  ``gradual`` for models trained from scratch (docs/methods.md).

``scope`` is ``global`` (one threshold over all prunable weights) or ``layer``.
"""
from __future__ import annotations


from benchmark.api.hooks import TrainState
from benchmark.api.masks import concatenated, flat_views, global_masks, select_masks
from benchmark.api.method import ModelPruner, check_count
from benchmark.api.registry import register_method

SCHEDULES = ("auto", "oneshot", "gradual")


def cubic_sparsity(step: int, final: float, start_step: int, end_step: int) -> float:
    """Zhu & Gupta: 0 before ``start_step``, ``final`` from ``end_step`` on, cubic in between."""
    if step <= start_step:
        return 0.0
    if step >= end_step:
        return final
    progress = (step - start_step) / (end_step - start_step)
    return final * (1.0 - (1.0 - progress) ** 3)


@register_method("magnitude")
class Magnitude(ModelPruner):
    provenance = "reference-code"

    def __init__(self, ratio: float, seed: int = 0, *, scope: str = "global", schedule: str = "auto",
                 start: float = 0.1, end: float = 0.6, updates: int = 20):
        super().__init__(ratio, seed, scope=scope)
        if schedule not in SCHEDULES:
            raise ValueError(f"magnitude schedule {schedule!r} is unknown; use one of {SCHEDULES}")
        if not 0 <= start < end <= 1:
            raise ValueError(f"need 0 <= start < end <= 1 (fractions of training steps), got {start}, {end}")
        check_count("updates", updates, 1, 100_000)
        self.schedule, self.start, self.end, self.updates = schedule, start, end, updates
        self.update_steps: dict[int, float] = {}

    def prune_to(self, sparsity: float) -> None:
        # re-zero first: since the last enforce, optimizer momentum may have moved pruned
        # weights off zero, and they must not outrank weights that are still alive
        self.masker.enforce()
        if self.scope == "global":  # one |w| vector, no per-tensor copies on the way
            flat = concatenated(self._weights).abs_()
            self.masker.set(global_masks(flat_views(flat, self._weights), sparsity, flat=flat))
            return
        scores = {name: w.detach().abs() for name, w in self._weights.items()}
        self.masker.set(select_masks(scores, sparsity, self.scope))

    def on_run_start(self, state: TrainState) -> None:
        super().on_run_start(state)
        schedule = self.schedule
        if schedule == "auto":
            schedule = "oneshot" if state.task.pretrained else "gradual"
        self.resolved_schedule = schedule
        if schedule == "oneshot":
            self.prune_to(self.ratio)
            return
        first = round(self.start * state.total_steps)
        last = max(first + 1, round(self.end * state.total_steps))
        steps = {first + round((last - first) * (i + 1) / self.updates) for i in range(self.updates)}
        self.update_steps = {s: cubic_sparsity(s, self.ratio, first, last) for s in sorted(steps)}

    def on_step_end(self, state: TrainState) -> None:
        target = self.update_steps.get(state.step)
        if target is not None:
            self.prune_to(target)
        super().on_step_end(state)

    def on_run_end(self, state: TrainState) -> None:
        if self.update_steps and state.step < max(self.update_steps):
            # a run shorter than planned (e.g. step budget cut) still ends at the target sparsity
            self.prune_to(self.ratio)
        super().on_run_end(state)
