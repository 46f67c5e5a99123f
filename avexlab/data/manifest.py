"""Read, validate, write and hash manifests (one row per clip; the schema is in ``avexlab.data.schema``).

Validation collects every problem it finds (up to a cap) into one :class:`ManifestError` whose lines each
name the row (index and clip_id), the column, what was expected, what was found and what to do. The
checks run as whole-column polars expressions; only the optional file-existence check touches the disk.

File formats follow the suffix: ``.parquet``, ``.csv``, ``.jsonl`` / ``.ndjson``. In CSV, list columns
(``labels``) are ``;``-joined strings and an empty field is an empty list.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import polars as pl

from avexlab.data.schema import COLUMNS, DOMAINS, OPTIONAL, REQUIRED, SCHEMA, SPLITS
from avexlab.errors import ManifestError
from avexlab.fsutil import atomic_write

if TYPE_CHECKING:
    from avexlab.data.labels import LabelSpace

__all__ = [
    "ManifestProblem",
    "concat_manifests",
    "manifest_hash",
    "read_manifest",
    "validate_manifest",
    "validate_manifest_file",
    "write_manifest",
]

LIST_SEP = ";"
MAX_PROBLEMS = 50
_URI_PREFIX = r"^[A-Za-z][A-Za-z0-9+.\-]+://"


@dataclass(frozen=True)
class ManifestProblem:
    """One validation problem. ``row`` is the 0-based row index (None for whole-table problems)."""

    row: int | None
    clip_id: str | None
    column: str | None
    expected: str
    found: str
    todo: str

    def __str__(self) -> str:
        where = []
        if self.row is not None:
            where.append(
                f"row {self.row}" + (f" (clip_id {self.clip_id!r})" if self.clip_id is not None else "")
            )
        if self.column is not None:
            where.append(f"column {self.column!r}")
        head = ", ".join(where) or "manifest"
        return f"{head}: expected {self.expected}, found {self.found}. {self.todo}"


class _Problems:
    def __init__(self, cap: int) -> None:
        self.cap = cap
        self.items: list[ManifestProblem] = []
        self.total = 0

    def add(self, p: ManifestProblem) -> None:
        self.total += 1
        if len(self.items) < self.cap:
            self.items.append(p)

    def add_rows(
        self,
        bad: pl.DataFrame,
        column: str,
        expected: str,
        found_col: str | None,
        todo: str,
        found_fmt: str = "{!r}",
    ) -> None:
        """``bad`` has ``__row``, ``__clip`` and optionally ``found_col``; one problem per row."""
        self.total += bad.height
        room = self.cap - len(self.items)
        if room <= 0:
            return
        cols = ["__row", "__clip"] + ([found_col] if found_col else [])
        for rec in bad.head(room).select(cols).iter_rows():
            found = found_fmt.format(rec[2]) if found_col else "null"
            self.items.append(ManifestProblem(rec[0], rec[1], column, expected, found, todo))

    def raise_if_any(self, source: str | None) -> None:
        if not self.total:
            return
        name = f"manifest {source!r}" if source else "manifest"
        shown = "" if self.total <= len(self.items) else f" (showing the first {len(self.items)})"
        lines = "\n".join(f"  - {p}" for p in self.items)
        err = ManifestError(f"{name} has {self.total} problem(s){shown}:\n{lines}")
        err.problems = list(self.items)  # type: ignore[attr-defined]
        raise err


def _is_uri(col: str = "path") -> pl.Expr:
    return pl.col(col).str.contains(_URI_PREFIX)


def _type_name(dt: pl.DataType) -> str:
    return "list of strings" if isinstance(dt, pl.List) else str(dt).lower()


def _cast_column(df: pl.DataFrame, name: str, target: pl.DataType, probs: _Problems) -> pl.DataFrame:
    """Cast one column to its schema type; rows whose value cannot be cast become problems."""
    src = df.schema[name]
    if src == target:
        return df
    col = pl.col(name)
    if isinstance(target, pl.List):
        if src == pl.String:
            expr = (
                pl.when(col.is_null() | (col.str.strip_chars() == ""))
                .then(pl.lit([], dtype=target))
                .otherwise(col.str.split(LIST_SEP).list.eval(pl.element().str.strip_chars()))
            )
            return df.with_columns(expr.alias(name))
        if isinstance(src, pl.List | pl.Null):
            try:
                return df.with_columns(col.cast(target, strict=True))
            except pl.exceptions.PolarsError:
                pass
        probs.add(
            ManifestProblem(
                None,
                None,
                name,
                f"a list of strings (or a '{LIST_SEP}'-joined string)",
                f"type {src}",
                f"Store {name!r} as lists of strings.",
            )
        )
        return df
    if src == pl.Null:
        return df.with_columns(col.cast(target))
    if target == pl.String:
        if isinstance(src, pl.List | pl.Struct | pl.Array):
            probs.add(
                ManifestProblem(
                    None, None, name, "text", f"type {src}", f"Store {name!r} as plain strings, one per row."
                )
            )
            return df
        if src.is_float():
            # 1.0 -> "1.0" would surprise; ids read as floats should be re-read as strings.
            probs.add(
                ManifestProblem(
                    None, None, name, "text", f"type {src}", f"Store {name!r} as strings (quote ids in CSV)."
                )
            )
            return df
        return df.with_columns(col.cast(pl.String))
    cast = col.cast(target, strict=False)
    if src == pl.String:
        cast = col.str.strip_chars().cast(target, strict=False)
        if target.is_integer():
            # "16000.0" (a CSV written by a float column) is an integer; "22050.5" is not.
            as_float = col.str.strip_chars().cast(pl.Float64, strict=False)
            cast = cast.fill_null(
                pl.when(as_float.is_finite() & (as_float == as_float.floor())).then(as_float.cast(target))
            )
    if target.is_integer() and src.is_float():
        bad_expr = col.is_not_null() & (col.is_nan() | (col != col.floor()))
    else:
        bad_expr = col.is_not_null() & cast.is_null()
    bad = df.filter(bad_expr)
    if bad.height:
        probs.add_rows(
            bad,
            name,
            f"{_type_name(target)} values",
            name,
            f"Write a valid {_type_name(target)} in {name!r} (or leave it empty for null).",
        )
        return df
    return df.with_columns(cast.alias(name))


def _path_escapes(p: str) -> str | None:
    if p.startswith(("/", "\\")) or (len(p) > 1 and p[1] == ":"):
        return "an absolute path"
    depth = 0
    for part in PurePosixPath(p.replace("\\", "/")).parts:
        if part == "..":
            depth -= 1
            if depth < 0:
                return "a path that climbs out of the data root with '..'"
        elif part not in (".", ""):
            depth += 1
    return None


def validate_manifest(
    df: pl.DataFrame,
    *,
    root: str | os.PathLike[str] | None = None,
    check_files: bool = False,
    label_space: LabelSpace | None = None,
    source: str | None = None,
    max_problems: int = MAX_PROBLEMS,
) -> pl.DataFrame:
    """Check ``df`` against the manifest schema and return it cast to the schema's types.

    Args:
        df: one row per clip (see ``avexlab.data.schema``). Missing optional columns are added as nulls;
            extra columns are kept after the schema's columns.
        root: the data root that relative ``path`` values are resolved against. When given, absolute paths
            and paths escaping it with ``..`` are errors (``scheme://`` URIs such as ``synth://`` are allowed).
        check_files: also check that every non-URI path exists (resolved against ``root``, else the cwd).
        label_space: when given, every label must belong to it.
        source: a name for the manifest in messages (e.g. its file path).
        max_problems: how many problems the error lists (all are counted).

    Raises:
        ManifestError listing every problem: missing required columns, wrong types, nulls in required
        columns, duplicate clip_ids, ``start_s < 0`` or ``start_s >= end_s``, unknown split/domain,
        ``sample_rate <= 0``, missing files, labels outside ``label_space``, unsafe paths, empty manifest.
    """
    probs = _Problems(max_problems)
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        for c in missing:
            probs.add(
                ManifestProblem(
                    None,
                    None,
                    c,
                    f"a required column {c!r} ({_type_name(REQUIRED[c])})",
                    f"only columns {df.columns}",
                    f"Add the {c!r} column.",
                )
            )
        probs.raise_if_any(source)
    if df.height == 0:
        probs.add(
            ManifestProblem(
                None, None, None, "at least one row", "an empty manifest", "Add clips or fix the query."
            )
        )
        probs.raise_if_any(source)

    df = df.with_columns(pl.lit(None, dtype=dt).alias(c) for c, dt in OPTIONAL.items() if c not in df.columns)
    df = df.select(COLUMNS + [c for c in df.columns if c not in SCHEMA])
    # Row identity for messages (clip_id as text, whatever its type is).
    df = df.with_columns(
        pl.int_range(pl.len(), dtype=pl.Int64).alias("__row"),
        pl.col("clip_id").cast(pl.String, strict=False).alias("__clip"),
    )
    for name, dt in SCHEMA.items():
        df = _cast_column(df, name, dt, probs)
    typed = all(df.schema[c] == dt for c, dt in SCHEMA.items())

    for c in REQUIRED:
        probs.add_rows(
            df.filter(pl.col(c).is_null()),
            c,
            "a value (required column)",
            None,
            f"Fill in {c!r} for this row or drop the row.",
        )
    if not typed:
        probs.raise_if_any(source)
        return df  # unreachable: a failed cast always records a problem

    probs.add_rows(
        df.filter(pl.col("labels").list.eval(pl.element().is_null() | (pl.element() == "")).list.any()),
        "labels",
        "non-empty label strings",
        "labels",
        "Remove empty or null labels from the list (an empty list means 'no label').",
    )
    probs.add_rows(
        df.filter(pl.col("clip_id").is_not_null() & pl.col("clip_id").is_duplicated()),
        "clip_id",
        "a clip_id unique in the manifest",
        "clip_id",
        "Give every clip its own id (e.g. append the segment start).",
    )
    probs.add_rows(
        df.filter(pl.col("start_s") < 0),
        "start_s",
        "start_s >= 0 seconds",
        "start_s",
        "Times are seconds from the start of the file; fix the start.",
    )
    probs.add_rows(
        df.filter(pl.col("start_s").is_nan() | pl.col("end_s").is_nan()).with_columns(
            pl.format("start_s={}, end_s={}", "start_s", "end_s").alias("__f")
        ),
        "start_s",
        "finite times",
        "__f",
        "Write numbers of seconds, or leave end_s empty for 'to the end'.",
        found_fmt="{}",
    )
    probs.add_rows(
        df.filter(
            pl.col("end_s").is_not_null() & (pl.col("start_s").fill_null(0.0) >= pl.col("end_s"))
        ).with_columns(
            pl.format("start_s={}, end_s={}", pl.col("start_s").fill_null(0.0), "end_s").alias("__f")
        ),
        "end_s",
        "start_s < end_s",
        "__f",
        "Swap or fix the times (end_s empty means 'to the end of the file').",
        found_fmt="{}",
    )
    probs.add_rows(
        df.filter(pl.col("split").is_not_null() & ~pl.col("split").is_in(list(SPLITS))),
        "split",
        f"one of {list(SPLITS)}",
        "split",
        "Rename the split (e.g. 'valid' -> 'val').",
    )
    probs.add_rows(
        df.filter(pl.col("domain").is_not_null() & ~pl.col("domain").is_in(list(DOMAINS))),
        "domain",
        f"one of {list(DOMAINS)}",
        "domain",
        "Use 'focal' for single-animal recordings, 'soundscape' for passive recordings, 'general' otherwise.",
    )
    probs.add_rows(
        df.filter(pl.col("sample_rate") <= 0),
        "sample_rate",
        "a positive sample rate in Hz",
        "sample_rate",
        "Write the file's rate (e.g. 16000) or leave it empty.",
    )

    if label_space is not None:
        known = pl.Series(list(label_space.labels), dtype=pl.String)
        exploded = (
            df.select("__row", "__clip", "labels")
            .explode("labels")
            .filter(pl.col("labels").is_not_null() & ~pl.col("labels").is_in(known.implode()))
        )
        probs.add_rows(
            exploded,
            "labels",
            f"labels from the label space ({len(label_space)} labels)",
            "labels",
            "Rebuild the label space from this manifest, or map the label to a known one.",
        )

    paths = df.filter(pl.col("path").is_not_null() & ~_is_uri())
    unsafe: dict[str, str] = {}
    if root is not None:
        uniq = paths.select("path").unique()["path"].to_list()
        unsafe = {p: why for p in uniq if (why := _path_escapes(p)) is not None}
        if unsafe:
            bad = paths.filter(pl.col("path").is_in(list(unsafe))).with_columns(
                pl.col("path").replace_strict(unsafe, return_dtype=pl.String).alias("__why")
            )
            for r in bad.head(max(0, probs.cap - len(probs.items))).iter_rows(named=True):
                probs.items.append(
                    ManifestProblem(
                        r["__row"],
                        r["__clip"],
                        "path",
                        f"a path relative to the data root {os.fspath(root)!r}",
                        f"{r['path']!r}, {r['__why']}",
                        "Make the path relative to the data root (or move the file under it).",
                    )
                )
            probs.total += bad.height
    if check_files:
        base = Path(root) if root is not None else Path.cwd()
        uniq = paths.select("path").unique()["path"].to_list()
        absent = [p for p in uniq if p not in unsafe and not (base / p).is_file()]
        if absent:
            probs.add_rows(
                paths.filter(pl.col("path").is_in(absent)),
                "path",
                f"an existing audio file under {str(base)!r}",
                "path",
                "Put the file there, fix the path, or drop the row.",
                found_fmt="{!r} (no such file)",
            )
    probs.raise_if_any(source)
    return df.drop("__row", "__clip")


# ------------------------------------------------------------------------------------------- file I/O
def _format_of(path: Path) -> str:
    suf = path.suffix.lower()
    if suf in (".parquet", ".pq"):
        return "parquet"
    if suf == ".csv":
        return "csv"
    if suf in (".jsonl", ".ndjson"):
        return "jsonl"
    raise ManifestError(
        f"manifest {str(path)!r}: expected a .parquet, .csv or .jsonl file, found suffix {suf!r}. "
        "Rename or convert the file."
    )


def _read_raw(path: Path) -> pl.DataFrame:
    fmt = _format_of(path)
    if not path.is_file():
        raise ManifestError(
            f"manifest {str(path)!r}: expected an existing file, found nothing there. Check the path."
        )
    try:
        if fmt == "parquet":
            return pl.read_parquet(path)
        if fmt == "csv":
            # Everything as text: validation casts with row-level errors instead of guessing types.
            return pl.read_csv(path, infer_schema=False)
        return pl.read_ndjson(path, infer_schema_length=None)
    except pl.exceptions.PolarsError as e:
        raise ManifestError(
            f"manifest {str(path)!r}: expected a readable {fmt} file, found a parse error ({e}). "
            "Fix the file's syntax."
        ) from e
    except OSError as e:
        raise ManifestError(
            f"manifest {str(path)!r}: expected a readable {fmt} file, found an error ({e}). "
            "Check the file is complete."
        ) from e


def read_manifest(
    path: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    check_files: bool = False,
    label_space: LabelSpace | None = None,
) -> pl.DataFrame:
    """Read a manifest file (parquet / CSV / JSONL by suffix) and validate it.

    ``root`` is the data root for path checks; with ``check_files=True`` and no ``root``, paths are
    resolved against the manifest's own folder. Returns the validated frame (schema types, every schema
    column present). Raises ManifestError (see :func:`validate_manifest`).
    """
    p = Path(path)
    df = _read_raw(p)
    if check_files and root is None:
        root = p.parent
    return validate_manifest(df, root=root, check_files=check_files, label_space=label_space, source=str(p))


def write_manifest(df: pl.DataFrame, path: str | os.PathLike[str], *, validate: bool = True) -> Path:
    """Write a manifest as parquet / CSV / JSONL by suffix, atomically and durably
    (:func:`avexlab.fsutil.atomic_write`).

    With ``validate=True`` (default) the frame is validated first, so every file written reads back.
    CSV stores list columns as ``;``-joined strings; a label containing ``;`` cannot be stored in CSV.
    """
    p = Path(path)
    fmt = _format_of(p)
    if validate:
        df = validate_manifest(df, source=str(p))
    if fmt == "parquet":
        atomic_write(p, lambda t: df.write_parquet(t))
    elif fmt == "jsonl":
        atomic_write(p, lambda t: df.write_ndjson(t))
    else:
        lists = [c for c, dt in df.schema.items() if isinstance(dt, pl.List)]
        for c in lists:
            clash = df.with_row_index("__row").filter(
                pl.col(c).list.eval(pl.element().str.contains(LIST_SEP, literal=True)).list.any()
            )
            if clash.height:
                raise ManifestError(
                    f"manifest {str(p)!r}, row {clash['__row'][0]} (clip_id {clash['clip_id'][0]!r}), column "
                    f"{c!r}: expected list items without {LIST_SEP!r} for CSV, found {clash[c][0].to_list()!r}. "
                    "Write parquet or JSONL instead, or rename the label."
                )
        out = df.with_columns(pl.col(c).list.join(LIST_SEP) for c in lists)
        atomic_write(p, lambda t: out.write_csv(t))
    return p


def write_events(df: pl.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write an events table (the EVENT_SCHEMA columns, e.g. from a ``prepare_*`` adapter) atomically as
    parquet: its list-free, typed columns round-trip exactly there."""
    p = Path(path)
    if p.suffix.lower() != ".parquet":
        raise ManifestError(
            f"events table {str(p)!r}: expected a .parquet path, found {p.suffix or 'no suffix'!r}."
        )
    atomic_write(p, lambda t: df.write_parquet(t))
    return p


