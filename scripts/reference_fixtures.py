"""Run the reference repositories' own scoring and selection functions on one fixed, synthetic
logged training run, and write their figures as test fixtures (tests/fixtures/*_reference.json).

Usage: ``python scripts/reference_fixtures.py CHECKOUTS_DIR`` where CHECKOUTS_DIR holds the
repositories' files at the commits in :data:`REPOS`, one folder per repository named
``owner+name`` (e.g. ``git -C MIRROR archive <commit> | tar -x -C CHECKOUTS_DIR/owner+name``).
Nothing of theirs is copied here: each function is taken from its file by name (its source
is compiled from their file, with shims for the module-level globals it reads), or their module
is imported from the checkout with small stand-ins for the packages it imports but these
functions never use (torchvision, their training base classes).

The input (written to tests/fixtures/dynamics_reference_input.json) is a logged run of
N samples, C classes and E epochs: per epoch a visiting order in minibatches and the
training-mode logits of every sample as visited, plus the final eval-mode logits and the
penultimate features of the trained model.
"""
from __future__ import annotations

import ast
import json
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import torch
from torch import nn

N, C, E, BATCH = 40, 4, 12, 8
FEATURES = 6
ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
REPOS = {
    "ccs": ("haizhongzheng/Coverage-centric-coreset-selection", "b37f166ace760e17f4d5baae17a828bdb88c6667"),
    "deepcore": ("PatrickZH/DeepCore", "74ec709f5ccba3b1e921b06c6e312d57741de3f8"),
    "tdds": ("zhangxin-xd/Dataset-Pruning-TDDS", "9c1e3bd39384c6707ac3acc62f564fe7c606b194"),
    "dual": ("behaapyy/dual-pruning", "4ab525d0a6298db8185733d7f4034f132dcb898a"),
    "moderate": ("tmllab/2023_ICLR_Moderate-DS", "7f64d319624aab981dab1604a1aa3d528eb82f76"),
}


def synthetic_run(seed: int = 0) -> dict:
    """A run where most samples are learned over the epochs, some late, some never (a
    negative drift: 'mislabeled'), with noise so that some are forgotten on the way."""
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(C), N // C)
    rng.shuffle(y)
    base = rng.normal(0, 1.0, (N, C))
    drift = rng.uniform(-0.3, 0.8, N)
    orders, logits = [], []
    for t in range(E):
        order = rng.permutation(N)
        z = base + rng.normal(0, 0.9, (N, C))
        z[np.arange(N), y] += drift * t
        orders.append(order)
        logits.append(z[order])  # as visited: row j is sample order[j]
    final = base + rng.normal(0, 0.3, (N, C))
    final[np.arange(N), y] += drift * E
    features = rng.normal(0, 1, (N, FEATURES)) + y[:, None] * 0.5
    as32 = lambda a: np.asarray(a, dtype=np.float32).tolist()
    return {"n": N, "classes": C, "epochs": E, "batch_size": BATCH, "targets": y.tolist(),
            "orders": [o.tolist() for o in orders], "visited_logits": [as32(z) for z in logits],
            "final_logits": as32(final), "features": as32(features)}


def functions_from(path: Path, names: list[str], namespace: dict) -> dict:
    """Compile the named top-level functions of ``path`` (their own source) into ``namespace``."""
    tree = ast.parse(path.read_text())
    wanted = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in names]
    missing = set(names) - {node.name for node in wanted}
    assert not missing, f"{path} lacks {missing}"
    exec(compile(ast.Module(body=wanted, type_ignores=[]), str(path), "exec"), namespace)
    return namespace


def arrays(run: dict):
    y = torch.tensor(run["targets"])
    orders = [torch.tensor(o) for o in run["orders"]]
    visited = [torch.tensor(z, dtype=torch.float32) for z in run["visited_logits"]]
    return y, orders, visited


