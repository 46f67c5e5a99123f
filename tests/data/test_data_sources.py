"""Source adapters on tiny real audio files and annotation files written into tmp_path."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from avexlab.data import read_manifest, write_manifest
from avexlab.data.sources import (
    prepare_audiofolder,
    prepare_raven,
    prepare_sonic_visualiser,
    read_sonic_visualiser,
)
from avexlab.errors import AudioError, DataNotFoundError, ManifestError


def _wav(path, seconds, sr=16000, channels=1):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros((int(seconds * sr), channels), dtype=np.float32), sr)


def test_audiofolder_per_label(tmp_path):
    _wav(tmp_path / "wren" / "a.wav", 1.0)
    _wav(tmp_path / "robin" / "deep" / "b.flac", 0.5, 8000)
    sf.write(tmp_path / "robin" / "c.ogg", np.zeros(22050), 22050)
    (tmp_path / "robin" / "notes.txt").write_text("ignored")
    df = prepare_audiofolder(tmp_path, dataset="af")
    rows = {r["clip_id"]: r for r in df.iter_rows(named=True)}
    assert set(rows) == {"af/wren/a", "af/robin/deep/b", "af/robin/c"}
    assert (
        rows["af/robin/deep/b"]["labels"] == ["robin"]
        and rows["af/robin/deep/b"]["path"] == "robin/deep/b.flac"
    )
    assert (
        rows["af/robin/deep/b"]["sample_rate"] == 8000 and rows["af/robin/deep/b"]["end_s"] == 0.5
    )  # frames / rate: 4000 / 8000, exact in binary
    assert rows["af/robin/c"]["end_s"] == 1.0
    # The manifest works against the folder as data root.
    write_manifest(df, tmp_path / "m.parquet")
    assert read_manifest(tmp_path / "m.parquet", check_files=True).height == 3


def test_audiofolder_with_labels_csv(tmp_path):
    _wav(tmp_path / "x" / "1.wav", 1.0)
    _wav(tmp_path / "x" / "2.wav", 2.0)
    csv = tmp_path / "labels.csv"
    csv.write_text("path,labels,split,individual\nx/1.wav,owl;wren,test,i1\nx/2.wav,,,i2\n")
    df = prepare_audiofolder(tmp_path, dataset="d", labels_csv=csv, split="val")
    assert df["labels"].to_list() == [["owl", "wren"], []]
    assert df["split"].to_list() == ["test", "val"] and df["individual"].to_list() == ["i1", "i2"]
    csv.write_text("path,labels\nx/1.wav,owl\nx/3.wav,owl\n")
    with pytest.raises(ManifestError, match=r"row 1 \(path 'x/3.wav'\)"):
        prepare_audiofolder(tmp_path, dataset="d", labels_csv=csv)


def test_audiofolder_errors(tmp_path):
    with pytest.raises(DataNotFoundError):
        prepare_audiofolder(tmp_path / "none", dataset="d")
    _wav(tmp_path / "top.wav", 0.1)
    with pytest.raises(ManifestError, match="top.wav"):
        prepare_audiofolder(tmp_path, dataset="d")
    (tmp_path / "top.wav").unlink()
    (tmp_path / "lab").mkdir()
    (tmp_path / "lab" / "bad.wav").write_bytes(b"not audio at all" * 4)
    with pytest.raises(AudioError, match="bad.wav"):
        prepare_audiofolder(tmp_path, dataset="d")


RAVEN = (
    "Selection\tView\tChannel\tBegin Time (s)\tEnd Time (s)\tLow Freq (Hz)\tHigh Freq (Hz)\tBegin File\tFile Offset (s)\tSpecies\n"
    "1\tSpectrogram 1\t1\t1.0\t2.5\t500\t4000\trec1.wav\t1.0\twren\n"
    "1\tWaveform 1\t1\t1.0\t2.5\t500\t4000\trec1.wav\t1.0\twren\n"
    "2\tSpectrogram 1\t1\t13.0\t14.0\t100\t900\tC:\\data\\rec2.wav\t3.0\towl\n"
)


def test_raven_selection_table(tmp_path):
    _wav(tmp_path / "audio" / "rec1.wav", 10.0)
    _wav(tmp_path / "audio" / "sub" / "rec2.wav", 5.0, 8000)
    (tmp_path / "t.txt").write_text(RAVEN)
    m, ev = prepare_raven(
        tmp_path / "t.txt", dataset="rv", audio_root=tmp_path / "audio", label_column="Species"
    )
    assert m["clip_id"].to_list() == ["rv/rec1:1", "rv/sub/rec2:2"]
    assert m["path"].to_list() == ["rec1.wav", "sub/rec2.wav"]
    assert m["start_s"].to_list() == [1.0, 3.0] and m["end_s"].to_list() == [2.5, 4.0]  # file offsets used
    assert m["labels"].to_list() == [["wren"], ["owl"]] and m["sample_rate"].to_list() == [16000, 8000]
    assert ev["onset_s"].to_list() == [1.0, 3.0] and ev["high_freq_hz"].to_list() == [4000.0, 900.0]
    assert ev["recording_id"].to_list() == ["rv/rec1", "rv/sub/rec2"]


def test_raven_single_file_and_errors(tmp_path):
    _wav(tmp_path / "r.wav", 3.0)
    t = tmp_path / "t.txt"
    t.write_text("Selection\tBegin Time (s)\tEnd Time (s)\tCall\n1\t0.5\t1.0\tA\n2\t2.0\t2.9\tB\n")
    m, _ = prepare_raven(t, dataset="d", audio_root=tmp_path, audio_path="r.wav", label_column="Call")
    assert m["labels"].to_list() == [["A"], ["B"]]
    with pytest.raises(ManifestError, match="label column 'Species'"):
        prepare_raven(t, dataset="d", audio_root=tmp_path, audio_path="r.wav", label_column="Species")
    with pytest.raises(ManifestError, match="Begin File"):
        prepare_raven(t, dataset="d", audio_root=tmp_path, label_column="Call")
    t.write_text("Selection\tBegin Time (s)\tEnd Time (s)\tCall\n1\t0.5\t9.0\tA\n")
    with pytest.raises(ManifestError, match="row 0.*End Time"):
        prepare_raven(t, dataset="d", audio_root=tmp_path, audio_path="r.wav", label_column="Call")
    t.write_text("Selection\tBegin Time (s)\tEnd Time (s)\tCall\n1\tabc\t9.0\tA\n")
    with pytest.raises(ManifestError, match="row 0, column 'Begin Time"):
        prepare_raven(t, dataset="d", audio_root=tmp_path, audio_path="r.wav", label_column="Call")


SVL = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE sonic-visualiser>
<sv>
  <data>
    <model id="1" name="" sampleRate="{sr}" start="0" end="80000" type="sparse" dimensions="3" resolution="1"
           notifyOnAdd="true" dataset="0" subtype="{subtype}"/>
    <dataset id="0" dimensions="3">
      {points}
    </dataset>
  </data>
  <display><layer id="2" type="boxes" name="Boxes" model="1"/></display>
</sv>
"""


