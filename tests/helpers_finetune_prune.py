"""The fixed tiny encoder, data and SGD loop on which the movement / PLATON reference code was run
(scripts/finetune_prune_reference_fixture.py) and on which the tests replay the harness's methods."""
from __future__ import annotations

import base64
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

from benchmark.api.hooks import TrainState

IN, HIDDEN, CLASSES, ROWS, BATCH = 6, 10, 2, 24, 8
WEIGHT_LR = 0.5
STEPS = 8


class Dense(nn.Module):
    """A ``.dense`` linear layer, so parameter names read like BERT's (``output.dense.weight``)."""

    def __init__(self, n_in: int, n_out: int, linear=nn.Linear):
        super().__init__()
        self.dense = linear(n_in, n_out)

    def forward(self, x, *threshold):
        return self.dense(x, *threshold)


class Head(nn.Module):
    def __init__(self):
        super().__init__()
        self.pooler = Dense(IN, IN)
        self.classifier = nn.Linear(IN, CLASSES)

    def forward(self, h):
        return self.classifier(torch.tanh(self.pooler(h)))


class TinyEncoder(nn.Module):
    """intermediate -> output (+ residual) -> pooler -> classifier. ``linear`` builds the two
    encoder matrices (Hugging Face's ``MaskedLinear`` in the movement reference run)."""

    def __init__(self, linear=nn.Linear, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.intermediate = Dense(IN, HIDDEN, linear)
        self.output = Dense(HIDDEN, IN, linear)
        self.head = Head()

    def forward(self, x, *threshold):
        h = torch.nn.functional.gelu(self.intermediate(x, *threshold))
        return self.head(self.output(h, *threshold) + x)


def data() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(ROWS, IN, generator=generator)
    y = torch.randint(0, CLASSES, (ROWS,), generator=generator)
    return x, y


def batch(step: int, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    first = (step % (ROWS // BATCH)) * BATCH
    return x[first : first + BATCH], y[first : first + BATCH]


def pack_mask(mask: torch.Tensor) -> str:
    return base64.b64encode(np.packbits(mask.detach().cpu().numpy().astype(bool).ravel())).decode()


def unpack_mask(bits: str, shape) -> torch.Tensor:
    n = int(np.prod(shape))
    flat = np.unpackbits(np.frombuffer(base64.b64decode(bits), dtype=np.uint8))[:n]
    return torch.from_numpy(flat.astype(bool)).view(*shape)


class FakeTask(SimpleNamespace):
    """What the model pruners read of a task: its head, name and SEVEN's window."""

    def head(self, model):
        return self.head_of(model)


def replay(method, steps: int, head_of, prune_window=(0.0, 1.0), after_step=None,
           total_steps: int | None = None) -> tuple[TinyEncoder, TrainState]:
    """Train the tiny encoder as the reference runs did (plain SGD, fixed batches), driving
    ``method`` through its hooks as the trainer does; ``after_step(state)`` sees each step's end. ``total_steps``: the
    run's planned length, if longer than the ``steps`` taken (a run cut short)."""
    model = TinyEncoder()
    x, y = data()
    optimizer = torch.optim.SGD(model.parameters(), lr=WEIGHT_LR)
    task = FakeTask(name="tiny-encoder", head_of=head_of, prune_window=prune_window)
    state = TrainState(model=model, optimizer=optimizer, task=task, splits=None, device=torch.device("cpu"),
                       epochs=1, total_steps=total_steps or steps, steps_per_full_epoch=steps)
    method.on_run_start(state)
    for step in range(steps):
        xb, yb = batch(step, x, y)
        optimizer.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()
        state.step += 1
        method.on_step_end(state)
        if after_step is not None:
            after_step(state)
    return model, state
