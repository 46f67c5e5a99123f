"""Labels of store windows: a small append-only table of who said what about which window, and when.

Each entry says that a window (by its ``window_id``: recording path + start time, so labels name audio and
survive a rebuild of the store with another encoder) is a ``positive`` or a ``negative`` example of a
label. The label :data:`BACKGROUND` is the explicit background class: a positive background entry says
"none of the target classes is in this window" (wind, rain, silence, other species), which makes the
window a negative of every class and a positive of the classifier's background output.

The file is JSON lines, only ever appended to (one ``write`` + ``fsync`` per batch of entries); nothing is
rewritten. A correction is a newer entry: for each (window, label) the latest entry counts. A line cut by
a kill is ignored on reading and closed with a newline before the next append.
"""

from __future__ import annotations

import datetime as dt
import getpass
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import polars as pl

from avexlab.errors import expected_found

from .store import EmbeddingStore, StoreError

__all__ = ["BACKGROUND", "LABEL_SCHEMA", "LabelTable", "window_truth"]

BACKGROUND = "background"
"""The explicit background class: a window with none of the target classes in it."""

VALUES: tuple[str, ...] = ("positive", "negative")

LABEL_SCHEMA: dict[str, pl.DataType] = {
    "seq": pl.Int64(),
    "window_id": pl.String(),
    "path": pl.String(),
    "start_s": pl.Float64(),
    "end_s": pl.Float64(),
    "label": pl.String(),
    "value": pl.String(),
    "annotator": pl.String(),
    "time": pl.String(),
    "source": pl.String(),
    "note": pl.String(),
}


