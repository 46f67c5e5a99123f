"""The paper's findings as verdicts: a constructed table whose effect is clear gives `reproduced`, the
reversed table `contradicted`, and the same table with noise added to its items `inconclusive`; the
command prints one JSON object per finding."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from avexlab.evaluate.stats import ITEM_SCHEMA
from avexlab.experiments.findings import FINDINGS, evaluate_findings, findings_prose

N_ITEMS = 400
TRAIN_SEEDS = (0, 1, 2)
PROBE_SEEDS = (42, 43, 44)


def _items(encoder: str, p_correct: float, rng: np.random.Generator, flip: float = 0.0) -> pl.DataFrame:
    """Accuracy items of one encoder on one classification dataset: the same hard and easy clips for
    every encoder (a shared difficulty), then each seed's own coin flips with probability ``flip``."""
    difficulty = np.random.default_rng(7).random(N_ITEMS)  # shared by all encoders: paired clips
    frames = []
    for ts in TRAIN_SEEDS:
        for ps in PROBE_SEEDS:
            correct = (difficulty < p_correct).astype(float)
            noisy = rng.random(N_ITEMS) < flip
            correct[noisy] = rng.random(int(noisy.sum())) < 0.5
            frames.append(
                pl.DataFrame(
                    {
                        "encoder": encoder,
                        "checkpoint": encoder,
                        "train_seed": ts,
                        "probe_seed": ps,
                        "benchmark": "syn-beans-clf",
                        "dataset": "clf-a",
                        "task_family": "classification",
                        "method": "probe",
                        "metric": "accuracy",
                        "layer": 0,
                        "item": np.arange(N_ITEMS),
                        "value": correct,
                        "label": np.zeros(N_ITEMS, dtype=np.int64),
                    }
                )  # fmt: skip
            )
    out = pl.concat(frames, how="diagonal_relaxed")
    missing = [pl.lit(None, dtype=t).alias(k) for k, t in ITEM_SCHEMA.items() if k not in out.columns]
    return out.with_columns(missing).select(list(ITEM_SCHEMA)).cast(ITEM_SCHEMA)


def _tables(p_bio: float, p_general: float, flip: float = 0.0) -> tuple[pl.DataFrame, pl.DataFrame]:
    rng = np.random.default_rng(0)
    items = pl.concat(
        [
            _items("efficientnet-bio-sl", p_bio, rng, flip),
            _items("efficientnet-general-sl", p_general, rng, flip),
        ],
        how="diagonal_relaxed",
    ).select(list(ITEM_SCHEMA))
    results = pl.DataFrame(
        {
            "encoder": ["efficientnet-bio-sl", "efficientnet-general-sl"],
            "architecture": ["efficientnet"] * 2,
            "mix": ["bio", "general"],
            "paradigm": ["sl", "sl"],
        }
    )
    return results, items


def _verdict(table: pl.DataFrame, key: str) -> dict:
    return table.filter(pl.col("finding") == key).row(0, named=True)


def test_a_clear_effect_is_reproduced_its_reverse_contradicted_and_noise_makes_it_inconclusive() -> None:
    results, items = _tables(0.8, 0.6)
    clear = _verdict(evaluate_findings(results, items, n_resamples=500), "bio_beats_general")
    assert clear["verdict"] == "reproduced" and clear["n_pairs"] == 1
    assert clear["effect"] == pytest.approx(0.2, abs=0.01) and clear["ci_low"] > 0.1

    reverse = _verdict(evaluate_findings(*_tables(0.6, 0.8), n_resamples=500), "bio_beats_general")
    assert reverse["verdict"] == "contradicted" and reverse["ci_high"] < 0

    # the same cells, their items drowned in per-seed noise: the interval now straddles 0
    noisy = _verdict(evaluate_findings(*_tables(0.8, 0.6, flip=0.95), n_resamples=500), "bio_beats_general")
    assert noisy["verdict"] == "inconclusive" and noisy["ci_low"] < 0 < noisy["ci_high"]

    # findings without a pair of cells in the table say so instead of inventing a verdict
    table = evaluate_findings(results, items, n_resamples=200)
    assert set(table["finding"]) == {f.key for f in FINDINGS}
    assert _verdict(table, "slssl_beats_sl")["verdict"] == "not measured"
    prose = findings_prose(table)
    assert "**reproduced** on this grid" in prose and "not measured" in prose


def test_a_non_inferiority_finding_uses_its_margin() -> None:
    # all vs bio, 'all >= bio' with margin .01: a difference of -.005 is within the margin
    results, items = _tables(0.7, 0.7)
    items = items.with_columns(
        pl.when(pl.col("encoder") == "efficientnet-bio-sl")
        .then(pl.lit("efficientnet-all-sl"))
        .otherwise(pl.lit("efficientnet-bio-sl"))
        .alias("encoder")
    )
    results = results.with_columns(
        pl.Series("encoder", ["efficientnet-all-sl", "efficientnet-bio-sl"]), pl.Series("mix", ["all", "bio"])
    )
    got = _verdict(evaluate_findings(results, items, n_resamples=500), "all_not_below_bio")
    assert got["effect"] == pytest.approx(0.0, abs=1e-12)
    assert got["verdict"] == "reproduced" and got["ci_low"] > -0.01  # equal cells: not worse by .01
    assert (
        _verdict(evaluate_findings(results, items, n_resamples=500), "all_beats_bio")["verdict"]
        == "inconclusive"
    )


def test_the_findings_command_prints_one_json_object_per_finding(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from avexlab.cli import app

    results, items = _tables(0.8, 0.6)
    # a results table needs the tidy columns: give the two cells one row each
    tidy = results.with_columns(
        pl.lit("c").alias("checkpoint"), pl.lit("syn-beans-clf").alias("benchmark"), pl.lit("clf-a").alias("dataset"),
        pl.lit("classification").alias("task_family"), pl.lit("focal").alias("domain"), pl.lit("probe").alias("method"),
        pl.lit("accuracy").alias("metric"), pl.lit(0.5).alias("value"), pl.lit(N_ITEMS).alias("n"),
        pl.lit(42).alias("probe_seed"),
    )  # fmt: skip
    tidy.write_parquet(tmp_path / "results.parquet")
    items.write_parquet(tmp_path / "items.parquet")
    out = CliRunner().invoke(
        app, ["findings", str(tmp_path / "results.parquet"), "--json", "--resamples", "300"]
    )
    assert out.exit_code == 0, out.output
    rows = [json.loads(line) for line in out.output.splitlines() if line.startswith("{")]
    assert [r["finding"] for r in rows] == [f.key for f in FINDINGS]
    assert all({"finding", "verdict", "effect", "ci_low", "ci_high", "n_pairs"} <= set(r) for r in rows)
    assert next(r for r in rows if r["finding"] == "bio_beats_general")["verdict"] == "reproduced"
    (tmp_path / "items.parquet").unlink()
    out = CliRunner().invoke(app, ["findings", str(tmp_path / "results.parquet")])
    assert out.exit_code == 2 and "items.parquet" in out.output
