"""The training-dynamics recorder: its figures against an independent computation from the same
run's logits, one proxy run shared by every static method of a task and seed, the cost charged
to each, the cache validated and rebuilt, its memory bound, and the methods' bad options and
task requirements refused before compute."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.training.context import RunContext
from benchmark.training.dynamics import TABLES, DynamicsRecorder, dynamics_key, recorded_dynamics, recorder_bytes
from benchmark.api.task import Task
from helpers_tiny import Recorder, context_for, cpu, one_cpu_thread, tiny_task  # noqa: F401
from methods.data.aum import AUM
from methods.data.ccs import CCS
from methods.data.dyn_unc import DynUnc
from methods.data.forgetting import Forgetting
from methods.data.moderate import Moderate
from methods.data.tdds import TDDS
from methods.data.uncertainty import Uncertainty

STATIC = (Forgetting, AUM, Uncertainty, DynUnc, TDDS, CCS, Moderate)


@pytest.fixture(scope="module")
def tiny():
    task = tiny_task()
    return task, task.load_splits()


def numpy_figures(logits: np.ndarray, y: np.ndarray) -> dict[str, np.ndarray]:
    z = logits.astype(np.float64)
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    rows = np.arange(len(y))
    z_other, p_other = z.copy(), p.copy()
    z_other[rows, y], p_other[rows, y] = -np.inf, -np.inf
    onehot = np.eye(z.shape[1])[y]
    return {"p": p, "loss": -np.log(p[rows, y]), "correct": z.argmax(1) == y,
            "logit_margin": z[rows, y] - z_other.max(1), "prob_margin": p[rows, y] - p_other.max(1),
            "true_prob": p[rows, y], "entropy": -(p * np.log(p)).sum(1),
            "el2n": np.sqrt(((p - onehot) ** 2).sum(1))}


def test_recorder_tables_equal_an_independent_computation_on_a_real_run(tiny):
    task, splits = tiny
    n, epochs = len(splits.train), 3
    recorder, seen = DynamicsRecorder(n, task.num_classes, epochs), Recorder()
    ctx = context_for(tiny, None)
    ctx.train_proxy(seed=3, epochs=epochs, hooks=[recorder, seen])
    record = recorder.record()
    expected = {name: np.zeros((epochs, n)) for name in TABLES}
    previous = None
    per_epoch = len(seen.batches) // epochs
    for t in range(epochs):
        logits = np.zeros((n, task.num_classes))
        y = np.zeros(n, dtype=int)
        for batch in seen.batches[t * per_epoch: (t + 1) * per_epoch]:
            logits[batch["indices"].numpy()] = batch["logits"].numpy()
            y[batch["indices"].numpy()] = batch["targets"].numpy()
        figures = numpy_figures(logits, y)
        for name in TABLES:
            if name == "softmax_change":
                if previous is not None:
                    p = figures["p"]
                    expected[name][t] = np.abs(p * (np.log(p + 1e-8) - np.log(previous + 1e-8))).sum(1)
            else:
                expected[name][t] = figures[name]
        previous = figures["p"]
    for name in TABLES:
        np.testing.assert_allclose(record[name].double().numpy(), expected[name], rtol=1e-4, atol=1e-5, err_msg=name)
    assert record["softmax_change"][1:].abs().sum() > 0  # the model moved: the change is not trivially 0


def test_recorder_memory_is_tables_plus_one_softmax_and_fits_cifar100_paper():
    recorder = DynamicsRecorder(1000, 10, 7)
    recorder.on_run_start(type("S", (), {"device": torch.device("cpu")})())
    held = [*recorder.tables.values(), recorder.seen, recorder.previous]
    assert max(t.numel() for t in held) == max(7 * 1000, 1000 * 10)  # never n x classes x epochs
    assert sum(t.numel() * t.element_size() for t in held) == recorder_bytes(1000, 10, 7)
    cifar100_paper = recorder_bytes(50_000, 100, 200)
    assert cifar100_paper < 2**30


def test_one_proxy_run_serves_every_static_method_and_each_cell_is_charged(tiny, tmp_path, monkeypatch):
    task, splits = tiny
    calls = []
    real = RunContext.train_proxy

    def counted(self, *args, **kwargs):
        calls.append(kwargs.get("seed"))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(RunContext, "train_proxy", counted)
    charged = []
    for method in (Forgetting(0.3, seed=1), AUM(0.5, seed=1), Uncertainty(0.3, seed=1), DynUnc(0.5, seed=1),
                   CCS(0.3, seed=1), TDDS(0.3, seed=1), Moderate(0.3, seed=1)):
        ctx = context_for(tiny, tmp_path, seed=1)
        method.prepare(ctx)
        assert len(method.subset) == method.n_keep(len(splits.train)) == len(torch.unique(method.subset))
        charged.append((ctx.scoring_sample_passes, ctx.scoring_forward_passes, ctx.scores_cached))
    assert len(calls) == 1  # one proxy run, not seven
    passes = task.recipe.epochs * len(splits.train)
    assert charged[0] == (passes, len(splits.train), False)
    assert all(c == (passes, len(splits.train), True) for c in charged[1:])
    # another seed, or other proxy epochs, record their own run
    Forgetting(0.3, seed=2).prepare(context_for(tiny, tmp_path, seed=2))
    Forgetting(0.3, seed=1, proxy_epochs=1).prepare(context_for(tiny, tmp_path, seed=1))
    assert len(calls) == 3


def test_a_corrupt_or_mismatched_cache_is_deleted_and_rebuilt(tiny, tmp_path, capsys):
    ctx = context_for(tiny, tmp_path)
    first = recorded_dynamics(ctx, seed=0, epochs=1)
    path = ctx.cache_path("dynamics", dynamics_key(ctx, 0, 1))
    for damage in (lambda: path.write_bytes(b"not a torch file"),
                   lambda: torch.save({**first, "true_prob": first["true_prob"][:, :5]}, path),
                   lambda: torch.save({**first, "entropy": first["entropy"] * float("nan")}, path)):
        damage()
        again = recorded_dynamics(context_for(tiny, tmp_path), seed=0, epochs=1)
        assert "training-dynamics cache" in capsys.readouterr().err
        assert torch.equal(again["true_prob"], first["true_prob"])  # rebuilt: the same seeded run
        assert torch.load(path, weights_only=True)["key"] == first["key"]


@pytest.mark.parametrize("cls,options,named", (
    (Forgetting, {"never_learned": "infinite"}, "never_learned='infinite'"),
    (AUM, {"margin": "loss"}, "margin='loss'"),
    (Uncertainty, {"score": "variance"}, "score='variance'"),
    (Uncertainty, {"keep": "easiest"}, "keep='easiest'"),
    (DynUnc, {"window": 1}, "window=1"),
    (TDDS, {"decay": 1.5}, "decay=1.5"),
    (TDDS, {"window": 20}, "window=20"),
    (TDDS, {"trajectory_len": 0}, "trajectory_len=0"),
    (CCS, {"score": "entropy"}, "score='entropy'"),
    (CCS, {"cut": 1.0}, "cut=1.0"),
    (CCS, {"bins": 0}, "bins=0"),
    (Moderate, {"proxy_epochs": 0}, "proxy_epochs"),
))
def test_bad_options_are_refused_naming_method_value_and_fix(cls, options, named):
    with pytest.raises(ValueError) as error:
        cls(0.5, 0, **options)
    message = str(error.value)
    assert repr(cls.name) in message and named.split("=")[0] in message
    assert "use " in message or "set " in message or "leave " in message


def test_a_sweep_with_a_bad_option_fails_validation_before_compute():
    from benchmark.sweeps.cells import parse_sweep

    with pytest.raises(ValueError, match="ccs.*score='entropy'"):
        parse_sweep({"name": "bad", "profile": "smoke", "seeds": [0], "ratios": [0.5], "tasks": ["fashion-mnist"],
                     "methods": [{"name": "ccs", "options": {"score": "entropy"}}]})


def test_moderate_needs_features_and_sequence_tasks_are_refused():
    class NoFeatures(Task):
        name = "test-no-features"
        capabilities = frozenset({"classification"})

    class Tokens(Task):
        name = "test-tokens"
        capabilities = frozenset({"classification", "sequence", "features"})

    from methods.data.grand import GraNd

    for needs_features in (Moderate, GraNd):
        reason = needs_features.incompatibility(NoFeatures)
        assert reason and repr(needs_features.name) in reason and "features" in reason
        assert needs_features.incompatibility(type(tiny_task())) is None
    assert Forgetting.incompatibility(NoFeatures) is None
    for cls in (*STATIC, GraNd):
        assert repr(cls.name) in cls.incompatibility(Tokens) and "sequence" in cls.incompatibility(Tokens)


@pytest.mark.slow  # about 35 s: 15 cells and their MLflow runs
def test_a_smoke_sweep_with_every_static_method_finishes_on_one_proxy_run(tmp_path, capsys):
    from pathlib import Path

    from benchmark.sweeps.cells import parse_sweep
    from benchmark.sweeps.runner import run_sweep
    from benchmark.sweeps.tracking import Tracker
    from tasks.vision.fashion_mnist import DEBIAN_DIR

    if not Path(DEBIAN_DIR).is_dir():
        pytest.skip("needs Debian's dataset-fashion-mnist")
    names = [cls.name for cls in STATIC] + ["grand"]
    sweep = parse_sweep({"name": "static", "profile": "smoke", "seeds": [0], "ratios": [0.3, 0.7],
                         "tasks": [{"name": "fashion-mnist", "options": {"train_limit": 320}}], "methods": names})
    report = run_sweep(sweep, Tracker(f"sqlite:///{tmp_path}/mlflow.db", "static"), torch.device("cpu"),
                       tmp_path / "cache", quiet=False)
    assert not report.failed, report.failed
    assert len(report.finished) == len(sweep.cells()) == 1 + 2 * len(names)
    lines = capsys.readouterr().err.splitlines()
    proxy = [line for line in lines if line.startswith("    proxy epoch ")]
    # the smoke profile's 2 epochs once (one recorded run for the 14 cells of the seven methods
    # that read it), and grand's own proxies: 2 runs of 1 epoch (a quarter of 2, at least 1)
    assert len(proxy) == 2 + 2


# --- GraNd: its own early-training proxies ---------------------------------------------------------


def test_grand_scores_equal_autograd_per_sample_norms_and_are_cached(tiny, tmp_path, monkeypatch):
    from benchmark.training.trainer import Trainer
    from methods.data.grand import PROXY_SEED, GraNd

    task, splits = tiny
    few = type(splits)(type(splits.train)(splits.train.x[:24], splits.train.y[:24]), splits.val, splits.test)
    ctx = RunContext(task=task, splits=few, device=cpu(), seed=0, cache_dir=tmp_path)
    full, last = GraNd(0.5, gradient="full", score_epochs=0), GraNd(0.5, score_epochs=0)
    full.prepare(ctx)
    last.prepare(RunContext(task=task, splits=few, device=cpu(), seed=0, cache_dir=tmp_path))
    model = Trainer(task, few, cpu(), seed=PROXY_SEED).build_model().eval()  # run 0's seed, untrained
    x = task.prepare_batch(few.train.x, train=False, generator=None)
    expected_full, expected_last = [], []
    for i in range(len(x)):
        model.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x[i: i + 1]), few.train.y[i: i + 1])
        loss.backward()
        expected_full.append(sum(p.grad.pow(2).sum() for p in model.parameters()).sqrt().item())
        expected_last.append(sum(p.grad.pow(2).sum() for p in model.head.parameters()).sqrt().item())
    # two proxy runs, averaged: run 1 has its own seed
    model1 = Trainer(task, few, cpu(), seed=2 * PROXY_SEED).build_model().eval()
    for i in range(len(x)):
        model1.zero_grad()
        torch.nn.functional.cross_entropy(model1(x[i: i + 1]), few.train.y[i: i + 1]).backward()
        expected_full[i] = (expected_full[i] + sum(p.grad.pow(2).sum() for p in model1.parameters()).sqrt().item()) / 2
        expected_last[i] = (expected_last[i] + sum(p.grad.pow(2).sum() for p in model1.head.parameters()).sqrt().item()) / 2
    np.testing.assert_allclose(full.scores.numpy(), expected_full, rtol=1e-4)
    np.testing.assert_allclose(last.scores.numpy(), expected_last, rtol=1e-4)
    dropped = ~torch.isin(torch.arange(24), last.subset)
    assert len(last.subset) == 12 and last.scores[last.subset].min() >= last.scores[dropped].max()  # the highest
    # a second cell reads the cache and is charged what it cost
    monkeypatch.setattr(RunContext, "train_proxy", lambda *a, **k: (_ for _ in ()).throw(AssertionError("trained")))
    again = RunContext(task=task, splits=few, device=cpu(), seed=0, cache_dir=tmp_path)
    GraNd(0.3, score_epochs=0).prepare(again)
    assert again.scores_cached and again.scoring_forward_passes == 2 * 24


def test_grand_bad_options():
    from methods.data.grand import GraNd

    for bad, named in (({"gradient": "input"}, "gradient='input'"), ({"proxy_runs": 0}, "proxy_runs=0"),
                       ({"score_epochs": -1}, "score_epochs=-1")):
        with pytest.raises(ValueError, match=f"'grand' option {named}"):
            GraNd(0.5, **bad)


@pytest.mark.parametrize("name", ["tdds", "dyn-unc"])
def test_a_record_too_short_for_a_windowed_score_is_refused_when_the_sweep_is_read(name):
    from benchmark.sweeps.cells import SweepError, parse_sweep

    def sweep(task_options, method_options):
        return parse_sweep({"name": "short", "profile": "smoke", "seeds": [0], "ratios": [0.5],
                            "tasks": [{"name": "fashion-mnist", "options": task_options}],
                            "methods": [{"name": name, "options": method_options}, "forgetting"]}, check_data=False)

    for task_options, method_options, source in (({"epochs": 1}, {}, "the task's epochs, as proxy_epochs is unset"),
                                                 ({}, {"proxy_epochs": 1}, "its proxy_epochs")):
        with pytest.raises(SweepError) as error:
            sweep(task_options, method_options)
        assert error.value.problems == [
            f"method {name!r} on task 'fashion-mnist' (smoke profile, {task_options.get('epochs', 2)} epoch(s)): "
            f"needs a recorded run of at least 2 epochs, and the proxy run would record 1 ({source}); set the "
            "method's option proxy_epochs to at least 2, or the task's option epochs"]
    # either fix is accepted; forgetting's count is defined on one epoch (all zeros), so it is not refused
    assert len(sweep({"epochs": 1}, {"proxy_epochs": 2}).cells()) == 3
    assert len(sweep({"epochs": 2}, {}).cells()) == 3
