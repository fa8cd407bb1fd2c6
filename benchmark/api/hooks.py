"""The points where methods (and tracking) plug into the training loop.

Order inside one run::

    on_run_start
    for each epoch:
        on_epoch_start            -> may return the sample indices to train on
        for each batch:
            forward
            on_batch_loss         -> sees per-sample losses and logits with indices;
                                     may return per-sample loss weights
            backward, optimizer.step()
            on_step_end           -> gradients are still in .grad
        evaluate on validation
        on_epoch_end
    on_run_end
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch only in annotations: the leaderboard imports this module (via tracking) without it
    import torch
    from torch import nn

    from .task import Splits, Task


@dataclass
class TrainState:
    """What a hook may read (and, for ``active``, change) during a run."""

    model: "nn.Module"
    optimizer: torch.optim.Optimizer
    task: "Task"
    splits: "Splits"
    device: torch.device
    epochs: int
    total_steps: int
    steps_per_full_epoch: int
    epoch: int = 0
    step: int = 0
    sample_passes: int = 0  # forward+backward passes over single samples
    history: list[dict[str, float]] = field(default_factory=list)
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def n_train(self) -> int:
        return len(self.splits.train)


class Hook:
    """Base class: every hook point is a no-op. Override what you need."""

    #: set True to receive penultimate ``features`` in :meth:`on_batch_loss`
    wants_features: bool = False

    def on_run_start(self, state: TrainState) -> None:
        pass

    def on_epoch_start(self, state: TrainState) -> torch.Tensor | None:
        """Return a 1-D tensor of training-set indices to use this epoch, or None for all."""
        return None

    def on_batch_loss(
        self,
        state: TrainState,
        indices: torch.Tensor,
        logits: torch.Tensor,
        losses: torch.Tensor,
        targets: torch.Tensor,
        features: torch.Tensor | None,
    ) -> torch.Tensor | None:
        """See per-sample ``losses`` (detached) for the samples at ``indices``.
        Return per-sample loss weights, or None for uniform weights."""
        return None

    def on_step_end(self, state: TrainState) -> None:
        pass

    def on_epoch_end(self, state: TrainState, metrics: dict[str, float]) -> None:
        pass

    def on_run_end(self, state: TrainState) -> None:
        pass
