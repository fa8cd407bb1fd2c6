"""What a method's ``prepare`` step may use: proxy training through the one trainer,
prediction on a split, a cache for scores, and the ledger of the method's own cost."""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..api.hooks import Hook
from ..api.task import Split, Splits, Task
from .trainer import Trainer


@dataclass
class RunContext:
    task: Task
    splits: Splits
    device: torch.device
    seed: int
    cache_dir: Path
    scoring_seconds: float = 0.0  # charged to the method, even when read from the cache
    scoring_sample_passes: int = 0  # forward+backward passes (proxy training, SEVEN_pre's scoring)
    scoring_forward_passes: int = 0  # forward-only passes (predicting on the training set to score it)
    scores_cached: bool = False
    proxy_hooks: list[Hook] = field(default_factory=list)  # observers of proxy training (progress lines)
    # the work done through this context, counted by the harness: what the method charges is raised
    # to at least these (floor_to_measured), so a method cannot charge less than it used
    measured_sample_passes: int = 0
    measured_forward_passes: int = 0
    measured_seconds: float = 0.0

    def train_proxy(self, seed: int, epochs: int, hooks: list[Hook] = ()) -> tuple[nn.Module, int]:
        """Train a fresh model on all training data for ``epochs`` epochs (no evaluation), with
        ``hooks`` observing it (a dynamics recorder). Returns the model and the sample-passes it cost."""
        began = time.perf_counter()
        trainer = Trainer(self.task, self.splits, self.device, seed=seed, epochs=epochs, evaluate_each_epoch=False,
                          hooks=[*self.proxy_hooks, *hooks])
        model = trainer.build_model()
        result = trainer.fit(model)
        self.measured_sample_passes += result.state.sample_passes
        self.measured_seconds += time.perf_counter() - began
        return model, result.state.sample_passes

    def predict(self, model: nn.Module, split: Split | None = None, reduce=None) -> torch.Tensor:
        """Unaugmented eval-mode logits for ``split`` (default: train), in order, or the
        per-batch ``reduce(logits, targets)`` of them (see :meth:`Trainer.predict`)."""
        began = time.perf_counter()
        split = split if split is not None else self.splits.train
        out = Trainer(self.task, self.splits, self.device, seed=self.seed).predict(model, split, reduce)
        self.measured_forward_passes += len(split)
        self.measured_seconds += time.perf_counter() - began
        return out

    def cache_path(self, kind: str, key: dict[str, Any]) -> Path:
        """A file path unique to ``kind`` and ``key`` (which should name task, profile, seed and settings)."""
        digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
        return self.cache_dir / kind / f"{digest}.pt"

    def charge(self, seconds: float, sample_passes: int, cached: bool, forward_passes: int = 0) -> None:
        """Charge the method's own work; cached work is charged the passes it took to compute,
        so a leaderboard never shows scoring as free because another cell paid for it (its
        seconds are re-estimated from the cell's own speed, see :mod:`benchmark.sweeps.execute`)."""
        self.scoring_seconds += seconds
        self.scoring_sample_passes += sample_passes
        self.scoring_forward_passes += forward_passes
        self.scores_cached = self.scores_cached or cached

    def floor_to_measured(self) -> None:
        """Raise the charged passes (and, for work not read from a cache, seconds) to what the
        harness counted through this context: a method may charge more (work it did on its own,
        scores from the cache), never less."""
        self.scoring_sample_passes = max(self.scoring_sample_passes, self.measured_sample_passes)
        self.scoring_forward_passes = max(self.scoring_forward_passes, self.measured_forward_passes)
        if not self.scores_cached:
            self.scoring_seconds = max(self.scoring_seconds, self.measured_seconds)
