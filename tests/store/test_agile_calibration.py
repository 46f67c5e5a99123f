"""Calibration, ECE and reliability curves, thresholds for a target precision / recall with bootstrap
intervals, the per-class report (against scikit-learn), and active-learning batches."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from sklearn.calibration import calibration_curve
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

from avexlab.agile.active import informativeness, next_batch
from avexlab.agile.calibration import (
    Calibrator,
    classification_report,
    expected_calibration_error,
    reliability_curve,
    threshold_for_precision,
    threshold_for_recall,
)
from avexlab.agile.store import EmbeddingStore, StoreError


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _miscalibrated(n: int, seed: int, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from sigmoid(z); the model reports a * z + b."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 2, n)
    y = (rng.random(n) < _sigmoid(z)).astype(np.int64)
    return (a * z + b)[:, None], y[:, None]


def test_ece_by_hand_and_reliability_curve_equals_sklearn() -> None:
    p = np.array([0.1, 0.1, 0.9, 0.9])
    y = np.array([0, 1, 1, 1])
    assert expected_calibration_error(p, y) == pytest.approx(0.5 * 0.4 + 0.5 * 0.1)
    assert expected_calibration_error(np.array([1.0, 0.05, 0.5]), np.array([1, -1, 1])) == pytest.approx(0.25)
    rng = np.random.default_rng(0)
    p = rng.random(500)
    y = (rng.random(500) < p**2).astype(np.int64)
    curve = reliability_curve(p, y, n_bins=10)
    acc, conf = calibration_curve(y, p, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(curve["accuracy"].to_numpy(), acc, rtol=0, atol=1e-12)
    np.testing.assert_allclose(curve["confidence"].to_numpy(), conf, rtol=0, atol=1e-12)
    ece = float((curve["n"] / 500 * (curve["accuracy"] - curve["confidence"]).abs()).sum())
    assert expected_calibration_error(p, y) == pytest.approx(ece, abs=1e-12)


def test_temperature_and_platt_undo_a_known_miscalibration() -> None:
    z, y = _miscalibrated(20000, 0, 3.0, 0.0)  # three times overconfident
    temp = Calibrator.fit(z, y, "temperature")
    assert 1 / temp.params[0, 0] == pytest.approx(3.0, rel=0.06)
    before = expected_calibration_error(_sigmoid(z), y)
    after = expected_calibration_error(_sigmoid(temp.apply(z)), y)
    assert after < 0.02 < before, (before, after)
    z, y = _miscalibrated(20000, 1, 2.0, -1.0)
    platt = Calibrator.fit(z, y, "platt")
    ref = LogisticRegression(C=1e9, tol=1e-10, max_iter=1000).fit(z, y[:, 0])
    np.testing.assert_allclose(platt.params[0], [ref.coef_[0, 0], ref.intercept_[0]], rtol=0, atol=2e-4)
    assert platt.params[0] == pytest.approx([0.5, 0.5], abs=0.05)
    # an output without both kinds of label is left alone (and said so)
    both = np.concatenate([z[:50], z[:50]], axis=1)
    Y = np.concatenate([y[:50], np.ones((50, 1), dtype=np.int64)], axis=1)
    cal = Calibrator.fit(both, Y, "temperature")
    assert cal.skipped == [1] and cal.params[1].tolist() == [1.0, 0.0]
    assert Calibrator.from_dict(cal.to_dict()).apply(both).tobytes() == cal.apply(both).tobytes()


def _brute_threshold(s: np.ndarray, y: np.ndarray, target: float, kind: str) -> float | None:
    best = None
    for t in sorted(set(s.tolist())):
        det = s >= t
        prec = y[det].mean()
        rec = y[det].sum() / y.sum()
        if kind == "precision" and prec >= target and best is None:
            best = t
        if kind == "recall" and rec >= target:
            best = t
    return best


@pytest.mark.parametrize("seed", range(5))
def test_thresholds_equal_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    s = np.round(rng.random(80), 2)  # ties
    y = (rng.random(80) < s).astype(np.int64)
    for target in (0.6, 0.8, 0.95):
        got = threshold_for_precision(s, y, target, n_resamples=50, seed=seed)
        expect = _brute_threshold(s, y, target, "precision")
        if expect is None:
            assert not got["reachable"] and got["threshold"] == float("inf") and got["recall"] == 0.0
        else:
            assert got["reachable"] and got["threshold"] == expect
            assert got["precision"] == y[s >= expect].mean() >= target
        rec = threshold_for_recall(s, y, target, n_resamples=50, seed=seed)
        assert rec["threshold"] == _brute_threshold(s, y, target, "recall")
        assert rec["recall"] >= target


def test_bootstrap_intervals_are_seeded_and_bracket_the_estimate() -> None:
    z, y = _miscalibrated(400, 2, 1.0, 0.0)
    p = _sigmoid(z[:, 0])
    a = threshold_for_precision(p, y[:, 0], 0.8, n_resamples=300, seed=0)
    b = threshold_for_precision(p, y[:, 0], 0.8, n_resamples=300, seed=0)
    c = threshold_for_precision(p, y[:, 0], 0.8, n_resamples=300, seed=1)
    assert a == b and a != c
    assert a["threshold_lo"] <= a["threshold"] <= a["threshold_hi"]
    assert a["precision_lo"] <= a["precision"] <= a["precision_hi"]
    assert a["threshold_hi"] - a["threshold_lo"] > 0 and 0.9 <= a["reachable_fraction"] <= 1.0
    # more labelled windows, a narrower interval
    z2, y2 = _miscalibrated(4000, 2, 1.0, 0.0)
    d = threshold_for_precision(_sigmoid(z2[:, 0]), y2[:, 0], 0.8, n_resamples=300, seed=0)
    assert d["threshold_hi"] - d["threshold_lo"] < a["threshold_hi"] - a["threshold_lo"]
    with pytest.raises(StoreError, match="target precision"):
        threshold_for_precision(p, y[:, 0], 1.5)


def test_report_equals_sklearn_on_the_labelled_entries() -> None:
    rng = np.random.default_rng(3)
    S = rng.random((200, 3))
    Y = (rng.random((200, 3)) < S).astype(np.int64)
    Y[rng.random((200, 3)) < 0.3] = -1  # not labelled
    Y[:, 2] = np.where(Y[:, 2] >= 0, 0, -1)  # a class without positives
    thr = {"a": 0.4, "b": 0.7}
    rep = classification_report(Y, S, ["a", "b", "c"], thr)
    assert rep["class"].to_list() == ["a", "b", "c", "macro avg"]
    for j, name in enumerate(["a", "b"]):
        keep = Y[:, j] >= 0
        y, s = Y[keep, j], S[keep, j]
        p, r, f, _ = precision_recall_fscore_support(y, s >= thr[name], average="binary")
        row = rep.row(j, named=True)
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((p, r, f), abs=1e-12)
        assert row["ap"] == pytest.approx(average_precision_score(y, s), abs=1e-12)
        assert row["roc_auc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
        assert row["support"] == y.sum() and row["negatives"] == (1 - y).sum()
    c = rep.row(2, named=True)
    assert c["support"] == 0 and c["precision"] is None and c["ap"] is None and c["threshold"] == 0.5
    macro = rep.row(3, named=True)
    assert macro["f1"] == pytest.approx(rep["f1"][:2].mean(), abs=1e-12)


# ----------------------------------------------------------------------------------------- active
def test_margin_and_uncertainty_by_their_definitions() -> None:
    P = np.array([[0.9, 0.1, 0.1], [0.5, 0.45, 0.1], [0.3, 0.3, 0.3], [0.05, 0.02, 0.95]])
    q = P / P.sum(1, keepdims=True)
    top = -np.sort(-q, 1)
    np.testing.assert_allclose(informativeness(P, "margin"), -(top[:, 0] - top[:, 1]))
    np.testing.assert_allclose(informativeness(P, "uncertainty"), -(q * np.log(q)).sum(1))
    assert np.argmax(informativeness(P, "margin")) == 2 and np.argmax(informativeness(P, "uncertainty")) == 2
    one = informativeness(P, "margin", columns=[0], thresholds=np.array([0.45]))
    np.testing.assert_allclose(one, -np.abs(P[:, 0] - 0.45))


def test_next_batch_skips_labelled_spreads_and_is_seeded(built_store: EmbeddingStore) -> None:
    n = len(built_store)
    rng = np.random.default_rng(0)
    P = rng.random((n, 3)).astype(np.float32)
    labelled = built_store.windows["window_id"][:10].to_list()
    batch = next_batch(built_store, P, 8, strategy="margin", labelled=labelled, spread=False)
    pri = informativeness(P, "margin")
    pri[:10] = -np.inf
    assert batch["row"].to_list() == np.argsort(-pri, kind="stable")[:8].tolist()
    assert (np.diff(batch["priority"].to_numpy()) <= 0).all()
    spread = next_batch(built_store, P, 8, strategy="uncertainty", labelled=labelled)
    w = spread.sort(["path", "start_s"])
    same = w["path"][1:].to_numpy() == w["path"][:-1].to_numpy()
    assert not (same & (w["start_s"][1:].to_numpy() < w["end_s"][:-1].to_numpy())).any()  # no two overlap
    assert not set(spread["row"].to_list()) & set(range(10))
    r1 = next_batch(built_store, None, 8, strategy="random", seed=1)
    assert r1.equals(next_batch(built_store, None, 8, strategy="random", seed=1))
    assert not r1.equals(next_batch(built_store, None, 8, strategy="random", seed=2))
    only = next_batch(built_store, P, 5, strategy="margin", candidates=np.arange(20, 40), spread=False)
    assert set(only["row"].to_list()) <= set(range(20, 40))
    with pytest.raises(StoreError, match="Score the store"):
        next_batch(built_store, None, 5, strategy="margin")
    assert pl.Series(batch["strategy"]).unique().to_list() == ["margin"]
