"""Property-based tests (hypothesis) that the per-module tests do not already cover.

Already covered elsewhere (not repeated here): KaldiFbank vs torchaudio on random signals
(tests/models/test_fbank.py), crop/pad and sliding windows (tests/audio/test_audio_io.py), manifest write/read
round trips (tests/data/test_data_manifest.py), retrieval ROC AUC permutation/scale/relabelling
(tests/evaluate/test_eval_retrieval.py). Here: padding invariance of both frontends at random lengths, gain
invariance of the mel frontend, the manifest time checks, and every metric against scikit-learn or a brute
force, with its invariances.
"""

from __future__ import annotations

import itertools
import re
import warnings

import numpy as np
import polars as pl
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn import metrics as skm
from tolerance import (
    ari_tol,
    assert_close_f32,
    cosine_tol,
    f64_tol,
    kaldi_fbank_tol,
    mel_frontend_log_tol,
    min_max_tol,
    nmi_tol,
    ranking_tol,
)

from avexlab.audio.fbank import KaldiFbank
from avexlab.audio.mel import MelFrontend
from avexlab.data.manifest import validate_manifest
from avexlab.errors import ManifestError
from avexlab.evaluate.clustering import clustering_scores
from avexlab.evaluate.detection import event_f1
from avexlab.evaluate.metrics import (
    accuracy,
    average_precision_per_class,
    balanced_accuracy,
    macro_f1,
    mean_average_precision,
    mean_average_precision_present,
)
from avexlab.evaluate.retrieval import retrieval_scores

FAST = settings(max_examples=25, deadline=None)


