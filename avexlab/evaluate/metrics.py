"""Classification metrics on probe outputs, with the paper's definitions.

All functions take numpy-compatible arrays and return Python floats. They are vectorised over clips and
classes (no per-clip Python loops).

- :func:`accuracy`, :func:`balanced_accuracy`, :func:`macro_f1`: from predicted and true class indices.
- :func:`average_precision_per_class`: average precision of every column, computed exactly as
  ``sklearn.metrics.average_precision_score`` (step-wise precision-recall sum over distinct thresholds,
  tied scores form one threshold).
- :func:`mean_average_precision`: the paper's mAP, the mean over ALL classes; a class without a positive
  in ``targets`` counts 0.
- :func:`mean_average_precision_present`: the common variant that skips classes without positives.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from avexlab.errors import EvaluationError, expected_found

__all__ = [
    "accuracy",
    "average_precision_per_class",
    "balanced_accuracy",
    "macro_f1",
    "mean_average_precision",
    "mean_average_precision_present",
    "to_multi_hot",
]


def _class_vectors(y_true: ArrayLike, y_pred: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    t = np.asarray(y_true)
    p = np.asarray(y_pred)
    if t.ndim != 1 or p.ndim != 1 or t.shape != p.shape:
        raise EvaluationError(
            expected_found(
                "class predictions",
                "two 1-D arrays of class indices of the same length",
                f"y_true {t.shape} and y_pred {p.shape}",
                "Pass predicted classes (argmax of the scores), not the scores.",
            )
        )
    if t.size == 0:
        raise EvaluationError(
            expected_found("class predictions", "at least one clip", "none", "Check the test split.")
        )
    return t, p


def _confusion(t: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Confusion matrix ``[L, L]`` over the union of labels of ``t`` and ``p`` (rows = true)."""
    labels, inv = np.unique(np.concatenate([t, p]), return_inverse=True)
    n = t.size
    k = labels.size
    return np.bincount(inv[:n] * k + inv[n:], minlength=k * k).reshape(k, k)


def accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Fraction of clips whose predicted class equals the true class. ``y_true``, ``y_pred``: ``[N]``."""
    t, p = _class_vectors(y_true, y_pred)
    return float(np.mean(t == p))


def balanced_accuracy(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Mean per-class recall over the classes present in ``y_true`` (as scikit-learn, ``adjusted=False``)."""
    t, p = _class_vectors(y_true, y_pred)
    cm = _confusion(t, p)
    support = cm.sum(axis=1)
    present = support > 0
    return float(np.mean(np.diag(cm)[present] / support[present]))


def macro_f1(y_true: ArrayLike, y_pred: ArrayLike) -> float:
    """Unweighted mean of per-class F1 over the union of true and predicted classes; a class with no true
    and no predicted clip cannot occur, and a class with zero precision and recall scores 0 (as
    scikit-learn's ``f1_score(average="macro", zero_division=0)``)."""
    t, p = _class_vectors(y_true, y_pred)
    cm = _confusion(t, p)
    tp = np.diag(cm).astype(np.float64)
    denom = cm.sum(axis=0) + cm.sum(axis=1)  # 2 tp + fp + fn
    f1 = np.divide(2.0 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    return float(np.mean(f1))


def to_multi_hot(targets: ArrayLike, num_classes: int) -> np.ndarray:
    """``[N]`` class indices, or ``[N, C]`` indicator matrix, to a ``[N, C]`` bool matrix."""
    y = np.asarray(targets)
    if y.ndim == 1:
        if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= num_classes):
            raise EvaluationError(
                expected_found(
                    "targets",
                    f"integer class indices in [0, {num_classes})",
                    f"dtype {y.dtype}, range [{y.min()}, {y.max()}]",
                    "Map labels to indices with the label space the scores were produced with.",
                )
            )
        out = np.zeros((y.size, num_classes), dtype=bool)
        out[np.arange(y.size), y] = True
        return out
    if y.ndim == 2 and y.shape[1] == num_classes:
        if not np.isin(y, (0, 1)).all():
            raise EvaluationError(
                expected_found("multi-hot targets", "values in {0, 1}", "other values", "Binarise targets.")
            )
        return y.astype(bool)
    raise EvaluationError(
        expected_found(
            "targets",
            f"[N] class indices or a [N, {num_classes}] multi-hot matrix",
            f"shape {y.shape}",
            "Give one target row per score row.",
        )
    )


