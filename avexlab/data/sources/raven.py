"""Raven Pro selection tables (``*.selections.txt``) as clip manifests and event tables.

A selection table is tab-separated with one row per selection per view: ``Selection``, ``View``,
``Channel``, ``Begin Time (s)``, ``End Time (s)``, ``Low Freq (Hz)``, ``High Freq (Hz)`` and any
annotation columns (the label column is yours to name, e.g. ``Species``). Optional ``Begin File`` /
``Begin Path`` name the recording; when a table spans a file sequence, ``Begin Time (s)`` counts from the
start of the sequence and ``File Offset (s)`` gives the time within ``Begin File``, which is then used.
Rows repeated for several views (``Spectrogram 1``, ``Waveform 1``) are one selection: the first view
of each selection number is kept.
"""

from __future__ import annotations

import os
from pathlib import Path, PureWindowsPath

import polars as pl

from avexlab.data.manifest import validate_manifest
from avexlab.data.sources._common import events_frame, read_headers
from avexlab.errors import DataNotFoundError, ManifestError

__all__ = ["prepare_raven", "read_raven_table"]

BEGIN = "Begin Time (s)"
END = "End Time (s)"
LOW = "Low Freq (Hz)"
HIGH = "High Freq (Hz)"
REQUIRED = (BEGIN, END)


def read_raven_table(path: str | os.PathLike[str]) -> pl.DataFrame:
    """Read a selection table as text columns, one row per selection (duplicate views dropped)."""
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(f"Raven selection table {str(p)!r}: expected a file, found nothing there.")
    try:
        df = pl.read_csv(p, separator="\t", quote_char=None, infer_schema=False, encoding="utf8-lossy")
    except pl.exceptions.PolarsError as e:
        raise ManifestError(
            f"Raven selection table {str(p)!r}: expected a tab-separated table, found a parse error ({e})."
        ) from e
    df = df.rename({c: c.strip() for c in df.columns})
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise ManifestError(
            f"Raven selection table {str(p)!r}: expected columns {list(REQUIRED)}, found it without {missing} "
            f"(columns: {df.columns}). Export the table from Raven with the default measurements."
        )
    if "Selection" in df.columns:
        df = df.unique(subset=["Selection"], keep="first", maintain_order=True)
    for c in (BEGIN, END, LOW, HIGH, "File Offset (s)"):
        if c in df.columns:
            bad = df.with_row_index("__row").filter(
                pl.col(c).is_not_null() & pl.col(c).str.strip_chars().cast(pl.Float64, strict=False).is_null()
            )
            if bad.height:
                raise ManifestError(
                    f"Raven selection table {str(p)!r}, row {bad['__row'][0]}, column {c!r}: expected a number, "
                    f"found {bad[c][0]!r}. Fix the value."
                )
            df = df.with_columns(pl.col(c).str.strip_chars().cast(pl.Float64))
    return df


