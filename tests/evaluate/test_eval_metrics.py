"""Metrics against scikit-learn (the independent reference) and hand-worked cases."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, balanced_accuracy_score, f1_score
from tolerance import assert_close_f32, f64_tol

from avexlab.errors import EvaluationError
from avexlab.evaluate.metrics import (
    accuracy,
    average_precision_per_class,
    balanced_accuracy,
    macro_f1,
    mean_average_precision,
    mean_average_precision_present,
)


def _ap_tol(ap: np.ndarray | float, n: int, classes: int = 1) -> np.ndarray:
    """float64 rounding bound on AP (or a mean of ``classes`` APs) over ``n`` clips: AP is a sum of at most
    ``n`` non-negative terms ``(R_k - R_{k-1}) P_k`` of about 4 roundings each (two divisions, a difference,
    a product), so relative to AP itself; the mean adds ``classes`` terms and a division."""
    return f64_tol(ap, ops=n + 4 + classes + 1).numpy()


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
    assert_close_f32(ours[present], ref[present], _ap_tol(ref[present], n), what="AP per class")
    assert np.isnan(ours[~present]).all()
    # The paper's mAP counts absent classes as 0, which is also what sklearn returns for them.
    got = mean_average_precision(scores, targets)
    assert_close_f32(got, ref.mean(), _ap_tol(ref.mean(), n, c), what="mAP")
    if present.any():
        got = mean_average_precision_present(scores, targets)
        assert_close_f32(got, ref[present].mean(), _ap_tol(ref[present].mean(), n, c), what="mAP present")


def test_map_hand_worked_and_the_two_variants_differ() -> None:
    # class 0: positives ranked 1st and 3rd -> AP = (1/1 + 2/3) / 2 = 5/6; class 1: no positive.
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]])
    targets = np.array([[1, 0], [0, 0], [1, 0]])
    assert_close_f32(average_precision_per_class(scores, targets)[0], 5 / 6, _ap_tol(5 / 6, 3), what="AP")
    assert_close_f32(mean_average_precision(scores, targets), 5 / 12, _ap_tol(5 / 12, 3, 2), what="mAP")
    assert_close_f32(
        mean_average_precision_present(scores, targets), 5 / 6, _ap_tol(5 / 6, 3, 2), what="mAP+"
    )


def test_map_all_tied_scores_equals_prevalence() -> None:
    scores = np.zeros((4, 1))
    targets = np.array([[1], [0], [0], [1]])
    assert_close_f32(mean_average_precision(scores, targets), 0.5, _ap_tol(0.5, 4), what="mAP of ties")


def test_map_accepts_class_indices() -> None:
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(20, 3))
    y = rng.integers(0, 3, 20)
    # indices become the same multi-hot matrix: the same computation
    assert mean_average_precision(scores, y) == mean_average_precision(scores, np.eye(3)[y])


@pytest.mark.parametrize("seed", range(20))
def test_label_metrics_match_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 50))
    t, p = rng.integers(0, 6, n), rng.integers(0, 6, n)
    assert accuracy(t, p) == np.mean(t == p)  # a count over n, one correctly rounded division on both sides
    # The mean over at most 6 classes (6 sums, a division) of a recall (1 rounding) or of an F1 (sklearn's
    # 2 p r / (p + r) from p and r: 6 roundings); every term is non-negative, so relative to the value.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = balanced_accuracy_score(t, p)
        assert_close_f32(balanced_accuracy(t, p), ref, f64_tol(ref, ops=7 + 1), what="balanced accuracy")
    ref = f1_score(t, p, average="macro", zero_division=0)
    assert_close_f32(macro_f1(t, p), ref, f64_tol(ref, ops=7 + 6), what="macro F1")


def test_errors_name_the_problem() -> None:
    with pytest.raises(EvaluationError, match="same length"):
        accuracy([0, 1], [0])
    with pytest.raises(EvaluationError, match="class indices"):
        mean_average_precision(np.zeros((2, 2)), np.array([0, 5]))
    with pytest.raises(EvaluationError, match="finite"):
        mean_average_precision(np.array([[np.nan]]), np.array([[1]]))
    with pytest.raises(EvaluationError, match="at least one positive"):
        mean_average_precision_present(np.zeros((2, 1)), np.zeros((2, 1)))
