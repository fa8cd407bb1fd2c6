"""Shared helpers of the fast tests: a tiny, learnable, in-memory image task and small
utilities to drive the trainer and the hooks. A plain module (not a conftest), imported
by the tests that need it."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.api.hooks import Hook, TrainState
from benchmark.api.masks import prunable_weights
from benchmark.api.task import Splits
from benchmark.training.context import RunContext
from benchmark.training.trainer import Trainer, build_optimizer
from tasks.vision.fashion_mnist import FashionMNIST
from tasks.vision.idx import write_idx
from tasks.vision.models import SmallCNN

@pytest.fixture(autouse=True, scope="module")
def one_cpu_thread():
    """Train on one thread: on a shared, busy CPU, two threads fighting a background run are
    many times slower. Import this fixture into a test module to make it autouse there."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


N_TRAIN, N_TEST = 300, 100  # 300 -> 270 train + 30 validation (10% carve-out)


def tiny_arrays(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` uint8 28x28 images; each image's label is the position of its bright patch,
    so the labels are a function of the images and the task is learnable."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.int64)
    x = rng.integers(0, 80, (n, 1, 28, 28), dtype=np.uint8)
    for i, label in enumerate(y):
        row, col = divmod(int(label), 5)
        x[i, 0, 3 + 12 * row : 3 + 12 * row + 9, 1 + 5 * col : 1 + 5 * col + 4] = 230
    return x, y


class TinyFashion(FashionMNIST):
    """Fashion-MNIST's smoke profile (small-cnn, width 8) on a few hundred synthetic images.
    Not registered: tests instantiate it directly."""

    name = "test-tiny-fashion"
    n_train = N_TRAIN
    n_test = N_TEST

    def __init__(self, profile: str = "smoke", **recipe_overrides):
        super().__init__(profile, None, **recipe_overrides)

    def check_data(self) -> None:
        pass

    def read_arrays(self):
        x_train, y_train = tiny_arrays(self.n_train, seed=1)
        x_test, y_test = tiny_arrays(self.n_test, seed=2)
        return x_train, y_train, x_test, y_test


def tiny_task(**overrides) -> TinyFashion:
    return TinyFashion("smoke", **overrides)


def cpu() -> torch.device:
    return torch.device("cpu")


def context_for(tiny, cache_dir, seed: int = 0) -> RunContext:
    """The RunContext a method's ``prepare`` gets, on ``tiny`` = (task, its loaded splits), on the CPU."""
    task, splits = tiny
    return RunContext(task=task, splits=splits, device=cpu(), seed=seed, cache_dir=cache_dir)


def fit(task, hooks=(), seed: int = 0, splits: Splits | None = None, **trainer_kwargs):
    """Build a fresh model from ``seed`` and train it; returns (model, TrainResult)."""
    splits = splits if splits is not None else task.load_splits()
    trainer = Trainer(task, splits, cpu(), seed=seed, hooks=list(hooks), **trainer_kwargs)
    model = trainer.build_model()
    result = trainer.fit(model)
    return model, result


def small_cnn(seed: int = 0, width: int = 8) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN(1, 10, image_size=28, width=width)


def prunable(model) -> dict[str, torch.nn.Parameter]:
    return prunable_weights(model, exclude=model.head)


def make_state(task, model=None, splits: Splits | None = None, epochs: int = 1) -> TrainState:
    """A TrainState as the trainer builds it, for driving hooks by hand."""
    splits = splits if splits is not None else task.load_splits()
    if model is None:
        model = small_cnn()
    steps = -(-len(splits.train) // task.recipe.batch_size)
    return TrainState(model=model, optimizer=build_optimizer(model, task), task=task, splits=splits,
                      device=cpu(), epochs=epochs, total_steps=epochs * steps, steps_per_full_epoch=steps)


class Recorder(Hook):
    """Records what the trainer shows hooks; subclass or set callbacks for more."""

    def __init__(self):
        self.events: list[str] = []
        self.epoch_indices: list[list[torch.Tensor]] = []
        self.batches: list[dict] = []

    def on_run_start(self, state):
        self.events.append("run_start")

    def on_epoch_start(self, state):
        self.events.append("epoch_start")
        self.epoch_indices.append([])
        return None

    def on_batch_loss(self, state, indices, logits, losses, targets, features):
        self.events.append("batch_loss")
        self.epoch_indices[-1].append(indices.clone())
        self.batches.append({"indices": indices.clone(), "logits": logits.clone(), "losses": losses.clone(),
                             "targets": targets.clone()})
        return None

    def on_step_end(self, state):
        self.events.append("step_end")

    def on_epoch_end(self, state, metrics):
        self.events.append("epoch_end")

    def on_run_end(self, state):
        self.events.append("run_end")


def state_dict_copy(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in copy.deepcopy(model).state_dict().items()}


def write_tiny_fashion_mnist(directory: Path, n_train: int = 40, n_test: int = 20) -> Path:
    """Random images in the real Fashion-MNIST file layout (gzipped IDX), enough for check_data."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    write_idx(directory / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8))
    write_idx(directory / "train-labels-idx1-ubyte.gz", np.arange(n_train) % 10)
    write_idx(directory / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8))
    write_idx(directory / "t10k-labels-idx1-ubyte.gz", np.arange(n_test) % 10)
    return directory
