"""Sonic Visualiser annotation layers (``.svl`` XML, or their CSV export) as manifests and events.

An ``.svl`` file holds ``<model>`` elements (``sampleRate`` in Hz, ``dataset`` id, ``subtype`` such as
``region``, ``box`` or ``note``) and ``<dataset>`` elements with ``<point>`` children. Point times are in
FRAMES at the model's sample rate: ``frame`` (onset), ``duration`` (frames; absent for time instants),
``value`` (regions/notes: a value; boxes: the low frequency in Hz), ``extent`` (boxes: the frequency
span in Hz) and ``label``. Seconds are ``frame / sampleRate``.

The CSV export has no header and times in seconds; its columns are recognised by count:
2 ``time,label`` (instants), 3 ``time,duration,label``, 4 ``time,value,duration,label`` (regions),
5 ``time,value,duration,extent,label`` (boxes). Pass ``columns=`` when an export differs.

Time instants have no extent: each becomes a clip of ``instant_clip_s`` seconds centred on it (kept inside
the recording); the events table keeps the instant (``onset_s == offset_s``).
"""

from __future__ import annotations

import csv
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import polars as pl

from avexlab.data.manifest import validate_manifest
from avexlab.data.sources._common import events_frame, read_headers
from avexlab.errors import DataNotFoundError, ManifestError

__all__ = ["prepare_sonic_visualiser", "read_sonic_visualiser"]

_CSV_COLUMNS = {
    2: ("time", "label"),
    3: ("time", "duration", "label"),
    4: ("time", "value", "duration", "label"),
    5: ("time", "value", "duration", "extent", "label"),
}
_ANN_SCHEMA = {
    "onset_s": pl.Float64,
    "offset_s": pl.Float64,
    "label": pl.String,
    "low_freq_hz": pl.Float64,
    "high_freq_hz": pl.Float64,
    "instant": pl.Boolean,
}


def _num(el: ET.Element, attr: str, path: Path) -> float | None:
    v = el.get(attr)
    if v is None or v == "":
        return None
    try:
        return float(v)
    except ValueError:
        raise ManifestError(
            f"Sonic Visualiser layer {str(path)!r}: expected a number in attribute {attr!r} of a <{el.tag}>, "
            f"found {v!r}. Re-export the layer."
        ) from None


def _read_svl(path: Path) -> pl.DataFrame:
    try:
        tree = ET.parse(path)  # no external entities are resolved by ElementTree
    except ET.ParseError as e:
        raise ManifestError(
            f"Sonic Visualiser layer {str(path)!r}: expected SV XML, found a parse error ({e}). "
            "Export the layer again (File > Export Annotation Layer, .svl)."
        ) from e
    rootel = tree.getroot()
    models = {m.get("dataset"): m for m in rootel.iter("model") if m.get("dataset") is not None}
    rows: dict[str, list] = {k: [] for k in _ANN_SCHEMA}
    for ds in rootel.iter("dataset"):
        model = models.get(ds.get("id"))
        if model is None:
            continue
        sr = _num(model, "sampleRate", path)
        if not sr or sr <= 0:
            raise ManifestError(
                f"Sonic Visualiser layer {str(path)!r}: expected a positive sampleRate on model "
                f"{model.get('id')!r}, found {model.get('sampleRate')!r}."
            )
        is_box = model.get("subtype") == "box"
        for pt in ds.iter("point"):
            frame = _num(pt, "frame", path)
            if frame is None:
                raise ManifestError(
                    f"Sonic Visualiser layer {str(path)!r}: expected a 'frame' on every <point>, found one without."
                )
            dur = _num(pt, "duration", path)
            value, extent = _num(pt, "value", path), _num(pt, "extent", path)
            rows["onset_s"].append(frame / sr)
            rows["offset_s"].append((frame + (dur or 0.0)) / sr)
            rows["label"].append((pt.get("label") or "").strip() or None)
            rows["low_freq_hz"].append(value if is_box else None)
            rows["high_freq_hz"].append(value + extent if is_box and value is not None and extent else None)
            rows["instant"].append(dur is None)
    if not rows["onset_s"]:
        raise ManifestError(
            f"Sonic Visualiser layer {str(path)!r}: expected annotation points, found none. "
            "Export a time-instants, regions, notes or boxes layer."
        )
    return pl.DataFrame(rows, schema=_ANN_SCHEMA)


