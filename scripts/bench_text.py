"""Benchmark: training tokens per second of a harness text cell against a bare Hugging Face
forward/backward loop on the same batches.

Both loops fine-tune the same model (same initial weights, same dropout draws) on the same
token batches in the same order, trimmed to each batch's longest row, with the same AdamW
and learning-rate schedule; they alternate in ABBA order so that machine noise hits both
alike. Tokens are the real (non-padding) tokens of the batches. The ratio is
median(harness tokens/s) / median(bare tokens/s) from this one run.

    python scripts/bench_text.py [--task rt-polarity] [--profile cpu] [--batches 40] [--repeats 4]
"""
from __future__ import annotations

import argparse
import math
import platform
import statistics
import time
from pathlib import Path

import torch

from benchmark.api.registry import get_task
from benchmark.training.trainer import Trainer, build_optimizer, lr_factor
from tasks.text.encoders import ATTENTION, IDS, TYPES
from tasks.text.tokenized import trim_padding


def bare_hf_epoch(task, splits, hf_model, optimizer, order) -> None:
    """The loop one writes by hand around a Hugging Face model: no hooks, no bookkeeping."""
    r = task.recipe
    hf_model.train()
    batches = math.ceil(len(order) / r.batch_size)
    for b in range(batches):
        for group in optimizer.param_groups:
            group["lr"] = r.lr * lr_factor(r.schedule, b / batches, r.milestones, r.gamma)
        idx = order[b * r.batch_size : (b + 1) * r.batch_size]
        tokens = trim_padding(splits.train.x[idx]).long()
        logits = hf_model(input_ids=tokens[:, IDS], token_type_ids=tokens[:, TYPES],
                          attention_mask=tokens[:, ATTENTION]).logits
        loss = torch.nn.functional.cross_entropy(logits, splits.train.y[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="rt-polarity")
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=4)
    parser.add_argument("--out", default="results/bench-text.md")
    args = parser.parse_args()

    probe = get_task(args.task)(args.profile)
    task = get_task(args.task)(args.profile, train_limit=args.batches * probe.recipe.batch_size)
    splits = task.load_splits()
    device, seed = torch.device("cpu"), 0
    order = torch.randperm(len(splits.train), generator=torch.Generator().manual_seed(seed * 2 + 1))
    real_tokens = int(splits.train.x[:, ATTENTION].sum())
    harness_s, bare_s = [], []

    def run_harness():
        trainer = Trainer(task, splits, device, seed=seed, epochs=1, evaluate_each_epoch=False)
        model = trainer.build_model()
        torch.manual_seed(1)  # the dropout draws
        t0 = time.perf_counter()
        trainer.fit(model)
        harness_s.append(time.perf_counter() - t0)
        return model.encoder

    def run_bare():
        model = Trainer(task, splits, device, seed=seed, epochs=1).build_model()  # same initial weights
        optimizer = build_optimizer(model, task)
        torch.manual_seed(1)
        t0 = time.perf_counter()
        bare_hf_epoch(task, splits, model.encoder, optimizer, order)
        bare_s.append(time.perf_counter() - t0)
        return model.encoder

    for repeat in range(args.repeats):
        pair = (run_harness, run_bare) if repeat % 2 == 0 else (run_bare, run_harness)
        first, second = pair[0](), pair[1]()
        same = all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
        print(f"repeat {repeat + 1}: harness {harness_s[-1]:.2f}s, bare {bare_s[-1]:.2f}s, "
              f"identical weights: {same}", flush=True)

    h, b = statistics.median(harness_s), statistics.median(bare_s)
    command = (f"python scripts/bench_text.py --task {args.task} --profile {args.profile} "
               f"--batches {args.batches} --repeats {args.repeats}")
    text = "\n".join([
        "# Benchmark: harness text cell vs a bare Hugging Face loop (tokens per second)", "",
        f"Command: `{command}`  ",
        f"Machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}, CPU.  ",
        f"Data: real {args.task}, profile {args.profile} (model {task.recipe.model}), the same {args.batches} "
        f"batches of {task.recipe.batch_size} ({real_tokens} real tokens) per measurement, "
        f"{args.repeats} repeats in ABBA order; weights identical after each pair: {same}.", "",
        "| figure | value |", "|---|---|",
        f"| harness: tokens/s (median epoch {h:.2f} s) | {real_tokens / h:.0f} |",
        f"| bare HF loop: tokens/s (median epoch {b:.2f} s) | {real_tokens / b:.0f} |",
        f"| ratio harness / bare tokens/s (target >= 0.95) | {b / h:.3f} |",
        f"| ratio of fastest epochs | {min(bare_s) / min(harness_s):.3f} |", "",
    ])
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
