"""Run the reference code of movement pruning (Hugging Face's movement-pruning research code),
official PLATON (``QingruZhang/PLATON`` ``Pruner.py``) and SEVEN's PLATON and "movement"
(``xiaojinying/SEVEN`` ``strategies/pruner.py``) on the tiny fixed encoder of
``tests/helpers_finetune_prune.py`` and write what they produced to
``tests/fixtures/finetune_prune_reference.json``.

Usage (the references are not part of this project)::

    git clone https://github.com/QingruZhang/PLATON /tmp/ref/platon       # Pruner.py
    git clone https://github.com/xiaojinying/SEVEN /tmp/ref/seven
    sed -i "s/torch.device('cuda:0')/torch.device('cpu')/g" /tmp/ref/seven/strategies/*.py /tmp/ref/seven/pruning/*.py
    # Hugging Face's examples/research_projects/movement-pruning: emmental/modules/binarizer.py,
    # emmental/modules/masked_nn.py and masked_run_glue.py's schedule_threshold / regularization,
    # in one folder as binarizer.py, masked_nn.py, masked_run_glue.py
    PYTHONPATH=.:tests python scripts/finetune_prune_reference_fixture.py \\
        --platon /tmp/ref/platon --seven /tmp/ref/seven --hf /tmp/ref/hf --hf-commit <commit> ...

How their code is driven, and nothing else changed: SEVEN's hard-coded ``cuda:0`` is rewritten
to ``cpu``; their training loops (SEVEN's ``utils.train_eval_loop``, PLATON's README recipe,
``masked_run_glue.train``) are re-stated here in their order (forward, loss [+ regularisation],
backward, ``optimizer.step()``, then the pruner) with plain SGD on fixed batches.
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

from helpers_finetune_prune import STEPS, WEIGHT_LR, TinyEncoder, batch, data, pack_mask

PLATON_RUN = {"beta1": 0.85, "beta2": 0.95, "deltaT": 3, "steps": 10, "remaining": 0.5}
PLATON_SCHEDULE = {"total_step": 100, "warmup_steps": 5, "initial_warmup": 1, "final_warmup": 5,
                   "initial_threshold": 1.0, "final_threshold": 0.3, "deltaT": 10}
SEVEN_RUN = {"alpha_1": 0.8, "alpha_2": 0.9, "t_i": 1, "iter_num": 6, "target_ratio": 0.5, "steps": STEPS}
MOVEMENT_RUN = {"mask_scores_learning_rate": 0.5, "steps": STEPS, "keep": [0.5, 0.3]}
SOFT_RUN = {"mask_scores_learning_rate": 0.5, "steps": STEPS, "initial_threshold": 0.05, "final_threshold": 0.5,
            "final_lambda": 2.0, "final_mask_threshold": 0.5}
HF_SCHEDULE = {"total_step": 100, "warmup_steps": 10, "initial_warmup": 1, "final_warmup": 2,
               "initial_threshold": 1.0, "final_threshold": 0.15, "final_lambda": 400.0}
ENCODER = ("intermediate.dense.weight", "output.dense.weight")


def commit_of(path: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(path), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


def tensors(named: dict) -> dict:
    return {n: {"shape": list(t.shape), "values": t.detach().double().flatten().tolist()} for n, t in named.items()}


def run_platon(platon_dir: Path) -> dict:
    sys.path.insert(0, str(platon_dir))
    from Pruner import Pruner

    cfg = PLATON_RUN
    args = SimpleNamespace(beta1=cfg["beta1"], beta2=cfg["beta2"], deltaT=cfg["deltaT"], initial_threshold=1.0,
                           final_threshold=cfg["remaining"], initial_warmup=1, final_warmup=0,
                           warmup_steps=cfg["steps"])  # every step in the initial warm-up: no masking
    model = TinyEncoder()
    x, y = data()
    optimizer = torch.optim.SGD(model.parameters(), lr=WEIGHT_LR)
    pruner = Pruner(model, args=args, total_step=cfg["steps"], mask_param_name=list(ENCODER), pruner_name="PLATON")
    for step in range(cfg["steps"]):
        xb, yb = batch(step, x, y)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()
        threshold, mask_threshold = pruner.update_and_pruning(model, step)
        assert mask_threshold is None
    final = copy.deepcopy(model)
    mask_threshold = pruner.mask_with_threshold(final, cfg["remaining"])
    weights = dict(final.named_parameters())
    sched = PLATON_SCHEDULE
    table_args = SimpleNamespace(**{k: v for k, v in sched.items() if k != "total_step"}, beta1=0.85, beta2=0.95)
    table = Pruner(TinyEncoder(), args=table_args, total_step=sched["total_step"])
    schedule = [list(table.schedule_threshold_comb(step)) for step in range(sched["total_step"])]
    return {"config": cfg, "ipt": tensors(pruner.ipt), "exp_avg_ipt": tensors(pruner.exp_avg_ipt),
            "exp_avg_unc": tensors(pruner.exp_avg_unc), "mask_threshold": mask_threshold,
            "keep_bits": {n: pack_mask(weights[n] != 0) for n in ENCODER},
            "schedule_config": sched, "schedule": schedule}


def run_seven(seven_dir: Path, algo: str) -> dict:
    sys.path.insert(0, str(seven_dir))
    from strategies import pruner as seven_pruner

    cfg = SEVEN_RUN
    model = TinyEncoder()
    model.head.classifier.is_classifier = True  # as SEVEN's model.py marks its classifier
    x, y = data()
    optimizer = torch.optim.SGD(model.parameters(), lr=WEIGHT_LR)
    config = SimpleNamespace(alpha_1=cfg["alpha_1"], alpha_2=cfg["alpha_2"], pruning_algo=algo,
                             iter_num=cfg["iter_num"])
    pruning = seven_pruner(model, compression=cfg["target_ratio"], config=config, optimizer=optimizer)
    pruning.init_mask()
    names = {id(module): name for name, module in model.named_modules()}
    masks_per_step = []
    for iter_num in range(cfg["steps"]):
        xb, yb = batch(iter_num, x, y)
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(model(xb), yb).backward()
        optimizer.step()
        if cfg["t_i"] <= iter_num < cfg["t_i"] + cfg["iter_num"] - 1:
            masks = pruning.model_masks(iter_num=iter_num - cfg["t_i"])
            masks_per_step.append({"step": iter_num + 1, "keep_bits": {
                names[id(module)] + ".weight": pack_mask(mask != 0) for module, mask in masks.items()}})
    importances = {names[id(module)] + ".weight": imp for module, imp in pruning.importances.items()}
    return {"config": cfg, "masks": masks_per_step, "final_importance": tensors(importances)}


def run_movement(hf_dir: Path, method: str) -> dict:
    sys.path.insert(0, str(hf_dir))
    from binarizer import ThresholdBinarizer, TopKBinarizer
    from masked_nn import MaskedLinear
    from masked_run_glue import regularization, schedule_threshold

    cfg = MOVEMENT_RUN if method == "topK" else SOFT_RUN
    pruning_method = "topK" if method == "topK" else "sigmoied_threshold"
    model = TinyEncoder(linear=lambda i, o: MaskedLinear(i, o, pruning_method=pruning_method))
    x, y = data()
    scores = [p for n, p in model.named_parameters() if "mask_scores" in n]
    weights = [p for n, p in model.named_parameters() if "mask_scores" not in n]
    optimizer = torch.optim.SGD([{"params": scores, "lr": cfg["mask_scores_learning_rate"]},
                                 {"params": weights, "lr": WEIGHT_LR}], lr=WEIGHT_LR)
    steps = cfg["steps"]
    for step in range(steps):
        if method == "topK":  # the whole run in the initial warm-up: threshold 1, everything kept
            threshold, regu_lambda = schedule_threshold(step, steps, steps, 1.0, 0.5, 1, 0, 0.0)
        else:
            threshold, regu_lambda = schedule_threshold(step, steps, steps, cfg["initial_threshold"],
                                                        cfg["final_threshold"], 1, 0, cfg["final_lambda"])
        xb, yb = batch(step, x, y)
        loss = torch.nn.functional.cross_entropy(model(xb, threshold), yb)
        if method != "topK":
            loss = loss + regu_lambda * regularization(model=model, mode="l1")
        loss.backward()
        optimizer.step()
        model.zero_grad()
    named = {n.replace("mask_scores", "weight"): p.detach().clone() for n, p in model.named_parameters()
             if "mask_scores" in n}
    out = {"config": cfg, "scores": tensors(named)}
    if method == "topK":
        out["keep_bits"] = {str(keep): {n: pack_mask(TopKBinarizer.apply(s, keep) != 0) for n, s in named.items()}
                            for keep in cfg["keep"]}
        sched = HF_SCHEDULE
        out["schedule_config"] = sched
        out["schedule"] = [list(schedule_threshold(step, sched["total_step"], sched["warmup_steps"],
                                                   sched["initial_threshold"], sched["final_threshold"],
                                                   sched["initial_warmup"], sched["final_warmup"],
                                                   sched["final_lambda"])) for step in range(sched["total_step"])]
    else:
        tau = cfg["final_mask_threshold"]
        out["keep_bits"] = {n: pack_mask(ThresholdBinarizer.apply(s, tau, True) != 0) for n, s in named.items()}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--platon", type=Path, required=True, help="checkout of QingruZhang/PLATON")
    parser.add_argument("--seven", type=Path, required=True, help="checkout of xiaojinying/SEVEN (cuda:0 -> cpu)")
    parser.add_argument("--hf", type=Path, required=True, help="folder with the movement-pruning reference files")
    parser.add_argument("--platon-commit", default=None)
    parser.add_argument("--seven-commit", default=None)
    parser.add_argument("--hf-commits", default="unknown", help="commit of each file, as text for the fixture")
    parser.add_argument("--out", type=Path, default=Path("tests/fixtures/finetune_prune_reference.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    fixture = {
        "sources": {
            "platon": {"repository": "https://github.com/QingruZhang/PLATON", "file": "Pruner.py",
                       "commit": args.platon_commit or commit_of(args.platon)},
            "seven": {"repository": "https://github.com/xiaojinying/SEVEN", "file": "strategies/pruner.py",
                      "commit": args.seven_commit or commit_of(args.seven),
                      "changed": "torch.device('cuda:0') -> torch.device('cpu')"},
            "movement": {"repository": "https://github.com/huggingface/transformers",
                         "files": ["examples/research_projects/movement-pruning/emmental/modules/binarizer.py",
                                   "examples/research_projects/movement-pruning/emmental/modules/masked_nn.py",
                                   "examples/research_projects/movement-pruning/masked_run_glue.py"],
                         "commits": args.hf_commits},
            "how": "scripts/finetune_prune_reference_fixture.py", "torch": torch.__version__,
        },
        "model": "tests/helpers_finetune_prune.py TinyEncoder(); data(); batch(step); SGD lr WEIGHT_LR",
        "mask_convention": "keep_bits: np.packbits of the keep mask, row-major, base64",
        "platon": run_platon(args.platon),
        "seven_platon": run_seven(args.seven, "PLATON"),
        "seven_movement": run_seven(args.seven, "movement"),
        "movement": run_movement(args.hf, "topK"),
        "soft_movement": run_movement(args.hf, "sigmoied_threshold"),
    }
    args.out.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
