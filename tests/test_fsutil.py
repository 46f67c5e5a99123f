"""The one atomic-write helper: content, failures that keep the old file, no temporary files left."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from avexlab.fsutil import atomic_write


def test_bytes_text_and_callable(tmp_path: Path) -> None:
    assert atomic_write(tmp_path / "a.bin", b"\x00\x01").read_bytes() == b"\x00\x01"
    assert atomic_write(tmp_path / "sub" / "b.txt", "héllo").read_text(encoding="utf-8") == "héllo"
    df = pl.DataFrame({"x": [1, 2, 3]})
    atomic_write(tmp_path / "c.parquet", lambda t: df.write_parquet(t))
    assert pl.read_parquet(tmp_path / "c.parquet").equals(df)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == ["a.bin", "b.txt", "c.parquet"]


def test_temporary_file_keeps_the_suffix(tmp_path: Path) -> None:
    seen: list[str] = []
    atomic_write(tmp_path / "t.csv", lambda t: (seen.append(t.suffix), t.write_text("a\n")))
    assert seen == [".csv"]


def test_failed_write_keeps_the_old_file_and_leaves_nothing(tmp_path: Path) -> None:
    target = atomic_write(tmp_path / "keep.txt", "old")

    def broken(tmp: Path) -> None:
        tmp.write_text("half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic_write(target, broken)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]