def test_sonic_visualiser_boxes_use_frames_and_sample_rate(tmp_path):
    _wav(tmp_path / "r.wav", 5.0)
    pts = (
        '<point frame="44100" value="1000" duration="22050" extent="2500" label="wren"/>'
        '<point frame="88200" value="200" duration="44100" extent="100" label=""/>'
    )
    (tmp_path / "a.svl").write_text(SVL.format(sr=44100, subtype="box", points=pts))
    m, ev = prepare_sonic_visualiser(
        tmp_path / "a.svl", dataset="sv", audio_root=tmp_path, audio_path="r.wav"
    )
    assert m["start_s"].to_list() == [1.0, 2.0] and m["end_s"].to_list() == [1.5, 3.0]
    assert m["labels"].to_list() == [["wren"], []]
    assert ev["low_freq_hz"].to_list() == [1000.0, 200.0] and ev["high_freq_hz"].to_list() == [3500.0, 300.0]


def test_sonic_visualiser_instants_and_csv(tmp_path):
    _wav(tmp_path / "r.wav", 5.0)
    pts = '<point frame="0" label="a"/><point frame="32000" label="b"/>'
    (tmp_path / "i.svl").write_text(SVL.format(sr=16000, subtype="", points=pts))
    m, ev = prepare_sonic_visualiser(
        tmp_path / "i.svl", dataset="sv", audio_root=tmp_path, audio_path="r.wav", instant_clip_s=1.0
    )
    assert m["start_s"].to_list() == [0.0, 1.5] and m["end_s"].to_list() == [1.0, 2.5]
    assert ev["onset_s"].to_list() == ev["offset_s"].to_list() == [0.0, 2.0]
    (tmp_path / "r.csv").write_text("0.5,0,1.0,call A\n3.0,0,0.5,call B\n")
    ann = read_sonic_visualiser(tmp_path / "r.csv")
    assert ann["offset_s"].to_list() == [1.5, 3.5] and ann["label"].to_list() == ["call A", "call B"]
    (tmp_path / "bad.csv").write_text("0.5,x,y,z,w,v\n")
    with pytest.raises(ManifestError, match="row 0"):
        read_sonic_visualiser(tmp_path / "bad.csv")


def test_sonic_visualiser_errors(tmp_path):
    _wav(tmp_path / "r.wav", 1.0)
    (tmp_path / "x.svl").write_text("<sv><data>")
    with pytest.raises(ManifestError, match="parse error"):
        read_sonic_visualiser(tmp_path / "x.svl")
    pts = '<point frame="16000" duration="32000" label="late"/>'
    (tmp_path / "late.svl").write_text(SVL.format(sr=16000, subtype="region", points=pts))
    with pytest.raises(ManifestError, match="row 0.*end_s"):
        prepare_sonic_visualiser(tmp_path / "late.svl", dataset="d", audio_root=tmp_path, audio_path="r.wav")
