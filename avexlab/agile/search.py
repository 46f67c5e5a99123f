"""Search a store by example: a clip, a selection inside a recording, or several of them.

Similarity is the cosine between window embeddings (inner product of L2-normalised vectors). Exact search
streams the store's memory maps in chunks (nothing is loaded whole); above a size where that gets slow,
an approximate HNSW index (``usearch``, half-precision vectors, inner product) answers instead. The
index records the recall@k it achieved against exact search on sampled queries when it was built, and
every result table says which method produced it.

A query's audio is embedded exactly like a store window (same encoder, checked by its hash; same window
length): a selection no longer than a window is centred in one window of real context (clamped to the
file); a longer one is cut into windows with the store's hop, each a query vector. Several query vectors
are combined by averaging their normalised embeddings (``combine="mean"``, one search) or by keeping each
window's best score over them (``combine="max"``).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from avexlab.errors import expected_found
from avexlab.fsutil import atomic_write

from .store import EmbeddingStore, StoreError, embed_segments

__all__ = ["Query", "SearchIndex", "embed_queries", "exact_search", "search"]

INDEX_DIR = "index"


def _normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), float32."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


# ------------------------------------------------------------------------------------------- exact
def exact_search(
    store: EmbeddingStore, queries: np.ndarray, k: int = 10, *, chunk_rows: int = 65536
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` cosine neighbours of ``queries`` ``[Q, D]``: ``(rows [Q, k] int64, scores [Q, k]
    float32)``, best first (ties: lower row first). Streams the store in chunks of ``chunk_rows``."""
    q = _normalise(np.atleast_2d(queries))
    _check_dim(store, q)
    k = min(int(k), store.n_rows)
    best_s = np.full((q.shape[0], 0), -np.inf, dtype=np.float32)
    best_r = np.zeros((q.shape[0], 0), dtype=np.int64)
    for row0, chunk in store.iter_chunks(chunk_rows):
        s = q @ _normalise(chunk).T  # [Q, n]
        rows = np.broadcast_to(np.arange(row0, row0 + chunk.shape[0], dtype=np.int64), s.shape)
        all_s = np.concatenate([best_s, s], axis=1)
        all_r = np.concatenate([best_r, rows], axis=1)
        if all_s.shape[1] > k:
            part = np.argpartition(-all_s, k - 1, axis=1)[:, :k]
            best_s = np.take_along_axis(all_s, part, axis=1)
            best_r = np.take_along_axis(all_r, part, axis=1)
        else:
            best_s, best_r = all_s, all_r
    order = np.lexsort((best_r, -best_s), axis=1) if best_s.size else np.zeros_like(best_r)
    return np.take_along_axis(best_r, order, axis=1), np.take_along_axis(best_s, order, axis=1)


def _check_dim(store: EmbeddingStore, q: np.ndarray) -> None:
    if q.ndim != 2 or q.shape[1] != store.dim:
        raise StoreError(
            expected_found(
                "query embeddings",
                f"[Q, {store.dim}] (the store's width)",
                f"shape {q.shape}",
                "Embed the queries with the store's encoder.",
            )
        )


