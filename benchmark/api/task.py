"""What a task is: data, a model factory, a loss, metrics and a recipe per profile.

A task knows nothing about pruning. The trainer and the methods reach it only
through the members of :class:`Task` below.

Feature convention (used by methods that need penultimate features, e.g. TED):
every model a task builds has ``model.features(x) -> h`` and ``model.head``
(an ``nn.Module``) with ``model(x) == model.head(model.features(x))``. The head
is never pruned.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .lazy import lazy_import

torch = lazy_import("torch")
nn = lazy_import("torch.nn")

BUDGETS = ("epochs", "steps")  # what a subset's training is held to: its epochs, or full data's steps


class DataNotFoundError(FileNotFoundError):
    """The task's data is missing; the message names the path and the fix."""


class DataFormatError(ValueError):
    """A data file exists but is not in the expected format; the message names the file."""


@dataclass(frozen=True)
class Recipe:
    """How a task trains under one profile. Every field can be overridden per sweep."""

    model: str
    epochs: int
    batch_size: int
    lr: float
    optimizer: str = "sgd"  # sgd | adamw
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # cosine | step | constant
    milestones: tuple[float, ...] = ()  # fractions of the run, for schedule=step
    gamma: float = 0.2
    augment: bool = True
    train_limit: int | None = None  # use only the first N training samples (smoke runs)
    test_limit: int | None = None
    eval_batch_size: int = 1024
    model_options: dict[str, Any] = field(default_factory=dict)

    def replace(self, **changes: Any) -> "Recipe":
        fields = [f.name for f in dataclasses.fields(self)]
        unknown = set(changes) - set(fields)
        if unknown:
            raise ValueError(f"unknown recipe field(s) {sorted(unknown)}; valid: {fields}")
        for name, value in changes.items():
            _check_type(name, value, getattr(self, name))
            _check_value(name, value, getattr(self, name))
        if "milestones" in changes:
            changes["milestones"] = tuple(changes["milestones"])
        return dataclasses.replace(self, **changes)


def is_finite(number: int | float) -> bool:
    """math.isfinite, but False (not OverflowError) for an int beyond any float."""
    try:
        return math.isfinite(number)
    except OverflowError:
        return False


OPTIMIZERS = ("sgd", "adamw")  # what the trainer builds
SCHEDULES = ("cosine", "step", "constant")
_AT_LEAST_ONE = ("epochs", "batch_size", "eval_batch_size")
#: upper bounds of the recipe's counts: beyond them a value is a typo that would validate and then
#: train for ever or allocate without end (``epochs: 1000000000``); papers train for a few hundred
#: epochs in batches of at most a few thousand
COUNT_LIMITS = {"epochs": 10_000, "batch_size": 1 << 20, "eval_batch_size": 1 << 20,
                "train_limit": 10**9, "test_limit": 10**9}
MAX_MODEL_COUNT = 1 << 20  # an integer model option (width, hidden, max_length ...): at most this


def _check_value(name: str, value: Any, current: Any) -> None:
    """Values of the right type that training would still choke on, refused before it starts."""
    problem = None
    if name == "optimizer" and value not in OPTIMIZERS:
        problem = f"one of {list(OPTIMIZERS)}"
    elif name == "schedule" and value not in SCHEDULES:
        problem = f"one of {list(SCHEDULES)}"
    elif name in _AT_LEAST_ONE and value < 1:
        problem = "at least 1"
    elif name in COUNT_LIMITS and value is not None and value > COUNT_LIMITS[name]:
        problem = f"at most {COUNT_LIMITS[name]:,} (a larger count is a typo: it would run or allocate for ever)"
    elif name == "model_options" and any(isinstance(v, int) and not isinstance(v, bool) and not 0 <= v <= MAX_MODEL_COUNT
                                         for v in value.values()):
        problem = f"a mapping whose integer values are in [0, {MAX_MODEL_COUNT:,}]"
    elif isinstance(current, float) and not (is_finite(value) and value >= 0):  # lr, momentum, ...
        problem = "a finite number >= 0"
    elif name == "milestones" and not all(
            isinstance(m, (int, float)) and not isinstance(m, bool) and 0 <= m <= 1 for m in value):
        problem = "a list of fractions of the run in [0, 1]"
    if problem:
        raise ValueError(f"recipe field {name!r} must be {problem}, got {value!r}")


