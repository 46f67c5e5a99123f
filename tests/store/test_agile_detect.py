"""Inference over a store and export: detections against brute force, merged events, parquet, and Raven
selection tables read back identically by avexlab's Raven adapter and by crowsetta."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from agile_archive import truth  # noqa: E402

from avexlab.agile.classifier import AgileClassifier, training_data  # noqa: E402
from avexlab.agile.detect import (  # noqa: E402
    detect,
    read_raven_detections,
    score_store,
    write_detections,
    write_raven,
)
from avexlab.agile.labels import BACKGROUND, LabelTable  # noqa: E402
from avexlab.agile.store import EmbeddingStore, StoreError  # noqa: E402


@pytest.fixture
def clf(built_store: EmbeddingStore, tmp_path: Path) -> AgileClassifier:
    tr = truth(built_store.windows)
    table = LabelTable(tmp_path / "l.jsonl")
    for kind in ("chirp", "tone"):
        table.add(
            built_store,
            tr.filter(pl.col("positives").list.contains(kind))["row"].to_list()[:4],
            kind,
            annotator="a",
        )
    table.add(
        built_store,
        tr.filter(pl.col("touched").list.len() == 0)["row"].to_list()[:12],
        BACKGROUND,
        annotator="a",
    )
    d = training_data(built_store, table)
    return AgileClassifier().fit(
        d.X, d.Y, d.classes, stats=built_store.stats(), encoder_hash=built_store.encoder_meta["hash"]
    )


def _merge(rows: list[tuple[str, float, float, float]]) -> list[tuple[str, float, float, float]]:
    """Brute-force merge of (path, start, end, score) windows of one class, sorted by path and start."""
    out: list[list] = []
    for p, a, b, s in sorted(rows):
        if out and out[-1][0] == p and a <= out[-1][2]:
            out[-1][2] = max(out[-1][2], b)
            out[-1][3] = max(out[-1][3], s)
        else:
            out.append([p, a, b, s])
    return [tuple(x) for x in out]  # type: ignore[misc]


def test_detections_are_the_windows_above_each_class_threshold(
    built_store: EmbeddingStore, clf: AgileClassifier
) -> None:
    P = score_store(built_store, clf, chunk_rows=13)
    # chunked (13 rows) vs all at once: the same function, matrix products of other shapes (float32 ulps)
    whole = clf.predict_proba(built_store.vectors(np.arange(len(built_store))))
    np.testing.assert_allclose(P, whole, rtol=0, atol=4 * np.finfo(np.float32).eps)
    clf.thresholds = {"chirp": 0.6, "tone": 0.3}
    det = detect(built_store, clf, probs=P)
    for j, c in enumerate(clf.classes):
        expect = np.flatnonzero(P[:, j] >= clf.thresholds[c])
        got = det.filter(pl.col("label") == c)
        assert sorted(got["row"].to_list()) == expect.tolist()
        assert (got["score"] >= clf.thresholds[c]).all() and (got["threshold"] == clf.thresholds[c]).all()
    merged = detect(built_store, clf, probs=P, merge=True)
    w = built_store.windows
    for j, c in enumerate(clf.classes):
        hit = np.flatnonzero(P[:, j] >= clf.thresholds[c])
        rows = [(w["path"][int(r)], w["start_s"][int(r)], w["end_s"][int(r)], float(P[r, j])) for r in hit]
        got = (
            merged.filter(pl.col("label") == c)
            .select("path", "start_s", "end_s", "score")
            .sort("path", "start_s")
        )
        assert [tuple(r) for r in got.iter_rows()] == _merge(rows)
    assert merged.height < det.height  # calls span several overlapping windows
    # the calls themselves are found: every chirp lies in some merged chirp event
    tr = truth(w).join(w.select("row", "path", "start_s", "end_s"), on="row")
    chirps = tr.filter(pl.col("positives").list.contains("chirp"))
    ev = merged.filter(pl.col("label") == "chirp")
    found = [
        ev.filter((pl.col("path") == p) & (pl.col("start_s") <= a) & (pl.col("end_s") >= b)).height > 0
        for p, a, b in chirps.select("path", "start_s", "end_s").iter_rows()
    ]
    assert np.mean(found) >= 0.8, found


def test_parquet_and_raven_tables_read_back_identically(
    built_store: EmbeddingStore, clf: AgileClassifier, tmp_path: Path, archive: Path
) -> None:
    import crowsetta

    from avexlab.data.sources.raven import prepare_raven

    det = detect(built_store, clf, merge=True)
    assert det.height > 0
    back = pl.read_parquet(write_detections(det, tmp_path / "det.parquet"))
    assert back.equals(det)
    files = write_raven(det, tmp_path / "raven", store=built_store)
    assert len(files) == det["path"].n_unique()
    assert (tmp_path / "raven" / "night" / "owl.selections.txt") in files
    for f in files:
        rel = f.relative_to(tmp_path / "raven").as_posix().removesuffix(".selections.txt")
        path = next(p for p in det["path"].unique().to_list() if p.rsplit(".", 1)[0] == rel)
        mine = det.filter(pl.col("path") == path).sort("start_s", "label")
        ours = read_raven_detections(f)
        assert ours["start_s"].to_list() == mine["start_s"].to_list()
        assert ours["end_s"].to_list() == mine["end_s"].to_list()
        assert ours["label"].to_list() == mine["label"].to_list()
        assert ours["score"].to_list() == pytest.approx(mine["score"].to_list(), abs=5e-7)  # 6 decimals
        assert set(ours["file"].to_list()) == {Path(path).name}
        # avexlab's Raven adapter makes a manifest of them (one clip per selection, the file found by name)
        manifest, events = prepare_raven(f, dataset="det", audio_root=archive, label_column="Annotation")
        assert manifest["path"].unique().to_list() == [path]
        assert manifest["start_s"].to_list() == mine["start_s"].to_list()
        assert manifest["end_s"].to_list() == mine["end_s"].to_list()
        assert events["label"].to_list() == mine["label"].to_list()
        # crowsetta (pandas' reader) reads the same times and labels
        raven = crowsetta.formats.bbox.Raven.from_file(f, annot_col="Annotation")
        assert raven.df["begin_time_s"].tolist() == mine["start_s"].to_list()
        assert raven.df["end_time_s"].tolist() == mine["end_s"].to_list()
        assert raven.df["annotation"].tolist() == mine["label"].to_list()
        assert set(raven.df["high_freq_hz"].tolist()) == {built_store.sample_rate / 2}
        bboxes = raven.to_bbox()
        assert [b.onset for b in bboxes] == mine["start_s"].to_list()


def test_another_encoders_classifier_is_refused(built_store: EmbeddingStore, clf: AgileClassifier) -> None:
    clf.encoder_hash = "0" * 64
    with pytest.raises(StoreError, match="trained on"):
        score_store(built_store, clf)
    with pytest.raises(StoreError, match="parquet"):
        write_detections(pl.DataFrame(), Path("x.csv"))
