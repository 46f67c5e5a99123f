"""Active learning: which windows to review next, so a session is query -> label -> retrain -> next batch.

Strategies over the classifier's probabilities ``P [N, C + 1]`` (classes, then background), each
normalised to a distribution ``q = P / sum(P)`` over "which of the outputs is this window":

- ``"margin"``: the smallest gap between the two most likely outputs, ``q(1) - q(2)`` (the window the
  classifier can least tell apart from its runner-up). With ``classes=[c]`` it is the distance of
  ``P[:, c]`` from its threshold: the one-class decision boundary.
- ``"uncertainty"``: the largest entropy of ``q`` (undecided between many outputs).
- ``"random"``: uniform over unlabelled windows: the control every strategy must beat.

Labelled windows are never proposed. ``spread=True`` takes at most one window per stretch of recording
(no two proposed windows overlap), so a batch is not ten hops over the same call.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import polars as pl

from avexlab.errors import expected_found

from .store import EmbeddingStore, StoreError

__all__ = ["STRATEGIES", "informativeness", "next_batch"]

STRATEGIES: tuple[str, ...] = ("margin", "uncertainty", "random")


def informativeness(
    probs: np.ndarray,
    strategy: Literal["margin", "uncertainty"],
    *,
    columns: Sequence[int] | None = None,
    thresholds: np.ndarray | None = None,
) -> np.ndarray:
    """Per-window priority ``[N]`` (higher = review first) of ``probs [N, C + 1]``.

    ``columns`` restricts the outputs considered; with a single column the margin is ``-|p - threshold|``
    (``thresholds`` per column, default 0.5) and the uncertainty the binary entropy of ``p``."""
    P = np.asarray(probs, dtype=np.float64)
    if columns is not None:
        P = P[:, list(columns)]
    eps = 1e-12
    if P.shape[1] == 1:
        p = np.clip(P[:, 0], eps, 1 - eps)
        if strategy == "margin":
            t = 0.5 if thresholds is None else float(np.asarray(thresholds).reshape(-1)[0])
            return -np.abs(p - t)
        return -(p * np.log(p) + (1 - p) * np.log(1 - p))
    q = P / np.maximum(P.sum(1, keepdims=True), eps)
    if strategy == "margin":
        top2 = -np.sort(-q, axis=1)[:, :2]
        return -(top2[:, 0] - top2[:, 1])
    if strategy == "uncertainty":
        return -(q * np.log(np.maximum(q, eps))).sum(1)
    raise StoreError(expected_found("strategy", f"one of {list(STRATEGIES)}", repr(strategy), "Pick one."))


def next_batch(
    store: EmbeddingStore,
    probs: np.ndarray | None,
    k: int = 10,
    *,
    strategy: Literal["margin", "uncertainty", "random"] = "margin",
    labelled: Sequence[str] | np.ndarray = (),
    columns: Sequence[int] | None = None,
    thresholds: np.ndarray | None = None,
    candidates: np.ndarray | None = None,
    spread: bool = True,
    seed: int = 0,
) -> pl.DataFrame:
    """The next ``k`` windows to review: ``rank``, ``row``, ``window_id``, ``path``, ``start_s``,
    ``end_s``, ``priority``, ``strategy``.

    ``probs``: the classifier's probabilities for every store row (``score_store``); may be None for
    ``"random"``. ``labelled``: window ids (or rows) already labelled, never proposed. ``candidates``:
    restrict to these rows (e.g. detections, for an unbiased review of precision). Ties and ``"random"``
    are broken by ``seed``.
    """
    if strategy not in STRATEGIES:
        raise StoreError(
            expected_found("strategy", f"one of {list(STRATEGIES)}", repr(strategy), "Pick one.")
        )
    n = store.n_rows
    rng = np.random.default_rng(seed)
    if strategy == "random":
        priority = rng.random(n)
    else:
        if probs is None or np.asarray(probs).shape[0] != n:
            raise StoreError(
                expected_found(
                    "probabilities",
                    f"one row per store window ({n})",
                    "none" if probs is None else f"{np.asarray(probs).shape[0]} rows",
                    "Score the store with the classifier first (score_store).",
                )
            )
        priority = informativeness(probs, strategy, columns=columns, thresholds=thresholds)  # type: ignore[arg-type]
    ok = np.ones(n, dtype=bool)
    lab = np.asarray(labelled)
    if lab.size:
        rows = (
            lab.astype(np.int64)
            if np.issubdtype(lab.dtype, np.integer)
            else store.rows_of([str(x) for x in lab])
        )
        ok[rows] = False
    if candidates is not None:
        only = np.zeros(n, dtype=bool)
        only[np.asarray(candidates, dtype=np.int64)] = True
        ok &= only
    tie = rng.random(n)
    order = np.lexsort((tie, -priority))
    order = order[ok[order]]
    w = store.windows
    picked: list[int] = []
    if spread:
        paths = w["path"].to_numpy()
        starts, ends = w["start_s"].to_numpy(), w["end_s"].to_numpy()
        taken: dict[str, list[tuple[float, float]]] = {}
        for r in order:
            spans = taken.setdefault(paths[r], [])
            if any(starts[r] < b and ends[r] > a for a, b in spans):
                continue
            spans.append((starts[r], ends[r]))
            picked.append(int(r))
            if len(picked) == k:
                break
    else:
        picked = [int(r) for r in order[:k]]
    out = pl.DataFrame(
        {"row": np.asarray(picked, dtype=np.int64), "priority": priority[picked] if picked else []}
    )
    out = out.join(w, on="row", how="left", maintain_order="left")
    return out.with_row_index("rank", offset=1).select(
        pl.col("rank").cast(pl.Int64),
        "row",
        "window_id",
        "path",
        "start_s",
        "end_s",
        "priority",
        pl.lit(strategy).alias("strategy"),
    )
