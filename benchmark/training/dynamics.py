"""Training dynamics of one full-data proxy run, recorded per sample, cached and shared by the
static data-pruning scores (forgetting, AUM, uncertainty, Dyn-Unc, TDDS, CCS, Moderate).

One proxy model trains on all training data with the task's recipe and its own seed; a hook
records, for every sample as it is visited in a minibatch (training mode, augmented input, as
the CCS, TDDS and DUAL loggers do), one value per epoch of:

- ``loss``: cross-entropy;
- ``correct``: whether the arg-max prediction equals the label;
- ``logit_margin``: assigned-class logit minus the largest other logit (AUM, the paper's);
- ``prob_margin``: true-class probability minus the largest other probability (AUM, CCS code);
- ``true_prob``: the true-class probability (Dyn-Unc);
- ``entropy``: ``-sum_c p_c log p_c``;
- ``el2n``: ``|| p - onehot(y) ||_2`` (CCS sums it over the first 10 epochs);
- ``softmax_change``: ``sum_c | p_t,c (log p_t,c - log p_t-1,c) |`` against the same sample's
  softmax at the previous epoch (TDDS; 0 at epoch 0, which has no previous epoch).

Memory is O(n x classes + n x epochs): eight ``[epochs, n]`` tables plus ONE ``[n, classes]``
previous-epoch softmax, overwritten as samples are visited (a sample is visited once per
full-data epoch, so its row always holds its previous epoch's softmax when it is read). After
the last epoch one unaugmented eval-mode pass stores ``final_logits`` ``[n, classes]`` and, on a
task with the ``features`` capability, the penultimate ``final_features`` ``[n, d]``.

The record is cached per (task, profile, recipe, data, seed, epochs) and validated on load
(:func:`check_dynamics`; a bad entry is deleted and rebuilt); its cost (training passes plus
one forward pass over the training set) is charged to every cell that uses it.
"""
from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, ClassVar

from ..api.cache_files import check_cost, check_tensor, load_entry, require, save_entry
from ..api.hooks import Hook, TrainState
from ..api.lazy import lazy_import
from ..api.method import DataPruner, check_count

if TYPE_CHECKING:
    from .context import RunContext
    from ..api.task import Task

torch = lazy_import("torch")

#: the per-epoch tables, each ``[epochs, n]``
TABLES = ("loss", "correct", "logit_margin", "prob_margin", "true_prob", "entropy", "el2n", "softmax_change")
PROXY_SEED = 2_000_003  # proxy seeds are distinct from main-run seeds and from EL2N's proxies
LOG_FLOOR = 1e-8  # TDDS adds 1e-8 inside its logarithms


def per_sample_dynamics(logits: torch.Tensor, targets: torch.Tensor,
                        previous: torch.Tensor | None) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """One batch's per-sample figures (see the module docstring) and its softmax; ``previous`` is
    the same samples' softmax at the previous epoch, or None at the first epoch."""
    z = logits.float()
    log_p = torch.log_softmax(z, dim=1)
    p = log_p.exp()
    rows = torch.arange(len(z), device=z.device)
    true_logit, true_prob = z[rows, targets], p[rows, targets]
    others_z = z.clone()
    others_z[rows, targets] = float("-inf")
    others_p = p.clone()
    others_p[rows, targets] = float("-inf")
    if previous is None:
        change = torch.zeros(len(z), device=z.device)
    else:
        change = (p * (torch.log(p + LOG_FLOOR) - torch.log(previous + LOG_FLOOR))).abs().sum(dim=1)
    figures = {
        "loss": -log_p[rows, targets],
        "correct": z.argmax(dim=1) == targets,
        "logit_margin": true_logit - others_z.max(dim=1).values,
        "prob_margin": true_prob - others_p.max(dim=1).values,
        "true_prob": true_prob,
        "entropy": -(p * log_p).sum(dim=1),
        # ||p - e_y||^2 = sum p^2 - 2 p_y + 1, without forming the one-hot
        "el2n": ((p * p).sum(dim=1) - 2 * true_prob + 1).clamp(min=0).sqrt(),
        "softmax_change": change,
    }
    return figures, p


def recorder_bytes(n: int, classes: int, epochs: int) -> int:
    """What :class:`DynamicsRecorder` holds during a run: the tables (float32, ``correct`` as
    bool), the bool ``seen`` table and the float32 previous-epoch softmax."""
    tables = (len(TABLES) - 1) * 4 + 1 + 1  # float32 tables, then correct and seen (bool)
    return epochs * n * tables + n * classes * 4


