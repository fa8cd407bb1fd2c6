"""EMP (dynamic loss + entropy selection, and its InfoBatch variant) and TED (progressive pruning
by gradient alignment), each checked against an independent computation written here: numpy
log-sum-exp for the EMP score, autograd per-sample head gradients for TED's closed form, and
hand-ranked selections for what the trainer actually trains on."""
from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from benchmark.api.hooks import Hook
from helpers_tiny import Recorder, fit, make_state, one_cpu_thread, tiny_task  # noqa: F401
from methods.data.emp import EMP, emp_score
from methods.data.ted import TED, alignment, head_gradient_factors, stage_epochs
from tasks.vision.models import SmallCNN

RATIO = 0.3


@pytest.fixture(scope="module")
def tiny():
    task = tiny_task()
    return task, task.load_splits()


# --- independent references -------------------------------------------------------------------


def numpy_ce_and_entropy(logits, targets) -> tuple[np.ndarray, np.ndarray]:
    """Cross-entropy and softmax entropy (nats) in float64, log-sum-exp by hand."""
    z = np.asarray(logits, dtype=np.float64)
    y = np.asarray(targets)
    m = z.max(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
    ce = lse - z[np.arange(len(y)), y]
    log_p = z - lse[:, None]
    entropy = -(np.exp(log_p) * log_p).sum(axis=1)
    return ce, entropy


def numpy_emp(logits, targets, beta: float) -> np.ndarray:
    ce, entropy = numpy_ce_and_entropy(logits, targets)
    return ce + beta * entropy


def top_k_by_hand(scores, k: int) -> list[int]:
    """Highest first, ties by lower index; sorted indices of the k kept."""
    s = [float(v) for v in scores]
    return sorted(sorted(range(len(s)), key=lambda i: (-s[i], i))[:k])


def lowest_by_hand(scores, candidates, k: int) -> list[int]:
    """The k lowest-scoring candidates, ties by lower index."""
    s = [float(v) for v in scores]
    return sorted(sorted(candidates, key=lambda i: (s[i], i))[:k])


def numpy_head_gradient(logits, targets, features, bias=True) -> np.ndarray:
    """Per-sample CE gradients w.r.t. [W | b] as (B, classes, features[+1]) outer products, float64."""
    z = np.asarray(logits, dtype=np.float64)
    p = np.exp(z - z.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(z)), np.asarray(targets)] -= 1.0
    h = np.asarray(features, dtype=np.float64)
    if bias:
        h = np.concatenate([h, np.ones((len(h), 1))], axis=1)
    return p[:, :, None] * h[:, None, :]


def autograd_head_gradients(head: nn.Linear, features, targets) -> torch.Tensor:
    """Per-sample gradients of CE w.r.t. [head.weight | head.bias], flattened, by autograd."""
    rows = []
    params = [head.weight] + ([head.bias] if head.bias is not None else [])
    for i in range(len(features)):
        loss = F.cross_entropy(head(features[i : i + 1]), targets[i : i + 1], reduction="sum")
        grads = torch.autograd.grad(loss, params)
        g = grads[0] if head.bias is None else torch.cat([grads[0], grads[1][:, None]], dim=1)
        rows.append(g.flatten())
    return torch.stack(rows)


# --- hooks that watch a method ------------------------------------------------------------------


class Snapshot(Hook):
    """Placed BEFORE the method: copies its state at each epoch start (before it selects) and end."""

    def __init__(self, method):
        self.method = method
        self.start_scores: list[torch.Tensor] = []
        self.start_active: list[torch.Tensor | None] = []
        self.end_scores: list[torch.Tensor] = []

    def on_epoch_start(self, state):
        self.start_scores.append(self.method.scores.clone())
        active = getattr(self.method, "active", None)
        self.start_active.append(active.clone() if active is not None else None)
        return None

    def on_epoch_end(self, state, metrics):
        self.end_scores.append(self.method.scores.clone())


