"""A bad-audio corpus built in tmp_path: each file loads correctly or fails with an AudioError naming it,
and a dataset told to skip unreadable files completes and says what it skipped and why."""

from __future__ import annotations

import tracemalloc

import numpy as np
import polars as pl
import pytest
import soundfile as sf
import torch
from tolerance import assert_close_f32, f32_tol, unit_roundoff

from avexlab.audio import load_audio
from avexlab.data import ManifestDataset, collate
from avexlab.errors import AudioError

RNG = np.random.default_rng(0)
SIGNAL = (0.8 * np.sin(2 * np.pi * 440 * np.arange(4000) / 16000)).astype(np.float32)


def _truncate(path, keep=0.5):
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _bad_files(d):
    """(name, reason regex) for every file that must fail."""
    bad = []
    for ext, fmt in (("wav", "PCM_16"), ("flac", "PCM_16"), ("ogg", "VORBIS")):
        p = d / f"truncated.{ext}"
        sf.write(p, np.tile(SIGNAL, 10), 16000, subtype=fmt)
        _truncate(p)
        bad.append((p.name, "truncated|corrupt"))
    (d / "random_bytes.wav").write_bytes(RNG.integers(0, 256, 4096, dtype=np.uint8).tobytes())
    bad.append(("random_bytes.wav", "cannot read"))
    (d / "text.flac").write_text("this is not audio\n" * 20)
    bad.append(("text.flac", "cannot read"))
    (d / "empty.wav").write_bytes(b"")
    bad.append(("empty.wav", "0-byte"))
    sf.write(d / "header_only.wav", np.zeros((0, 1), dtype=np.float32), 16000)
    bad.append(("header_only.wav", "zero-length"))
    for kind, value in (("nan", np.nan), ("inf", np.inf), ("neginf", -np.inf)):
        x = SIGNAL.copy()
        x[1234] = value
        sf.write(d / f"{kind}.wav", x, 16000, subtype="FLOAT")
        bad.append((f"{kind}.wav", r"NaN/Inf.*0\.077"))
    return bad


def test_every_bad_file_fails_naming_the_file(tmp_path):
    bad = _bad_files(tmp_path)
    assert len(bad) == 10
    for name, reason in bad:
        with pytest.raises(AudioError, match=reason) as e:
            load_audio(tmp_path / name)
        assert str(tmp_path / name) in str(e.value), name
    with pytest.raises(AudioError, match="nothing at that path"):
        load_audio(tmp_path / "missing.wav")


@pytest.mark.parametrize(
    ("subtype", "ext", "bits"),
    [
        ("PCM_U8", "wav", 8),
        ("PCM_16", "wav", 16),
        ("PCM_24", "wav", 24),
        ("PCM_32", "wav", 32),
        ("FLOAT", "wav", None),
        ("DOUBLE", "wav", None),
        ("PCM_S8", "flac", 8),
        ("PCM_16", "flac", 16),
        ("PCM_24", "flac", 24),
        ("VORBIS", "ogg", 0),
    ],
)
def test_bit_depths_and_formats_load_to_full_scale_float(tmp_path, subtype, ext, bits):
    p = tmp_path / f"x_{subtype}.{ext}"
    sf.write(p, SIGNAL, 16000, subtype=subtype)
    w, sr = load_audio(p)
    assert w.dtype == torch.float32 and sr == 16000 and w.shape == SIGNAL.shape
    err = (w - torch.from_numpy(SIGNAL)).abs()
    if bits is None:  # float formats hold the float32 samples themselves
        assert float(err.max()) == 0.0
    elif (
        bits
    ):  # integer formats: one step of 2^-(bits - 1) full scale (rounded or truncated), read as float32
        tol = 2.0 ** -(bits - 1) + unit_roundoff(torch.float32) * np.abs(SIGNAL).max()
        assert float(err.max()) <= tol
    else:  # Vorbis is lossy: not a rounding question; its mean error at the default quality stays small
        assert float(err.mean()) <= 0.05