# ------------------------------------------------------------------------------------------- index
class SearchIndex:
    """An approximate (HNSW, ``usearch``) index of a store, saved under ``STORE/index/``.

    Build (or bring up to date after an append) with :meth:`build`; :meth:`open` memory-maps a saved
    one. ``info`` holds its parameters, the rows it covers and the recall@k measured against exact search.
    """

    def __init__(self, store: EmbeddingStore, index: Any, info: dict[str, Any]) -> None:
        self.store = store
        self.index = index
        self.info = info

    @staticmethod
    def paths(store: EmbeddingStore) -> tuple[Path, Path]:
        d = store.path / INDEX_DIR
        return d / "usearch.index", d / "index.json"

    @classmethod
    def build(
        cls,
        store: EmbeddingStore,
        *,
        connectivity: int = 16,
        expansion_add: int = 128,
        expansion_search: int = 256,
        threads: int = 0,
        recall_queries: int = 200,
        recall_k: int = 10,
        seed: int = 0,
        chunk_rows: int = 65536,
        progress: bool = True,
    ) -> SearchIndex:
        """Index every window of ``store`` (normalised, stored as float16, inner product), adding only the
        rows a saved index lacks; then measure recall@``recall_k`` against exact search on
        ``recall_queries`` windows drawn with ``seed``, save, and return the index. ``threads=0`` uses every
        core (the graph, and so the results, then depend on thread scheduling; ``threads=1`` is
        deterministic)."""
        from tqdm.auto import tqdm
        from usearch.index import Index

        path, info_path = cls.paths(store)
        params = {
            "connectivity": connectivity,
            "expansion_add": expansion_add,
            "metric": "ip",
            "dtype": "f16",
        }
        index, covered = None, 0
        if path.exists() and info_path.exists():
            old = json.loads(info_path.read_text())
            if (
                old.get("params") == params
                and old.get("encoder_hash") == store.encoder_meta["hash"]
                and old["rows"] <= store.n_rows
            ):
                index = Index.restore(str(path))
                covered = int(old["rows"])
        if index is None:
            index = Index(
                ndim=store.dim,
                metric="ip",
                dtype="f16",
                connectivity=connectivity,
                expansion_add=expansion_add,
            )
        index.expansion_search = expansion_search
        t0 = time.perf_counter()
        bar = tqdm(total=store.n_rows, initial=covered, desc="indexing", unit="win", disable=not progress)
        for row0, chunk in store.iter_chunks(chunk_rows):
            lo = max(row0, covered)
            if lo >= row0 + chunk.shape[0]:
                continue
            part = chunk[lo - row0 :]
            index.add(
                np.arange(lo, row0 + chunk.shape[0], dtype=np.uint64), _normalise(part), threads=threads
            )
            bar.update(part.shape[0])
        bar.close()
        build_s = time.perf_counter() - t0
        out = cls(store, index, {})
        recall = out.measure_recall(n_queries=recall_queries, k=recall_k, seed=seed) if store.n_rows else None
        info = {
            "params": params,
            "expansion_search": expansion_search,
            "rows": store.n_rows,
            "encoder_hash": store.encoder_meta["hash"],
            f"recall_at_{recall_k}": recall,
            "recall_queries": recall_queries,
            "recall_k": recall_k,
            "added_rows": store.n_rows - covered,
            "add_seconds": round(build_s, 3),
            "built": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, lambda t: index.save(str(t)))
        atomic_write(info_path, json.dumps(info, indent=2))
        out.info = info
        return out

    @classmethod
    def open(cls, store: EmbeddingStore, *, view: bool = True) -> SearchIndex:
        """The saved index of ``store`` (memory-mapped with ``view=True``). Refused when it was built for
        another encoder or does not cover every window (after an append: run :meth:`build` again)."""
        from usearch.index import Index

        path, info_path = cls.paths(store)
        if not (path.exists() and info_path.exists()):
            raise StoreError(
                expected_found(
                    f"search index of {store.path}",
                    "an index built by `avexlab agile index`",
                    "none",
                    "Build it first.",
                )
            )
        info = json.loads(info_path.read_text())
        if info["encoder_hash"] != store.encoder_meta["hash"] or info["rows"] != store.n_rows:
            raise StoreError(
                expected_found(
                    f"search index of {store.path}",
                    f"an index of all {store.n_rows} windows of this store",
                    f"one of {info['rows']} windows (encoder {info['encoder_hash'][:12]})",
                    "Bring it up to date with `avexlab agile index` (only new windows are added).",
                )
            )
        index = Index.restore(str(path), view=view)
        index.expansion_search = int(info["expansion_search"])
        return cls(store, index, info)

    def search(self, queries: np.ndarray, k: int = 10, *, threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Approximate top-``k``: ``(rows [Q, k] int64, cosine scores [Q, k] float32)``, best first. Where
        the graph returns fewer than ``k`` hits, the rest are row -1 with score -inf."""
        q = _normalise(np.atleast_2d(queries))
        _check_dim(self.store, q)
        k = min(int(k), self.store.n_rows)
        m = self.index.search(q, k, threads=threads)
        keys = np.asarray(m.keys, dtype=np.int64).reshape(q.shape[0], -1)
        dist = np.asarray(m.distances, dtype=np.float32).reshape(q.shape[0], -1)
        counts = np.asarray(m.counts).reshape(-1) if hasattr(m, "counts") else np.full(q.shape[0], k)
        valid = np.arange(keys.shape[1])[None, :] < counts[:, None]
        rows = np.where(valid, keys, -1)
        scores = np.where(valid, 1.0 - dist, -np.inf).astype(np.float32)
        return rows, scores

    def measure_recall(self, *, n_queries: int = 200, k: int = 10, seed: int = 0) -> float:
        """Mean recall@``k`` against exact search, with ``n_queries`` store windows (drawn with ``seed``)
        as queries: the fraction of the exact top-``k`` rows the index also returns."""
        rng = np.random.default_rng(seed)
        n = min(n_queries, self.store.n_rows)
        rows = np.sort(rng.choice(self.store.n_rows, size=n, replace=False))
        q = self.store.vectors(rows)
        exact, _ = exact_search(self.store, q, k)
        approx, _ = self.search(q, k)
        hits = [len(set(a.tolist()) & set(e.tolist())) / e.size for a, e in zip(approx, exact, strict=True)]
        return float(np.mean(hits))


# ------------------------------------------------------------------------------------------ queries
@dataclass(frozen=True)
class Query:
    """A search example: the recording ``path`` (relative to the store's root, absolute, or a URI) and a
    selection ``[start_s, end_s]`` in it (None: the whole file)."""

    path: str
    start_s: float | None = None
    end_s: float | None = None

    @classmethod
    def parse(cls, text: str) -> Query:
        """``PATH`` or ``PATH@START-END`` (seconds), as the CLI takes it."""
        if "@" in text:
            path, sel = text.rsplit("@", 1)
            try:
                a, b = (float(x) for x in sel.split("-", 1))
            except ValueError as e:
                raise StoreError(
                    expected_found(
                        "query",
                        "PATH or PATH@START-END in seconds (e.g. rec.wav@12.5-14)",
                        repr(text),
                        "Fix it.",
                    )
                ) from e
            return cls(path, a, b)
        return cls(text)


def _query_windows(store: EmbeddingStore, q: Query) -> list[tuple[str, float, float]]:
    """The store-style windows ``(full path, start_s, end_s)`` that embed one query."""
    from avexlab.audio.io import audio_info, is_uri, load_audio

    full = q.path if (is_uri(q.path) or Path(q.path).is_absolute()) else store.full_path(q.path)
    if is_uri(full):
        wave, sr = load_audio(full)
        dur = wave.shape[-1] / sr
    else:
        dur = audio_info(full).duration_s
    a = 0.0 if q.start_s is None else float(q.start_s)
    b = dur if q.end_s is None else float(q.end_s)
    if not (0 <= a < b <= dur + 1e-9):
        raise StoreError(
            expected_found(
                f"query selection in {q.path}",
                f"0 <= start < end <= {dur:.3f} s",
                f"[{a}, {b}]",
                "Fix the times.",
            )
        )
    win, hop = store.window_s, store.hop_s
    if b - a <= win:
        centre = (a + b) / 2
        lo = min(max(0.0, centre - win / 2), max(0.0, dur - win))
        return [(full, lo, min(lo + win, dur))]
    n = int(np.ceil((b - a - win) / hop)) + 1
    return [(full, a + i * hop, min(a + i * hop + win, dur)) for i in range(n)]


def embed_queries(
    store: EmbeddingStore, queries: Sequence[Query], encoder: Any = None, *, device: str = "cpu"
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, float, float]]]:
    """Embed ``queries`` as store windows: ``(vectors [W, D] float32, query index of each [W], the windows)``.
    ``encoder`` defaults to the store's (rebuilt from its spec); a given one is checked against its hash."""
    if not queries:
        raise StoreError(expected_found("queries", "at least one", "none", "Pass a clip or a selection."))
    if encoder is None:
        encoder = store.load_encoder()
    else:
        store.check_encoder(encoder)
    windows, owner = [], []
    for i, q in enumerate(queries):
        w = _query_windows(store, q)
        windows += w
        owner += [i] * len(w)
    vec = embed_segments(
        encoder,
        windows,
        window_s=store.window_s,
        layer=int(store.meta["layer"]),
        pooling=store.meta["pooling"],
        device=device,
    )
    return vec, np.asarray(owner, dtype=np.int64), windows


def search(
    store: EmbeddingStore,
    queries: Sequence[Query] | np.ndarray,
    k: int = 20,
    *,
    encoder: Any = None,
    combine: Literal["mean", "max"] = "mean",
    method: Literal["auto", "exact", "index"] = "auto",
    exclude_queries: bool = True,
    device: str = "cpu",
) -> pl.DataFrame:
    """The ``k`` windows most similar to the queries, as a table: ``rank``, ``row``, ``window_id``,
    ``path``, ``recording_id``, ``start_s``, ``end_s``, ``score`` (cosine), ``method``.

    ``queries``: :class:`Query` examples (embedded with the store's encoder) or ready query vectors
    ``[Q, D]``. ``method``: ``"exact"``, ``"index"`` (the saved approximate index; refused when stale) or
    ``"auto"`` (the index when a current one exists, else exact). ``exclude_queries`` drops windows that
    overlap a query selection in the same recording (the example finding itself is no result).
    """
    if combine not in ("mean", "max"):
        raise StoreError(expected_found("combine", "'mean' or 'max'", repr(combine), "Pick one."))
    if isinstance(queries, np.ndarray):
        vec, spans = np.atleast_2d(queries).astype(np.float32), []
    else:
        vec, _, spans = embed_queries(store, list(queries), encoder, device=device)
    unit = _normalise(vec)
    probe = _normalise(unit.mean(0, keepdims=True)) if combine == "mean" else unit
    index: SearchIndex | None = None
    if method == "index" or (method == "auto" and SearchIndex.paths(store)[0].exists()):
        try:
            index = SearchIndex.open(store)
        except StoreError:
            if method == "index":
                raise
    overlap = _overlapping_rows(store, spans) if exclude_queries and spans else np.zeros(0, dtype=np.int64)
    extra = len(overlap)
    kk = min(store.n_rows, k + extra)
    rows, scores = index.search(probe, kk) if index is not None else exact_search(store, probe, kk)
    if combine == "max" and probe.shape[0] > 1:
        flat = pl.DataFrame({"row": rows.reshape(-1), "score": scores.reshape(-1)}).filter(pl.col("row") >= 0)
        best = (
            flat.group_by("row").agg(pl.col("score").max()).sort(["score", "row"], descending=[True, False])
        )
        rows_1, scores_1 = best["row"].to_numpy(), best["score"].to_numpy()
    else:
        keep = rows[0] >= 0
        rows_1, scores_1 = rows[0][keep], scores[0][keep]
    mask = ~np.isin(rows_1, overlap)
    rows_1, scores_1 = rows_1[mask][:k], scores_1[mask][:k]
    hits = pl.DataFrame({"row": rows_1.astype(np.int64), "score": scores_1.astype(np.float32)})
    table = hits.join(store.windows, on="row", how="left", maintain_order="left")
    return table.with_row_index("rank", offset=1).select(
        pl.col("rank").cast(pl.Int64),
        "row",
        "window_id",
        "path",
        "recording_id",
        "start_s",
        "end_s",
        "score",
        pl.lit("index" if index is not None else "exact").alias("method"),
    )


def _path_key(path: str) -> str:
    return path if "://" in path else os.path.normpath(os.path.abspath(path))


def _overlapping_rows(store: EmbeddingStore, spans: list[tuple[str, float, float]]) -> np.ndarray:
    """Rows of windows that overlap a query span ``(full path, start_s, end_s)`` in the same recording."""
    w = store.windows
    paths = w["path"].unique().to_list()
    key_of = {p: _path_key(store.full_path(p)) for p in paths}
    keys = w["path"].replace_strict(key_of, return_dtype=pl.String)
    hit = np.zeros(w.height, dtype=bool)
    starts, ends = w["start_s"].to_numpy(), w["end_s"].to_numpy()
    for path, a, b in spans:
        same = (keys == _path_key(path)).to_numpy()
        hit |= same & (starts < b) & (ends > a)
    return np.flatnonzero(hit).astype(np.int64)