class WeightsEMP(EMP):
    """EMP that keeps what its on_batch_loss returned."""

    def on_run_start(self, state):
        super().on_run_start(state)
        self.returned: list[tuple[int, torch.Tensor, torch.Tensor | None]] = []

    def on_batch_loss(self, state, indices, logits, losses, targets, features):
        w = super().on_batch_loss(state, indices, logits, losses, targets, features)
        self.returned.append((state.epoch, indices.clone(), None if w is None else w.clone()))
        return w


class FeatureRecorder(Recorder):
    """A Recorder that also keeps the penultimate features the trainer hands the hooks."""

    def on_batch_loss(self, state, indices, logits, losses, targets, features):
        super().on_batch_loss(state, indices, logits, losses, targets, features)
        self.batches[-1]["features"] = None if features is None else features.clone()
        return None


def epoch_indices(recorder: Recorder) -> list[list[int]]:
    return [torch.cat(batches).tolist() for batches in recorder.epoch_indices]


# --- EMP: the score ------------------------------------------------------------------------------


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.5])
def test_emp_score_is_ce_plus_beta_entropy(beta):
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(40, 10, generator=gen) * 4
    logits[0] = 0.0  # uniform prediction: entropy log(10)
    logits[1, 2] = 60.0  # nearly one-hot
    targets = torch.randint(0, 10, (40,), generator=gen)
    losses = F.cross_entropy(logits, targets, reduction="none")
    expected = numpy_emp(logits.numpy(), targets.numpy(), beta)
    got = emp_score(losses, logits, targets, beta)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-5, atol=1e-5)
    assert abs(numpy_ce_and_entropy(logits[:1].numpy(), targets[:1].numpy())[1][0] - np.log(10)) < 1e-12


@pytest.mark.parametrize("beta", [0.0, 1.0, 2.5])
def test_emp_stores_the_score_of_the_forwarded_samples_only(tiny, beta):
    task, splits = tiny
    state = make_state(task, splits=splits, epochs=3)
    method = EMP(RATIO, beta=beta)
    method.on_run_start(state)
    gen = torch.Generator().manual_seed(5)
    indices = torch.tensor([17, 3, 250, 99, 0])
    logits = torch.randn(5, 10, generator=gen) * 3
    targets = torch.randint(0, 10, (5,), generator=gen)
    losses = F.cross_entropy(logits, targets, reduction="none")
    assert method.on_batch_loss(state, indices, logits, losses, targets, None) is None
    expected = numpy_emp(logits.numpy(), targets.numpy(), beta)
    np.testing.assert_allclose(method.scores[indices].numpy(), expected, rtol=1e-5, atol=1e-5)
    others = torch.ones(state.n_train, dtype=torch.bool)
    others[indices] = False
    assert torch.all(method.scores[others] == 0)

    # a second forward of sample 3 replaces (does not average) its score
    new_logits = torch.randn(1, 10, generator=gen)
    new_targets = torch.tensor([7])
    method.on_batch_loss(state, torch.tensor([3]), new_logits,
                         F.cross_entropy(new_logits, new_targets, reduction="none"), new_targets, None)
    np.testing.assert_allclose(float(method.scores[3]), numpy_emp(new_logits.numpy(), [7], beta)[0], rtol=1e-5)
    np.testing.assert_allclose(method.scores[torch.tensor([17, 250, 99, 0])].numpy(), expected[[0, 2, 3, 4]],
                               rtol=1e-5, atol=1e-5)


# --- EMP: what the trainer trains on ---------------------------------------------------------------


def run_emp(task, splits, epochs, **options):
    method = WeightsEMP(RATIO, seed=1, **options)
    snapshot, recorder = Snapshot(method), Recorder()
    _, result = fit(task, [snapshot, method, recorder], seed=0, splits=splits, epochs=epochs)
    return method, snapshot, recorder, result