# ------------------------------------------------------------------------------------------ frontends
def _padded_batch(lengths: list[int], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``[B, T]`` waves (noise + tone, T = longest) with trailing padding marked True in the mask."""
    g = torch.Generator().manual_seed(seed)
    T = max(lengths)
    wave = torch.randn(len(lengths), T, generator=g) * 0.1
    wave += 0.3 * torch.sin(torch.arange(T) * 0.07)
    mask = torch.arange(T)[None, :] >= torch.tensor(lengths)[:, None]
    return wave.masked_fill(mask, 0.0), mask


@FAST
@given(
    lengths=st.lists(st.integers(400, 2400), min_size=1, max_size=3),
    junk=st.floats(-5.0, 5.0),
    seed=st.integers(0, 2**16),
)
def test_fbank_padded_clip_equals_clip_alone(lengths: list[int], junk: float, seed: int) -> None:
    fb = KaldiFbank(num_mel_bins=24)
    wave, mask = _padded_batch(lengths, seed)
    feats, fmask = fb(wave.masked_fill(mask, junk), mask)  # whatever the padding holds
    for i, n in enumerate(lengths):
        alone, _ = fb(wave[i : i + 1, :n])
        frames = alone.shape[1]
        assert fmask is None or not fmask[i, :frames].any()
        if fmask is not None:
            assert fmask[i, frames:].all()
        tol = kaldi_fbank_tol(wave[i, :n], alone[0], sample_frequency=16000, num_mel_bins=24)
        assert_close_f32(feats[i, :frames], alone[0], tol, what=f"clip {i} of {lengths}, padded vs alone")


@FAST
@given(
    lengths=st.lists(st.integers(801, 4000), min_size=1, max_size=3),
    gain=st.floats(0.25, 8.0),
    seed=st.integers(0, 2**16),
)
def test_mel_padding_and_gain_invariance(lengths: list[int], gain: float, seed: int) -> None:
    front = MelFrontend(16000, n_mels=32)
    wave, mask = _padded_batch(lengths, seed)
    out, fmask = front(wave, mask)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    louder, _ = front(wave * gain, mask)
    for i, n in enumerate(lengths):
        alone, _ = front(wave[i : i + 1, :n])
        alone_log, _ = front.log_mel(wave[i : i + 1, :n])
        x = alone_log[0].double()
        frames = alone.shape[-1]
        assert fmask is not None and not fmask[i, :frames].any() and fmask[i, frames:].all()
        tol = mel_frontend_log_tol(wave[i, :n], alone_log[0], 16000)
        assert_close_f32(out[i, :, :frames], alone[0], min_max_tol(x, tol), what=f"clip {i}, padded vs alone")
        # Per-clip min-max removes a gain g exactly but for the log offset: log(g^2 m + 1e-6) is log(g^2) +
        # log(m + 1e-6 / g^2), so each log-mel value moves by |log(m + 1e-6 / g^2) - log(m + 1e-6)| (from the
        # clip's own powers m), on top of both runs' rounding.
        m = (x.exp() - 1e-6).clamp_min(0.0)
        shift = (torch.log(m + 1e-6 / gain**2) - torch.log(m + 1e-6)).abs()
        loud_log, _ = front.log_mel(gain * wave[i : i + 1, :n])
        loud_tol = mel_frontend_log_tol(gain * wave[i, :n], loud_log[0], 16000)
        tol = min_max_tol(x, tol + loud_tol + shift)
        assert_close_f32(louder[i, :, :frames], out[i, :, :frames], tol, what=f"clip {i}, gain {gain}")


# ---------------------------------------------------------------------------------- manifest parser
_time = st.one_of(st.none(), st.floats(-2.0, 10.0, allow_nan=False).map(lambda x: round(x, 2)))


@FAST
@given(times=st.lists(st.tuples(_time, _time), min_size=1, max_size=8))
def test_manifest_time_checks_name_exactly_the_bad_rows(
    times: list[tuple[float | None, float | None]],
) -> None:
    n = len(times)
    df = pl.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(n)],
            "path": [f"a/{i}.wav" for i in range(n)],
            "dataset": ["d"] * n,
            "split": ["train"] * n,
            "domain": ["focal"] * n,
            "labels": [["x"]] * n,
            "start_s": pl.Series([s for s, _ in times], dtype=pl.Float64),
            "end_s": pl.Series([e for _, e in times], dtype=pl.Float64),
        }
    )
    bad = {
        i
        for i, (s, e) in enumerate(times)
        if (s is not None and s < 0) or (e is not None and (0.0 if s is None else s) >= e)
    }
    if not bad:
        out = validate_manifest(df)
        assert out["start_s"].to_list() == df["start_s"].to_list()  # data kept as given
        return
    with pytest.raises(ManifestError) as info:
        validate_manifest(df, max_problems=100)
    named = {int(m) for m in re.findall(r"row (\d+) \(clip_id", str(info.value))}
    assert named == bad, str(info.value)


# --------------------------------------------------------------------------------------- classifiers
_labels = st.lists(st.integers(0, 4), min_size=2, max_size=40)


@FAST
@given(data=st.data(), t=_labels)
def test_label_metrics_agree_with_sklearn_and_ignore_names_and_order(
    data: st.DataObject, t: list[int]
) -> None:
    p = data.draw(st.lists(st.integers(0, 4), min_size=len(t), max_size=len(t)))
    yt, yp = np.asarray(t), np.asarray(p)
    assert accuracy(yt, yp) == skm.accuracy_score(yt, yp)  # a count over n: one correctly rounded division
    # Means over at most 5 classes (5 sums, a division) of a recall (1 rounding) or an F1 (sklearn's 2 p r /
    # (p + r): 6 roundings); non-negative terms, so relative to the value.
    ops = {accuracy: 1, balanced_accuracy: 6 + 1, macro_f1: 6 + 6}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns about classes only in y_pred
        ref_bal = skm.balanced_accuracy_score(yt, yp)
    assert_close_f32(
        balanced_accuracy(yt, yp), ref_bal, f64_tol(ref_bal, ops=ops[balanced_accuracy]), what="bal"
    )
    ref_f1 = skm.f1_score(yt, yp, average="macro", zero_division=0)
    assert_close_f32(macro_f1(yt, yp), ref_f1, f64_tol(ref_f1, ops=ops[macro_f1]), what="macro F1")
    # class names (a bijection, here to strings) and row order do not matter: the same counts, summed over
    # the classes in another order
    names = np.asarray(["owl", "frog", "bat", "whale", "wren"])
    perm = np.random.default_rng(len(t)).permutation(len(t))
    for f in (accuracy, balanced_accuracy, macro_f1):
        want = f(yt, yp)
        assert_close_f32(
            f(names[yt][perm], names[yp][perm]), want, f64_tol(want, ops=ops[f]), what=f.__name__
        )


@FAST
@given(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(2, 30),
    c=st.integers(1, 5),
    levels=st.integers(2, 6),
    multi=st.booleans(),
)
def test_average_precision_agrees_with_sklearn_with_ties(
    seed: int, n: int, c: int, levels: int, multi: bool
) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.integers(0, levels, size=(n, c)).astype(np.float64)  # few levels: many ties
    if multi:
        targets = rng.random((n, c)) < 0.4
    else:
        targets = np.eye(c, dtype=bool)[rng.integers(0, c, n)]
    ap = average_precision_per_class(scores, targets)
    present = targets.any(axis=0)
    assert np.isnan(ap[~present]).all()
    # AP: a sum of at most n non-negative terms of about 4 roundings each (relative to AP); a mean over c
    # classes adds c sums and a division
    for j in np.flatnonzero(present):
        ref = skm.average_precision_score(targets[:, j], scores[:, j])
        assert_close_f32(ap[j], ref, f64_tol(ref, ops=n + 4), what=f"AP of class {j}")
    want = np.nan_to_num(ap).mean()
    assert_close_f32(mean_average_precision(scores, targets), want, f64_tol(want, ops=c + 1), what="mAP")
    if present.any():
        want = ap[present].mean()
        got = mean_average_precision_present(scores, targets)
        assert_close_f32(got, want, f64_tol(want, ops=c + 1), what="mAP present")
    # invariances: row order, and any strictly increasing map of the scores (logits vs probabilities): the
    # same ranking with the same ties, so the same terms, though a permutation may sum them in another
    # order (hypothesis found a case 1 ulp apart): each AP within the rounding of its n-term sum
    perm = rng.permutation(n)
    moved = average_precision_per_class(1.0 / (1.0 + np.exp(-scores[perm] * 3.0)), targets[perm])
    assert np.array_equal(np.isnan(moved), np.isnan(ap))
    for j in np.flatnonzero(present):
        assert_close_f32(moved[j], ap[j], f64_tol(ap[j], ops=n + 4), what=f"AP of class {j} moved")


# ----------------------------------------------------------------------------------------- retrieval
@FAST
@given(seed=st.integers(0, 2**31 - 1), n=st.integers(3, 20), k=st.integers(1, 4))
def test_precision_at_1_equals_brute_force(seed: int, n: int, k: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 5))  # continuous: no tied similarities
    labels = rng.integers(0, k, n)
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    sims = u @ u.T
    np.fill_diagonal(sims, -np.inf)
    same = labels[:, None] == labels[None, :]
    np.fill_diagonal(same, False)
    n_neg = (~same).sum(1) - 1  # the query itself is neither
    valid = same.any(1) & (n_neg > 0)  # queries with a positive and a negative
    res = retrieval_scores(x, labels)
    assert res["n_queries"] == int(valid.sum())
    if valid.any():
        # both sides compute the cosines in float64, each within cosine_tol of the exact ones
        auc_tol, p1_tol = ranking_tol(sims, same, valid, cosine_tol(x.shape[1]))
        hits = same[np.arange(n), sims.argmax(1)]
        assert_close_f32(res["precision_at_1"], hits[valid].mean(), p1_tol, what="precision_at_1")
        aucs = [
            skm.roc_auc_score(same[i, np.arange(n) != i], sims[i, np.arange(n) != i])
            for i in np.flatnonzero(valid)
        ]
        assert_close_f32(res["roc_auc"], np.mean(aucs), auc_tol, what="roc_auc")
    else:
        assert np.isnan(res["precision_at_1"])


# ---------------------------------------------------------------------------------------- clustering
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), k=st.integers(2, 4), per=st.integers(2, 6), spread=st.floats(0.1, 3.0))
def test_clustering_scores_agree_with_sklearn_and_ignore_label_names(
    seed: int, k: int, per: int, spread: float
) -> None:
    from sklearn.cluster import KMeans

    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(k), per)
    x = rng.normal(size=(k, 3))[labels] * 3.0 + spread * rng.normal(size=(labels.size, 3))
    got = clustering_scores(x, labels, seed=7, n_init=2)
    pred = KMeans(n_clusters=k, n_init=2, random_state=7).fit_predict(x)
    assert got["k"] == k
    # labels are already the codes 0..k-1 and KMeans runs with the same seed on the same data: the very
    # same sklearn calls, bit for bit
    assert got["nmi"] == skm.normalized_mutual_info_score(labels, pred)
    assert got["ari"] == skm.adjusted_rand_score(labels, pred)
    assert got["v_measure"] == skm.v_measure_score(labels, pred)
    # renamed classes number the contingency table's rows in another order: float64 rounding of its sums
    renamed = clustering_scores(x, [f"sp{(v * 7) % k}" for v in labels], seed=7, n_init=2)
    for m in ("nmi", "v_measure"):
        assert_close_f32(renamed[m], got[m], nmi_tol(labels, got[m]), what=m)
    assert_close_f32(renamed["ari"], got["ari"], ari_tol(labels, pred, got["ari"]), what="ari")


# ----------------------------------------------------------------------------------------- detection
def _events(rows: list[tuple[str, str, float, float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "recording_id": [r[0] for r in rows],
            "label": [r[1] for r in rows],
            "onset_s": [r[2] for r in rows],
            "offset_s": [r[3] for r in rows],
        },
        schema={"recording_id": pl.String, "label": pl.String, "onset_s": pl.Float64, "offset_s": pl.Float64},
    )


def _max_matching(ref: list[tuple], est: list[tuple], collar: float) -> int:
    """Brute force: the largest one-to-one matching of reference to estimated events (same recording and
    label, onset and offset within ``collar``; durations <= 1 s so the 20 % offset rule never exceeds it).
    Times lie on a 0.25 s grid (exact in binary), so no comparison sits on a rounding boundary."""
    ok = [
        [
            r[0] == e[0] and r[1] == e[1] and abs(r[2] - e[2]) <= collar and abs(r[3] - e[3]) <= collar
            for e in est
        ]
        for r in ref
    ]
    for size in range(min(len(ref), len(est)), 0, -1):
        for rs in itertools.combinations(range(len(ref)), size):
            for es in itertools.permutations(range(len(est)), size):
                if all(ok[r][e] for r, e in zip(rs, es, strict=True)):
                    return size
    return 0


_event = st.tuples(
    st.sampled_from(["r0", "r1"]),
    st.sampled_from(["owl", "frog"]),
    st.integers(0, 12).map(lambda x: x * 0.25),
    st.integers(1, 4).map(lambda x: x * 0.25),
).map(lambda e: (e[0], e[1], e[2], e[2] + e[3]))


@FAST
@given(ref=st.lists(_event, min_size=0, max_size=5), est=st.lists(_event, min_size=0, max_size=5))
def test_event_f1_is_a_maximum_matching_and_symmetric(ref: list[tuple], est: list[tuple]) -> None:
    if not ref and not est:
        return
    per, summary = event_f1(_events(ref), _events(est), t_collar=0.3, percentage_of_length=0.2)
    tp = int(per["tp"].sum())
    assert tp == _max_matching(ref, est, 0.3)
    want = 2 * tp / (len(ref) + len(est))  # F1 from integer counts: a few roundings on either side
    assert_close_f32(summary["micro_f1"], want, f64_tol(want, ops=4), what="micro F1")
    # swapping reference and estimate swaps precision and recall, keeps F1 (durations <= 1 s: the
    # offset tolerance is the collar either way); row order changes nothing
    _, swapped = event_f1(_events(est), _events(ref), t_collar=0.3, percentage_of_length=0.2)
    # the same integer counts with the roles swapped: F1 = 2 P R / (P + R) is symmetric in IEEE arithmetic
    # (products and sums commute exactly) and precision tp / n_est is the other run's recall, bit for bit
    assert swapped["micro_f1"] == summary["micro_f1"]
    assert swapped["micro_precision"] == summary["micro_recall"]
    _, shuffled = event_f1(_events(ref[::-1]), _events(est[::-1]), t_collar=0.3, percentage_of_length=0.2)
    assert shuffled.keys() == summary.keys()
    for key, value in summary.items():  # row order changes no count: the same numbers, bit for bit
        assert shuffled[key] == value or (np.isnan(shuffled[key]) and np.isnan(value)), key
    # a detector that reproduces the reference exactly scores 1
    if ref:
        _, perfect = event_f1(_events(ref), _events(ref))
        assert perfect["micro_f1"] == 1.0 and perfect["macro_f1"] == 1.0
