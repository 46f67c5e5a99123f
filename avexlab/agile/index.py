"""Nearest-neighbour search over an embedding store's rows: exact (the store's memory maps streamed in
chunks, nothing loaded whole) and an approximate HNSW index (``usearch``) kept under ``STORE/index/`` with
its recall against exact search recorded.

This module reads a store only through its public surface (the :class:`StoreRows` protocol):
the store's build brings the index up to date, and :mod:`~avexlab.agile.search` (search by example) uses
both, so neither imports the other's module in a circle.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from avexlab.errors import expected_found
from avexlab.fsutil import atomic_write

from .errors import StoreError


class StoreRows(Protocol):
    """What an index reads of a store (:class:`avexlab.agile.store.EmbeddingStore` has it): its folder, the
    encoder that filled it, its width and rows, its rows in chunks and by number."""

    path: Path

    @property
    def encoder_meta(self) -> dict[str, Any]: ...

    @property
    def dim(self) -> int: ...

    @property
    def n_rows(self) -> int: ...

    def iter_chunks(self, chunk_rows: int = 65536) -> Iterator[tuple[int, np.ndarray]]: ...

    def vectors(self, rows: Sequence[int] | np.ndarray) -> np.ndarray: ...


__all__ = ["INDEX_DIR", "SearchIndex", "exact_search", "normalise_rows"]

INDEX_DIR = "index"


def normalise_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (all-zero rows stay zero), float32."""
    x = np.asarray(x, dtype=np.float32)
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.where(n > 0, n, 1.0)


# ------------------------------------------------------------------------------------------- exact
def exact_search(
    store: StoreRows, queries: np.ndarray, k: int = 10, *, chunk_rows: int = 65536
) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` cosine neighbours of ``queries`` ``[Q, D]``: ``(rows [Q, k] int64, scores [Q, k]
    float32)``, best first (ties: lower row first). Streams the store in chunks of ``chunk_rows``."""
    q = normalise_rows(np.atleast_2d(queries))
    _check_dim(store, q)
    k = min(int(k), store.n_rows)
    best_s = np.full((q.shape[0], 0), -np.inf, dtype=np.float32)
    best_r = np.zeros((q.shape[0], 0), dtype=np.int64)
    for row0, chunk in store.iter_chunks(chunk_rows):
        s = q @ normalise_rows(chunk).T  # [Q, n]
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


def _check_dim(store: StoreRows, q: np.ndarray) -> None:
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

    def __init__(self, store: StoreRows, index: Any, info: dict[str, Any]) -> None:
        self.store = store
        self.index = index
        self.info = info

    @staticmethod
    def paths(store: StoreRows) -> tuple[Path, Path]:
        d = store.path / INDEX_DIR
        return d / "usearch.index", d / "index.json"

    @classmethod
    def build(
        cls,
        store: StoreRows,
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
                np.arange(lo, row0 + chunk.shape[0], dtype=np.uint64), normalise_rows(part), threads=threads
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
    def open(cls, store: StoreRows, *, view: bool = True) -> SearchIndex:
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
        q = normalise_rows(np.atleast_2d(queries))
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
