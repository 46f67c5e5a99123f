"""Suites -> tidy results table, the paper-shaped pivot, the OOD report and the results files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf
from tolerance import assert_close_f32, f64_tol

from avexlab.data.schema import COLUMNS, SCHEMA
from avexlab.data.suite import Suite
from avexlab.errors import DataNotFoundError, EvaluationError
from avexlab.evaluate.clustering import clustering_scores
from avexlab.evaluate.embed import Embeddings
from avexlab.evaluate.report import load_results, save_results, write_html_report
from avexlab.evaluate.retrieval import retrieval_scores
from avexlab.evaluate.spec import EvalSpec
from avexlab.evaluate.suites import evaluate_suite
from avexlab.evaluate.tables import RESULT_SCHEMA, ood_report, paper_table


def _rows(dataset, n, labels_of, domain="focal", seed=0):
    rng = np.random.default_rng(seed)
    splits = np.array(["train"] * (n // 2) + ["val"] * (n // 4) + ["test"] * (n - n // 2 - n // 4))
    rng.shuffle(splits)
    out = []
    for i in range(n):
        r = {c: None for c in COLUMNS}
        r.update(
            clip_id=f"{dataset}-{i}",
            path=f"{dataset}-{i}.wav",
            dataset=dataset,
            split=str(splits[i]),
            domain=domain,
            labels=labels_of(i),
        )
        out.append(r)
    return pl.DataFrame(out, schema=SCHEMA)


def _embeddings(manifests, d=8, seed=0, encoder="toy"):
    rng = np.random.default_rng(seed)
    ids, xs = [], []
    centres = {}
    for df in manifests:
        for cid, labs in zip(df["clip_id"], df["labels"], strict=True):
            v = rng.normal(size=d)
            for lab in labs:
                centres.setdefault(lab, rng.normal(scale=3.0, size=d))
                v = v + centres[lab]
            ids.append(cid)
            xs.append(v)
    return Embeddings(
        ids, {0: np.asarray(xs, dtype=np.float32)}, None, {"encoder": encoder, "checkpoint": "c0"}
    )


def test_single_label_suite_rows_match_direct_metric_calls():
    df = _rows("birds", 80, lambda i: [f"sp{i % 3}"])
    suite = Suite("syn-beans-clf", "classification", False, {"birds": df})
    emb = _embeddings([df])
    res = evaluate_suite(emb, suite, EvalSpec(probe_epochs=5))
    assert res.schema == pl.Schema(RESULT_SCHEMA)
    got = {(r["method"], r["metric"]): r for r in res.iter_rows(named=True)}
    assert {("probe", "accuracy"), ("probe", "map"), ("retrieval", "roc_auc"), ("clustering", "nmi")} <= set(
        got
    )
    test = df["split"] == "test"
    x_te = emb.array()[test.to_numpy()]
    labels_te = df.filter(test)["labels"].to_list()
    # the suite's rows are these very calls on the same arrays: equal bit for bit
    assert got[("retrieval", "roc_auc")]["value"] == retrieval_scores(x_te, labels_te)["roc_auc"]
    assert got[("clustering", "nmi")]["value"] == clustering_scores(x_te, [r[0] for r in labels_te])["nmi"]
    assert got[("probe", "accuracy")]["n"] == int(test.sum())
    assert set(res["domain"]) == {"focal"} and set(res["encoder"]) == {"toy"}


def test_multi_label_suite_uses_map_and_skips_clustering():
    df = _rows(
        "scape",
        80,
        lambda i: [] if i % 4 == 0 else [f"sp{i % 3}"] + (["sp9"] if i % 5 == 0 else []),
        domain="soundscape",
    )
    suite = Suite("syn-beans-det", "detection", True, {"scape": df})
    res = evaluate_suite(_embeddings([df]), suite, EvalSpec(probe_epochs=3))
    assert "clustering" not in set(res["method"])
    assert {"map", "map_present"} <= set(res.filter(pl.col("method") == "probe")["metric"])


def test_cross_recording_retrieval_leaves_the_querys_recording_out():
    """Windows of 8 recordings (the path column): the ``*_cross_recording`` rows equal retrieval with
    those groups; a focal set of one file per clip scores the same under both; individual ID has none."""
    df = _rows("scape", 96, lambda i: [f"sp{(i // 12) % 3}"], domain="soundscape")
    df = df.with_columns(
        (pl.lit("rec") + (pl.int_range(pl.len()) // 12).cast(pl.String) + ".wav").alias("path")
    )
    # each recording adds its own strong offset (its background): neighbours come from the same recording
    rec_offset = np.random.default_rng(1).normal(scale=6.0, size=(8, 8))[np.arange(96) // 12]
    emb = _embeddings([df])
    emb = Embeddings(emb.clip_ids, {0: emb.array() + rec_offset.astype(np.float32)}, None, emb.meta)
    res = evaluate_suite(
        emb, Suite("syn-birdset", "classification", False, {"scape": df}), EvalSpec(methods=("retrieval",))
    )
    got = dict(zip(res["metric"], res["value"], strict=True))
    test = (df["split"] == "test").to_numpy()
    te = df.filter(pl.Series(test))
    fair = retrieval_scores(emb.array()[test], te["labels"].to_list(), groups=te["path"].to_list())
    assert got["roc_auc_cross_recording"] == fair["roc_auc"]  # the same call: bit for bit
    assert got["precision_at_1_cross_recording"] == fair["precision_at_1"]
    assert got["roc_auc_cross_recording"] != got["roc_auc"]

    focal = _rows("birds", 80, lambda i: [f"sp{i % 3}"])
    res = evaluate_suite(
        _embeddings([focal]),
        Suite("c", "classification", False, {"birds": focal}),
        EvalSpec(methods=("retrieval",)),
    )
    got = dict(zip(res["metric"], res["value"], strict=True))
    assert got["roc_auc_cross_recording"] == got["roc_auc"]
    assert got["precision_at_1_cross_recording"] == got["precision_at_1"]

    ind = _rows("pipit", 60, lambda i: [f"ind{i % 4}"])
    res = evaluate_suite(
        _embeddings([ind]),
        Suite("i", "individual_id", False, {"pipit": ind}),
        EvalSpec(methods=("retrieval",)),
    )
    assert set(res["metric"]) == {"roc_auc", "precision_at_1"}


def test_individual_id_is_train_vs_test():
    df = _rows("pipit", 60, lambda i: [f"ind{i % 4}"])
    suite = Suite("syn-individual", "individual_id", False, {"pipit": df})
    emb = _embeddings([df])
    res = evaluate_suite(emb, suite, EvalSpec(methods=("retrieval",)))
    sel = df["split"].is_in(["train", "test"]).to_numpy()
    sub = df.filter(pl.Series(sel))
    ref = retrieval_scores(
        emb.array()[sel], sub["labels"].to_list(), queries=(sub["split"] == "test").to_numpy()
    )
    row = res.filter(pl.col("metric") == "roc_auc").row(0, named=True)
    assert row["value"] == ref["roc_auc"] and row["n"] == ref["n_queries"]  # the same call: bit for bit


def test_label_space_mismatch_and_missing_manifest_are_clear_errors(tmp_path):
    df = _rows("birds", 40, lambda i: [f"sp{i % 3}"])
    df = df.with_columns(
        pl.when(pl.col("split") == "test")
        .then(pl.lit(["unseen"]))
        .otherwise(pl.col("labels"))
        .alias("labels")
    )
    suite = Suite("s", "classification", False, {"birds": df})
    with pytest.raises(EvaluationError, match="label space"):
        evaluate_suite(_embeddings([df]), suite, EvalSpec(probe_epochs=1, methods=("probe",)))
    with pytest.raises(DataNotFoundError, match="syn-nothing"):
        Suite.from_manifest(tmp_path / "syn-nothing.parquet")
    with pytest.raises(EvaluationError, match="Suite.from_manifest"):
        evaluate_suite(_embeddings([df]), tmp_path / "syn-nothing.parquet")
    with pytest.raises(EvaluationError, match="missing"):
        evaluate_suite(_embeddings([df.head(5)]), suite)


def _results(rows):
    base = {"checkpoint": "c", "benchmark": "b", "dataset": "d", "n": 10, "probe_seed": 42, "layer": 0}
    return pl.DataFrame([{**base, **r} for r in rows], schema=RESULT_SCHEMA)


def test_paper_table_and_ood_report_are_means_and_gaps():
    res = _results(
        [
            {
                "encoder": "A",
                "task_family": "classification",
                "domain": "focal",
                "method": "probe",
                "metric": "accuracy",
                "value": 0.8,
            },
            {
                "encoder": "A",
                "task_family": "classification",
                "domain": "focal",
                "method": "probe",
                "metric": "accuracy",
                "value": 0.6,
                "dataset": "e",
            },
            {
                "encoder": "A",
                "task_family": "classification",
                "domain": "focal",
                "method": "retrieval",
                "metric": "roc_auc",
                "value": 0.9,
            },
            {
                "encoder": "A",
                "task_family": "detection",
                "domain": "soundscape",
                "method": "retrieval",
                "metric": "roc_auc",
                "value": 0.7,
            },
            {
                "encoder": "B",
                "task_family": "repertoire",
                "domain": "focal",
                "method": "clustering",
                "metric": "nmi",
                "value": 0.5,
            },
            # an earlier layer (0 < 5) must not enter the paper table
            {
                "encoder": "A",
                "task_family": "classification",
                "domain": "focal",
                "method": "probe",
                "metric": "accuracy",
                "value": 0.0,
            },
        ]
    )
    res = res.with_columns(pl.when(pl.col("value") == 0.0).then(0).otherwise(5).alias("layer"))
    table = paper_table(res)
    a = table.filter(pl.col("encoder") == "A").row(0, named=True)
    assert_close_f32(a["BEANS clf probe"], 0.7, f64_tol(0.7, ops=3), what="mean of 0.8 and 0.6")
    assert a["BEANS clf R-auc"] == 0.9  # one value, copied
    assert a["BirdSet probe"] is None
    assert table.filter(pl.col("encoder") == "B")["Repertoire C-nmi"][0] == 0.5  # one value, copied
    gaps = ood_report(res)
    row = gaps.filter((pl.col("encoder") == "A") & (pl.col("metric") == "roc_auc")).row(0, named=True)
    assert_close_f32(row["gap"], 0.7 - 0.9, f64_tol(0.2, ops=2, scale=0.7 + 0.9), what="gap")
    assert gaps.filter(pl.col("metric") == "accuracy").height == 0  # only measured on focal data


def test_results_files_replace_same_encoder_rows_and_html(tmp_path):
    base = {"task_family": "classification", "domain": "focal", "method": "probe", "metric": "accuracy"}
    first = _results([{**base, "encoder": "A", "value": 0.5}, {**base, "encoder": "B", "value": 0.4}])
    path = save_results(first, tmp_path / "r.parquet")
    again = _results([{**base, "encoder": "A", "value": 0.9}])
    save_results(again, path)
    back = load_results(path).sort("encoder")
    assert back["value"].to_list() == [0.9, 0.4]
    page = write_html_report(back, tmp_path / "r.html").read_text()
    assert "BEANS clf probe" in page and "0.900" in page
    with pytest.raises(DataNotFoundError):
        load_results(tmp_path / "none.parquet")


def test_end_to_end_with_an_encoder_on_audio_files(tmp_path: Path):
    from avexlab.models import build_encoder

    df = _rows("tones", 24, lambda i: [f"f{i % 2}"])
    sr = 16000
    t = np.arange(int(0.4 * sr)) / sr
    rng = np.random.default_rng(0)
    for i, cid in enumerate(df["clip_id"]):
        f = 500.0 if i % 2 == 0 else 2500.0
        sf.write(
            tmp_path / f"{cid}.wav",
            (0.3 * np.sin(2 * np.pi * f * t) + 0.05 * rng.normal(size=t.size)).astype(np.float32),
            sr,
        )
    suite = Suite("syn-beans-clf", "classification", False, {"tones": df}, root=str(tmp_path))
    res = evaluate_suite(build_encoder("logmel", size="tiny"), suite, EvalSpec(probe_epochs=20))
    by = {(r["method"], r["metric"]): r["value"] for r in res.iter_rows(named=True)}
    assert by[("retrieval", "roc_auc")] > 0.95  # two well-separated tones
    assert by[("clustering", "nmi")] > 0.9
    assert set(res["encoder"]) == {"logmel"}


@pytest.mark.slow
def test_evaluate_encoder_on_a_rendered_world(tmp_path):
    world_mod = pytest.importorskip("avexlab.synth.world")
    world_dir = tmp_path / "world"
    world_mod.render_world("smoke", 0, out=world_dir)
    from avexlab.experiments import evaluate_encoder_on_world

    out = tmp_path / "results.parquet"
    res = evaluate_encoder_on_world(
        "logmel:tiny",
        world_dir,
        EvalSpec(methods=("retrieval",)),
        suites=["syn-beans-clf", "syn-beans-det"],
        out=out,
    )
    assert set(res["benchmark"]) == {"syn-beans-clf", "syn-beans-det"}
    assert set(res["domain"]) == {"focal", "soundscape"}
    assert load_results(out).height == res.height
    assert ood_report(res).filter(pl.col("metric") == "roc_auc").height == 1
    with pytest.raises(DataNotFoundError, match="syn-nope"):
        evaluate_encoder_on_world("logmel:tiny", world_dir, suites=["syn-nope"])


def test_probe_recipe_is_applied_and_recorded():
    from avexlab.evaluate.probe import LinearProbe
    from avexlab.evaluate.spec import PROBE_RECIPES

    df = _rows("birds", 80, lambda i: [f"sp{i % 3}"])
    suite = Suite("syn-beans-clf", "classification", False, {"birds": df})
    emb = _embeddings([df])
    split = df["split"].to_numpy()
    y = np.array([r[0] for r in df["labels"].to_list()])
    x = emb.array()
    for recipe, kw in PROBE_RECIPES.items():
        res = evaluate_suite(emb, suite, EvalSpec(probe_epochs=4, probe_recipe=recipe))
        probe_rows = res.filter(pl.col("method") == "probe")
        assert set(probe_rows["probe_recipe"]) == {recipe}
        assert (
            res.filter(pl.col("method") != "probe")["probe_recipe"].null_count()
            == res.height - probe_rows.height
        )
        direct = LinearProbe(epochs=4, random_state=42, **kw).fit(
            x[split == "train"], y[split == "train"], x[split == "val"], y[split == "val"]
        )
        acc = probe_rows.filter(pl.col("metric") == "accuracy")["value"].item()
        assert acc == direct.score(
            x[split == "test"], y[split == "test"]
        )  # the same fit and data: bit for bit
    with pytest.raises(EvaluationError, match="probe_recipe"):
        evaluate_suite(emb, suite, EvalSpec(probe_recipe="converged"))
