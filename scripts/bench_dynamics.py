"""Benchmark: what the training-dynamics recorder costs (results/bench-dynamics.md).

Time: one proxy epoch of a task's cpu profile (Fashion-MNIST's CNN, rt-polarity's text
encoder), with the recorder hook against without it, interleaved (ABBA) over ``--repeats``
pairs, same seed and data; reports the median of each and the median of the per-pair ratios,
in wall and CPU seconds. The training set may be trimmed (the recorder's work per batch is
proportional to the batch, as training's is, so the ratio does not depend on n).

Memory: the recorder's buffers for CIFAR-100 at the paper profile (50,000 samples, 100
classes, 200 epochs), allocated for real on the CPU and summed from the tensors it holds,
against :func:`benchmark.training.dynamics.recorder_bytes`.

    python scripts/bench_dynamics.py [--tasks fashion-mnist:3000 rt-polarity:320] [--repeats 3]
        [--threads 1] [--out results/bench-dynamics.md]

(``task:N`` trims that task's training set to N samples; ``task`` alone uses its cpu profile's.)
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path
from types import SimpleNamespace

import torch

from benchmark.training.dynamics import DynamicsRecorder, recorder_bytes
from benchmark.api.registry import get_task
from benchmark.training.trainer import Trainer

ROOT = Path(__file__).resolve().parent.parent


class TimedRecorder(DynamicsRecorder):
    """The recorder, with the CPU time spent inside its per-batch hook summed: a figure measured
    within one run, which a busy machine disturbs far less than the difference of two runs."""

    inside = 0.0

    def on_batch_loss(self, *args):
        start = time.process_time()
        super().on_batch_loss(*args)
        self.inside += time.process_time() - start


def one_epoch(task, splits, recorder: bool) -> tuple[float, float, float]:
    """Wall and CPU seconds of one epoch, and the CPU seconds inside the recorder's hook."""
    hooks = [TimedRecorder(len(splits.train), task.num_classes, 1)] if recorder else []
    trainer = Trainer(task, splits, torch.device("cpu"), seed=0, hooks=hooks, epochs=1, evaluate_each_epoch=False)
    model = trainer.build_model()
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.fit(model)
    return time.perf_counter() - wall, time.process_time() - cpu, hooks[0].inside if recorder else 0.0


def time_task(name: str, repeats: int, train_limit: int | None) -> dict:
    overrides = {"train_limit": train_limit} if train_limit else {}
    task = get_task(name)("cpu", **overrides)
    splits = task.load_splits()
    one_epoch(task, splits, recorder=False)  # warm-up: first-touch allocations, lazy imports
    plain, recorded = [], []
    for pair in range(repeats):
        order = (False, True) if pair % 2 == 0 else (True, False)  # ABBA
        for with_recorder in order:
            (recorded if with_recorder else plain).append(one_epoch(task, splits, with_recorder))
    ratios = [r[0] / p[0] for p, r in zip(plain, recorded)]
    cpu_ratios = [r[1] / p[1] for p, r in zip(plain, recorded)]
    return {"task": name, "n": len(splits.train), "classes": task.num_classes, "model": task.recipe.model,
            "batch": task.recipe.batch_size, "plain": statistics.median(p[0] for p in plain),
            "recorded": statistics.median(r[0] for r in recorded), "ratio": statistics.median(ratios),
            "cpu_ratio": statistics.median(cpu_ratios), "ratios": ratios,
            "inside": statistics.median(r[2] / r[1] for r in recorded)}


def cifar100_paper_memory() -> tuple[int, int]:
    n, classes, epochs = 50_000, 100, 200
    recorder = DynamicsRecorder(n, classes, epochs)
    recorder.on_run_start(SimpleNamespace(device=torch.device("cpu")))
    held = [*recorder.tables.values(), recorder.seen, recorder.previous]
    actual = sum(t.numel() * t.element_size() for t in held)
    return actual, recorder_bytes(n, classes, epochs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="+", default=["fashion-mnist:3000", "rt-polarity:320"])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "results" / "bench-dynamics.md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    rows = []
    for spec in args.tasks:
        name, _, limit = spec.partition(":")
        rows.append(time_task(name, args.repeats, int(limit) if limit else None))
    actual, computed = cifar100_paper_memory()
    load_after = os.getloadavg()
    lines = [
        "# The training-dynamics recorder: time and memory",
        "",
        f"Written by `python scripts/bench_dynamics.py --tasks {' '.join(args.tasks)} --repeats {args.repeats} "
        f"--threads {args.threads}` on {platform.processor() or platform.machine()}, "
        f"torch {torch.__version__}, {args.threads} thread(s); load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after (a shared machine: other jobs ran meanwhile).",
        "",
        "One proxy epoch of the task's cpu profile (training set trimmed to the `task:N` given), with the "
        "recorder hook against without it, alternated ABBA; medians over the pairs. Target: at most +5%.",
        "",
        "| task | model | n | classes | batch | epoch without (s) | epoch with (s) | with / without (wall) "
        "| with / without (CPU) | per-pair wall ratios | recorder hook's share of the epoch's CPU time |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['task']} | {r['model']} | {r['n']:,} | {r['classes']} | {r['batch']} | {r['plain']:.2f} | "
                     f"{r['recorded']:.2f} | {r['ratio']:.3f} | {r['cpu_ratio']:.3f} | "
                     f"{', '.join(f'{x:.3f}' for x in r['ratios'])} | {100 * r['inside']:.2f}% |")
    lines += [
        "",
        "The last column is measured inside each recorded run (CPU time spent in the recorder's hook over "
        "the epoch's CPU time, median over the runs): on a busy shared machine the difference of two runs "
        "(the ratio columns) swings by more than the recorder costs, while this share is far less "
        "disturbed by what else runs. Ratios below 1 (the recorded runs faster) are that noise, not a gain.",
        "",
        "Memory for CIFAR-100 at the paper profile (50,000 samples x 100 classes x 200 epochs), from the "
        "recorder's buffers allocated for real: "
        f"{actual:,} bytes = {actual / 2**30:.3f} GiB (`recorder_bytes`: {computed:,}); target: under 1 GB. "
        "An O(n x classes x epochs) log of float32 softmaxes would take "
        f"{50_000 * 100 * 200 * 4 / 2**30:.1f} GiB.",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
