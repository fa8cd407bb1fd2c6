"""The static data-pruning baselines against their reference code: one fixed logged training run
(tests/fixtures/dynamics_reference_input.json) was fed to the reference repositories' own
functions by scripts/reference_fixtures.py; their figures are in tests/fixtures/<method>_reference.json.
Here the same run goes through the harness's recorder hook and methods, and scores are compared
to float tolerance, selections exactly or up to the documented tie and count rules."""
from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from benchmark.training.dynamics import DynamicsRecorder
from methods.data.aum import AUM
from methods.data.ccs import CCS, budgets, ccs_score, strata
from methods.data.dyn_unc import DynUnc
from methods.data.forgetting import Forgetting
from methods.data.moderate import Moderate
from methods.data.tdds import TDDS
from methods.data.uncertainty import Uncertainty

FIXTURES = Path(__file__).parent / "fixtures"


def reference(method: str, repository: str | None = None) -> dict:
    """The figures one reference repository produced for ``method``."""
    data = json.loads((FIXTURES / f"{method}_reference.json").read_text())
    for source in data["sources"]:
        assert len(source["commit"]) == 40  # every figure names the commit it came from
        if repository is None or source["repository"] == repository:
            return source["figures"]
    raise KeyError(repository)


CCS_REPO, DEEPCORE = "haizhongzheng/Coverage-centric-coreset-selection", "PatrickZH/DeepCore"


@pytest.fixture(scope="module")
def record() -> dict:
    """The fixed run driven through the harness's recorder hook, batch by batch as visited."""
    run = json.loads((FIXTURES / "dynamics_reference_input.json").read_text())
    n, epochs, batch = run["n"], run["epochs"], run["batch_size"]
    targets = torch.tensor(run["targets"])
    recorder = DynamicsRecorder(n, run["classes"], epochs)
    state = SimpleNamespace(device=torch.device("cpu"), epoch=0)
    recorder.on_run_start(state)
    for t in range(epochs):
        state.epoch = t
        order = torch.tensor(run["orders"][t])
        logits = torch.tensor(run["visited_logits"][t])
        for first in range(0, n, batch):
            idx = order[first: first + batch]
            recorder.on_batch_loss(state, idx, logits[first: first + batch], None, targets[idx], None)
    recorder.on_run_end(state)
    out = recorder.record()
    out.update(targets=targets, final_logits=torch.tensor(run["final_logits"]),
               final_features=torch.tensor(run["features"]))
    return out


def prepared(method, record):
    method.scores = method.score(record).float()
    method.subset = method.choose(method.scores, record)
    return method


def assert_same_up_to_ties(ours, theirs, scores, labels=None):
    """Same count; every disagreement is a sample whose score equals the boundary score of its
    group (the references sort unstably, the harness by lower index)."""
    ours, theirs = set(map(int, ours)), set(map(int, theirs))
    assert len(ours) == len(theirs)
    groups = [None] if labels is None else sorted(set(labels.tolist()))
    for group in groups:
        members = set(range(len(scores))) if group is None else {i for i in range(len(scores)) if labels[i] == group}
        a, b = ours & members, theirs & members
        assert len(a) == len(b)
        kept_scores = {float(scores[i]) for i in a}
        boundary = {float(scores[i]) for i in a ^ b}
        assert len(boundary) <= 1, f"disagreement beyond one tied boundary value: {sorted(a ^ b)}"
        if boundary:  # the tied value is the lowest (or highest) kept one: a tie at the cut
            assert boundary <= kept_scores | {float(scores[i]) for i in b}


# --- forgetting ----------------------------------------------------------------------------------


@pytest.mark.parametrize("repository", (CCS_REPO, DEEPCORE))
def test_forgetting_counts_equal_the_reference_code(record, repository):
    method = prepared(Forgetting(0.3), record)
    np.testing.assert_array_equal(method.scores.numpy(), np.array(reference("forgetting", repository)["forgetting"]))


def test_forgetting_selection_matches_ccs_and_deepcore_up_to_ties(record):
    method = prepared(Forgetting(0.3), record)  # keep 28 = int(0.7 * 40) = 40 - round(0.3 * 40)
    scores = method.scores
    assert_same_up_to_ties(method.subset, reference("forgetting", CCS_REPO)["forgetting_keep_0.7"], scores)
    deepcore = reference("forgetting", DEEPCORE)
    assert_same_up_to_ties(method.subset, deepcore["forgetting_keep_0.7_balance_False"], scores)
    balanced = prepared(Forgetting(0.3, class_balanced=True), record)
    assert_same_up_to_ties(balanced.subset, deepcore["forgetting_keep_0.7_balance_True"], scores, record["targets"])
    # the fixture really has ties at the boundary: the two references disagree with each other there
    assert set(deepcore["forgetting_keep_0.7_balance_False"]) != set(reference("forgetting", CCS_REPO)["forgetting_keep_0.7"])