def average_precision_per_class(scores: ArrayLike, targets: ArrayLike) -> np.ndarray:
    """Average precision of each class, as ``sklearn.metrics.average_precision_score`` on each column.

    Args:
        scores: ``[N, C]`` float scores (logits or probabilities; only their order matters).
        targets: ``[N, C]`` multi-hot {0, 1}, or ``[N]`` integer class indices.

    Returns:
        ``[C]`` float64: AP per class; ``nan`` for a class without a positive in ``targets``.

    AP = sum over distinct score thresholds (descending) of (R_k - R_{k-1}) * P_k. Clips with tied scores
    enter at the same threshold, so the order among ties does not matter (scikit-learn's handling).
    """
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape[0] == 0:
        raise EvaluationError(
            expected_found(
                "scores", "a [N, C] array with N >= 1", f"shape {s.shape}", "Pass one row per clip."
            )
        )
    if not np.isfinite(s).all():
        raise EvaluationError(
            expected_found("scores", "finite values", "NaN or inf", "Check the probe's outputs.")
        )
    y = to_multi_hot(targets, s.shape[1])
    if y.shape[0] != s.shape[0]:
        raise EvaluationError(
            expected_found(
                "targets", f"{s.shape[0]} rows (one per score row)", f"{y.shape[0]}", "Align them."
            )
        )
    n, c = s.shape
    order = np.argsort(-s, axis=0, kind="stable")  # descending score per column
    s_sorted = np.take_along_axis(s, order, axis=0)
    y_sorted = np.take_along_axis(y, order, axis=0)
    tp = np.cumsum(y_sorted, axis=0)
    # Last index of each run of tied scores: a threshold of the precision-recall curve.
    is_end = np.ones((n, c), dtype=bool)
    is_end[:-1] = s_sorted[:-1] != s_sorted[1:]
    idx = np.broadcast_to(np.arange(n)[:, None], (n, c))
    end = np.where(is_end, idx, n)
    end = np.flip(np.minimum.accumulate(np.flip(end, axis=0), axis=0), axis=0)  # next threshold at or after
    precision_at_end = np.take_along_axis(tp, end, axis=0) / (end + 1.0)
    n_pos = y.sum(axis=0)
    # Each positive adds 1/P of recall at the threshold of its tie run, weighted by that threshold's precision.
    total = np.where(y_sorted, precision_at_end, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.where(n_pos > 0, total / n_pos, np.nan)
    return ap


def mean_average_precision(scores: ArrayLike, targets: ArrayLike) -> float:
    """The paper's mAP: mean of :func:`average_precision_per_class` over ALL ``C`` classes; a class with
    no positive in ``targets`` counts 0. ``scores``: ``[N, C]``; ``targets``: ``[N, C]`` or ``[N]``."""
    ap = average_precision_per_class(scores, targets)
    return float(np.mean(np.nan_to_num(ap, nan=0.0)))


def mean_average_precision_present(scores: ArrayLike, targets: ArrayLike) -> float:
    """mAP over the classes that have at least one positive in ``targets`` (the usual variant; NOT the
    paper's). Raises :class:`EvaluationError` when no class has a positive."""
    ap = average_precision_per_class(scores, targets)
    present = ~np.isnan(ap)
    if not present.any():
        raise EvaluationError(
            expected_found("targets", "at least one positive", "none in any class", "Check the test labels.")
        )
    return float(np.mean(ap[present]))