@pytest.mark.parametrize("sr", [8000, 11025, 22050, 44100, 48000, 96000, 192000])
def test_sample_rates_8k_to_192k(tmp_path, sr):
    t = np.arange(sr // 2) / sr
    p = tmp_path / f"r{sr}.wav"
    sf.write(p, 0.5 * np.sin(2 * np.pi * 1000 * t), sr, subtype="PCM_24")
    w, got = load_audio(p)
    assert got == sr and w.shape == (sr // 2,)
    w16, got16 = load_audio(p, sample_rate=16000)
    assert got16 == 16000 and w16.shape == (8000,)
    spec = torch.fft.rfft(w16).abs()
    assert int(spec.argmax()) == pytest.approx(500, abs=1)  # 1 kHz at 2 Hz per bin


def test_silence_clipping_and_multichannel(tmp_path):
    sf.write(tmp_path / "silence.wav", np.zeros(1600), 16000)
    w, _ = load_audio(tmp_path / "silence.wav")
    assert w.shape == (1600,) and not w.any()
    loud = np.clip(SIGNAL * 4, -1, 1)
    sf.write(tmp_path / "clipped.wav", loud, 16000, subtype="PCM_16")
    w, _ = load_audio(tmp_path / "clipped.wav")
    assert abs(float(w.abs().max()) - 1.0) <= 2.0**-15 and float((w.abs() > 0.999).float().mean()) > 0.3
    over = SIGNAL * 3  # float WAVs may hold values beyond full scale: kept as they are
    sf.write(tmp_path / "over.wav", over, 16000, subtype="FLOAT")
    w, _ = load_audio(tmp_path / "over.wav")
    assert torch.equal(w, torch.from_numpy(over))
    six = np.stack([SIGNAL * (c / 6) for c in range(6)], axis=1)
    sf.write(tmp_path / "six.wav", six, 16000, subtype="FLOAT")
    mono, _ = load_audio(tmp_path / "six.wav")
    multi, _ = load_audio(tmp_path / "six.wav", mono=False)
    assert multi.shape == (6, 4000)
    want = six.mean(1)  # the mean of 6 channels: 6 roundings, relative to their mean magnitude
    assert_close_f32(mono, want, f32_tol(want, ops=6, scale=np.abs(six).mean(1)), what="6-channel mix-down")


def test_shorter_than_one_frame(tmp_path):
    sf.write(tmp_path / "tiny.wav", SIGNAL[:10], 16000, subtype="FLOAT")
    w, _ = load_audio(tmp_path / "tiny.wav")
    assert w.shape == (10,)
    with pytest.raises(AudioError, match=r"tiny\.wav.*at least 0\.025 s.*10 samples"):
        load_audio(tmp_path / "tiny.wav", min_duration_s=0.025)


def test_segment_outside_file(tmp_path):
    sf.write(tmp_path / "s.wav", SIGNAL, 16000)
    for start, end in ((0.0, 0.3), (0.25, None), (0.3, 0.4)):
        with pytest.raises(AudioError, match=r"s\.wav.*inside the recording"):
            load_audio(tmp_path / "s.wav", start_s=start, end_s=end)
    with pytest.raises(AudioError, match="start_s >= 0"):
        load_audio(tmp_path / "s.wav", start_s=-1.0)


def test_one_hour_file_is_read_by_segment(tmp_path):
    sr, minutes = 8000, 60
    p = tmp_path / "hour.wav"
    with sf.SoundFile(p, "w", sr, 1, subtype="PCM_16") as f:
        for m in range(minutes):  # each minute holds its own index as a constant level
            f.write(np.full(sr * 60, (m + 1) / 128, dtype=np.float32))
    assert sf.info(p).duration == 3600.0  # 28,800,000 frames / 8000 Hz
    tracemalloc.start()
    w, _ = load_audio(p, start_s=3595.0, end_s=3600.0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert w.shape == (5 * sr,)
    assert torch.equal(w, torch.full((5 * sr,), 60 / 128))  # k / 128 is exact in PCM_16 and in float32
    assert peak < 5e6  # a segment read: far below the 57.6 MB of decoded samples
    w, _ = load_audio(p, start_s=59.5, end_s=60.5)
    assert float(w[0]) == 1 / 128 and float(w[-1]) == 2 / 128


def test_dataset_skip_completes_and_reports_each_bad_file(tmp_path):
    bad = _bad_files(tmp_path)
    good = []
    for i, sr in enumerate((8000, 44100, 96000)):
        sf.write(tmp_path / f"good{i}.flac", np.tile(SIGNAL, 2), sr)
        good.append(f"good{i}.flac")
    paths = good + [name for name, _ in bad] + ["missing.wav"]
    df = pl.DataFrame(
        {
            "clip_id": [f"c{i}" for i in range(len(paths))],
            "path": paths,
            "dataset": "bad",
            "split": "train",
            "domain": "focal",
            "labels": [["x"]] * len(paths),
        }
    )
    ds = ManifestDataset(df, root=tmp_path, clip_s=0.5, on_error="skip")
    batch = collate([ds[i] for i in range(len(ds))])
    assert batch["clip_id"] == ["c0", "c1", "c2"] and batch["wave"].shape == (3, 8000)
    assert torch.isfinite(batch["wave"]).all()
    reasons = {s.path.rsplit("/", 1)[-1]: s.reason for s in ds.skipped}
    assert set(reasons) == {name for name, _ in bad} | {"missing.wav"}
    assert all(name in r for name, r in reasons.items())
    # scan() finds the header-level failures before any sample is decoded; NaN/Inf samples and a FLAC
    # stream cut mid-frame only show while decoding, so __getitem__ + collate report those.
    scanned = ManifestDataset(df, root=tmp_path, on_error="skip")
    found = {s.path.rsplit("/", 1)[-1] for s in scanned.scan()}
    assert found == set(reasons) - {"nan.wav", "inf.wav", "neginf.wav", "truncated.flac"}
    assert len(scanned) == len(paths) - len(found)
