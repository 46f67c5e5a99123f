"""The batched Kaldi fbank equals torchaudio's per-clip ``kaldi.fbank``."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio.compliance.kaldi as ta_kaldi
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerance import assert_close_f32, kaldi_fbank_tol

from avexlab.audio.fbank import KaldiFbank, valid_lengths
from avexlab.errors import AudioError, ConfigError


def _ta_kwargs(kw: dict) -> dict:
    """Our KaldiFbank options as torchaudio's ``kaldi.fbank`` names them (window excluded)."""
    return {
        "frame_length": kw.get("frame_length_ms", 25.0),
        "frame_shift": kw.get("frame_shift_ms", 10.0),
        "htk_compat": kw.get("htk_compat", False),
        "use_energy": kw.get("use_energy", False),
        "energy_floor": kw.get("energy_floor", 1.0),
        "use_log_fbank": kw.get("use_log_fbank", True),
    }


def _reference(wave: torch.Tensor, sr: int, mel: int, **kw) -> torch.Tensor:
    ta = {**_ta_kwargs(kw), "window_type": kw.get("window_type", "povey")}
    return torch.stack(
        [
            ta_kaldi.fbank(wave[i : i + 1], num_mel_bins=mel, sample_frequency=sr, dither=0.0, **ta)
            for i in range(wave.shape[0])
        ]
    )


def _assert_matches(
    ours: torch.Tensor, wave: torch.Tensor, ref: torch.Tensor, sr: int, mel: int, **kw
) -> None:
    """``ours`` against torchaudio's ``ref`` (both ``[B, F, C]``) within the float32 rounding bound of the
    Kaldi fbank of each clip (``kaldi_fbank_tol``: FFT, filter weights, filter product, log, energy)."""
    for b in range(wave.shape[0]):
        tol = kaldi_fbank_tol(wave[b], ref[b], sample_frequency=sr, num_mel_bins=mel, **_ta_kwargs(kw))
        assert_close_f32(ours[b], ref[b], tol, what=f"clip {b} of {wave.shape[0]}, {sr} Hz, {kw}")


@pytest.mark.parametrize("sr", [16000, 32000, 48000])
@pytest.mark.parametrize(
    "kw",
    [
        {"window_type": "povey"},  # BEATs
        {"window_type": "hanning", "htk_compat": True},  # EAT
        {"use_energy": True, "htk_compat": True},
        {"use_energy": True, "energy_floor": 0.0},
        {"frame_length_ms": 20.0, "frame_shift_ms": 5.0, "window_type": "hamming"},
    ],
)
def test_matches_torchaudio_on_real_audio(tmp_path, sr: int, kw: dict) -> None:
    rng = np.random.default_rng(sr)
    clips = []
    for i, seconds in enumerate((0.3, 0.55, 0.81)):
        n = int(seconds * sr)
        t = np.arange(n) / sr
        audio = 0.4 * np.sin(2 * np.pi * (300 + 900 * i) * t) + 0.05 * rng.standard_normal(n)
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, audio.astype(np.float32), sr, subtype="PCM_16")
        data, file_sr = sf.read(path, dtype="float32")
        assert file_sr == sr
        clips.append(torch.from_numpy(data) * 2**15)
    fb = KaldiFbank(sample_rate=sr, num_mel_bins=80, **kw)
    for clip in clips:  # several lengths, one clip per batch
        ours, mask = fb(clip.unsqueeze(0))
        ref = _reference(clip.unsqueeze(0), sr, 80, **kw)
        assert mask is None
        assert ours.shape == ref.shape
        _assert_matches(ours, clip.unsqueeze(0), ref, sr, 80, **kw)
    # The same clips cropped to a common length in one batch.
    n = min(len(c) for c in clips)
    batch = torch.stack([c[:n] for c in clips])
    _assert_matches(fb(batch)[0], batch, _reference(batch, sr, 80, **kw), sr, 80, **kw)


def test_linear_fbank_matches_relatively() -> None:
    wave = torch.randn(2, 4000, generator=torch.Generator().manual_seed(1)) * 1000
    fb = KaldiFbank(num_mel_bins=40, use_log_fbank=False)
    ref = _reference(wave, 16000, 40, use_log_fbank=False)
    _assert_matches(fb(wave)[0], wave, ref, 16000, 40, use_log_fbank=False)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(min_value=400, max_value=3000),
    scale=st.floats(min_value=1e-2, max_value=3e4),
    seed=st.integers(min_value=0, max_value=2**16),
    window=st.sampled_from(["povey", "hanning"]),
)
def test_matches_torchaudio_property(n: int, scale: float, seed: int, window: str) -> None:
    wave = torch.randn(2, n, generator=torch.Generator().manual_seed(seed)) * scale
    fb = KaldiFbank(num_mel_bins=32, window_type=window)
    ref = _reference(wave, 16000, 32, window_type=window)
    _assert_matches(fb(wave)[0], wave, ref, 16000, 32, window_type=window)


def test_frame_padding_mask_marks_frames_touching_padding() -> None:
    fb = KaldiFbank(num_mel_bins=16)  # 400-sample frames, 160-sample hop
    wave = torch.randn(3, 2000)
    mask = torch.zeros(3, 2000, dtype=torch.bool)
    mask[1, 1000:] = True  # 1000 real samples -> 1 + 600 // 160 = 4 whole frames
    mask[2, 400:] = True  # exactly one frame
    feats, fmask = fb(wave, mask)
    assert fmask is not None and fmask.shape == feats.shape[:2] == (3, 11)
    assert fmask.sum(1).tolist() == [0, 11 - 4, 11 - 1]
    # Real frames do not depend on what the padding holds.
    noisy = wave.clone()
    noisy[mask] = 7.0
    # the same real frames in the same batch shape: every row's operations are its own, bit for bit
    assert torch.equal(fb(noisy, mask)[0][~fmask], feats[~fmask])


def test_bad_inputs_raise_clear_errors() -> None:
    fb = KaldiFbank(num_mel_bins=16)
    with pytest.raises(AudioError, match=r"\[B, T\]"):
        fb(torch.zeros(1000))
    with pytest.raises(AudioError, match="400 samples"):
        fb(torch.zeros(2, 100))
    holes = torch.zeros(1, 1000, dtype=torch.bool)
    holes[0, 10] = True
    with pytest.raises(AudioError, match="padding only at the end"):
        valid_lengths(holes)
    with pytest.raises(ConfigError, match="window_type"):
        KaldiFbank(window_type="blackmann")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="mel range"):
        KaldiFbank(low_freq=9000.0)
