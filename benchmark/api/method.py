"""Base classes of pruning methods.

Every method has the same few verbs:

- ``__init__(ratio, seed, **options)``: parameters only, nothing computed;
- ``prepare(context)``: work before the main run (proxy training, scoring);
  its cost is timed and charged to the method;
- the :class:`~benchmark.api.hooks.Hook` points, through which it acts on training;
- ``summary()``: realised figures to log (kept fraction, sparsity, ...).

``ratio`` is always the fraction REMOVED, in [0, 1).
"""
from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, ClassVar

from .contract import checks_instances_of
from .hooks import Hook, TrainState
from .lazy import lazy_import
from .masks import Masker, count_removed, prunable_weights, sparsity
from .task import is_finite

torch = lazy_import("torch")

if TYPE_CHECKING:
    from ..training.context import RunContext
    from .task import Task


class Method(Hook):
    name: ClassVar[str] = ""
    family: ClassVar[str] = ""  # data | model | reference
    #: reference-code | reconstructed | unknown; a built-in declares its own, and a run's tag comes
    #: from :func:`benchmark.api.origin.provenance_of` (a plugin inheriting a built-in's is ``unknown``)
    provenance: ClassVar[str] = "unknown"
    #: task capabilities this method needs (see Task.capabilities)
    requires: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, ratio: float, seed: int = 0):
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"ratio {ratio!r} is outside [0, 1): it is the fraction removed")
        self.ratio = float(ratio)
        self.seed = int(seed)

    @classmethod
    def option_names(cls) -> list[str]:
        """The keyword options a sweep may set (the __init__ parameters after ratio, seed)."""
        params = inspect.signature(cls.__init__).parameters
        return [p for p in params if p not in ("self", "ratio", "seed") and params[p].kind == params[p].KEYWORD_ONLY]

    #: what a cell's ratio is a fraction of, as a board states it (a method may read it otherwise)
    ratio_means: ClassVar[str] = "the fraction removed"

    @classmethod
    def ratio_meaning(cls, settings: dict[str, Any]) -> str:
        """What the ratio of a cell run with ``settings`` removes (one phrase for a board)."""
        return cls.ratio_means

    @classmethod
    def settings(cls, options: dict[str, Any]) -> dict[str, Any]:
        """Every option as the method runs it: the declared defaults, then ``options`` on top (what
        a board states, so that a later change of a default cannot change what a stored cell means)."""
        params = inspect.signature(cls.__init__).parameters
        return {**{name: params[name].default for name in cls.option_names()
                   if params[name].default is not inspect.Parameter.empty}, **options}

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        unknown = sorted(set(options) - set(cls.option_names()), key=str)
        if unknown:
            raise ValueError(
                f"method {cls.name!r} has no option(s) {unknown}; valid options: {cls.option_names() or 'none'}"
            )
        params = inspect.signature(cls.__init__).parameters
        problems = [f"method {cls.name!r} option {name!r} must be {expected}, got {value!r}"
                    for name, value in options.items() if (expected := _type_problem(value, params[name])) is not None]
        if problems:
            raise ValueError("; ".join(problems))

    @classmethod
    def incompatibility(cls, task_cls: type["Task"]) -> str | None:
        """Why this method cannot run on ``task_cls``, or None if it can."""
        missing = sorted(cls.requires - task_cls.capabilities)
        if missing:
            return (
                f"method {cls.name!r} needs a task with {missing}, but task {task_cls.name!r} "
                f"provides {sorted(task_cls.capabilities)}"
            )
        return None

    @classmethod
    def recipe_problem(cls, settings: dict[str, Any], epochs: int) -> str | None:
        """Why this method, run with ``settings`` (:meth:`settings` of a cell's options), cannot run
        under a recipe of ``epochs`` training epochs, or None. A sweep with such a cell is refused
        before any compute; the caller names the task."""
        return None

    @classmethod
    def recipe_warning(cls, settings: dict[str, Any], epochs: int) -> str | None:
        """What this method, run with ``settings``, cannot do under a recipe of ``epochs`` epochs
        although it runs (a dynamic pruner that would prune nothing), or None. ``validate`` and
        ``run`` print it; the cell still runs, and its realised kept fraction shows the outcome."""
        return None

    def prepare(self, context: "RunContext") -> None:
        pass

    def train_epochs(self, task: "Task") -> int | None:
        """Epochs the cell trains for; None: the task's recipe. A one-shot post-training method
        returns its ``finetune_epochs`` (0: the pruned model is evaluated as it is)."""
        return None

    def summary(self) -> dict[str, float]:
        return {}

    def ranking_scores(self) -> torch.Tensor | None:
        """The per-sample scores this epoch's selection ranked by (read at each epoch's start,
        after :meth:`on_epoch_start`, and logged with the cell); None for an unscored method."""
        return None

    def final_masks(self) -> dict[str, torch.Tensor]:
        """``{weight name: boolean keep-mask}`` the trained model ended with; empty if none."""
        return {}

    def generator(self, salt: int = 0) -> torch.Generator:
        """A CPU generator for this method's own randomness, independent of training's."""
        return torch.Generator().manual_seed(10_007 * self.seed + 7919 * salt + 12345)