def _read_csv(path: Path, columns: tuple[str, ...] | None) -> pl.DataFrame:
    rows: dict[str, list] = {k: [] for k in _ANN_SCHEMA}
    with open(path, newline="", encoding="utf-8") as fh:
        for i, rec in enumerate(csv.reader(fh)):
            if not rec or all(not x.strip() for x in rec):
                continue
            cols = columns or _CSV_COLUMNS.get(len(rec))
            if cols is None or len(cols) != len(rec):
                raise ManifestError(
                    f"Sonic Visualiser CSV {str(path)!r}, row {i}: expected {list(_CSV_COLUMNS)} fields "
                    f"(or columns={columns}), found {len(rec)}. Pass columns= naming each field."
                )
            d = dict(zip(cols, (x.strip() for x in rec), strict=True))
            try:
                t = float(d["time"])
                dur = float(d["duration"]) if d.get("duration") not in (None, "") else None
                value = float(d["value"]) if d.get("value") not in (None, "") else None
                extent = float(d["extent"]) if d.get("extent") not in (None, "") else None
            except ValueError as e:
                raise ManifestError(
                    f"Sonic Visualiser CSV {str(path)!r}, row {i}: expected numbers in the time fields, found "
                    f"{rec!r} ({e}). Check columns=."
                ) from None
            rows["onset_s"].append(t)
            rows["offset_s"].append(t + (dur or 0.0))
            rows["label"].append(d.get("label") or None)
            rows["low_freq_hz"].append(value if extent is not None else None)
            rows["high_freq_hz"].append(value + extent if value is not None and extent is not None else None)
            rows["instant"].append(dur is None)
    if not rows["onset_s"]:
        raise ManifestError(f"Sonic Visualiser CSV {str(path)!r}: expected annotation rows, found none.")
    return pl.DataFrame(rows, schema=_ANN_SCHEMA)


def read_sonic_visualiser(
    path: str | os.PathLike[str], *, columns: tuple[str, ...] | None = None
) -> pl.DataFrame:
    """Annotations of an ``.svl`` layer or its ``.csv`` export: ``onset_s, offset_s, label,
    low_freq_hz, high_freq_hz, instant`` (seconds, Hz), in file order."""
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(
            f"Sonic Visualiser annotation {str(p)!r}: expected a file, found nothing there."
        )
    return _read_csv(p, columns) if p.suffix.lower() == ".csv" else _read_svl(p)


def prepare_sonic_visualiser(
    annotation: str | os.PathLike[str],
    *,
    dataset: str,
    audio_root: str | os.PathLike[str],
    audio_path: str,
    split: str = "train",
    domain: str = "soundscape",
    instant_clip_s: float = 1.0,
    species_from_label: bool = True,
    columns: tuple[str, ...] | None = None,
    license: str | None = None,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One clip per annotation of ``audio_path`` (relative to ``audio_root``), plus the events table.

    Returns ``(manifest, events)``; clip ids are ``"<dataset>/<path stem>:<n>"`` with ``n`` the
    annotation's 1-based position in the file.
    """
    root = Path(audio_root)
    ann = read_sonic_visualiser(annotation, columns=columns)
    info = read_headers(root, [audio_path])[audio_path]
    half = instant_clip_s / 2
    ann = ann.with_columns(
        pl.when(pl.col("instant"))
        .then((pl.col("onset_s") - half).clip(0.0, max(info.duration_s - instant_clip_s, 0.0)))
        .otherwise(pl.col("onset_s"))
        .alias("start_s"),
    ).with_columns(
        pl.when(pl.col("instant"))
        .then((pl.col("start_s") + instant_clip_s).clip(None, info.duration_s))
        .otherwise(pl.col("offset_s"))
        .alias("end_s")
    )
    stem = Path(audio_path).with_suffix("").as_posix()
    manifest = ann.select(
        (pl.lit(f"{dataset}/{stem}:") + pl.int_range(1, pl.len() + 1).cast(pl.String)).alias("clip_id"),
        pl.lit(audio_path).alias("path"),
        pl.lit(dataset).alias("dataset"),
        pl.lit(split).alias("split"),
        pl.lit(domain).alias("domain"),
        pl.when(pl.col("label").is_null())
        .then(pl.lit([], dtype=pl.List(pl.String)))
        .otherwise(pl.concat_list("label"))
        .alias("labels"),
        "start_s",
        "end_s",
        pl.lit(info.sample_rate, pl.Int64).alias("sample_rate"),
        (pl.col("label") if species_from_label else pl.lit(None, pl.String)).alias("species"),
        pl.lit("sonic_visualiser").alias("source"),
        pl.lit(license, pl.String).alias("license"),
    )
    manifest = validate_manifest(manifest, root=root, source=str(annotation))
    late = manifest.with_row_index("__row").filter(pl.col("end_s") > info.duration_s + 1e-6)
    if late.height:
        r = late.row(0, named=True)
        raise ManifestError(
            f"Sonic Visualiser annotation {str(annotation)!r}, row {r['__row']} (clip_id {r['clip_id']!r}), "
            f"column 'end_s': expected a time inside {audio_path!r} ({info.duration_s:.3f} s), found "
            f"{r['end_s']}. Check the layer belongs to this recording (and its sampleRate)."
        )
    n = ann.height
    events = events_frame(
        {
            "recording_id": [f"{dataset}/{stem}"] * n,
            "path": [audio_path] * n,
            "onset_s": ann["onset_s"].to_list(),
            "offset_s": ann["offset_s"].to_list(),
            "label": ann["label"].to_list(),
            "species": ann["label"].to_list() if species_from_label else [None] * n,
            "low_freq_hz": ann["low_freq_hz"].to_list(),
            "high_freq_hz": ann["high_freq_hz"].to_list(),
        },
        extra={"low_freq_hz": pl.Float64(), "high_freq_hz": pl.Float64()},
    )
    return manifest, events
