"""ManifestDataset + collate on real files, through a real DataLoader."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
import soundfile as sf
import torch
from torch.utils.data import DataLoader

from avexlab.data import LabelSpace, ManifestDataset, collate, write_manifest
from avexlab.errors import AudioError, ManifestError


@pytest.fixture()
def corpus(tmp_path):
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "a.wav", rng.uniform(-0.5, 0.5, 16000 * 3).astype(np.float32), 16000, subtype="FLOAT")
    sf.write(tmp_path / "b.flac", rng.uniform(-0.5, 0.5, (8000 * 2, 2)), 8000)
    df = pl.DataFrame(
        {
            "clip_id": ["a0", "a1", "b"],
            "path": ["a.wav", "a.wav", "b.flac"],
            "dataset": "t",
            "split": "train",
            "domain": "focal",
            "labels": [["owl"], ["owl", "wren"], []],
            "start_s": [0.0, 1.0, 0.0],
            "end_s": [1.0, 3.0, None],
        }
    )
    write_manifest(df, tmp_path / "m.parquet")
    return tmp_path


def test_items_have_documented_shapes_and_labels(corpus):
    ds = ManifestDataset(corpus / "m.parquet")  # root defaults to the manifest's folder
    assert len(ds) == 3 and ds.label_space.labels == ("owl", "wren")
    a0, a1, b = ds[0], ds[1], ds[2]
    assert a0["wave"].shape == (16000,) and a1["wave"].shape == (32000,) and b["wave"].shape == (32000,)
    assert a1["label_idx"] == [0, 1] and b["label_idx"] == [] and a0["clip_id"] == "a0"
    whole, _ = sf.read(corpus / "a.wav", dtype="float32")
    assert torch.equal(a1["wave"], torch.from_numpy(whole[16000:48000]))  # the file's samples, a segment


def test_collate_pads_and_masks(corpus):
    ds = ManifestDataset(corpus / "m.parquet")
    batch = collate([ds[0], ds[1]])
    assert batch["wave"].shape == (2, 32000) and batch["padding_mask"].shape == (2, 32000)
    assert batch["padding_mask"][0].sum() == 16000 and not batch["padding_mask"][1].any()
    assert batch["label_idx"] == [[0], [0, 1]] and batch["index"].tolist() == [0, 1]
    targets = ds.label_space.multi_hot(batch["label_idx"])
    assert targets.tolist() == [[1.0, 0.0], [1.0, 1.0]]


def test_random_crops_depend_on_seed_epoch_and_index_only(corpus):
    def crops(seed, epoch, order):
        ds = ManifestDataset(corpus / "m.parquet", clip_s=0.5, crop="random", seed=seed)
        ds.set_epoch(epoch)
        return {i: ds[i]["wave"] for i in order}

    a, b = crops(0, 0, [0, 1, 2]), crops(0, 0, [2, 1, 0])
    assert all(torch.equal(a[i], b[i]) for i in range(3))
    c = crops(0, 1, [0, 1, 2])
    d = crops(1, 0, [0, 1, 2])
    assert not torch.equal(a[1], c[1]) and not torch.equal(a[1], d[1])
    assert all(v.shape == (8000,) for v in a.values())


def test_dataloader_with_workers_matches_in_process(corpus):
    ds = ManifestDataset(corpus / "m.parquet", clip_s=1.0, crop="random", seed=5)
    ref = collate([ds[i] for i in range(3)])
    dl = DataLoader(ds, batch_size=3, collate_fn=collate, num_workers=1)
    (batch,) = list(dl)
    assert torch.equal(batch["wave"], ref["wave"]) and torch.equal(batch["padding_mask"], ref["padding_mask"])


def test_label_space_given_and_unknown_label(corpus):
    ls = LabelSpace.from_labels(["bat", "owl", "wren"])
    ds = ManifestDataset(corpus / "m.parquet", label_space=ls)
    assert ds[1]["label_idx"] == [1, 2]
    with pytest.raises(ManifestError, match="row 1.*'wren'"):
        ManifestDataset(corpus / "m.parquet", label_space=LabelSpace.from_labels(["owl"]))


def test_on_error_raise_and_skip(corpus):
    (corpus / "bad.wav").write_bytes(b"RIFF....WAVEjunk")
    df = pl.read_parquet(corpus / "m.parquet")
    extra = df.head(1).with_columns(pl.lit("bad").alias("clip_id"), pl.lit("bad.wav").alias("path"))
    write_manifest(pl.concat([df, extra]), corpus / "m2.parquet")
    strict = ManifestDataset(corpus / "m2.parquet")
    with pytest.raises(AudioError, match="bad.wav"):
        strict[3]
    with pytest.raises(AudioError, match="(?s)1 of 4 clips.*bad.wav"):
        strict.scan()
    lenient = ManifestDataset(corpus / "m2.parquet", on_error="skip")
    batch = collate([lenient[i] for i in range(len(lenient))])
    assert batch["clip_id"] == ["a0", "a1", "b"]
    assert [s["clip_id"] for s in batch["skipped"]] == ["bad"] and "bad.wav" in batch["skipped"][0]["reason"]
    scanned = ManifestDataset(corpus / "m2.parquet", on_error="skip")
    assert [s.clip_id for s in scanned.scan()] == ["bad"] and len(scanned) == 3
    assert scanned.active_rows.tolist() == [0, 1, 2]
    assert scanned.skipped_report()[0]["path"].endswith("bad.wav")