checks_instances_of(Method)  # what a Method's hooks return is checked (benchmark.api.contract)


def check_count(name: str, value: Any, low: int, high: int) -> int:
    """``value`` if it is an integer in [low, high], else a ValueError naming it: a count of
    runs, epochs or bins beyond a sane bound is a typo, and would run (or allocate) for ever."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {type(value).__name__} {value!r}")
    if not low <= value <= high:
        raise ValueError(f"{name} must be an integer in [{low}, {high}], got {value}")
    return value


_TYPE_NAMES = {"bool": "true or false", "int": "an integer", "float": "a finite number", "str": "a string",
               "None": "null"}


def _type_problem(value: Any, param: inspect.Parameter) -> str | None:
    """What ``value`` should have been for ``param`` (from its annotation, else its default's
    type), or None when it fits or the annotation is not a plain one we can check. Checked
    here so that, say, ``dynamic: "no"`` is refused rather than read as true."""
    annotation = param.annotation
    if annotation is param.empty:
        annotation = type(param.default).__name__ if param.default is not param.empty else ""
    elif isinstance(annotation, type):  # a module without postponed annotations
        annotation = annotation.__name__
    names = [part.strip() for part in str(annotation).split("|")] if isinstance(annotation, str) else []
    if not names or any(name not in _TYPE_NAMES for name in names):
        return None
    fits = {
        "bool": isinstance(value, bool),
        "int": isinstance(value, int) and not isinstance(value, bool),
        "float": isinstance(value, (int, float)) and not isinstance(value, bool) and is_finite(value),
        "str": isinstance(value, str),
        "None": value is None,
    }
    return None if any(fits[name] for name in names) else " or ".join(_TYPE_NAMES[name] for name in names)


class DataPruner(Method):
    """Chooses the training samples. The trainer measures the realised kept
    fraction from the indices each epoch actually used."""

    family = "data"
    ratio_means = "the fraction of training samples removed"

    def n_keep(self, n: int) -> int:
        return n - count_removed(self.ratio, n)


def epoch_zero_only(epochs: int, fills: str) -> str | None:
    """Why a dynamic pruner whose epoch 0 trains on every sample (to fill ``fills``) and which
    prunes from epoch 1 on cannot prune under ``epochs`` epochs, or None when it can."""
    if epochs >= 2:
        return None
    return (f"prunes nothing: epoch 0 trains on every sample to fill {fills}, and pruning starts at epoch 1; give "
            "the task at least 2 epochs (task option epochs)")


class ModelPruner(Method):
    """Chooses weight masks over the task's prunable weights and keeps them enforced."""

    family = "model"
    ratio_means = "the fraction of prunable weights zeroed"

    def __init__(self, ratio: float, seed: int = 0, *, scope: str = "global"):
        super().__init__(ratio, seed)
        if scope not in ("global", "layer"):
            raise ValueError(f"scope must be 'global' or 'layer', got {scope!r}")
        self.scope = scope
        self.masker: Masker | None = None
        self._weights: dict[str, torch.nn.Parameter] = {}

    def on_run_start(self, state: TrainState) -> None:
        self._weights = prunable_weights(state.model, exclude=state.task.head(state.model))
        if not self._weights:
            raise ValueError(f"task {state.task.name!r}'s model has no prunable weights")
        self.masker = Masker(self._weights)

    def on_step_end(self, state: TrainState) -> None:
        self.masker.enforce()

    def on_run_end(self, state: TrainState) -> None:
        self.masker.remove()

    def final_masks(self) -> dict[str, torch.Tensor]:
        masks = self.masker.masks if self.masker is not None else {}
        return {name: masks[name] if name in masks else torch.ones_like(w, dtype=torch.bool)
                for name, w in self._weights.items()}

    def summary(self) -> dict[str, float]:
        total = sum(w.numel() for w in self._weights.values())
        zero_fraction = sparsity(self._weights)
        return {
            "realised_sparsity": zero_fraction,
            "prunable_params": float(total),
            "prunable_params_remaining": float(round(total * (1 - zero_fraction))),
        }
