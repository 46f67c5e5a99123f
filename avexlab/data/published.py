"""The AVEX paper's published numbers, as data: ``avexlab/data/published_results.yaml`` (in a checkout a link
to ``data_manifests/published_results.yaml``, the one file to edit), with the source they were copied
from. Nothing here is computed; every frame carries ``source == PAPER_SOURCE`` so it is never mistaken for
a number avexlab measured.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from avexlab.errors import DataNotFoundError, expected_found

__all__ = ["PAPER_SOURCE", "paper_citation", "paper_data_mix", "paper_headline", "published_table"]

PAPER_SOURCE = "paper, real data"
_FILE = Path(__file__).with_name("published_results.yaml")


@functools.cache
def _load() -> dict[str, Any]:
    if not _FILE.is_file():
        raise DataNotFoundError(
            expected_found(
                "published numbers",
                f"a YAML file at {_FILE}",
                "nothing",
                "Restore data_manifests/published_results.yaml (the package's copy links to it).",
            )
        )
    return yaml.safe_load(_FILE.read_text(encoding="utf-8"))


def paper_citation() -> dict[str, str]:
    """Where the numbers come from: ``title``, ``venue``, ``data``."""
    return dict(_load()["source"])


def published_table(name: str) -> pl.DataFrame:
    """One published table (``headline`` or ``data_mix``): columns ``source``, its key columns, then its
    score columns (fractions in [0, 1]; null where the paper reports N/A), one row per published model."""
    tables = _load()["tables"]
    if name not in tables:
        raise DataNotFoundError(
            expected_found("published table", f"one of {sorted(tables)}", repr(name), "Pick one.")
        )
    t = tables[name]
    keys, cols = list(t["keys"]), list(t["columns"])
    rows = []
    for r in t["rows"]:
        values = r["values"]
        if len(values) != len(cols):
            raise DataNotFoundError(
                expected_found(
                    f"published table {name!r}, row {r.get('model')!r}",
                    f"{len(cols)} values ({cols})",
                    f"{len(values)}",
                    "Fix data_manifests/published_results.yaml.",
                )
            )
        rows.append(
            {"source": PAPER_SOURCE, **{k: r[k] for k in keys}, **dict(zip(cols, values, strict=True))}
        )
    schema = {"source": pl.String, **{k: pl.String for k in keys}, **{c: pl.Float64 for c in cols}}
    return pl.DataFrame(rows, schema=schema)


def paper_headline() -> pl.DataFrame:
    """The headline table: ``source``, ``model``, ``paradigm`` and six scores (BEANS clf probe / R-auc,
    BEANS det probe, BirdSet probe, Indiv. ID probe, Repertoire R-auc)."""
    return published_table("headline")


def paper_data_mix() -> pl.DataFrame:
    """The data-mix ablation (EfficientNet-B0 trained SL on one mix): ``source``, ``model``, ``mix``
    (``general`` = AudioSet only, ``bio``, ``all``) and five scores."""
    return published_table("data_mix")
