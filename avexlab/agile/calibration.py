"""What a score means: calibration, reliability, per-class thresholds with intervals, per-class reports.

All functions take per-output arrays: ``scores`` or ``logits`` ``[n, C]`` and targets ``Y [n, C]`` with
1 (positive), 0 (negative) and -1 (not labelled, ignored). They should be fed held-out scores: labels the
classifier was not trained on (reviewed detections, or :func:`~avexlab.agile.classifier.cross_val_logits`).

- :class:`Calibrator`: per-output temperature scaling (``sigmoid(z / T)``, keeps the ranking) or Platt
  scaling (``sigmoid(a z + b)``), each fitted by minimising the log loss of the labelled entries.
- :func:`expected_calibration_error` and :func:`reliability_curve`: equal-width confidence bins.
- :func:`threshold_for_precision` / :func:`threshold_for_recall`: the threshold that reaches a target on
  the labelled windows, with a percentile bootstrap interval (``scipy.stats.bootstrap``, windows resampled
  with their labels) for the threshold and for the precision and recall it gives.
- :func:`classification_report`: precision, recall, F1 at each class's threshold, average precision,
  ROC AUC and support, one row per class plus the macro average (as scikit-learn's report).

Caveat: windows chosen by search or active learning are not a random sample of the archive, so
precision measured on them is not the archive's precision. For that, review a random sample of the
detections above the threshold (``next_batch(strategy="random")`` over detections) and fit on those.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import polars as pl

from avexlab.errors import expected_found

from .store import StoreError

__all__ = [
    "Calibrator",
    "classification_report",
    "expected_calibration_error",
    "reliability_curve",
    "threshold_for_precision",
    "threshold_for_recall",
]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    from scipy.special import expit

    return expit(np.asarray(z, dtype=np.float64))


def _labelled(scores: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s, t = np.asarray(scores, dtype=np.float64).reshape(-1), np.asarray(y).reshape(-1)
    if s.shape != t.shape:
        raise StoreError(
            expected_found("scores and targets", "the same shape", f"{s.shape} and {t.shape}", "Align them.")
        )
    keep = t >= 0
    return s[keep], t[keep].astype(np.int64)


# ----------------------------------------------------------------------------------- calibration
class Calibrator:
    """Per-output calibration of logits: ``method`` ``"temperature"`` (``z / T``) or ``"platt"`` (``a z + b``).

    ``params``: one ``(a, b)`` per output (temperature: ``a = 1 / T``, ``b = 0``). An output with no
    positive or no negative label keeps ``(1, 0)`` (identity) and is listed in ``skipped``.
    """

    def __init__(
        self, method: Literal["temperature", "platt"], params: np.ndarray, skipped: list[int] | None = None
    ) -> None:
        self.method = method
        self.params = np.asarray(params, dtype=np.float64).reshape(-1, 2)
        self.skipped = list(skipped or [])

    @classmethod
    def fit(
        cls, logits: np.ndarray, Y: np.ndarray, method: Literal["temperature", "platt"] = "temperature"
    ) -> Calibrator:
        """Fit one calibration per column of ``logits [n, C]`` on the labelled entries of ``Y [n, C]``."""
        from scipy.optimize import minimize, minimize_scalar

        if method not in ("temperature", "platt"):
            raise StoreError(
                expected_found("calibration method", "'temperature' or 'platt'", repr(method), "Pick one.")
            )
        z_all, y_all = np.asarray(logits, dtype=np.float64), np.asarray(Y)
        params, skipped = np.tile([1.0, 0.0], (z_all.shape[1], 1)), []
        for j in range(z_all.shape[1]):
            z, y = _labelled(z_all[:, j], y_all[:, j])
            if y.size == 0 or y.min() == y.max():
                skipped.append(j)
                continue

            def nll(a: float, b: float, z: np.ndarray = z, y: np.ndarray = y) -> float:
                u = a * z + b
                return float(np.mean(np.logaddexp(0.0, u) - y * u))

            if method == "temperature":
                res = minimize_scalar(lambda la: nll(np.exp(-la), 0.0), bounds=(-7.0, 7.0), method="bounded")
                params[j] = [np.exp(-res.x), 0.0]
            else:
                res = minimize(lambda p: nll(p[0], p[1]), x0=np.array([1.0, 0.0]), method="L-BFGS-B")
                params[j] = res.x
        return cls(method, params, skipped)

    def apply(self, logits: np.ndarray) -> np.ndarray:
        """Calibrated logits ``[n, C]`` (apply a sigmoid for probabilities)."""
        z = np.asarray(logits, dtype=np.float64)
        if z.shape[-1] != self.params.shape[0]:
            raise StoreError(
                expected_found(
                    "logits", f"[n, {self.params.shape[0]}]", f"{z.shape}", "Use the classifier's outputs."
                )
            )
        return (z * self.params[:, 0] + self.params[:, 1]).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "params": self.params.tolist(), "skipped": self.skipped}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibrator:
        return cls(d["method"], np.asarray(d["params"]), d.get("skipped"))


def expected_calibration_error(probs: np.ndarray, y: np.ndarray, n_bins: int = 10) -> float:
    """ECE: ``sum_b n_b / n * |accuracy_b - confidence_b|`` over ``n_bins`` equal-width bins of the
    predicted probability of the labelled entries (``y`` 1/0; -1 ignored). A probability of exactly 1
    falls in the last bin."""
    p, t = _labelled(probs, y)
    if p.size == 0:
        return float("nan")
    b = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    ece = 0.0
    for k in range(n_bins):
        m = b == k
        if m.any():
            ece += m.sum() / p.size * abs(t[m].mean() - p[m].mean())
    return float(ece)


def reliability_curve(probs: np.ndarray, y: np.ndarray, n_bins: int = 10) -> pl.DataFrame:
    """One row per non-empty bin: ``bin``, ``lo``, ``hi``, ``n``, ``confidence`` (mean probability),
    ``accuracy`` (fraction positive). A calibrated model has accuracy == confidence in every bin."""
    p, t = _labelled(probs, y)
    b = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    rows = [
        {
            "bin": k,
            "lo": k / n_bins,
            "hi": (k + 1) / n_bins,
            "n": int((b == k).sum()),
            "confidence": float(p[b == k].mean()),
            "accuracy": float(t[b == k].mean()),
        }
        for k in range(n_bins)
        if (b == k).any()
    ]
    schema = {
        "bin": pl.Int64,
        "lo": pl.Float64,
        "hi": pl.Float64,
        "n": pl.Int64,
        "confidence": pl.Float64,
        "accuracy": pl.Float64,
    }
    return pl.DataFrame(rows, schema=schema)


# ------------------------------------------------------------------------------------ thresholds
def _curve(s: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct thresholds (descending) with the precision and recall of ``score >= threshold``."""
    order = np.argsort(-s, kind="stable")
    s, t = s[order], t[order]
    tp = np.cumsum(t)
    fp = np.cumsum(1 - t)
    last = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]  # the last index of each distinct score
    thr = s[last]
    prec = tp[last] / (tp[last] + fp[last])
    rec = tp[last] / max(1, int(t.sum()))
    return thr, prec, rec