def prepare_raven(
    table: str | os.PathLike[str],
    *,
    dataset: str,
    audio_root: str | os.PathLike[str],
    label_column: str,
    audio_path: str | None = None,
    split: str = "train",
    domain: str = "soundscape",
    species_from_label: bool = True,
    license: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One clip per selection, plus the events table.

    Args:
        table: the ``.txt`` selection table.
        audio_root: folder holding the recordings; manifest paths are relative to it.
        label_column: the annotation column holding each selection's label (e.g. ``"Species"``).
        audio_path: the recording (relative to ``audio_root``) when the table has no ``Begin File`` /
            ``Begin Path`` column. With one, the file is found under ``audio_root`` by its name.
        species_from_label: also copy the label to the ``species`` column.

    Returns:
        ``(manifest, events)``: clips ``[begin, end]`` s with ``labels [label]``; events with
        ``recording_id, path, onset_s, offset_s, label, species`` and ``low_freq_hz, high_freq_hz``.
    """
    root = Path(audio_root)
    df = read_raven_table(table)
    if label_column not in df.columns:
        raise ManifestError(
            f"Raven selection table {str(table)!r}: expected the label column {label_column!r}, found columns "
            f"{df.columns}. Pass label_column= one of the annotation columns."
        )
    if audio_path is not None:
        paths = [audio_path] * df.height
    elif "Begin File" in df.columns or "Begin Path" in df.columns:
        col = "Begin File" if "Begin File" in df.columns else "Begin Path"
        names = [PureWindowsPath(x).name if x else None for x in df[col].to_list()]
        index: dict[str, str] = {}
        for f in root.rglob("*"):
            if f.is_file():
                index.setdefault(f.name, f.relative_to(root).as_posix())
        missing = sorted({n for n in names if n not in index})
        if missing:
            raise DataNotFoundError(
                f"Raven selection table {str(table)!r}: expected the recordings it names under "
                f"{str(root)!r}, found {len(missing)} missing (e.g. {missing[:3]}). Put them there."
            )
        paths = [index[n] for n in names]  # type: ignore[index]
    else:
        raise ManifestError(
            f"Raven selection table {str(table)!r}: expected a 'Begin File' or 'Begin Path' column, or "
            "audio_path= naming the one recording it annotates; found neither."
        )
    if "File Offset (s)" in df.columns and audio_path is None:
        begin = pl.col("File Offset (s)")
        end = pl.col("File Offset (s)") + (pl.col(END) - pl.col(BEGIN))
    else:
        begin, end = pl.col(BEGIN), pl.col(END)
    infos = read_headers(root, paths)
    sel = pl.col("Selection") if "Selection" in df.columns else pl.int_range(1, pl.len() + 1).cast(pl.String)
    df = df.with_columns(
        pl.Series("path", paths, dtype=pl.String),
        begin.alias("start_s"),
        end.alias("end_s"),
        sel.alias("__sel"),
        pl.col(label_column).str.strip_chars().alias("__label"),
    )
    stem = pl.col("path").str.replace(r"\.[^./]+$", "")
    manifest = df.select(
        (pl.lit(f"{dataset}/") + stem + pl.lit(":") + pl.col("__sel")).alias("clip_id"),
        "path",
        pl.lit(dataset).alias("dataset"),
        pl.lit(split).alias("split"),
        pl.lit(domain).alias("domain"),
        pl.when(pl.col("__label").is_null() | (pl.col("__label") == ""))
        .then(pl.lit([], dtype=pl.List(pl.String)))
        .otherwise(pl.concat_list("__label"))
        .alias("labels"),
        "start_s",
        "end_s",
        pl.col("path")
        .replace_strict({k: v.sample_rate for k, v in infos.items()}, return_dtype=pl.Int64)
        .alias("sample_rate"),
        (pl.col("__label") if species_from_label else pl.lit(None, pl.String)).alias("species"),
        pl.lit("raven").alias("source"),
        pl.lit(license, pl.String).alias("license"),
    )
    manifest = validate_manifest(manifest, root=root, source=str(table))
    too_long = manifest.with_row_index("__row").filter(
        pl.col("end_s") > pl.col("path").replace_strict({k: v.duration_s for k, v in infos.items()}) + 1e-6
    )
    if too_long.height:
        r = too_long.row(0, named=True)
        raise ManifestError(
            f"Raven selection table {str(table)!r}, row {r['__row']} (clip_id {r['clip_id']!r}), column "
            f"{END!r}: expected a time inside the recording ({infos[r['path']].duration_s:.3f} s), found "
            f"{r['end_s']}. Check the table belongs to this recording."
        )
    events = events_frame(
        {
            "recording_id": df.select((pl.lit(f"{dataset}/") + stem).alias("r"))["r"].to_list(),
            "path": df["path"].to_list(),
            "onset_s": manifest["start_s"].to_list(),
            "offset_s": manifest["end_s"].to_list(),
            "label": df["__label"].to_list(),
            "species": df["__label"].to_list() if species_from_label else [None] * df.height,
            "low_freq_hz": df[LOW].to_list() if LOW in df.columns else [None] * df.height,
            "high_freq_hz": df[HIGH].to_list() if HIGH in df.columns else [None] * df.height,
        },
        extra={"low_freq_hz": pl.Float64(), "high_freq_hz": pl.Float64()},
    )
    return manifest, events
