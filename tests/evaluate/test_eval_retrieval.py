"""Retrieval ROC AUC / precision@1 against a per-query scikit-learn loop (the reference code's method)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score
from tolerance import assert_close_f32, f32_tol, f64_tol

from avexlab.errors import EvaluationError
from avexlab.evaluate.retrieval import encode_labels, retrieval_roc_auc, retrieval_scores


def _cosine_tol(x, dtype) -> float:
    """Bound on |computed - exact| cosine for rows of ``x`` in ``dtype``: two ``d``-term sums (the dot
    product, a norm) and a few roundings to normalise, relative to 1 (|a . b| <= |a| |b|); ours in
    ``dtype`` and the reference in float64, so the sum of both sides' bounds."""
    ops = 2 * np.shape(x)[1] + 4
    return float(f32_tol(1.0, ops=ops, sides=1, dtype=dtype) + f64_tol(1.0, ops=ops, sides=1))


def _reference(x, label_sets, queries=None, gallery=None, groups=None, cos_tol=0.0):
    """Per-query loop: cosine similarity, positive = shares a label, sklearn ROC AUC, top-1 by argmax;
    with ``groups``, rows of the query's group are not ranked.

    Returns ``(roc_auc, precision_at_1, n_queries, auc_tol, p1_tol)``. The tolerances: a (positive,
    negative) pair whose cosines lie within ``2 cos_tol`` may be ordered either way by two roundings
    (1 pair of the query's ``P x N``; ``cos_tol`` = 0 when every cosine is exact, as for the +-1 rows of
    ``_tied_embeddings``), and so may a top-1 within ``2 cos_tol`` of the runner-up (1 query of ``n``); plus
    the float64 rounding of the AUCs: sklearn's trapezoid sum over at most ``|gallery|`` thresholds of
    non-negative terms, ours a count over ``P N``, then the mean over queries."""
    x = np.asarray(x, dtype=np.float64)
    x = x / np.linalg.norm(x, axis=1, keepdims=True)
    n = len(x)
    aucs, hits, flips, tops = [], [], [], []
    for i in range(n) if queries is None else queries:
        g = [j for j in (range(n) if gallery is None else gallery) if j != i]
        if groups is not None:
            g = [j for j in g if groups[j] != groups[i]]
        s = x[g] @ x[i]
        y = np.array([bool(set(label_sets[i]) & set(label_sets[j])) for j in g])
        if y.all() or not y.any():
            continue
        aucs.append(roc_auc_score(y, s))
        hits.append(y[np.argmax(s)])
        close = np.abs(s[y][:, None] - s[~y][None, :]) <= 2 * cos_tol
        if cos_tol == 0.0:
            close &= False  # exact cosines: ties are exact on both sides and get half credit on both
        flips.append(close.sum() / close.size)
        top = np.sort(s)[::-1]
        tops.append(cos_tol > 0.0 and len(top) > 1 and top[0] - top[1] <= 2 * cos_tol)
    if not aucs:
        return float("nan"), float("nan"), 0, 0.0, 0.0
    auc, p1, nq = float(np.mean(aucs)), float(np.mean(hits)), len(aucs)
    g_max = n if gallery is None else len(gallery)
    auc_tol = float(np.mean(flips)) + float(f64_tol(auc, ops=g_max + nq + 6))
    p1_tol = float(np.mean(tops)) + float(f64_tol(p1, ops=nq + 1))
    return auc, p1, nq, auc_tol, p1_tol


def _tied_embeddings(rng, n, dup_frac=0.3):
    """Rows of +-1 in 16 dims: norms are exactly 4, so every cosine is exact and ties are real ties."""
    x = rng.choice([-1.0, 1.0], size=(n, 16))
    x[rng.random(n) < dup_frac] = x[0]
    return x


