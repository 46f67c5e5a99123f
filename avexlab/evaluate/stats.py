"""Uncertainty: bootstrap intervals for every cell and column of a results table, paired differences, and
aggregates over columns.

What is resampled. A column (:data:`~avexlab.evaluate.tables.ANALYSIS_COLUMNS`: the paper's and the
soundscape retrieval columns) is the mean over its
datasets of a metric computed on each dataset's test items (clips; retrieval queries). Its value depends on
which test clips happened to be drawn and on the seeds: the training seed (initialisation and data order)
and the probe seed (the probe's initialisation and batch order, and k-means'). The bootstrap draws, in each
resample, the test items of every dataset with replacement (stratified by dataset, as ``rliable``'s
stratified bootstrap draws runs within each task), the training seeds and the probe seeds, and recomputes
the statistic from the per-item outcomes (the ``items`` table, :data:`ITEM_SCHEMA`). Comparisons are paired:
both sides see the same drawn clips and the same drawn seed indices, so the interval of a difference is not
inflated by variation the two share.

Resampling is done by :func:`scipy.stats.bootstrap` (percentile intervals, its own draws), fed the indices
of the items and seeds: each dataset's item indices and each seed list is one of its samples, which it
resamples independently (the stratification). A sample of a single element (one seed) is held fixed.

Metrics whose value is a mean over items (``accuracy``, per-query ``roc_auc``, ``precision_at_1`` and the
cross-recording variants) are recomputed as weighted means; the paper's ``map`` (mean over ALL classes of
average precision, a class without positives counting 0) and k-means ``nmi`` are recomputed exactly from
the stored scores, targets and cluster assignments with the drawn multiplicities as weights.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl

from avexlab.errors import EvaluationError, expected_found

from .tables import ANALYSIS_COLUMNS

__all__ = [
    "ITEM_METRICS",
    "ITEM_SCHEMA",
    "Interval",
    "bootstrap_indices",
    "cell_intervals",
    "effect_interval",
    "item_rows",
    "mean_difference_terms",
    "row_intervals",
    "weighted_map",
    "weighted_nmi",
]

# Per-item outcomes of one evaluation; one row per (encoder, seeds, dataset, method, metric, layer, item).
ITEM_SCHEMA: dict[str, pl.DataType] = {
    "encoder": pl.String(),
    "checkpoint": pl.String(),
    "train_seed": pl.Int64(),
    "probe_seed": pl.Int64(),
    "benchmark": pl.String(),
    "dataset": pl.String(),
    "task_family": pl.String(),
    "method": pl.String(),
    "metric": pl.String(),
    "layer": pl.Int64(),
    "item": pl.Int64(),  # position of the clip in the dataset's test split (the same for every encoder)
    "value": pl.Float64(),  # mean-type metrics: the item's outcome (null: not counted, e.g. no positive)
    "label": pl.Int64(),  # accuracy, nmi: the item's true class code
    "cluster": pl.Int64(),  # nmi: the item's k-means cluster
    "scores": pl.List(pl.Float32()),  # map: the item's class scores
    "targets": pl.List(pl.Boolean()),  # map: the item's multi-hot targets
}

# (method, metric) -> how the metric is recomputed from items
ITEM_METRICS: dict[tuple[str, str], str] = {
    ("probe", "accuracy"): "mean",
    ("probe", "map"): "map",
    ("retrieval", "roc_auc"): "mean",
    ("retrieval", "precision_at_1"): "mean",
    ("retrieval", "roc_auc_cross_recording"): "mean",
    ("retrieval", "precision_at_1_cross_recording"): "mean",
    ("clustering", "nmi"): "nmi",
}


def item_rows(base: dict[str, Any], method: str, metric: str, **arrays: Any) -> pl.DataFrame:
    """The items of one evaluation: ``base`` (encoder, checkpoint, seeds, benchmark, dataset, task_family,
    layer) with ``method``, ``metric`` and ``value=[n]`` (optionally with ``label=[n]``), ``label=[n]`` +
    ``cluster=[n]``, or ``scores=[n, C]`` + ``targets=[n, C]``."""
    n = len(next(iter(arrays.values())))
    cols: dict[str, Any] = {k: [base.get(k)] * n for k in ITEM_SCHEMA}
    cols.update(method=[method] * n, metric=[metric] * n, item=list(range(n)))
    for k, v in arrays.items():
        a = np.asarray(v)
        if k in ("scores", "targets"):
            cols[k] = [row.tolist() for row in a]
        elif k == "value":
            cols[k] = [None if not np.isfinite(x) else float(x) for x in a.astype(np.float64)]
        else:
            cols[k] = a.astype(np.int64).tolist()
    return pl.DataFrame(cols, schema=ITEM_SCHEMA)


# ------------------------------------------------------------------------------------- weighted metrics


def weighted_map(scores: np.ndarray, targets: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """The paper's mAP (mean over ALL classes of average precision; a class without a positive counts 0)
    of ``scores [N, C]`` against ``targets [N, C]`` with item multiplicities ``weights [B, N]`` -> ``[B]``.

    With unit weights it equals :func:`avexlab.evaluate.metrics.mean_average_precision` (scikit-learn's
    average precision: tied scores enter at one threshold)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(targets, dtype=bool)
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    n, c = s.shape
    b = w.shape[0]
    order = np.argsort(-s, axis=0, kind="stable")  # [N, C]
    s_sorted = np.take_along_axis(s, order, axis=0)
    y_sorted = np.take_along_axis(y, order, axis=0)
    is_end = np.ones((n, c), dtype=bool)
    is_end[:-1] = s_sorted[:-1] != s_sorted[1:]
    idx = np.broadcast_to(np.arange(n)[:, None], (n, c))
    end = np.where(is_end, idx, n)
    end = np.flip(np.minimum.accumulate(np.flip(end, axis=0), axis=0), axis=0)  # [N, C]: end of the tie group
    # Only the positives' precisions enter AP, so everything past the one cumulative sum over all items (the
    # weight seen down to each threshold) is computed at the positives only. Bootstrap multiplicities are
    # integers: their sums are exact in int32, a quarter of float64's memory traffic on [B, N, C].
    exact = bool(np.all(w == np.round(w))) and float(w.sum(axis=1).max(initial=0.0)) < 2**31
    ws = (w.astype(np.int32) if exact else w)[:, order]  # [B, N, C]: the weight at each sorted position
    seen = np.cumsum(ws, axis=1, dtype=ws.dtype)
    pc, pn = np.nonzero(y_sorted.T)  # positives, class-major, by sorted position within a class
    if pc.size == 0:
        return np.zeros(b)
    pe = end[pn, pc]  # [P]: the end of each positive's tie group
    pw = ws[:, pn, pc].astype(np.float64)  # [B, P]
    # true-positive weight down to each positive's threshold: a cumulative sum over the class's positives
    # up to the last one at or before the tie group's end
    key = pc.astype(np.int64) * (n + 1) + pn
    last = np.searchsorted(key, pc.astype(np.int64) * (n + 1) + pe, side="right") - 1  # [P]
    cum = np.cumsum(pw, axis=1)
    first = np.searchsorted(key, pc.astype(np.int64) * (n + 1), side="left")  # [P]: the class's first
    before = np.where(first > 0, cum[:, np.maximum(first - 1, 0)], 0.0)
    tp = cum[:, last] - before
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / seen[:, pe, pc]
    contrib = np.where(pw > 0, pw * precision, 0.0)
    total = np.zeros((b, c))
    n_pos = np.zeros((b, c))
    np.add.at(total.T, pc, contrib.T)
    np.add.at(n_pos.T, pc, pw.T)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.where(n_pos > 0, total / n_pos, 0.0)
    return ap.mean(axis=1)


