"""Run the Wanda repository's own magnitude, Wanda and SparseGPT code (``lib/prune.py``,
``lib/sparsegpt.py``, ``lib/layerwrapper.py``) on the tiny fixed model of
``tests/helpers_llm_prune.py`` and write what it produced to ``tests/fixtures/wanda_reference.json``.

Usage (a checkout of https://github.com/locuslab/wanda, which is not part of this project)::

    git clone https://github.com/locuslab/wanda /tmp/wanda && git -C /tmp/wanda checkout 8e8fc87
    PYTHONPATH=.:tests python scripts/wanda_reference_fixture.py /tmp/wanda

How their code is driven, and nothing else changed: ``get_loaders`` (C4 from the hub) is
replaced by the fixed calibration tokens, ``Tensor.cuda`` and ``torch.cuda.synchronize`` /
``empty_cache`` are no-ops so that it runs on the CPU, and the model is the tiny one, which
has the interface their LLaMA path uses. ``--sparsity_type N:M`` there names the count
pruned per group (``prune_n``); the fixture records it as such.
"""
from __future__ import annotations

import argparse
import copy
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import torch

from helpers_llm_prune import (
    NSAMPLES,
    SAMPLE_INDICES,
    calibration_ids,
    pack_mask,
    prunable_layers,
    relative_output_error,
    tiny_lm,
)

RUNS = [("magnitude", "unstructured"), ("magnitude", "2:4"), ("magnitude", "4:8"),
        ("wanda", "unstructured"), ("wanda", "2:4"), ("wanda", "4:8"),
        ("sparsegpt", "unstructured"), ("sparsegpt", "2:4"), ("sparsegpt", "4:8")]
RATIO = 0.5


def cpu_shims() -> None:
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    torch.cuda.synchronize = lambda *args, **kwargs: None
    torch.cuda.empty_cache = lambda *args, **kwargs: None


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("wanda", type=Path, help="a checkout of locuslab/wanda")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/wanda_reference.json"))
    args = parser.parse_args()
    commit = subprocess.run(["git", "-C", str(args.wanda), "rev-parse", "HEAD"], capture_output=True,
                            text=True).stdout.strip() or "unknown (not a git checkout)"
    sys.path.insert(0, str(args.wanda))
    cpu_shims()
    import lib.prune as prune  # their code

    ids = calibration_ids()
    loader = [(ids[i : i + 1], None) for i in range(NSAMPLES)]
    prune.get_loaders = lambda *a, **k: (loader, None)
    torch.set_num_threads(1)
    dense = tiny_lm()
    runs = []
    for method, pattern in RUNS:
        model = copy.deepcopy(dense)
        prune_n, prune_m = (0, 0) if pattern == "unstructured" else map(int, pattern.split(":"))
        options = SimpleNamespace(sparsity_ratio=RATIO, nsamples=NSAMPLES, seed=0, use_variant=False)
        device = torch.device("cpu")
        if method == "magnitude":
            prune.prune_magnitude(options, model, None, device, prune_n=prune_n, prune_m=prune_m)
        elif method == "wanda":
            prune.prune_wanda(options, model, None, device, prune_n=prune_n, prune_m=prune_m)
        else:
            prune.prune_sparsegpt(options, model, None, device, prune_n=prune_n, prune_m=prune_m)
        layers = {}
        for name, module in prunable_layers(model).items():
            weight = module.weight.detach()
            layers[name] = {"shape": list(weight.shape), "keep_bits": pack_mask(weight != 0),
                            "pruned": int((weight == 0).sum()), "norm": float(weight.norm()),
                            "samples": [float(weight.flatten()[i]) for i in SAMPLE_INDICES]}
        runs.append({"method": method, "sparsity_type": pattern, "prune_n": prune_n, "prune_m": prune_m,
                     "sparsity_ratio": RATIO, "layers": layers,
                     "relative_output_error": relative_output_error(model, dense, ids)})
    fixture = {
        "source": {"repository": "https://github.com/locuslab/wanda", "commit": commit,
                   "files": ["lib/prune.py", "lib/sparsegpt.py", "lib/layerwrapper.py"],
                   "functions": ["prune_magnitude", "prune_wanda", "prune_sparsegpt"],
                   "how": __doc__.strip().splitlines()[0] + " See scripts/wanda_reference_fixture.py.",
                   "torch": torch.__version__},
        "model": "tests/helpers_llm_prune.py tiny_lm(); calibration tokens calibration_ids()",
        "mask_convention": "keep_bits: np.packbits of (weight != 0) after their pruning, row-major, base64",
        "samples_at_flat_indices": list(SAMPLE_INDICES),
        "runs": runs,
    }
    args.out.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {args.out} ({len(runs)} runs, commit {commit})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
