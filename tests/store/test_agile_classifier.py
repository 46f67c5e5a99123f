"""Labels (append-only, who/when, latest wins) and the classifier (one normalisation for training and
inference, explicit background, class weights, persistence, cross-validated scores)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from agile_archive import truth  # noqa: E402

from avexlab.agile.classifier import AgileClassifier, cross_val_logits, training_data  # noqa: E402
from avexlab.agile.labels import BACKGROUND, LabelTable  # noqa: E402
from avexlab.agile.store import EmbeddingStore, StoreError  # noqa: E402

F32 = float(np.finfo(np.float32).eps)


def _rows(tr: pl.DataFrame, kind: str | None, paths: tuple[str, ...] | None = None) -> list[int]:
    """Rows with a whole call of ``kind`` (None: background windows, touching no call)."""
    sel = (
        tr.filter(pl.col("touched").list.len() == 0)
        if kind is None
        else tr.filter(pl.col("positives").list.contains(kind))
    )
    if paths is not None:
        sel = sel.filter(pl.col("path").is_in(list(paths)))
    return sel["row"].to_list()


@pytest.fixture
def tr(built_store: EmbeddingStore) -> pl.DataFrame:
    return truth(built_store.windows).join(built_store.windows.select("row", "path"), on="row")


# -------------------------------------------------------------------------------------------- labels
def test_labels_are_appended_with_who_and_when_and_the_latest_counts(
    built_store: EmbeddingStore, tmp_path: Path
) -> None:
    table = LabelTable(tmp_path / "labels.jsonl")
    assert table.entries().height == 0 and table.classes() == []
    assert table.add(built_store, [3, 4], "chirp", annotator="ana", time="2026-12-02T10:00:00+00:00") == 2
    first = table.path.read_bytes()
    table.add(
        built_store,
        [4],
        "chirp",
        "negative",
        annotator="ben",
        source="review",
        time="2026-12-02T11:00:00+00:00",
    )
    table.add(built_store, [9], BACKGROUND, annotator="ana")
    data = table.path.read_bytes()
    assert data.startswith(first) and len(data) > len(first)  # appended, never rewritten
    e = table.entries()
    assert e["seq"].to_list() == [0, 1, 2, 3]
    assert e["annotator"].to_list() == ["ana", "ana", "ben", "ana"]
    assert e["source"].to_list() == ["manual", "manual", "review", "manual"]
    assert e["time"][3] is not None and e["time"][3].endswith("+00:00")
    assert e["window_id"][0] == built_store.windows["window_id"][3]
    cur = table.current()
    assert cur.height == 3
    assert cur.filter(pl.col("window_id") == built_store.windows["window_id"][4])["value"].to_list() == [
        "negative"
    ]
    assert table.classes() == ["chirp"]


def test_bad_labels_write_nothing_and_torn_lines_are_skipped(
    built_store: EmbeddingStore, tmp_path: Path
) -> None:
    table = LabelTable(tmp_path / "labels.jsonl")
    table.add(built_store, [1], "tone", annotator="ana")
    before = table.path.read_bytes()
    for kwargs, match in (
        ({"rows": [1], "label": "tone", "value": "maybe"}, "label value"),
        ({"rows": [1], "label": ""}, "non-empty"),
        ({"rows": [len(built_store)], "label": "tone"}, "store rows"),
        ({"rows": [1], "label": BACKGROUND, "value": "negative"}, "background label"),
    ):
        with pytest.raises(StoreError, match=match):
            table.add(built_store, annotator="ana", **kwargs)  # type: ignore[arg-type]
        assert table.path.read_bytes() == before
    table.path.write_bytes(before + b'{"window_id": "x", "lab')  # a kill in the middle of a line
    assert table.entries().height == 1
    table.add(built_store, [2], "tone", annotator="ana")
    assert table.entries()["window_id"].to_list() == built_store.windows["window_id"][[1, 2]].to_list()


def test_training_targets_from_labels(built_store: EmbeddingStore, tmp_path: Path) -> None:
    table = LabelTable(tmp_path / "labels.jsonl")
    table.add(built_store, [10, 11], "chirp", annotator="a")
    table.add(built_store, [11], "tone", "negative", annotator="a")
    table.add(built_store, [20], "tone", annotator="a")
    table.add(built_store, [30, 31], BACKGROUND, annotator="a")
    data = training_data(built_store, table)
    assert data.classes == ["chirp", "tone"] and data.outputs == ["chirp", "tone", BACKGROUND]
    assert data.rows.tolist() == [10, 11, 20, 30, 31]
    assert data.Y.tolist() == [[1, -1, 0], [1, 0, 0], [-1, 1, 0], [0, 0, 1], [0, 0, 1]]
    np.testing.assert_array_equal(data.X, built_store.vectors(data.rows))
    table.add(built_store, [30], "chirp", annotator="b")
    with pytest.raises(StoreError, match="labelled both"):
        training_data(built_store, table)
    with pytest.raises(StoreError, match="at least one positive"):
        training_data(built_store, LabelTable(tmp_path / "none.jsonl"))
    only = LabelTable(tmp_path / "only.jsonl")
    only.add(built_store, [10, 11], "chirp", annotator="a")
    with pytest.raises(StoreError, match=r"only one kind for \['chirp'\]"):
        training_data(built_store, only)


# ---------------------------------------------------------------------------------------- classifier
def _weighted_loss(clf: AgileClassifier, X: np.ndarray, Y: np.ndarray) -> float:
    """The training objective recomputed from the INFERENCE path (clf.logits on raw embeddings)."""
    z = torch.from_numpy(clf.logits(X)).double()
    known = Y >= 0
    t = np.clip(Y, 0, 1).astype(np.float64)
    n_pos, n_neg, n = (t * known).sum(0), ((1 - t) * known).sum(0), known.sum(0)
    w = known * (
        t * np.where(n_pos > 0, n / (2 * np.maximum(n_pos, 1)), 0)
        + (1 - t) * np.where(n_neg > 0, n / (2 * np.maximum(n_neg, 1)), 0)
    )
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        z, torch.from_numpy(t), weight=torch.from_numpy(w), reduction="sum"
    )
    with torch.no_grad():
        decay = sum(float((p.double() ** 2).sum()) for p in clf.net.parameters() if p.ndim >= 2)  # type: ignore[union-attr]
    return float(bce) / known.any(1).sum() + 0.5 * clf.l2 * decay


def test_inference_reproduces_the_loss_training_minimised(
    built_store: EmbeddingStore, tr: pl.DataFrame, tmp_path: Path
) -> None:
    """If inference normalised differently from training (or not at all), the loss recomputed from
    ``logits`` on the raw training embeddings would not be the loss the optimiser reported."""
    table = LabelTable(tmp_path / "l.jsonl")
    table.add(built_store, _rows(tr, "chirp")[:6], "chirp", annotator="a")
    table.add(built_store, _rows(tr, "tone")[:6], "tone", annotator="a")
    table.add(built_store, _rows(tr, None)[:12], BACKGROUND, annotator="a")
    d = training_data(built_store, table)
    clf = AgileClassifier().fit(d.X, d.Y, d.classes, stats=built_store.stats())
    got = _weighted_loss(clf, d.X, d.Y)
    # float32 forward pass in training vs float64 recomputation: relative float32 rounding of a sum of ~100 terms
    assert got == pytest.approx(clf.info["loss"], rel=100 * F32), (got, clf.info["loss"])
    assert clf.info["loss"] < 0.5 * _untrained_loss(d)


def _untrained_loss(d) -> float:  # noqa: ANN001
    return float(np.log(2.0) * 2)  # balanced BCE of a constant 0.5 prediction: ln 2 per output, 2 halves


def test_standardisation_makes_scores_invariant_to_an_affine_change_of_the_embeddings(
    built_store: EmbeddingStore, tr: pl.DataFrame, tmp_path: Path
) -> None:
    """The same labels on embeddings rescaled per dimension and shifted (as another frontend's units would
    be) give the same probabilities for every window: each classifier standardises training and inference
    inputs with the same statistics. Skipping it at inference (the BirdNET custom-classifier bug) breaks
    this at once."""
    table = LabelTable(tmp_path / "l.jsonl")
    table.add(built_store, _rows(tr, "chirp")[:5], "chirp", annotator="a")
    table.add(built_store, _rows(tr, None)[:10], BACKGROUND, annotator="a")
    d = training_data(built_store, table)
    everything = built_store.vectors(np.arange(len(built_store)))
    rng = np.random.default_rng(0)
    scale = np.exp(rng.uniform(-3, 3, built_store.dim)).astype(np.float32)
    shift = rng.uniform(-50, 50, built_store.dim).astype(np.float32)
    mean, std = built_store.stats()
    a = AgileClassifier().fit(d.X, d.Y, d.classes, stats=(mean, std))
    b = AgileClassifier().fit(d.X * scale + shift, d.Y, d.classes, stats=(mean * scale + shift, std * scale))
    pa, pb = a.predict_proba(everything), b.predict_proba(everything * scale + shift)
    # the standardised inputs agree to float32 rounding of values ~|shift| / std; L-BFGS amplifies a little
    np.testing.assert_allclose(pa, pb, rtol=0, atol=1e-3)
    assert np.abs(pa - 0.5).max() > 0.4  # and the scores are decisive, not all 0.5


def test_background_labels_keep_noise_windows_from_being_detected(
    built_store: EmbeddingStore, tr: pl.DataFrame, tmp_path: Path
) -> None:
    train_paths, test_paths = ("dawn.wav", "noon.wav"), ("dusk.flac", "night/owl.wav")
    with_bg = LabelTable(tmp_path / "bg.jsonl")
    without = LabelTable(tmp_path / "nobg.jsonl")
    for t in (with_bg, without):
        t.add(built_store, _rows(tr, "chirp", train_paths), "chirp", annotator="a")
        t.add(built_store, _rows(tr, "tone", train_paths), "tone", annotator="a")
        # without background labels, each class's negatives are the other class's positives
        t.add(built_store, _rows(tr, "tone", train_paths), "chirp", "negative", annotator="a")
        t.add(built_store, _rows(tr, "chirp", train_paths), "tone", "negative", annotator="a")
    with_bg.add(built_store, _rows(tr, None, train_paths), BACKGROUND, annotator="a")
    noise = np.asarray(_rows(tr, None, test_paths))
    fpr = {}
    for name, t in (("with", with_bg), ("without", without)):
        d = training_data(built_store, t)
        clf = AgileClassifier().fit(d.X, d.Y, d.classes, stats=built_store.stats())
        p = clf.predict_proba(built_store.vectors(noise))
        fpr[name] = float((p[:, :2] >= 0.5).any(1).mean())
        calls = np.asarray(_rows(tr, "chirp", test_paths))
        assert (clf.predict_proba(built_store.vectors(calls))[:, 0] >= 0.5).mean() >= 0.8, name
    print(f"noise windows detected as a call: {fpr}")
    assert fpr["with"] <= 0.05 and fpr["without"] >= 0.3, fpr


def test_balanced_class_weights_lift_the_rare_class(
    built_store: EmbeddingStore, tr: pl.DataFrame, tmp_path: Path
) -> None:
    table = LabelTable(tmp_path / "l.jsonl")
    table.add(built_store, _rows(tr, "tone")[:2], "tone", annotator="a")
    table.add(built_store, _rows(tr, None)[:40], BACKGROUND, annotator="a")
    d = training_data(built_store, table)
    rare = d.Y[:, 0] == 1
    p_bal = AgileClassifier(class_weight="balanced").fit(d.X, d.Y, d.classes).predict_proba(d.X)[rare, 0]
    p_raw = AgileClassifier(class_weight=None).fit(d.X, d.Y, d.classes).predict_proba(d.X)[rare, 0]
    assert (p_bal > p_raw).all(), (p_bal, p_raw)


def test_saved_classifier_scores_identically_and_refuses_another_encoder(
    built_store: EmbeddingStore, tr: pl.DataFrame, tmp_path: Path
) -> None:
    from avexlab.agile.calibration import Calibrator

    table = LabelTable(tmp_path / "l.jsonl")
    table.add(built_store, _rows(tr, "chirp")[:5], "chirp", annotator="a")
    table.add(built_store, _rows(tr, None)[:10], BACKGROUND, annotator="a")
    d = training_data(built_store, table)
    x = built_store.vectors(np.arange(len(built_store)))
    for hidden in (0, 8):
        clf = AgileClassifier(hidden=hidden).fit(
            d.X, d.Y, d.classes, stats=built_store.stats(), encoder_hash=built_store.encoder_meta["hash"]
        )
        clf.calibration = Calibrator("platt", np.array([[0.5, -1.0], [2.0, 0.3]]))
        clf.thresholds = {"chirp": 0.7}
        back = AgileClassifier.load(clf.save(tmp_path / f"clf{hidden}"))
        assert back.predict_proba(x).tobytes() == clf.predict_proba(x).tobytes()
        assert back.thresholds == {"chirp": 0.7} and back.classes == ["chirp"]
        if hidden:
            assert (clf.predict_proba(d.X)[:, 0] >= 0.5).tolist() == (d.Y[:, 0] == 1).tolist()
    other = AgileClassifier().fit(d.X, d.Y, d.classes, encoder_hash="f" * 64)
    with pytest.raises(StoreError, match="trained on"):
        other.check_store(built_store)


def test_cross_validated_logits_hold_out_whole_recordings(
    built_store: EmbeddingStore, tr: pl.DataFrame, tmp_path: Path
) -> None:
    table = LabelTable(tmp_path / "l.jsonl")
    table.add(built_store, _rows(tr, "chirp"), "chirp", annotator="a")
    table.add(built_store, _rows(tr, None), BACKGROUND, annotator="a")
    d = training_data(built_store, table)
    oof = cross_val_logits(d, folds=4, stats=built_store.stats())
    assert oof.shape == d.Y.shape
    # each recording's windows are scored by the classifier trained on the three others
    for g in np.unique(d.groups):
        held = d.groups == g
        alone = AgileClassifier().fit(d.X[~held], d.Y[~held], d.classes, stats=built_store.stats())
        np.testing.assert_allclose(oof[held], alone.logits(d.X[held]), rtol=0, atol=1e-5 * np.abs(oof).max())
    one = LabelTable(tmp_path / "one.jsonl")
    one.add(built_store, [0, 1], "chirp", annotator="a")
    one.add(built_store, [2], BACKGROUND, annotator="a")
    with pytest.raises(StoreError, match="at least 2 recordings"):
        cross_val_logits(training_data(built_store, one))
