"""Tables kept beside a grid are reused only while everything that determines them is unchanged."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from avexlab.evaluate.memo import ANALYSIS_DIR, memo_table

MODULES = ("avexlab.evaluate.memo",)


def test_a_kept_table_is_reused_and_any_change_recomputes(tmp_path: Path) -> None:
    calls: list[int] = []
    frame = pl.DataFrame({"x": [1, 2, 3]})

    def compute(df: pl.DataFrame, k: int):
        def run() -> pl.DataFrame:
            calls.append(k)
            return df.with_columns((pl.col("x") * k).alias("y"))

        return run

    first = memo_table(tmp_path, "t", [frame], {"k": 2}, MODULES, compute(frame, 2))
    again = memo_table(tmp_path, "t", [frame], {"k": 2}, MODULES, compute(frame, 2))
    assert calls == [2] and again.equals(first)  # read back, not recomputed
    kept = list((tmp_path / ANALYSIS_DIR).glob("t-*.parquet"))
    assert len(kept) == 1

    # other settings, or other input rows: another key, computed again, the old table removed
    memo_table(tmp_path, "t", [frame], {"k": 3}, MODULES, compute(frame, 3))
    changed = frame.with_columns(pl.Series("x", [1, 2, 4]))
    got = memo_table(tmp_path, "t", [changed], {"k": 3}, MODULES, compute(changed, 3))
    assert calls == [2, 3, 3] and got["y"].to_list() == [3, 6, 12]
    assert len(list((tmp_path / ANALYSIS_DIR).glob("t-*.parquet"))) == 1
    # another table's name is left alone; no folder keeps nothing
    memo_table(tmp_path, "u", [frame], {}, MODULES, compute(frame, 1))
    assert {p.name.split("-")[0] for p in (tmp_path / ANALYSIS_DIR).iterdir()} == {"t", "u"}
    memo_table(None, "t", [frame], {"k": 2}, MODULES, compute(frame, 2))
    assert calls[-1] == 2 and len(calls) == 5
