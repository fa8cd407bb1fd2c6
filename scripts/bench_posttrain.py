"""Post-training pruning on the packaged SmolLM2-135M (task ppl-speeches, the offline stand-in
for WikiText-2): each method's pruning time against one plain forward pass over the same
calibration set, and the perplexity after pruning. Writes results/bench-posttrain-<profile>.md.

    PYTHONPATH=. python scripts/bench_posttrain.py --calibration 32 --test-windows 16 --threads 1
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time
from pathlib import Path

import torch

from benchmark.training.calibration import draw_calibration
from benchmark.api.hooks import TrainState
from benchmark.api.registry import get_method, get_task
from benchmark.training.trainer import Trainer

RUNS = [("magnitude", {"schedule": "posttrain", "scope": "layer"}, 0.5),
        ("magnitude", {"schedule": "posttrain", "pattern": "2:4"}, 0.5),
        ("wanda", {}, 0.5), ("wanda", {"pattern": "2:4"}, 0.5),
        ("sparsegpt", {}, 0.5), ("sparsegpt", {"pattern": "2:4"}, 0.5)]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--calibration", type=int, default=32)
    parser.add_argument("--test-windows", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = get_task("ppl-speeches")(args.profile, test_limit=args.test_windows)
    splits = task.load_splits()
    trainer = Trainer(task, splits, torch.device("cpu"), seed=args.seed)
    dense = trainer.build_model()
    rows = []

    batches = draw_calibration(task, splits.train, args.calibration, torch.Generator().manual_seed(1), task.recipe.eval_batch_size)

    def forward_seconds() -> float:
        """One plain forward pass of the dense model over the calibration set, timed right
        before each method so that both see the same load on a shared machine."""
        began = time.perf_counter()
        with torch.no_grad():
            for batch in batches:
                dense(batch.x)
        return time.perf_counter() - began

    forward_seconds()  # warm-up
    t0 = time.perf_counter()
    dense_ppl = trainer.evaluate(dense, splits.test)["perplexity"]
    rows.append({"method": "dense", "pattern": "-", "perplexity": dense_ppl, "prune_seconds": 0.0,
                 "eval_seconds": time.perf_counter() - t0})
    for name, options, ratio in RUNS:
        model = copy.deepcopy(dense)
        method = get_method(name)(ratio, args.seed, **({"calibration_samples": args.calibration} if name != "magnitude"
                                                        else {}), **options)
        state = TrainState(model=model, optimizer=None, task=task, splits=splits, device=torch.device("cpu"),
                           epochs=0, total_steps=0, steps_per_full_epoch=1)
        forward = forward_seconds()
        t0 = time.perf_counter()
        method.on_run_start(state)
        seconds = time.perf_counter() - t0
        method.on_run_end(state)
        t0 = time.perf_counter()
        ppl = trainer.evaluate(model, splits.test)["perplexity"]
        rows.append({"method": name, "pattern": options.get("pattern", "unstructured"),
                     "scope": options.get("scope", ""), "perplexity": ppl, "prune_seconds": seconds,
                     "prune_over_forward": seconds / forward, "forward_seconds": forward, "sparsity": method.summary()["realised_sparsity"],
                     "eval_seconds": time.perf_counter() - t0})
        print(rows[-1], flush=True)
    out = Path("results") / f"bench-posttrain-{args.profile}-cal{args.calibration}"
    meta = {"task": "ppl-speeches (offline stand-in for WikiText-2: 2012 US convention speeches)",
            "model": task.recipe.model, "window": task.max_length, "calibration_samples": args.calibration,
            "test_windows": len(splits.test), "threads": args.threads, "seed": args.seed,
            "forward_seconds_over_calibration (first)": rows[1]["forward_seconds"], "torch": torch.__version__, "machine": platform.machine(),
            "load_average": os.getloadavg(), "command": f"PYTHONPATH=. python scripts/bench_posttrain.py "
            f"--profile {args.profile} --calibration {args.calibration} --test-windows {args.test_windows} "
            f"--threads {args.threads}"}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    lines = [f"# Post-training pruning of {meta['model']} on {meta['task']}", "",
             f"Windows of {meta['window']} tokens; {args.calibration} calibration windows from the training split; "
             f"perplexity on {meta['test_windows']} test windows; ratio 0.5; {args.threads} thread(s); one "
             f"calibration seed ({args.seed}); load average at the end {meta['load_average']}. Each method's "
             f"pruning time is divided by a plain forward pass over the same calibration set timed just before it.",
             "", f"Command: `{meta['command']}`", "",
             "| method | pattern | perplexity | pruning s | forward s | pruning / one forward pass |",
             "|---|---|---|---|---|---|"]
    for row in rows:
        ratio = f"{row['prune_over_forward']:.2f}x" if "prune_over_forward" in row else "-"
        label = row["method"] + (f" ({row['scope']} scope)" if row.get("scope") else "")
        lines.append(f"| {label} | {row['pattern']} | {row['perplexity']:.2f} | {row['prune_seconds']:.1f} | "
                     f"{row.get('forward_seconds', 0.0):.1f} | {ratio} |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
