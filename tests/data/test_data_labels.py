"""Label spaces and grouped splits."""

from __future__ import annotations

import polars as pl
import pytest
import torch

from avexlab.data import LabelSpace, assign_splits
from avexlab.errors import ManifestError


def test_from_manifests_is_sorted_and_order_independent():
    a = pl.DataFrame({"labels": [["wren", "robin"], []]})
    b = pl.DataFrame({"labels": [["owl"], ["robin"]]})
    s1, s2 = LabelSpace.from_manifests(a, b), LabelSpace.from_manifests(b, a)
    assert s1 == s2 and s1.labels == ("owl", "robin", "wren")
    assert s1.index("wren") == 2 and s1.encode(["wren", "owl", "wren"]) == [2, 0]
    assert s1.decode([1]) == ["robin"]


def test_unknown_label_error_names_it():
    s = LabelSpace.from_labels(["Owl", "wren"])
    with pytest.raises(ManifestError, match=r"'owl'.*Did you mean \['Owl'\]"):
        s.index("owl")


def test_encode_column_matches_encode():
    s = LabelSpace.from_labels(["a", "b", "c"])
    col = pl.Series([["c", "a"], [], ["b"], ["a", "a"]])
    assert s.encode_column(col) == [s.encode(x) for x in col.to_list()]
    with pytest.raises(ManifestError, match="'z'"):
        s.encode_column(pl.Series([["a"], ["z"]]))


def test_multi_hot_dense_per_batch():
    s = LabelSpace.from_labels(["a", "b", "c", "d"])
    m = s.multi_hot([[0, 3], [], [2]])
    assert m.dtype == torch.float32
    assert m.tolist() == [[1, 0, 0, 1], [0, 0, 0, 0], [0, 0, 1, 0]]
    with pytest.raises(ManifestError, match=r"\[0, 4\)"):
        s.multi_hot([[4]])


def test_json_roundtrip_and_merge(tmp_path):
    s = LabelSpace.from_labels(["b", "a"])
    assert LabelSpace.from_json(s.to_json()) == s
    s.to_json(tmp_path / "l.json")
    assert LabelSpace.from_json(tmp_path / "l.json") == s
    m = s.merge(LabelSpace.from_labels(["c", "a"]))
    assert m.labels == ("a", "b", "c")


def _grouped(n_groups: int = 20, per: int = 5) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "clip_id": [f"c{g}_{k}" for g in range(n_groups) for k in range(per)],
            "individual": [f"i{g}" for g in range(n_groups) for _ in range(per)],
        }
    )


def test_assign_splits_groups_never_straddle_and_fractions_hold():
    df = _grouped()
    out = assign_splits(df, by="individual", fractions=(0.6, 0.2, 0.2), seed=1)
    per_group = out.group_by("individual").agg(pl.col("split").n_unique())
    assert per_group["split"].max() == 1
    counts = dict(out["split"].value_counts().iter_rows())
    assert set(counts) == {"train", "val", "test"}
    assert abs(counts["train"] / out.height - 0.6) <= 0.1
    assert out["clip_id"].to_list() == df["clip_id"].to_list() and out.columns == [*df.columns, "split"]
    again = assign_splits(out.select("split", "clip_id", "individual"), fractions=(0.6, 0.2, 0.2), seed=1)
    assert again.columns == ["split", "clip_id", "individual"] and again["split"].equals(out["split"])


def test_assign_splits_is_deterministic_and_row_order_free():
    df = _grouped()
    a = assign_splits(df, seed=3)
    b = assign_splits(df.reverse(), seed=3).reverse()
    assert a["split"].to_list() == b["split"].to_list()
    c = assign_splits(df, seed=4)
    assert a["split"].to_list() != c["split"].to_list()


def test_assign_splits_small_group_count_fills_every_split():
    out = assign_splits(_grouped(3, 10), seed=0)
    assert set(out["split"].to_list()) == {"train", "val", "test"}


def test_assign_splits_null_group_is_an_error():
    df = _grouped(3, 2).with_columns(
        pl.when(pl.col("clip_id") == "c1_0").then(None).otherwise(pl.col("individual")).alias("individual")
    )
    with pytest.raises(ManifestError, match="row 2, column 'individual'"):
        assign_splits(df)