def _pick(s: np.ndarray, t: np.ndarray, target: float, kind: str) -> tuple[float, float, float]:
    """``(threshold, precision, recall)``: for ``kind="precision"`` the lowest threshold whose precision
    reaches ``target`` (the most recall at that precision); for ``"recall"`` the highest threshold whose
    recall reaches it. Unreachable: threshold +inf (nothing detected, whatever model scores with it;
    a finite threshold just above these held-out scores would still pass a model trained on all labels,
    whose scores are higher), precision nan (no detections), recall 0."""
    if s.size and t.sum() > 0:
        thr, prec, rec = _curve(s, t)
        ok = np.flatnonzero(prec >= target) if kind == "precision" else np.flatnonzero(rec >= target)
        if ok.size:
            i = ok[-1] if kind == "precision" else ok[0]
            return float(thr[i]), float(prec[i]), float(rec[i])
    return float("inf"), float("nan"), 0.0


def _threshold(
    scores: np.ndarray,
    y: np.ndarray,
    target: float,
    kind: str,
    confidence: float,
    n_resamples: int,
    seed: int,
) -> dict[str, Any]:
    from scipy.stats import DegenerateDataWarning, bootstrap

    if not 0 < target <= 1:
        raise StoreError(expected_found(f"target {kind}", "a number in (0, 1]", repr(target), "E.g. 0.9."))
    s, t = _labelled(scores, y)
    thr, prec, rec = _pick(s, t, target, kind)
    out: dict[str, Any] = {
        "target": kind,
        "target_value": float(target),
        "threshold": thr,
        "precision": prec,
        "recall": rec,
        "reachable": bool(np.isfinite(prec)) if kind == "precision" else rec >= target,
        "n_positive": int(t.sum()),
        "n_negative": int((1 - t).sum()),
        "confidence": confidence,
        "threshold_lo": float("nan"),
        "threshold_hi": float("nan"),
        "precision_lo": float("nan"),
        "precision_hi": float("nan"),
        "recall_lo": float("nan"),
        "recall_hi": float("nan"),
        "reachable_fraction": float("nan"),
    }
    if t.sum() == 0 or (1 - t).sum() == 0 or s.size < 3:
        return out

    def stat(ss: np.ndarray, tt: np.ndarray, axis: int = -1) -> np.ndarray:
        a, p, r = _pick(ss, tt.astype(np.int64), target, kind)
        ok = np.isfinite(p) if kind == "precision" else r >= target
        # At the threshold fitted on the resample, precision/recall of the ORIGINAL sample: how the
        # threshold generalises, not how well it fits its own resample.
        keep = s >= a
        p0 = t[keep].mean() if keep.any() else np.nan
        r0 = t[keep].sum() / t.sum()
        return np.array([a, p0, r0, float(ok)])

    with warnings.catch_warnings():
        # scipy's own interval is not used (the quantiles below skip unreachable resamples), so its
        # warnings about degenerate distributions of that interval do not apply.
        warnings.simplefilter("ignore", DegenerateDataWarning)
        # ... nor its standard error, whose variance meets the +inf thresholds of unreachable resamples
        warnings.simplefilter("ignore", RuntimeWarning)
        res = bootstrap(
            (s, t),
            stat,
            paired=True,
            vectorized=False,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            random_state=np.random.default_rng(seed),
        )
    dist = np.asarray(res.bootstrap_distribution)
    q = [(1 - confidence) / 2, 1 - (1 - confidence) / 2]
    for i, name in enumerate(("threshold", "precision", "recall")):
        v = dist[i][np.isfinite(dist[i])]
        if v.size:
            out[f"{name}_lo"], out[f"{name}_hi"] = (float(x) for x in np.quantile(v, q))
    out["reachable_fraction"] = float(dist[3].mean())
    return out