def weighted_nmi(labels: np.ndarray, clusters: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Normalised mutual information (arithmetic normalisation, scikit-learn's default and its limit
    cases) of ``labels [N]`` and ``clusters [N]`` (integer codes) with item multiplicities
    ``weights [B, N]`` -> ``[B]``."""
    lab = np.unique(np.asarray(labels), return_inverse=True)[1]
    clu = np.unique(np.asarray(clusters), return_inverse=True)[1]
    w = np.atleast_2d(np.asarray(weights, dtype=np.float64))
    k, m = int(lab.max()) + 1, int(clu.max()) + 1
    onehot = np.zeros((lab.size, k * m))
    onehot[np.arange(lab.size), lab * m + clu] = 1.0
    table = (w @ onehot).reshape(-1, k, m)  # [B, k, m] contingency
    total = table.sum(axis=(1, 2))
    pu = table.sum(axis=2) / total[:, None]
    pv = table.sum(axis=1) / total[:, None]
    pij = table / total[:, None, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        mi = np.where(pij > 0, pij * (np.log(pij) - np.log(pu[:, :, None]) - np.log(pv[:, None, :])), 0.0)
        hu = -np.where(pu > 0, pu * np.log(pu), 0.0).sum(axis=1)
        hv = -np.where(pv > 0, pv * np.log(pv), 0.0).sum(axis=1)
    mi = np.clip(mi.sum(axis=(1, 2)), 0.0, None)
    n_u, n_v = (pu > 0).sum(axis=1), (pv > 0).sum(axis=1)
    one_each = (n_u == 1) & (n_v == 1)
    norm = 0.5 * (hu + hv)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(mi > 0, mi / norm, 0.0)
    return np.where(one_each, 1.0, out)


# --------------------------------------------------------------------------------------------- parts


@dataclass
class _Part:
    """One unit's items on one dataset for one metric, over its seeds: ``[T, P, ...]`` arrays."""

    kind: str
    values: np.ndarray | None = None  # mean: [T, P, n] float (nan = not counted)
    scores: np.ndarray | None = None  # map: [T, P, n, C]
    targets: np.ndarray | None = None  # map: [n, C]
    labels: np.ndarray | None = None  # nmi: [n]
    clusters: np.ndarray | None = None  # nmi: [T, P, n]

    @property
    def n_items(self) -> int:
        if self.kind == "mean":
            return int(self.values.shape[-1])
        if self.kind == "map":
            return int(self.targets.shape[0])
        return int(self.labels.shape[0])

    @property
    def n_probe(self) -> int:
        arr = self.values if self.kind == "mean" else self.scores if self.kind == "map" else self.clusters
        return int(arr.shape[1])

    def stat(self, counts: np.ndarray, wt: np.ndarray, wp: np.ndarray) -> np.ndarray:
        """``[B]``: the metric under item multiplicities ``counts [B, n]``, averaged over seeds with
        multiplicities ``wt [B, T]`` and ``wp [B, P]``."""
        if self.kind == "mean":
            v = self.values
            ok = np.isfinite(v)
            num = np.einsum("bi,tpi->btp", counts, np.where(ok, v, 0.0))
            den = np.einsum("bi,tpi->btp", counts, ok.astype(np.float64))
            with np.errstate(invalid="ignore", divide="ignore"):
                m = num / den
        elif self.kind == "map":
            t, p = self.scores.shape[:2]
            m = np.stack(
                [
                    np.stack([weighted_map(self.scores[i, j], self.targets, counts) for j in range(p)], 1)
                    for i in range(t)
                ],
                1,
            )
        else:
            t, p = self.clusters.shape[:2]
            m = np.stack(
                [
                    np.stack([weighted_nmi(self.labels, self.clusters[i, j], counts) for j in range(p)], 1)
                    for i in range(t)
                ],
                1,
            )
        w = wt[:, :, None] * wp[:, None, :]
        w = np.where(np.isfinite(m), w, 0.0)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(np.isfinite(m), m, 0.0).__mul__(w).sum(axis=(1, 2)) / w.sum(axis=(1, 2))


def _parts(items: pl.DataFrame, encoder: str, seeds: tuple[list[int], list[int]]) -> dict[tuple, _Part]:
    """(column index, dataset) -> :class:`_Part` of ``encoder`` (last layer)."""
    train_seeds, probe_seeds = seeds
    sub = items.filter(pl.col("encoder") == encoder)
    if sub.height == 0:
        raise EvaluationError(
            expected_found("items", f"rows of encoder {encoder!r}", "none", "Evaluate it with items kept.")
        )
    sub = sub.filter(pl.col("layer") == pl.col("layer").max())
    out: dict[tuple, _Part] = {}
    for ci, (_, family, method, metric) in enumerate(ANALYSIS_COLUMNS):
        kind = ITEM_METRICS.get((method, metric))
        rows = sub.filter(
            (pl.col("task_family") == family) & (pl.col("method") == method) & (pl.col("metric") == metric)
        )
        if kind is None or rows.height == 0:
            continue
        for dataset in sorted(rows["dataset"].unique().to_list()):
            d = rows.filter(pl.col("dataset") == dataset).sort("train_seed", "probe_seed", "item")
            n = int(d["item"].max()) + 1
            has_probe = d["probe_seed"].null_count() == 0
            ps = probe_seeds if has_probe else [None]
            grid = {}
            for (ts, pseed), g in d.group_by(["train_seed", "probe_seed"], maintain_order=True):
                grid[(ts, pseed)] = g
            missing = [(t, p) for t in train_seeds for p in ps if (t, p) not in grid]
            if missing:
                raise EvaluationError(
                    expected_found(
                        f"items of {encoder!r} on {dataset!r} ({method} {metric})",
                        f"every (train_seed, probe_seed) of {train_seeds} x {ps}",
                        f"none for {missing[:4]}",
                        "Evaluate every seed, or compare encoders with the same seeds.",
                    )
                )
            cells = [[grid[(t, p)] for p in ps] for t in train_seeds]
            if kind == "mean":
                vals = np.full((len(train_seeds), len(ps), n), np.nan)
                for i, row in enumerate(cells):
                    for j, g in enumerate(row):
                        vals[i, j, g["item"].to_numpy()] = g["value"].fill_null(np.nan).to_numpy()
                out[(ci, dataset)] = _Part("mean", values=vals)
            elif kind == "map":
                first = cells[0][0].sort("item")
                targets = np.asarray(first["targets"].to_list(), dtype=bool)
                sc = np.stack(
                    [
                        np.stack(
                            [np.asarray(g.sort("item")["scores"].to_list(), dtype=np.float64) for g in row]
                        )
                        for row in cells
                    ]
                )
                out[(ci, dataset)] = _Part("map", scores=sc, targets=targets)
            else:
                first = cells[0][0].sort("item")
                cl = np.stack(
                    [np.stack([g.sort("item")["cluster"].to_numpy() for g in row]) for row in cells]
                )
                out[(ci, dataset)] = _Part("nmi", labels=first["label"].to_numpy(), clusters=cl)
    return out


def _seeds_of(items: pl.DataFrame, encoders: Sequence[str]) -> tuple[list[int], list[int], dict[str, list]]:
    """The probe seeds shared by ``encoders`` and each encoder's train seeds (equal in number)."""
    sub = items.filter(pl.col("encoder").is_in(list(encoders)))
    probe = sorted(sub["probe_seed"].drop_nulls().unique().to_list())
    train: dict[str, list] = {}
    for e in encoders:
        train[e] = sorted(sub.filter(pl.col("encoder") == e)["train_seed"].unique().to_list(), key=str)
    sizes = {len(v) for v in train.values()}
    if len(sizes) > 1:
        raise EvaluationError(
            expected_found(
                "compared encoders",
                "the same number of training seeds (they are paired by position)",
                f"{ {e: v for e, v in train.items()} }",
                "Train every compared cell with the same seeds.",
            )
        )
    return probe, sorted(sizes)[0] if sizes else 0, train  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------- bootstrap


@dataclass(frozen=True)
class Interval:
    """A point estimate with its bootstrap interval. ``n_items``: test items resampled (all strata),
    ``n_train_seeds`` / ``n_probe_seeds``: seeds resampled."""

    estimate: float
    ci_low: float
    ci_high: float
    n_items: int
    n_train_seeds: int
    n_probe_seeds: int


def bootstrap_indices(
    sizes: Sequence[int],
    statistic: Callable[[list[np.ndarray]], np.ndarray],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    batch: int = 200,
) -> tuple[float, float, float]:
    """Percentile bootstrap of ``statistic`` over independent strata of ``sizes`` elements each.

    ``statistic(counts)`` gets one ``[B, size]`` array of multiplicities per stratum (a batch of resamples;
    all ones for the original sample) and returns ``[B]``. Strata of one element are held fixed. Resampling
    is :func:`scipy.stats.bootstrap`'s (stratified: each stratum is one of its samples), ``batch``
    resamples at a time (memory), drawn from ``numpy.random.default_rng(seed)``. Returns
    ``(estimate, low, high)``."""
    from scipy.stats import bootstrap

    sizes = [int(s) for s in sizes]
    free = [i for i, s in enumerate(sizes) if s >= 2]

    def counts_of(resampled: Sequence[np.ndarray]) -> list[np.ndarray]:
        batch = np.atleast_2d(resampled[0]).shape[0] if resampled else 1
        out = [np.ones((batch, s)) for s in sizes]
        for i, idx in zip(free, resampled, strict=True):
            idx = np.atleast_2d(idx)
            c = np.zeros((idx.shape[0], sizes[i]))
            np.add.at(c, (np.arange(idx.shape[0])[:, None], idx), 1.0)
            out[i] = c
        return out

    estimate = float(statistic([np.ones((1, s)) for s in sizes])[0])
    if not free:
        return estimate, estimate, estimate

    def stat(*resampled: np.ndarray, axis: int = -1) -> np.ndarray:
        value = statistic(counts_of(resampled))
        return value if np.ndim(resampled[0]) > 1 else value[0]

    res = bootstrap(
        tuple(np.arange(sizes[i]) for i in free),
        stat,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=True,
        batch=max(1, min(n_resamples, batch)),
        random_state=np.random.default_rng(seed),
    )
    return estimate, float(res.confidence_interval.low), float(res.confidence_interval.high)


def mean_difference_terms(
    pairs: Sequence[tuple[str, str]], columns: Sequence[str]
) -> list[tuple[float, str, str]]:
    """Terms of the mean over ``pairs`` ``(a, b)`` and ``columns`` of ``value(a) - value(b)``."""
    w = 1.0 / (len(pairs) * len(columns))
    return [(s * w, e, c) for a, b in pairs for c in columns for s, e in ((1.0, a), (-1.0, b))]


def effect_interval(
    items: pl.DataFrame,
    terms: Sequence[tuple[float, str, str]],
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Interval:
    """The interval of a linear combination of column values, ``sum w * value(encoder, column)``.

    ``terms``: ``(weight, encoder, column)`` with ``column`` a name of
    :data:`~avexlab.evaluate.tables.ANALYSIS_COLUMNS`; e.g. ``[(1, "a", c), (-1, "b", c)]`` for the paired
    difference a - b on column c (:func:`mean_difference_terms` builds means over pairs and columns). A
    column's value is the mean over its datasets of the metric, averaged over the encoder's seeds. Every
    draw uses the same test items and the same seed indices for all terms (paired); the encoders must share
    their probe seeds and have as many training seeds (paired by position).
    """
    names = [c[0] for c in ANALYSIS_COLUMNS]
    unknown = sorted({c for _, _, c in terms if c not in names})
    if unknown or not terms:
        raise EvaluationError(
            expected_found("effect terms", f"(weight, encoder, column) with columns among {names}",
                           f"{len(terms)} terms, unknown columns {unknown}", "Fix the terms.")
        )  # fmt: skip
    merged: dict[tuple[str, str], float] = {}
    for w, e, c in terms:  # one term per (encoder, column): each part is recomputed once per draw
        merged[(e, c)] = merged.get((e, c), 0.0) + float(w)
    terms = [(w, e, c) for (e, c), w in merged.items() if w != 0.0]
    if not terms:
        raise EvaluationError(
            expected_found(
                "effect terms", "a combination that is not identically 0", "terms that cancel", "Fix them."
            )
        )
    encoders = list(dict.fromkeys(e for _, e, _ in terms))
    probe, n_train, train = _seeds_of(items, encoders)
    parts = {e: _parts(items, e, (train[e], probe)) for e in encoders}
    needed = {(names.index(c), e) for _, e, c in terms}
    keys: set[tuple[int, str]] = set()
    for ci, e in needed:
        found = {k for k in parts[e] if k[0] == ci}
        if not found:
            raise EvaluationError(
                expected_found(
                    f"items of {e!r}",
                    f"column {names[ci]!r}",
                    "none",
                    "Evaluate the encoder on the suite of that column, keeping items.",
                )
            )
        keys |= found
    for e in encoders:  # every term of a column averages the same datasets
        for ci in {c for c, e2 in needed if e2 == e}:
            lacking = sorted(d for c, d in keys if c == ci and (c, d) not in parts[e])
            if lacking:
                raise EvaluationError(
                    expected_found(
                        f"items of {e!r}", f"every dataset of column {names[ci]!r}", f"none for {lacking}",
                        "Evaluate every encoder on the same suites.",
                    )
                )  # fmt: skip
    datasets = sorted({d for _, d in keys})
    n_items: dict[str, int] = {}
    for ci, e in needed:
        for c, d in keys:
            if c != ci:
                continue
            n = parts[e][(c, d)].n_items
            if n_items.setdefault(d, n) != n:
                raise EvaluationError(
                    expected_found(
                        f"test items of dataset {d!r}",
                        "the same number for every compared metric and encoder (the same test split)",
                        f"{n_items[d]} and {n} ({e!r})",
                        "Compare encoders evaluated on the same suites, with the same subsampling.",
                    )
                )
    sizes = [n_items[d] for d in datasets] + [n_train, max(1, len(probe))]
    by_col: dict[int, list[str]] = {}
    for ci, d in sorted(keys):
        by_col.setdefault(ci, []).append(d)

    def statistic(counts: list[np.ndarray]) -> np.ndarray:
        c_of = dict(zip(datasets, counts[: len(datasets)], strict=True))
        wt, wp_all = counts[-2], counts[-1]
        total = np.zeros(wt.shape[0])
        for w, e, column in terms:
            ci = names.index(column)
            col = np.zeros(wt.shape[0])
            for d in by_col[ci]:
                part = parts[e][(ci, d)]
                # a part without probe seeds (retrieval: no probe) weighs its one row by 1
                wp = wp_all if part.n_probe == wp_all.shape[1] else np.ones((wp_all.shape[0], 1))
                col = col + part.stat(c_of[d], wt, wp)
            total = total + w * col / len(by_col[ci])
        return total

    est, lo, hi = bootstrap_indices(
        sizes, statistic, n_resamples=n_resamples, confidence=confidence, seed=seed
    )
    return Interval(est, lo, hi, sum(n_items.values()), n_train, max(1, len(probe)))


def cell_intervals(
    items: pl.DataFrame,
    encoders: Sequence[str] | None = None,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    keep_in: str | os.PathLike[str] | None = None,
) -> pl.DataFrame:
    """Every encoder x column (paper and analysis columns) with items: ``encoder, column, estimate, ci_low, ci_high, n_items,
    n_train_seeds, n_probe_seeds`` (last layer; the column is the mean over its datasets of the metric,
    averaged over the encoder's seeds; the interval resamples test items per dataset and seeds).

    ``keep_in``: a grid's folder; the table is kept in its ``analysis/`` and reused while the items, the
    settings and this code are unchanged (:func:`avexlab.evaluate.memo.memo_table`)."""
    from .memo import memo_table

    settings = {"encoders": encoders, "n_resamples": n_resamples, "confidence": confidence, "seed": seed}
    return memo_table(
        keep_in,
        "cell-intervals",
        [items],
        settings,
        ("avexlab.evaluate.stats", "avexlab.evaluate.tables", "avexlab.frames"),
        lambda: _cell_intervals(items, encoders, n_resamples=n_resamples, confidence=confidence, seed=seed),
    )


def _cell_intervals(
    items: pl.DataFrame,
    encoders: Sequence[str] | None,
    *,
    n_resamples: int,
    confidence: float,
    seed: int,
) -> pl.DataFrame:
    names = [c[0] for c in ANALYSIS_COLUMNS]
    rows = []
    for e in encoders if encoders is not None else items["encoder"].unique(maintain_order=True).to_list():
        probe, _, train = _seeds_of(items, [e])
        measured = sorted({ci for ci, _ in _parts(items, e, (train[e], probe))})
        for ci in measured:
            iv = effect_interval(
                items,
                [(1.0, e, names[ci])],
                n_resamples=n_resamples,
                confidence=confidence,
                seed=seed,
            )
            rows.append({"encoder": e, "column": names[ci], **iv.__dict__})
    return pl.DataFrame(
        rows,
        schema={
            "encoder": pl.String,
            "column": pl.String,
            "estimate": pl.Float64,
            "ci_low": pl.Float64,
            "ci_high": pl.Float64,
            "n_items": pl.Int64,
            "n_train_seeds": pl.Int64,
            "n_probe_seeds": pl.Int64,
        },
    )


def row_intervals(
    items: pl.DataFrame,
    *,
    n_resamples: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pl.DataFrame:
    """An interval for every (encoder, dataset, method, metric, layer) the items hold (one encoder's
    evaluation of a user's manifest, say): the metric recomputed on the dataset's test items drawn with
    replacement and, for probes and k-means, over the probe seeds. Columns ``encoder, dataset, method,
    metric, layer, estimate, ci_low, ci_high, n_items``."""
    rows = []
    keys = ["encoder", "dataset", "method", "metric", "layer"]
    for key, g in items.group_by(keys, maintain_order=True):
        kind = ITEM_METRICS.get((key[2], key[3]))
        if kind is None:
            continue
        g = g.sort("probe_seed", "item", nulls_last=True)
        seeds = g["probe_seed"].unique(maintain_order=True).to_list()
        n = int(g["item"].max()) + 1
        per_seed = [g.filter(pl.col("probe_seed").eq_missing(s)) for s in seeds]
        if kind == "mean":
            vals = np.full((1, len(seeds), n), np.nan)
            for j, s in enumerate(per_seed):
                vals[0, j, s["item"].to_numpy()] = s["value"].fill_null(np.nan).to_numpy()
            part = _Part("mean", values=vals)
        elif kind == "map":
            part = _Part(
                "map",
                scores=np.stack([np.asarray(s["scores"].to_list(), np.float64) for s in per_seed])[None],
                targets=np.asarray(per_seed[0]["targets"].to_list(), dtype=bool),
            )
        else:
            part = _Part(
                "nmi",
                labels=per_seed[0]["label"].to_numpy(),
                clusters=np.stack([s["cluster"].to_numpy() for s in per_seed])[None],
            )
        est, lo, hi = bootstrap_indices(
            [n, len(seeds)],
            lambda c, part=part: part.stat(c[0], np.ones((c[0].shape[0], 1)), c[1]),
            n_resamples=n_resamples,
            confidence=confidence,
            seed=seed,
        )
        rows.append(
            dict(zip(keys, key, strict=True)) | {"estimate": est, "ci_low": lo, "ci_high": hi, "n_items": n}
        )
    return pl.DataFrame(
        rows,
        schema={
            "encoder": pl.String, "dataset": pl.String, "method": pl.String, "metric": pl.String,
            "layer": pl.Int64, "estimate": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
            "n_items": pl.Int64,
        },
    )  # fmt: skip
