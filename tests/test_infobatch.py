"""InfoBatch against the reference code's own figures (tests/fixtures/infobatch_reference.json).

The fixture is NUS-HPC-AI-Lab/InfoBatch run on a fixed loss trace (scripts/infobatch_reference_fixture.py).
Two comparisons:

- with the draw seeded as the reference seeds it (the global numpy seed set to the sampler's iteration
  count, epoch + 1), the whole run must agree exactly: well-learned sets, the samples trained on, the
  loss weights in every pruning epoch. The only allowed disagreement is the annealing epochs' weights
  of the fractional-threshold run (the reference's reset never fires; the harness resets, by design);
- with the method's own generator (as it runs in a cell), the draw differs, so each epoch is fed the
  reference's scores and must agree on what does not depend on the draw: the pool (the well-learned
  set), every sample outside it kept, how many of the pool are kept, the 1/keep weight of those,
  and which epochs prune.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmark.sweeps.cells import SweepError, parse_sweep
from benchmark.api.hooks import TrainState
from benchmark.api.task import Split, Splits
from helpers_tiny import fit, one_cpu_thread, tiny_task  # noqa: F401
from methods.data.infobatch import InfoBatch, is_pruning_epoch, keep_ratio

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "infobatch_reference.json").read_text())
CONFIGS = FIXTURE["configs"]
IDS = [f"E{c['epochs']}-r{c['prune_ratio']}-d{c['delta']}" for c in CONFIGS]


class ReferenceSeeded(InfoBatch):
    """The harness's InfoBatch with the reference's seeding of the draw (numpy's seed = epoch + 1)."""

    def epoch_rng(self, epoch: int) -> np.random.RandomState:
        return np.random.RandomState(epoch + 1)


def state_for(n: int, epochs: int) -> TrainState:
    split = Split(torch.zeros(n, 1), torch.zeros(n, dtype=torch.long))
    return TrainState(model=None, optimizer=None, task=None, splits=Splits(split, split, split),
                      device=torch.device("cpu"), epochs=epochs, total_steps=epochs, steps_per_full_epoch=1)


def run_epoch(method: InfoBatch, state: TrainState, losses: np.ndarray, batch: int = 8):
    """One epoch by hand: the indices the method chose and ``{index: weight}`` it returned."""
    chosen = method.on_epoch_start(state)
    indices = torch.arange(state.n_train) if chosen is None else chosen
    weights = {}
    for start in range(0, len(indices), batch):
        idx = indices[start:start + batch]
        w = method.on_batch_loss(state, idx, None, torch.from_numpy(losses[idx.numpy()]), None, None)
        weights.update({int(i): 1.0 if w is None else float(v) for i, v in zip(idx, w if w is not None else idx)})
    return indices, weights


def test_fixture_names_the_reference_and_how_it_was_run():
    ref = FIXTURE["reference"]
    assert ref["repository"] == "NUS-HPC-AI-Lab/InfoBatch" and ref["commit"].startswith("8bbb012")
    assert "scripts/infobatch_reference_fixture.py" in FIXTURE["how"]
    assert [c["epochs"] for c in CONFIGS] == [10, 8]


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_reference_seeded_run_agrees_with_the_reference_exactly(config):
    epochs, n = config["epochs"], FIXTURE["n_samples"]
    trace = np.array(config["loss_trace"], dtype=np.float32)
    method = ReferenceSeeded(config["prune_ratio"], seed=0, delta=config["delta"])
    state = state_for(n, epochs)
    method.on_run_start(state)
    stale = 0
    for record in config["epochs_run"]:
        state.epoch = record["epoch"]
        assert record["numpy_seed"] == state.epoch + 1
        assert method.scores.tolist() == record["scores_at_start"]  # float32 values, compared exactly
        pool = torch.nonzero(method.scores < method.scores.mean()).flatten().tolist()
        assert pool == record["well_learned"]
        indices, weights = run_epoch(method, state, trace[state.epoch])
        assert sorted(indices.tolist()) == sorted(record["yielded"])
        reference_weights = dict(zip(record["yielded"], record["weights"]))
        if is_pruning_epoch(state.epoch, epochs, config["delta"]):
            assert weights == reference_weights
        else:  # annealing: the harness trains with weight 1; the reference may carry stale weights
            assert set(weights.values()) == {1.0}
            stale += sum(w != 1.0 for w in reference_weights.values())
    if (epochs * config["delta"]) % 1:  # 8.75: the reference's reset never fires
        assert stale > 0
    else:  # 6.0: it fires, and both train the annealing epochs with weight 1
        assert stale == 0


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_own_generator_agrees_on_pool_counts_weights_and_schedule(config):
    epochs, n, ratio = config["epochs"], FIXTURE["n_samples"], config["prune_ratio"]
    method = InfoBatch(ratio, seed=3, delta=config["delta"])
    state = state_for(n, epochs)
    method.on_run_start(state)
    differing_draws = 0
    for record in config["epochs_run"]:
        state.epoch = record["epoch"]
        method.scores = torch.tensor(record["scores_at_start"], dtype=torch.float32)  # the reference's history
        pool = set(record["well_learned"])
        reference = set(record["yielded"])
        chosen = method.on_epoch_start(state)
        if not is_pruning_epoch(state.epoch, epochs, config["delta"]):
            assert chosen is None and reference == set(range(n)) and method.weights is None
            continue
        chosen = set(chosen.tolist())
        assert len(chosen) == len(reference)
        assert chosen - pool == reference - pool == set(range(n)) - pool
        assert len(chosen & pool) == len(reference & pool) == int(keep_ratio(ratio) * len(pool))
        factor = float(torch.tensor(1 / keep_ratio(ratio), dtype=torch.float32))
        reference_weights = dict(zip(record["yielded"], record["weights"]))
        assert {reference_weights[i] for i in reference & pool} <= {factor}
        assert {float(method.weights[i]) for i in chosen & pool} <= {factor}
        assert {float(method.weights[i]) for i in chosen - pool} == {1.0}
        differing_draws += chosen != reference
    assert differing_draws > 0  # the draws are the method's own, not the reference's


def test_first_pruning_free_epoch_is_the_references():
    for config in CONFIGS:
        full = [r["epoch"] for r in config["epochs_run"]
                if r["epoch"] > 0 and len(r["yielded"]) == FIXTURE["n_samples"]]
        first = min(e for e in range(config["epochs"]) if not is_pruning_epoch(e, config["epochs"], config["delta"]))
        assert full[0] == first == int(config["epochs"] * config["delta"])


def test_epoch_zero_trains_everything_because_every_score_starts_equal():
    method = InfoBatch(0.5)
    state = state_for(20, 4)
    method.on_run_start(state)
    assert torch.equal(method.on_epoch_start(state), torch.arange(20))
    assert set(method.weights.tolist()) == {1.0}


def test_keep_ratio_is_clamped_as_the_reference_does():
    assert keep_ratio(0.95) == keep_ratio(0.9) == 0.1 and keep_ratio(0.0) == 1.0
    assert keep_ratio(0.3) == 1.0 - 0.3


def test_dataset_mode_skips_round_ratio_n_of_the_pool_when_it_can():
    n = 100
    method = InfoBatch(0.3, ratio_of="dataset")
    assert method.kept_of_pool(60, n) == (30, 0.5)  # skip 30 of 60: weight 2
    assert method.kept_of_pool(32, n) == (3, 3 / 32)  # 30 > 90% of 32: the 10% floor (int(3.2) = 3)
    assert method.kept_of_pool(0, n) == (0, 1.0)
    state = state_for(n, 4)
    method.on_run_start(state)
    method.scores = torch.cat([torch.full((60,), 0.5), torch.full((40,), 4.0)])  # pool: the first 60
    state.epoch = 1
    chosen = method.on_epoch_start(state)
    assert len(chosen) == n - 30 and set(range(60, 100)) <= set(chosen.tolist())
    assert {float(method.weights[i]) for i in chosen.tolist() if i < 60} == {2.0}


@pytest.mark.parametrize("options, expected", [
    ({"delta": 1.5}, "option delta must be in [0, 1]"),
    ({"delta": -0.1}, "option delta must be in [0, 1]"),
    ({"ratio_of": "pool"}, "option ratio_of must be one of ['well-learned', 'dataset']"),
])
def test_bad_options_are_refused_when_the_sweep_is_read(options, expected):
    with pytest.raises(SweepError) as error:
        parse_sweep({"name": "t", "profile": "smoke", "tasks": ["fashion-mnist"],
                     "methods": [{"name": "infobatch", "options": options}]}, check_data=False)
    assert "'infobatch'" in str(error.value) and expected in str(error.value)
    assert repr(next(iter(options.values()))) in str(error.value)


def test_through_fit_the_trainer_measures_what_infobatch_kept(one_cpu_thread):  # noqa: F811
    task = tiny_task(epochs=4)  # delta 0.875: epochs 0-2 prune (epoch + 1 <= 3.5), epoch 3 anneals
    method = InfoBatch(0.5)
    _, result = fit(task, hooks=[method])
    n = result.state.n_train
    sizes = result.active_sizes
    assert sizes[0] == n and sizes[3] == n and all(s < n for s in sizes[1:3])
    assert result.state.sample_passes == sum(sizes)
    summary = method.summary()
    assert summary["pruning_epochs"] == 3.0 and 0 < summary["well_learned_fraction_mean"] < 1


def epochs_that_skipped(method: InfoBatch, n: int, epochs: int) -> list[int]:
    """The epochs of a run by hand in which the method trained on fewer than all ``n`` samples
    (losses drawn afresh each epoch, so a pool below the mean exists from epoch 1 on)."""
    state = state_for(n, epochs)
    method.on_run_start(state)
    losses = np.random.default_rng(0)
    skipped = []
    for epoch in range(epochs):
        state.epoch = epoch
        indices, _ = run_epoch(method, state, losses.random(n).astype(np.float32))
        if len(indices) < n:
            skipped.append(epoch)
    return skipped


@pytest.mark.parametrize("epochs", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("delta", [0.0, 0.3, 0.5, 0.875, 1.0])
def test_the_recipe_warning_is_given_exactly_when_a_run_skips_nothing(epochs, delta):
    warning = InfoBatch.recipe_warning(InfoBatch.settings({"delta": delta}), epochs)
    skipped = epochs_that_skipped(InfoBatch(0.5, delta=delta), 40, epochs)
    assert (warning is not None) == (skipped == []), (warning, skipped)
    if warning:
        assert f"delta {delta:g}" in warning and "prunes nothing" in warning


@pytest.mark.parametrize("delta, epochs, fix", [
    (0.875, 2, "give the task at least 3 epochs (task option epochs) or set delta to at least 1"),
    (0.5, 3, "give the task at least 4 epochs (task option epochs) or set delta to at least 0.666667"),
    (1.0, 1, "give the task at least 2 epochs (task option epochs)"),
    (0.0, 4, "set delta to at least 0.5"),
])
def test_the_recipe_warning_names_a_fix_that_prunes(delta, epochs, fix):
    warning = InfoBatch.recipe_warning({"delta": delta}, epochs)
    assert warning.endswith(fix)
    fewer_epochs = [int(part.split()[0]) for part in fix.split("at least ")[1:2] if "epochs" in part]
    for more in fewer_epochs:  # the named epochs prune, one fewer does not
        assert epochs_that_skipped(InfoBatch(0.5, delta=delta), 40, more) != []
        assert epochs_that_skipped(InfoBatch(0.5, delta=delta), 40, more - 1) == []
    if "set delta" in fix:  # the named delta prunes at these epochs
        named = float(fix.rsplit("at least ", 1)[1])
        assert epochs_that_skipped(InfoBatch(0.5, delta=min(1.0, named + 1e-6)), 40, epochs) != []


def test_a_sweep_whose_recipe_lets_infobatch_prune_nothing_is_valid_and_warned():
    sweep = parse_sweep({"name": "t", "profile": "cpu", "tasks": ["fashion-mnist", "rt-polarity"],
                         "seeds": [0], "ratios": [0.5], "methods": ["infobatch", "random"]}, check_data=False)
    # fashion-mnist's cpu recipe has 6 epochs; rt-polarity's has 2, where delta 0.875 leaves only epoch 0
    assert sweep.warnings == (
        "method 'infobatch' on task 'rt-polarity' (cpu profile, 2 epoch(s)) prunes nothing with delta 0.875: only "
        "epochs e with e + 1 <= delta x epochs may prune, and epoch 0's well-learned pool is empty (every score "
        "starts at 3), so every epoch trains on all the data; give the task at least 3 epochs (task option epochs) "
        "or set delta to at least 1",)
    assert len(sweep.cells()) == 2 * (1 + 2)  # the cell still runs: what it measured is a finding