def threshold_for_precision(
    scores: np.ndarray,
    y: np.ndarray,
    target: float = 0.9,
    *,
    confidence: float = 0.9,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The lowest threshold on ``scores`` whose detections (``score >= threshold``) reach ``target``
    precision on the labelled windows, so recall is as high as that precision allows.

    Returns ``threshold``, the ``precision`` and ``recall`` there, ``reachable``, the label counts, and
    ``confidence`` percentile bootstrap intervals (``*_lo``, ``*_hi``) from ``n_resamples`` resamples of the
    labelled windows: the threshold refitted on each resample, and the precision and recall that refitted
    threshold gives on the original windows. ``reachable_fraction``: resamples where the target was met.
    Unreachable targets give a threshold of +inf (nothing detected)."""
    return _threshold(scores, y, target, "precision", confidence, n_resamples, seed)


def threshold_for_recall(
    scores: np.ndarray,
    y: np.ndarray,
    target: float = 0.8,
    *,
    confidence: float = 0.9,
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """The highest threshold whose detections keep ``target`` recall (the most precision at that recall);
    same fields as :func:`threshold_for_precision`."""
    return _threshold(scores, y, target, "recall", confidence, n_resamples, seed)


# ---------------------------------------------------------------------------------------- report
def classification_report(
    Y: np.ndarray,
    scores: np.ndarray,
    names: Sequence[str],
    thresholds: Sequence[float] | dict[str, float] | None = None,
) -> pl.DataFrame:
    """Per-class precision, recall and F1 of ``score >= threshold`` (default 0.5), average precision,
    ROC AUC, ``support`` (labelled positives) and ``negatives``, on the labelled entries of each column;
    then a ``macro avg`` row (unweighted mean over classes with at least one positive). Metrics are those
    of scikit-learn (``precision_recall_fscore_support``, ``average_precision_score``, ``roc_auc_score``);
    undefined ones (no positives, no negatives, no detections) are null."""
    from sklearn.metrics import average_precision_score, precision_recall_fscore_support, roc_auc_score

    Y, S = np.asarray(Y), np.asarray(scores, dtype=np.float64)
    if isinstance(thresholds, dict):
        thr = [float(thresholds.get(n, 0.5)) for n in names]
    else:
        thr = [0.5] * len(names) if thresholds is None else [float(x) for x in thresholds]
    rows = []
    for j, name in enumerate(names):
        s, t = _labelled(S[:, j], Y[:, j])
        pred = (s >= thr[j]).astype(np.int64)
        n_pos, n_neg = int(t.sum()), int((1 - t).sum())
        row: dict[str, Any] = {"class": name, "threshold": thr[j], "support": n_pos, "negatives": n_neg}
        if n_pos:
            p, r, f, _ = precision_recall_fscore_support(t, pred, average="binary", zero_division=np.nan)
            row.update(
                precision=None if np.isnan(p) else float(p),
                recall=float(r),
                f1=None if np.isnan(f) else float(f),
                ap=float(average_precision_score(t, s)),
            )
        else:
            row.update(precision=None, recall=None, f1=None, ap=None)
        row["roc_auc"] = float(roc_auc_score(t, s)) if n_pos and n_neg else None
        rows.append(row)
    schema = {
        "class": pl.String,
        "precision": pl.Float64,
        "recall": pl.Float64,
        "f1": pl.Float64,
        "ap": pl.Float64,
        "roc_auc": pl.Float64,
        "support": pl.Int64,
        "negatives": pl.Int64,
        "threshold": pl.Float64,
    }
    df = pl.DataFrame(rows, schema=schema)
    with_pos = df.filter(pl.col("support") > 0)
    macro = with_pos.select(
        pl.lit("macro avg").alias("class"),
        *[pl.col(c).mean() for c in ("precision", "recall", "f1", "ap", "roc_auc")],
        pl.col("support").sum(),
        pl.col("negatives").sum(),
        pl.lit(None, pl.Float64).alias("threshold"),
    )
    return pl.concat([df, macro.cast(schema)])  # type: ignore[arg-type]
