"""An audio folder as a manifest: one sub-folder per label, or a folder plus a CSV of labels.

Layout A (folder per label)::

    root/<label>/**/<file>.wav|.flac|.ogg      -> labels [<label>], one clip per file

Layout B (labels CSV; ``path`` relative to ``root``, labels ``;``-joined; other schema columns such as
``split``, ``species``, ``individual``, ``call_type``, ``session`` are copied when present)::

    path,labels,split
    a/x.wav,Parus major,train
"""

from __future__ import annotations

import os
from pathlib import Path

import polars as pl

from avexlab.data.manifest import LIST_SEP, validate_manifest
from avexlab.data.schema import OPTIONAL, SPLITS
from avexlab.data.sources._common import AUDIO_EXTENSIONS, read_headers
from avexlab.errors import DataNotFoundError, ManifestError

__all__ = ["find_audio", "prepare_audiofolder"]


def find_audio(root: str | os.PathLike[str], extensions: tuple[str, ...] = AUDIO_EXTENSIONS) -> list[str]:
    """Audio files under ``root`` (recursive, suffix case-insensitive, hidden files skipped), as sorted
    paths relative to ``root`` with forward slashes."""
    base = Path(root)
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions}
    out = []
    for p in base.rglob("*"):
        rel = p.relative_to(base)
        if p.is_file() and p.suffix.lower() in exts and not any(s.startswith(".") for s in rel.parts):
            out.append(rel.as_posix())
    return sorted(out)


def prepare_audiofolder(
    root: str | os.PathLike[str],
    *,
    dataset: str,
    labels_csv: str | os.PathLike[str] | None = None,
    split: str = "train",
    domain: str = "focal",
    extensions: tuple[str, ...] = AUDIO_EXTENSIONS,
    license: str | None = None,
) -> pl.DataFrame:
    """Build a validated manifest for an audio folder (layout A without ``labels_csv``, B with it).

    Each file is one clip covering the whole recording: ``start_s`` 0, ``end_s`` and ``sample_rate``
    from the header. ``clip_id`` is ``"<dataset>/<path without suffix>"``. ``split`` is used for rows
    whose CSV has no split. Raises DataNotFoundError when no audio is found, ManifestError for CSV rows
    naming missing files, AudioError listing unreadable files.
    """
    base = Path(root)
    if not base.is_dir():
        raise DataNotFoundError(
            f"audio folder {str(base)!r}: expected a folder of audio files, found nothing there. "
            "Put the audio there or pass the right root."
        )
    if split not in SPLITS:
        raise ManifestError(f"audio folder: expected split in {list(SPLITS)}, found {split!r}.")
    files = find_audio(base, extensions)
    if labels_csv is None:
        flat = [f for f in files if "/" not in f]
        if flat:
            raise ManifestError(
                f"audio folder {str(base)!r}: expected every file inside a label sub-folder, found "
                f"{len(flat)} at the top level (e.g. {flat[0]!r}). Move them into <label>/ folders or pass "
                "labels_csv."
            )
        df = pl.DataFrame({"path": files}, schema={"path": pl.String}).with_columns(
            pl.col("path").str.split("/").list.first().alias("__label")
        )
        df = df.with_columns(pl.concat_list("__label").alias("labels"), pl.lit(split).alias("split")).drop(
            "__label"
        )
    else:
        csv = Path(labels_csv)
        if not csv.is_file():
            raise DataNotFoundError(f"labels CSV {str(csv)!r}: expected a file, found nothing there.")
        df = pl.read_csv(csv, infer_schema=False)
        if "path" not in df.columns or not ({"labels", "label"} & set(df.columns)):
            raise ManifestError(
                f"labels CSV {str(csv)!r}: expected columns 'path' and 'labels' (or 'label'), found "
                f"{df.columns}. Rename the header."
            )
        if "labels" not in df.columns:
            df = df.rename({"label": "labels"})
        df = df.with_columns(
            pl.col("path").str.replace_all("\\\\", "/"),
            pl.when(pl.col("labels").is_null() | (pl.col("labels").str.strip_chars() == ""))
            .then(pl.lit([], dtype=pl.List(pl.String)))
            .otherwise(pl.col("labels").str.split(LIST_SEP).list.eval(pl.element().str.strip_chars()))
            .alias("labels"),
        )
        df = df.with_columns(
            (pl.col("split") if "split" in df.columns else pl.lit(None, pl.String))
            .fill_null(split)
            .alias("split")
        )
        present = set(files)
        missing = df.with_row_index("__row").filter(~pl.col("path").is_in(list(present)))
        if missing.height:
            shown = "\n".join(
                f"  - row {r} (path {p!r})" for r, p in missing.select("__row", "path").head(20).iter_rows()
            )
            raise ManifestError(
                f"labels CSV {str(csv)!r}: expected every 'path' to name an audio file under {str(base)!r}, "
                f"found {missing.height} that do not:\n{shown}\nFix the paths (relative to the folder)."
            )
        keep = ["path", "labels", "split", *[c for c in OPTIONAL if c in df.columns and c != "split"]]
        df = df.select(keep)
    if df.height == 0:
        raise DataNotFoundError(
            f"audio folder {str(base)!r}: expected audio files with suffix {list(extensions)}, found none. "
            "Put the recordings there."
        )
    infos = read_headers(base, df["path"].to_list())
    df = df.with_columns(
        (pl.lit(f"{dataset}/") + pl.col("path").str.replace(r"\.[^./]+$", "")).alias("clip_id"),
        pl.lit(dataset).alias("dataset"),
        pl.lit(domain).alias("domain"),
        pl.lit(0.0).alias("start_s"),
        pl.col("path")
        .replace_strict({k: v.duration_s for k, v in infos.items()}, return_dtype=pl.Float64)
        .alias("end_s"),
        pl.col("path")
        .replace_strict({k: v.sample_rate for k, v in infos.items()}, return_dtype=pl.Int64)
        .alias("sample_rate"),
        (pl.col("license") if "license" in df.columns else pl.lit(license, pl.String)).alias("license"),
        (pl.col("source") if "source" in df.columns else pl.lit("audiofolder")).alias("source"),
    )
    return validate_manifest(df, root=base, source=str(base))
