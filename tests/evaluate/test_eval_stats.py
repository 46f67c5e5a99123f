"""Bootstrap intervals: the weighted metrics equal the unweighted ones at unit weights, the resampling is
scipy's (same draws, same interval on known cases), and intervals of evaluated suites are paired and
stratified as documented."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from scipy.stats import bootstrap
from sklearn.metrics import normalized_mutual_info_score

from avexlab.data.schema import COLUMNS, SCHEMA
from avexlab.data.suite import Suite
from avexlab.evaluate.embed import Embeddings
from avexlab.evaluate.metrics import mean_average_precision
from avexlab.evaluate.spec import EvalSpec
from avexlab.evaluate.stats import (
    ITEM_SCHEMA,
    bootstrap_indices,
    cell_intervals,
    effect_interval,
    weighted_map,
    weighted_nmi,
)
from avexlab.evaluate.suites import evaluate_suite
from avexlab.evaluate.tables import paper_table

EPS = np.finfo(np.float64).eps


@pytest.mark.parametrize("ties", [False, True])
def test_weighted_map_at_unit_weights_is_the_papers_map(ties: bool) -> None:
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(60, 7))
    if ties:
        scores = np.round(scores, 1)  # many tied scores: sklearn's thresholds group them
    targets = rng.random((60, 7)) < 0.2
    targets[:, 6] = False  # a class without positives counts 0
    got = weighted_map(scores, targets, np.ones((1, 60)))[0]
    assert got == pytest.approx(mean_average_precision(scores, targets), abs=64 * EPS)
    # integer weights are duplicated items
    w = rng.integers(0, 3, size=60)
    keep = np.repeat(np.arange(60), w)
    dup = mean_average_precision(scores[keep], targets[keep])
    assert weighted_map(scores, targets, w[None].astype(float))[0] == pytest.approx(dup, abs=64 * EPS)


def test_weighted_nmi_matches_sklearn_including_limit_cases() -> None:
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 80)
    clusters = (labels + (rng.random(80) < 0.3) * rng.integers(0, 4, 80)) % 5
    w = rng.integers(0, 3, size=80)
    keep = np.repeat(np.arange(80), w)
    got = weighted_nmi(labels, clusters, np.stack([np.ones(80), w]))
    assert got[0] == pytest.approx(normalized_mutual_info_score(labels, clusters), abs=1e-12)
    assert got[1] == pytest.approx(normalized_mutual_info_score(labels[keep], clusters[keep]), abs=1e-12)
    one = np.zeros(10, dtype=int)
    assert weighted_nmi(one, one, np.ones((1, 10)))[0] == normalized_mutual_info_score(one, one) == 1.0
    assert weighted_nmi(one, np.arange(10), np.ones((1, 10)))[0] == pytest.approx(
        normalized_mutual_info_score(one, np.arange(10)), abs=1e-12
    )


def test_the_interval_of_a_mean_is_scipys_percentile_bootstrap() -> None:
    x = np.random.default_rng(2).random(57) < 0.6
    est, lo, hi = bootstrap_indices([57], lambda c: (c[0] @ x) / c[0].sum(axis=1), n_resamples=999, seed=3)
    ref = bootstrap(
        (x.astype(float),),
        np.mean,
        n_resamples=999,
        batch=200,
        method="percentile",
        random_state=np.random.default_rng(3),
    ).confidence_interval
    assert est == pytest.approx(x.mean())
    assert (lo, hi) == (pytest.approx(ref.low, abs=1e-12), pytest.approx(ref.high, abs=1e-12))


def test_strata_are_resampled_independently_like_scipys_multi_sample_bootstrap() -> None:
    rng = np.random.default_rng(4)
    a, b = rng.normal(size=30), rng.normal(1.0, size=45)
    est, lo, hi = bootstrap_indices(
        [30, 45], lambda c: 0.5 * (c[0] @ a / c[0].sum(1) + c[1] @ b / c[1].sum(1)), n_resamples=999, seed=5
    )
    ref = bootstrap(
        (a, b),
        lambda u, v, axis=-1: 0.5 * (u.mean(axis=axis) + v.mean(axis=axis)),
        n_resamples=999,
        batch=200,  # scipy draws per batch: the same batches give the same draws
        method="percentile",
        random_state=np.random.default_rng(5),
    ).confidence_interval
    assert est == pytest.approx(0.5 * (a.mean() + b.mean()))
    assert (lo, hi) == (pytest.approx(ref.low, abs=1e-12), pytest.approx(ref.high, abs=1e-12))
    # a stratum of one element (one seed) is held fixed, not an error
    assert bootstrap_indices([1], lambda c: c[0].sum(1), n_resamples=99) == (1.0, 1.0, 1.0)


def _manifest(dataset: str, n: int, classes: int, seed: int) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    split = np.array(["train"] * (n // 2) + ["val"] * (n // 4) + ["test"] * (n - n // 2 - n // 4))
    rng.shuffle(split)
    rows = []
    for i in range(n):
        r = {c: None for c in COLUMNS}
        r.update(clip_id=f"{dataset}-{i}", path=f"{dataset}-{i}.wav", dataset=dataset, split=str(split[i]),
                 domain="focal", labels=[f"c{i % classes}"])  # fmt: skip
        rows.append(r)
    return pl.DataFrame(rows, schema=SCHEMA)


def _emb(manifests: list[pl.DataFrame], noise: float, seed: int, name: str) -> Embeddings:
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(99).normal(scale=2.0, size=(8, 6))
    ids, xs = [], []
    for df in manifests:
        for cid, (lab,) in zip(df["clip_id"], df["labels"], strict=True):
            ids.append(cid)
            xs.append(centres[int(lab[1:])] + noise * rng.normal(size=6))
    return Embeddings(ids, {0: np.asarray(xs, np.float32)}, None, {"encoder": name, "checkpoint": name})


def _evaluate(noise: float, seed: int, name: str, spec: EvalSpec) -> tuple[pl.DataFrame, pl.DataFrame]:
    ms = [_manifest("a", 120, 4, 0), _manifest("b", 80, 3, 1)]
    suite = Suite("syn-beans-clf", "classification", False, {"a": ms[0], "b": ms[1]})
    items: list[pl.DataFrame] = []
    res = evaluate_suite(_emb(ms, noise, seed, name), suite, spec, items=items)
    it = pl.concat(items).with_columns(pl.lit(0, pl.Int64).alias("train_seed"))
    return res, it


def test_items_reproduce_the_results_and_intervals_cover_them() -> None:
    spec = EvalSpec(probe_epochs=3, probe_recipe="paper", probe_seeds=(1, 2))
    res, items = _evaluate(1.5, 0, "enc", spec)
    assert items.schema == pl.Schema(ITEM_SCHEMA)
    table = paper_table(res)
    cells = cell_intervals(items, n_resamples=300)
    got = {r["column"]: r for r in cells.iter_rows(named=True)}
    # the estimate at unit weights is the paper-shaped table's value (mean over datasets and probe seeds)
    for col in ("BEANS clf probe", "BEANS clf R-auc"):
        assert got[col]["estimate"] == pytest.approx(table[col][0], abs=1e-9)
        assert got[col]["ci_low"] <= got[col]["estimate"] <= got[col]["ci_high"]
        assert got[col]["n_items"] == 30 + 20  # the test clips of both datasets
    assert got["BEANS clf probe"]["n_probe_seeds"] == 2


def test_a_paired_difference_is_tighter_than_the_two_intervals() -> None:
    """Two encoders that share most of their errors (the same clips are hard for both): the interval of
    their difference is much narrower than either encoder's own, and it excludes zero."""
    spec = EvalSpec(probe_epochs=3, probe_recipe="paper", probe_seeds=(1,))
    _, good = _evaluate(1.6, 0, "good", spec)
    _, bad = _evaluate(1.9, 0, "bad", spec)  # same noise draw, scaled: paired errors
    items = pl.concat([good, bad])
    diff = effect_interval(
        items, [(1.0, "good", "BEANS clf R-auc"), (-1.0, "bad", "BEANS clf R-auc")], n_resamples=400
    )
    own = effect_interval(items, [(1.0, "good", "BEANS clf R-auc")], n_resamples=400)
    assert diff.estimate > 0 and diff.ci_low > 0
    assert diff.ci_high - diff.ci_low < 0.5 * (own.ci_high - own.ci_low)