def run_ccs(root: Path, run: dict) -> dict:
    repo = root / "haizhongzheng+Coverage-centric-coreset-selection"
    y, orders, visited = arrays(run)
    ns = functions_from(repo / "generate_importance_score.py", ["training_dynamics_metrics", "EL2N"],
                        {"torch": torch, "nn": nn, "num_classes": C, "print": lambda *a: None})
    dataset = [(i, (None, int(y[i]))) for i in range(N)]  # their IndexDataset: (idx, (x, y))
    td_log = []  # their Trainer logs log_softmax per iteration (in fp16; here float32, see the notes)
    for t in range(E):
        for first in range(0, N, BATCH):
            rows = slice(first, first + BATCH)
            td_log.append({"epoch": t, "iteration": first // BATCH, "idx": orders[t][rows],
                           "output": torch.log_softmax(visited[t][rows], dim=1)})
    scores: dict = {}
    ns["training_dynamics_metrics"](td_log, dataset, scores)
    ns["EL2N"](td_log, dataset, scores, max_epoch=10)
    sys.path.insert(0, str(repo / "core" / "data"))
    import Coreset  # their core/data/Coreset.py imports only torch
    sys.path.pop(0)
    select = Coreset.CoresetSelection
    out = {"forgetting": scores["forgetting"].tolist(), "accumulated_margin": scores["accumulated_margin"].tolist(),
           "el2n": scores["el2n"].tolist()}
    # monotonic selection, keep fraction 0.7: forgetting descending, AUM ascending (README)
    data_score = {k: scores[k] for k in ("forgetting", "accumulated_margin", "el2n")}
    data_score["targets"] = scores["targets"]
    out["forgetting_keep_0.7"] = sorted(select.score_monotonic_selection(
        data_score, "forgetting", 0.7, descending=True, class_balanced=False).tolist())
    out["aum_keep_0.7"] = sorted(select.score_monotonic_selection(
        data_score, "accumulated_margin", 0.7, descending=False, class_balanced=False).tolist())
    # stratified (train.py's --coreset-mode stratified), mis_ratio 0.1, keep 0.5, for each key;
    # randperm replaced by the identity so that each stratum gives its first members (in pool order)
    for key in ("accumulated_margin", "el2n", "forgetting"):
        ds = {k: v.clone() for k, v in data_score.items()}
        ds, score_index = select.mislabel_mask(ds, mis_key="accumulated_margin", mis_num=int(0.1 * N),
                                               mis_descending=False, coreset_key=key)
        real_randperm, sizes = torch.randperm, []
        torch.randperm = lambda n, *a, **k: (sizes.append(int(n)), torch.arange(n))[1]
        try:
            chosen, _ = select.stratified_sampling(data_score=ds, coreset_key=key, coreset_num=int(0.5 * N))
        finally:
            torch.randperm = real_randperm
        out[f"ccs_{key}_cut"] = sorted(set(range(N)) - set(score_index.tolist()))
        out[f"ccs_{key}_identity_selection"] = sorted(score_index[torch.tensor(chosen, dtype=torch.long)].tolist())
        out[f"ccs_{key}_strata_sizes"] = sizes
    return out


def run_deepcore(root: Path, run: dict) -> dict:
    repo = root / "PatrickZH+DeepCore"
    y, orders, visited = arrays(run)
    # stand-ins for the package their method modules import (torchvision, the training base class)
    pkg = types.ModuleType("deepcore"); pkg.__path__ = []
    methods = types.ModuleType("deepcore.methods"); methods.__path__ = [str(repo / "deepcore" / "methods")]
    early = types.ModuleType("deepcore.methods.earlytrain")
    early.EarlyTrain = type("EarlyTrain", (), {})
    nets = types.ModuleType("deepcore.nets"); nets.__path__ = []
    nets_utils = types.ModuleType("deepcore.nets.nets_utils")
    nets_utils.MyDataParallel = type("MyDataParallel", (), {})
    sys.modules.update({"deepcore": pkg, "deepcore.methods": methods, "deepcore.methods.earlytrain": early,
                        "deepcore.nets": nets, "deepcore.nets.nets_utils": nets_utils})
    import importlib
    forgetting = importlib.import_module("deepcore.methods.forgetting").Forgetting
    uncertainty = importlib.import_module("deepcore.methods.uncertainty").Uncertainty
    args = types.SimpleNamespace(device="cpu", selection_batch=BATCH, workers=0, print_freq=10**9, num_classes=C)

    f = object.__new__(forgetting)
    f.args, f.n_train, f.num_classes = args, N, C
    f.train_indx = np.arange(N)
    f.dst_train = types.SimpleNamespace(targets=y.numpy())
    f.run = lambda: None
    f.before_run()
    for t in range(E):
        for first in range(0, N, BATCH):
            rows = slice(first, first + BATCH)
            f.after_loss(visited[t][rows], None, y[orders[t][rows]], orders[t][rows].numpy(), t)
    out = {"forgetting": f.forgetting_events.tolist()}
    for balance in (False, True):
        f.balance, f.fraction, f.coreset_size = balance, 0.7, round(N * 0.7)
        out[f"forgetting_keep_0.7_balance_{balance}"] = sorted(f.select()["indices"].tolist())

    final = torch.tensor(run["final_logits"])
    model = nn.Module()
    model.forward = lambda x: final[x.long()]
    dst = torch.utils.data.TensorDataset(torch.arange(N), y)
    dst.targets = y.numpy()
    for method in ("LeastConfidence", "Entropy", "Margin"):
        u = object.__new__(uncertainty)
        u.args, u.n_train, u.model, u.dst_train = args, N, model, dst
        u.selection_method, u.fraction, u.coreset_size = method, 0.7, round(N * 0.7)
        for balance in (False, True):
            u.balance = balance
            result = u.finish_run()
            if not balance:
                out[f"uncertainty_{method}_scores"] = np.asarray(result["scores"]).tolist()
            out[f"uncertainty_{method}_keep_0.7_balance_{balance}"] = sorted(result["indices"].tolist())

    # GraNd's scoring pass on a stand-in model: fixed logits, and the features as the recorded embedding
    grand = importlib.import_module("deepcore.methods.grand").GraNd
    features = torch.tensor(run["features"])

    class Recorded(nn.Module):
        def __init__(self):
            super().__init__()
            self.embedding_recorder = types.SimpleNamespace(record_embedding=False, embedding=None)
            self.head = nn.Linear(FEATURES, C)

        def get_last_layer(self):
            return self.head

        def forward(self, x):
            if self.embedding_recorder.record_embedding:
                self.embedding_recorder.embedding = features[x.long()]
            return final[x.long()].clone()

    g = object.__new__(grand)
    g.args, g.n_train, g.dst_train, g.model = args, N, dst, Recorded()
    g.model_optimizer = torch.optim.SGD(g.model.parameters(), lr=0.1)
    g.criterion = nn.CrossEntropyLoss()  # as EarlyTrain.run builds it: the batch mean
    g.train_indx, g.balance, g.fraction, g.coreset_size = np.arange(N), False, 0.7, round(N * 0.7)
    g.repeat, g.random_seed, g.num_classes = 2, 0, C
    g.run = g.finish_run  # each repeat: only the scoring pass (on the same stand-in model)
    result = g.select()
    out["grand_scores"] = np.asarray(result["scores"]).tolist()
    out["grand_keep_0.7"] = sorted(result["indices"].tolist())
    out["grand_scoring_batch"] = BATCH
    return out


