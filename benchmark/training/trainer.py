"""The one training loop every task and method goes through.

Data stays in memory as tensors (on the training device); batches are index
slices, augmentation runs on whole batches as tensor ops, and there are no
DataLoader workers. Randomness comes from three seeded generators (model init,
batch order, augmentation), so a CPU run is reproducible from its seed.
"""
from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass

import torch
from torch import nn

from ..api.contract import check_indices, check_weights, third_party
from ..api.hooks import Hook, TrainState
from ..api.task import BUDGETS, Split, Splits, Task


def resolve_device(name: str = "auto") -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    return torch.device(name)


def autocast_for(device: torch.device):
    """Mixed precision where the device supports it: bf16 (else fp16) autocast on CUDA, none elsewhere."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16)
    return contextlib.nullcontext()


def grad_scaler_for(device: torch.device) -> torch.amp.GradScaler:
    """Loss scaling is needed only for fp16 autocast (CUDA without bf16); disabled it is a pass-through."""
    fp16 = device.type == "cuda" and not torch.cuda.is_bf16_supported()
    return torch.amp.GradScaler(device.type, enabled=fp16)


def lr_factor(schedule: str, progress: float, milestones: tuple[float, ...], gamma: float) -> float:
    """Multiplier of the base learning rate at ``progress`` in [0, 1] of the run."""
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    if schedule == "step":
        return gamma ** sum(progress >= m for m in milestones)
    if schedule == "constant":
        return 1.0
    raise ValueError(f"unknown schedule {schedule!r}; use cosine, step or constant")


def build_optimizer(model: nn.Module, task: Task) -> torch.optim.Optimizer:
    r = task.recipe
    if r.optimizer == "sgd":
        return torch.optim.SGD(
            model.parameters(), lr=r.lr, momentum=r.momentum, nesterov=r.nesterov and r.momentum > 0,
            weight_decay=r.weight_decay,
        )
    if r.optimizer == "adamw":
        return torch.optim.AdamW(model.parameters(), lr=r.lr, weight_decay=r.weight_decay)
    raise ValueError(f"unknown optimizer {r.optimizer!r}; use sgd or adamw")


class LossTally:
    """One epoch's training loss, kept on the device so that a step never waits for it:
    the sum of per-sample losses, and the first step whose loss was not finite.
    :meth:`read` is the epoch's one synchronisation."""

    def __init__(self, device: torch.device):
        self.total = torch.zeros((), dtype=torch.float64, device=device)
        self.bad_step = torch.full((), -1, dtype=torch.int64, device=device)
        self.bad_value = torch.zeros((), dtype=torch.float32, device=device)

    def add(self, loss: torch.Tensor, losses: torch.Tensor, step: int) -> None:
        """``loss`` is the step's objective, ``losses`` its per-sample losses."""
        first_bad = ~torch.isfinite(loss.detach()) & (self.bad_step < 0)
        self.bad_step = torch.where(first_bad, step, self.bad_step)
        self.bad_value = torch.where(first_bad, loss.detach().float(), self.bad_value)
        self.total += losses.detach().mean().double() * len(losses)  # as a float64 sum of batch means

    def read(self, epoch: int) -> float:
        """The epoch's summed loss; raises if any step's loss was NaN or infinite."""
        bad_step, bad_value, total = (t.item() for t in (self.bad_step, self.bad_value, self.total))
        if bad_step >= 0:
            raise FloatingPointError(f"non-finite training loss {bad_value} at epoch {epoch}, step {bad_step}")
        return total


@dataclass
class TrainResult:
    state: TrainState
    train_seconds: float
    eval_seconds: float
    active_sizes: list[int]


