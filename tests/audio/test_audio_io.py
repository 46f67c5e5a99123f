"""avexlab.audio.io: real files written with soundfile, real torch tensors."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from tolerance import assert_close_f32, f32_tol

from avexlab.audio import crop_or_pad, load_audio, register_uri_scheme, save_audio, sliding_windows
from avexlab.audio.io import audio_info, registered_uri_schemes
from avexlab.errors import AudioError, ConfigError


def _ramp(n: int, channels: int = 1) -> np.ndarray:
    """Distinct, exactly representable values per sample: [n, C] float32 in (-1, 1)."""
    t = (np.arange(n) % 200 - 100) / 128.0
    return np.stack([t * (c + 1) / (channels + 1) for c in range(channels)], axis=1).astype(np.float32)


def test_segment_read_matches_slice_of_whole_file(tmp_path):
    data = _ramp(48000, 2)
    p = tmp_path / "a.wav"
    sf.write(p, data, 16000, subtype="FLOAT")
    seg, sr = load_audio(p, start_s=0.5, end_s=1.25, mono=False)
    assert sr == 16000 and seg.dtype == torch.float32
    assert seg.shape == (2, 12000)
    assert torch.equal(seg, torch.from_numpy(data[8000:20000].T))  # float samples read back as written
    mono, _ = load_audio(p, start_s=0.5, end_s=1.25)
    part = data[8000:20000]
    # the mean of 2 channels: a sum and a division, relative to the channels' mean magnitude
    tol = f32_tol(part.mean(1), ops=2, scale=np.abs(part).mean(1))
    assert_close_f32(mono, part.mean(1), tol, what="mono mix-down")


def test_resampling_keeps_duration_and_tone(tmp_path):
    sr_in = 44100
    t = np.arange(sr_in) / sr_in
    p = tmp_path / "tone.flac"
    sf.write(p, 0.5 * np.sin(2 * np.pi * 1000 * t), sr_in)
    wave, sr = load_audio(p, sample_rate=16000)
    assert sr == 16000 and wave.shape == (16000,)
    spec = torch.fft.rfft(wave).abs()
    assert int(spec.argmax()) == pytest.approx(1000, abs=1)  # 1 Hz bins for 1 s


def test_resampling_equals_torchaudio_functional(tmp_path):
    import torchaudio.functional as taf

    x = np.random.default_rng(0).uniform(-0.5, 0.5, 22050).astype(np.float32)
    sf.write(tmp_path / "x.wav", x, 22050, subtype="FLOAT")
    import torchaudio.transforms as tat

    for target in (16000, 8000, 48000):
        w, _ = load_audio(tmp_path / "x.wav", target)
        ref = taf.resample(torch.from_numpy(x), 22050, target)
        # A polyphase FIR filter: each output is an inner product of a kernel row with the input, rounded
        # relative to sum |tap| x max |input| over the row's length (both sides). And the kernels differ: the
        # functional resample computes its taps in float32, whose rounding (sinc arguments of hundreds, so
        # 1e-5 per tap) is measured as torchaudio's float32 kernel against its float64 one, and carried
        # through the row: max |input| x sum |tap error|.
        kernel = tat.Resample(22050, target).kernel
        scale = float(np.abs(x).max()) * float(kernel.abs().sum(-1).max())
        tap_err = (
            tat.Resample(22050, target, dtype=torch.float32).kernel.double()
            - tat.Resample(22050, target, dtype=torch.float64).kernel
        ).abs()
        tol = f32_tol(ref, ops=kernel.shape[-1] + 1, scale=scale)
        tol += float(np.abs(x).max()) * float(tap_err.sum(-1).max())
        assert_close_f32(w, ref, tol, what=f"22050 -> {target} Hz")


def test_huge_but_finite_samples_load(tmp_path):
    x = np.full(4096, 3e38, dtype=np.float32)  # the float32 sum overflows; every sample is finite
    sf.write(tmp_path / "huge.wav", x, 16000, subtype="FLOAT")
    w, _ = load_audio(tmp_path / "huge.wav")
    assert torch.equal(w, torch.from_numpy(x))


def test_save_audio_roundtrip_is_atomic_and_exact(tmp_path):
    x = torch.from_numpy(_ramp(1000, 3).T.copy())
    out = save_audio(tmp_path / "sub" / "x.wav", x, 22050, subtype="FLOAT")
    assert [p.name for p in out.parent.iterdir()] == ["x.wav"]  # no temporary left behind
    y, sr = load_audio(out, mono=False)
    assert sr == 22050
    assert torch.equal(y, x)  # FLOAT subtype: the samples themselves
    assert audio_info(out).channels == 3


def test_save_audio_rejects_non_finite(tmp_path):
    with pytest.raises(AudioError, match="NaN"):
        save_audio(tmp_path / "x.wav", np.array([0.0, np.nan]), 16000)
    assert not list(tmp_path.iterdir())


def test_uri_scheme_loader_gets_segment_and_resampling():
    calls = []

    cached = np.arange(8000, dtype=np.float32) / 8000

    def loader(uri: str):
        calls.append(uri)
        return cached, 8000

    register_uri_scheme("testuri", loader, replace=True)
    assert "testuri" in registered_uri_schemes()
    w, sr = load_audio("testuri://abc?x=1", start_s=0.25, end_s=0.5)
    assert calls == ["testuri://abc?x=1"] and sr == 8000
    assert torch.equal(
        w, torch.arange(2000, 4000, dtype=torch.float32) / 8000
    )  # a slice of the loader's data
    w16, sr16 = load_audio("testuri://abc", sample_rate=16000)
    assert sr16 == 16000 and w16.shape == (16000,)
    w[:] = 0  # the result never aliases the loader's data
    assert torch.equal(load_audio("testuri://abc")[0], torch.arange(8000, dtype=torch.float32) / 8000)
    with pytest.raises(ConfigError, match="already registered"):
        register_uri_scheme("testuri", lambda u: (np.zeros(1), 1))


def test_unknown_uri_scheme_is_a_clear_error():
    with pytest.raises(AudioError, match="'nosuch'.*register"):
        load_audio("nosuch://x")


def test_crop_policies_and_mask():
    x = torch.arange(10.0)
    out, mask = crop_or_pad(x, 1, 4, "start")
    assert out.tolist() == [0, 1, 2, 3] and not mask.any()
    out, _ = crop_or_pad(x, 1, 4, "centre")
    assert out.tolist() == [3, 4, 5, 6]
    out, mask = crop_or_pad(x, 1, 13, "random")
    assert out.tolist() == list(range(10)) + [0, 0, 0] and mask.tolist() == [False] * 10 + [True] * 3


def test_random_crop_is_deterministic_per_generator_and_varies_per_row():
    x = torch.arange(1000.0).repeat(64, 1)
    a, _ = crop_or_pad(x, 100, 1.0, "random", torch.Generator().manual_seed(3))
    b, _ = crop_or_pad(x, 100, 1.0, "random", torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    starts = a[:, 0]
    assert starts.unique().numel() > 1
    assert torch.equal(a - starts[:, None], torch.arange(100.0).expand(64, 100))


def test_crop_rejects_bad_policy_and_zero_length():
    with pytest.raises(ConfigError, match="policy"):
        crop_or_pad(torch.zeros(10), 10, 0.5, "middle")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="at least one sample"):
        crop_or_pad(torch.zeros(10), 10, 0.01)


def test_sliding_windows_layout():
    x = torch.arange(10.0)
    w, starts, mask = sliding_windows(x, 2, window_s=2.0, hop_s=1.5)  # L=4, H=3
    assert w.tolist() == [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    assert starts.tolist() == [0.0, 1.5, 3.0] and not mask.any()
    w, starts, mask = sliding_windows(torch.arange(11.0), 2, 2.0, 1.5)
    assert w.shape == (4, 4) and mask[-1].tolist() == [False, False, True, True]
    w, _, _ = sliding_windows(torch.arange(11.0), 2, 2.0, 1.5, pad_last=False)
    assert w.shape == (3, 4)
    w, _, _ = sliding_windows(torch.arange(3.0), 2, 2.0, 1.5, pad_last=False)
    assert w.shape == (0, 4)


@settings(max_examples=60, deadline=None)
@given(
    T=st.integers(1, 400),
    B=st.integers(1, 4),
    L=st.integers(1, 300),
    policy=st.sampled_from(["start", "random", "centre"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_crop_or_pad_properties(T, B, L, policy, seed):
    x = torch.randn(B, T)
    out, mask = crop_or_pad(x, 100, L / 100, policy, torch.Generator().manual_seed(seed))
    assert out.shape == mask.shape == (B, L)
    kept = (~mask).sum(1)
    assert (kept == min(T, L)).all()
    assert (out[mask] == 0).all()
    # Every output row is a contiguous run of its input row.
    for b in range(B):
        n = int(kept[b])
        row = out[b, :n]
        offs = [o for o in range(T - n + 1) if torch.equal(x[b, o : o + n], row)]
        assert offs


@settings(max_examples=60, deadline=None)
@given(T=st.integers(1, 500), L=st.integers(1, 120), H=st.integers(1, 120), pad_last=st.booleans())
def test_sliding_windows_properties(T, L, H, pad_last):
    x = torch.randn(T)
    w, starts, mask = sliding_windows(x, 10, L / 10, H / 10, pad_last=pad_last)
    assert w.shape == mask.shape and w.shape[1] == L and starts.shape == (w.shape[0],)
    idx = torch.round(starts * 10).long()
    for k in range(w.shape[0]):
        n = int((~mask[k]).sum())
        assert torch.equal(w[k, :n], x[idx[k] : idx[k] + n])  # windows are copies
        assert (w[k, n:] == 0).all() and n == min(L, T - int(idx[k]))
    if pad_last:
        assert w.shape[0] >= 1 and int(idx[-1]) < T
        if H <= L:
            covered = torch.zeros(T, dtype=torch.bool)
            for k in range(w.shape[0]):
                covered[int(idx[k]) : int(idx[k]) + L] = True
            assert covered.all()
    else:
        assert not mask.any()
        assert w.shape[0] == (0 if T < L else (T - L) // H + 1)
