"""Clustering evaluation as the paper defines it: k-means on the RAW embeddings (no normalisation), with
K = the number of distinct labels, ``n_init=10``, seed 42; scored against the labels by NMI (arithmetic
normalisation, scikit-learn's default), ARI and V-measure.

Unlike the reference code, nothing fails silently: too few classes or clips raise
:class:`~avexlab.errors.EvaluationError` instead of returning zeros, and mini-batch k-means (an
approximation, faster for very large N) is used only when asked for with ``algorithm="minibatch"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from avexlab.errors import EvaluationError, expected_found

__all__ = ["clustering_scores"]


def clustering_scores(
    embeddings: ArrayLike,
    labels: ArrayLike | Sequence[Any],
    *,
    seed: int = 42,
    n_init: int = 10,
    algorithm: Literal["kmeans", "minibatch"] = "kmeans",
    max_iter: int = 300,
    assignments: bool = False,
) -> dict[str, Any]:
    """k-means with K = number of distinct labels, scored against the labels.

    Args:
        embeddings: ``[N, D]`` float, clustered as they are (Euclidean, not L2-normalised).
        labels: ``[N]`` one label per clip (ints or strings).
        seed: ``random_state`` of k-means (the paper: 42).
        n_init: k-means restarts; the run with the lowest inertia is kept (the paper: 10).
        algorithm: ``"kmeans"`` (scikit-learn ``KMeans``, Lloyd; the paper's) or ``"minibatch"``
            (``MiniBatchKMeans``, batch 4096; an approximation, opt-in only).
        max_iter: iteration cap per restart (scikit-learn's default 300).
        assignments: also return ``"labels"`` (``[N]`` int64 class codes) and ``"clusters"`` (``[N]`` int64
            cluster of each clip), for bootstrap intervals.

    Returns:
        ``{"nmi": float, "ari": float, "v_measure": float, "k": int}`` (+ the assignments).
    """
    from sklearn.cluster import KMeans, MiniBatchKMeans
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score, v_measure_score

    x = np.asarray(embeddings)
    if x.ndim != 2:
        raise EvaluationError(
            expected_found("embeddings", "a [N, D] array", f"shape {x.shape}", "Pass one row per clip.")
        )
    if hasattr(labels, "to_list"):
        labels = labels.to_list()  # type: ignore[union-attr]
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != x.shape[0]:
        raise EvaluationError(
            expected_found(
                "labels",
                f"one label per row ([{x.shape[0]}])",
                f"shape {y.shape}",
                "Clustering needs single labels; for multi-label data choose one label field.",
            )
        )
    if not np.isfinite(x).all():
        raise EvaluationError(
            expected_found("embeddings", "finite values", "NaN or inf", "Check the encoder.")
        )
    _, codes = np.unique(y, return_inverse=True)
    k = int(codes.max()) + 1 if codes.size else 0
    if k < 2 or k > x.shape[0]:
        raise EvaluationError(
            expected_found(
                "labels",
                "2 <= number of classes <= number of clips",
                f"{k} classes, {x.shape[0]} clips",
                "Fix.",
            )
        )
    if algorithm == "kmeans":
        model = KMeans(n_clusters=k, n_init=n_init, random_state=seed, max_iter=max_iter)
    elif algorithm == "minibatch":
        model = MiniBatchKMeans(
            n_clusters=k, n_init=n_init, random_state=seed, max_iter=max_iter, batch_size=4096
        )
    else:
        raise EvaluationError(
            expected_found("algorithm", "'kmeans' or 'minibatch'", repr(algorithm), "Pick one of them.")
        )
    pred = model.fit_predict(x)
    out: dict[str, Any] = {
        "nmi": float(normalized_mutual_info_score(codes, pred)),
        "ari": float(adjusted_rand_score(codes, pred)),
        "v_measure": float(v_measure_score(codes, pred)),
        "k": k,
    }
    if assignments:
        out.update(labels=codes.astype(np.int64), clusters=np.asarray(pred, dtype=np.int64))
    return out
