"""Benchmark: the harness trainer against a bare hand-written torch loop, and MLflow's cost per cell.

Both loops train the same model (same initial weights), on the same in-memory data,
in the same batch order, with the same augmentation and optimizer; epochs alternate
(trainer, bare, trainer, bare, ...) so that machine noise hits both alike. The
ratio is median(trainer epoch) / median(bare epoch) from this one run.

MLflow cost per cell: what the tracker adds to one cell (open the run with its
params and tags, log per-epoch metrics, log final metrics and close), on a SQLite
store in a temporary directory, timed over many cells with no training.

    python scripts/bench_trainer.py [--task fashion-mnist] [--profile cpu] [--repeats 3]
"""
from __future__ import annotations

import argparse
import math
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from benchmark.sweeps.cells import Cell
from benchmark.sweeps.execute import plan_cell
from benchmark.api.registry import get_task
from benchmark.sweeps.tracking import Tracker
from benchmark.training.trainer import Trainer, build_optimizer, lr_factor


def bare_epoch(task, splits, model, optimizer, order, generator, epoch, epochs):
    """The loop a researcher would write by hand: no hooks, no bookkeeping."""
    r = task.recipe
    model.train()
    batches = math.ceil(len(order) / r.batch_size)
    for b in range(batches):
        for group in optimizer.param_groups:
            group["lr"] = r.lr * lr_factor(r.schedule, (epoch + b / batches) / epochs, r.milestones, r.gamma)
        idx = order[b * r.batch_size : (b + 1) * r.batch_size]
        x = task.prepare_batch(splits.train.x[idx], train=r.augment, generator=generator)
        loss = torch.nn.functional.cross_entropy(model(x), splits.train.y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def time_trainer_vs_bare(task_name: str, profile: str, repeats: int, seed: int = 0) -> dict[str, float]:
    task = get_task(task_name)(profile)
    splits = task.load_splits()
    device = torch.device("cpu")
    trainer_times, bare_times = [], []

    def run_trainer():
        trainer = Trainer(task, splits, device, seed=seed, epochs=1, evaluate_each_epoch=False)
        model = trainer.build_model()
        t0 = time.perf_counter()
        trainer.fit(model)
        trainer_times.append(time.perf_counter() - t0)
        return model

    def run_bare():
        bare_model = Trainer(task, splits, device, seed=seed, epochs=1).build_model()  # same initial weights
        optimizer = build_optimizer(bare_model, task)
        order_gen = torch.Generator().manual_seed(seed * 2 + 1)  # same batch order as the trainer
        aug_gen = torch.Generator().manual_seed(seed * 2 + 2)
        order = torch.arange(len(splits.train))[torch.randperm(len(splits.train), generator=order_gen)]
        t0 = time.perf_counter()
        bare_epoch(task, splits, bare_model, optimizer, order, aug_gen, 0, 1)
        bare_times.append(time.perf_counter() - t0)
        return bare_model

    for repeat in range(repeats):
        # ABBA order: whichever loop runs first in a pair pays any warm-up, so the first swaps each repeat
        if repeat % 2 == 0:
            model, bare_model = run_trainer(), run_bare()
        else:
            bare_model, model = run_bare(), run_trainer()
        same = all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), bare_model.state_dict().values()))
        print(f"repeat {repeat + 1}: trainer {trainer_times[-1]:.2f}s, bare {bare_times[-1]:.2f}s, "
              f"identical weights after the epoch: {same}", flush=True)
    t, b = statistics.median(trainer_times), statistics.median(bare_times)
    return {"trainer_epoch_s": t, "bare_epoch_s": b, "ratio": t / b, "n_train": len(splits.train),
            "trainer_min_s": min(trainer_times), "bare_min_s": min(bare_times),
            "min_ratio": min(trainer_times) / min(bare_times)}


def time_mlflow_per_cell(cells: int, epochs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        tracker = Tracker(f"sqlite:///{tmp}/mlflow.db", "bench")
        plan = plan_cell(Cell("fashion-mnist", "random", 0.5, 0, "cpu"))
        costs = []
        for i in range(cells):
            cell = Cell("fashion-mnist", "random", 0.5, i, "cpu")
            t0 = time.perf_counter()
            run = tracker.start_cell(cell, "bench", plan.params(), plan.tags())
            for epoch in range(epochs):
                run.log_metrics({"train_loss": 0.5, "lr": 0.1, "val_loss": 0.4, "val_accuracy": 0.9,
                                 "active_samples": 1.0, "epoch_seconds": 1.0}, step=epoch)
            run.finish({f"metric_{k}": float(k) for k in range(20)}, {"scores_cached": "false"})
            costs.append(time.perf_counter() - t0)
        return {"mlflow_cell_median_s": statistics.median(costs), "mlflow_cell_max_s": max(costs),
                "mlflow_cells": cells}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="fashion-mnist")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--repeats", type=int, default=6)
    parser.add_argument("--mlflow-cells", type=int, default=30)
    parser.add_argument("--out", default="results/bench-trainer.md")
    args = parser.parse_args()

    torch.use_deterministic_algorithms(True)
    loop = time_trainer_vs_bare(args.task, args.profile, args.repeats)
    tracking = time_mlflow_per_cell(args.mlflow_cells, epochs=get_task(args.task).profiles[args.profile].epochs)
    command = f"python scripts/bench_trainer.py --task {args.task} --profile {args.profile} --repeats {args.repeats}"
    text = "\n".join([
        "# Benchmark: harness trainer vs a bare torch loop; MLflow cost per cell", "",
        f"Command: `{command}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, CPU.  ",
        f"Data: real {args.task} ({loop['n_train']} training images), profile {args.profile}, one epoch per "
        f"measurement, {args.repeats} repeats in ABBA order.", "",
        "| figure | value |", "|---|---|",
        f"| trainer epoch (median) | {loop['trainer_epoch_s']:.2f} s |",
        f"| bare loop epoch (median) | {loop['bare_epoch_s']:.2f} s |",
        f"| ratio of medians trainer / bare (target <= 1.05) | {loop['ratio']:.3f} |",
        f"| trainer epoch (fastest) | {loop['trainer_min_s']:.2f} s |",
        f"| bare loop epoch (fastest) | {loop['bare_min_s']:.2f} s |",
        f"| ratio of fastest epochs | {loop['min_ratio']:.3f} |",
        f"| MLflow cost per cell, median of {tracking['mlflow_cells']} (target < 1 s) | "
        f"{tracking['mlflow_cell_median_s']:.3f} s |",
        f"| MLflow cost per cell, max | {tracking['mlflow_cell_max_s']:.3f} s |", "",
    ])
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
