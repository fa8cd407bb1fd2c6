"""Run one cell: build its task and method, let the method prepare, train, test, and
collect every figure the cell logs. Knows nothing about MLflow or sweeps."""
from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .cells import Cell
from ..training.context import RunContext
from ..api.contract import built, check_final_masks, check_summary, third_party
from ..training.cost import cost_passes
from .evidence import Evidence, EvidenceRecorder, data_source, splits_digest
from ..training.flops import parameter_counts, weight_layer_flops
from ..api.hooks import Hook
from ..api.masks import prunable_weights, sparsity
from ..training.memory import PeakMemory
from ..api.method import Method
from ..api.origin import origin_tags, provenance_of
from ..api.registry import get_method, get_task
from ..api.task import Splits, Task
from ..training.trainer import Trainer


@dataclass
class CellPlan:
    """A cell with its task and method built: nothing loaded or computed yet."""

    cell: Cell
    task: Task
    method: Method

    def params(self) -> dict[str, Any]:
        recipe = {k: v for k, v in vars(self.task.recipe).items()}
        settings = type(self.method).settings(dict(self.cell.method_options))
        return {"recipe": recipe, "family": self.method.family, "provenance": provenance_of(type(self.method)),
                "method_settings": json.dumps(settings, sort_keys=True, default=str),
                "method_ratio_means": type(self.method).ratio_meaning(settings)}

    def tags(self) -> dict[str, str]:
        return {"family": self.method.family, "provenance": provenance_of(type(self.method)),
                "data_origin": self.task.data_origin, "task_family": self.task.family,
                "metric": self.task.metric, "chance_level": repr(float(self.task.chance_level)),
                "metric_bounds": bounds_tag(self.task.metric_bounds),
                "metric_higher_is_better": str(bool(self.task.higher_is_better)).lower(),
                **origin_tags("method", type(self.method)), **origin_tags("task", type(self.task)),
                **variant_tag(self.method)}


def variant_tag(method: Method) -> dict[str, str]:
    """Which variant of a method ran (movement's ``paper`` or ``seven``, ...), for the board to
    say: ``{"method_variant": ...}`` when the method has a string ``variant``, else nothing."""
    variant = getattr(method, "variant", None)
    return {"method_variant": variant} if isinstance(variant, str) else {}


def bounds_tag(bounds: tuple[float, float] | None) -> str:
    """A metric's range as a run tag: ``"lo,hi"`` (``inf`` for no upper bound), or ``"none"``."""
    return "none" if bounds is None else ",".join(repr(float(b)) for b in bounds)


@dataclass
class CellResult:
    metrics: dict[str, float]
    tags: dict[str, str] = field(default_factory=dict)
    evidence: Evidence | None = None  # what the run's artifacts are written from (benchmark.sweeps.evidence)


def model_cost(model: torch.nn.Module, example: torch.Tensor) -> dict[str, float]:
    """Parameters and theoretical FLOPs of the trained (possibly masked) model."""
    params_total, params_left = parameter_counts(model)
    flops_dense, flops_left = weight_layer_flops(model, example)
    return {"params_total": params_total, "params_remaining": params_left,
            "flops_dense": flops_dense, "flops_remaining": flops_left,
            "flops_remaining_rel": flops_left / flops_dense if flops_dense else 1.0}


def scoring_cost(context: RunContext, train_passes: int, train_seconds: float) -> dict[str, float]:
    """The cell's total cost in training-pass equivalents, and the seconds its scoring is
    charged. Scores read from the cache are charged their passes at this cell's own measured
    seconds per training pass: the seconds the cache recorded reflect how loaded the machine
    was when another cell filled it, while this cell's own speed is measured under the same
    conditions as its training. The recorded figure is kept as ``cached_scoring_seconds``."""
    total = cost_passes(train_passes, context.scoring_sample_passes, context.scoring_forward_passes)
    out = {"cost_passes": total, "scoring_seconds": context.scoring_seconds}
    if context.scores_cached:
        per_pass = train_seconds / train_passes if train_passes else 0.0
        out["cached_scoring_seconds"] = context.scoring_seconds
        out["scoring_seconds"] = (total - train_passes) * per_pass
    return out


def plan_cell(cell: Cell, data_dir: str | None = None) -> CellPlan:
    """The cell's task and method, built; what their constructors raise names them."""
    task_cls, method_cls = get_task(cell.task), get_method(cell.method)
    task = built("task", cell.task, lambda: task_cls(cell.profile, data_dir=data_dir, **dict(cell.task_options)))
    method = built("method", cell.method, lambda: method_cls(cell.ratio, cell.seed, **dict(cell.method_options)))
    return CellPlan(cell, task, method)


def measured_sparsity(model: torch.nn.Module, task: Task) -> dict[str, float]:
    """The model-pruning figures of the board, measured from the trained weights (the task's
    prunable weights, its head excluded), never taken from the method."""
    weights = prunable_weights(model, exclude=task.head(model))
    total = sum(w.numel() for w in weights.values())
    zero_fraction = sparsity(weights)
    return {"realised_sparsity": zero_fraction, "prunable_params": float(total),
            "prunable_params_remaining": float(round(total * (1 - zero_fraction))),
            # a weight matrix left all zero cuts the signal path (a global ranking can empty a
            # whole layer): the figure that explains a cell at chance level
            "empty_matrices": float(sum(1 for w in weights.values() if not bool(w.detach().any())))}


@functools.lru_cache(maxsize=2)
def _load_splits_cached(task_name: str, profile: str, task_options: tuple,
                        data_dir: str | None) -> tuple[Splits, dict[str, str]]:
    task = get_task(task_name)(profile, data_dir=data_dir, **dict(task_options))
    splits = task.load_splits()
    task.check_split_sizes({name: len(getattr(splits, name)) for name in ("train", "val", "test")})
    return splits, {**task.data_provenance(), "data.digest": splits_digest(splits)}


