"""EL2N data pruning (Paul, Ganguli, Dziugaite, "Deep Learning on a Data Diet", NeurIPS 2021).

Protocol (Data Diet): train ``proxy_runs`` independent models on all training data for
``score_epochs`` epochs (through the harness trainer), score every training sample
on unaugmented inputs in eval mode as ``|| softmax(f(x)) - onehot(y) ||_2``, average
over runs, then select once and train a fresh model on the subset. On a language-model
task a sample's score is that norm averaged over its response tokens.

Selection ``mode``:
- ``hardest`` (paper): keep the highest scores;
- ``offset``: drop the ``offset`` fraction of hardest samples first, then keep the next hardest;
- ``stratified`` (CCS, Zheng et al. 2023): cut the ``cut`` fraction of hardest samples,
  then stratified sampling over ``bins`` equal-width score strata. An approximation of CCS on
  Data Diet EL2N scores, kept for compatibility; CCS as its reference runs it (AUM cut-off,
  AUM / EL2N / forgetting strata from one recorded run) is the ``ccs`` method.

Scores are cached per (task, profile, task options, seed, proxy settings) and reused
for every ratio and mode; their cost (proxy training + scoring) is charged to every
cell that uses them: the proxies' training passes plus one forward-only scoring pass over the
training set per proxy run. A cached entry is validated when it is read
(:func:`check_score_entry`); a bad one is reported with its path, deleted and recomputed.

``score_epochs`` defaults to a quarter of the task's epochs (at least 1): Data Diet
scores at epoch 20 of 200 on CIFAR-10, which is too early to separate samples on a
short cpu-profile run.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING

from benchmark.api.cache_files import check_cost, check_tensor, load_entry, require, save_entry
from benchmark.api.hooks import TrainState
from benchmark.api.lazy import lazy_import
from benchmark.api.method import DataPruner, check_count
from benchmark.api.registry import register_method
from benchmark.api.sequence import counted_rows, per_sample

from .selection import keep_hardest, stratified

if TYPE_CHECKING:
    from benchmark.training.context import RunContext  # imports the trainer

torch = lazy_import("torch")

MODES = ("hardest", "offset", "stratified")


def el2n_scores(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm of the error vector softmax(logits) - onehot(labels); for a sequence
    sample (logits ``[B, T, V]``), the mean of the per-token norms over its response tokens
    (see :mod:`benchmark.api.sequence`). The one-hot is subtracted in place rather than formed,
    which for a language model's vocabulary would double the memory."""
    rows = counted_rows(logits, labels)
    error = torch.softmax(rows.logits.float(), dim=-1)
    error[torch.arange(len(error), device=error.device), rows.targets] -= 1.0
    return per_sample(error.norm(dim=1), rows)


def check_score_entry(entry, key: dict, n_train: int) -> None:
    """A cached score entry is ``{scores, seconds, sample_passes, key}`` for exactly this key:
    one finite score per training sample, and a non-negative cost."""
    require(isinstance(entry, dict), f"holds a {type(entry).__name__}, not a score entry")
    missing = {"scores", "seconds", "sample_passes", "key"} - set(entry)
    require(not missing, f"lacks {sorted(missing)}")
    require(entry["key"] == str(key), "was computed for other settings (its key differs)")
    check_tensor(entry["scores"], "scores", (n_train,), (torch.float32, torch.float64), finite=True)
    check_cost(entry["seconds"], "seconds")
    check_cost(entry["sample_passes"], "sample_passes", integer=True)
    if "forward_passes" in entry:  # entries written before forward passes were counted lack it
        check_cost(entry["forward_passes"], "forward_passes", integer=True)


@register_method("el2n")
class EL2N(DataPruner):
    provenance = "reference-code"
    requires = frozenset({"classification"})

    def __init__(self, ratio: float, seed: int = 0, *, proxy_runs: int = 2, score_epochs: int | None = None,
                 mode: str = "hardest", offset: float = 0.0, cut: float = 0.0, bins: int = 50):
        super().__init__(ratio, seed)
        if mode not in MODES:
            raise ValueError(f"el2n mode {mode!r} is unknown; use one of {MODES}")
        check_count("proxy_runs", proxy_runs, 1, 100)
        if score_epochs is not None:
            check_count("score_epochs", score_epochs, 1, 10_000)
        check_count("bins", bins, 1, 100_000)
        if not 0 <= offset < 1 or not 0 <= cut < 1:
            raise ValueError(f"offset and cut are fractions in [0, 1), got offset={offset}, cut={cut}")
        self.proxy_runs, self.score_epochs, self.mode = proxy_runs, score_epochs, mode
        self.offset, self.cut, self.bins = offset, cut, bins
        self.scores: torch.Tensor | None = None
        self.subset: torch.Tensor | None = None

    def prepare(self, context: RunContext) -> None:
        epochs = self.score_epochs or max(1, context.task.recipe.epochs // 4)
        key = {"task": context.task.name, "profile": context.task.profile, "recipe": repr(context.task.recipe),
               "data_dir": str(context.task.data_dir),
               "n_train": len(context.splits.train), "seed": self.seed, "proxy_runs": self.proxy_runs,
               "score_epochs": epochs}
        path = context.cache_path("el2n", key)
        cached = load_entry(path, lambda entry: check_score_entry(entry, key, len(context.splits.train)),
                            "EL2N score cache")
        if cached is not None:
            self.scores = cached["scores"]
            context.charge(float(cached["seconds"]), int(cached["sample_passes"]), cached=True,
                           forward_passes=int(cached.get("forward_passes", self.proxy_runs * len(self.scores))))
        else:
            start, passes, total = time.perf_counter(), 0, torch.zeros(len(context.splits.train))
            forward = 0  # forward-only passes: scoring the training set with each proxy
            for run in range(self.proxy_runs):
                # proxy seeds are distinct from every main-run seed of the sweep
                model, run_passes = context.train_proxy(seed=1_000_003 * (run + 1) + self.seed, epochs=epochs)
                total += context.predict(model, reduce=el2n_scores)
                forward += len(context.splits.train)
                passes += run_passes
            self.scores = total / self.proxy_runs
            seconds = time.perf_counter() - start
            save_entry(path, {"scores": self.scores, "seconds": seconds, "sample_passes": passes,
                              "forward_passes": forward, "key": str(key)}, "EL2N score cache")  # atomic; best effort
            context.charge(seconds, passes, cached=False, forward_passes=forward)
        self.subset = self.select(self.scores)

    def select(self, scores: torch.Tensor) -> torch.Tensor:
        n = len(scores)
        n_keep = self.n_keep(n)
        if self.mode == "stratified":
            return stratified(scores, n_keep, round(self.cut * n), self.bins, self.generator())
        offset = round(self.offset * n) if self.mode == "offset" else 0
        # the hardest skipped count toward the ratio: at most n - n_keep can be skipped
        skipped = min(offset, n - n_keep)
        self.realised_offset = skipped / n
        return keep_hardest(scores, n_keep, skipped)

    def summary(self) -> dict[str, float]:
        return {"el2n_offset_realised": self.realised_offset} if self.mode == "offset" else {}

    def on_epoch_start(self, state: TrainState) -> torch.Tensor:
        return self.subset

    def ranking_scores(self) -> torch.Tensor | None:
        return self.scores