@pytest.fixture(scope="module")
def emp_run(tiny):
    task, splits = tiny
    return run_emp(task, splits, epochs=4, beta=2.5)


def test_emp_epoch_sizes_and_top_k_selection(emp_run):
    method, snapshot, recorder, result = emp_run
    n = 270
    k = n - round(RATIO * n)
    seen = epoch_indices(recorder)
    assert len(seen) == 4
    assert sorted(seen[0]) == list(range(n))
    for epoch in range(1, 4):
        assert len(seen[epoch]) == k == len(set(seen[epoch])), epoch
        assert sorted(seen[epoch]) == top_k_by_hand(snapshot.start_scores[epoch], k), epoch
    assert result.active_sizes == [n] + [k] * 3
    # the scores the selection used are the ones last computed from the recorded forwards
    last = np.zeros(n)
    batch_no = 0
    for epoch in range(4):
        np.testing.assert_allclose(snapshot.start_scores[epoch].numpy(), last, rtol=1e-5, atol=1e-5)
        for _ in recorder.epoch_indices[epoch]:
            b = recorder.batches[batch_no]
            last[b["indices"].numpy()] = numpy_emp(b["logits"].numpy(), b["targets"].numpy(), 2.5)
            batch_no += 1
    np.testing.assert_allclose(method.scores.numpy(), last, rtol=1e-5, atol=1e-5)


def test_emp_unseen_samples_keep_their_score_and_seen_ones_are_refreshed(emp_run):
    method, snapshot, recorder, _ = emp_run
    seen = epoch_indices(recorder)
    batch_no = 0
    for epoch in range(4):
        before, after = snapshot.start_scores[epoch], snapshot.end_scores[epoch]
        trained = torch.zeros(270, dtype=torch.bool)
        trained[seen[epoch]] = True
        assert torch.equal(after[~trained], before[~trained]), epoch
        for _ in recorder.epoch_indices[epoch]:
            b = recorder.batches[batch_no]
            expected = numpy_emp(b["logits"].numpy(), b["targets"].numpy(), 2.5)
            np.testing.assert_allclose(after[b["indices"]].numpy(), expected, rtol=1e-5, atol=1e-5)
            batch_no += 1
        assert (after[trained] != before[trained]).float().mean() > 0.95
        if epoch > 0:
            assert int((~trained).sum()) == round(RATIO * 270)


def test_emp_beta_zero_selects_by_loss_alone(tiny):
    task, splits = tiny
    method, snapshot, recorder, _ = run_emp(task, splits, epochs=3, beta=0.0)
    k = 270 - round(RATIO * 270)
    last_loss = torch.zeros(270)
    batch_no = 0
    for epoch, batches in enumerate(recorder.epoch_indices):
        if epoch > 0:
            chosen = sorted(torch.cat(batches).tolist())
            assert chosen == top_k_by_hand(last_loss, k), epoch
        for _ in batches:
            b = recorder.batches[batch_no]
            last_loss[b["indices"]] = b["losses"]  # the trainer's per-sample CE, nothing else
            batch_no += 1
    assert torch.equal(method.scores, last_loss)


