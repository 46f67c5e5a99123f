"""Clustering scores against scikit-learn's KMeans and metrics run independently."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, v_measure_score
from tolerance import ari_tol, assert_close_f32, nmi_tol

from avexlab.errors import EvaluationError
from avexlab.evaluate.clustering import clustering_scores


def _blobs(seed: int, n: int = 90, k: int = 3, d: int = 5, spread: float = 1.0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    y = rng.integers(0, k, n)
    return centres[y] + rng.normal(scale=spread, size=(n, d)), y


@pytest.mark.parametrize("seed", range(4))
def test_matches_independent_sklearn_run(seed: int) -> None:
    x, y = _blobs(seed, spread=3.0)  # overlapping blobs: scores well below 1
    names = np.array(["owl", "frog", "wren"])[y]  # string labels
    ours = clustering_scores(x, names)
    pred = KMeans(n_clusters=3, n_init=10, random_state=42).fit_predict(x)
    assert ours["k"] == 3
    # The same KMeans (same seed, data and threads) and the same sklearn metrics on the same label codes
    # (names sorted, as clustering_scores encodes them): the identical computation, so equal bit for bit.
    codes = np.unique(names, return_inverse=True)[1]
    assert ours["nmi"] == normalized_mutual_info_score(codes, pred)
    assert ours["ari"] == adjusted_rand_score(codes, pred)
    assert ours["v_measure"] == v_measure_score(codes, pred)
    # The scores do not depend on how the classes are numbered (y numbers them in another order): equal up
    # to the float64 rounding of the contingency sums, which the renumbering reorders.
    assert_close_f32(ours["nmi"], normalized_mutual_info_score(y, pred), nmi_tol(y, ours["nmi"]), what="nmi")
    assert_close_f32(ours["v_measure"], v_measure_score(y, pred), nmi_tol(y, ours["v_measure"]), what="v")
    assert_close_f32(ours["ari"], adjusted_rand_score(y, pred), ari_tol(y, pred, ours["ari"]), what="ari")


def test_separated_blobs_score_one_and_seed_is_deterministic() -> None:
    x, y = _blobs(0, spread=0.05)
    res = clustering_scores(x, y)
    assert_close_f32(res["nmi"], 1.0, nmi_tol(y, 1.0), what="nmi of separated blobs")
    assert_close_f32(res["ari"], 1.0, ari_tol(y, y, 1.0), what="ari of separated blobs")
    assert clustering_scores(x, y, seed=7) == clustering_scores(x, y, seed=7)


def test_single_member_class_counts_towards_k() -> None:
    x, y = _blobs(1, n=40)
    y = y.copy()
    y[0] = 9
    assert clustering_scores(x, y)["k"] == 4


def test_minibatch_only_when_asked() -> None:
    x, y = _blobs(2, spread=0.05)
    res = clustering_scores(x, y, algorithm="minibatch")
    assert_close_f32(res["nmi"], 1.0, nmi_tol(y, 1.0), what="nmi, minibatch")
    with pytest.raises(EvaluationError, match="minibatch"):
        clustering_scores(x, y, algorithm="hdbscan")  # type: ignore[arg-type]


def test_errors_instead_of_silent_zeros() -> None:
    x, _ = _blobs(3, n=10)
    with pytest.raises(EvaluationError, match="number of classes"):
        clustering_scores(x, np.zeros(10))
    with pytest.raises(EvaluationError, match="one label per row"):
        clustering_scores(x, np.zeros(9))