def run_tdds(root: Path, run: dict, scratch: Path) -> dict:
    repo = root / "zhangxin-xd+Dataset-Pruning-TDDS"
    from numpy import linalg as LA
    from scipy.special import softmax
    out = {}
    for length, window in ((10, 10), (10, 5), (12, 4)):
        args = types.SimpleNamespace(trajectory_len=length, window_size=window, decay=0.9,
                                     mask_path=str(scratch) + "/")
        ns = functions_from(repo / "importance_evaluation.py", ["generate"],
                            {"np": np, "torch": torch, "softmax": softmax, "LA": LA, "args": args, "os": __import__("os"),
                             "print": lambda *a: None})
        probs = np.array(run["visited_logits"][:length], dtype=np.float32)
        indexes = np.array(run["orders"][:length])
        ns["generate"](probs=probs, losses=None, indexes=indexes)
        mask = np.load(scratch / f"data_mask_win{window}_ep{length}.npy")
        sorted_score = np.load(scratch / f"score_win{window}_ep{length}.npy")
        score = np.empty(N)
        score[mask] = sorted_score
        out[f"tdds_T{length}_W{window}_scores"] = score.tolist()
        out[f"tdds_T{length}_W{window}_prune_0.3"] = sorted(mask[int(0.3 * N):].tolist())  # data_subset.py
        # train_subset.py's weights: min-max normalised scores, looked up as data_subset.py does
        norm = (sorted_score - min(sorted_score)) / (max(sorted_score) - min(sorted_score))
        out[f"tdds_T{length}_W{window}_weights"] = [float(norm[np.where(mask == i)][0]) for i in range(N)]
    return out


def run_dual(root: Path, run: dict) -> dict:
    repo = root / "behaapyy+dual-pruning"
    ns = functions_from(repo / "exp_cifar" / "importance_evaluation.py", ["dynunc"], {"np": np, "torch": torch})
    y, orders, visited = arrays(run)
    # their rearrange(): logits put back in sample order, softmax, the target's probability
    rearranged = torch.stack([torch.zeros(N, C).index_add(0, orders[t], visited[t]) for t in range(E)])
    target_probs = torch.softmax(rearranged, dim=2).gather(2, y.view(1, N, 1).expand(E, N, 1)).squeeze()
    out = {}
    for window in (10, 5):
        score, mask = ns["dynunc"](target_probs, window_size=window)
        out[f"dynunc_W{window}_scores"] = score.tolist()
        out[f"dynunc_W{window}_keep_0.7"] = sorted(np.asarray(mask)[-int(0.7 * N):].tolist())  # data_subset.py
    return out


