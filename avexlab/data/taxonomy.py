"""Species names mapped to the GBIF backbone: synonyms resolved to accepted names, label spaces merged.

Reads a table in the GBIF backbone's ``Taxon.tsv`` format (tab- or comma-separated) with at least the
columns ``taxonID, scientificName, canonicalName, taxonRank, taxonomicStatus, acceptedNameUsageID`` (the
ranks ``kingdom .. genus`` are kept when present). A name resolves in this order:

1. normalise: case-fold, collapse whitespace, drop a trailing author string
   (``"Parus major Linnaeus, 1758"`` -> ``"parus major"``; ``"(Linnaeus, 1758)"`` too);
2. look the name up among canonical names, then full scientific names;
3. follow ``acceptedNameUsageID`` (synonym -> accepted) until an accepted taxon is reached.

When several taxa share a canonical name, accepted ones win over doubtful ones over synonyms; a name whose
candidates lead to different accepted taxa is reported as ambiguous instead of guessed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from avexlab.data.labels import LabelSpace
from avexlab.errors import DataNotFoundError, ManifestError

__all__ = ["Resolution", "Taxonomy", "harmonise_manifest", "merge_label_spaces", "normalise_name"]

REQUIRED_COLUMNS = (
    "taxonID",
    "scientificName",
    "canonicalName",
    "taxonRank",
    "taxonomicStatus",
    "acceptedNameUsageID",
)
RANK_COLUMNS = ("kingdom", "phylum", "class", "order", "family", "genus")
_STATUS_PRIORITY = {"accepted": 0, "doubtful": 1}  # every kind of synonym: 2
_INFRA_MARKERS = {"subsp.", "ssp.", "var.", "f.", "subvar.", "forma", "morph"}


def normalise_name(name: str) -> str:
    """Case-folded, whitespace-collapsed name with underscores read as spaces."""
    return " ".join(name.replace("_", " ").split()).casefold()


def _strip_author(name: str) -> str:
    """Keep the Latin part of a name: the genus and following lower-case epithets (``x`` hybrids, rank
    markers such as ``subsp.`` kept); stop at the first token that looks like an author or a year."""
    tokens = name.split()
    if not tokens:
        return name
    kept = [tokens[0]]
    for tok in tokens[1:]:
        if tok in _INFRA_MARKERS or tok == "×" or tok == "x":
            kept.append(tok)
            continue
        if re.fullmatch(r"[a-zà-ÿ][a-zà-ÿ\-]*", tok):
            kept.append(tok)
            continue
        break
    return " ".join(kept)


@dataclass(frozen=True)
class Resolution:
    """Outcome of resolving one name: ``accepted`` canonical name (None if unresolved), ``status`` of the
    matched taxon, ``taxon_id`` of the accepted taxon, and ``reason`` when unresolved/ambiguous."""

    name: str
    accepted: str | None
    status: str | None = None
    taxon_id: str | None = None
    reason: str | None = None


class Taxonomy:
    """An in-memory GBIF-backbone-format table. Build with :meth:`from_file` or :meth:`from_frame`."""

    def __init__(self, table: pl.DataFrame) -> None:
        missing = [c for c in REQUIRED_COLUMNS if c not in table.columns]
        if missing:
            raise ManifestError(
                f"taxonomy table: expected GBIF backbone columns {list(REQUIRED_COLUMNS)}, found it without "
                f"{missing} (columns: {table.columns}). Export the table with the backbone's column names."
            )
        cols = [c for c in (*REQUIRED_COLUMNS, *RANK_COLUMNS) if c in table.columns]
        t = table.select(pl.col(c).cast(pl.String) for c in cols)
        t = t.with_columns(
            pl.col("acceptedNameUsageID").str.strip_chars().replace("", None),
            pl.col("taxonomicStatus").str.strip_chars().str.to_lowercase(),
        )
        dup = t.filter(pl.col("taxonID").is_duplicated())
        if dup.height:
            raise ManifestError(
                f"taxonomy table: expected unique taxonID values, found {dup['taxonID'][0]!r} repeated. "
                "Deduplicate the table."
            )
        self.table = t
        self._by_id: dict[str, dict[str, str | None]] = {r["taxonID"]: r for r in t.iter_rows(named=True)}
        self._by_name: dict[str, list[str]] = {}
        for r in t.iter_rows(named=True):
            for key in {r["canonicalName"], r["scientificName"]}:
                if key:
                    self._by_name.setdefault(normalise_name(key), []).append(r["taxonID"])

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Taxonomy:
        """Read a ``.tsv``/``.txt`` (tab) or ``.csv`` (comma) backbone table; all columns as text."""
        p = Path(path)
        if not p.is_file():
            raise DataNotFoundError(
                f"taxonomy table {str(p)!r}: expected a GBIF backbone Taxon.tsv (or a subset in the same "
                "format), found nothing there. Put the file there or pass its path."
            )
        sep = "," if p.suffix.lower() == ".csv" else "\t"
        try:
            # GBIF's Taxon.tsv is unquoted: quote characters are part of names.
            df = pl.read_csv(p, separator=sep, quote_char=None if sep == "\t" else '"', infer_schema=False)
        except pl.exceptions.PolarsError as e:
            raise ManifestError(
                f"taxonomy table {str(p)!r}: expected a {'tab' if sep == chr(9) else 'comma'}-separated table, "
                f"found a parse error ({e}). Check the separator and the header."
            ) from e
        return cls(df)

    @classmethod
    def from_frame(cls, df: pl.DataFrame) -> Taxonomy:
        return cls(df)

    def __len__(self) -> int:
        return self.table.height

    # --------------------------------------------------------------------------------- resolution
    def _accepted_of(self, taxon_id: str) -> str | None:
        seen: set[str] = set()
        cur = taxon_id
        while True:
            row = self._by_id.get(cur)
            if row is None or cur in seen:
                return None  # dangling or cyclic synonym chain
            seen.add(cur)
            nxt = row["acceptedNameUsageID"]
            if nxt is None or nxt == cur:
                return cur
            cur = nxt

    def lookup(self, name: str) -> Resolution:
        """Resolve ``name`` and say how (never raises for unknown names; see :meth:`resolve`)."""
        norm = normalise_name(name)
        ids = self._by_name.get(norm)
        if not ids:
            stripped = _strip_author(" ".join(name.replace("_", " ").split()))
            ids = self._by_name.get(normalise_name(stripped))
        if not ids:
            return Resolution(name, None, reason="not in the taxonomy")
        best = min(_STATUS_PRIORITY.get(self._by_id[i]["taxonomicStatus"] or "", 2) for i in ids)
        ids = [i for i in ids if _STATUS_PRIORITY.get(self._by_id[i]["taxonomicStatus"] or "", 2) == best]
        targets = {self._accepted_of(i) for i in ids}
        if None in targets:
            return Resolution(
                name, None, reason="its synonym chain is broken (acceptedNameUsageID not found)"
            )
        if len(targets) > 1:
            names = sorted(str(self._by_id[t]["canonicalName"]) for t in targets if t)
            return Resolution(name, None, reason=f"ambiguous: it matches {names}")
        (tid,) = targets
        assert tid is not None
        acc = self._by_id[tid]
        return Resolution(
            name, acc["canonicalName"] or acc["scientificName"], self._by_id[ids[0]]["taxonomicStatus"], tid
        )

    def resolve(self, name: str) -> str:
        """The accepted canonical name for ``name`` (synonyms followed). ManifestError if unresolved."""
        r = self.lookup(name)
        if r.accepted is None:
            raise ManifestError(
                f"species name {name!r}: expected a name in the taxonomy ({len(self)} taxa), found it "
                f"{r.reason}. Fix the spelling, add the taxon to the table, or map it by hand."
            )
        return r.accepted

    def try_resolve(self, name: str) -> str | None:
        """Like :meth:`resolve` but returns None for unresolved names."""
        return self.lookup(name).accepted

    def ranks(self, name: str) -> dict[str, str | None]:
        """The rank columns (kingdom .. genus) of the accepted taxon of ``name``."""
        r = self.lookup(name)
        if r.taxon_id is None:
            raise ManifestError(f"species name {name!r}: expected a resolvable name, found it {r.reason}.")
        row = self._by_id[r.taxon_id]
        return {k: row.get(k) for k in RANK_COLUMNS if k in row}


def _mapping(taxonomy: Taxonomy, names: Iterable[str]) -> tuple[dict[str, str], list[Resolution]]:
    resolved: dict[str, str] = {}
    unresolved: list[Resolution] = []
    for n in sorted(set(names)):
        r = taxonomy.lookup(n)
        if r.accepted is None:
            unresolved.append(r)
        else:
            resolved[n] = r.accepted
    return resolved, unresolved


def merge_label_spaces(
    *spaces: LabelSpace, taxonomy: Taxonomy | None = None
) -> tuple[LabelSpace, dict[str, str]]:
    """Merge label spaces of several datasets into one, by accepted name when a taxonomy is given.

    Returns ``(space, mapping)``: ``mapping`` maps every input label to its label in ``space``. Labels
    the taxonomy cannot resolve (e.g. ``"noise"``, AudioSet classes) are kept as they are.
    """
    labels = sorted({x for s in spaces for x in s.labels})
    mapping = {x: x for x in labels}
    if taxonomy is not None:
        resolved, _ = _mapping(taxonomy, labels)
        mapping.update(resolved)
    return LabelSpace.from_labels(mapping.values()), mapping


def harmonise_manifest(
    df: pl.DataFrame,
    taxonomy: Taxonomy,
    column: str = "species",
    *,
    labels: bool = True,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Map ``column`` (and, with ``labels=True``, the items of ``labels`` that are species names) to
    accepted names. The original values are kept in ``{column}_original``.

    Returns ``(manifest, unresolved)`` where ``unresolved`` has one row per name that could not be
    resolved: ``name``, ``reason``, ``rows`` (how many manifest rows carry it). Unresolved names are left
    unchanged in the manifest, so nothing is silently dropped.
    """
    if column not in df.columns:
        raise ManifestError(
            f"harmonise_manifest: expected a {column!r} column, found columns {df.columns}. Pass column=."
        )
    names = set(df[column].drop_nulls().unique().to_list())
    if labels and "labels" in df.columns:
        label_names = set(df["labels"].explode().drop_nulls().unique().to_list())
    else:
        label_names = set()
    resolved, unresolved = _mapping(taxonomy, names | label_names)
    # Label items that are not species (``noise``, call types) are only reported when they also occur
    # in the species column.
    unresolved = [u for u in unresolved if u.name in names]
    out = df.with_columns(
        pl.col(column).alias(f"{column}_original"),
        pl.col(column).replace(resolved),
    )
    if labels and "labels" in df.columns and resolved:
        out = out.with_columns(
            pl.col("labels").list.eval(pl.element().replace(resolved)).list.unique(maintain_order=True)
        )
    counts = df[column].value_counts()
    count_of = {k: int(v) for k, v in counts.iter_rows()}
    report = pl.DataFrame(
        {
            "name": [u.name for u in unresolved],
            "reason": [u.reason for u in unresolved],
            "rows": [count_of.get(u.name, 0) for u in unresolved],
        },
        schema={"name": pl.String, "reason": pl.String, "rows": pl.Int64},
    )
    return out, report
