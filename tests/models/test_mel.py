"""The reference EfficientNet mel frontend: parity with the reference recipe, padding, statistics, errors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio
from tolerance import assert_close_f32, mel_frontend_log_tol, min_max_tol, statistics_tol

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


def _reference(wave: torch.Tensor, sample_rate: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference recipe written out with torch/torchaudio primitives (the paper's reference code):
    ``log(mel + 1e-6)`` and its per-clip min-max, both ``[B, 128, F]``."""
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
    scale = torchaudio.transforms.MelScale(n_mels=128, sample_rate=sample_rate, n_stft=n_fft // 2 + 1)
    # Both sides build the filters with torchaudio's melscale_fbanks: identical weights, no weight error.
    assert torch.equal(scale.fb, MelFrontend(sample_rate).mel_fbank)
    x = torch.log(scale(spec) + 1e-6)
    lo, hi = x.amin(dim=(-2, -1), keepdim=True), x.amax(dim=(-2, -1), keepdim=True)
    return x, (x - lo) / (hi - lo + 1e-8)


@pytest.mark.parametrize("sample_rate", [16000, 32000, 48000])
def test_matches_reference_recipe(tmp_path, sample_rate):
    clips = _chirps(tmp_path, sample_rate, [1.0, 1.0])
    wave = torch.stack(clips)
    front = MelFrontend(sample_rate)
    out, mask = front(wave)
    assert mask is None
    assert out.shape == (2, 128, wave.shape[1] // (sample_rate // 100) + 1)
    assert front.n_fft == sample_rate // 20 and front.hop_length == sample_rate // 100
    ref_log, ref_out = _reference(wave, sample_rate)
    log_mel, _ = front.log_mel(wave)
    for b in range(2):
        tol = mel_frontend_log_tol(wave[b], ref_log[b], sample_rate)
        assert_close_f32(log_mel[b], ref_log[b], tol, what=f"clip {b} log-mel")
        assert_close_f32(out[b], ref_out[b], min_max_tol(ref_log[b], tol), what=f"clip {b} min-max")
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
    batch_log, _ = front.log_mel(wave, mask)
    for i, c in enumerate(clips):
        alone, _ = front(c[None])
        alone_log, _ = front.log_mel(c[None])
        n = alone.shape[-1]
        assert n == c.numel() // 160 + 1
        assert not frame_mask[i, :n].any() and frame_mask[i, n:].all()
        # The same frames (reflected at the clip's own end) through an FFT of another batch shape.
        tol = mel_frontend_log_tol(c, alone_log[0], sr)
        assert_close_f32(batch_log[i, :, :n], alone_log[0], tol, what=f"clip {i} log-mel, padded vs alone")
        assert_close_f32(batch[i, :, :n], alone[0], min_max_tol(alone_log[0], tol), what=f"clip {i} min-max")
        assert torch.count_nonzero(batch[i, :, n:]) == 0
    # the unpadded clip gives the same result with or without an all-False mask
    tol = min_max_tol(
        front.log_mel(wave[1:2])[0][0], mel_frontend_log_tol(wave[1], front.log_mel(wave[1:2])[0][0], sr)
    )
    assert_close_f32(batch[1], front(wave[1:2])[0][0], tol, what="unpadded clip, mask vs none")


def test_statistics_ignore_padding_and_match_definition(tmp_path):
    sr = 16000
    clips = _chirps(tmp_path, sr, [0.6, 1.2])
    wave = torch.zeros(2, clips[1].numel())
    mask = torch.ones_like(wave, dtype=torch.bool)
    for i, c in enumerate(clips):
        wave[i, : c.numel()] = c
        mask[i, : c.numel()] = False
    stats = log_mel_statistics(wave, sr, mask)
    louder = log_mel_statistics(wave * 2.0, sr, mask)
    assert stats.shape == (2, 256)
    for i, c in enumerate(clips):
        logmel, _ = MelFrontend(sr).log_mel(c[None])
        expected = torch.cat([logmel.mean(-1), logmel.std(-1, correction=0)], dim=-1)[0]
        tol_x = mel_frontend_log_tol(c, logmel[0], sr)
        tol = statistics_tol(logmel[0], tol_x)
        assert_close_f32(stats[i], expected, tol, what=f"clip {i} statistics, padded batch")
        assert_close_f32(
            log_mel_statistics(c[None], sr)[0], expected, tol, what=f"clip {i} statistics, alone"
        )
        # Twice the amplitude is four times the power in every bin: log(4 m + 1e-6) - log(m + 1e-6) per
        # frame, log(4) where m >> 1e-6. The expected shift of the means is computed from this clip's own
        # mel powers m; its error is at most 3 x tol_x per frame (the slope of that difference in log m).
        m = (logmel[0].double().exp() - 1e-6).clamp_min(0.0)
        shift = (torch.log(4 * m + 1e-6) - torch.log(m + 1e-6)).mean(-1)
        loud_log, _ = MelFrontend(sr).log_mel(2.0 * c[None])
        tol_shift = (
            statistics_tol(loud_log[0], mel_frontend_log_tol(2.0 * c, loud_log[0], sr))[:128]
            + tol[:128]
            + 3 * tol_x.mean(-1)
        )
        assert_close_f32(louder[i, :128] - stats[i, :128], shift, tol_shift, what=f"clip {i} mean shift x2")


def test_no_state_dict_entries_and_float32_under_low_precision():
    front = MelFrontend(16000)
    assert len(front.state_dict()) == 0
    wave = torch.randn(1, 16000, generator=torch.Generator().manual_seed(0)).bfloat16()
    out, _ = front(wave)
    assert out.dtype == torch.float32
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out2, _ = front(wave)
    assert out2.dtype == torch.float32
    assert torch.equal(out, out2)  # autocast is off inside: the very same float32 computation


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
