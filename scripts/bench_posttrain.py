"""Post-training pruning on the packaged SmolLM2-135M (task ppl-speeches, the offline stand-in
for WikiText-2): each method's pruning time against one plain forward pass over the same
calibration set, the process's peak resident memory during the pruning beyond what it held
before (the model, its pruned copy and the calibration batches), and the perplexity after
pruning. Writes results/bench-posttrain-<profile>-cal<N>.{md,json}.

Peak memory is Linux's VmHWM, reset before each method by writing 5 to /proc/self/clear_refs.
glibc keeps freed memory of earlier methods for reuse, which would hide a later method's peak:
measure memory in a run of its own with ``MALLOC_MMAP_THRESHOLD_=65536`` (every allocation of
64 KiB or more mapped on its own and returned when freed, so the resident set follows the live
tensors), and time in a run without it. The peak is compared with a bound computed from the model's shapes: the largest Linear layer's
Hessian (in_features^2 float32, SparseGPT's statistic) plus one layer's calibration
activations (the block inputs and outputs over the calibration set, float32).

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


def _status_kib(field: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


def reset_peak() -> int | None:
    """Reset the peak-RSS counter; return the resident set now, in KiB (None off Linux)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return None
    return _status_kib("VmRSS")


def memory_bound_mib(model, batches) -> dict[str, float]:
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    widest = max(m.in_features for m in linears)
    hidden = next((m.config.hidden_size for m in model.modules() if hasattr(getattr(m, "config", None), "hidden_size")),
                  linears[0].in_features)
    tokens = sum(int(b.x.shape[0]) * int(b.x.shape[-1]) for b in batches)  # x may stack ids and mask
    hessian = widest * widest * 4 / 2**20
    activations = 2 * tokens * hidden * 4 / 2**20
    return {"hessian_mib": hessian, "activations_mib": activations, "bound_mib": hessian + activations}


def _label(row: dict) -> str:
    return row["method"] + (f" ({row['scope']} scope)" if row.get("scope") else "")


