"""Shift sweeps -> results with knob columns and per-knob gaps; the stratified per-split cap of
evaluate_suite (max_clips_per_split)."""

from __future__ import annotations

import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from tolerance import assert_close_f32, f64_tol

from avexlab.data.schema import COLUMNS, SCHEMA
from avexlab.data.suite import Suite
from avexlab.errors import ConfigError, EvaluationError
from avexlab.evaluate.embed import Embeddings
from avexlab.evaluate.spec import EvalSpec
from avexlab.evaluate.suites import evaluate_suite, stratified_subsample
from avexlab.evaluate.sweeps import SWEEP_SCHEMA, evaluate_shift_sweep, sweep_ood_report
from avexlab.evaluate.tables import ood_report


@dataclass
class ToySweep:
    knob: str
    values: tuple[float, ...]
    suites: dict[float, Suite] = field(default_factory=dict)


def _manifest(dataset: str, split_sizes: dict[str, int], labels_of, domain: str = "focal", tag: str = ""):
    rows = []
    for split, n in split_sizes.items():
        for i in range(n):
            r = {c: None for c in COLUMNS}
            r.update(
                clip_id=f"{dataset}-{split}-{i}",
                path=f"{dataset}-{split}-{i}{tag}.wav",
                dataset=dataset,
                split=split,
                domain=domain,
                labels=labels_of(i),
            )
            rows.append(r)
    return pl.DataFrame(rows, schema=SCHEMA)


def _embeddings(manifests, d: int = 8, seed: int = 0, encoder: str = "toy", shift: float = 0.0) -> Embeddings:
    """Class-clustered embeddings; ``shift`` adds noise (a harder test set)."""
    rng = np.random.default_rng(seed)
    centres = {}
    ids, xs = [], []
    for df in manifests:
        for cid, labs in zip(df["clip_id"], df["labels"], strict=True):
            v = rng.normal(size=d) * (1.0 + shift)
            for lab in labs:
                centres.setdefault(
                    lab, np.random.default_rng(zlib.crc32(lab.encode())).normal(scale=3.0, size=d)
                )
                v = v + centres[lab]
            ids.append(cid)
            xs.append(v)
    return Embeddings(
        ids, {0: np.asarray(xs, dtype=np.float32)}, None, {"encoder": encoder, "checkpoint": "c"}
    )


# ------------------------------------------------------------------------------- stratified_subsample
SIZES = {"train": 90, "val": 30, "test": 30}


def _skewed(i: int) -> list[str]:
    # 3 classes at 60 / 30 / 10 % of each split
    k = i % 10
    return ["a"] if k < 6 else ["b"] if k < 9 else ["c"]


def test_subsample_caps_each_split_of_each_dataset_and_keeps_small_splits_whole():
    df = pl.concat(
        [_manifest("d1", SIZES, _skewed), _manifest("d2", {"train": 12, "val": 5, "test": 5}, _skewed)]
    )
    sub = stratified_subsample(df, 20, seed=0)
    counts = dict(Counter(zip(sub["dataset"], sub["split"], strict=True)))
    assert counts == {
        ("d1", "train"): 20,
        ("d1", "val"): 20,
        ("d1", "test"): 20,
        ("d2", "train"): 12,
        ("d2", "val"): 5,
        ("d2", "test"): 5,
    }
    # rows are a subset of the input, in the input's order
    pos = {cid: i for i, cid in enumerate(df["clip_id"])}
    got = [pos[c] for c in sub["clip_id"]]
    assert got == sorted(got) and len(set(got)) == len(got)


def test_subsample_keeps_label_proportions_within_one_clip():
    df = _manifest("d1", SIZES, _skewed)
    for cap in (10, 17, 25):
        sub = stratified_subsample(df, cap, seed=3).filter(pl.col("split") == "train")
        got = Counter(sub["labels"].list.first())
        for lab, share in {"a": 0.6, "b": 0.3, "c": 0.1}.items():
            assert abs(got[lab] - share * cap) <= 1.0, (cap, lab, got)


