"""The loop end to end from the shell (typer's runner, in process): build -> index -> search -> label ->
train -> calibrate -> next -> label -> train -> detect -> export, on real audio files; every command has
--help; input errors end with a message and exit code 2."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))
from agile_archive import truth  # noqa: E402

from avexlab.cli import app  # noqa: E402

COMMANDS = ("build", "info", "index", "search", "label", "train", "calibrate", "next", "detect", "export")


def _run(*args: str) -> str:
    res = CliRunner().invoke(app, ["agile", *args])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    out = _run(command, "--help")
    assert "Usage" in out and "--help" in out


def test_the_loop_from_the_shell(tmp_path: Path, archive: Path) -> None:
    store = tmp_path / "store"
    out = _run(
        "build",
        str(archive),
        "--out",
        str(store),
        "--encoder",
        "logmel:tiny",
        "--window-s",
        "1",
        "--hop-s",
        "0.5",
    )
    assert "92 windows" in out
    assert "complete: yes" in _run("info", str(store), "--verify")
    recall = float(
        _run("index", str(store), "--threads", "1").split("recall@10 vs exact search: ")[1].split()[0]
    )
    assert recall >= 0.95  # f16 vectors: near-duplicate noise windows may swap places at rank 10

    hits = tmp_path / "hits.parquet"
    _run(
        "search",
        str(store),
        "--query",
        "dawn.wav@1.2-1.8",
        "--query",
        "noon.wav@3.3-3.9",
        "--k",
        "6",
        "--out",
        str(hits),
    )
    found = pl.read_parquet(hits)
    assert found.height == 6 and found["method"][0] == "index"
    tr = truth(
        pl.read_parquet(store / "segments" / "000000" / "windows.parquet")
        .with_row_index("row")
        .with_columns(pl.col("row").cast(pl.Int64))
    )
    whole = tr.join(found, on="row")["positives"].to_list()
    good = [i + 1 for i, p in enumerate(whole) if "chirp" in p]  # the reviewer keeps the whole chirps
    assert len(good) >= 3
    _run(
        "label",
        str(store),
        "--label",
        "chirp",
        "--from",
        str(hits),
        "--ranks",
        ",".join(map(str, good)),
        "--annotator",
        "ana",
        "--source",
        "search",
    )
    tones = tr.filter(pl.col("positives").list.contains("tone"))["row"].to_list()
    background = tr.filter(pl.col("touched").list.len() == 0)["row"].to_list()
    _run(
        "label", str(store), "--label", "tone", "--rows", ",".join(map(str, tones[::2])), "--annotator", "ana"
    )
    _run(
        "label",
        str(store),
        "--label",
        "background",
        "--rows",
        ",".join(map(str, background[::3])),
        "--annotator",
        "ben",
    )
    assert "appended" in _run(
        "label",
        str(store),
        "--label",
        "chirp",
        "--value",
        "negative",
        "--rows",
        f"{tones[1]}",
        "--annotator",
        "ben",
    )

    clf = tmp_path / "clf"
    assert "chirp" in _run("train", str(store), "--out", str(clf))
    cal = _run(
        "calibrate",
        str(store),
        "--classifier",
        str(clf),
        "--target-precision",
        "0.8",
        "--folds",
        "4",
        "--resamples",
        "200",
        "--report",
        str(tmp_path / "report.parquet"),
    )
    assert "macro avg" in cal and "ece_after" in cal
    report = pl.read_parquet(tmp_path / "report.parquet")
    assert report["class"].to_list() == ["chirp", "tone", "background", "macro avg"]
    batch = tmp_path / "next.parquet"
    _run(
        "next", str(store), "--classifier", str(clf), "--strategy", "margin", "--k", "5", "--out", str(batch)
    )
    proposed = pl.read_parquet(batch)
    labelled = set(pl.read_ndjson(store / "labels.jsonl")["window_id"].to_list())
    assert proposed.height == 5 and not set(proposed["window_id"].to_list()) & labelled
    _run("next", str(store), "--classifier", str(clf), "--strategy", "random", "--class", "chirp", "--k", "3")
    _run(
        "label",
        str(store),
        "--label",
        "background",
        "--from",
        str(batch),
        "--ranks",
        "1-2",
        "--annotator",
        "ana",
        "--source",
        "active:margin",
    )
    _run("train", str(store), "--out", str(clf))
    _run(
        "calibrate",
        str(store),
        "--classifier",
        str(clf),
        "--target-recall",
        "0.8",
        "--folds",
        "4",
        "--resamples",
        "100",
    )

    det = tmp_path / "det.parquet"
    out = _run(
        "detect",
        str(store),
        "--classifier",
        str(clf),
        "--out",
        str(det),
        "--raven-dir",
        str(tmp_path / "raven"),
    )
    d = pl.read_parquet(det)
    assert d.height > 0 and set(d["label"].unique().to_list()) <= {"chirp", "tone"}
    assert "Raven selection table(s)" in out and any((tmp_path / "raven").rglob("*.selections.txt"))
    out = _run("export", str(det), "--raven-dir", str(tmp_path / "raven2"), "--store", str(store))
    first = sorted((tmp_path / "raven").rglob("*.txt"))
    second = sorted((tmp_path / "raven2").rglob("*.txt"))
    assert [p.read_bytes() for p in first] == [p.read_bytes() for p in second]
    # the entries say who labelled what, from where
    entries = pl.read_ndjson(store / "labels.jsonl")
    assert set(entries["annotator"].to_list()) == {"ana", "ben"}
    assert {"search", "manual", "active:margin"} <= set(entries["source"].to_list())
    assert np.isfinite(report["ap"][:2].to_numpy()).all()


def test_input_errors_exit_2_with_a_message(tmp_path: Path, built_store) -> None:  # noqa: ANN001
    runner = CliRunner()
    for args, msg in (
        (["info", str(tmp_path)], "store.json"),
        (["search", str(built_store.path), "--query", "dawn.wav@5-1"], "start < end"),
        (
            ["label", str(built_store.path), "--label", "x", "--annotator", "a"],
            "exactly one of --rows or --from",
        ),
        (
            ["label", str(built_store.path), "--label", "x", "--rows", "1,zz", "--annotator", "a"],
            "numbers and ranges",
        ),
        (
            [
                "train",
                str(built_store.path),
                "--out",
                str(tmp_path / "c"),
                "--labels",
                str(tmp_path / "none.jsonl"),
            ],
            "at least one positive",
        ),
    ):
        res = runner.invoke(app, ["agile", *args])
        assert res.exit_code == 2, (args, res.output)
        assert msg in res.output, (args, res.output)
