"""Does movement's bookkeeping alone change fine-tuning? Trains rt-polarity (real data, cpu
profile, the first N training snippets, one epoch) with no method and with movement at ratio 0
(it keeps every weight), and prints each run's training loss and validation accuracy. Equal
figures mean the collapse of movement cells comes from the masks its scores choose.

    PYTHONPATH=.:tests python scripts/movement_hooks_check.py --train-limit 2400
"""
from __future__ import annotations

import argparse

import torch

from benchmark.api.registry import get_method, get_task
from helpers_tiny import fit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-limit", type=int, default=2400)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    task = get_task("rt-polarity")("cpu", train_limit=args.train_limit, epochs=1)
    splits = task.load_splits()
    for name in ("none", "movement"):
        hooks = [] if name == "none" else [get_method("movement")(0.0, 0)]
        _, result = fit(task, hooks=hooks, splits=splits)
        last = result.state.history[-1]
        print(f"{name:9s} train_loss {last['train_loss']:.4f}  val_accuracy {last['val_accuracy']:.4f}", flush=True)


if __name__ == "__main__":
    main()