def test_subsample_is_deterministic_by_seed_and_ignores_row_order_and_paths():
    df = _manifest("d1", SIZES, _skewed)
    a = stratified_subsample(df, 20, seed=5)["clip_id"].to_list()
    assert stratified_subsample(df, 20, seed=5)["clip_id"].to_list() == a
    assert stratified_subsample(df, 20, seed=6)["clip_id"].to_list() != a
    # the same clips from a reversed manifest whose audio was rendered differently (another path)
    other = _manifest("d1", SIZES, _skewed, tag="?snr_db=-10").reverse()
    assert sorted(stratified_subsample(other, 20, seed=5)["clip_id"].to_list()) == sorted(a)


def test_subsample_of_multi_label_and_unlabelled_rows_keeps_every_frequent_label_set():
    sets = [[], ["x"], ["x", "y"], ["y"]]
    df = _manifest("det", {"train": 80, "val": 8, "test": 8}, lambda i: sets[i % 4])
    sub = stratified_subsample(df, 12, seed=0).filter(pl.col("split") == "train")
    got = Counter("|".join(sorted(r)) for r in sub["labels"].to_list())
    assert got == {"": 3, "x": 3, "x|y": 3, "y": 3}


def test_subsample_rejects_a_cap_below_one():
    with pytest.raises(EvaluationError, match="max_clips_per_split"):
        stratified_subsample(_manifest("d1", SIZES, _skewed), 0)


# ---------------------------------------------------------------------- evaluate_suite(max_clips_per_split)
def test_evaluate_suite_cap_none_is_the_default_and_a_cap_scores_the_subsample():
    df = _manifest("d1", SIZES, _skewed)
    suite = Suite("syn-beans-clf", "classification", False, {"d1": df})
    emb = _embeddings([df])
    full = evaluate_suite(emb, suite, EvalSpec(probe_epochs=3))
    assert full.equals(evaluate_suite(emb, suite, EvalSpec(probe_epochs=3, max_clips_per_split=None)))
    assert set(full["n"].to_list()) == {30}

    capped = evaluate_suite(emb, suite, EvalSpec(probe_epochs=3, max_clips_per_split=12))
    # n counts the 12 test clips drawn (retrieval: those with another clip of their class)
    assert set(capped.filter(pl.col("method") != "retrieval")["n"].to_list()) == {12}
    assert capped.filter(pl.col("method") == "retrieval")["n"].max() <= 12
    sub = stratified_subsample(df, 12, seed=42)
    direct = evaluate_suite(
        emb, Suite("syn-beans-clf", "classification", False, {"d1": sub}), EvalSpec(probe_epochs=3)
    )
    assert capped.equals(direct)
    assert not capped.equals(full)


# ---------------------------------------------------------------------------------- evaluate_shift_sweep
def _toy_sweep(values=(0.0, 1.0, 3.0)) -> tuple[ToySweep, Embeddings]:
    sweep = ToySweep("snr_db", tuple(values))
    frames = []
    embs = []
    for k, v in enumerate(values):
        df = _manifest(f"det-{k}", {"train": 40, "val": 12, "test": 24}, _skewed, domain="soundscape")
        sweep.suites[v] = Suite(f"syn-shift-snr_db={v:g}", "detection", True, {"det": df})
        frames.append(df)
        embs.append(_embeddings([df], seed=k, shift=v))
    emb = Embeddings(
        [c for e in embs for c in e.clip_ids],
        {0: np.concatenate([e.array(0) for e in embs])},
        None,
        {"encoder": "toy", "checkpoint": "c"},
    )
    return sweep, emb


