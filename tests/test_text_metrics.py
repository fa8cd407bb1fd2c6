"""The numpy GLUE metrics agree with scikit-learn and scipy on random predictions (ties,
several classes), accept lists and tensors, and give the documented values where a metric
is undefined."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from tasks.text import text_metrics as tm
from tasks.text.glue_formats import GLUE_FORMATS

SEEDS = range(6)


def noisy_labels(seed: int, classes: int, n: int = 200) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions that agree more often than chance, so the scores are not ~0."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    pred = np.where(rng.random(n) < 0.6, y, rng.integers(0, classes, n))
    return pred, y


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("classes", [2, 3, 5])
def test_accuracy_and_matthews_match_sklearn(seed, classes):
    pred, y = noisy_labels(seed, classes)
    assert tm.accuracy(pred, y) == pytest.approx(accuracy_score(y, pred), abs=1e-9)
    assert tm.matthews(pred, y) == pytest.approx(matthews_corrcoef(y, pred), abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_matthews_with_arbitrary_class_values(seed):
    pred, y = noisy_labels(seed, 4)
    values = np.array([-3, 7, 10, 42])  # ids need not be 0..k-1; a class may appear on one side only
    pred, y = values[pred], values[np.minimum(y, 2)]
    assert tm.matthews(pred, y) == pytest.approx(matthews_corrcoef(y, pred), abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_f1_matches_sklearn(seed):
    pred, y = noisy_labels(seed, 2)
    assert tm.f1_binary(pred, y) == pytest.approx(f1_score(y, pred), abs=1e-9)
    rare = (np.random.default_rng(seed).random(len(y)) < 0.05).astype(int)  # few positives
    assert tm.f1_binary(rare, y) == pytest.approx(f1_score(y, rare), abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_correlations_match_scipy(seed):
    rng = np.random.default_rng(seed)
    y = rng.uniform(0, 5, 150)
    pred = y + rng.normal(0, 1.5, 150)
    assert tm.pearson(pred, y) == pytest.approx(pearsonr(pred, y)[0], abs=1e-9)
    assert tm.spearman(pred, y) == pytest.approx(spearmanr(pred, y)[0], abs=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
def test_spearman_averages_tied_ranks(seed):
    rng = np.random.default_rng(seed)
    y = np.round(rng.uniform(0, 5, 120) * 5) / 5  # STS-B-like scores on a 0.2 grid: many ties
    pred = np.round(y + rng.normal(0, 1, 120))  # integers: many ties too
    assert tm.spearman(pred, y) == pytest.approx(spearmanr(pred, y)[0], abs=1e-9)
    assert tm.pearson(pred, y) == pytest.approx(pearsonr(pred, y)[0], abs=1e-9)


def test_average_ranks():
    assert tm.average_ranks(np.array([3.0, 1.0, 3.0, 2.0, 3.0])).tolist() == [4.0, 1.0, 4.0, 2.0, 4.0]
    assert tm.average_ranks(np.array([5, 5])).tolist() == [1.5, 1.5]


def test_inputs_may_be_lists_or_tensors():
    pred, y = noisy_labels(0, 2)
    expected = tm.compute(("accuracy", "f1", "matthews"), pred, y)
    assert tm.compute(("accuracy", "f1", "matthews"), pred.tolist(), y.tolist()) == expected
    assert tm.compute(("accuracy", "f1", "matthews"), torch.from_numpy(pred), torch.from_numpy(y)) == expected
    scores = torch.linspace(0, 5, 20, dtype=torch.bfloat16)
    assert tm.pearson(scores, scores.float().tolist()) == pytest.approx(1.0)
    assert tm.spearman(scores.flip(0), list(range(20))) == pytest.approx(-1.0)


def test_degenerate_cases():
    assert tm.f1_binary([0, 0, 0], [0, 0, 0]) == 0.0  # no predicted and no true positives
    assert tm.f1_binary([1, 1], [0, 0]) == 0.0 == f1_score([0, 0], [1, 1], zero_division=0)
    assert tm.f1_binary([1, 0], [1, 0]) == 1.0
    assert tm.matthews([1, 1, 1], [0, 1, 0]) == 0.0 == matthews_corrcoef([0, 1, 0], [1, 1, 1])  # constant prediction
    assert tm.matthews([0, 1, 2], [0, 0, 0]) == 0.0
    assert tm.matthews([2, 0, 1], [2, 0, 1]) == 1.0 and tm.matthews([1, 0], [0, 1]) == -1.0
    assert tm.matthews([4], [4]) == 0.0
    assert tm.pearson([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]) == 0.0  # scipy: NaN; documented as 0.0
    assert tm.spearman([1.0, 2.0, 3.0], [0.5, 0.5, 0.5]) == 0.0
    assert tm.pearson([1.0], [3.0]) == 0.0
    assert tm.pearson([1, 2, 3], [10, 20, 30]) == pytest.approx(1.0)
    assert tm.spearman([1, 2, 3], [30, 1, 0]) == pytest.approx(-1.0)
    assert tm.accuracy([1, 2, 3], [1, 2, 0]) == pytest.approx(2 / 3)


def test_large_inputs_do_not_overflow():
    pred, y = noisy_labels(1, 3, n=3_000_000)
    assert tm.matthews(pred, y) == pytest.approx(matthews_corrcoef(y, pred), abs=1e-9)


def test_bad_inputs():
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        tm.accuracy([1, 0, 1], [1, 0])
    with pytest.raises(ValueError, match="no predictions"):
        tm.matthews([], [])
    with pytest.raises(ValueError, match="1-D"):
        tm.accuracy([[1, 0]], [[1, 0]])
    with pytest.raises(ValueError, match="0/1"):
        tm.f1_binary([0, 2], [0, 1])
    with pytest.raises(ValueError, match="finite"):
        tm.pearson([1.0, float("nan")], [1.0, 2.0])
    with pytest.raises(ValueError, match="unknown metric"):
        tm.compute(("accuracy", "bleu"), [1], [1])


@pytest.mark.parametrize("task", sorted(GLUE_FORMATS))
def test_compute_gives_every_metric_of_a_task(task):
    fmt = GLUE_FORMATS[task]
    if fmt.is_regression:
        rng = np.random.default_rng(0)
        y = rng.uniform(0, 5, 50)
        pred = y + rng.normal(0, 1, 50)
        expected = {"pearson": pearsonr(pred, y)[0], "spearman": spearmanr(pred, y)[0]}
    else:
        pred, y = noisy_labels(0, fmt.num_labels)
        expected = {"accuracy": accuracy_score(y, pred), "matthews": matthews_corrcoef(y, pred)}
        if fmt.num_labels == 2:
            expected["f1"] = f1_score(y, pred)
    result = tm.compute(fmt.metrics, pred, y)
    assert list(result) == list(fmt.metrics) and fmt.headline in result
    assert all(type(v) is float for v in result.values())
    for name, value in result.items():
        assert value == pytest.approx(expected[name], abs=1e-9)
