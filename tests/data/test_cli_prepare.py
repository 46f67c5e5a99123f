"""``avexlab data from-folder | from-raven | from-sonic-visualiser``: a bioacoustician's recordings and
annotations become a manifest (and events table) that the other commands read, from the shell."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import soundfile as sf
from typer.testing import CliRunner

from avexlab.cli import app
from avexlab.data import read_manifest

RUNNER = CliRunner()


def _wav(path: Path, seconds: float, sr: int = 16000, freq: float = 1000.0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * sr)) / sr
    sf.write(path, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr)


def _invoke(*args: str | Path):
    return RUNNER.invoke(app, [str(a) for a in args])


def test_from_folder_writes_a_manifest_the_embedder_reads(tmp_path: Path) -> None:
    rec = tmp_path / "recordings"
    for i in range(3):
        _wav(rec / "wren" / f"w{i}.wav", 1.0, freq=3000.0 + 100 * i)
        _wav(rec / "owl" / "night" / f"o{i}.flac", 2.0, 8000, freq=400.0 + 20 * i)
    out = tmp_path / "mine.parquet"
    result = _invoke("data", "from-folder", rec, "--out", out, "--dataset", "mine", "--split", "test")
    assert result.exit_code == 0, result.output
    assert "6 clips, 2 labels" in result.output and f"--root {rec}" in result.output
    m = read_manifest(out, root=rec, check_files=True)
    rows = {r["clip_id"]: r for r in m.iter_rows(named=True)}
    assert rows["mine/owl/night/o1"]["labels"] == ["owl"] and rows["mine/owl/night/o1"]["sample_rate"] == 8000
    assert rows["mine/wren/w2"]["end_s"] == 1.0 and set(m["split"]) == {"test"}

    emb = tmp_path / "emb.parquet"
    result = _invoke(
        "embed",
        "--encoder",
        "logmel:tiny",
        "--manifest",
        out,
        "--root",
        rec,
        "--out",
        emb,
        "--batch-size",
        "4",
    )
    assert result.exit_code == 0, result.output
    assert sorted(pl.read_parquet(emb)["clip_id"].to_list()) == sorted(rows)


def test_from_folder_keeps_an_existing_manifest_unless_told(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    _wav(rec / "a" / "1.wav", 0.5)
    out = tmp_path / "m.csv"
    out.write_text("someone's manifest\n")
    result = _invoke("data", "from-folder", rec, "--out", out, "--dataset", "d")
    assert (
        result.exit_code == 2
        and "error:" in result.output
        and "already there" in result.output
        and "--overwrite" in result.output
    )
    assert out.read_text() == "someone's manifest\n"
    result = _invoke("data", "from-folder", rec, "--out", out, "--dataset", "d", "--overwrite")
    assert result.exit_code == 0, result.output
    assert read_manifest(out)["clip_id"].to_list() == ["d/a/1"]


def test_from_folder_bad_input_says_what_to_do(tmp_path: Path) -> None:
    result = _invoke(
        "data", "from-folder", tmp_path / "nowhere", "--out", tmp_path / "m.parquet", "--dataset", "d"
    )
    assert (
        result.exit_code == 2
        and "error:" in result.output
        and "expected a folder of audio files" in result.output
    )
    _wav(tmp_path / "flat" / "x.wav", 0.5)
    result = _invoke(
        "data", "from-folder", tmp_path / "flat", "--out", tmp_path / "m.parquet", "--dataset", "d"
    )
    assert (
        result.exit_code == 2
        and "error:" in result.output
        and "label sub-folder" in result.output
        and "labels_csv" in result.output
    )
    assert not (tmp_path / "m.parquet").exists()


RAVEN = (
    "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tBegin File\t"
    "File Offset (s)\tSpecies\n"
    "1\tSpectrogram 1\t1\t1.0\t2.5\t500\t4000\trec1.wav\t1.0\twren\n"
    "2\tSpectrogram 1\t1\t13.0\t14.0\t100\t900\trec2.wav\t3.0\towl\n"
)


def test_from_raven_writes_manifest_and_events(tmp_path: Path) -> None:
    _wav(tmp_path / "audio" / "rec1.wav", 10.0)
    _wav(tmp_path / "audio" / "sub" / "rec2.wav", 5.0)
    (tmp_path / "sel.txt").write_text(RAVEN)
    out = tmp_path / "out" / "site.parquet"
    args = ["data", "from-raven", tmp_path / "sel.txt", "--audio-root", tmp_path / "audio"]
    args += ["--label-column", "Species", "--out", out, "--dataset", "site"]
    result = _invoke(*args)
    assert result.exit_code == 0, result.output
    m = read_manifest(out, root=tmp_path / "audio", check_files=True)
    assert m["labels"].to_list() == [["wren"], ["owl"]] and set(m["domain"]) == {"soundscape"}
    events = pl.read_parquet(tmp_path / "out" / "site.events.parquet")
    assert events["onset_s"].to_list() == [1.0, 3.0] and events["label"].to_list() == ["wren", "owl"]
    assert "2 events" in result.output

    # An events file in the way: nothing is written, the manifest included.
    out2 = tmp_path / "out" / "again.parquet"
    taken = tmp_path / "out" / "ev.parquet"
    taken.write_bytes(b"keep me")
    result = _invoke(*args[:-4], "--out", out2, "--dataset", "site", "--events-out", taken)
    assert result.exit_code == 2 and "error:" in result.output and str(taken) in result.output
    assert taken.read_bytes() == b"keep me" and not out2.exists()

    result = _invoke(*args[:5], "--label-column", "Call", "--out", tmp_path / "x.parquet", "--dataset", "s")
    assert (
        result.exit_code == 2
        and "error:" in result.output
        and "label column 'Call'" in result.output
        and "Species" in result.output
    )


def test_from_sonic_visualiser_csv_layer(tmp_path: Path) -> None:
    _wav(tmp_path / "r.wav", 5.0)
    (tmp_path / "r.csv").write_text("0.5,0,1.0,call A\n3.0,0,0.5,call B\n")
    out = tmp_path / "sv.jsonl"
    result = _invoke(
        "data", "from-sonic-visualiser", tmp_path / "r.csv", "--audio-root", tmp_path, "--audio-path", "r.wav",
        "--out", out, "--dataset", "sv", "--events-out", tmp_path / "sv-events.parquet",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    m = read_manifest(out, root=tmp_path, check_files=True)
    assert m["start_s"].to_list() == [0.5, 3.0] and m["end_s"].to_list() == [1.5, 3.5]
    assert m["labels"].to_list() == [["call A"], ["call B"]]
    assert pl.read_parquet(tmp_path / "sv-events.parquet").height == 2

    result = _invoke(
        "data", "from-sonic-visualiser", tmp_path / "r.csv", "--audio-root", tmp_path, "--audio-path", "r.wav",
        "--out", tmp_path / "sv2.parquet", "--dataset", "sv", "--events-out", tmp_path / "ev.csv",
    )  # fmt: skip
    assert result.exit_code == 2 and "error:" in result.output and "expected a .parquet path" in result.output


def _labelled_folder(root: Path, per_label: int = 10) -> None:
    """Three 'call types' (tones at distinct pitches with noise) recorded as <label>/<file>.wav."""
    rng = np.random.default_rng(0)
    for label, freq in (("low", 500.0), ("mid", 2000.0), ("high", 5000.0)):
        for i in range(per_label):
            path = root / label / f"{label}{i:02d}.wav"
            path.parent.mkdir(parents=True, exist_ok=True)
            t = np.arange(16000) / 16000
            f = freq * (1 + 0.05 * rng.standard_normal())
            wave = 0.3 * np.sin(2 * np.pi * f * t) + 0.02 * rng.standard_normal(t.size)
            sf.write(path, wave.astype(np.float32), 16000)


def test_split_by_a_column_then_evaluate_your_own_manifest(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    _labelled_folder(rec)
    out = tmp_path / "calls.parquet"
    args = ["data", "from-folder", rec, "--out", out, "--dataset", "calls", "--split-by", "clip_id"]
    result = _invoke(*args, "--split-fractions", "0.6,0.2,0.2", "--split-seed", "3")
    assert result.exit_code == 0, result.output
    m = read_manifest(out)
    assert m["split"].value_counts().sort("split").rows() == [("test", 6), ("train", 18), ("val", 6)]

    res = tmp_path / "results.parquet"
    ev = ["evaluate", "--encoder", "logmel:tiny", "--manifest", out, "--root", rec, "--out", res]
    result = _invoke(*ev, "--task-family", "repertoire")
    assert result.exit_code == 0, result.output
    table = pl.read_parquet(res)
    assert set(table["benchmark"]) == {"calls"} and set(table["task_family"]) == {"repertoire"}
    assert set(table["method"]) == {"probe", "retrieval", "clustering"}
    value = dict(zip(table["metric"], table["value"], strict=False))
    # three pitches an octave and more apart: a log-mel baseline separates them
    assert value["accuracy"] > 0.8 and value["roc_auc"] > 0.8, value
    assert table.filter(pl.col("method") == "probe")["n"].to_list()[0] == 6

    result = _invoke(*ev, "--suite", "syn-beans-clf")
    assert result.exit_code == 2 and "error:" in result.output and "exactly one of --suite" in result.output
    result = _invoke(*ev, "--task-family", "species")
    assert result.exit_code == 2 and "error:" in result.output and "individual_id" in result.output
    result = _invoke(*args, "--overwrite", "--split-fractions", "0.7,0.3")
    assert result.exit_code == 2 and "error:" in result.output and "three comma-separated" in result.output
    assert read_manifest(out)["split"].to_list() == m["split"].to_list()  # the refused call changed nothing


def test_split_by_too_few_groups_warns(tmp_path: Path) -> None:
    _wav(tmp_path / "audio" / "rec1.wav", 10.0)
    _wav(tmp_path / "audio" / "sub" / "rec2.wav", 5.0)
    (tmp_path / "sel.txt").write_text(RAVEN)
    result = _invoke(
        "data", "from-raven", tmp_path / "sel.txt", "--audio-root", tmp_path / "audio", "--label-column",
        "Species", "--out", tmp_path / "m.parquet", "--dataset", "s", "--split-by", "path",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "warning: split" in result.output and "2 'path' group(s)" in result.output
    splits = read_manifest(tmp_path / "m.parquet").group_by("path").agg(pl.col("split").n_unique())
    assert splits["split"].to_list() == [1, 1]  # a recording never straddles two splits
