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

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from avexlab.errors import expected_found

from .errors import StoreError
from .index import SearchIndex, exact_search, normalise_rows
from .store import EmbeddingStore, embed_segments

__all__ = ["Query", "SearchIndex", "embed_queries", "exact_search", "search"]


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
    unit = normalise_rows(vec)
    probe = normalise_rows(unit.mean(0, keepdims=True)) if combine == "mean" else unit
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
