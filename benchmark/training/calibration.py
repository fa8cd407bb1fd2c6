"""Calibration for one-shot post-training pruning: a seeded draw of training samples, and the
layer-sequential driver that prunes a model block by block on its own, already pruned, inputs.

The driver follows the protocol of the Wanda repository (``lib/prune.py``, which SparseGPT's
code shares): the inputs of the first block (the largest ``nn.ModuleList`` holding prunable
layers: a transformer's layers) are captured over the calibration set; then, block by block,
the block is run once with every prunable layer inside it observed (all of a block's layers
see the block's unpruned activations), its layers are pruned, and it is run again to give the
next block its inputs from the pruned block. Prunable layers outside the blocks (a BERT
pooler) are observed afterwards in one pass of the whole, already pruned, model. Padding
tokens are left out of every statistic (the task's :meth:`~benchmark.api.task.Task.token_mask`).

Cost: each block runs twice over the calibration set, two forward passes of the model per
sample, plus one more when prunable layers sit outside the blocks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Protocol

import torch
from torch import nn


class _Stop(Exception):
    """Raised by the capture hook: nothing past the first block needs computing."""


@dataclass
class CalibrationBatch:
    x: torch.Tensor  # model input, as the task prepares it
    tokens: torch.Tensor | None  # bool [B, T]: real (not padding) tokens; None when every position counts


class Observer(Protocol):
    def add(self, rows: torch.Tensor) -> None:
        """Fold in a layer's inputs, one row per calibration token: ``[tokens, in_features]``."""


def check_calibration_count(method: str, task: str, count: int, available: int) -> None:
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise ValueError(f"method {method!r}: calibration_samples must be a positive integer, got {count!r}")
    if count > available:
        raise ValueError(f"method {method!r} on task {task!r}: calibration_samples {count} is larger than the "
                         f"training split ({available} samples) it is drawn from; set calibration_samples to at "
                         f"most {available}")


def draw_calibration(task, train, count: int, generator: torch.Generator, batch_size: int) -> list[CalibrationBatch]:
    """``count`` training samples drawn without replacement by ``generator``, as prepared batches."""
    order = torch.randperm(len(train), generator=generator)[:count].to(train.y.device)
    batches = []
    for first in range(0, count, batch_size):
        x = task.prepare_batch(train.x[order[first : first + batch_size]], train=False, generator=None)
        tokens = task.token_mask(x)
        batches.append(CalibrationBatch(x, None if tokens is None else tokens.bool()))
    return batches


def find_blocks(model: nn.Module, layers: set[int]) -> nn.ModuleList | None:
    """The ``nn.ModuleList`` whose entries hold the most of ``layers`` (ids of modules), or None."""
    best, best_count = None, 0
    for module in model.modules():
        if isinstance(module, nn.ModuleList):
            count = sum(1 for block in module for m in block.modules() if id(m) in layers)
            if count > best_count:
                best, best_count = module, count
    return best


def _first(output: Any) -> torch.Tensor:
    return output[0] if isinstance(output, (tuple, list)) else output


class _Inputs:
    """One batch's call of a block: the hidden states and the rest of its arguments."""

    def __init__(self, args: tuple, kwargs: dict):
        self.positional = bool(args)
        self.hidden = args[0] if args else kwargs["hidden_states"]
        self.rest, self.kwargs = args[1:], {k: v for k, v in kwargs.items() if k != "hidden_states"}

    def run(self, block: nn.Module, hidden: torch.Tensor) -> torch.Tensor:
        if self.positional:
            return _first(block(hidden, *self.rest, **self.kwargs))
        return _first(block(hidden_states=hidden, **self.kwargs))


class _Observation:
    """Forward hooks feeding each observed layer's input rows (padding left out) to its observer."""

    def __init__(self, modules: dict[str, nn.Module], observers: dict[str, Observer]):
        self.tokens: torch.Tensor | None = None
        self.handles = [module.register_forward_hook(self._hook(observers[name])) for name, module in modules.items()]

    def _hook(self, observer: Observer) -> Callable:
        def hook(module, inputs, output):
            x = inputs[0].detach()
            if self.tokens is not None and x.dim() >= 3 and tuple(x.shape[:2]) == tuple(self.tokens.shape):
                x = x[self.tokens]  # [real tokens, features]
            observer.add(x.reshape(-1, x.shape[-1]))

        return hook

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


@torch.no_grad()
def prune_sequentially(model: nn.Module, batches: list[CalibrationBatch], layers: dict[str, nn.Module],
                       observer: Callable[[str, nn.Module], Observer],
                       prune: Callable[[str, nn.Module, Observer], torch.Tensor]) -> tuple[dict[str, torch.Tensor], int]:
    """Prune every module of ``layers`` (``{name: module}``) block by block; ``prune(name, module,
    observer)`` changes the module's weight and returns its boolean keep-mask. Returns the masks
    and the forward passes of the whole model it took, per calibration sample."""
    was_training = model.training
    model.eval()
    try:
        masks, passes = _prune_sequentially(model, batches, layers, observer, prune)
    finally:
        model.train(was_training)
    return masks, passes


def _prune_sequentially(model, batches, layers, observer, prune):
    ids = {id(m): name for name, m in layers.items()}
    blocks = find_blocks(model, set(ids))
    masks: dict[str, torch.Tensor] = {}
    passes = 0
    done: set[str] = set()
    if blocks is not None and len(blocks):
        inputs = _capture(model, blocks[0], batches)
        hidden = [call.hidden for call in inputs]
        for block in blocks:
            inside = {ids[id(m)]: m for m in block.modules() if id(m) in ids}

            def run(index: int, block=block) -> torch.Tensor:
                return inputs[index].run(block, hidden[index])

            if inside:
                _observe_and_prune(inside, observer, prune, masks, batches, run)
            hidden = [run(index) for index in range(len(batches))]  # the pruned block's outputs
            done.update(inside)
        passes += 2
    rest = {name: m for name, m in layers.items() if name not in done}
    if rest:
        _observe_and_prune(rest, observer, prune, masks, batches, lambda index: model(batches[index].x))
        passes += 1
    return masks, passes


def _observe_and_prune(modules, observer, prune, masks, batches, run: Callable[[int], Any]) -> None:
    """Observe ``modules`` while ``run(i)`` runs batch ``i`` for every batch, then prune them."""
    observers = {name: observer(name, module) for name, module in modules.items()}
    observation = _Observation(modules, observers)
    try:
        for index, batch in enumerate(batches):
            observation.tokens = batch.tokens  # what the hooks leave out of this batch
            run(index)
    finally:
        observation.remove()
    for name, module in modules.items():
        masks[name] = prune(name, module, observers.pop(name))  # pop: free a Hessian before the next


def _capture(model: nn.Module, first_block: nn.Module, batches: list[CalibrationBatch]) -> list[_Inputs]:
    """The first block's call (hidden states and other arguments) for every batch."""
    captured: list[_Inputs] = []

    def hook(module, args, kwargs):
        captured.append(_Inputs(args, kwargs))
        raise _Stop

    handle = first_block.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        for batch in batches:
            try:
                model(batch.x)
            except _Stop:
                pass
    finally:
        handle.remove()
    if len(captured) != len(batches):
        raise RuntimeError(f"the model's first block ran {len(captured)} times for {len(batches)} calibration batches")
    return captured