def load_splits_with_provenance(plan: CellPlan, device: torch.device) -> tuple[Splits, dict[str, str]]:
    """The cell's splits on ``device``, and which data they came from (see Task.data_provenance)."""
    cell = plan.cell
    splits, provenance = _load_splits_cached(cell.task, cell.profile, cell.task_options, plan.task.data_dir)
    return Splits(splits.train.to(device), splits.val.to(device), splits.test.to(device)), dict(provenance)


def run_cell(plan: CellPlan, device: torch.device, cache_dir: Path, hooks: list[Hook] = (),
             proxy_hooks: list[Hook] = ()) -> CellResult:
    """Run one cell; ``hooks`` observe its training, ``proxy_hooks`` any proxy training
    the method's scoring does first."""
    with PeakMemory(device) as peak:
        result = _run_cell(plan, device, cache_dir, hooks, proxy_hooks)
    result.metrics.update(peak.figures())
    return result


def _run_cell(plan: CellPlan, device: torch.device, cache_dir: Path, hooks: list[Hook],
              proxy_hooks: list[Hook]) -> CellResult:
    cell, task, method = plan.cell, plan.task, plan.method
    torch.manual_seed(cell.seed)
    t0 = time.perf_counter()
    splits, provenance = load_splits_with_provenance(plan, device)
    load_seconds = time.perf_counter() - t0

    context = RunContext(task=task, splits=splits, device=device, seed=cell.seed, cache_dir=Path(cache_dir),
                         proxy_hooks=list(proxy_hooks))
    t0 = time.perf_counter()
    third_party(method, "prepare", method.prepare, context)
    prepare_wall = time.perf_counter() - t0

    recorder = EvidenceRecorder(method)  # right after the method: it reads the scores just ranked by
    trainer = Trainer(task, splits, device, seed=cell.seed, hooks=[method, recorder, *hooks], budget=cell.budget,
                      epochs=method.train_epochs(task))
    model = trainer.build_model()
    charged_before_fit = context.scoring_seconds
    result = trainer.fit(model)
    # scoring a method does inside training (SEVEN_pre) is charged as scoring, not twice
    train_seconds = result.train_seconds - min(context.scoring_seconds - charged_before_fit, result.train_seconds)
    t0 = time.perf_counter()
    test = trainer.evaluate(model, splits.test)
    test_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    post_metrics, post_tags = task.post_evaluation(model, device)
    post_seconds = time.perf_counter() - t0
    context.floor_to_measured()

    n_train = len(splits.train)
    full_passes = task.recipe.epochs * n_train  # what the full-data cell trains on
    state = result.state
    scoring = scoring_cost(context, state.sample_passes, train_seconds)
    metrics: dict[str, float] = {f"test_{k}": v for k, v in test.items()}
    metrics.update({
        "n_train": n_train,
        # a post-training cell trains no epoch: it keeps all data
        "kept_fraction": sum(result.active_sizes) / (len(result.active_sizes) * n_train) if result.active_sizes else 1.0,
        "sample_passes": state.sample_passes,
        "sample_passes_rel": state.sample_passes / full_passes,
        "scoring_sample_passes": context.scoring_sample_passes,
        "scoring_forward_passes": context.scoring_forward_passes,
        "total_sample_passes_rel": (state.sample_passes + context.scoring_sample_passes) / full_passes,
        "cost_passes": scoring["cost_passes"],
        "cost_rel": scoring["cost_passes"] / full_passes,
        "scoring_seconds": scoring["scoring_seconds"],
        "scoring_wall_seconds": prepare_wall,
        "train_seconds": train_seconds,
        "eval_seconds": result.eval_seconds + test_seconds,
        "load_seconds": load_seconds,
        "optimizer_steps": state.step,
        "epochs_run": state.epoch,
    })
    if "cached_scoring_seconds" in scoring:
        metrics["cached_scoring_seconds"] = scoring["cached_scoring_seconds"]
    metrics.update(model_cost(model, task.example_input(splits.test)))
    if state.history:
        last = state.history[-1]
        metrics.update({f"final_{k}": v for k, v in last.items() if k.startswith("val_")})
        val_key = f"val_{task.metric}"
        if val_key in last:  # best over epochs is allowed on validation only, never on test
            metrics[f"best_{val_key}"] = max(h[val_key] for h in state.history)
    if method.family == "model":
        metrics.update(measured_sparsity(model, task))
    if post_metrics or post_tags:
        clash = sorted(set(post_metrics) & {*metrics, "post_eval_seconds"})
        if clash:  # an extra evaluation adds figures; it never replaces a measured one
            raise ValueError(f"task {task.name!r}: post_evaluation() returned {clash}, figures the harness "
                             f"measures itself; name the extra figures apart (as lm_eval.<task>.<metric>)")
        metrics.update({**post_metrics, "post_eval_seconds": post_seconds})
    # the method's own figures, in their namespace: none can replace a figure measured above
    metrics.update(check_summary(third_party(method, "summary()", method.summary), method, dict(metrics)))
    masks = check_final_masks(third_party(method, "final_masks()", method.final_masks),
                              prunable_weights(model, exclude=task.head(model)), method)
    evidence = Evidence(recorder, masks, model, provenance, data_source=data_source(task, provenance),
                        split_sizes={"train": n_train, "val": len(splits.val), "test": len(splits.test)},
                        device=str(device))
    return CellResult(metrics, tags={**post_tags, "scores_cached": str(context.scores_cached).lower(), **provenance},
                      evidence=evidence)