class LabelTable:
    """The append-only label file at ``path`` (``.jsonl``; created on the first append).

    ``entries()`` is every entry in file order (``seq`` = its position); ``current()`` the latest entry
    per (window, label); :meth:`add` appends entries for store rows.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"LabelTable({str(self.path)!r})"

    # ---------------------------------------------------------------------------------------- read
    def entries(self) -> pl.DataFrame:
        """Every entry in file order; ``seq`` numbers them from 0. Unparsable (torn) lines are skipped."""
        rows = []
        if self.path.exists():
            for line in self.path.read_bytes().split(b"\n"):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(rec, dict) or not {"window_id", "label", "value"} <= rec.keys():
                    continue
                rec["seq"] = len(rows)
                rows.append({c: rec.get(c) for c in LABEL_SCHEMA})
        return pl.DataFrame(rows, schema=LABEL_SCHEMA)

    def current(self) -> pl.DataFrame:
        """The latest entry for each (window, label), in order of first appearance."""
        e = self.entries()
        return e.group_by(["window_id", "label"], maintain_order=True).last().select(list(LABEL_SCHEMA))

    def classes(self) -> list[str]:
        """Target classes: labels (other than background) with at least one current positive, sorted."""
        cur = self.current()
        pos = cur.filter((pl.col("value") == "positive") & (pl.col("label") != BACKGROUND))
        return sorted(pos["label"].unique().to_list())

    def __len__(self) -> int:
        return self.entries().height

    # --------------------------------------------------------------------------------------- write
    def add(
        self,
        store: EmbeddingStore,
        rows: Sequence[int],
        label: str,
        value: Literal["positive", "negative"] = "positive",
        *,
        annotator: str | None = None,
        source: str = "manual",
        note: str | None = None,
        time: str | None = None,
    ) -> int:
        """Append one entry per store row: ``rows`` are ``label`` examples of kind ``value``.

        ``annotator`` defaults to the login name; ``time`` to now (UTC, ISO 8601, microseconds);
        ``source`` says where the windows came from (``search``, ``active:margin``, ``review``, ...).
        Returns the number of entries appended. Nothing is written when any argument is invalid.
        """
        label = str(label).strip()
        if not label or "\n" in label:
            raise StoreError(
                expected_found("label", "a non-empty one-line name", repr(label), "Name the class.")
            )
        if value not in VALUES:
            raise StoreError(
                expected_found("label value", f"one of {list(VALUES)}", repr(value), "Pick one.")
            )
        if label == BACKGROUND and value != "positive":
            raise StoreError(
                expected_found(
                    "background label",
                    "value 'positive' (the window holds none of the target classes)",
                    repr(value),
                    "To say a window holds a target class, label it positive for that class.",
                )
            )
        who = annotator if annotator is not None else getpass.getuser()
        if not who.strip():
            raise StoreError(expected_found("annotator", "a name", repr(who), "Say who labelled."))
        idx = [int(r) for r in rows]
        if not idx:
            return 0
        if min(idx) < 0 or max(idx) >= store.n_rows:
            raise StoreError(
                expected_found(
                    "rows", f"store rows in [0, {store.n_rows})", f"{min(idx)}..{max(idx)}", "Check them."
                )
            )
        when = time or dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")
        w = store.windows[idx]
        lines = []
        for wid, path, a, b in w.select("window_id", "path", "start_s", "end_s").iter_rows():
            rec = {
                "window_id": wid,
                "path": path,
                "start_s": a,
                "end_s": b,
                "label": label,
                "value": value,
                "annotator": who,
                "time": when,
                "source": source,
                "note": note,
            }
            lines.append(json.dumps(rec, ensure_ascii=False))
        self._append("".join(line + "\n" for line in lines).encode())
        return len(lines)

    def add_from_truth(
        self,
        store: EmbeddingStore,
        rows: Sequence[int],
        truth: pl.DataFrame,
        classes: Sequence[str],
        *,
        annotator: str = "truth",
        source: str = "truth",
        time: str | None = None,
    ) -> int:
        """Label ``rows`` as a reviewer who knows the annotations would (``truth`` from
        :func:`window_truth`): for each class, positive when a call of it lies in the window, negative when
        none touches it; background when no call of any kind touches the window. A call cut by the window
        edge is left unlabelled for its class (ambiguous). Used to simulate sessions on annotated archives
        (the synthetic world, or recordings with Raven tables). Returns the entries appended."""
        by_row = {int(r): (p, t) for r, p, t in truth.select("row", "positives", "touched").iter_rows()}
        n = 0
        for c in classes:
            pos = [r for r in rows if c in by_row[int(r)][0]]
            neg = [r for r in rows if c not in by_row[int(r)][1] and by_row[int(r)][1]]
            n += self.add(store, pos, c, "positive", annotator=annotator, source=source, time=time)
            n += self.add(store, neg, c, "negative", annotator=annotator, source=source, time=time)
        bg = [r for r in rows if not by_row[int(r)][1]]
        n += self.add(store, bg, BACKGROUND, annotator=annotator, source=source, time=time)
        return n

    def _append(self, data: bytes) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            size = os.fstat(fd).st_size
            if size:
                with open(self.path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":  # a line torn by a kill: close it, never extend it
                        data = b"\n" + data
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def window_truth(windows: pl.DataFrame, events: pl.DataFrame, *, min_fraction: float = 0.5) -> pl.DataFrame:
    """What annotated events say about each store window.

    ``windows``: a store's windows (``row``, ``path``, ``start_s``, ``end_s``); ``events``: annotations with
    ``path``, ``onset_s``, ``offset_s``, ``label`` (an events table: the synthetic world's, or one read from
    Raven tables by ``prepare_raven``). Returns per row: ``positives`` (labels of events with at least
    ``min_fraction`` of their duration inside the window) and ``touched`` (labels of events overlapping it
    at all), sorted and unique. A window with nothing touched holds background only.
    """
    ev = events.select(
        pl.col("path").cast(pl.String),
        pl.col("onset_s").cast(pl.Float64),
        pl.col("offset_s").cast(pl.Float64),
        "label",
    )
    pairs = windows.select("row", "path", "start_s", "end_s").join(ev, on="path", how="inner")
    overlap = (pl.min_horizontal("end_s", "offset_s") - pl.max_horizontal("start_s", "onset_s")).clip(
        lower_bound=0
    )
    duration = (pl.col("offset_s") - pl.col("onset_s")).clip(lower_bound=1e-9)
    pairs = pairs.with_columns(overlap.alias("__ov"), (overlap / duration).alias("__frac")).filter(
        pl.col("__ov") > 0
    )
    agg = pairs.group_by("row").agg(
        pl.col("label").filter(pl.col("__frac") >= min_fraction).unique().sort().alias("positives"),
        pl.col("label").unique().sort().alias("touched"),
    )
    out = windows.select("row").join(agg, on="row", how="left").sort("row")
    empty = pl.lit([], dtype=pl.List(pl.String))
    return out.with_columns(pl.col("positives").fill_null(empty), pl.col("touched").fill_null(empty))
