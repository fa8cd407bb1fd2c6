"""Data-pruning methods: EL2N (scores, proxies, cache, selection modes), the shared
selection functions, and random data pruning (static, dynamic, class-balanced)."""
from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest
import torch

from benchmark.training.context import RunContext
from benchmark.api.task import Split, Splits
from helpers_tiny import Recorder, context_for, cpu, fit, make_state, one_cpu_thread, tiny_task  # noqa: F401
from methods.data.el2n import EL2N, el2n_scores
from methods.data.random_data import RandomData, class_quotas
from methods.data.selection import hardest_first, keep_hardest, stratified

# --- EL2N score ------------------------------------------------------------------------------


def numpy_el2n(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    z = logits.astype(np.float64)
    z = z - z.max(axis=1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    onehot = np.zeros_like(p)
    onehot[np.arange(len(labels)), labels] = 1.0
    return np.sqrt(((p - onehot) ** 2).sum(axis=1))


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64, torch.bfloat16))
def test_el2n_scores_equal_an_independent_numpy_computation(dtype):
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(500, 7, generator=g) * 4).to(dtype)
    labels = torch.randint(0, 7, (500,), generator=g)
    scores = el2n_scores(logits, labels)
    expected = numpy_el2n(logits.float().numpy(), labels.numpy())
    assert scores.shape == (500,)
    np.testing.assert_allclose(scores.numpy(), expected, rtol=1e-5, atol=1e-6)
    assert float(scores.min()) >= 0 and float(scores.max()) <= np.sqrt(2) + 1e-6


def test_el2n_score_extremes():
    labels = torch.tensor([0, 1])
    logits = torch.tensor([[100.0, 0.0, 0.0], [100.0, 0.0, 0.0]])
    s = el2n_scores(logits, labels)
    assert s[0] == pytest.approx(0.0, abs=1e-6)  # confident and right
    assert s[1] == pytest.approx(np.sqrt(2), abs=1e-6)  # confident and wrong


# --- EL2N.prepare: proxies, averaging, cache --------------------------------------------------


@pytest.fixture(scope="module")
def tiny():
    task = tiny_task()
    return task, task.load_splits()


def independent_el2n(task, splits, seed: int, proxy_runs: int, epochs: int) -> torch.Tensor:
    """Train the method's proxies again (same seeds as methods/data/el2n.py) and score them by hand."""
    ctx = RunContext(task=task, splits=splits, device=cpu(), seed=seed, cache_dir=None)
    per_run = []
    for run in range(proxy_runs):
        model, passes = ctx.train_proxy(seed=1_000_003 * (run + 1) + seed, epochs=epochs)
        assert passes == epochs * len(splits.train)
        model.eval()
        with torch.no_grad():
            logits = model(task.prepare_batch(splits.train.x, train=False, generator=None))
        per_run.append(numpy_el2n(logits.numpy(), splits.train.y.numpy()))
    return torch.from_numpy(np.mean(per_run, axis=0))


def test_el2n_prepare_averages_proxy_scores_and_caches_them(tiny, tmp_path, monkeypatch):
    task, splits = tiny
    n = len(splits.train)
    ctx = context_for(tiny, tmp_path)
    method = EL2N(0.3, seed=4, proxy_runs=2, score_epochs=1)
    method.prepare(ctx)
    expected = independent_el2n(task, splits, seed=4, proxy_runs=2, epochs=1)
    assert method.scores.shape == (n,)
    np.testing.assert_allclose(method.scores.numpy(), expected.numpy(), rtol=1e-5, atol=1e-6)
    # two proxies differ (different seeds), so the average is not just one of them
    one = independent_el2n(task, splits, seed=4, proxy_runs=1, epochs=1)
    assert not np.allclose(one.numpy(), expected.numpy(), atol=1e-4)
    assert not ctx.scores_cached
    assert ctx.scoring_sample_passes == 2 * n
    assert ctx.scoring_seconds > 0
    files = list((tmp_path / "el2n").glob("*.pt"))
    assert len(files) == 1 and not list((tmp_path / "el2n").glob("*.tmp"))
    stored = torch.load(files[0], weights_only=True)
    assert torch.equal(stored["scores"], method.scores)
    assert stored["sample_passes"] == 2 * n and stored["seconds"] == ctx.scoring_seconds
    # the subset is the hardest 70%
    assert len(method.subset) == n - round(0.3 * n)
    mtime = os.stat(files[0]).st_mtime_ns

    # another ratio and mode reuse the cache: no proxy training, the stored cost is charged
    def no_training(*args, **kwargs):
        raise AssertionError("proxy trained although the scores are cached")

    ctx2 = context_for(tiny, tmp_path)
    monkeypatch.setattr(ctx2, "train_proxy", no_training)
    again = EL2N(0.6, seed=4, proxy_runs=2, score_epochs=1, mode="stratified", cut=0.1)
    again.prepare(ctx2)
    assert torch.equal(again.scores, method.scores)
    assert ctx2.scores_cached
    assert ctx2.scoring_seconds == stored["seconds"] and ctx2.scoring_sample_passes == 2 * n
    assert os.stat(files[0]).st_mtime_ns == mtime
    assert len(list((tmp_path / "el2n").glob("*.pt"))) == 1
    assert len(again.subset) == n - round(0.6 * n)

    # other proxy settings or another seed get their own scores
    ctx3 = context_for(tiny, tmp_path)
    EL2N(0.3, seed=5, proxy_runs=1, score_epochs=1).prepare(ctx3)
    assert not ctx3.scores_cached
    assert len(list((tmp_path / "el2n").glob("*.pt"))) == 2