def test_emp_infobatch_drops_below_mean_and_rescales(tiny):
    task, splits = tiny
    epochs = 4
    method, snapshot, recorder, result = run_emp(task, splits, epochs=epochs, beta=1.0, infobatch=True)
    seen = epoch_indices(recorder)
    assert sorted(seen[0]) == list(range(270))
    up = np.float32(1.0 / (1.0 - RATIO))
    for epoch in range(1, epochs):
        scores = snapshot.start_scores[epoch].double().numpy()
        low = scores < scores.mean()
        # nothing sits on the mean within float error, so float32/float64 agree on "below"
        assert np.abs(scores - scores.mean()).min() > 1e-5
        trained = np.zeros(270, dtype=bool)
        trained[seen[epoch]] = True
        assert len(seen[epoch]) == trained.sum()
        dropped = ~trained
        assert np.all(low[dropped]), epoch
        assert dropped.sum() == round(RATIO * low.sum()) > 0
        assert result.active_sizes[epoch] == trained.sum()
    # the loss weights EMP handed back
    for epoch, indices, weights in method.returned:
        if epoch == 0:
            assert weights is None
            continue
        scores = snapshot.start_scores[epoch].double().numpy()
        low = scores < scores.mean()
        expected = np.where(low[indices.numpy()], up, np.float32(1.0))
        assert weights is not None and weights.dtype == torch.float32
        np.testing.assert_array_equal(weights.numpy(), expected)
    assert any(w is not None and bool((w != 1).any()) for _, _, w in method.returned)


