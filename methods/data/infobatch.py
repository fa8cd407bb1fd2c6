"""InfoBatch: dynamic data pruning by random skipping of well-learned samples (Qin et al., ICLR 2024).

Provenance: ``reference-code``, checked against NUS-HPC-AI-Lab/InfoBatch
(``infobatch/infobatch.py``, commit 8bbb012) run on a fixed loss trace
(tests/fixtures/infobatch_reference.json, written by scripts/infobatch_reference_fixture.py).

Per sample i the method keeps a score ``s_i``: its loss the last time it was trained on,
initialised to 3.0 as the reference does. At the start of epoch ``e`` (0-based) of ``E``:

- if ``e + 1 <= delta * E`` (the reference's ``IBSampler`` counts one reset at construction, so
  epoch e runs with iteration count e + 1), it prunes: the well-learned pool is
  ``W = {i : s_i < mean(s)}`` (strictly below, the mean over all n scores, seen or not);
  ``k = int(keep * |W|)`` samples of W are drawn uniformly without replacement
  (``numpy.random.RandomState.choice(W, k, replace=False)``, the reference's call) and kept with
  loss weight ``1 / keep``; every sample outside W is kept with weight 1; the rest of W is skipped.
  ``keep = min(1, max(0.1, 1 - prune_ratio))``: at least 10% of W is always kept;
- otherwise (the last ``1 - delta`` of the run, the reference's annealing) it trains on every
  sample with weight 1.

The first epoch needs no rule of its own: every score is 3.0, so none is below the mean, W is
empty and the epoch trains on every sample (as in the reference). The trainer's loss is
``mean_i(w_i * loss_i)`` over the batch, the reference's ``values.mul_(weights).mean()``. Scores
are refreshed with the unweighted per-sample losses of the samples trained on; skipped samples keep
their last score.

**The cell's ratio.** ``ratio_of="well-learned"`` (default) reads the cell's ``ratio`` as the
reference's ``prune_ratio``: the fraction of the *well-learned pool* skipped per pruning epoch, the
setting the paper's tables and the reference's ``--ratio`` name. The fraction of the data set removed
is then smaller (only W is a candidate, and the annealing epochs remove nothing); the realised kept
fraction and cost are the ones the trainer measured from the indices each epoch used, as for every
cell, and the board places the cell at them (its equal-cost columns compare it at what it paid).
A ratio above 0.9 runs as 0.9 (the reference's clamp of ``keep`` to >= 0.1); ``summary()`` logs
the keep ratio used. ``ratio_of="dataset"`` instead solves, each pruning epoch, for the prune ratio
that skips ``round(ratio * n)`` samples: ``k = max(|W| - round(ratio * n), int(0.1 * |W|))`` and
weight ``|W| / k``; when W is too small the epoch skips fewer (never below the 10% floor).

**Deliberate differences from the reference.**

- Its weight reset for the annealing epochs (``iterations == stop_prune + 1``) fires only when
  ``delta * E`` is a whole number; otherwise the last pruning epoch's ``1/keep`` weights persist
  through the full-data epochs (seen in the fixture with E = 10, delta = 0.875). Here the annealing
  epochs always train with weight 1.
- The random draw uses a ``RandomState`` seeded by (cell seed, epoch), not the global numpy seed
  set to the iteration count, so that seeds differ and nothing global is touched. The draw is the
  same call, so a test that seeds it as the reference does reproduces the reference's subsets.
- Under ``budget: steps`` the run has more epochs than ``E`` (pruned epochs are shorter); pruning
  still stops after epoch ``delta * E``, and the full-data tail is longer than ``1 - delta``.

State: the n scores and n weights (O(n)), beside the losses on the training device.
"""
from __future__ import annotations

import time

from benchmark.api.hooks import TrainState
from benchmark.api.lazy import lazy_import
from benchmark.api.masks import count_removed
from benchmark.api.method import DataPruner
from benchmark.api.registry import register_method
from benchmark.api.task import COUNT_LIMITS

np = lazy_import("numpy")  # `prunebench list` imports this module: no numpy (nor torch) then
torch = lazy_import("torch")

#: every score starts here (the reference's ``torch.ones(n) * 3``): none is below the mean in epoch 0
INITIAL_SCORE = 3.0
#: the reference never keeps less than this fraction of the well-learned pool
MIN_KEEP = 0.1
RATIO_OF = ("well-learned", "dataset")


def keep_ratio(prune_ratio: float) -> float:
    """The reference's fraction of the well-learned pool kept: ``min(1, max(0.1, 1 - prune_ratio))``."""
    return min(1.0, max(MIN_KEEP, 1.0 - prune_ratio))


def is_pruning_epoch(epoch: int, epochs: int, delta: float) -> bool:
    """Whether 0-based ``epoch`` of ``epochs`` prunes: the reference prunes while its iteration
    count (``epoch + 1``) is at most ``delta * epochs``."""
    return epoch + 1 <= epochs * delta


def well_learned(scores: torch.Tensor) -> torch.Tensor:
    """Indices (ascending) of the scores strictly below their mean."""
    return torch.nonzero(scores < scores.mean()).flatten()


def draw_kept(pool: np.ndarray, n_kept: int, rng: np.random.RandomState) -> np.ndarray:
    """``n_kept`` members of ``pool`` drawn uniformly without replacement, by the reference's call."""
    return rng.choice(pool, n_kept, replace=False)


