"""Results tables on disk (parquet or CSV) and a self-contained HTML report (the core of ``avexlab report``)."""

from __future__ import annotations

import html
import os
from pathlib import Path
from typing import Any

import polars as pl

from avexlab.errors import DataNotFoundError, EvaluationError, expected_found
from avexlab.fsutil import atomic_write

from .tables import ood_report, paper_table

__all__ = ["items_path", "load_results", "save_results", "write_html_report"]

_REQUIRED = (
    "encoder",
    "checkpoint",
    "benchmark",
    "dataset",
    "task_family",
    "domain",
    "method",
    "metric",
    "value",
    "n",
    "probe_seed",
)


def load_results(path: str | os.PathLike[str]) -> pl.DataFrame:
    """Read a results table (``.parquet`` or ``.csv``) and check it has the tidy columns. Tables written
    before the probe seed had its own name (a ``seed`` column) are read with it renamed ``probe_seed``."""
    p = Path(path)
    if not p.exists():
        raise DataNotFoundError(
            expected_found(
                "results table", f"a file at {p}", "nothing", "Run `avexlab evaluate --out ...` first."
            )
        )
    df = pl.read_parquet(p) if p.suffix == ".parquet" else pl.read_csv(p)
    if "seed" in df.columns and "probe_seed" not in df.columns:  # tables written before 2026-12
        df = df.rename({"seed": "probe_seed"})
    missing = [c for c in _REQUIRED if c not in df.columns]
    if missing:
        raise EvaluationError(
            expected_found(
                "results table", f"columns {list(_REQUIRED)}", f"{p} lacking {missing}", "Regenerate it."
            )
        )
    return df


def save_results(
    results: pl.DataFrame,
    path: str | os.PathLike[str],
    *,
    append: bool = True,
    items: pl.DataFrame | None = None,
) -> Path:
    """Write ``results`` atomically to ``path`` (parquet). With ``append``, rows already in the file for
    the same ``(encoder, checkpoint, benchmark)`` are replaced and all other rows kept. ``items`` (the
    per-item outcomes, :data:`avexlab.evaluate.stats.ITEM_SCHEMA`) go to ``items.parquet`` beside it the
    same way, so that intervals can be computed later."""
    p = Path(path)
    _merge_write(results, p, load_results if p.exists() else None, append)
    if items is not None:
        ip = items_path(p)
        _merge_write(items, ip, pl.read_parquet if ip.exists() else None, append)
    return p


def items_path(results_path: str | os.PathLike[str]) -> Path:
    """Where the per-item outcomes of a results table live: ``items.parquet`` beside ``results.parquet``
    (``<stem>.items.parquet`` beside any other name)."""
    p = Path(results_path)
    return p.with_name("items.parquet" if p.stem == "results" else f"{p.stem}.items.parquet")


def _merge_write(new: pl.DataFrame, p: Path, read: Any, append: bool) -> None:
    table = new
    if append and read is not None:
        old = read(p)
        keys = new.select("encoder", "checkpoint", "benchmark").unique()
        old = old.join(keys, on=["encoder", "checkpoint", "benchmark"], how="anti")
        table = pl.concat([old, new], how="diagonal_relaxed")
    atomic_write(p, lambda tmp: table.write_parquet(tmp))


def _table_html(df: pl.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>"
        + "".join(
            f"<td>{'' if v is None else f'{v:.3f}' if isinstance(v, float) else html.escape(str(v))}</td>"
            for v in row
        )
        + "</tr>"
        for row in df.iter_rows()
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def write_html_report(results: pl.DataFrame, path: str | os.PathLike[str]) -> Path:
    """A self-contained HTML page: the paper-shaped table, the focal -> soundscape gaps, the full tidy
    table, and (when plotly is installed) a bar chart of the paper-shaped table."""
    table = paper_table(results)
    gaps = ood_report(results)
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>avexlab report</title>",
        "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}</style></head><body>",
        "<h1>avexlab results</h1><h2>Paper-shaped table</h2>",
        _table_html(table),
    ]
    try:
        import plotly.graph_objects as go

        long = table.unpivot(index="encoder", variable_name="column", value_name="value").drop_nulls()
        fig = go.Figure()
        for enc in long["encoder"].unique(maintain_order=True).to_list():
            sub = long.filter(pl.col("encoder") == enc)
            fig.add_bar(name=enc, x=sub["column"].to_list(), y=sub["value"].to_list())
        fig.update_layout(barmode="group", title="paper-shaped table", yaxis_title="value")
        parts.append(fig.to_html(full_html=False, include_plotlyjs=True))
    except ImportError:  # plotly is a core dependency; the tables alone still make a report
        pass
    parts += [
        "<h2>Focal -> soundscape gap</h2>",
        _table_html(gaps),
        "<h2>All results</h2>",
        _table_html(results),
    ]
    parts.append("</body></html>")
    return atomic_write(path, "".join(parts))