def test_el2n_fresh_cache_reproduces_the_scores(tiny, tmp_path):
    a = EL2N(0.5, seed=1, proxy_runs=1, score_epochs=1)
    a.prepare(context_for(tiny, tmp_path / "one"))
    b = EL2N(0.5, seed=1, proxy_runs=1, score_epochs=1)
    b.prepare(context_for(tiny, tmp_path / "two"))
    assert torch.equal(a.scores, b.scores)
    assert torch.equal(a.subset, b.subset)


def test_el2n_subset_is_what_the_trainer_trains_on(tiny, tmp_path):
    task, splits = tiny
    method = EL2N(0.4, seed=0, proxy_runs=1, score_epochs=1)
    method.prepare(context_for(tiny, tmp_path))
    recorder = Recorder()
    _, result = fit(task, [method, recorder], seed=0, splits=splits, epochs=2)
    n_keep = len(splits.train) - round(0.4 * len(splits.train))
    assert result.active_sizes == [n_keep, n_keep]
    for epoch in recorder.epoch_indices:
        assert torch.equal(torch.sort(torch.cat(epoch)).values, method.subset)


# --- EL2N selection modes ------------------------------------------------------------------


def ranked(scores: list[float]) -> list[int]:
    """Hardest first, ties by lower index: computed without torch."""
    return sorted(range(len(scores)), key=lambda i: (-scores[i], i))


TIED = [0.5, 0.9, 0.5, 0.1, 0.9, 0.5, 0.3, 0.9, 0.5, 0.2, 0.5, 0.7]  # n = 12, many ties


def test_hardest_keeps_the_top_k_with_ties_broken_by_lower_index():
    scores = torch.tensor(TIED)
    for ratio in (0.25, 0.5, 0.6):
        method = EL2N(ratio, mode="hardest")
        k = 12 - round(ratio * 12)
        assert method.select(scores).tolist() == sorted(ranked(TIED)[:k])
    # explicitly: keeping 5 of [0.9 x3 (1, 4, 7), 0.7 (11), 0.5 x5 (0, 2, 5, 8, 10)] takes index 0
    assert EL2N(7 / 12, mode="hardest").select(scores).tolist() == [0, 1, 4, 7, 11]
    assert hardest_first(scores).tolist() == ranked(TIED)


@pytest.mark.parametrize("offset", (0.1, 0.25, 0.4))
def test_offset_skips_exactly_the_hardest_fraction(offset):
    scores = torch.tensor(TIED)
    method = EL2N(0.5, mode="offset", offset=offset)
    skip = round(offset * 12)
    assert method.select(scores).tolist() == sorted(ranked(TIED)[skip : skip + 6])


def test_offset_on_random_scores():
    g = torch.Generator().manual_seed(3)
    scores = torch.rand(1000, generator=g)
    subset = EL2N(0.7, mode="offset", offset=0.05).select(scores)
    order = ranked(scores.tolist())
    assert subset.tolist() == sorted(order[50:350])