def _check_type(name: str, value: Any, current: Any) -> None:
    """An override must have the type of the value it replaces (ints may stand for floats;
    the optional limits take an int or None; a list may stand for a tuple)."""
    if name.endswith("_limit"):
        ok = value is None or (isinstance(value, int) and not isinstance(value, bool) and value > 0)
        expected = "a positive integer or null"
    elif isinstance(current, bool):
        ok, expected = isinstance(value, bool), "true or false"
    elif isinstance(current, int):
        ok, expected = isinstance(value, int) and not isinstance(value, bool), "an integer"
    elif isinstance(current, float):
        ok, expected = isinstance(value, (int, float)) and not isinstance(value, bool), "a number"
    elif isinstance(current, tuple):
        ok, expected = isinstance(value, (list, tuple)), "a list"
    else:
        ok, expected = isinstance(value, type(current)), type(current).__name__
    if not ok:
        raise ValueError(f"recipe field {name!r} must be {expected}, got {value!r}")


@dataclass
class Split:
    """An in-memory split. ``x`` is kept in its stored dtype (uint8 images) and
    converted per batch by :meth:`Task.prepare_batch`; ``index`` is each sample's
    position in the task's training set, stable across runs."""

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.y.shape[0])

    def to(self, device: torch.device) -> "Split":
        return Split(self.x.to(device), self.y.to(device))


@dataclass
class Splits:
    train: Split
    val: Split
    test: Split


#: the fewest samples each split may hold (a task may ask for more): an empty split fails deep in
#: torch (a stride error, a mean of nothing) long after the data was read
MIN_SPLIT_SIZES = {"train": 1, "val": 1, "test": 1}


