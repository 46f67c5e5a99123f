"""Embedding extraction on real audio files with a real encoder; the verified cache; outside embeddings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf
import torch
from tolerance import assert_close_f32, f32_tol, mel_frontend_log_tol, statistics_tol

from avexlab.data.schema import COLUMNS, SCHEMA
from avexlab.errors import EvaluationError
from avexlab.evaluate.embed import (
    Embeddings,
    encoder_hash,
    extract_embeddings,
    load_embeddings,
    resolve_encoder,
)
from avexlab.models import build_encoder

SR = 16000


def _manifest(tmp_path: Path, durations=(0.5, 1.0, 0.3, 0.8), seed=0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for i, d in enumerate(durations):
        t = np.arange(int(d * SR)) / SR
        x = 0.3 * np.sin(2 * np.pi * (300 + 400 * i) * t) + 0.01 * rng.normal(size=t.size)
        sf.write(tmp_path / f"c{i}.wav", x.astype(np.float32), SR)
        r = {c: None for c in COLUMNS}
        r.update(
            clip_id=f"c{i}",
            path=f"c{i}.wav",
            dataset="toy",
            split="test",
            domain="focal",
            labels=[f"sp{i % 2}"],
        )
        rows.append(r)
    return pl.DataFrame(rows, schema=SCHEMA)


def _logmel_tol(logmel, path: Path, start: int = 0, stop: int | None = None) -> torch.Tensor:
    """Rounding tolerance ``[2 M]`` on the log-mel statistics embedding of a clip (samples ``start:stop`` of
    the file), from its own log-mel: ``statistics_tol`` of ``mel_frontend_log_tol`` (two float32 runs that
    differ in batch shape and padding)."""
    wave = torch.from_numpy(sf.read(path, dtype="float32")[0][start:stop])
    log_mel, _ = logmel.frontend.log_mel(wave[None])
    return statistics_tol(log_mel[0], mel_frontend_log_tol(wave, log_mel[0], SR))


@pytest.fixture
def logmel():
    return build_encoder("logmel", size="tiny")


def test_batched_equals_one_by_one_and_padding_is_ignored(tmp_path, logmel):
    df = _manifest(tmp_path)
    emb = extract_embeddings(logmel, df, root=tmp_path, batch_size=3, progress=False)
    x = emb.array()
    assert x.shape == (4, logmel.embed_dim) and x.dtype == np.float32
    assert emb.clip_ids == ["c0", "c1", "c2", "c3"]
    assert emb.meta["clip_s"] == 1.0  # the longest clip: 16000 samples / 16000 Hz
    for i in range(4):
        one = extract_embeddings(
            logmel, df[i : i + 1], root=tmp_path, clip_s=1.0, batch_size=1, progress=False
        )
        tol = _logmel_tol(logmel, tmp_path / f"c{i}.wav")
        assert_close_f32(one.array()[0], x[i], tol, what=f"clip {i} alone vs in a batch of 3")
    assert not np.allclose(x[0], x[1])


def test_all_layers_of_a_transformer(tmp_path):
    torch.manual_seed(0)
    enc = build_encoder("beats", size="tiny")
    df = _manifest(tmp_path, durations=(0.6, 0.4))
    emb = extract_embeddings(enc, df, root=tmp_path, layers="all", progress=False)
    assert emb.layer_ids == list(range(enc.num_layers))
    last = extract_embeddings(enc, df, root=tmp_path, layers=(-1,), progress=False)
    # the same forward passes (same batches and padding) pooled from the same layer: bit for bit
    np.testing.assert_array_equal(last.array(-1), emb.array(enc.num_layers - 1))


def test_windows_average_signal_windows(tmp_path, logmel):
    df = _manifest(tmp_path, durations=(1.0,))
    emb = extract_embeddings(logmel, df, root=tmp_path, crop="windows", window_s=0.5, progress=False)
    halves = [
        extract_embeddings(
            logmel,
            df.with_columns(pl.lit(a).alias("start_s"), pl.lit(a + 0.5).alias("end_s")),
            root=tmp_path,
            clip_s=0.5,
            progress=False,
        ).array()[0]
        for a in (0.0, 0.5)
    ]
    # each half alone vs in a batch of windows (their rounding bounds), then the mean of 2 (2 roundings)
    tol = (
        _logmel_tol(logmel, tmp_path / "c0.wav", 0, 8000) + _logmel_tol(logmel, tmp_path / "c0.wav", 8000)
    ) / 2
    mean = np.mean(halves, axis=0)
    tol = tol + f32_tol(mean, ops=2, scale=np.abs(halves).mean(axis=0))
    assert_close_f32(emb.array()[0], mean, tol, what="mean of the signal windows")


def test_cache_hit_corruption_and_failed_runs(tmp_path, logmel):
    df = _manifest(tmp_path)
    cache = tmp_path / "cache"
    first = extract_embeddings(logmel, df, root=tmp_path, cache_dir=cache, progress=False)
    files = list(cache.glob("*.npz"))
    assert len(files) == 1
    second = extract_embeddings(logmel, df, root=tmp_path, cache_dir=cache, progress=False)
    assert second.meta.get("cache") == str(files[0])
    np.testing.assert_array_equal(first.array(), second.array())
    # Tamper with the stored embeddings, keeping a valid npz: the digest catches it, it is recomputed.
    with np.load(files[0]) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["layer_0"] = arrays["layer_0"] + 1.0
    np.savez(files[0], **arrays)
    with pytest.warns(RuntimeWarning, match="corrupt"):
        third = extract_embeddings(logmel, df, root=tmp_path, cache_dir=cache, progress=False)
    np.testing.assert_array_equal(third.array(), first.array())
    files[0].write_bytes(b"not a zip")
    with pytest.warns(RuntimeWarning, match="corrupt"):
        extract_embeddings(logmel, df, root=tmp_path, cache_dir=cache, progress=False)
    # a different pooling is a different entry
    extract_embeddings(logmel, df, root=tmp_path, cache_dir=cache, pooling="max", progress=False)
    assert len(list(cache.glob("*.npz"))) == 2
    # A run that fails part-way leaves nothing behind.
    bad = df.with_columns(
        pl.when(pl.col("clip_id") == "c3").then(pl.lit("missing.wav")).otherwise(pl.col("path")).alias("path")
    )
    cache2 = tmp_path / "cache2"
    with pytest.raises(Exception, match="missing.wav"):
        extract_embeddings(
            logmel, bad, root=tmp_path, cache_dir=cache2, clip_s=1.0, batch_size=2, progress=False
        )
    assert not cache2.exists() or not any(cache2.iterdir())


def test_encoder_hash_tracks_weights():
    torch.manual_seed(0)
    a = build_encoder("beats", size="tiny")
    h = encoder_hash(a)
    assert h == encoder_hash(a)
    with torch.no_grad():
        next(a.parameters()).add_(1e-3)
    assert encoder_hash(a) != h
    assert encoder_hash(resolve_encoder("beats:tiny")) == encoder_hash(resolve_encoder("beats:tiny"))


@pytest.mark.parametrize("suffix", [".npz", ".parquet"])
def test_outside_embeddings_round_trip_and_alignment(tmp_path, suffix):
    rng = np.random.default_rng(0)
    df = _manifest(tmp_path)
    emb = Embeddings(["c3", "c1", "c0", "c2"], {0: rng.normal(size=(4, 6)).astype(np.float32)})
    path = emb.save(tmp_path / f"outside{suffix}")
    got = load_embeddings(path, df, name="perch")
    assert got.clip_ids == ["c0", "c1", "c2", "c3"] and got.meta["encoder"] == "perch"
    np.testing.assert_array_equal(got.array()[0], emb.array()[2])
    with pytest.raises(EvaluationError, match="1 missing"):
        load_embeddings(path, pl.concat([df, df.with_columns(pl.lit("zz").alias("clip_id"))[:1]]))


def test_encoder_hash_handles_zero_dim_buffers():
    # BatchNorm's num_batches_tracked is a 0-d int64 tensor: hashing must cover it, not crash on it.
    torch.manual_seed(0)
    enc = build_encoder("efficientnet", size="tiny")
    before = encoder_hash(enc)
    bn = next(m for m in enc.modules() if isinstance(m, torch.nn.BatchNorm2d))
    bn.num_batches_tracked += 1
    assert encoder_hash(enc) != before
