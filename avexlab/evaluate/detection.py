"""Event-level detection: from frame (or window) scores to events, and onset/offset-tolerant event F1.

This goes beyond the paper, which scores detection only at the level of 5 s windows (mAP). Events are
tables with the columns of ``avexlab.data.schema.EVENT_SCHEMA`` that matter here: ``recording_id``,
``onset_s``, ``offset_s``, ``label`` (seconds from the start of the recording).

Matching follows sed_eval's event-based metrics (Mesaros et al., 2016; DCASE): an estimated event matches
a reference event of the same recording and label when ``|onset_est - onset_ref| <= t_collar`` and
``|offset_est - offset_ref| <= max(t_collar, percentage_of_length * (offset_ref - onset_ref))``. Each
event matches at most one other: the matching is OPTIMAL (a maximum-cardinality bipartite matching, so
the count of true positives is the largest any one-to-one assignment allows), not greedy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
from numpy.typing import ArrayLike

from avexlab.errors import EvaluationError, expected_found

__all__ = ["EVENT_COLUMNS", "event_f1", "scores_to_events"]

EVENT_COLUMNS: tuple[str, ...] = ("recording_id", "onset_s", "offset_s", "label")


def scores_to_events(
    scores: ArrayLike,
    labels: Sequence[str],
    *,
    hop_s: float,
    frame_s: float | None = None,
    threshold: float | ArrayLike = 0.5,
    median_filter_s: float = 0.0,
    min_duration_s: float = 0.0,
    recording_id: str = "",
) -> pl.DataFrame:
    """Turn per-frame class scores of one recording into events.

    Args:
        scores: ``[T, C]`` float, frame ``t`` covering ``[t * hop_s, t * hop_s + frame_s)`` seconds.
        labels: the ``C`` class names, in column order.
        hop_s: seconds between frame starts.
        frame_s: seconds one frame covers (default ``hop_s``; larger for overlapping windows).
        threshold: a frame is active where ``score >= threshold``; a float or ``[C]`` per class.
        median_filter_s: length of a median filter applied to the 0/1 activity along time, in seconds
            (rounded to an odd number of frames; 0 = none).
        min_duration_s: events shorter than this (seconds) are dropped.
        recording_id: stored in every row.

    Returns:
        polars DataFrame ``recording_id, onset_s, offset_s, label`` sorted by label then onset.
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[1] != len(labels):
        raise EvaluationError(
            expected_found(
                "scores", f"a [T, {len(labels)}] array (one column per label)", f"shape {s.shape}", "Fix it."
            )
        )
    if hop_s <= 0 or (frame_s is not None and frame_s <= 0):
        raise EvaluationError(
            expected_found("hop_s/frame_s", "positive seconds", f"{hop_s}/{frame_s}", "Fix the timing.")
        )
    frame_s = hop_s if frame_s is None else frame_s
    active = s >= np.asarray(threshold, dtype=np.float64)
    k = int(round(median_filter_s / hop_s))
    if k > 1:
        from scipy.ndimage import median_filter

        k += 1 - k % 2  # odd window so that the filter is centred
        active = median_filter(active.astype(np.uint8), size=(k, 1), mode="nearest").astype(bool)
    t, c = active.shape
    padded = np.zeros((t + 2, c), dtype=np.int8)
    padded[1:-1] = active
    d = np.diff(padded, axis=0)  # +1 at a run start, -1 just after a run end
    on_c, on_t = np.nonzero(d.T == 1)  # sorted by class, then time
    _, off_t = np.nonzero(d.T == -1)
    onset = on_t * hop_s
    offset = (off_t - 1) * hop_s + frame_s
    keep = (offset - onset) >= min_duration_s
    names = np.asarray(labels, dtype=object)
    return pl.DataFrame(
        {
            "recording_id": [recording_id] * int(keep.sum()),
            "onset_s": onset[keep].astype(np.float64),
            "offset_s": offset[keep].astype(np.float64),
            "label": names[on_c[keep]].tolist(),
        },
        schema={"recording_id": pl.String, "onset_s": pl.Float64, "offset_s": pl.Float64, "label": pl.String},
    )


def _check_events(df: pl.DataFrame, name: str) -> pl.DataFrame:
    missing = [col for col in EVENT_COLUMNS if col not in df.columns]
    if missing:
        raise EvaluationError(
            expected_found(name, f"columns {list(EVENT_COLUMNS)}", f"missing {missing}", "Add them.")
        )
    out = df.select(
        pl.col("recording_id").cast(pl.String),
        pl.col("onset_s").cast(pl.Float64),
        pl.col("offset_s").cast(pl.Float64),
        pl.col("label").cast(pl.String),
    ).with_row_index("_i")
    bad = out.filter(pl.col("offset_s") < pl.col("onset_s"))
    if bad.height:
        raise EvaluationError(
            expected_found(
                name, "offset_s >= onset_s", f"{bad.height} events ending before they start", "Fix the times."
            )
        )
    return out


