"""Search by example: exact search against brute force, queries by selection / clip / several, the
usearch index (recall measured against exact search, staleness, incremental adds), identity checks."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from agile_archive import truth, write_archive  # noqa: E402

from avexlab.agile.search import Query, SearchIndex, embed_queries, exact_search, search  # noqa: E402
from avexlab.agile.store import EmbeddingStore, StoreError, import_embeddings  # noqa: E402
from avexlab.evaluate.embed import resolve_encoder  # noqa: E402


def _brute(x: np.ndarray, q: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    s = qn.astype(np.float64) @ xn.astype(np.float64).T
    order = np.argsort(-s, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(s, order, axis=1)


def test_exact_search_equals_brute_force_over_chunks(built_store: EmbeddingStore) -> None:
    x = built_store.vectors(np.arange(len(built_store)))
    q = np.random.default_rng(0).standard_normal((6, built_store.dim)).astype(np.float32) + x.mean(0)
    rows, scores = exact_search(built_store, q, k=9, chunk_rows=10)  # 10-row chunks: the merge is exercised
    ref_rows, ref_scores = _brute(x, q, 9)
    np.testing.assert_array_equal(rows, ref_rows)
    # cosine in float32 vs float64: a few ulps of 1
    np.testing.assert_allclose(scores, ref_scores, rtol=0, atol=16 * np.finfo(np.float32).eps)
    assert (np.diff(scores, axis=1) <= 0).all()


def test_a_selected_call_finds_its_kind_and_not_itself(built_store: EmbeddingStore) -> None:
    tr = truth(built_store.windows)
    for kind, q in (("chirp", Query("dawn.wav", 1.2, 1.8)), ("tone", Query("dawn.wav", 4.2, 4.8))):
        hits = search(built_store, [q], k=6).join(tr, on="row", maintain_order="left")
        assert hits["rank"].to_list() == list(range(1, 7)) and hits["method"].unique().to_list() == ["exact"]
        assert (np.diff(hits["score"].to_numpy()) <= 0).all()
        # every hit holds (part of) a call of the query's kind; none overlaps the query selection
        assert all(kind in t for t in hits["touched"].to_list()), hits
        own = hits.filter(
            (pl.col("path") == "dawn.wav") & (pl.col("start_s") < q.end_s) & (pl.col("end_s") > q.start_s)
        )
        assert own.height == 0
    # with the query's own windows kept, the best hit is a window holding the selection
    mine = search(built_store, [Query("dawn.wav", 1.2, 1.8)], k=1, exclude_queries=False)
    assert mine["path"][0] == "dawn.wav" and mine["start_s"][0] <= 1.2 and mine["end_s"][0] >= 1.8


def test_several_queries_combined_by_mean_or_max(built_store: EmbeddingStore) -> None:
    qs = [Query("dawn.wav", 1.2, 1.8), Query("noon.wav", 3.3, 3.9)]
    vec, owner, spans = embed_queries(built_store, qs)
    assert vec.shape == (2, built_store.dim) and owner.tolist() == [0, 1]
    x = built_store.vectors(np.arange(len(built_store)))
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    vn = vec / np.linalg.norm(vec, axis=1, keepdims=True)
    best = search(built_store, qs, k=5, combine="max")
    expect = (xn @ vn.T).max(1)
    np.testing.assert_allclose(best["score"].to_numpy(), expect[best["row"].to_numpy()], rtol=0, atol=1e-6)
    mean = search(built_store, qs, k=5, combine="mean")
    centre = vn.mean(0)
    np.testing.assert_allclose(
        mean["score"].to_numpy(), (xn @ (centre / np.linalg.norm(centre)))[mean["row"].to_numpy()], atol=1e-6
    )
    # a whole-file query of a short clip, and a selection longer than a window (several query windows)
    assert (
        len(embed_queries(built_store, [Query("dawn.wav", 0.5, 3.0)])[2]) == 4
    )  # 2.5 s: windows at 0.5..2.0
    with pytest.raises(StoreError, match="start < end"):
        embed_queries(built_store, [Query("dawn.wav", 3.0, 2.0)])


def test_query_parse() -> None:
    assert Query.parse("a/b.wav@1.5-2.25") == Query("a/b.wav", 1.5, 2.25)
    assert Query.parse("a/b.wav") == Query("a/b.wav")
    with pytest.raises(StoreError, match="PATH@START-END"):
        Query.parse("a.wav@x-y")


def test_queries_need_the_store_encoder(built_store: EmbeddingStore) -> None:
    with pytest.raises(StoreError, match="weights hash"):
        search(built_store, [Query("dawn.wav", 1.2, 1.8)], encoder=resolve_encoder("logmel:base"))


def _clustered(n: int, dim: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((32, dim))
    return (centres[rng.integers(0, 32, n)] + 0.6 * rng.standard_normal((n, dim))).astype(np.float32)


def test_usearch_index_recall_is_measured_against_exact_and_it_stays_current(tmp_path: Path) -> None:
    x = _clustered(3000, 64, 0)
    windows = pl.DataFrame(
        {"path": [f"r{i // 100}.wav" for i in range(3000)], "recording_id": [f"r{i // 100}" for i in range(3000)],
         "start_s": [float(i % 100) for i in range(3000)], "end_s": [float(i % 100) + 1 for i in range(3000)]}
    )  # fmt: skip
    store = import_embeddings(
        tmp_path / "s", windows, (x[i : i + 1000] for i in range(0, 3000, 1000)),
        encoder_name="synthetic", encoder_hash="0" * 64, sample_rate=16000, window_s=1.0, hop_s=1.0,
    )  # fmt: skip
    np.testing.assert_array_equal(store.vectors(np.arange(3000)), x)
    index = SearchIndex.build(store, threads=1, recall_queries=100, progress=False)
    q = x[np.random.default_rng(1).choice(3000, 100, replace=False)]
    exact, _ = exact_search(store, q, 10)
    approx, scores = index.search(q, 10)
    recall = np.mean(
        [len(set(a) & set(e)) / 10 for a, e in zip(approx.tolist(), exact.tolist(), strict=True)]
    )
    assert index.info["recall_at_10"] >= 0.9 and recall >= 0.9, (index.info, recall)
    # the scores are cosines of the returned rows (float16 vectors: ~1e-3)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    qn = q / np.linalg.norm(q, axis=1, keepdims=True)
    np.testing.assert_allclose(scores, np.einsum("qd,qkd->qk", qn, xn[approx]), atol=3e-3)
    reopened = SearchIndex.open(store)
    assert np.array_equal(reopened.search(q, 10)[0], approx)
    hits = search(store, q[:1], k=5)  # vectors as queries; a current index is used by "auto"
    assert hits["method"].to_list() == ["index"] * 5
    assert search(store, q[:1], k=5, method="exact")["row"].to_list() == exact[0, :5].tolist()


def test_a_stale_index_is_refused_then_brought_up_to_date(tmp_path: Path) -> None:
    from avexlab.agile.store import build_store

    src = write_archive(tmp_path / "a", files={"x.wav": [("chirp", 2.0)]})
    kw = {"window_s": 1.0, "hop_s": 0.5, "progress": False, "index_above": None}
    store = build_store(src, tmp_path / "s", "logmel:tiny", **kw)
    index = SearchIndex.build(store, threads=1, progress=False)
    assert index.info["added_rows"] == len(store) and index.info["recall_at_10"] >= 0.95
    write_archive(src, seed=1, files={"y.wav": [("tone", 3.0)]})
    grown = build_store(src, tmp_path / "s", "logmel:tiny", **kw)
    assert len(grown) > len(store)
    with pytest.raises(StoreError, match="up to date"):
        SearchIndex.open(grown)
    with pytest.raises(StoreError, match="up to date"):
        search(grown, grown.vectors([0]), k=3, method="index")
    assert search(grown, grown.vectors([0]), k=3, method="auto")["method"][0] == "exact"
    again = SearchIndex.build(grown, threads=1, progress=False)
    assert again.info["added_rows"] == len(grown) - len(store)
    assert SearchIndex.open(grown).info["rows"] == len(grown)
    last = search(grown, grown.vectors([len(grown) - 1]), k=1)  # a new row is in the index: it finds itself
    assert last["method"][0] == "index" and last["row"][0] == len(grown) - 1
    # above index_above windows, the build itself brings the index up to date
    write_archive(src, seed=2, files={"z.wav": [("chirp", 5.0)]})
    third = build_store(src, tmp_path / "s", "logmel:tiny", **{**kw, "index_above": 10})
    assert SearchIndex.open(third).info["added_rows"] == len(third) - len(grown)