def _assert_same(ours, ref):
    assert ours["n_queries"] == ref[2]
    if ref[2]:
        assert_close_f32(ours["roc_auc"], ref[0], ref[3], what="roc_auc")
        assert_close_f32(ours["precision_at_1"], ref[1], ref[4], what="precision_at_1")
    else:
        assert np.isnan(ours["roc_auc"]) and np.isnan(ours["precision_at_1"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # float32 takes the packed-key sort path
@pytest.mark.parametrize("seed", range(25))
def test_single_label_matches_sklearn_loop_with_ties_and_singletons(seed, dtype):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(3, 40))
    x = _tied_embeddings(rng, n).astype(dtype)
    labels = rng.integers(0, 5, n)  # small n: single-member classes occur (their queries are skipped)
    ours = retrieval_scores(x, labels, chunk_size=int(rng.integers(1, 9)))
    _assert_same(ours, _reference(x, [[v] for v in labels]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("seed", range(25))
def test_multi_label_matches_sklearn_loop(seed, dtype):
    rng = np.random.default_rng(100 + seed)
    n = int(rng.integers(3, 40))
    x = _tied_embeddings(rng, n).astype(dtype)
    labels = [
        list(rng.choice(["a", "b", "c", "d", "e"], size=int(rng.integers(0, 3)), replace=False))
        for _ in range(n)
    ]
    _assert_same(retrieval_scores(x, labels, chunk_size=5), _reference(x, labels))


@pytest.mark.parametrize("seed", range(15))
def test_train_vs_test_mode_matches_loop(seed):
    rng = np.random.default_rng(200 + seed)
    n = int(rng.integers(6, 40))
    x = rng.normal(size=(n, 8))
    labels = rng.integers(0, 3, n)
    test = rng.random(n) < 0.4
    test[0], test[1] = True, False
    ours = retrieval_scores(x, labels, queries=test)
    ref = _reference(
        x,
        [[v] for v in labels],
        np.flatnonzero(test),
        np.flatnonzero(~test),
        cos_tol=_cosine_tol(x, np.float64),
    )
    _assert_same(ours, ref)
    # indices and masks are the same selection
    assert retrieval_scores(x, labels, queries=np.flatnonzero(test)) == ours


@pytest.mark.parametrize("dtype", [np.float32, np.float64])  # the bucketed CPU path and the sort path
@pytest.mark.parametrize("seed", range(15))
def test_groups_leave_the_querys_own_group_out_as_the_loop_does(seed, dtype):
    rng = np.random.default_rng(300 + seed)
    n = int(rng.integers(4, 40))
    x = _tied_embeddings(rng, n).astype(dtype)
    groups = [f"rec{g}" for g in rng.integers(0, max(2, n // 4), n)]
    single = rng.integers(0, 3, n)
    ours = retrieval_scores(x, single, groups=groups, chunk_size=int(rng.integers(1, 9)))
    _assert_same(ours, _reference(x, [[v] for v in single], groups=groups))
    multi = [list(rng.choice(["a", "b", "c"], size=int(rng.integers(0, 3)), replace=False)) for _ in range(n)]
    _assert_same(retrieval_scores(x, multi, groups=groups), _reference(x, multi, groups=groups))


def test_groups_remove_what_a_recording_shares_with_itself():
    """Windows of one recording look alike (shared background) and share its species: without groups a
    query's nearest neighbour is its own recording; with them it must be found in another one."""
    rng = np.random.default_rng(0)
    recording = np.repeat(np.arange(12), 5)
    species = recording % 2  # each recording holds one of two species
    x = rng.normal(size=(12, 32))[recording] + 0.05 * rng.normal(size=(60, 32))  # recording identity only
    leaky = retrieval_scores(x, species)
    fair = retrieval_scores(x, species, groups=recording)
    assert leaky["precision_at_1"] == 1.0 and fair["precision_at_1"] < 0.8
    assert leaky["roc_auc"] > fair["roc_auc"] + 0.03 and fair["n_queries"] == 60
    with pytest.raises(EvaluationError, match="groups"):
        retrieval_scores(x, species, groups=recording[:-1])


def test_hand_worked_case():
    # query 0 = [1, 0]; others: 1 (same label) at cos 0.6, 2 (other label) at cos 0.8, 3 (same) at cos -1
    x = np.array([[1.0, 0.0], [0.6, 0.8], [0.8, 0.6], [-1.0, 0.0]])
    labels = [0, 0, 1, 0]
    auc_q0 = 0.0  # both positives rank below the single negative
    # query 1: positives 0 (0.6), 3 (-0.6); negative 2 (0.96) -> 0; query 3: positives 0 (-1), 1 (-0.6);
    # negative 2 (-0.8) -> 1 of 2 pairs -> 0.5; query 2 has no positive -> skipped.
    # Top-1: query 0 -> 2 (neg), query 1 -> 2 (neg), query 3 -> 1 (pos, -0.6 is the largest) -> 1/3.
    res = retrieval_scores(x, labels)
    assert res["n_queries"] == 3
    # cosines of these rows are not all exact, but no two of a query's differ by less than 0.2
    auc = (auc_q0 + 0.0 + 0.5) / 3
    assert_close_f32(res["roc_auc"], auc, f64_tol(auc, ops=3 + 3 + 6), what="roc_auc")
    assert_close_f32(res["precision_at_1"], 1 / 3, f64_tol(1 / 3, ops=3 + 1), what="precision_at_1")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_all_ties_give_half_credit(dtype):
    x = np.ones((5, 3), dtype=dtype)
    assert_close_f32(retrieval_roc_auc(x, [0, 0, 1, 1, 1]), 0.5, f64_tol(0.5, ops=5 + 5 + 6), what="all ties")


def test_signed_zero_similarities_tie():
    # query 0 is orthogonal to 1 and 2; the cosines are +0.0 and -0.0, which must tie (0.5 credit).
    x = np.array([[1.0, 0.0], [0.0, 1.0], [-0.0, -1.0]], dtype=np.float32)
    res = retrieval_scores(x, [0, 0, 1], queries=[0], gallery=[1, 2])
    assert res["roc_auc"] == 0.5  # one positive, one negative, a tie: half credit, exactly


def test_no_query_with_positive_and_negative_gives_nan():
    res = retrieval_scores(np.eye(3) + 0.1, [0, 1, 2])
    assert res["n_queries"] == 0 and np.isnan(res["roc_auc"])


def test_float32_input_and_polars_labels():
    import polars as pl

    rng = np.random.default_rng(3)
    x = rng.normal(size=(30, 8)).astype(np.float32)
    lab = rng.integers(0, 3, 30)
    a = retrieval_roc_auc(x, pl.Series(lab.astype(str)))
    ref = _reference(x.astype(np.float64), [[v] for v in lab], cos_tol=_cosine_tol(x, np.float32))
    assert_close_f32(a, ref[0], ref[3], what="roc_auc of float32 rows")


def test_indicator_matrix_equals_label_lists():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(20, 4))
    mh = (rng.random((20, 3)) < 0.4).astype(int)
    lists = [list(np.flatnonzero(r)) for r in mh]
    assert retrieval_scores(x, mh) == retrieval_scores(x, lists)
    codes, multi = encode_labels(lists)
    assert multi and codes.shape == (20, int(mh.any(axis=0).sum()))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(4, 25),
    scale=st.floats(0.01, 100.0),
)
def test_properties_permutation_and_scale_invariance(seed, n, scale):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    labels = rng.integers(0, 3, n)
    base = retrieval_scores(x, labels)
    perm = rng.permutation(n)
    scales = scale * rng.uniform(0.5, 2.0, size=(n, 1))  # per-row positive scaling keeps cosines
    moved = retrieval_scores(x[perm] * scales[perm], labels[perm])
    assert moved["n_queries"] == base["n_queries"]
    if base["n_queries"]:
        # Scaled and reordered rows give cosines equal up to float64 rounding (twice: both runs).
        tol = _reference(x, [[v] for v in labels], cos_tol=2 * _cosine_tol(x, np.float64))[3]
        assert_close_f32(moved["roc_auc"], base["roc_auc"], tol, what="roc_auc, rows permuted and scaled")
    # relabelling classes (a bijection) changes nothing
    relabelled = retrieval_scores(x, (labels + 7) * 3)
    assert relabelled["n_queries"] == base["n_queries"]
    np.testing.assert_equal(relabelled["roc_auc"], base["roc_auc"])


def test_errors():
    with pytest.raises(EvaluationError, match="one per embedding"):
        retrieval_roc_auc(np.ones((3, 2)), [0, 1])
    with pytest.raises(EvaluationError, match="zero rows"):
        retrieval_roc_auc(np.zeros((3, 2)), [0, 1, 0])
    with pytest.raises(EvaluationError, match="a label for every row"):
        retrieval_roc_auc(np.ones((3, 2)), [0, None, 1])
    with pytest.raises(EvaluationError, match="finite"):
        retrieval_roc_auc(np.array([[np.nan, 1.0], [1.0, 1.0]]), [0, 0])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(500, 32))
    lab = rng.integers(0, 10, 500)
    tol = _reference(x, [[v] for v in lab], cos_tol=2 * _cosine_tol(x, np.float64))[3]
    got, want = retrieval_scores(x, lab, device="cuda")["roc_auc"], retrieval_scores(x, lab)["roc_auc"]
    assert_close_f32(got, want, tol, what="roc_auc cuda vs cpu")


def test_packed_sort_gives_the_same_counts_with_numpy_and_torch_arrays():
    # The CUDA path runs the same function on torch tensors; check it on CPU tensors against numpy.
    from avexlab.evaluate.retrieval import _u_one_order

    rng = np.random.default_rng(6)
    sims = rng.choice(np.array([-0.5, -0.0, 0.0, 0.25, 0.5], dtype=np.float32), size=(7, 40))
    sims = sims + np.float32(0.0)
    role = rng.integers(0, 3, size=(7, 40))
    pos, neg = role == 1, role == 2
    s64 = sims.astype(np.float64).view(np.int64)
    for order in ((1, 2), (2, 1)):
        u_np, mixed_np = _u_one_order(s64, pos, neg, *order)
        u_t, mixed_t = _u_one_order(
            torch.from_numpy(s64), torch.from_numpy(pos), torch.from_numpy(neg), *order
        )
        np.testing.assert_array_equal(u_np, u_t.numpy())
        np.testing.assert_array_equal(mixed_np, mixed_t.numpy())
    # and the counts are the brute-force ones: positives-first counts strict "<", negatives-first "<="
    u_low, _ = _u_one_order(s64, pos, neg, 1, 2)
    u_high, _ = _u_one_order(s64, pos, neg, 2, 1)
    for i in range(7):
        sp, sn = sims[i][pos[i]], sims[i][neg[i]]
        assert u_low[i] == (sn[None, :] < sp[:, None]).sum()
        assert u_high[i] == (sn[None, :] <= sp[:, None]).sum()


@pytest.mark.parametrize("seed", range(10))
def test_bucketed_counting_equals_brute_force(seed):
    from avexlab.evaluate.retrieval import _mann_whitney_u_bucketed

    rng = np.random.default_rng(300 + seed)
    b, g = int(rng.integers(1, 6)), int(rng.integers(1, 80))
    # few distinct values (ties, shared buckets) mixed with continuous ones; some rows constant
    sims = np.where(rng.random((b, g)) < 0.5, rng.integers(-2, 3, (b, g)) / 4, rng.normal(size=(b, g)))
    sims = sims.astype(np.float32)
    sims[0] = sims[0, 0]
    role = rng.integers(0, 3, size=(b, g))
    pos, neg = role == 1, role == 2
    u = _mann_whitney_u_bucketed(sims, pos, neg)
    for i in range(b):
        sp, sn = sims[i][pos[i]].astype(np.float64), sims[i][neg[i]].astype(np.float64)
        expected = (sn[None, :] < sp[:, None]).sum() + 0.5 * (sn[None, :] == sp[:, None]).sum()
        assert u[i] == expected
