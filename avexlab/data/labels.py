"""Label spaces built from manifests, sparse label indices, per-batch multi-hot, and grouped splits.

A :class:`LabelSpace` is a sorted tuple of label strings; index ``i`` is the ``i``-th label in sorted
(code-point) order, so the same manifests always give the same indices. Labels travel as sparse index
lists; a dense ``[B, C]`` multi-hot exists only per batch (``C`` can be tens of thousands).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl
import torch
from torch import Tensor

from avexlab.errors import ConfigError, ManifestError

__all__ = ["LabelSpace", "assign_splits"]


@dataclass(frozen=True)
class LabelSpace:
    """An ordered, immutable set of labels. Build with :meth:`from_manifests` or :meth:`from_labels`."""

    labels: tuple[str, ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        labels = tuple(self.labels)
        if list(labels) != sorted(set(labels)):
            raise ConfigError(
                "LabelSpace: expected sorted, unique labels, found an unsorted or duplicated tuple. "
                "Build it with LabelSpace.from_labels(...)."
            )
        bad = [x for x in labels if not isinstance(x, str) or not x]
        if bad:
            raise ConfigError(f"LabelSpace: expected non-empty strings, found {bad[:5]!r}. Clean the labels.")
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "_index", {x: i for i, x in enumerate(labels)})

    # ------------------------------------------------------------------------------------ building
    @classmethod
    def from_labels(cls, labels: Iterable[str]) -> LabelSpace:
        """A space holding each distinct label of ``labels`` once, sorted."""
        return cls(tuple(sorted(set(labels))))

    @classmethod
    def from_manifests(cls, *manifests: pl.DataFrame, column: str = "labels") -> LabelSpace:
        """Every label that occurs in ``column`` (a list or string column) of the given manifests."""
        found: set[str] = set()
        for df in manifests:
            if column not in df.columns:
                raise ManifestError(
                    f"label space: expected a {column!r} column, found columns {df.columns}. "
                    "Pass column= or validate the manifest first."
                )
            s = df[column]
            if isinstance(s.dtype, pl.List):
                s = s.explode()
            found.update(x for x in s.drop_nulls().unique().to_list() if x != "")
        return cls.from_labels(found)

    def merge(self, *others: LabelSpace) -> LabelSpace:
        """The union of this space and ``others`` (indices are recomputed, sorted)."""
        return LabelSpace.from_labels([*self.labels, *(x for o in others for x in o.labels)])

    # ------------------------------------------------------------------------------------- queries
    def __len__(self) -> int:
        return len(self.labels)

    def __contains__(self, label: object) -> bool:
        return label in self._index

    def __iter__(self) -> Iterator[str]:
        return iter(self.labels)

    def _unknown(self, label: str) -> ManifestError:
        near = [x for x in self.labels if x.lower() == str(label).lower()][:3]
        hint = f" Did you mean {near}?" if near else ""
        return ManifestError(
            f"label {label!r}: expected one of the label space's {len(self)} labels "
            f"(e.g. {list(self.labels[:3])}), found it missing.{hint} Build the space from every manifest "
            "the labels come from (LabelSpace.from_manifests(a, b)) or merge spaces."
        )

    def index(self, label: str) -> int:
        """The index of ``label``; ManifestError if unknown."""
        try:
            return self._index[label]
        except KeyError:
            raise self._unknown(label) from None

    def encode(self, labels: Iterable[str]) -> list[int]:
        """Sparse indices of ``labels`` (order kept, duplicates removed)."""
        out: list[int] = []
        for x in labels:
            i = self.index(x)
            if i not in out:
                out.append(i)
        return out

    def decode(self, indices: Iterable[int]) -> list[str]:
        """The labels at ``indices``."""
        return [self.labels[i] for i in indices]

    def encode_column(self, series: pl.Series) -> list[list[int]]:
        """Sparse indices for a whole list[str] column (vectorised lookup; unknown labels are errors)."""
        mapping = pl.DataFrame({"__l": list(self.labels), "__i": np.arange(len(self), dtype=np.int64)})
        flat = pl.DataFrame({"__r": np.arange(len(series)), "__l": series}).explode("__l")
        flat = flat.filter(pl.col("__l").is_not_null())
        joined = flat.join(mapping, on="__l", how="left", maintain_order="left")
        missing = joined.filter(pl.col("__i").is_null())
        if missing.height:
            raise self._unknown(missing["__l"][0])
        grouped = joined.group_by("__r", maintain_order=True).agg(pl.col("__i").unique(maintain_order=True))
        out: list[list[int]] = [[] for _ in range(len(series))]
        for r, idx in grouped.iter_rows():
            out[r] = idx
        return out

    def multi_hot(self, batch: Sequence[Sequence[int]], device: torch.device | str | None = None) -> Tensor:
        """Dense ``[B, C]`` float32 targets from a batch of index lists (1.0 where the label is present)."""
        lengths = torch.tensor([len(x) for x in batch], dtype=torch.long)
        flat = torch.tensor([i for x in batch for i in x], dtype=torch.long)
        if flat.numel() and (int(flat.min()) < 0 or int(flat.max()) >= len(self)):
            raise ManifestError(
                f"multi_hot: expected label indices in [0, {len(self)}), found "
                f"[{int(flat.min())}, {int(flat.max())}]. Encode labels with this label space."
            )
        rows = torch.repeat_interleave(torch.arange(len(batch)), lengths)
        out = torch.zeros(len(batch), len(self), dtype=torch.float32)
        out[rows, flat] = 1.0
        return out.to(device) if device is not None else out

    # ---------------------------------------------------------------------------------- persistence
    def to_json(self, path: str | os.PathLike[str] | None = None) -> str:
        """JSON text ``{"labels": [...]}``; also written to ``path`` when given."""
        text = json.dumps({"labels": list(self.labels)}, ensure_ascii=False, indent=0)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

    @classmethod
    def from_json(cls, text_or_path: str | os.PathLike[str]) -> LabelSpace:
        """Inverse of :meth:`to_json`: JSON text, or a path to a file holding it."""
        text = os.fspath(text_or_path)
        if not text.lstrip().startswith("{"):
            text = Path(text).read_text(encoding="utf-8")
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("labels"), list):
            raise ConfigError(
                f"label space JSON: expected an object with a 'labels' list, found {type(data).__name__}. "
                "Write it with LabelSpace.to_json."
            )
        return cls(tuple(data["labels"]))


def assign_splits(
    df: pl.DataFrame,
    by: str = "individual",
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
    seed: int = 0,
) -> pl.DataFrame:
    """Set the ``split`` column so that all rows sharing a ``by`` value land in the same split.

    Groups are shuffled deterministically by ``seed`` (groups sorted first, so row order does not matter)
    and assigned to train/val/test in turn until each split holds about its fraction of the ROWS.
    Every split with a positive fraction gets at least one group when there are enough groups.
    Rows with a null ``by`` value are an error (use ``by="clip_id"`` for ungrouped data).
    """
    if by not in df.columns:
        raise ManifestError(
            f"assign_splits: expected a grouping column {by!r}, found columns {df.columns}. "
            "Pick a column such as 'individual', 'session' or 'clip_id'."
        )
    if len(fractions) != 3 or any(f < 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise ConfigError(
            f"assign_splits: expected three non-negative fractions summing to 1, found {fractions}."
        )
    nulls = df.with_row_index("__row").filter(pl.col(by).is_null())
    if nulls.height:
        raise ManifestError(
            f"assign_splits: row {nulls['__row'][0]}, column {by!r}: expected a group value, found null "
            f"({nulls.height} row(s)). Fill the column or split by 'clip_id'."
        )
    groups = df.group_by(by).len().sort(by)
    g = groups.height
    rng = np.random.default_rng(seed)
    order = rng.permutation(g)
    sizes = groups["len"].to_numpy()[order]
    # The split of a group is decided by where its middle row falls on the cumulative row axis.
    mid = (np.cumsum(sizes) - sizes / 2) / sizes.sum()
    edges = np.cumsum(fractions)[:-1]
    split_idx = np.searchsorted(edges, mid, side="right")
    # Guarantee non-empty splits where possible: give an empty split the group nearest its edge.
    for k, frac in enumerate(fractions):
        if frac > 0 and g >= sum(f > 0 for f in fractions) and not (split_idx == k).any():
            counts = np.bincount(split_idx, minlength=3)
            donors = [j for j in range(g) if counts[split_idx[j]] > 1]
            target = (np.cumsum((0.0, *fractions))[k] + np.cumsum((0.0, *fractions))[k + 1]) / 2
            j = min(donors, key=lambda j: abs(mid[j] - target))
            split_idx[j] = k
    names = np.array(["train", "val", "test"])
    mapping = pl.DataFrame({by: groups[by].gather(order), "split": names[split_idx]})
    mapping = mapping.with_columns(pl.col(by).cast(df.schema[by]))
    out = df.drop("split", strict=False).join(mapping, on=by, how="left", maintain_order="left")
    # Keep the caller's column order (``split`` stays where it was, or is appended).
    return out.select(df.columns) if "split" in df.columns else out