class Trainer:
    def __init__(
        self,
        task: Task,
        splits: Splits,
        device: torch.device,
        seed: int,
        hooks: list[Hook] = (),
        budget: str = "epochs",
        epochs: int | None = None,
        evaluate_each_epoch: bool = True,
    ):
        if budget not in BUDGETS:
            raise ValueError(f"budget {budget!r} is unknown; use one of {BUDGETS}")
        self.task = task
        self.splits = splits
        self.device = device
        self.seed = seed
        self.hooks = list(hooks)
        self.budget = budget
        self.epochs = epochs if epochs is not None else task.recipe.epochs
        self.evaluate_each_epoch = evaluate_each_epoch

    def build_model(self) -> nn.Module:
        """A fresh model, initialised from the seed alone."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            model = self.task.build_model()
        return model.to(self.device)

    def fit(self, model: nn.Module) -> TrainResult:
        """Train ``model`` for the run's epochs (or steps), calling the hooks; the loop itself."""
        state = self._initial_state(model)
        self.scaler = grad_scaler_for(self.device)
        order_gen = torch.Generator().manual_seed(self.seed * 2 + 1)
        aug_gen = torch.Generator(device=self.device).manual_seed(self.seed * 2 + 2)
        active_sizes: list[int] = []
        eval_seconds = 0.0
        start = time.perf_counter()

        for hook in self.hooks:
            third_party(hook, "on_run_start", hook.on_run_start, state)
        while not self._finished(state):
            epoch_start = time.perf_counter()
            active = self._active_samples(state)
            active_sizes.append(len(active))
            order = active[torch.randperm(len(active), generator=order_gen)]
            metrics = {"train_loss": self._train_epoch(state, order, aug_gen),
                       "lr": state.optimizer.param_groups[0]["lr"], "active_samples": float(len(active))}
            eval_seconds += self._validate(model, metrics)
            metrics["epoch_seconds"] = time.perf_counter() - epoch_start
            state.history.append(metrics)
            for hook in self.hooks:
                third_party(hook, "on_epoch_end", hook.on_epoch_end, state, metrics)
            state.epoch += 1
        for hook in self.hooks:
            third_party(hook, "on_run_end", hook.on_run_end, state)
        total = time.perf_counter() - start
        return TrainResult(state, total - eval_seconds, eval_seconds, active_sizes)

    def _initial_state(self, model: nn.Module) -> TrainState:
        n, batch_size = len(self.splits.train), self.task.recipe.batch_size
        steps_per_full_epoch = math.ceil(n / batch_size)
        return TrainState(
            model=model, optimizer=build_optimizer(model, self.task), task=self.task, splits=self.splits,
            device=self.device, epochs=self.epochs, total_steps=self.epochs * steps_per_full_epoch,
            steps_per_full_epoch=steps_per_full_epoch,
        )

    def _active_samples(self, state: TrainState) -> torch.Tensor:
        """The training indices of this epoch: every sample, unless a hook chooses (the last one
        that returns indices wins)."""
        n = len(self.splits.train)
        active = torch.arange(n)
        for hook in self.hooks:
            chosen = third_party(hook, "on_epoch_start", hook.on_epoch_start, state)
            if chosen is not None:  # checked where received: the kept fraction is counted from it
                active = check_indices(chosen, n, hook)
        if len(active) == 0:
            raise RuntimeError(f"epoch {state.epoch}: the hooks selected no training samples")
        return active

    def _train_epoch(self, state: TrainState, order: torch.Tensor, aug_gen: torch.Generator) -> float:
        """One pass over ``order`` in batches; the epoch's mean training loss per sample."""
        batch_size = self.task.recipe.batch_size
        # the epoch's order goes to the data's device once, not one blocking copy per step
        data_order = order.to(self.splits.train.y.device, non_blocking=True)
        wants_features = any(h.wants_features for h in self.hooks)
        state.model.train()
        tally, seen = LossTally(self.device), 0
        batches = math.ceil(len(order) / batch_size)
        for batch_no in range(batches):
            if self.budget == "steps" and state.step >= state.total_steps:
                break
            batch = slice(batch_no * batch_size, (batch_no + 1) * batch_size)
            self._set_lr(state.optimizer, self._progress(state, batch_no, batches))
            self._step(state, order[batch], data_order[batch], tally, aug_gen, wants_features)
            seen += len(order[batch])
        return tally.read(state.epoch) / max(seen, 1)

    def _validate(self, model: nn.Module, metrics: dict[str, float]) -> float:
        """Add the epoch's validation metrics (``val_*``) when the run evaluates each epoch;
        the seconds it took, which are not training time."""
        if not (self.evaluate_each_epoch and len(self.splits.val)):
            return 0.0
        start = time.perf_counter()
        metrics.update({f"val_{k}": v for k, v in self.evaluate(model, self.splits.val).items()})
        return time.perf_counter() - start

    def _finished(self, state: TrainState) -> bool:
        if self.budget == "steps":
            return state.step >= state.total_steps
        return state.epoch >= self.epochs

    def _progress(self, state: TrainState, batch_no: int, batches: int) -> float:
        """Fraction of the run done; drives the learning-rate schedule."""
        if self.budget == "steps":
            return state.step / state.total_steps
        return (state.epoch + batch_no / batches) / self.epochs

    def _set_lr(self, optimizer: torch.optim.Optimizer, progress: float) -> None:
        r = self.task.recipe
        for group in optimizer.param_groups:
            group["lr"] = r.lr * lr_factor(r.schedule, progress, r.milestones, r.gamma)

    def _step(self, state: TrainState, indices: torch.Tensor, device_idx: torch.Tensor, tally: LossTally,
              aug_gen, wants_features: bool) -> None:
        """One optimizer step on the samples ``indices`` (``device_idx``: the same, on the data's
        device). Nothing here reads a value back to the host (docs/performance.md)."""
        model, optimizer, train = state.model, state.optimizer, self.splits.train
        x = self.task.prepare_batch(train.x[device_idx], train=self.task.recipe.augment, generator=aug_gen)
        y = self.task.prepare_targets(train.y[device_idx], x)
        optimizer.zero_grad(set_to_none=True)
        with autocast_for(self.device):
            if wants_features:
                features = model.features(x)
                logits = self.task.head(model)(features)
            else:
                features, logits = None, model(x)
        losses = self.task.per_sample_loss(logits, y)
        weights = None
        for hook in self.hooks:
            w = third_party(hook, "on_batch_loss", hook.on_batch_loss, state, indices, logits.detach(),
                            losses.detach(), y, features.detach() if features is not None else None)
            if w is not None:
                w = check_weights(w, losses, hook)
                weights = w if weights is None else weights * w
        loss = (losses * weights.to(losses.device)).mean() if weights is not None else losses.mean()
        tally.add(loss, losses, state.step)  # a non-finite loss fails the cell at the epoch's end
        self.scaler.scale(loss).backward()
        self.scaler.step(optimizer)  # unscales .grad first, so on_step_end sees true gradients
        self.scaler.update()
        state.step += 1
        state.sample_passes += len(indices)
        for hook in self.hooks:
            third_party(hook, "on_step_end", hook.on_step_end, state)

    @torch.no_grad()
    def predict(self, model: nn.Module, split: Split, reduce=None) -> torch.Tensor:
        """Per-batch outputs for a whole split, in order, unaugmented, in eval mode: the logits,
        or ``reduce(logits, targets)`` of each batch (per-sample figures), which keeps the
        memory of a split's outputs small when the logits are large (a language model's)."""
        was_training = model.training
        model.eval()
        outputs = []
        batch = self.task.recipe.eval_batch_size
        for first in range(0, len(split), batch):
            x = self.task.prepare_batch(split.x[first : first + batch], train=False, generator=None)
            with autocast_for(self.device):
                logits = model(x)
            if reduce is not None:
                logits = reduce(logits.float(), self.task.prepare_targets(split.y[first : first + batch], x))
            outputs.append(logits.float().cpu())
        model.train(was_training)
        return torch.cat(outputs) if outputs else torch.empty(0)

    def evaluate(self, model: nn.Module, split: Split) -> dict[str, float]:
        return self.task.metrics(self.predict(model, split, reduce=self.task.eval_outputs), split.y.cpu())
