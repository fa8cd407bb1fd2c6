"""Write tests/fixtures/infobatch_reference.json by running the reference InfoBatch on a fixed loss trace.

The reference is NUS-HPC-AI-Lab/InfoBatch (``infobatch/infobatch.py``); its code is not part of
this project. Check it out and point ``--reference`` at the checkout (the folder holding
``infobatch/``); the script imports the reference's module from there and drives it the way
its README and ``examples/cifar_example.py`` do: the data set wrapped in ``InfoBatch``, one
``dataset.sampler`` iterated once per epoch in batches, ``set_active_indices`` with each batch's
indices (what the reference's patched DataLoader iterator does) and ``dataset.update(losses)``
after every batch. Not through a real ``DataLoader``: from torch 2.2 on, ``BatchSampler`` takes
each batch with ``itertools.islice(iter_of_sampler, ...)``, which calls ``iter()`` on the
sampler again, and ``IBSampler.__iter__`` resets (re-prunes) on every call, so an epoch never
ends (observed with torch 2.13; with ``drop_last=True`` it resets ``batch_size`` times per
epoch instead). Iterating the sampler once per epoch is what torch <= 2.1's ``BatchSampler``
(``for idx in self.sampler``) did. The losses are not a network's: sample i's loss in epoch e is a fixed number of a
seeded trace, so that the harness's method can be fed exactly the same losses.

Recorded per configuration and epoch: the scores the epoch started with (the last-seen losses),
the well-learned set (``scores < scores.mean()``, the reference's rule, evaluated on the
reference's own ``scores`` tensor before the epoch's sampler reset), the global numpy seed the
reference's sampler set for the epoch (``IBSampler.reset`` seeds with its iteration count), the
indices the sampler yielded, and the weight ``update`` applied to each yielded sample.

    python scripts/infobatch_reference_fixture.py --reference /path/to/InfoBatch \
        [--out tests/fixtures/infobatch_reference.json]
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

N_SAMPLES = 50
BATCH_SIZE = 8
TRACE_SEED = 20240101
#: (epochs, prune_ratio, delta): the first stops pruning at a fractional threshold (10 x 0.875 =
#: 8.75, where the reference's weight reset never fires), the second at an integral one (8 x 0.75 = 6)
CONFIGS = ((10, 0.5, 0.875), (8, 0.3, 0.75))


def loss_trace(epochs: int, n: int, seed: int) -> np.ndarray:
    """float32 losses [epochs, n]: a per-sample difficulty that decays with the epoch, times noise
    (continuous values: no two scores tie, and none sits on the mean)."""
    rng = np.random.default_rng(seed)
    difficulty = rng.lognormal(mean=0.0, sigma=0.8, size=n)
    decay = np.exp(-0.25 * np.arange(epochs))[:, None]
    noise = rng.lognormal(mean=0.0, sigma=0.3, size=(epochs, n))
    return (difficulty[None, :] * decay * noise).astype(np.float32)


def run_reference(module, epochs: int, prune_ratio: float, delta: float, trace: np.ndarray) -> list[dict]:
    import torch

    dataset = module.InfoBatch(list(range(N_SAMPLES)), epochs, prune_ratio, delta)
    sampler = dataset.sampler  # one IBSampler for the whole run, as the reference's DataLoader holds one
    records = []
    for epoch in range(epochs):
        scores = dataset.scores.clone()
        well_learned = np.where((scores < scores.mean()).numpy())[0]
        yielded, weights = [], []
        order = list(sampler)  # one iter() per epoch: IBSampler.reset() prunes (or not) and reseeds numpy
        for start in range(0, len(order), BATCH_SIZE):  # what torch <= 2.1's BatchSampler did
            indices = torch.tensor(order[start:start + BATCH_SIZE])
            dataset.set_active_indices(indices)  # what the reference's patched DataLoader iterator does
            weights.extend(dataset.get_weights(indices).tolist())
            yielded.extend(int(i) for i in indices)
            dataset.update(torch.from_numpy(trace[epoch][indices.numpy()].copy()))
        records.append({
            "epoch": epoch,
            "numpy_seed": sampler.iterations - 1,  # reset() seeds with the count, then increments it
            "scores_at_start": [float(v) for v in scores.tolist()],
            "mean_score": float(scores.mean()),
            "well_learned": [int(i) for i in well_learned],
            "yielded": yielded,
            "weights": weights,
        })
    return records


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", required=True, type=Path, help="checkout of NUS-HPC-AI-Lab/InfoBatch")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/infobatch_reference.json"))
    args = parser.parse_args(argv)
    sys.path.insert(0, str(args.reference.resolve()))
    import torch
    from infobatch import infobatch as module  # the reference's module, imported from the checkout

    commit = subprocess.run(["git", "-C", str(args.reference), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown"
    configs = []
    for epochs, prune_ratio, delta in CONFIGS:
        trace = loss_trace(epochs, N_SAMPLES, TRACE_SEED + epochs)
        configs.append({
            "epochs": epochs, "prune_ratio": prune_ratio, "delta": delta,
            "loss_trace": [[float(v) for v in row] for row in trace],
            "epochs_run": run_reference(module, epochs, prune_ratio, delta, trace),
        })
    fixture = {
        "reference": {
            "repository": "NUS-HPC-AI-Lab/InfoBatch", "commit": commit, "file": "infobatch/infobatch.py",
            "classes": ["InfoBatch", "IBSampler"],
        },
        "how": (
            "scripts/infobatch_reference_fixture.py: InfoBatch(list(range(50)), epochs, prune_ratio, delta); "
            "its dataset.sampler iterated once per epoch and cut into batches of "
            f"{BATCH_SIZE} (as torch <= 2.1's BatchSampler did; torch >= 2.2's re-calls iter() on the sampler "
            "per batch, which re-prunes for ever), set_active_indices(batch) as the reference's patched "
            "DataLoader iterator does, dataset.update(losses) after every batch; the losses are the fixed "
            "float32 trace below (sample i's loss in epoch e), not a network's"
        ),
        "torch": torch.__version__, "numpy": np.__version__, "python": sys.version.split()[0],
        "n_samples": N_SAMPLES, "batch_size": BATCH_SIZE,
        "configs": configs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {args.out} (reference commit {commit})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
