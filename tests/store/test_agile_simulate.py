"""Truth of windows from annotations, the simulated reviewer, and simulated labelling sessions."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl

sys.path.insert(0, str(Path(__file__).parent))
from agile_archive import CALL_S, CALLS, truth  # noqa: E402

from avexlab.agile.labels import BACKGROUND, LabelTable, window_truth  # noqa: E402
from avexlab.agile.simulate import labels_to_reach, simulate_session  # noqa: E402
from avexlab.agile.store import EmbeddingStore  # noqa: E402


def _events() -> pl.DataFrame:
    rows = [(p, t, t + CALL_S, k) for p, calls in CALLS.items() for k, t in calls]
    return pl.DataFrame(rows, schema=["path", "onset_s", "offset_s", "label"], orient="row")


def test_window_truth_equals_the_archive_truth(built_store: EmbeddingStore) -> None:
    whole = window_truth(built_store.windows, _events(), min_fraction=1.0)
    ref = truth(built_store.windows)
    assert whole["row"].to_list() == ref["row"].to_list()
    assert whole["positives"].to_list() == ref["positives"].to_list()
    assert whole["touched"].to_list() == ref["touched"].to_list()
    half = window_truth(built_store.windows, _events())  # half a call inside is enough
    more = [
        set(a) >= set(b) for a, b in zip(half["positives"].to_list(), ref["positives"].to_list(), strict=True)
    ]
    assert all(more) and half["positives"].list.len().sum() > ref["positives"].list.len().sum()


def test_the_simulated_reviewer_answers_from_the_truth(built_store: EmbeddingStore, tmp_path: Path) -> None:
    tr = truth(built_store.windows)
    table = LabelTable(tmp_path / "l.jsonl")
    rows = list(range(len(built_store)))
    table.add_from_truth(built_store, rows, tr, ["chirp", "tone"])
    cur = table.current()
    by = {(w, lab): v for w, lab, v in cur.select("window_id", "label", "value").iter_rows()}
    wid = built_store.windows["window_id"].to_list()
    for r, pos, touched in tr.select("row", "positives", "touched").iter_rows():
        for c in ("chirp", "tone"):
            expect = "positive" if c in pos else "negative" if touched and c not in touched else None
            assert by.get((wid[r], c)) == expect, (r, c)
        assert by.get((wid[r], BACKGROUND)) == (None if touched else "positive")
    assert set(cur["annotator"].to_list()) == {"truth"}


def test_a_simulated_session_grows_by_batches_and_is_seeded(built_store: EmbeddingStore) -> None:
    tr = truth(built_store.windows)
    w = built_store.windows
    held = w.filter(pl.col("path") == "night/owl.wav")["row"].to_numpy()
    pool = np.setdiff1d(np.arange(len(built_store)), held)
    start = [int(r) for r in tr.filter(pl.col("positives").list.len() > 0)["row"].to_list()[:4]] + [0, 1]
    kw = {"start_rows": start, "batch": 5, "rounds": 3, "pool_rows": pool, "eval_rows": held}
    a = simulate_session(built_store, tr, ["chirp", "tone"], strategy="margin", seed=0, **kw)
    assert a["round"].to_list() == [0, 1, 2, 3]
    assert np.diff(a["labels"].to_numpy()).tolist() == [5, 5, 5]
    assert a.columns == ["round", "labels", "macro_auc", "auc_chirp", "auc_tone"]
    assert a["macro_auc"].is_between(0, 1).all()
    assert a.equals(simulate_session(built_store, tr, ["chirp", "tone"], strategy="margin", seed=0, **kw))
    r = simulate_session(built_store, tr, ["chirp", "tone"], strategy="random", seed=0, **kw)
    assert r["labels"].to_list() == a["labels"].to_list() and r["macro_auc"][0] == a["macro_auc"][0]
    assert labels_to_reach(a, 0.0) == a["labels"][0] and labels_to_reach(a, 1.01) is None