@pytest.mark.parametrize("cut", (0.0, 0.1, 0.3))
def test_stratified_mode_keeps_n_keep_and_excludes_the_cut(cut):
    g = torch.Generator().manual_seed(5)
    scores = torch.rand(800, generator=g) ** 3
    method = EL2N(0.6, seed=2, mode="stratified", cut=cut, bins=20)
    subset = method.select(scores)
    n_keep = 800 - round(0.6 * 800)
    assert len(subset) == n_keep == len(torch.unique(subset))
    cut_set = set(ranked(scores.tolist())[: round(cut * 800)])
    assert not cut_set & set(subset.tolist())
    assert torch.equal(subset, EL2N(0.6, seed=2, mode="stratified", cut=cut, bins=20).select(scores))


def test_el2n_rejects_bad_options():
    for bad in ({"mode": "easiest"}, {"proxy_runs": 0}, {"offset": 1.0}, {"cut": -0.1}, {"score_epochs": 0}):
        with pytest.raises(ValueError):
            EL2N(0.5, **bad)


# --- selection.stratified -------------------------------------------------------------------


def ccs_counts(scores: torch.Tensor, n_keep: int, cut: int, bins: int) -> list[int]:
    """How many samples CCS takes from each stratum (independent of methods/data/selection.py):
    strata over the remaining score range, budget spread from the smallest stratum up."""
    s = scores.tolist()
    pool = ranked(s)[cut:]
    values = [s[i] for i in pool]
    low, high = min(values), max(values)
    width = (high - low) / bins
    sizes = [0] * bins
    for v in values:
        sizes[min(int((v - low) // width), bins - 1)] += 1
    take = [0] * bins
    remaining = n_keep
    for rank, b in enumerate(sorted(range(bins), key=lambda b: (sizes[b], b))):
        take[b] = min(sizes[b], remaining // (bins - rank))
        remaining -= take[b]
    assert remaining == 0
    return take


def stratum_of(scores: torch.Tensor, picked: torch.Tensor, cut: int, bins: int) -> list[int]:
    s = scores.tolist()
    values = [s[i] for i in ranked(s)[cut:]]
    low, high = min(values), max(values)
    counts = [0] * bins
    for i in picked.tolist():
        counts[min(int((s[i] - low) // ((high - low) / bins)), bins - 1)] += 1
    return counts


@pytest.mark.parametrize("n_keep,cut,bins", [(300, 100, 10), (50, 0, 50), (700, 250, 7), (333, 17, 13)])
def test_stratified_exact_count_no_duplicates_and_ccs_allocation(n_keep, cut, bins):
    g = torch.Generator().manual_seed(11)
    u = torch.rand(1000, generator=torch.Generator().manual_seed(n_keep), dtype=torch.float64)
    scores = -torch.log1p(-u) / 3.0  # exponential: skewed, so the strata are unequal
    scores = torch.round(scores * 1e6) / 1e6
    picked = stratified(scores, n_keep, cut, bins, g)
    assert picked.dtype == torch.long
    assert len(picked) == n_keep == len(torch.unique(picked))
    assert torch.equal(picked, torch.sort(picked).values)
    assert not set(ranked(scores.tolist())[:cut]) & set(picked.tolist())
    assert stratum_of(scores, picked, cut, bins) == ccs_counts(scores, n_keep, cut, bins)


def test_stratified_is_deterministic_for_a_seeded_generator():
    scores = torch.rand(500, generator=torch.Generator().manual_seed(0))
    a = stratified(scores, 200, 20, 10, torch.Generator().manual_seed(42))
    b = stratified(scores, 200, 20, 10, torch.Generator().manual_seed(42))
    c = stratified(scores, 200, 20, 10, torch.Generator().manual_seed(43))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_stratified_constant_scores_and_too_large_budget():
    scores = torch.ones(40)
    picked = stratified(scores, 15, 5, 8, torch.Generator().manual_seed(0))
    assert len(picked) == 15 == len(torch.unique(picked))
    assert not set(range(5)) & set(picked.tolist())  # ties: the cut takes the lowest indices
    with pytest.raises(ValueError):
        stratified(scores, 36, 5, 8, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError):
        keep_hardest(scores, 36, 5)


# --- random data pruning --------------------------------------------------------------------


def label_state(labels: torch.Tensor):
    n = len(labels)
    split = Split(torch.zeros(n, 1, 1, 1, dtype=torch.uint8), labels)
    empty = Split(torch.zeros(0, 1, 1, 1, dtype=torch.uint8), torch.zeros(0, dtype=torch.long))
    return make_state(tiny_task(), splits=Splits(split, empty, empty), epochs=5)


def epochs_of(method, state, epochs=4) -> list[torch.Tensor]:
    method.on_run_start(state)
    out = []
    for epoch in range(epochs):
        state.epoch = epoch
        out.append(method.on_epoch_start(state).clone())
    return out


@pytest.mark.parametrize("n,ratio", [(1000, 0.3), (999, 0.5), (7, 0.5), (270, 0.37), (10, 0.05)])
def test_static_random_subset_size_and_constancy(n, ratio):
    state = label_state(torch.zeros(n, dtype=torch.long))
    subsets = epochs_of(RandomData(ratio, seed=1), state)
    for s in subsets:
        assert len(s) == n - round(ratio * n) == len(torch.unique(s))
        assert int(s.min()) >= 0 and int(s.max()) < n
        assert torch.equal(s, subsets[0])
    assert torch.equal(subsets[0], epochs_of(RandomData(ratio, seed=1), state)[0])
    if 0 < round(ratio * n) < n - 1:
        assert not torch.equal(subsets[0], epochs_of(RandomData(ratio, seed=2), state)[0])


def test_dynamic_random_subset_changes_every_epoch_with_the_same_size():
    n = 500
    state = label_state(torch.zeros(n, dtype=torch.long))
    subsets = epochs_of(RandomData(0.4, seed=3, dynamic=True), state, epochs=5)
    for s in subsets:
        assert len(s) == 300 == len(torch.unique(s))
    for a, b in zip(subsets, subsets[1:]):
        assert not torch.equal(a, b)
    # reproducible from the seed
    again = epochs_of(RandomData(0.4, seed=3, dynamic=True), state, epochs=5)
    assert all(torch.equal(a, b) for a, b in zip(subsets, again))


def largest_remainder(labels: list[int], n_keep: int) -> dict[int, int]:
    """Quotas proportional to class size; leftover seats by largest remainder, ties to the lower class."""
    n = len(labels)
    counts = {c: labels.count(c) for c in sorted(set(labels))}
    exact = {c: Fraction(k * n_keep, n) for c, k in counts.items()}
    quota = {c: int(e) for c, e in exact.items()}
    short = n_keep - sum(quota.values())
    for c in sorted(counts, key=lambda c: (-(exact[c] - quota[c]), c))[:short]:
        quota[c] += 1
    return quota


@pytest.mark.parametrize("counts,ratio", [
    ((10, 10, 10), 1 / 3),          # equal remainders: ties to the lower classes
    ((50, 30, 15, 4, 1), 0.37),
    ((123, 77, 5, 301, 9, 60), 0.8),
    ((3, 3, 3, 3, 3, 3, 3), 0.5),
])
def test_class_balanced_random_subset_follows_largest_remainder_quotas(counts, ratio):
    labels = torch.cat([torch.full((k,), c, dtype=torch.long) for c, k in enumerate(counts)])
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(0))]
    n = len(labels)
    n_keep = n - round(ratio * n)
    expected = largest_remainder(labels.tolist(), n_keep)
    assert sum(expected.values()) == n_keep
    assert class_quotas(labels, n_keep) == expected
    for dynamic in (False, True):
        subsets = epochs_of(RandomData(ratio, seed=2, class_balanced=True, dynamic=dynamic), label_state(labels), 3)
        for s in subsets:
            assert len(s) == n_keep == len(torch.unique(s))
            got = {c: int((labels[s] == c).sum()) for c in expected}
            assert got == expected


def test_random_data_through_the_trainer(tiny):
    task, splits = tiny
    n = len(splits.train)
    method, recorder = RandomData(0.5, seed=0), Recorder()
    _, result = fit(task, [method, recorder], seed=0, splits=splits, epochs=3)
    assert result.active_sizes == [n - round(0.5 * n)] * 3
    seen = [torch.sort(torch.cat(e)).values for e in recorder.epoch_indices]
    assert all(torch.equal(s, method.subset) for s in seen)
    assert result.state.sample_passes == 3 * (n - round(0.5 * n))