def test_shift_sweep_rows_are_evaluate_suite_rows_with_knob_columns():
    sweep, emb = _toy_sweep()
    res = evaluate_shift_sweep(emb, sweep, EvalSpec(probe_epochs=3, methods=("probe", "retrieval")))
    assert res.schema == pl.Schema(SWEEP_SCHEMA)
    assert res["knob"].unique().to_list() == ["snr_db"]
    assert res["knob_value"].unique(maintain_order=True).to_list() == [0.0, 1.0, 3.0]
    for v in sweep.values:
        direct = evaluate_suite(
            emb, sweep.suites[v], EvalSpec(probe_epochs=3, methods=("probe", "retrieval"))
        )
        got = res.filter(pl.col("knob_value") == v).drop("knob", "knob_value")
        assert got.equals(direct)
    # noisier embeddings at larger knob values score lower
    auc = res.filter(pl.col("metric") == "roc_auc").sort("knob_value")["value"].to_list()
    assert auc[0] > auc[-1]


def test_sweep_ood_report_gives_the_gap_to_focal_at_each_knob_value():
    sweep, emb = _toy_sweep()
    focal_df = _manifest("clf", SIZES, _skewed)
    focal = evaluate_suite(
        _embeddings([focal_df], seed=9),
        Suite("syn-beans-clf", "classification", False, {"clf": focal_df}),
        EvalSpec(probe_epochs=3),
    )
    res = evaluate_shift_sweep(emb, sweep, EvalSpec(probe_epochs=3))
    rep = sweep_ood_report(focal, res)
    assert {"knob", "knob_value", "focal", "soundscape", "gap"} <= set(rep.columns)
    roc = rep.filter(pl.col("metric") == "roc_auc").sort("knob_value")
    assert roc["knob_value"].to_list() == [0.0, 1.0, 3.0]
    values = focal.filter(pl.col("metric") == "roc_auc")["value"]
    f = values.mean()
    s = res.filter(pl.col("metric") == "roc_auc").sort("knob_value")["value"].to_list()
    # the focal mean of n values (n sums and a division, perhaps in another order), then the difference
    tol = f64_tol(f, ops=len(values) + 1, scale=values.abs().mean())
    assert_close_f32(roc["focal"].to_numpy(), [f] * 3, tol.expand(3), what="focal mean")
    gap_tol = tol.expand(3) + f64_tol(np.asarray(s) - f, ops=1, scale=np.abs(s) + abs(f))
    assert_close_f32(roc["gap"].to_numpy(), np.asarray(s) - f, gap_tol, what="gap")
    # ood_report alone finds no gap here: the sweep rows are soundscape only (hence sweep_ood_report)
    assert ood_report(res).height == 0  # soundscape only: no focal rows, no gap


def test_shift_sweep_rejects_a_sweep_without_suites():
    sweep, emb = _toy_sweep()
    with pytest.raises(ConfigError, match="no values"):
        evaluate_shift_sweep(emb, ToySweep("snr_db", ()))
    with pytest.raises(ConfigError, match="none for"):
        evaluate_shift_sweep(emb, ToySweep("snr_db", (0.0, 9.0), {0.0: sweep.suites[0.0]}))


def test_real_sweep_with_a_real_encoder_keeps_the_same_clips_and_reuses_the_cache(tmp_path: Path):
    from avexlab.synth import render_shift_sweep

    sweep = render_shift_sweep("smoke", 0, "snr_db", [-10.0, 20.0])
    spec = EvalSpec(probe_epochs=2, probe_seeds=(1,), cache_dir=tmp_path / "cache", max_clips_per_split=6)
    res = evaluate_shift_sweep("logmel:tiny", sweep, spec)
    assert set(res["knob_value"].to_list()) == {-10.0, 20.0}
    assert res.filter(pl.col("method") == "probe")["n"].unique().to_list() == [6]
    # the same clips at every value, rendered differently (their paths carry the knob)
    picks = [
        stratified_subsample(sweep.suites[v].manifests["syn-det-forest"], 6, seed=1) for v in sweep.values
    ]
    assert picks[0]["clip_id"].to_list() == picks[1]["clip_id"].to_list()
    assert picks[0]["path"].to_list() != picks[1]["path"].to_list()
    cached = sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert cached, "no embedding cache written"
    again = evaluate_shift_sweep("logmel:tiny", sweep, spec)
    assert again.equals(res)
    assert sorted(p.name for p in (tmp_path / "cache").rglob("*") if p.is_file()) == cached
