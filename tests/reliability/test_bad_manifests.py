"""Every manifest validation error names the row (index and clip_id) and the column, says what was expected
and what was found, and all problems come in one error before any work starts."""

from __future__ import annotations

import re

import polars as pl
import pytest

from avexlab.data import LabelSpace, read_manifest, validate_manifest
from avexlab.errors import ManifestError


def _good(n: int = 4) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(n)],
            "path": [f"a/{i}.wav" for i in range(n)],
            "dataset": ["d"] * n,
            "split": ["train"] * n,
            "domain": ["focal"] * n,
            "labels": [["owl"]] * n,
            "start_s": [0.0] * n,
            "end_s": [1.0] * n,
            "sample_rate": [16000] * n,
        }
    )


def _set(df: pl.DataFrame, row: int, column: str, value) -> pl.DataFrame:
    values = df[column].to_list()
    values[row] = value
    return df.with_columns(pl.Series(column, values, dtype=df.schema[column] if value is not None else None))


def _problem_lines(err: ManifestError) -> list[str]:
    return [line for line in str(err).splitlines() if line.startswith("  - ")]


CASES = [
    # (column, row, bad value, expected text, found text)
    ("clip_id", 2, None, "a value", "null"),
    ("path", 1, None, "a value", "null"),
    ("split", 3, "valid", "one of ['train', 'val', 'test']", "'valid'"),
    ("domain", 0, "lab", "one of ['focal', 'soundscape', 'general']", "'lab'"),
    ("start_s", 1, -0.5, "start_s >= 0", "-0.5"),
    ("end_s", 2, 0.0, "start_s < end_s", "start_s=0.0, end_s=0.0"),
    ("sample_rate", 3, 0, "a positive sample rate", "0"),
    ("labels", 1, ["owl", ""], "non-empty label strings", "['owl', '']"),
]


@pytest.mark.parametrize(("column", "row", "value", "expected", "found"), CASES)
def test_each_value_error_names_row_and_column(column, row, value, expected, found):
    df = _set(_good(), row, column, value)
    with pytest.raises(ManifestError) as e:
        validate_manifest(df)
    (line,) = _problem_lines(e.value)
    clip = f" (clip_id 'c{row}')" if column != "clip_id" else ""
    assert line.startswith(f"  - row {row}{clip}, column '{column}': expected "), line
    assert expected in line and f"found {found}" in line


def test_missing_required_columns_are_all_listed():
    with pytest.raises(ManifestError) as e:
        validate_manifest(_good().drop("split", "labels"))
    lines = _problem_lines(e.value)
    assert len(lines) == 2 and "column 'split'" in lines[0] and "column 'labels'" in lines[1]
    assert "Add the 'split' column" in lines[0]


def test_wrong_types_in_csv_name_row_and_column(tmp_path):
    p = tmp_path / "m.csv"
    _good().with_columns(pl.col("labels").list.join(";")).write_csv(p)
    text = p.read_text().splitlines()
    text[2] = text[2].replace(",0.0,", ",zero,")  # row 1 start_s
    text[4] = text[4].replace(",16000", ",16k")  # row 3 sample_rate
    text[3] = text[3].replace(",16000", ",16000.0")  # row 2: an integral float is fine
    p.write_text("\n".join(text) + "\n")
    with pytest.raises(ManifestError) as e:
        read_manifest(p)
    msg = str(e.value)
    assert str(p) in msg and "2 problem(s)" in msg
    assert "row 1 (clip_id 'c1'), column 'start_s': expected float64 values, found 'zero'" in msg
    assert "row 3 (clip_id 'c3'), column 'sample_rate': expected int64 values, found '16k'" in msg


def test_non_integral_sample_rate_and_list_typed_text():
    df = _good().with_columns(pl.Series("sample_rate", [16000.0, 22050.5, 8000.0, 1.0]))
    with pytest.raises(ManifestError, match=r"row 1 \(clip_id 'c1'\), column 'sample_rate'.*found 22050.5"):
        validate_manifest(df)
    df = _good().with_columns(pl.Series("species", [["a"], ["b"], ["c"], ["d"]]))
    with pytest.raises(ManifestError, match="column 'species': expected text"):
        validate_manifest(df)


def test_duplicate_clip_ids_name_every_row():
    df = _set(_set(_good(), 3, "clip_id", "c0"), 2, "clip_id", "c1")
    with pytest.raises(ManifestError) as e:
        validate_manifest(df)
    rows = sorted(int(re.search(r"row (\d+)", x).group(1)) for x in _problem_lines(e.value))
    assert rows == [0, 1, 2, 3]


def test_files_that_do_not_exist(tmp_path):
    (tmp_path / "a").mkdir()
    for i in (0, 1, 3):
        (tmp_path / "a" / f"{i}.wav").write_bytes(b"x")
    with pytest.raises(ManifestError) as e:
        validate_manifest(_good(), root=tmp_path, check_files=True)
    (line,) = _problem_lines(e.value)
    assert line.startswith("  - row 2 (clip_id 'c2'), column 'path'") and "'a/2.wav' (no such file)" in line
    assert validate_manifest(_good(), root=tmp_path).height == 4  # files are only checked when asked


def test_labels_outside_the_label_space():
    df = _set(_good(), 2, "labels", ["owl", "bat"])
    with pytest.raises(ManifestError) as e:
        validate_manifest(df, label_space=LabelSpace.from_labels(["owl"]))
    (line,) = _problem_lines(e.value)
    assert line.startswith("  - row 2 (clip_id 'c2'), column 'labels'") and "found 'bat'" in line


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("/etc/passwd", "absolute path"),
        ("C:\\audio\\x.wav", "absolute path"),
        ("../outside.wav", "climbs out"),
        ("a/../../outside.wav", "climbs out"),
    ],
)
def test_paths_escaping_the_data_root(tmp_path, path, why):
    df = _set(_good(), 1, "path", path)
    with pytest.raises(ManifestError) as e:
        validate_manifest(df, root=tmp_path)
    (line,) = _problem_lines(e.value)
    assert line.startswith("  - row 1 (clip_id 'c1'), column 'path'") and why in line


def test_safe_relative_paths_and_synth_uris_pass(tmp_path):
    df = _set(_set(_good(), 1, "path", "a/./b/../c.wav"), 2, "path", "synth://quick/0/focal/12")
    assert validate_manifest(df, root=tmp_path).height == 4


def test_empty_manifest(tmp_path):
    with pytest.raises(ManifestError, match="expected at least one row, found an empty manifest"):
        validate_manifest(_good().head(0))
    p = tmp_path / "e.csv"
    p.write_text("clip_id,path,dataset,split,domain,labels\n")
    with pytest.raises(ManifestError, match="empty manifest"):
        read_manifest(p)


def test_all_problems_in_one_error_with_a_cap():
    df = _good(80).with_columns(pl.lit("nope").alias("split"), pl.lit(-1.0).alias("start_s"))
    with pytest.raises(ManifestError) as e:
        validate_manifest(df, max_problems=10)
    msg = str(e.value)
    assert "160 problem(s) (showing the first 10)" in msg and len(_problem_lines(e.value)) == 10
    assert len(e.value.problems) == 10 and e.value.problems[0].column in ("start_s", "split")


def test_unparseable_file_is_a_manifest_error(tmp_path):
    p = tmp_path / "m.jsonl"
    p.write_text('{"clip_id": "a", "path": \n')
    with pytest.raises(ManifestError, match="m.jsonl.*parse error"):
        read_manifest(p)
