"""The paper dataset registry and its local-copy checks."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import soundfile as sf

from avexlab.data import write_manifest
from avexlab.data.registry import (
    check_all,
    check_local,
    get_paper_dataset,
    list_paper_datasets,
    load_paper_dataset,
)
from avexlab.errors import ConfigError, DataNotFoundError


def test_registry_has_the_papers_26_datasets_in_four_families():
    reg = list_paper_datasets()
    assert reg.height == 26 and reg["name"].n_unique() == 26
    counts = dict(reg.group_by("task_family").len().iter_rows())
    assert counts == {
        "beans_classification": 6,
        "beans_detection": 5,
        "birdset": 7,
        "individual_id": 4,
        "repertoire": 4,
    }
    det = reg.filter(pl.col("task_family").is_in(["beans_detection", "birdset"]))
    assert det["multi_label"].all() and set(det["metric"]) == {"mAP"}
    assert get_paper_dataset("birdset-per").num_classes == 132
    assert get_paper_dataset("indiv-macaques").num_classes is None  # unknown stays unknown
    with pytest.raises(ConfigError, match="beans-dogs"):
        get_paper_dataset("beans-dog")


def _local_copy(root, name, paths, present):
    folder = root / name
    (folder / "audio").mkdir(parents=True)
    for p in present:
        sf.write(folder / p, np.zeros(160, dtype=np.float32), 16000)
    df = pl.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(len(paths))],
            "path": paths,
            "dataset": name,
            "split": "test",
            "domain": "focal",
            "labels": [["a"]] * len(paths),
        }
    )
    write_manifest(df, folder / "manifest.parquet")
    return folder


def test_check_local_says_what_is_missing_where(tmp_path):
    c = check_local("beans-dogs", tmp_path)
    assert not c.ok and str(tmp_path / "beans-dogs") in c.problems[0] and "Yin" in c.problems[0]
    (tmp_path / "beans-dogs").mkdir()
    c = check_local("beans-dogs", tmp_path)
    assert any("manifest missing" in p for p in c.problems) and any(
        "audio folder missing" in p for p in c.problems
    )


def test_check_local_reports_missing_audio_file(tmp_path):
    folder = _local_copy(tmp_path, "beans-dogs", ["audio/a.wav", "audio/b.wav"], ["audio/a.wav"])
    c = check_local("beans-dogs", tmp_path)
    assert not c.ok and c.n_clips == 2 and c.n_missing_files == 1
    assert str(folder / "audio" / "b.wav") in c.problems[0]
    with pytest.raises(DataNotFoundError, match="b.wav"):
        load_paper_dataset("beans-dogs", tmp_path)


def test_load_paper_dataset_when_complete(tmp_path):
    _local_copy(tmp_path, "rep-giantotter", ["audio/a.wav"], ["audio/a.wav"])
    df = load_paper_dataset("rep-giantotter", tmp_path)
    assert df["path"].to_list() == ["audio/a.wav"]
    table = check_all(tmp_path)
    assert table.height == 26
    assert table.filter(pl.col("ok"))["name"].to_list() == ["rep-giantotter"]


def test_invalid_manifest_is_reported_not_raised(tmp_path):
    folder = tmp_path / "beans-cbi"
    (folder / "audio").mkdir(parents=True)
    (folder / "manifest.csv").write_text("clip_id,path\nx,audio/x.wav\n")
    c = check_local("beans-cbi", tmp_path)
    assert not c.ok and "invalid" in c.problems[0] and "'dataset'" in c.problems[0]
