"""The manifest schema: one row per clip. Shared by every data source, the synthetic world and the suites.

Required columns must be present and non-null. Optional columns must be present (null where unknown):
``read_manifest`` adds any that a file lacks, as nulls. Extra columns are kept as they are.
Times are seconds from the start of the file; ``end_s`` null means "to the end of the file".
``path`` is relative to the manifest's data root (or a ``synth://`` URI rendered on demand).
"""

from __future__ import annotations

import polars as pl

REQUIRED: dict[str, pl.DataType] = {
    "clip_id": pl.String(),
    "path": pl.String(),
    "dataset": pl.String(),
    "split": pl.String(),
    "domain": pl.String(),
    "labels": pl.List(pl.String()),
}

OPTIONAL: dict[str, pl.DataType] = {
    "start_s": pl.Float64(),
    "end_s": pl.Float64(),
    "sample_rate": pl.Int64(),
    "species": pl.String(),
    "taxon_group": pl.String(),
    "individual": pl.String(),
    "call_type": pl.String(),
    "session": pl.String(),
    "source": pl.String(),
    "license": pl.String(),
}

SCHEMA: dict[str, pl.DataType] = {**REQUIRED, **OPTIONAL}
COLUMNS: list[str] = list(SCHEMA)

SPLITS: tuple[str, ...] = ("train", "val", "test")
DOMAINS: tuple[str, ...] = ("focal", "soundscape", "general")

# Soundscape event annotations live in a second table beside the manifest (``events.parquet``):
EVENT_SCHEMA: dict[str, pl.DataType] = {
    "recording_id": pl.String(),
    "path": pl.String(),
    "onset_s": pl.Float64(),
    "offset_s": pl.Float64(),
    "label": pl.String(),
    "species": pl.String(),
    "individual": pl.String(),
    "call_type": pl.String(),
}