def test_forgetting_paper_rule_ranks_never_learned_first(record):
    never = ~record["correct"].any(dim=0)
    assert never.any()  # the fixture has never-learned samples
    zero = prepared(Forgetting(0.3), record)
    most = prepared(Forgetting(0.3, never_learned="most"), record)
    assert (zero.scores[never] == 0).all()
    assert (most.scores[never] == record["correct"].shape[0]).all()
    assert set(torch.nonzero(never).flatten().tolist()) <= set(most.subset.tolist())


# --- AUM -----------------------------------------------------------------------------------------


def test_aum_equals_ccs_accumulated_margin_and_keeps_its_lowest(record):
    figures = reference("aum", CCS_REPO)
    method = prepared(AUM(0.3), record)
    np.testing.assert_allclose(method.scores.numpy(), figures["accumulated_margin"], rtol=1e-5, atol=1e-5)
    assert_same_up_to_ties(method.subset, figures["aum_keep_0.7"], method.scores)


def test_aum_logit_margin_is_the_papers_mean_logit_margin(record):
    """The paper's rule against an independent computation from the input logits."""
    run = json.loads((FIXTURES / "dynamics_reference_input.json").read_text())
    y = np.array(run["targets"])
    total = np.zeros(run["n"])
    for order, z in zip(run["orders"], run["visited_logits"]):
        z = np.array(z, dtype=np.float64)
        for row, i in enumerate(order):
            others = np.delete(z[row], y[i])
            total[i] += z[row, y[i]] - others.max()
    method = prepared(AUM(0.3, margin="logit"), record)
    np.testing.assert_allclose(method.scores.numpy(), total / run["epochs"], rtol=1e-5, atol=1e-5)


# --- uncertainty ---------------------------------------------------------------------------------


@pytest.mark.parametrize("score,theirs", (("least_confidence", "LeastConfidence"), ("entropy", "Entropy"),
                                          ("margin", "Margin")))
def test_uncertainty_equals_deepcore(record, score, theirs):
    figures = reference("uncertainty", DEEPCORE)
    unbalanced = prepared(Uncertainty(0.3, score=score, class_balanced=False), record)
    np.testing.assert_allclose(unbalanced.scores.numpy(), figures[f"uncertainty_{theirs}_scores"], rtol=1e-5,
                               atol=1e-6)
    # DeepCore keeps the highest without class balance and the lowest per class with it
    assert_same_up_to_ties(unbalanced.subset, figures[f"uncertainty_{theirs}_keep_0.7_balance_False"],
                           unbalanced.scores)
    balanced = prepared(Uncertainty(0.3, score=score), record)
    assert_same_up_to_ties(balanced.subset, figures[f"uncertainty_{theirs}_keep_0.7_balance_True"],
                           balanced.scores, record["targets"])
    uncertain = prepared(Uncertainty(0.3, score=score, class_balanced=False, keep="uncertain"), record)
    kept = uncertain.scores[uncertain.subset]
    dropped = uncertain.scores[~torch.isin(torch.arange(40), uncertain.subset)]
    assert kept.max() <= dropped.min()


# --- Dyn-Unc -------------------------------------------------------------------------------------


@pytest.mark.parametrize("window", (10, 5))
def test_dyn_unc_equals_dual(record, window):
    figures = reference("dyn_unc", "behaapyy/dual-pruning")
    method = prepared(DynUnc(0.3, window=window), record)
    np.testing.assert_allclose(method.scores.numpy(), figures[f"dynunc_W{window}_scores"], rtol=1e-5, atol=1e-6)
    assert_same_up_to_ties(method.subset, figures[f"dynunc_W{window}_keep_0.7"], method.scores)