class DynamicsRecorder(Hook):
    """Records :data:`TABLES` for every training sample at every epoch of a full-data run."""

    def __init__(self, n: int, classes: int, epochs: int):
        self.n, self.classes, self.epochs = n, classes, epochs

    def on_run_start(self, state: TrainState) -> None:
        device = state.device
        self.tables = {name: torch.zeros(self.epochs, self.n, device=device,
                                         dtype=torch.bool if name == "correct" else torch.float32)
                       for name in TABLES}
        self.seen = torch.zeros(self.epochs, self.n, dtype=torch.bool, device=device)
        self.previous = torch.zeros(self.n, self.classes, device=device)  # the only [n, classes] buffer

    def on_batch_loss(self, state, indices, logits, losses, targets, features):
        if logits.dim() != 2:
            raise ValueError("the dynamics recorder needs one logit row per sample (a classification task), "
                             f"got logits of shape {tuple(logits.shape)}")
        idx = indices.to(self.previous.device, non_blocking=True)
        epoch = state.epoch
        figures, p = per_sample_dynamics(logits, targets, self.previous[idx] if epoch > 0 else None)
        for name, value in figures.items():
            self.tables[name][epoch, idx] = value.to(self.tables[name].dtype)
        self.seen[epoch, idx] = True
        self.previous[idx] = p
        return None

    def on_run_end(self, state: TrainState) -> None:
        if not bool(self.seen.all()):
            raise RuntimeError("the dynamics recorder did not see every sample in every epoch: "
                               "it needs a full-data run (no other data pruner on the proxy)")

    def record(self) -> dict[str, torch.Tensor]:
        return {name: table.cpu() for name, table in self.tables.items()}


