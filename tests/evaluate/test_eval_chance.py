"""Chance levels read off the items are what a content-free encoder really scores: an encoder that gives
every clip the same embedding, evaluated through the whole pipeline (probe, retrieval, k-means), lands
exactly on each column's chance level."""

from __future__ import annotations

import warnings

import numpy as np
import polars as pl
import pytest

from avexlab.data.schema import COLUMNS, SCHEMA
from avexlab.data.suite import Suite
from avexlab.errors import EvaluationError
from avexlab.evaluate.chance import chance_levels
from avexlab.evaluate.embed import Embeddings
from avexlab.evaluate.spec import EvalSpec
from avexlab.evaluate.suites import evaluate_suite
from avexlab.evaluate.tables import ANALYSIS_COLUMNS, paper_table

EPS = np.finfo(np.float64).eps


def _rows(dataset: str, n: int, labels_of, domain: str = "focal") -> pl.DataFrame:
    """``n`` clips, every 4th one a test clip (so each split has the same label mix)."""
    out = []
    for i in range(n):
        r = {c: None for c in COLUMNS}
        r.update(clip_id=f"{dataset}-{i}", path=f"{dataset}-{i}.wav", dataset=dataset,
                 split=("train", "train", "val", "test")[i % 4], domain=domain, labels=labels_of(i))  # fmt: skip
        out.append(r)
    return pl.DataFrame(out, schema=SCHEMA)


# 60% / 30% / 10% of three classes, and 25% / 75% of two
CLF = {
    "a": _rows("a", 80, lambda i: ["c0" if (i // 4) % 10 < 6 else "c1" if (i // 4) % 10 < 9 else "c2"]),
    "b": _rows("b", 48, lambda i: ["c0" if (i // 4) % 4 < 1 else "c1"]),
}
# windows with no label, one or two: class x on 4 of 5 windows, y on a few, z on none
DET = {
    "s": _rows(
        "s",
        80,
        lambda i: [] if (i // 4) % 5 == 0 else ["x"] + (["y"] if (i // 4) % 3 == 0 else []),
        "soundscape",
    )
}


def _evaluate(embed) -> tuple[pl.DataFrame, pl.DataFrame]:  # noqa: ANN001 - (ids) -> [N, D] array
    def emb(manifests: dict[str, pl.DataFrame], name: str = "enc") -> Embeddings:
        ids = [c for df in manifests.values() for c in df["clip_id"]]
        return Embeddings(ids, {0: embed(ids)}, None, {"encoder": name, "checkpoint": name})

    spec = EvalSpec(probe_epochs=3, probe_seeds=(1,))
    items: list[pl.DataFrame] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # k-means of identical points finds one cluster, and says so
        res = pl.concat(
            [
                evaluate_suite(
                    emb(CLF), Suite("syn-beans-clf", "classification", False, CLF), spec, items=items
                ),
                evaluate_suite(emb(DET), Suite("syn-beans-det", "detection", True, DET), spec, items=items),
                evaluate_suite(
                    emb(CLF), Suite("syn-repertoire", "repertoire", False, CLF), spec, items=items
                ),
            ]
        )
    return res, pl.concat(items).with_columns(pl.lit(0, pl.Int64).alias("train_seed"))


@pytest.fixture(scope="module")
def constant() -> tuple[pl.DataFrame, pl.DataFrame]:
    """Results and items of an encoder that embeds every clip as the same vector."""
    return _evaluate(lambda ids: np.ones((len(ids), 6), np.float32))


def test_a_constant_encoder_scores_exactly_the_chance_levels(constant) -> None:  # noqa: ANN001
    res, items = constant
    chance = dict(chance_levels(items).select("column", "chance").iter_rows())
    # by hand, from the test splits: majority-class rates 12/20 and 9/12; prevalences x 16/20, y 5/20
    expected = {
        "BEANS clf probe": (12 / 20 + 9 / 12) / 2,
        "BEANS clf R-auc": 0.5,
        "BEANS det probe": (16 / 20 + 5 / 20) / 2,
        "BEANS det R-auc": 0.5,
        "BEANS det R-auc cross-rec": 0.5,
        "Repertoire R-auc": 0.5,
        "Repertoire C-nmi": 0.0,
    }
    assert chance == pytest.approx(expected, rel=4 * EPS)
    # ... and the constant encoder, probed, ranked and clustered by the real pipeline, scores just that
    table = paper_table(res).row(0, named=True)
    for column in (
        "BEANS clf probe",
        "BEANS clf R-auc",
        "BEANS det probe",
        "Repertoire R-auc",
        "Repertoire C-nmi",
    ):
        assert table[column] == pytest.approx(chance[column], rel=8 * EPS, abs=8 * EPS), column
    # columns follow the order of ANALYSIS_COLUMNS; the rule says how each level was read off
    names = [c[0] for c in ANALYSIS_COLUMNS]
    got = chance_levels(items)
    assert got["column"].to_list() == sorted(got["column"].to_list(), key=names.index)
    assert got.filter(pl.col("column") == "BEANS det probe")["rule"][0].startswith("mean class prevalence")
    assert got.filter(pl.col("column") == "BEANS clf probe")["n_datasets"][0] == 2


def test_an_encoder_that_hears_the_labels_clears_the_chance_levels(constant) -> None:  # noqa: ANN001
    """The levels depend on the test labels only: an informative encoder's items give the same levels,
    and its scores lie above them."""
    centres = np.random.default_rng(0).normal(scale=4.0, size=(3, 6))
    labels = {
        cid: lab
        for df in (*CLF.values(), *DET.values())
        for cid, lab in zip(df["clip_id"], df["labels"], strict=True)
    }

    def informative(ids: list[str]) -> np.ndarray:
        rng = np.random.default_rng(1)
        code = {"c0": 0, "c1": 1, "c2": 2, "x": 0, "y": 1}
        return np.asarray(
            [
                sum((centres[code[lab]] for lab in labels[c]), np.zeros(6)) + 0.3 * rng.normal(size=6)
                for c in ids
            ],
            dtype=np.float32,
        )

    res, items = _evaluate(informative)
    _, const_items = constant
    assert chance_levels(items).equals(chance_levels(const_items))
    chance = dict(chance_levels(items).select("column", "chance").iter_rows())
    table = paper_table(res).row(0, named=True)
    for column in ("BEANS clf probe", "BEANS clf R-auc", "BEANS det probe", "Repertoire C-nmi"):
        assert table[column] > chance[column] + 0.1, column


def test_evaluations_of_different_test_items_or_without_labels_are_refused(constant) -> None:  # noqa: ANN001
    _, items = constant
    # another encoder scored on a subset of the test clips: one chance level cannot hold for both
    subset = items.filter(pl.col("item") < 5).with_columns(pl.lit("capped").alias("encoder"))
    with pytest.raises(EvaluationError, match="per encoder"):
        chance_levels(pl.concat([items, subset]))
    assert chance_levels(subset).height > 0  # alone, it has its own levels
    # the same items with other labels
    relabelled = items.with_columns(pl.lit("other").alias("encoder"), (pl.col("label") + 1).alias("label"))
    with pytest.raises(EvaluationError, match="different item sets"):
        chance_levels(pl.concat([items, relabelled]))
    # items written before accuracy items carried their class
    with pytest.raises(EvaluationError, match="without one"):
        chance_levels(items.with_columns(pl.lit(None, pl.Int64).alias("label")))
    with pytest.raises(EvaluationError, match="no \\['targets'\\]"):
        chance_levels(items.drop("targets"))
