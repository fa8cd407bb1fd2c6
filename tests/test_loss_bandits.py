"""UCB and epsilon-greedy (Raju et al. 2021, reconstructed) against an independent numpy replay of their formulas.

The replay below recomputes, in float64 numpy and with loops, the running loss estimates
(EMA mean and EMA squared deviation, the first loss initialising the mean) and each epoch's
selection over a fixed loss trace; the methods are driven through their hooks with the same
losses and must choose the same samples.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.sweeps.cells import SweepError, parse_sweep
from benchmark.api.hooks import TrainState
from benchmark.api.task import Split, Splits
from helpers_tiny import fit, one_cpu_thread, tiny_task  # noqa: F401
from methods.data.epsilon_greedy import EpsilonGreedy, epsilon_greedy_selection
from methods.data.ucb import UCB

N, EPOCHS = 40, 6


def trace(seed: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.lognormal(0.0, 0.7, N)
    return (base[None, :] * rng.lognormal(0.0, 0.4, (EPOCHS, N)) * np.exp(-0.2 * np.arange(EPOCHS))[:, None]
            ).astype(np.float32)


def state_for(n: int, epochs: int) -> TrainState:
    split = Split(torch.zeros(n, 1), torch.zeros(n, dtype=torch.long))
    return TrainState(model=None, optimizer=None, task=None, splits=Splits(split, split, split),
                      device=torch.device("cpu"), epochs=epochs, total_steps=epochs, steps_per_full_epoch=1)


class NumpyEstimates:
    """The update rule written out sample by sample."""

    def __init__(self, n: int, alpha: float):
        self.alpha, self.mean, self.var, self.seen = alpha, np.zeros(n), np.zeros(n), np.zeros(n, bool)

    def see(self, i: int, loss: float) -> None:
        if not self.seen[i]:
            self.mean[i], self.var[i], self.seen[i] = loss, 0.0, True
            return
        deviation = loss - self.mean[i]
        self.var[i] = (1 - self.alpha) * self.var[i] + self.alpha * deviation * deviation
        self.mean[i] = (1 - self.alpha) * self.mean[i] + self.alpha * loss


def top(scores: np.ndarray, k: int) -> list[int]:
    """The k highest scores, ties by lower index, by sorting (score desc, index asc) pairs."""
    return sorted(sorted(range(len(scores)), key=lambda i: (-scores[i], i))[:k])


def drive(method, losses: np.ndarray, batch: int = 7):
    """Run the method's hooks over the trace; yields (epoch, sorted chosen indices) after each epoch."""
    state = state_for(N, EPOCHS)
    method.on_run_start(state)
    for epoch in range(EPOCHS):
        state.epoch = epoch
        chosen = method.on_epoch_start(state)
        indices = torch.arange(N) if chosen is None else chosen
        order = indices[torch.randperm(len(indices), generator=torch.Generator().manual_seed(epoch))]
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            assert method.on_batch_loss(state, idx, None, torch.from_numpy(losses[epoch][idx.numpy()]),
                                        None, None) is None  # no loss re-weighting
        yield epoch, sorted(indices.tolist())


@pytest.mark.parametrize("c, alpha, bonus, ratio", [(1.0, 0.5, "variance", 0.5), (2.0, 0.3, "std", 0.3),
                                                    (0.0, 1.0, "variance", 0.7)])
def test_ucb_selection_equals_the_numpy_replay(c, alpha, bonus, ratio):
    losses = trace()
    n_keep = N - round(ratio * N)
    replay = NumpyEstimates(N, alpha)
    method = UCB(ratio, c=c, alpha=alpha, bonus=bonus)
    for epoch, chosen in drive(method, losses):
        if epoch == 0:
            assert chosen == list(range(N))
        else:
            bonus_term = replay.var if bonus == "variance" else np.sqrt(replay.var)
            assert chosen == top(replay.mean + c * bonus_term, n_keep)
        for i in chosen:
            replay.see(i, float(losses[epoch][i]))
        np.testing.assert_allclose(method.estimates.mean.numpy(), replay.mean, rtol=1e-5)
        np.testing.assert_allclose(method.estimates.var.numpy(), replay.var, rtol=1e-4, atol=1e-7)
    assert not np.all(replay.var == 0)  # the bonus was exercised


