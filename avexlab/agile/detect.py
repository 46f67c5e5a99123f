"""Inference over a store and export: detections as a tidy parquet table and as Raven selection tables.

:func:`score_store` runs the classifier over every window (streamed in chunks from the memory maps);
:func:`detect` keeps, per class, the windows whose calibrated probability reaches the class's threshold,
optionally merging overlapping or touching windows of one class in one recording into one event (its
score the highest window score). :func:`write_raven` writes one selection table per recording (Raven Pro's
columns, the class in ``Annotation``, the probability in ``Score``); avexlab's Raven adapter and
``crowsetta`` read them back with the same times and labels (times are rounded to the microsecond in the
detections table itself, so what is written is what the table holds).
"""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

import numpy as np
import polars as pl

from avexlab.errors import expected_found
from avexlab.fsutil import atomic_write

from .classifier import AgileClassifier
from .store import EmbeddingStore, StoreError

__all__ = [
    "DETECTION_SCHEMA",
    "detect",
    "read_raven_detections",
    "score_store",
    "write_detections",
    "write_raven",
]

DETECTION_SCHEMA: dict[str, pl.DataType] = {
    "path": pl.String(),
    "recording_id": pl.String(),
    "start_s": pl.Float64(),
    "end_s": pl.Float64(),
    "label": pl.String(),
    "score": pl.Float64(),
    "threshold": pl.Float64(),
    "row": pl.Int64(),
    "n_windows": pl.Int64(),
}


def score_store(
    store: EmbeddingStore,
    clf: AgileClassifier,
    *,
    chunk_rows: int = 65536,
    calibrated: bool = True,
    progress: bool = False,
) -> np.ndarray:
    """Probabilities ``[N, C + 1]`` float32 of every store window (classes, then background)."""
    from tqdm.auto import tqdm

    clf.check_store(store)
    out = np.empty((store.n_rows, len(clf.outputs)), dtype=np.float32)
    with tqdm(total=store.n_rows, desc="scoring", unit="win", disable=not progress) as bar:
        for row0, chunk in store.iter_chunks(chunk_rows):
            out[row0 : row0 + chunk.shape[0]] = clf.predict_proba(chunk, calibrated=calibrated)
            bar.update(chunk.shape[0])
    return out


def detect(
    store: EmbeddingStore,
    clf: AgileClassifier,
    *,
    probs: np.ndarray | None = None,
    thresholds: dict[str, float] | None = None,
    classes: list[str] | None = None,
    merge: bool = False,
) -> pl.DataFrame:
    """Detections (:data:`DETECTION_SCHEMA`): windows whose probability for a class is at least its
    threshold (``thresholds`` default: the classifier's own, 0.5 before calibration). With ``merge``,
    overlapping or touching windows of one class in one recording become one event. Sorted by path,
    start, label. Times rounded to the microsecond."""
    P = score_store(store, clf) if probs is None else np.asarray(probs)
    if P.shape != (store.n_rows, len(clf.outputs)):
        raise StoreError(
            expected_found(
                "probabilities", f"[{store.n_rows}, {len(clf.outputs)}]", f"{P.shape}", "Use score_store()."
            )
        )
    thr = dict(clf.thresholds if thresholds is None else thresholds)
    names = classes if classes is not None else clf.classes
    unknown = [c for c in names if c not in clf.classes]
    if unknown:
        raise StoreError(expected_found("classes", f"among {clf.classes}", str(unknown), "Check the names."))
    w = store.windows
    frames = []
    for c in names:
        j = clf.classes.index(c)
        t = float(thr.get(c, 0.5))
        hit = np.flatnonzero(P[:, j] >= t)
        if hit.size == 0:
            continue
        frames.append(
            w[hit]
            .select("row", "path", "recording_id", "start_s", "end_s")
            .with_columns(
                pl.lit(c).alias("label"),
                pl.Series("score", P[hit, j].astype(np.float64)),
                pl.lit(t).alias("threshold"),
            )
        )
    if not frames:
        return pl.DataFrame(schema=DETECTION_SCHEMA)
    det = pl.concat(frames).sort(["path", "label", "start_s"])
    if merge:
        det = (
            det.with_columns(
                (pl.col("start_s") > pl.col("end_s").shift(1).cum_max().over(["path", "label"]))
                .fill_null(True)
                .cum_sum()
                .over(["path", "label"])
                .alias("__event")
            )
            .group_by(["path", "label", "__event"], maintain_order=True)
            .agg(
                pl.col("recording_id").first(),
                pl.col("start_s").min(),
                pl.col("end_s").max(),
                pl.col("score").max(),
                pl.col("threshold").first(),
                pl.col("row").first(),
                pl.len().cast(pl.Int64).alias("n_windows"),
            )
        )
    else:
        det = det.with_columns(pl.lit(1, pl.Int64).alias("n_windows"))
    det = det.with_columns(
        pl.Series("start_s", _micro(det["start_s"].to_numpy())),
        pl.Series("end_s", _micro(det["end_s"].to_numpy())),
    )
    return det.select(list(DETECTION_SCHEMA)).sort(["path", "start_s", "label"])