# --- TDDS ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("length,window", ((10, 10), (10, 5), (12, 4)))
def test_tdds_equals_the_reference(record, length, window):
    figures = reference("tdds", "zhangxin-xd/Dataset-Pruning-TDDS")
    method = prepared(TDDS(0.3, trajectory_len=length, window=window), record)
    theirs = np.array(figures[f"tdds_T{length}_W{window}_scores"])
    np.testing.assert_allclose(method.scores.numpy(), theirs, rtol=1e-4, atol=1e-6 * theirs.max())
    assert_same_up_to_ties(method.subset, figures[f"tdds_T{length}_W{window}_prune_0.3"], method.scores)
    np.testing.assert_allclose(method.weights.numpy(), figures[f"tdds_T{length}_W{window}_weights"], atol=1e-4)


def test_tdds_reweighting_scales_each_batch_by_its_mean_weight(record):
    method = prepared(TDDS(0.3, reweight=True), record)
    idx = torch.tensor([3, 9, 17])
    w = method.on_batch_loss(None, idx, None, torch.ones(3), None, None)
    assert torch.allclose(w, method.weights[idx].mean().expand(3))
    assert prepared(TDDS(0.3), record).on_batch_loss(None, idx, None, torch.ones(3), None, None) is None


# --- CCS -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("score,key", (("aum", "accumulated_margin"), ("el2n", "el2n"), ("forgetting", "forgetting")))
def test_ccs_cut_strata_and_budgets_equal_the_reference(record, score, key):
    figures = reference("ccs", CCS_REPO)
    np.testing.assert_allclose(ccs_score(record, score).numpy(), figures[key], rtol=1e-5, atol=1e-5)
    method = prepared(CCS(0.5, score=score, cut=0.1), record)  # keep 20, cut 4, as the fixture
    aum = method.aum
    pool = torch.argsort(aum.double(), stable=True)
    assert sorted(pool[:4].tolist()) == figures[f"ccs_{key}_cut"]
    rest = pool[4:]
    member = strata(method.scores[rest], 50)
    sizes = [int((member == b).sum()) for b in range(50)]
    assert sizes == figures[f"ccs_{key}_strata_sizes"]
    # with the reference's random draw replaced by "the first members" and its own (unstable)
    # order of equal-size strata, the selection is exact
    theirs_order = torch.argsort(torch.tensor(sizes)).tolist()
    first = torch.cat([rest[member == b][:k] for b, k in enumerate(budgets(sizes, 20, theirs_order))])
    assert sorted(first.tolist()) == figures[f"ccs_{key}_identity_selection"]
    # the harness orders equal-size strata by stratum: the same budget per stratum size
    want = budgets(sizes, 20)
    for size in set(sizes):
        assert sorted(w for w, s in zip(want, sizes) if s == size) == sorted(
            w for w, s in zip(budgets(sizes, 20, theirs_order), sizes) if s == size)
    # the real (seeded random) selection takes exactly those budgets from each stratum
    assert len(method.subset) == 20 and not set(method.subset.tolist()) & set(pool[:4].tolist())
    position = {int(i): b for i, b in zip(rest, member)}
    taken = [sum(position[int(i)] == b for i in method.subset) for b in range(50)]
    assert taken == want


# --- Moderate ------------------------------------------------------------------------------------


@pytest.mark.parametrize("ratio,keep", ((0.3, 0.7), (0.5, 0.5), (0.75, 0.25)))
def test_moderate_equals_the_authors_code(record, ratio, keep):
    figures = reference("moderate", "tmllab/2023_ICLR_Moderate-DS")
    method = prepared(Moderate(ratio), record)
    np.testing.assert_allclose(method.scores.numpy(), figures["distances"], rtol=1e-5, atol=1e-6)
    assert method.subset.tolist() == figures[f"keep_{keep}"]


# --- GraNd ---------------------------------------------------------------------------------------


def test_grand_last_layer_norm_equals_deepcore_times_its_batch_size(record):
    from methods.data.forgetting import keep_top
    from methods.data.grand import last_layer_grad_norm

    figures = reference("grand", DEEPCORE)
    ours = last_layer_grad_norm(record["final_logits"], record["targets"], record["final_features"])
    # DeepCore differentiates the batch-mean loss: its scores are ours / batch size (8 for every batch here)
    np.testing.assert_allclose(ours.numpy() / figures["grand_scoring_batch"], figures["grand_scores"], rtol=1e-5,
                               atol=1e-7)  # theirs in float32: 1 - p cancels for confident samples
    kept = keep_top(ours, 40 - round(0.3 * 40), None)
    assert_same_up_to_ties(kept, figures["grand_keep_0.7"], ours)