class Task:
    """Base class of every task. Subclasses set the class attributes and implement
    :meth:`load_splits` and :meth:`build_model`."""

    name: ClassVar[str] = ""
    family: ClassVar[str] = ""  # vision | glue | sft | cwru ...
    data_origin: ClassVar[str] = "real"  # real | simulated
    pretrained: ClassVar[bool] = False  # fine-tunes a pre-trained model?
    #: "features": the model follows the feature convention above (Moderate needs it)
    capabilities: ClassVar[frozenset[str]] = frozenset({"classification", "features"})
    num_classes: ClassVar[int] = 0
    metric: ClassVar[str] = "accuracy"  # headline metric
    higher_is_better: ClassVar[bool] = True  # False for a loss or a perplexity
    #: the task's protocol evaluates the pre-trained model without training (perplexity after
    #: one-shot pruning): its dense reference trains no epoch; the recipe serves recovery fine-tuning
    post_training: ClassVar[bool] = False
    chance_level: ClassVar[float] = 0.0
    #: the headline metric's range, (lo, hi) with hi possibly infinite, or None when it has none:
    #: the board's intervals stay inside it (benchmark.boards.stats)
    metric_bounds: ClassVar[tuple[float, float] | None] = (0.0, 1.0)
    #: where a gradual model-pruning method (SEVEN) ramps sparsity: (start, length) as
    #: fractions of the run, so that a shortened run keeps the shape of the reference one
    prune_window: ClassVar[tuple[float, float]] = (0.05, 0.2)
    profiles: ClassVar[dict[str, Recipe]] = {}
    #: one line on what the data is (shown by ``prunebench list``)
    data_summary: ClassVar[str] = ""
    min_split_sizes: ClassVar[dict[str, int]] = MIN_SPLIT_SIZES
    #: how the splits come from the data, for the message when one is too small
    split_rule: ClassVar[str] = ""

    def __init__(self, profile: str = "cpu", data_dir: str | None = None, **recipe_overrides: Any):
        if profile not in self.profiles:
            raise ValueError(
                f"task {self.name!r} has no profile {profile!r}; choose one of {sorted(self.profiles)}"
            )
        self.profile = profile
        self.data_dir = data_dir
        self.recipe = self.profiles[profile].replace(**recipe_overrides)

    # --- data -------------------------------------------------------------
    def check_data(self) -> None:
        """Raise DataNotFoundError (naming the path and the fix) if the data is absent.
        Must be cheap: `prunebench validate` calls it before any compute."""

    def load_splits(self) -> Splits:
        raise NotImplementedError

    def train_size(self) -> int | None:
        """The number of training samples :meth:`load_splits` will give, when the task can tell
        without loading the data (from file headers and the recipe), else None. ``validate``
        uses it to refuse a ratio that would keep no training sample."""
        return None

    def check_split_sizes(self, sizes: dict[str, int]) -> None:
        """A DataFormatError naming the split, its size and the minimum if a split is too small."""
        for name, minimum in self.min_split_sizes.items():
            if name in sizes and sizes[name] < minimum:
                where = f" (data in {self.data_dir})" if self.data_dir else ""
                raise DataFormatError(
                    f"the {'validation' if name == 'val' else name} split would hold "
                    f"{sizes[name]} sample(s){where}; it needs at least {minimum}. {self.split_rule}".rstrip())

    def data_provenance(self) -> dict[str, str]:
        """Which data the last :meth:`load_splits` read, beyond the cell's own options (a hub
        id, config, split and revision; a resampling): tags of the cell's run, keys ``data.*``."""
        return {}

    def prepare_batch(self, x: torch.Tensor, train: bool, generator: torch.Generator | None) -> torch.Tensor:
        """Turn a stored batch into model input; augment it when ``train``."""
        return x

    def prepare_targets(self, y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Targets matching a prepared batch ``x`` (a sequence task trims them as it trims ``x``)."""
        return y

    def token_mask(self, x: torch.Tensor) -> torch.Tensor | None:
        """For a prepared batch of sequences, the ``[B, T]`` mask of its real (not padding)
        tokens, which calibration statistics count; None when every position counts."""
        return None

    def example_input(self, split: Split) -> torch.Tensor:
        """One unaugmented example as model input; used to count the model's FLOPs."""
        return self.prepare_batch(split.x[:1], train=False, generator=None)

    # --- model ------------------------------------------------------------
    def build_model(self) -> nn.Module:
        raise NotImplementedError

    # --- scheduling ---------------------------------------------------------
    #: what one cell asks a scheduler (the Ray executor) for, per profile; keys are Ray's
    RESOURCES: ClassVar[dict[str, dict[str, float]]] = {
        "smoke": {"num_cpus": 1}, "cpu": {"num_cpus": 1},
        "paper": {"num_cpus": 4, "num_gpus": 1, "memory": 16 * 2**30},
    }

    def resources(self) -> dict[str, float]:
        return dict(self.RESOURCES.get(self.profile, {"num_cpus": 1}))

    #: a generous estimate of one cell's wall time per profile, in minutes: the Slurm executor's
    #: default time limit is twice it, and a limit below it is refused (a task would never finish a cell)
    CELL_MINUTES: ClassVar[dict[str, int]] = {"smoke": 5, "cpu": 60, "paper": 720}

    def cell_minutes(self) -> int:
        return int(self.CELL_MINUTES.get(self.profile, 60))

    def head(self, model: nn.Module) -> nn.Module:
        return model.head

    # --- loss and metrics -------------------------------------------------
    def per_sample_loss(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(logits.float(), y, reduction="none")

    def eval_outputs(self, logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """What evaluation keeps of one batch's logits for :meth:`metrics`. Classification
        keeps the logits; a task whose logits are too big to hold for a whole split (a
        language model's) reduces them to a few per-sample figures here."""
        return logits

    def metrics(self, logits: torch.Tensor, y: torch.Tensor) -> dict[str, float]:
        """Metrics over a whole split from its :meth:`eval_outputs`; must include ``self.metric``."""
        loss = self.per_sample_loss(logits, y).mean().item()
        accuracy = (logits.argmax(dim=1) == y).float().mean().item()
        return {"loss": loss, "accuracy": accuracy}

    # --- after the test -------------------------------------------------------
    def post_evaluation(self, model: nn.Module, device: torch.device) -> tuple[dict[str, float], dict[str, str]]:
        """An optional further evaluation of the final model, run once after the test split
        (zero-shot tasks of lm-evaluation-harness on a causal LM): the cell's extra metrics
        and tags, none by default. Its wall time is logged as ``post_eval_seconds``."""
        return {}, {}