def write_detections(detections: pl.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write detections as parquet, atomically."""
    p = Path(path)
    if p.suffix != ".parquet":
        raise StoreError(expected_found("detections file", "a .parquet path", str(p), "Change the suffix."))
    atomic_write(p, lambda t: detections.write_parquet(t))
    return p


RAVEN_COLUMNS: tuple[str, ...] = (
    "Selection",
    "View",
    "Channel",
    "Begin Time (s)",
    "End Time (s)",
    "Low Freq (Hz)",
    "High Freq (Hz)",
    "Begin Path",
    "Begin File",
    "Annotation",
    "Score",
)


def _table_name(path: str) -> str:
    """A relative file name for the selection table of recording ``path`` (a URI's scheme dropped, unsafe
    characters replaced): ``sub/rec.wav`` -> ``sub/rec.selections.txt``."""
    rel = path.split("://", 1)[-1]
    rel = re.sub(r"[^A-Za-z0-9._/-]", "_", rel).strip("/")
    parts = [p for p in PurePosixPath(rel).parts if p not in ("..", ".")]
    stem = PurePosixPath(*parts) if parts else PurePosixPath("recording")
    return str(stem.with_suffix("")) + ".selections.txt"


def _micro(x: np.ndarray) -> np.ndarray:
    """Seconds rounded to the microsecond as the decimal text a table holds (``float(f"{x:.6f}")``), so
    that writing ``%.6f`` and reading it back gives the same doubles."""
    return np.asarray([float(f"{v:.6f}") for v in x.tolist()], dtype=np.float64)


def _num(x: float) -> str:
    return f"{x:.6f}" if np.isfinite(x) else "nan"


def write_raven(
    detections: pl.DataFrame,
    out_dir: str | os.PathLike[str],
    *,
    store: EmbeddingStore | None = None,
    high_freq_hz: float | None = None,
) -> list[Path]:
    """One Raven selection table per recording with detections, under ``out_dir`` (named after the
    recording: ``<recording>.selections.txt``); returns the files written. Each row: selection number,
    ``Spectrogram 1``, channel 1, begin and end (seconds in the file), the band (0 to ``high_freq_hz``,
    default the store's Nyquist frequency: windows have no band), the recording (``Begin Path``, ``Begin
    File``), the class (``Annotation``) and the probability (``Score``)."""
    out = Path(out_dir)
    if high_freq_hz is None:
        high_freq_hz = store.sample_rate / 2 if store is not None else 8000.0
    written = []
    for (path,), grp in detections.sort(["path", "start_s", "label"]).group_by(["path"], maintain_order=True):
        full = store.full_path(str(path)) if store is not None else str(path)
        lines = ["\t".join(RAVEN_COLUMNS)]
        for i, r in enumerate(grp.iter_rows(named=True)):
            label = str(r["label"])
            if "\t" in label or "\n" in label:
                raise StoreError(
                    expected_found("label", "no tabs or newlines", repr(label), "Rename the class.")
                )
            lines.append(
                "\t".join(
                    [
                        str(i + 1),
                        "Spectrogram 1",
                        "1",
                        _num(r["start_s"]),
                        _num(r["end_s"]),
                        "0.0",
                        f"{float(high_freq_hz):.1f}",
                        full,
                        PurePosixPath(full.split("://", 1)[-1]).name,
                        label,
                        _num(r["score"]),
                    ]
                )
            )
        target = out / _table_name(str(path))
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, "\n".join(lines) + "\n")
        written.append(target)
    return written


def read_raven_detections(path: str | os.PathLike[str]) -> pl.DataFrame:
    """A selection table written by :func:`write_raven`, read with avexlab's Raven adapter, as
    ``start_s``, ``end_s``, ``label``, ``score``, ``file``."""
    from avexlab.data.sources.raven import read_raven_table

    t = read_raven_table(path)
    return t.select(
        pl.col("Begin Time (s)").alias("start_s"),
        pl.col("End Time (s)").alias("end_s"),
        pl.col("Annotation").alias("label"),
        pl.col("Score").str.strip_chars().cast(pl.Float64).alias("score"),
        pl.col("Begin File").alias("file"),
    )
