"""Every file avexlab writes for keeps goes through one durable path: the bytes that end up at the name were
fsynced, then the directory was fsynced after the rename (so the new name survives a power cut), nothing
temporary is left beside it, and a failed write keeps the old file.

A power cut cannot be staged in a test; what is checked is that the writers ask the kernel for it. ``os.fsync``
is wrapped (the real call still runs) to record which inode each call flushed; the file's inode after the
write is the one its bytes were written to (a rename keeps the inode), its directory's is the directory's.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf
import torch

from avexlab.audio.io import save_audio
from avexlab.config import load_config, save_config
from avexlab.data.manifest import read_manifest, write_events, write_manifest
from avexlab.data.schema import SCHEMA
from avexlab.errors import AudioError
from avexlab.evaluate.embed import Embeddings, extract_embeddings, load_embeddings
from avexlab.models import build_encoder, load_encoder, save_encoder
from avexlab.train.checkpoint import latest_checkpoint, read_checkpoint, write_checkpoint

Flushed = list[tuple[int, int, bool]]  # (device, inode, is a directory), in call order


@pytest.fixture()
def flushed(monkeypatch: pytest.MonkeyPatch) -> Flushed:
    calls: Flushed = []
    real = os.fsync

    def recording(fd: int) -> None:
        st = os.fstat(fd)
        calls.append((st.st_dev, st.st_ino, stat.S_ISDIR(st.st_mode)))
        real(fd)

    monkeypatch.setattr(os, "fsync", recording)
    return calls


def assert_durable(path: Path, calls: Flushed) -> None:
    """``path``'s bytes were fsynced, and its directory after them."""
    f, d = path.stat(), path.parent.stat()
    file_key, dir_key = (f.st_dev, f.st_ino, False), (d.st_dev, d.st_ino, True)
    assert file_key in calls, f"{path.name}: its bytes were never fsynced"
    last_dir = max((i for i, c in enumerate(calls) if c == dir_key), default=-1)
    assert last_dir > calls.index(file_key), f"{path.parent}: not fsynced after {path.name} was written"


def no_temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name.startswith(".") or ".tmp" in p.name)


def _manifest(root: Path, n: int = 3) -> pl.DataFrame:
    (root / "audio").mkdir(parents=True, exist_ok=True)
    rows = []
    for i in range(n):
        sf.write(root / f"audio/{i}.wav", 0.1 * np.sin(np.arange(8000) * (0.05 + 0.02 * i)), 16000)
        row = {"clip_id": f"c{i}", "path": f"audio/{i}.wav", "dataset": "d", "split": "test"}
        rows.append({**row, "domain": "focal", "labels": [f"l{i % 2}"]})
    df = pl.DataFrame(rows)
    return df.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in SCHEMA.items() if c not in df.columns)


