"""Manifest read/validate/write/hash on real files in tmp_path."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avexlab.data import (
    manifest_hash,
    read_manifest,
    validate_manifest,
    validate_manifest_file,
    write_manifest,
)
from avexlab.data.schema import COLUMNS, SCHEMA
from avexlab.errors import ManifestError


def _df(n: int = 3, **over) -> pl.DataFrame:
    data = {
        "clip_id": [f"c{i}" for i in range(n)],
        "path": [f"a/{i}.wav" for i in range(n)],
        "dataset": ["d"] * n,
        "split": ["train"] * n,
        "domain": ["focal"] * n,
        "labels": [["x", "y"][: i % 3] for i in range(n)],
    }
    data.update(over)
    return pl.DataFrame(data)


def test_validate_adds_optional_columns_and_casts():
    df = _df().with_columns(
        pl.lit(1).alias("start_s"), pl.lit("16000").alias("sample_rate"), pl.lit(7).alias("extra")
    )
    out = validate_manifest(df)
    assert out.columns[: len(COLUMNS)] == COLUMNS and out.columns[-1] == "extra"
    assert dict(out.select(COLUMNS).schema) == SCHEMA
    assert out["start_s"].to_list() == [1.0] * 3 and out["sample_rate"].to_list() == [16000] * 3
    assert out["species"].null_count() == 3


@pytest.mark.parametrize("suffix", ["parquet", "csv", "jsonl"])
def test_roundtrip_each_format(tmp_path, suffix):
    df = validate_manifest(
        _df(4, labels=[["a b", "c"], [], ["d"], ["é"]]).with_columns(
            pl.Series("end_s", [1.5, None, 2.0, 3.25]), pl.Series("species", ["s", None, "t", "u"])
        )
    )
    p = write_manifest(df, tmp_path / f"m.{suffix}")
    back = read_manifest(p)
    assert back.equals(df)
    assert manifest_hash(back) == manifest_hash(df)
    assert [x.name for x in tmp_path.iterdir()] == [f"m.{suffix}"]


def test_csv_lists_are_semicolon_joined(tmp_path):
    p = write_manifest(_df(3), tmp_path / "m.csv")
    text = p.read_text()
    assert "x;y" not in text.splitlines()[1]  # row 0 has no labels
    assert text.splitlines()[3].split(",")[5] == "x;y"


def test_csv_refuses_label_with_separator(tmp_path):
    with pytest.raises(ManifestError, match="row 1.*'labels'"):
        write_manifest(_df(2, labels=[["ok"], ["a;b"]]), tmp_path / "m.csv")


def test_hash_depends_on_content_not_column_order():
    a = validate_manifest(_df())
    b = a.select(list(reversed(a.columns)))
    assert manifest_hash(a) == manifest_hash(b)
    c = a.with_columns(pl.when(pl.col("clip_id") == "c1").then(pl.lit("s")).otherwise(None).alias("species"))
    assert manifest_hash(a) != manifest_hash(c)
    assert manifest_hash(a) != manifest_hash(a.reverse())


def test_validate_manifest_file_summary(tmp_path):
    (tmp_path / "a").mkdir()
    for i in range(2):
        (tmp_path / "a" / f"{i}.wav").write_bytes(b"")  # existence is all this check needs
    df = _df(2).with_columns(pl.Series("end_s", [1.0, 2.5]))
    write_manifest(df, tmp_path / "m.parquet")
    s = validate_manifest_file(tmp_path / "m.parquet")
    assert s["rows"] == 2 and s["splits"] == {"train": 2} and s["labels"] == 1
    assert s["duration_s"] == 3.5 and s["hash"] == manifest_hash(  # 1.0 + 2.5: exact in binary
        read_manifest(tmp_path / "m.parquet")
    )


def test_unknown_suffix_and_missing_file(tmp_path):
    with pytest.raises(ManifestError, match=r"\.parquet, \.csv or \.jsonl"):
        read_manifest(tmp_path / "m.txt")
    with pytest.raises(ManifestError, match="expected an existing file"):
        read_manifest(tmp_path / "m.csv")


_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters=";,\"'\n\r"),
    min_size=1,
    max_size=8,
).filter(lambda s: s.strip() == s and s != "")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    rows=st.lists(
        st.tuples(
            st.lists(_text, max_size=3, unique=True),
            st.one_of(st.none(), st.floats(0, 1e4, allow_nan=False, allow_infinity=False)),
            st.one_of(st.none(), st.integers(1, 384000)),
            st.one_of(st.none(), _text),
        ),
        min_size=1,
        max_size=6,
    ),
    fmt=st.sampled_from(["parquet", "csv", "jsonl"]),
)
def test_manifest_parser_roundtrip_property(tmp_path, rows, fmt):
    n = len(rows)
    df = validate_manifest(
        _df(n, labels=[r[0] for r in rows]).with_columns(
            pl.Series("start_s", [r[1] for r in rows], dtype=pl.Float64),
            pl.Series("sample_rate", [r[2] for r in rows], dtype=pl.Int64),
            pl.Series("individual", [r[3] for r in rows], dtype=pl.String),
        )
    )
    p = write_manifest(df, tmp_path / f"prop.{fmt}")
    back = read_manifest(p)
    assert back.equals(df), (df, back)