def event_f1(
    reference: pl.DataFrame,
    estimated: pl.DataFrame,
    *,
    t_collar: float = 0.2,
    percentage_of_length: float = 0.2,
    classes: Sequence[str] | None = None,
) -> tuple[pl.DataFrame, dict[str, float]]:
    """Event-based precision, recall and F1 per class, and their micro/macro averages.

    Args:
        reference: annotated events (``recording_id, onset_s, offset_s, label``).
        estimated: detected events, same columns.
        t_collar: onset tolerance in seconds (DCASE: 0.2 s); also the minimum offset tolerance.
        percentage_of_length: offset tolerance as a fraction of the reference event's duration (0.2).
        classes: the classes to report (default: every label in ``reference`` or ``estimated``).

    Returns:
        ``(per_class, summary)``: per_class is a polars frame ``label, n_ref, n_est, tp, fp, fn,
        precision, recall, f1`` (precision/recall/F1 are 0 where undefined by a zero denominator); summary
        holds ``micro_f1, micro_precision, micro_recall`` (from summed counts) and ``macro_f1`` (mean of
        per-class F1 over the classes with at least one reference or estimated event).
    """
    ref = _check_events(reference, "reference events")
    est = _check_events(estimated, "estimated events")
    pairs = (
        ref.join(est, on=["recording_id", "label"], suffix="_e")
        .with_columns((pl.col("offset_s") - pl.col("onset_s")).alias("_dur"))
        .filter(
            ((pl.col("onset_s_e") - pl.col("onset_s")).abs() <= t_collar)
            & (
                (pl.col("offset_s_e") - pl.col("offset_s")).abs()
                <= pl.max_horizontal(pl.lit(t_collar), percentage_of_length * pl.col("_dur"))
            )
        )
    )
    matched_labels: list[str] = []
    if pairs.height:
        from scipy.sparse import csr_matrix
        from scipy.sparse.csgraph import maximum_bipartite_matching

        graph = csr_matrix(
            (np.ones(pairs.height, dtype=np.int8), (pairs["_i"].to_numpy(), pairs["_i_e"].to_numpy())),
            shape=(ref.height, est.height),
        )
        match = maximum_bipartite_matching(graph, perm_type="column")  # ref row -> est column or -1
        matched_labels = ref["label"].to_numpy()[match >= 0].tolist()
    labels = list(classes) if classes is not None else sorted(set(ref["label"]) | set(est["label"]))
    counts = pl.DataFrame({"label": labels}, schema={"label": pl.String})

    def count(df: pl.DataFrame, name: str) -> pl.DataFrame:
        return df.group_by("label").agg(pl.len().alias(name))

    per_class = (
        counts.join(count(ref, "n_ref"), on="label", how="left")
        .join(count(est, "n_est"), on="label", how="left")
        .join(
            count(pl.DataFrame({"label": matched_labels}, schema={"label": pl.String}), "tp"),
            on="label",
            how="left",
        )
        .fill_null(0)
        .with_columns(pl.col("n_ref", "n_est", "tp").cast(pl.Int64))
        .with_columns(
            (pl.col("n_est") - pl.col("tp")).alias("fp"),
            (pl.col("n_ref") - pl.col("tp")).alias("fn"),
        )
    )
    per_class = per_class.with_columns(
        _safe_div(pl.col("tp"), pl.col("n_est")).alias("precision"),
        _safe_div(pl.col("tp"), pl.col("n_ref")).alias("recall"),
        _safe_div(2 * pl.col("tp"), pl.col("n_est") + pl.col("n_ref")).alias("f1"),
    )
    tp, n_est, n_ref = (int(per_class[c].sum()) for c in ("tp", "n_est", "n_ref"))
    seen = per_class.filter((pl.col("n_ref") + pl.col("n_est")) > 0)
    summary = {
        "micro_precision": tp / n_est if n_est else 0.0,
        "micro_recall": tp / n_ref if n_ref else 0.0,
        "micro_f1": 2 * tp / (n_est + n_ref) if (n_est + n_ref) else 0.0,
        "macro_f1": float(seen["f1"].mean()) if seen.height else float("nan"),
    }
    return per_class, summary


def _safe_div(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    return pl.when(den > 0).then(num / den).otherwise(0.0)