def tied_scores(n: int, seed: int) -> torch.Tensor:
    """Scores with many exact ties (few distinct values), in a shuffled order."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 6, (n,), generator=gen).float() * 0.25


def test_emp_selection_breaks_ties_by_lower_index(tiny):
    task, splits = tiny
    state = make_state(task, splits=splits, epochs=3)
    method = EMP(RATIO)
    method.on_run_start(state)
    assert method.on_epoch_start(state) is None  # epoch 0: everything
    for seed in range(3):
        method.scores = tied_scores(270, seed)
        state.epoch = 1 + seed
        chosen = method.on_epoch_start(state)
        assert chosen.tolist() == top_k_by_hand(method.scores, 270 - round(RATIO * 270))


# --- TED: the closed form against autograd ----------------------------------------------------------


def small_head_model(bias=True):
    torch.manual_seed(11)
    model = SmallCNN(1, 10, image_size=28, width=4, hidden=16)
    if not bias:
        model.head = nn.Linear(16, 10, bias=False)
    return model


@pytest.mark.parametrize("bias", [True, False])
def test_ted_alignment_equals_autograd_inner_product(bias):
    model = small_head_model(bias)
    gen = torch.Generator().manual_seed(2)
    x = torch.rand(8, 1, 28, 28, generator=gen)
    y = torch.randint(0, 10, (8,), generator=gen)
    with torch.no_grad():
        h = model.features(x)
    h = h + 0.5 * torch.randn(h.shape, generator=gen)  # well away from zero
    logits = model.head(h).detach()
    grads = autograd_head_gradients(model.head, h, y)  # (B, classes * (features[+1]))
    cols = 17 if bias else 16
    mean_gradient = torch.randn(10, cols, generator=gen)
    expected = grads @ mean_gradient.flatten()
    # written out the long way: weight part and bias column separately
    if bias:
        w_part = grads.view(8, 10, 17)[:, :, :16]
        b_part = grads.view(8, 10, 17)[:, :, 16]
        long_way = (w_part * mean_gradient[:, :16]).sum(dim=(1, 2)) + (b_part * mean_gradient[:, 16]).sum(dim=1)
        torch.testing.assert_close(expected, long_way, rtol=1e-5, atol=1e-5)
    error, inputs = head_gradient_factors(logits, y, h, bias=bias)
    assert inputs.shape == (8, cols) and error.shape == (8, 10)
    got = alignment(error, inputs, mean_gradient)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    assert expected.abs().max() > 0.1  # not trivially zero

    # the batch-mean gradient TED uses is autograd's gradient of the mean loss
    loss = F.cross_entropy(model.head(h), y)
    params = [model.head.weight] + ([model.head.bias] if bias else [])
    g = torch.autograd.grad(loss, params)
    batch_grad = g[0] if not bias else torch.cat([g[0], g[1][:, None]], dim=1)
    torch.testing.assert_close(error.T @ inputs / len(y), batch_grad, rtol=1e-5, atol=1e-6)
    # and it is what a TED run takes as its first running mean
    task = tiny_task()
    state = make_state(task, model=model, epochs=4)
    ted = TED(RATIO)
    ted.on_run_start(state)
    assert ted.has_bias is bias
    ted.on_batch_loss(state, torch.arange(8), logits, F.cross_entropy(logits, y, reduction="none"), y, h)
    torch.testing.assert_close(ted.mean_gradient, batch_grad, rtol=1e-5, atol=1e-6)
    # a first observation's score is its alignment with that mean
    torch.testing.assert_close(ted.scores[:8], grads @ batch_grad.flatten(), rtol=1e-5, atol=1e-5)


def test_ted_score_is_an_ema_of_alignments(tiny):
    task, splits = tiny
    state = make_state(task, splits=splits, epochs=4)
    ema, momentum = 0.7, 0.6
    ted = TED(RATIO, ema=ema, grad_momentum=momentum)
    ted.on_run_start(state)
    gen = torch.Generator().manual_seed(9)
    batches = []
    for indices in ([3, 5, 8], [5, 1, 3], [3, 2]):
        b = len(indices)
        logits = torch.randn(b, 10, generator=gen) * 2
        features = torch.randn(b, 6, generator=gen)
        targets = torch.randint(0, 10, (b,), generator=gen)
        batches.append((torch.tensor(indices), logits, features, targets))

    # independent float64 bookkeeping
    g_bar = None
    expected: dict[int, float] = {}
    alignments: dict[int, list[float]] = {}
    for indices, logits, features, targets in batches:
        ret = ted.on_batch_loss(state, indices, logits, F.cross_entropy(logits, targets, reduction="none"),
                                targets, features)
        assert ret is None
        g = numpy_head_gradient(logits.numpy(), targets.numpy(), features.numpy())
        mean = g.mean(axis=0)
        g_bar = mean if g_bar is None else momentum * g_bar + (1 - momentum) * mean
        for j, i in enumerate(indices.tolist()):
            a = float((g[j] * g_bar).sum())
            alignments.setdefault(i, []).append(a)
            expected[i] = a if i not in expected else ema * expected[i] + (1 - ema) * a
        np.testing.assert_allclose(ted.mean_gradient.double().numpy(), g_bar, rtol=1e-5, atol=1e-6)

    a1, a2 = alignments[5]
    np.testing.assert_allclose(float(ted.scores[5]), ema * a1 + (1 - ema) * a2, rtol=1e-5, atol=1e-6)
    a1, a2, a3 = alignments[3]
    np.testing.assert_allclose(float(ted.scores[3]), ema * (ema * a1 + (1 - ema) * a2) + (1 - ema) * a3,
                               rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(float(ted.scores[8]), alignments[8][0], rtol=1e-5, atol=1e-6)
    for i, value in expected.items():
        np.testing.assert_allclose(float(ted.scores[i]), value, rtol=1e-5, atol=1e-6)
    untouched = [i for i in range(state.n_train) if i not in expected]
    assert torch.all(ted.scores[untouched] == 0)


# --- TED: the stage schedule ----------------------------------------------------------------------


@pytest.mark.parametrize("epochs,stages,until,expected", [
    (12, 3, 0.75, [3, 6, 9]),
    (100, 3, 0.75, [25, 50, 75]),
    (4, 3, 0.75, [1, 2, 3]),
    (3, 3, 0.75, [1, 2, 2]),
    (7, 3, 0.75, [2, 4, 5]),
    (10, 2, 0.6, [3, 6]),
    (20, 1, 0.5, [10]),
    (6, 5, 0.5, [1, 1, 2, 2, 3]),
])
def test_ted_stage_epochs_by_hand(epochs, stages, until, expected):
    assert stage_epochs(epochs, stages, until) == expected


@pytest.mark.parametrize("epochs,stages,until,ratio", [(7, 3, 0.75, 0.3), (12, 4, 0.5, 0.37), (4, 3, 0.75, 0.5)])
def test_ted_removed_target_rises_to_exactly_round_ratio_n(tiny, epochs, stages, until, ratio):
    task, splits = tiny
    ted = TED(ratio, stages=stages, until=until)
    ted.on_run_start(make_state(task, splits=splits, epochs=epochs))
    n = 270
    starts = stage_epochs(epochs, stages, until)
    removed = [ted.removed_target(e, n) for e in range(epochs)]
    for e, r in enumerate(removed):
        begun = sum(e >= s for s in starts)
        assert r == round(ratio * n * begun / stages)
    assert removed[0] == 0
    assert removed == sorted(removed)
    last = starts[-1]
    assert all(r == round(ratio * n) for r in removed[last:])
    assert all(r < round(ratio * n) for r in removed[:last])


@pytest.mark.parametrize("epochs,stages,until", [(2, 3, 0.75), (6, 3, 1.0)])
def test_ted_last_stage_begins_within_the_run(tiny, epochs, stages, until):
    task, splits = tiny
    ted = TED(RATIO, stages=stages, until=until)
    ted.on_run_start(make_state(task, splits=splits, epochs=epochs))
    assert max(ted.schedule) <= epochs - 1
    assert ted.removed_target(epochs - 1, 270) == round(RATIO * 270)


def test_ted_refuses_a_one_epoch_run(tiny):
    task, splits = tiny
    with pytest.raises(ValueError, match="at least 2 epochs"):
        TED(RATIO).on_run_start(make_state(task, splits=splits, epochs=1))


def test_ted_removal_breaks_ties_by_lower_index(tiny):
    task, splits = tiny
    state = make_state(task, splits=splits, epochs=4)  # stages start at epochs [1, 2, 3]
    ted = TED(RATIO, stages=3, until=0.75)
    ted.on_run_start(state)
    active = list(range(270))
    for epoch in range(4):
        state.epoch = epoch
        ted.scores = tied_scores(270, epoch)
        scores = ted.scores.clone()
        chosen = ted.on_epoch_start(state).tolist()
        n_removed = round(RATIO * 270 * epoch / 3)
        assert len(chosen) == 270 - n_removed
        assert chosen == sorted(set(active) - set(lowest_by_hand(scores, active, len(active) - len(chosen))))
        active = chosen
    assert len(active) == 270 - round(RATIO * 270)


@pytest.fixture(scope="module")
def ted_run(tiny):
    task, splits = tiny
    method = TED(RATIO, stages=3, until=0.75)
    snapshot, recorder = Snapshot(method), FeatureRecorder()
    _, result = fit(task, [snapshot, method, recorder], seed=0, splits=splits, epochs=7)
    return method, snapshot, recorder, result


def test_ted_progressive_removal_through_fit(ted_run):
    method, snapshot, recorder, result = ted_run
    n, epochs, stages = 270, 7, 3
    starts = [2, 4, 5]
    seen = epoch_indices(recorder)
    assert len(seen) == epochs
    previous = list(range(n))
    for epoch in range(epochs):
        active = sorted(seen[epoch])
        assert len(active) == len(set(active))
        begun = sum(epoch >= s for s in starts)
        assert n - len(active) == round(RATIO * n * begun / stages), epoch
        assert set(active) <= set(previous), epoch  # never re-admitted
        # the state the method started the epoch from is the previous epoch's active set
        assert snapshot.start_active[epoch].nonzero().flatten().tolist() == previous
        removed_now = sorted(set(previous) - set(active))
        expected = lowest_by_hand(snapshot.start_scores[epoch], previous, len(previous) - len(active))
        assert removed_now == expected, epoch
        previous = active
    assert n - len(seen[-1]) == round(RATIO * n) == 81
    assert result.active_sizes == [len(s) for s in seen]
    assert method.summary()["removed_fraction_final"] == pytest.approx(81 / 270)


def test_ted_scores_through_fit_match_an_independent_replay(ted_run):
    """Replay the recorded batches (logits, targets, features) through a float64 reimplementation
    with the default ema and grad_momentum (0.9 each)."""
    method, snapshot, recorder, _ = ted_run
    g_bar, scores, seen_before = None, np.zeros(270), np.zeros(270, dtype=bool)
    batch_no = 0
    for epoch, batches in enumerate(recorder.epoch_indices):
        np.testing.assert_allclose(snapshot.start_scores[epoch].numpy(), scores, rtol=1e-4, atol=1e-5)
        for _ in batches:
            b = recorder.batches[batch_no]
            batch_no += 1
            assert b["features"] is not None and b["features"].shape == (len(b["indices"]), 128)
            g = numpy_head_gradient(b["logits"].numpy(), b["targets"].numpy(), b["features"].numpy())
            g_bar = g.mean(axis=0) if g_bar is None else 0.9 * g_bar + 0.1 * g.mean(axis=0)
            idx = b["indices"].numpy()
            a = (g * g_bar).sum(axis=(1, 2))
            scores[idx] = np.where(seen_before[idx], 0.9 * scores[idx] + 0.1 * a, a)
            seen_before[idx] = True
        # untrained samples keep their score exactly; trained ones move
        trained = torch.zeros(270, dtype=torch.bool)
        trained[torch.cat(batches)] = True
        before, after = snapshot.start_scores[epoch], snapshot.end_scores[epoch]
        assert torch.equal(after[~trained], before[~trained])
        assert (after[trained] != before[trained]).float().mean() > 0.95
    np.testing.assert_allclose(method.scores.numpy(), scores, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(method.mean_gradient.double().numpy(), g_bar, rtol=1e-4, atol=1e-6)


# --- both: summaries, provenance, sample passes -------------------------------------------------------


def test_summaries_provenance_and_sample_passes(emp_run, ted_run):
    assert EMP.provenance == "reconstructed" and TED.provenance == "reconstructed"
    assert EMP.family == TED.family == "data"
    for method, _, recorder, result in (emp_run, ted_run):
        summary = method.summary()
        assert summary["score_upkeep_seconds"] >= 0
        assert type(method).provenance == "reconstructed"
        sizes = [len(s) for s in epoch_indices(recorder)]
        assert result.state.sample_passes == sum(sizes) == sum(result.active_sizes)
        assert [h["active_samples"] for h in result.state.history] == [float(s) for s in sizes]


def test_one_epoch_recipe_refuses_ted_and_warns_that_emp_prunes_nothing():
    from benchmark.sweeps.cells import SweepError, parse_sweep

    def sweep(methods, epochs):
        return parse_sweep({"name": "short", "profile": "smoke", "seeds": [0], "ratios": [0.5],
                            "tasks": [{"name": "fashion-mnist", "options": {"epochs": epochs}}], "methods": methods},
                           check_data=False)

    with pytest.raises(SweepError) as error:
        sweep(["ted", "emp"], 1)
    assert error.value.problems == [
        "method 'ted' on task 'fashion-mnist' (smoke profile, 1 epoch(s)): needs at least 2 epochs: epoch 0 fills "
        "the scores and pruning starts at epoch 1; give the task at least 2 epochs (task option epochs)"]
    assert sweep(["emp"], 1).warnings == (
        "method 'emp' on task 'fashion-mnist' (smoke profile, 1 epoch(s)) prunes nothing: epoch 0 trains on every "
        "sample to fill the scores, and pruning starts at epoch 1; give the task at least 2 epochs (task option "
        "epochs)",)
    assert sweep(["ted", "emp"], 2).warnings == ()


def test_emp_on_one_epoch_trains_on_everything_as_its_warning_says(one_cpu_thread):  # noqa: F811
    _, result = fit(tiny_task(epochs=1), hooks=[EMP(0.5)])
    assert result.active_sizes == [result.state.n_train]