def test_save_encoder(tmp_path: Path, flushed: Flushed) -> None:
    run = tmp_path / "run"
    save_encoder(build_encoder("efficientnet", "tiny"), run)
    flushed.clear()
    enc = build_encoder("efficientnet", "tiny")
    save_encoder(enc, run)  # over the first one
    for name in ("checkpoint.safetensors", "encoder.json"):
        assert_durable(run / name, flushed)
    assert no_temporaries(tmp_path) == []
    wave = torch.randn(1, 8000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(load_encoder(run).embed(wave), enc.eval().embed(wave), atol=0, rtol=0)


def test_training_checkpoint_and_its_pointer(tmp_path: Path, flushed: Flushed) -> None:
    weights = {"encoder.w": torch.arange(6.0).reshape(2, 3)}
    for step in (2, 4, 6):
        state = {"step": step, "config_hash": "h", "optimizer": {}, "scheduler": {}, "rng": torch.arange(3)}
        write_checkpoint(tmp_path, step, weights, state, keep=2)
    final = latest_checkpoint(tmp_path)
    assert final is not None and final.name == "step-00000006"
    for name in ("weights.safetensors", "state.pt"):
        assert_durable(final / name, flushed)
    assert_durable(final, flushed)  # the directory renamed into place, then checkpoints/ fsynced
    assert_durable(tmp_path / "checkpoints" / "latest", flushed)
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == [
        "latest",
        "step-00000004",
        "step-00000006",
    ]
    back = read_checkpoint(final)
    assert back.step == 6 and torch.equal(back.weights["encoder.w"], weights["encoder.w"])


@pytest.mark.parametrize("suffix", ["parquet", "csv", "jsonl"])
def test_manifests_and_events(tmp_path: Path, flushed: Flushed, suffix: str) -> None:
    df = _manifest(tmp_path / "data")
    path = tmp_path / "out" / f"m.{suffix}"
    write_manifest(df.head(1), path)
    write_manifest(df, path)
    assert_durable(path, flushed)
    assert read_manifest(path)["clip_id"].to_list() == ["c0", "c1", "c2"]
    events = tmp_path / "out" / "events.parquet"
    write_events(pl.DataFrame({"recording_id": ["r0"], "onset_s": [0.5], "offset_s": [0.9]}), events)
    assert_durable(events, flushed)
    assert no_temporaries(tmp_path / "out") == []


def test_audio(tmp_path: Path, flushed: Flushed) -> None:
    path = tmp_path / "x.flac"
    save_audio(path, np.zeros(800), 16000)
    x = 0.5 * np.sin(np.arange(1600) * 0.1)
    save_audio(path, x, 16000, subtype="PCM_24")
    assert_durable(path, flushed)
    old = path.read_bytes()
    # a failed write names the file, keeps the old one and leaves nothing beside it
    with pytest.raises(AudioError, match=r"saving '.*x\.flac': expected a writable \.flac file with subtype"):
        save_audio(path, x, 16000, subtype="FLOAT")  # FLAC holds no float samples
    assert path.read_bytes() == old and no_temporaries(tmp_path) == []
    np.testing.assert_allclose(sf.read(path)[0], x, atol=2.0**-23)


def test_config(tmp_path: Path, flushed: Flushed) -> None:
    cfg = load_config(None, ["runtime.seed=7"])
    path = tmp_path / "run" / "config.yaml"
    save_config(load_config(), path)
    save_config(cfg, path)
    assert_durable(path, flushed)
    assert load_config(path).runtime.seed == 7 and no_temporaries(tmp_path) == []


@pytest.mark.parametrize("suffix", ["npz", "parquet"])
def test_embeddings_and_their_cache(tmp_path: Path, flushed: Flushed, suffix: str) -> None:
    df = _manifest(tmp_path / "data")
    emb = extract_embeddings(
        build_encoder("logmel", "tiny"),
        df,
        root=tmp_path / "data",
        cache_dir=tmp_path / "cache",
        progress=False,
    )
    (entry,) = (tmp_path / "cache").iterdir()
    assert_durable(entry, flushed)
    path = emb.save(tmp_path / "out" / f"emb.{suffix}")
    assert_durable(path, flushed)
    back = load_embeddings(path)
    assert back.clip_ids == emb.clip_ids and np.array_equal(back.array(), emb.array())
    assert no_temporaries(tmp_path) == []


def _break_after_half(monkeypatch: pytest.MonkeyPatch, owner: object, name: str) -> None:
    """Make ``owner.name`` (a write-to-path function) write half a file, then fail like a full disk."""

    def half(*args: object, **kwargs: object) -> None:
        target = next(a for a in args if isinstance(a, (str, os.PathLike)))
        Path(target).write_bytes(b"half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(owner, name, half)


WRITERS: dict[str, tuple[Callable[[Path], Path], object, str]] = {
    "manifest": (lambda p: write_manifest(_manifest(p.parent), p), pl.DataFrame, "write_parquet"),
    "embeddings": (lambda p: Embeddings(["a"], {0: np.ones((1, 2), np.float32)}).save(p), np, "savez"),
}


@pytest.mark.parametrize("what", sorted(WRITERS))
def test_a_write_failing_half_way_keeps_the_old_file(tmp_path: Path, monkeypatch, what: str) -> None:
    write, owner, name = WRITERS[what]
    path = tmp_path / ("m.parquet" if what == "manifest" else "e.npz")
    write(path)
    old = path.read_bytes()
    _break_after_half(monkeypatch, owner, name)
    with pytest.raises(OSError, match="No space left"):
        write(path)
    assert path.read_bytes() == old and no_temporaries(tmp_path) == []
