"""The loop from the shell on a folder of real field recordings, offline, with the released BirdNET encoder:
build -> search by a selection -> label -> train -> detect -> Raven tables read back by crowsetta.

The only real recording this project can use without a download is the 10 s, 32 kHz bird recording that
the opensoundscape wheel ships (a dev dependency); it is cut into two files (a WAV and a FLAC in two
sub-folders, as a recorder's SD cards would hold them). Nothing here knows which calls are where: the
reviewer's labels come from the search itself (the query's own window and its nearest neighbours are
calls like it, the farthest windows are labelled background), so the test checks what a user can rely
on with real audio: resampling 32 -> 48 kHz, windows that cover every file, the query's window found
first with cosine 1, a classifier that gives back what it was shown, detections with the files' times.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf
from typer.testing import CliRunner

from avexlab.cli import app

WINDOW_S, HOP_S = 3.0, 0.5


def _run(*args: str) -> str:
    res = CliRunner().invoke(app, ["agile", *args])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


@pytest.fixture(scope="module")
def field_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = importlib.util.find_spec("opensoundscape")
    assert spec is not None, "opensoundscape (dev extra) ships the recording: make test installs it"
    src = Path(next(iter(spec.submodule_search_locations))) / "sample_data" / "birds_10s.wav"
    x, sr = sf.read(src, dtype="float32")
    assert sr == 32000 and x.ndim == 1
    root = tmp_path_factory.mktemp("field")
    (root / "card-a").mkdir()
    (root / "card-b").mkdir()
    half = len(x) // 2
    sf.write(root / "card-a" / "dawn.wav", x[:half], sr, subtype="PCM_16")
    sf.write(root / "card-b" / "dawn-2.flac", x[half:], sr)
    return root


def test_the_loop_on_real_recordings_with_birdnet(tmp_path: Path, field_folder: Path) -> None:
    store = tmp_path / "store"
    out = _run(
        "build",
        str(field_folder),
        "--out",
        str(store),
        "--encoder",
        "birdnet",
        "--window-s",
        str(WINDOW_S),
        "--hop-s",
        str(HOP_S),
        "--batch-size",
        "4",
    )
    windows = pl.read_parquet(store / "segments" / "000000" / "windows.parquet").with_row_index("row")
    # every file is covered: 5.07 s per file -> starts 0, 0.5, ..., 2.0 (and a last window flush with the end)
    per_file = windows.group_by("path").agg(pl.len(), pl.col("end_s").max())
    assert per_file.height == 2 and per_file["len"].min() >= 5
    assert (per_file["end_s"] >= 5.0).all()
    assert f"{windows.height} windows" in out
    assert "complete: yes" in _run("info", str(store), "--verify")

    # search with a selection of the first file: windows overlapping the query are left out (they are the
    # query); the others come back best first
    hits = tmp_path / "hits.parquet"
    _run(
        "search",
        str(store),
        "--query",
        "card-a/dawn.wav@1.0-4.0",
        "--k",
        str(windows.height),
        "--out",
        str(hits),
    )
    found = pl.read_parquet(hits).sort("rank").join(windows, on="row", how="left")
    overlapping = windows.filter(
        (pl.col("path") == "card-a/dawn.wav") & (pl.col("start_s") < 4.0) & (pl.col("end_s") > 1.0)
    )
    assert found.height == windows.height - overlapping.height > 0
    assert not set(found["row"].to_list()) & set(overlapping["row"].to_list())
    assert np.all(np.diff(found["score"].to_numpy()) <= 0) and (found["score"].abs() <= 1 + 1e-3).all()

    # the reviewer labels the query's own window and the 2 nearest as calls, the 2 farthest background
    own = overlapping.filter(pl.col("start_s") == 1.0)["row"].to_list()
    assert len(own) == 1
    _run("label", str(store), "--label", "song", "--rows", str(own[0]), "--annotator", "ana")
    _run("label", str(store), "--label", "song", "--from", str(hits), "--ranks", "1-2", "--annotator", "ana")
    n = found.height
    _run(
        "label", str(store), "--label", "background", "--from", str(hits), "--ranks", f"{n - 1}-{n}",
        "--annotator", "ana",
    )  # fmt: skip
    shown = windows.filter(pl.col("row").is_in(own + found.head(2)["row"].to_list()))
    clf = tmp_path / "clf"
    assert "song" in _run("train", str(store), "--out", str(clf))

    det = tmp_path / "det.parquet"
    out = _run(
        "detect", str(store), "--classifier", str(clf), "--out", str(det), "--raven-dir", str(tmp_path / "rv")
    )
    d = pl.read_parquet(det)
    assert d.height > 0 and set(d["label"].to_list()) == {"song"}
    # the windows labelled as calls are detected (the classifier gives back what it was shown)
    # (overlapping detections are merged: a window is detected when a detection holds its centre)
    for path, start in shown.select("path", "start_s").iter_rows():
        centre = start + WINDOW_S / 2
        hit = d.filter((pl.col("path") == path) & (pl.col("start_s") <= centre) & (pl.col("end_s") >= centre))
        assert hit.height == 1, (path, start, d)
    # times stay inside the files
    assert (d["start_s"] >= 0).all() and (d["end_s"] <= 5.07).all()

    # the Raven tables read back with crowsetta, one per recording that has detections
    import crowsetta

    tables = sorted((tmp_path / "rv").rglob("*.selections.txt"))
    assert tables and len(tables) == d["path"].n_unique()
    for t in tables:
        seq = crowsetta.formats.bbox.Raven.from_file(t, annot_col="Annotation").to_bbox()
        assert seq and {b.label for b in seq} == {"song"}
        assert all(0 <= b.onset < b.offset <= 5.07 for b in seq)