def final_pass(task: Task, model, split, device, features: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Unaugmented eval-mode logits (and penultimate features when asked) for ``split``, in order."""
    from .trainer import autocast_for  # the trainer imports torch at module level (`list` must not)

    model.eval()
    logits_out, features_out = [], []
    batch = task.recipe.eval_batch_size
    for first in range(0, len(split), batch):
        x = task.prepare_batch(split.x[first: first + batch], train=False, generator=None)
        with torch.no_grad(), autocast_for(device):
            if features:
                h = model.features(x)
                logits = task.head(model)(h)
                features_out.append(h.float().reshape(len(h), -1).cpu())
            else:
                logits = model(x)
        logits_out.append(logits.float().cpu())
    return torch.cat(logits_out), (torch.cat(features_out) if features else None)


def dynamics_key(context: RunContext, seed: int, epochs: int) -> dict:
    task = context.task
    return {"task": task.name, "profile": task.profile, "recipe": repr(task.recipe), "data_dir": str(task.data_dir),
            "n_train": len(context.splits.train), "seed": seed, "epochs": epochs, "version": 1}


def check_dynamics(entry, key: dict, n: int, classes: int, epochs: int, features: bool) -> None:
    """A cached record holds every table ``[epochs, n]`` (finite), ``targets`` ``[n]``,
    ``final_logits`` ``[n, classes]``, ``final_features`` ``[n, d]`` when the task has features,
    and a non-negative cost, for exactly this key."""
    require(isinstance(entry, dict), f"holds a {type(entry).__name__}, not a dynamics record")
    wanted = {*TABLES, "targets", "final_logits", "seconds", "sample_passes", "forward_passes", "key"}
    missing = wanted - set(entry)
    require(not missing, f"lacks {sorted(missing)}")
    require(entry["key"] == str(key), "was recorded for other settings (its key differs)")
    for name in TABLES:
        dtypes = (torch.bool,) if name == "correct" else (torch.float32,)
        check_tensor(entry[name], name, (epochs, n), dtypes, finite=name != "correct")
    check_tensor(entry["targets"], "targets", (n,), (torch.int64,))
    check_tensor(entry["final_logits"], "final_logits", (n, classes), (torch.float32,), finite=True)
    if features:
        require("final_features" in entry, "lacks final_features")
        check_tensor(entry["final_features"], "final_features", (n, None), (torch.float32,), finite=True)
    for name in ("seconds", "sample_passes", "forward_passes"):
        check_cost(entry[name], name, integer=name != "seconds")


def has_features(task: Task) -> bool:
    return "features" in type(task).capabilities


def recorded_dynamics(context: RunContext, seed: int, epochs: int) -> dict[str, torch.Tensor]:
    """The dynamics record of one proxy run for (task, seed, epochs): from the cache when a valid
    entry exists, else recorded now and cached. Its cost is charged to ``context`` either way."""
    task, train = context.task, context.splits.train
    n, classes = len(train), task.num_classes
    features = has_features(task)
    key = dynamics_key(context, seed, epochs)
    path = context.cache_path("dynamics", key)
    cached = load_entry(path, lambda entry: check_dynamics(entry, key, n, classes, epochs, features),
                        "training-dynamics cache")
    if cached is not None:
        context.charge(float(cached["seconds"]), int(cached["sample_passes"]), cached=True,
                       forward_passes=int(cached["forward_passes"]))
        return cached
    start = time.perf_counter()
    recorder = DynamicsRecorder(n, classes, epochs)
    model, passes = context.train_proxy(seed=PROXY_SEED + seed, epochs=epochs, hooks=[recorder])
    record = recorder.record()
    record["targets"] = train.y.cpu().long()
    record["final_logits"], final_features = final_pass(task, model, train, context.device, features)
    if final_features is not None:
        record["final_features"] = final_features
    seconds = time.perf_counter() - start
    record.update(seconds=seconds, sample_passes=int(passes), forward_passes=n, key=str(key))
    save_entry(path, record)  # atomic: never half a file
    context.charge(seconds, int(passes), cached=False, forward_passes=n)
    return record


def sequence_refusal(method: str, task_cls: type[Task]) -> str | None:
    """Why a method that scores one prediction per sample cannot run on a token-sequence task."""
    if "sequence" in task_cls.capabilities:
        return (f"method {method!r} scores one prediction per sample; task {task_cls.name!r} predicts "
                "token sequences: use el2n, emp or ted there")
    return None


class DynamicsMethod(DataPruner):
    """A static data pruner whose scores are a function of one recorded proxy run.

    Subclasses set their options in ``__init__`` (calling :meth:`_set_proxy_epochs`) and
    implement :meth:`score` (record -> one score per sample) and :meth:`choose`
    (scores, record -> sorted kept indices)."""

    requires = frozenset({"classification"})
    #: epochs the recorded run needs for the score to be defined (a windowed spread needs two)
    min_record_epochs: ClassVar[int] = 1

    @classmethod
    def incompatibility(cls, task_cls: type[Task]) -> str | None:
        return super().incompatibility(task_cls) or sequence_refusal(cls.name, task_cls)

    @classmethod
    def recipe_problem(cls, settings: dict[str, Any], epochs: int) -> str | None:
        recorded = settings.get("proxy_epochs") or epochs
        if recorded >= cls.min_record_epochs:
            return None
        source = "its proxy_epochs" if settings.get("proxy_epochs") else "the task's epochs, as proxy_epochs is unset"
        return (f"needs a recorded run of at least {cls.min_record_epochs} epochs, and the proxy "
                f"run would record {recorded} ({source}); set the method's option proxy_epochs to at least "
                f"{cls.min_record_epochs}, or the task's option epochs")

    def _set_proxy_epochs(self, proxy_epochs: int | None) -> None:
        if proxy_epochs is not None:
            check_count_option(self.name, "proxy_epochs", proxy_epochs, 1, 10_000,
                               " (or leave it unset to record the task's epochs)")
        self.proxy_epochs = proxy_epochs
        self.scores: torch.Tensor | None = None
        self.subset: torch.Tensor | None = None

    def prepare(self, context: RunContext) -> None:
        epochs = self.proxy_epochs or context.task.recipe.epochs
        record = recorded_dynamics(context, self.seed, epochs)
        self.scores = self.score(record).float()
        self.subset = self.choose(self.scores, record)

    def score(self, record: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def choose(self, scores: torch.Tensor, record: dict[str, torch.Tensor]) -> torch.Tensor:
        raise NotImplementedError

    def on_epoch_start(self, state: TrainState) -> torch.Tensor:
        return self.subset

    def ranking_scores(self) -> torch.Tensor | None:
        return self.scores


def option_error(method: str, option: str, value, fix: str) -> ValueError:
    """One clear message naming the method, the option's value and the fix."""
    return ValueError(f"method {method!r} option {option}={value!r} is not supported; {fix}")


def check_count_option(method: str, option: str, value, low: int, high: int, hint: str = "") -> int:
    """``value`` if it is an integer in [low, high], else :func:`option_error`."""
    try:
        return check_count(option, value, low, high)
    except ValueError:
        raise option_error(method, option, value, f"use an integer in [{low}, {high}]{hint}") from None