@pytest.mark.parametrize("epsilon, alpha, ratio", [(0.1, 0.5, 0.5), (0.25, 0.8, 0.3)])
def test_epsilon_greedy_exploits_the_replayed_estimates_and_explores_the_rest(epsilon, alpha, ratio):
    losses = trace(11)
    n_keep = N - round(ratio * N)
    n_explore = round(epsilon * n_keep)
    replay = NumpyEstimates(N, alpha)
    method = EpsilonGreedy(ratio, seed=2, epsilon=epsilon, alpha=alpha)
    explored = []
    for epoch, chosen in drive(method, losses):
        if epoch > 0:
            greedy = top(replay.mean, n_keep - n_explore)
            assert len(chosen) == n_keep and set(greedy) <= set(chosen)
            explored.append(sorted(set(chosen) - set(greedy)))
            assert len(explored[-1]) == n_explore
        for i in chosen:
            replay.see(i, float(losses[epoch][i]))
    assert len({tuple(e) for e in explored}) > 1  # the explored samples change from epoch to epoch


def test_epsilon_extremes_are_greedy_and_random():
    scores = torch.tensor([0.5, 2.0, 2.0, 0.1, 3.0, 1.0])
    greedy = epsilon_greedy_selection(scores, 3, 0.0, torch.Generator().manual_seed(0))
    assert greedy.tolist() == [1, 2, 4]  # the tie at 2.0 keeps both; with k = 2 it keeps the lower index
    assert epsilon_greedy_selection(scores, 2, 0.0, torch.Generator()).tolist() == [1, 4]
    drawn = {tuple(epsilon_greedy_selection(scores, 3, 1.0, torch.Generator().manual_seed(s)).tolist())
             for s in range(20)}
    assert len(drawn) > 3 and all(len(set(d)) == 3 for d in drawn)


def test_ucb_ties_keep_the_lower_index():
    method = UCB(0.5, c=0.0)
    method.on_run_start(state_for(4, 2))
    method.estimates.update(torch.arange(4), torch.tensor([1.0, 2.0, 2.0, 0.5]))
    assert method.select(1).tolist() == [1]


@pytest.mark.parametrize("name, options, expected", [
    ("ucb", {"c": -1.0}, "option c must be >= 0"),
    ("ucb", {"alpha": 0.0}, "option alpha must be in (0, 1]"),
    ("ucb", {"bonus": "range"}, "option bonus must be one of ['variance', 'std']"),
    ("epsilon-greedy", {"epsilon": 1.5}, "option epsilon must be in [0, 1]"),
    ("epsilon-greedy", {"alpha": 2.0}, "option alpha must be in (0, 1]"),
])
def test_bad_options_are_refused_when_the_sweep_is_read(name, options, expected):
    with pytest.raises(SweepError) as error:
        parse_sweep({"name": "t", "profile": "smoke", "tasks": ["fashion-mnist"],
                     "methods": [{"name": name, "options": options}]}, check_data=False)
    message = str(error.value)
    assert f"'{name}'" in message and expected in message and repr(next(iter(options.values()))) in message


@pytest.mark.parametrize("method_cls", [UCB, EpsilonGreedy])
def test_through_fit_epoch_zero_is_full_then_n_keep(method_cls, one_cpu_thread):  # noqa: F811
    task = tiny_task(epochs=3)
    _, result = fit(task, hooks=[method_cls(0.7)])
    n = result.state.n_train
    n_keep = n - round(0.7 * n)
    assert result.active_sizes == [n, n_keep, n_keep]
    assert result.state.sample_passes == n + 2 * n_keep


@pytest.mark.parametrize("method_cls", [UCB, EpsilonGreedy])
def test_a_one_epoch_recipe_is_warned_because_only_epoch_zero_would_run(method_cls):
    assert method_cls.recipe_warning(method_cls.settings({}), 2) is None
    warning = method_cls.recipe_warning(method_cls.settings({}), 1)
    assert warning.startswith("prunes nothing: epoch 0 trains on every sample") and "at least 2 epochs" in warning
    sweep = parse_sweep({"name": "t", "profile": "smoke", "seeds": [0], "ratios": [0.5],
                         "tasks": [{"name": "fashion-mnist", "options": {"epochs": 1}}],
                         "methods": [method_cls.name]}, check_data=False)
    assert sweep.warnings == (f"method {method_cls.name!r} on task 'fashion-mnist' (smoke profile, 1 epoch(s)) "
                              + warning,)
    # what it warns of is what the hooks do: test_through_fit_epoch_zero_is_full_then_n_keep
