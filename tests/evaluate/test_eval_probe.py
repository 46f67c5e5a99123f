"""Probes: the recipe's mechanics (best epoch restored, schedule), determinism, label spaces."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from tolerance import assert_close_f32, f64_tol

from avexlab.errors import EvaluationError
from avexlab.evaluate.metrics import mean_average_precision
from avexlab.evaluate.probe import LinearProbe, MLPProbe


def _data(seed: int = 0, n: int = 240, k: int = 4, d: int = 12):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(k, d))
    y = rng.integers(0, k, n)
    x = (centres[y] + rng.normal(size=(n, d))).astype(np.float32)
    return x, y


def test_linear_probe_learns_and_is_deterministic() -> None:
    x, y = _data()
    names = np.array(["a", "b", "c", "d"])[y]
    kw = dict(epochs=15, lr=1e-2, random_state=3)
    p = LinearProbe(**kw).fit(x[:160], names[:160], x[160:200], names[160:200])
    assert p.score(x[200:], names[200:]) > 0.9
    assert set(p.predict(x[200:])) <= set(names)
    q = LinearProbe(**kw).fit(x[:160], names[:160], x[160:200], names[160:200])
    np.testing.assert_array_equal(p.decision_function(x), q.decision_function(x))
    r = LinearProbe(**{**kw, "random_state": 4}).fit(x[:160], names[:160], x[160:200], names[160:200])
    assert not np.array_equal(p.decision_function(x), r.decision_function(x))
    proba = p.predict_proba(x[:5])
    # float64 softmax: each of the 4 probabilities an exp over a 4-term sum (about 4 + 3 roundings), then
    # their 4-term sum; against the exact 1
    assert_close_f32(proba.sum(axis=1), np.ones(5), f64_tol(np.ones(5), ops=7 + 4, sides=1), what="sum of p")


def test_fit_does_not_touch_the_global_rng() -> None:
    x, y = _data()
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    LinearProbe(epochs=1).fit(x, y)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


def test_best_validation_epoch_is_restored() -> None:
    x, y = _data(1)
    p = LinearProbe(epochs=8, lr=5e-2, random_state=0).fit(x[:160], y[:160], x[160:], y[160:])
    vals = [h["val_score"] for h in p.history_]
    best_epoch = int(np.argmax(vals)) + 1  # first epoch reaching the maximum
    assert p.best_epoch_ == best_epoch
    assert p.best_val_score_ == max(vals)
    assert p.score(x[160:], y[160:]) == max(vals)  # the restored weights on the same clips: bit for bit


def test_best_epoch_differs_from_last_when_val_gets_worse() -> None:
    # Validation labels are a permutation of the truth: the best val epoch is an early one and must be
    # the one restored (its val score equals the restored probe's score on val).
    x, y = _data(2)
    y_val_wrong = (y[160:] + 1) % 4
    p = LinearProbe(epochs=10, lr=5e-2).fit(x[:160], y[:160], x[160:], y_val_wrong)
    assert p.score(x[160:], y_val_wrong) == p.best_val_score_  # the restored weights: bit for bit
    assert p.best_val_score_ == max(h["val_score"] for h in p.history_)


def test_multi_label_uses_bce_and_map() -> None:
    x, y = _data(3)
    lists = [[int(v)] + ([int((v + 1) % 4)] if v == 0 else []) for v in y]
    p = MLPProbe(epochs=15, lr=1e-2, hidden_dims=(32,), n_classes=4).fit(
        x[:160], lists[:160], x[160:200], lists[160:200]
    )
    assert p.multi_label_ and p.n_outputs_ == 4
    mh = np.zeros((40, 4), dtype=bool)
    for i, r in enumerate(lists[200:]):
        mh[i, r] = True
    assert p.score(x[200:], mh) == mean_average_precision(p.decision_function(x[200:]), mh)  # the same call
    assert p.score(x[200:], mh) > 0.8
    assert p.predict(x[:3]).shape == (3, 4)


def test_standardize_is_opt_in() -> None:
    x, y = _data(4)
    raw = LinearProbe(epochs=2)
    assert raw.standardize is False
    st = LinearProbe(epochs=2, standardize=True).fit(x * 1000 + 50, y)
    np.testing.assert_array_equal(st.mean_, (x * 1000 + 50).mean(axis=0))  # numpy's mean of the same array


def test_label_space_and_feature_errors() -> None:
    x, y = _data(5)
    p = LinearProbe(epochs=1).fit(x, y)
    with pytest.raises(EvaluationError, match="label space"):
        p.score(x[:5], np.array([9, 9, 9, 9, 9]))
    with pytest.raises(EvaluationError, match="12 features"):
        p.predict(x[:, :5])
    with pytest.raises(EvaluationError, match="fitted"):
        LinearProbe().predict(x)
    with pytest.raises(EvaluationError, match="n_classes"):
        LinearProbe(epochs=1, n_classes=7).fit(x, y)


def test_min_steps_lengthens_small_training_sets_only() -> None:
    x, y = _data(3, n=600)
    small = LinearProbe(epochs=30, min_steps=500).fit(x[:40], y[:40], x[500:], y[500:])
    assert small.epochs_ == 250  # 40 clips = 2 steps per epoch -> 250 epochs for 500 steps
    assert len(small.history_) == 250
    big = LinearProbe(epochs=30, min_steps=500, random_state=1).fit(x[:544], y[:544])  # 17 steps/epoch
    ref = LinearProbe(epochs=30, random_state=1).fit(x[:544], y[:544])
    assert big.epochs_ == ref.epochs_ == 30
    np.testing.assert_array_equal(big.decision_function(x), ref.decision_function(x))
    with pytest.raises(EvaluationError, match="min_steps"):
        LinearProbe(min_steps=-1).fit(x, y)


def test_standardized_probe_does_not_depend_on_feature_scale() -> None:
    # A raw probe at lr 1e-3 barely moves on features of scale 1e-3 (it measures scale, not content); the
    # standardised probe gives the same predictions whatever the per-dimension scale.
    x, y = _data(4)
    scale = np.geomspace(1e-4, 1e-2, x.shape[1]).astype(np.float32)
    kw = dict(epochs=20, min_steps=500, random_state=0)
    raw_small = LinearProbe(**kw).fit(x[:160] * scale, y[:160], x[160:200] * scale, y[160:200])
    std = LinearProbe(**kw, standardize=True).fit(x[:160], y[:160], x[160:200], y[160:200])
    std_small = LinearProbe(**kw, standardize=True).fit(
        x[:160] * scale, y[:160], x[160:200] * scale, y[160:200]
    )
    np.testing.assert_array_equal(std.predict(x[200:]), std_small.predict(x[200:] * scale))
    assert std_small.score(x[200:] * scale, y[200:]) > 0.8
    assert raw_small.score(x[200:] * scale, y[200:]) < 0.5


def test_probe_results_do_not_depend_on_the_thread_count() -> None:
    x, y = _data(5, n=300)
    before = torch.get_num_threads()
    try:
        outs = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            p = LinearProbe(epochs=6, min_steps=60, random_state=2).fit(
                x[:200], y[:200], x[200:250], y[200:250]
            )
            outs.append(p.decision_function(x[250:]))
            assert torch.get_num_threads() == threads  # restored after fit and inference
        np.testing.assert_array_equal(outs[0], outs[1])
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("multi_label", [False, True])
def test_probes_of_several_seeds_trained_together_equal_separate_fits(multi_label: bool) -> None:
    from avexlab.evaluate.probe import fit_linear_probes

    rng = np.random.default_rng(3)
    x = rng.normal(size=(90, 12)).astype(np.float32)
    xv = rng.normal(size=(30, 12)).astype(np.float32)
    if multi_label:
        y, yv = (rng.random((90, 4)) < 0.3).astype(np.float32), (rng.random((30, 4)) < 0.3).astype(np.float32)
    else:
        y, yv = rng.integers(0, 3, 90), rng.integers(0, 3, 30)
        x[np.arange(90), y] += 2.0  # something to learn
    kw = dict(epochs=6, standardize=True, min_steps=20, multi_label=multi_label)
    together = fit_linear_probes(x, y, xv, yv, (5, 6, 7), **kw)
    for seed, got in zip((5, 6, 7), together, strict=True):
        alone = LinearProbe(random_state=seed, **kw).fit(x, y, xv, yv)
        assert got.best_epoch_ == alone.best_epoch_ and got.epochs_ == alone.epochs_
        # the same updates; only the batched products sum in another order (float32 rounding), amplified
        # by at most the number of optimiser steps
        steps = alone.epochs_ * -(-90 // 32)
        tol = 8 * np.sqrt(steps * 12) * np.finfo(np.float32).eps * float(np.abs(alone.decision_function(xv)).max())
        np.testing.assert_allclose(got.decision_function(xv), alone.decision_function(xv), rtol=0, atol=tol)
    w = [p.model_.weight.detach().numpy() for p in together]
    assert not np.allclose(w[0], w[1])  # three seeds, three probes
