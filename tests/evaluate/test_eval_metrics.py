"""Metrics against scikit-learn (the independent reference) and hand-worked cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, balanced_accuracy_score, f1_score

from avexlab.errors import EvaluationError
from avexlab.evaluate.metrics import (
    accuracy,
    average_precision_per_class,
    balanced_accuracy,
    macro_f1,
    mean_average_precision,
    mean_average_precision_present,
)


def _sk_ap(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn warns on columns without positives
        return np.array([average_precision_score(y[:, j], s[:, j]) for j in range(y.shape[1])])


@pytest.mark.parametrize("seed", range(30))
def test_average_precision_matches_sklearn_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, c = int(rng.integers(1, 60)), int(rng.integers(1, 7))
    scores = rng.integers(0, 4, size=(n, c)).astype(float)  # few distinct values: many ties
    targets = rng.random((n, c)) < 0.3
    ours = average_precision_per_class(scores, targets)
    ref = _sk_ap(targets, scores)
    present = targets.any(axis=0)
    np.testing.assert_allclose(ours[present], ref[present], atol=1e-12, rtol=0)
    assert np.isnan(ours[~present]).all()
    # The paper's mAP counts absent classes as 0, which is also what sklearn returns for them.
    assert mean_average_precision(scores, targets) == pytest.approx(ref.mean(), abs=1e-12)
    if present.any():
        assert mean_average_precision_present(scores, targets) == pytest.approx(
            ref[present].mean(), abs=1e-12
        )


def test_map_hand_worked_and_the_two_variants_differ() -> None:
    # class 0: positives ranked 1st and 3rd -> AP = (1/1 + 2/3) / 2 = 5/6; class 1: no positive.
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    targets = np.array([[1, 0], [0, 0], [1, 0]])
    assert average_precision_per_class(scores, targets)[0] == pytest.approx(5 / 6, abs=1e-15)
    assert mean_average_precision(scores, targets) == pytest.approx(5 / 12, abs=1e-15)
    assert mean_average_precision_present(scores, targets) == pytest.approx(5 / 6, abs=1e-15)


def test_map_all_tied_scores_equals_prevalence() -> None:
    scores = np.zeros((4, 1))
    targets = np.array([[1], [0], [0], [1]])
    assert mean_average_precision(scores, targets) == pytest.approx(0.5, abs=1e-15)


def test_map_accepts_class_indices() -> None:
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(20, 3))
    y = rng.integers(0, 3, 20)
    assert mean_average_precision(scores, y) == pytest.approx(mean_average_precision(scores, np.eye(3)[y]))


@pytest.mark.parametrize("seed", range(20))
def test_label_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 50))
    t, p = rng.integers(0, 6, n), rng.integers(0, 6, n)
    assert accuracy(t, p) == pytest.approx(np.mean(t == p), abs=1e-15)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert balanced_accuracy(t, p) == pytest.approx(balanced_accuracy_score(t, p), abs=1e-12)
    assert macro_f1(t, p) == pytest.approx(f1_score(t, p, average="macro", zero_division=0), abs=1e-12)


def test_errors_name_the_problem() -> None:
    with pytest.raises(EvaluationError, match="same length"):
        accuracy([0, 1], [0])
    with pytest.raises(EvaluationError, match="class indices"):
        mean_average_precision(np.zeros((2, 2)), np.array([0, 5]))
    with pytest.raises(EvaluationError, match="finite"):
        mean_average_precision(np.array([[np.nan]]), np.array([[1]]))
    with pytest.raises(EvaluationError, match="at least one positive"):
        mean_average_precision_present(np.zeros((2, 1)), np.zeros((2, 1)))