def render(meta: dict, rows: list[dict]) -> str:
    """The markdown report; the memory column only from a run made for it (module docstring)."""
    bound, memory = meta["memory_bound"], bool(meta.get("malloc_mmap_threshold"))
    lines = [f"# Post-training pruning of {meta['model']} on {meta['task']}", "",
             f"Windows of {meta['window']} tokens; {meta['calibration_samples']} calibration windows from the training "
             f"split; perplexity on {meta['test_windows']} test windows; ratio 0.5; {meta['threads']} thread(s); one "
             f"calibration seed ({meta['seed']}); load average at the end {tuple(round(x, 2) for x in meta['load_average'])}. "
             f"Each method's pruning time is divided by a plain forward pass over the same calibration set timed "
             f"just before it."]
    if memory:
        lines[-1] += (f" Peak resident memory during the pruning beyond what the process held before it (the model, "
                      f"its copy being pruned, the calibration batches), against a bound of one Hessian of the widest "
                      f"Linear input ({bound['hessian_mib']:.1f} MiB) plus one layer's calibration activations, inputs "
                      f"and outputs ({bound['activations_mib']:.1f} MiB): {bound['bound_mib']:.1f} MiB.")
    else:
        lines[-1] += " Memory is measured in a run of its own (the `-memory` report beside this one)."
    if memory:  # its times are not a speed measurement: every large allocation was mapped on its own
        lines[-1] += " Times are not reported from this run (see the timing report beside it)."
        header, cells = "| method | pattern | perplexity | peak MiB beyond model |", []
        for row in rows:
            peak = "-" if row.get("peak_extra_mib") is None else format(row["peak_extra_mib"], ".1f")
            cells.append(f"| {_label(row)} | {row['pattern']} | {row['perplexity']:.2f} | {peak} |")
    else:
        header, cells = "| method | pattern | perplexity | pruning s | forward s | pruning / one forward pass |", []
        for row in rows:
            ratio = f"{row['prune_over_forward']:.2f}x" if "prune_over_forward" in row else "-"
            cells.append(f"| {_label(row)} | {row['pattern']} | {row['perplexity']:.2f} | {row['prune_seconds']:.1f} | "
                         f"{row.get('forward_seconds', 0.0):.1f} | {ratio} |")
    lines += ["", f"Command: `{meta['command']}`", "", header, "|---" * (header.count("|") - 1) + "|", *cells]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--calibration", type=int, default=32)
    parser.add_argument("--test-windows", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--render", metavar="JSON", help="only rewrite the markdown report of an earlier run's JSON")
    parser.add_argument("--tag", default="", help="appended to the output files' name (e.g. 'memory')")
    args = parser.parse_args()
    if args.render:
        report = json.loads(Path(args.render).read_text())
        Path(args.render).with_suffix(".md").write_text(render(report["meta"], report["rows"]))
        return 0
    torch.set_num_threads(args.threads)
    task = get_task("ppl-speeches")(args.profile, test_limit=args.test_windows)
    splits = task.load_splits()
    trainer = Trainer(task, splits, torch.device("cpu"), seed=args.seed)
    dense = trainer.build_model()
    rows = []
    torch.manual_seed(args.seed)

    batches = draw_calibration(task, splits.train, args.calibration, torch.Generator().manual_seed(1), task.recipe.eval_batch_size)

    def forward_seconds() -> float:
        """One plain forward pass of the dense model over the calibration set, timed right
        before each method so that both see the same load on a shared machine."""
        began = time.perf_counter()
        with torch.no_grad():
            for batch in batches:
                dense(batch.x)
        return time.perf_counter() - began

    bound = memory_bound_mib(dense, batches)
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
        before = reset_peak()
        t0 = time.perf_counter()
        method.on_run_start(state)
        seconds = time.perf_counter() - t0
        peak = _status_kib("VmHWM")
        extra = None if before is None or peak is None else (peak - before) / 1024
        method.on_run_end(state)
        t0 = time.perf_counter()
        ppl = trainer.evaluate(model, splits.test)["perplexity"]
        rows.append({"method": name, "pattern": options.get("pattern", "unstructured"),
                     "scope": options.get("scope", ""), "perplexity": ppl, "prune_seconds": seconds,
                     "prune_over_forward": seconds / forward, "forward_seconds": forward, "peak_extra_mib": extra,
                     "sparsity": method.summary()["realised_sparsity"],
                     "eval_seconds": time.perf_counter() - t0})
        print(rows[-1], flush=True)
    out = Path("results") / f"bench-posttrain-{args.profile}-cal{args.calibration}{'-' + args.tag if args.tag else ''}"
    meta = {"task": "ppl-speeches (offline stand-in for WikiText-2: 2012 US convention speeches)",
            "model": task.recipe.model, "window": task.max_length, "calibration_samples": args.calibration,
            "test_windows": len(splits.test), "threads": args.threads, "seed": args.seed,
            "forward_seconds_over_calibration (first)": rows[1]["forward_seconds"], "torch": torch.__version__, "machine": platform.machine(),
            "load_average": os.getloadavg(), "memory_bound": bound,
            "command": (f"MALLOC_MMAP_THRESHOLD_={os.environ['MALLOC_MMAP_THRESHOLD_']} "
                        if os.environ.get("MALLOC_MMAP_THRESHOLD_") else "") + f"PYTHONPATH=. python scripts/bench_posttrain.py "
            f"--profile {args.profile} --calibration {args.calibration} --test-windows {args.test_windows} "
            f"--threads {args.threads}" + (f" --tag {args.tag}" if args.tag else ""),
            "malloc_mmap_threshold": os.environ.get("MALLOC_MMAP_THRESHOLD_")}
    out.with_suffix(".json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1) + "\n")
    out.with_suffix(".md").write_text(render(meta, rows))
    print(out.with_suffix(".md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