@register_method("infobatch")
class InfoBatch(DataPruner):
    provenance = "reference-code"
    #: only per-sample losses, which every task computes (Task.per_sample_loss): no capability needed

    @classmethod
    def ratio_meaning(cls, settings: dict) -> str:
        if settings.get("ratio_of", "well-learned") == "well-learned":
            return ("the reference's prune_ratio: the fraction of the well-learned samples (loss below the mean) "
                    "skipped per pruning epoch; the data removed is smaller, see 'kept'")
        return "the fraction of training samples skipped per pruning epoch (full-data epochs at the end)"

    @classmethod
    def recipe_warning(cls, settings: dict, epochs: int) -> str | None:
        """Epoch 0 never prunes (its pool is empty), so the rule must reach epoch 1:
        ``2 <= delta * epochs``."""
        delta = float(settings["delta"])
        if is_pruning_epoch(1, epochs, delta):
            return None
        fixes = []
        if delta > 0:
            fewest = next((e for e in range(2, COUNT_LIMITS["epochs"] + 1) if is_pruning_epoch(1, e, delta)), None)
            if fewest is not None:
                fixes.append(f"give the task at least {fewest} epochs (task option epochs)")
        if epochs >= 2:
            fixes.append(f"set delta to at least {2 / epochs:g}")
        return (f"prunes nothing with delta {delta:g}: only epochs e with e + 1 <= delta x "
                f"epochs may prune, and epoch 0's well-learned pool is empty (every score starts at "
                f"{INITIAL_SCORE:g}), so every epoch trains on all the data; "
                + (" or ".join(fixes) if fixes else "no recipe lets it prune"))

    def __init__(self, ratio: float, seed: int = 0, *, delta: float = 0.875, ratio_of: str = "well-learned"):
        super().__init__(ratio, seed)
        if not 0.0 <= delta <= 1.0:
            raise ValueError(f"method 'infobatch' option delta must be in [0, 1] (the fraction of the epochs "
                             f"that prune; the reference's default is 0.875), got {delta!r}")
        if ratio_of not in RATIO_OF:
            raise ValueError(f"method 'infobatch' option ratio_of must be one of {list(RATIO_OF)} (what the "
                             f"cell's ratio is a fraction of), got {ratio_of!r}")
        self.delta = float(delta)
        self.ratio_of = ratio_of

    def on_run_start(self, state: TrainState) -> None:
        n = state.n_train
        self.scores = torch.full((n,), INITIAL_SCORE, dtype=torch.float32, device=state.device)
        self.weights: torch.Tensor | None = None  # None: every sample weighs 1 this epoch
        self.upkeep_seconds = 0.0
        self.pruning_epochs = 0
        self.pool_fractions: list[float] = []
        self.keep_ratios: list[float] = []

    def epoch_rng(self, epoch: int) -> np.random.RandomState:
        """The generator of epoch ``epoch``'s draw: its own stream per (cell seed, epoch)."""
        return np.random.RandomState([self.seed % 2**32, epoch])

    def kept_of_pool(self, pool_size: int, n: int) -> tuple[int, float]:
        """How many of a well-learned pool of ``pool_size`` are kept, and the fraction kept
        (whose inverse is their loss weight)."""
        if self.ratio_of == "well-learned":
            keep = keep_ratio(self.ratio)
            return int(keep * pool_size), keep
        n_kept = max(pool_size - count_removed(self.ratio, n), int(MIN_KEEP * pool_size))
        return n_kept, (n_kept / pool_size if n_kept else 1.0)

    def on_epoch_start(self, state: TrainState) -> torch.Tensor | None:
        self.weights = None
        if not is_pruning_epoch(state.epoch, state.epochs, self.delta):
            return None  # annealing: every sample, weight 1
        start = time.perf_counter()
        n = state.n_train
        pool = well_learned(self.scores).cpu().numpy()
        n_kept, keep = self.kept_of_pool(len(pool), n)
        kept = torch.from_numpy(draw_kept(pool, n_kept, self.epoch_rng(state.epoch)))
        chosen = torch.ones(n, dtype=torch.bool)
        chosen[torch.from_numpy(pool)] = False
        chosen[kept] = True
        weights = torch.ones(n, dtype=torch.float32)
        weights[kept] = 1.0 / keep
        self.weights = weights.to(self.scores.device)
        self.pruning_epochs += 1
        if len(pool):  # epoch 0's pool is empty by construction: it would only dilute the means
            self.pool_fractions.append(len(pool) / n)
            self.keep_ratios.append(keep)
        self.upkeep_seconds += time.perf_counter() - start
        return torch.nonzero(chosen).flatten()

    def on_batch_loss(self, state, indices, logits, losses, targets, features):
        start = time.perf_counter()
        idx = indices.to(self.scores.device, non_blocking=True)
        self.scores[idx] = losses.detach().to(self.scores.dtype)
        weights = self.weights[idx] if self.weights is not None else None
        self.upkeep_seconds += time.perf_counter() - start
        return weights

    def ranking_scores(self) -> torch.Tensor | None:
        return self.scores

    def summary(self) -> dict[str, float]:
        """``pruning_epochs``: epochs the pruning rule ran (epoch 0 included, its pool empty);
        the pool's share of the data and the fraction of it kept, averaged over the epochs with a pool."""
        out = {"score_upkeep_seconds": self.upkeep_seconds, "pruning_epochs": float(self.pruning_epochs)}
        if self.pool_fractions:
            out["well_learned_fraction_mean"] = float(np.mean(self.pool_fractions))
        if self.keep_ratios:
            out["well_learned_keep_ratio_mean"] = float(np.mean(self.keep_ratios))
        return out