def manifest_hash(df: pl.DataFrame) -> str:
    """A stable SHA-256 (hex) of a manifest's content: column names, types and values in row order.

    Schema columns come first in schema order, extra columns sorted by name, so the hash does not depend
    on column order. Values are serialised through JSON, so the hash is stable across polars versions
    and platforms. Row order matters (it defines dataset indices).
    """
    cols = [c for c in COLUMNS if c in df.columns] + sorted(c for c in df.columns if c not in SCHEMA)
    h = hashlib.sha256()
    h.update(f"rows={df.height}\n".encode())
    for c in cols:
        s = df[c]
        h.update(f"{c}:{_type_name(s.dtype)}\n".encode())
        h.update(json.dumps(s.to_list(), default=str, allow_nan=True, separators=(",", ":")).encode())
        h.update(b"\n")
    return h.hexdigest()


def validate_manifest_file(
    path: str | os.PathLike[str],
    *,
    root: str | os.PathLike[str] | None = None,
    check_files: bool = True,
) -> dict[str, Any]:
    """The CLI's ``avexlab data validate MANIFEST``: read + validate, then summarise.

    Returns a JSON-able dict: ``path``, ``rows``, ``hash``, ``datasets`` / ``splits`` / ``domains``
    (counts), ``labels`` (number of distinct labels), ``duration_s`` (sum of known segment lengths).
    Raises ManifestError listing every problem.
    """
    df = read_manifest(path, root=root, check_files=check_files)

    def counts(col: str) -> dict[str, int]:
        vc = df[col].value_counts(sort=True)
        return {str(k): int(v) for k, v in vc.iter_rows()}

    dur = df.select((pl.col("end_s") - pl.col("start_s").fill_null(0.0)).sum()).item()
    return {
        "path": str(path),
        "rows": df.height,
        "hash": manifest_hash(df),
        "datasets": counts("dataset"),
        "splits": counts("split"),
        "domains": counts("domain"),
        "labels": int(df["labels"].explode().drop_nulls().n_unique()),
        "duration_s": float(dur or 0.0),
    }


def concat_manifests(frames: Iterable[pl.DataFrame]) -> pl.DataFrame:
    """Concatenate validated manifests (extra columns are unioned; missing ones are null)."""
    return validate_manifest(pl.concat(list(frames), how="diagonal_relaxed"))