def run_moderate(root: Path, run: dict) -> dict:
    repo = root / "tmllab+2023_ICLR_Moderate-DS"
    out = {}
    features = np.array(run["features"], dtype=np.float32)
    targets = np.array(run["targets"])
    for keep in (0.7, 0.5, 0.25):
        args = types.SimpleNamespace(rate=keep)
        ns = functions_from(repo / "selection.py", ["get_median", "get_distance", "get_prune_idx"], {"np": np})
        distance = ns["get_distance"](features, targets)
        dropped = ns["get_prune_idx"](args, distance)
        out["distances"] = distance.tolist()
        out[f"keep_{keep}"] = sorted(set(range(N)) - set(dropped.tolist()))
    return out


def main() -> None:
    root = Path(sys.argv[1])
    scratch = Path(sys.argv[2]) if len(sys.argv) > 2 else root / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    run = synthetic_run()
    FIXTURES.mkdir(parents=True, exist_ok=True)
    (FIXTURES / "dynamics_reference_input.json").write_text(json.dumps(run))
    here = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    produced = {"ccs": run_ccs(root, run), "deepcore": run_deepcore(root, run), "tdds": run_tdds(root, run, scratch),
                "dual": run_dual(root, run), "moderate": run_moderate(root, run)}
    for method, sources in PER_METHOD.items():
        entries = []
        for name, prefixes in sources.items():
            repo, commit = REPOS[name]
            figures = {k: v for k, v in produced[name].items() if k.startswith(prefixes)}
            entries.append({"repository": repo, "commit": commit, "ran": RAN[name], "figures": figures})
        (FIXTURES / f"{method}_reference.json").write_text(json.dumps({
            "method": method, "input": "tests/fixtures/dynamics_reference_input.json",
            "produced_by": f"scripts/reference_fixtures.py (this project at {here.stdout.strip()}), which runs "
                           "the named functions of each repository's own files on the input",
            "sources": entries}, indent=1))
        print(f"wrote tests/fixtures/{method}_reference.json from", ", ".join(REPOS[n][0] for n in sources))


#: what was run of each repository (their functions, our input and stand-ins)
RAN = {
    "ccs": "generate_importance_score.py: training_dynamics_metrics and EL2N(max_epoch=10) on the run logged as "
           "their Trainer logs it (log_softmax per iteration; float32 here, their Trainer stores fp16); "
           "core/data/Coreset.py: score_monotonic_selection (keep 0.7: forgetting descending, AUM ascending), "
           "mislabel_mask (AUM ascending, 4 of 40) then stratified_sampling (keep 20) with torch.randperm "
           "replaced by the identity (the figures name the strata sizes their loop asked permutations for)",
    "deepcore": "deepcore/methods/forgetting.py: Forgetting.before_run, after_loss per minibatch as visited, "
                "select (fraction 0.7, balance False and True); uncertainty.py: Uncertainty.finish_run "
                "(LeastConfidence, Entropy, Margin; balance False and True) on a stand-in model that returns the "
                "final logits; grand.py: GraNd.select (repeat 2, each repeat its finish_run scoring pass) on a "
                "stand-in model with the final logits and the features as its recorded embedding, selection_batch 8",
    "tdds": "importance_evaluation.py: generate() with (trajectory_len, window_size) = (10, 10), (10, 5), (12, 4), "
            "decay 0.9, on the visited logits and indexes; data_subset.py's kept mask[int(0.3 n):] and its "
            "min-max normalised score per sample (train_subset.py's loss weights)",
    "dual": "exp_cifar/importance_evaluation.py: dynunc() (window_size 10 and 5) on the true-class probabilities "
            "as its rearrange() builds them (softmax of the logits put back in sample order); data_subset.py's "
            "kept mask[-int(0.7 n):]",
    "moderate": "selection.py: get_median, get_distance, get_prune_idx (args.rate = kept fraction 0.7, 0.5, 0.25) "
                "on the fixed features; kept = all samples minus the ids it returns (train.py drops them)",
}

#: which reference figures test which method: {method: {source: key prefixes}}
PER_METHOD = {
    "forgetting": {"ccs": ("forgetting",), "deepcore": ("forgetting",)},
    "aum": {"ccs": ("accumulated_margin", "aum_")},
    "uncertainty": {"deepcore": ("uncertainty_",)},
    "grand": {"deepcore": ("grand_",)},
    "ccs": {"ccs": ("ccs_", "el2n", "accumulated_margin", "forgetting")},
    "tdds": {"tdds": ("tdds_",)},
    "dyn_unc": {"dual": ("dynunc_",)},
    "moderate": {"moderate": ("distances", "keep_")},
}

if __name__ == "__main__":
    main()
