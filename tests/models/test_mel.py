"""The reference EfficientNet mel frontend: parity with the reference recipe, padding, statistics, errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

from avexlab.audio.mel import MelFrontend, log_mel_statistics
from avexlab.errors import AudioError, ConfigError


def _chirps(tmp_path, sample_rate: int, seconds: list[float], seed: int = 0) -> list[torch.Tensor]:
    """Real audio files (chirp + noise) written with soundfile and read back as float32 tensors."""
    rng = np.random.default_rng(seed)
    clips = []
    for i, s in enumerate(seconds):
        t = np.arange(int(s * sample_rate)) / sample_rate
        f0, f1 = 300.0 + 100 * i, 0.4 * sample_rate
        y = 0.5 * np.sin(2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * s))) + 0.05 * rng.standard_normal(
            t.size
        )
        path = tmp_path / f"clip{i}_{sample_rate}.wav"
        sf.write(path, y.astype(np.float32), sample_rate, subtype="FLOAT")
        data, sr = sf.read(path, dtype="float32")
        assert sr == sample_rate
        clips.append(torch.from_numpy(data))
    return clips


def _reference(wave: torch.Tensor, sample_rate: int) -> torch.Tensor:
    """The reference recipe written out with torch/torchaudio primitives (the paper's reference code)."""
    n_fft, hop = sample_rate // 20, sample_rate // 100
    spec = (
        torch.stft(
            wave,
            n_fft=n_fft,
            hop_length=hop,
            win_length=n_fft,
            window=torch.hann_window(n_fft),
            center=True,
            return_complex=True,
        )
        .abs()
        .pow(2)
    )
    mel = torchaudio.transforms.MelScale(n_mels=128, sample_rate=sample_rate, n_stft=n_fft // 2 + 1)(spec)
    x = torch.log(mel + 1e-6)
    lo, hi = x.amin(dim=(-2, -1), keepdim=True), x.amax(dim=(-2, -1), keepdim=True)
    return (x - lo) / (hi - lo + 1e-8)


@pytest.mark.parametrize("sample_rate", [16000, 32000, 48000])
def test_matches_reference_recipe(tmp_path, sample_rate):
    clips = _chirps(tmp_path, sample_rate, [1.0, 1.0])
    wave = torch.stack(clips)
    front = MelFrontend(sample_rate)
    out, mask = front(wave)
    assert mask is None
    assert out.shape == (2, 128, wave.shape[1] // (sample_rate // 100) + 1)
    assert front.n_fft == sample_rate // 20 and front.hop_length == sample_rate // 100
    torch.testing.assert_close(out, _reference(wave, sample_rate), atol=1e-5, rtol=0)
    assert float(out.min()) == 0.0 and 0.999 < float(out.max()) <= 1.0


def test_padded_clip_equals_clip_alone(tmp_path):
    sr = 16000
    lengths = [0.73, 1.5, 1.0]  # 0.73 s is not a whole number of hops
    clips = _chirps(tmp_path, sr, lengths)
    T = max(c.numel() for c in clips)
    wave = torch.zeros(len(clips), T)
    mask = torch.ones(len(clips), T, dtype=torch.bool)
    for i, c in enumerate(clips):
        wave[i, : c.numel()] = c
        mask[i, : c.numel()] = False
    front = MelFrontend(sr)
    batch, frame_mask = front(wave, mask)
    for i, c in enumerate(clips):
        alone, _ = front(c[None])
        n = alone.shape[-1]
        assert n == c.numel() // 160 + 1
        assert not frame_mask[i, :n].any() and frame_mask[i, n:].all()
        torch.testing.assert_close(batch[i, :, :n], alone[0], atol=1e-6, rtol=0)
        assert torch.count_nonzero(batch[i, :, n:]) == 0
    # the unpadded clip gives the same result with or without an all-False mask
    torch.testing.assert_close(batch[1], front(wave[1:2])[0][0], atol=1e-6, rtol=0)


def test_statistics_ignore_padding_and_match_definition(tmp_path):
    sr = 16000
    clips = _chirps(tmp_path, sr, [0.6, 1.2])
    wave = torch.zeros(2, clips[1].numel())
    mask = torch.ones_like(wave, dtype=torch.bool)
    for i, c in enumerate(clips):
        wave[i, : c.numel()] = c
        mask[i, : c.numel()] = False
    stats = log_mel_statistics(wave, sr, mask)
    assert stats.shape == (2, 256)
    for i, c in enumerate(clips):
        logmel, _ = MelFrontend(sr).log_mel(c[None])
        expected = torch.cat([logmel.mean(-1), logmel.std(-1, correction=0)], dim=-1)[0]
        torch.testing.assert_close(stats[i], expected, atol=1e-4, rtol=1e-5)
        torch.testing.assert_close(log_mel_statistics(c[None], sr)[0], expected, atol=1e-4, rtol=1e-5)
    # louder audio moves the means by log(gain^2) exactly (power spectrum), std unchanged
    louder = log_mel_statistics(wave * 2.0, sr, mask)
    assert torch.allclose(louder[:, :128] - stats[:, :128], torch.full((2, 128), np.log(4.0)), atol=1e-2)


def test_no_state_dict_entries_and_float32_under_low_precision():
    front = MelFrontend(16000)
    assert len(front.state_dict()) == 0
    wave = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0)).bfloat16()
    out, _ = front(wave)
    assert out.dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out2, _ = front(wave)
    assert out2.dtype == torch.float32
    torch.testing.assert_close(out, out2)


def test_errors_name_the_problem():
    front = MelFrontend(16000)
    wave = torch.randn(2, 8000)
    leading = torch.zeros(2, 8000, dtype=torch.bool)
    leading[0, :100] = True
    with pytest.raises(AudioError, match="end of each clip"):
        front(wave, leading)
    with pytest.raises(AudioError, match="bool tensor"):
        front(wave, torch.zeros(2, 10, dtype=torch.bool))
    with pytest.raises(AudioError, match="more than 400"):
        front(torch.randn(1, 300))
    short = torch.zeros(2, 8000, dtype=torch.bool)
    short[1, 200:] = True
    with pytest.raises(AudioError, match="shorter than half a window"):
        front(wave, short)
    with pytest.raises(AudioError, match=r"\[B, T\]"):
        front(torch.randn(8000))
    with pytest.raises(ConfigError, match="multiple of 100"):
        MelFrontend(22050)
