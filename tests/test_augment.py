"""Noise injection and mixup: SNR exactness, padding awareness, label OR, identity at p=0, determinism."""

from __future__ import annotations

import math

import numpy as np
import pytest
import soundfile as sf
import torch
from tolerance import assert_close_f32, f32_tol, rounding_k, unit_roundoff

from avexlab.augment import (
    Augmenter,
    add_noise,
    mixup,
    noise_bank_from_waves,
    preview,
    signal_power,
)
from avexlab.config import AugmentConfig, MixupConfig, NoiseConfig
from avexlab.errors import AudioError, ConfigError


def _batch(B: int = 6, T: int = 4000, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(T) / 16000
    freqs = 200 + 800 * torch.rand(B, 1, generator=g)
    wave = 0.3 * torch.sin(2 * torch.pi * freqs * t) + 0.01 * torch.randn(B, T, generator=g)
    lengths = torch.randint(T // 3, T + 1, (B,), generator=g)
    lengths[0] = T
    mask = torch.arange(T)[None, :] >= lengths[:, None]
    return wave.masked_fill(mask, 0.0), mask


def _bank(K: int = 3, L: int = 1500, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return noise_bank_from_waves([torch.randn(L - 100 * k, generator=g) * (k + 1) for k in range(K)])


def test_measured_snr_equals_drawn_snr_on_valid_samples() -> None:
    wave, mask = _batch()
    g = torch.Generator().manual_seed(3)
    res = add_noise(wave, _bank(), padding_mask=mask, p=1.0, snr_db=(-10.0, 20.0), generator=g)
    added = res.wave - wave
    measured = 10 * torch.log10(signal_power(wave, mask).double() / signal_power(added, mask).double())
    assert res.info["noise_applied"].all()
    # The signal power is the same call on both sides. The noise power: the library's mean of T squares, the
    # float32 scale (1 rounding, squared: 2), the products s x n (2), the measured mean of T squares, and
    # the subtraction (wave + a) - wave, whose error u (|w| + |a|) per sample is, by Cauchy-Schwarz, at most
    # 2 u (||w|| / ||a|| + 1) = 2 u (10^(snr / 20) + 1) of ||a||^2. In dB: 10 / ln 10 times the relative error.
    n_valid = (~mask).sum(1).max().item()
    snr = res.info["snr_db"]
    rel = unit_roundoff() * (2 * rounding_k(n_valid + 1) + 4 + 2 * (10 ** (snr / 20) + 1))
    assert_close_f32(measured, snr, 10 / math.log(10) * rel, what="measured SNR (dB)")
    assert ((res.info["snr_db"] >= -10) & (res.info["snr_db"] <= 20)).all()
    # Padding stays exactly zero: powers are padding-aware and noise only lands on real samples.
    assert (res.wave[mask] == 0).all()


def test_reference_snr_range_is_selectable() -> None:
    wave, mask = _batch(B=64, T=800)
    g = torch.Generator().manual_seed(0)
    res = add_noise(wave, _bank(), padding_mask=mask, p=1.0, snr_db=(-5.0, 20.0), generator=g)
    snr = res.info["snr_db"]
    assert snr.min() >= -5.0 and snr.max() <= 20.0 and snr.min() < 5.0


def test_p_zero_is_identity_and_p_draws_fraction() -> None:
    wave, mask = _batch(B=8)
    g = torch.Generator().manual_seed(0)
    res = add_noise(wave, _bank(), padding_mask=mask, p=0.0, generator=g)
    assert torch.equal(res.wave, wave)
    res = mixup(wave, torch.eye(8), padding_mask=mask, p=0.0, generator=g)
    assert torch.equal(res.wave, wave) and torch.equal(res.targets, torch.eye(8))
    big = torch.randn(2000, 64)
    res = add_noise(big, _bank(), p=0.5, generator=torch.Generator().manual_seed(1))
    frac = res.info["noise_applied"].float().mean().item()
    assert 0.45 < frac < 0.55
    changed = (res.wave != big).any(dim=1)
    assert torch.equal(changed, res.info["noise_applied"])


def test_mixup_mixes_pairs_and_ors_labels() -> None:
    wave, mask = _batch(B=8)
    targets = torch.zeros(8, 5)
    targets[torch.arange(8), torch.arange(8) % 5] = 1.0
    g = torch.Generator().manual_seed(7)
    res = mixup(wave, targets, padding_mask=mask, p=1.0, n_pairs=3, alpha=0.4, generator=g)
    pairs, lam = res.info["mixup_pairs"], res.info["mixup_lambda"]
    assert pairs.shape == (3, 2) and len(set(pairs.flatten().tolist())) == 6
    for (i, j), lm in zip(pairs.tolist(), lam.tolist(), strict=True):
        expect = lm * wave[i] + (1 - lm) * wave[j]
        # lambda rounded to float32 and 1 - lambda computed from it (whose error, u lambda + u (1 - lambda),
        # is relative to 1, not to 1 - lambda: hence |b| whole), two products and a sum, on either side
        tol = f32_tol(expect, ops=5, scale=lm * wave[i].abs() + (2 - lm) * wave[j].abs())
        assert_close_f32(res.wave[i], expect, tol, what=f"mix of {i} and {j}")
        assert torch.equal(res.targets[i], torch.maximum(targets[i], targets[j]))
        assert torch.equal(res.padding_mask[i], mask[i] & mask[j])
        assert torch.equal(res.wave[j], wave[j]) and torch.equal(res.targets[j], targets[j])
    untouched = sorted(set(range(8)) - set(pairs[:, 0].tolist()))
    assert torch.equal(res.wave[untouched], wave[untouched])
    assert ((lam > 0) & (lam < 1)).all()


def test_mixup_lambda_follows_beta() -> None:
    g = torch.Generator().manual_seed(0)
    res = mixup(torch.randn(4000, 4), p=1.0, n_pairs=2000, alpha=0.4, generator=g)
    lam = res.info["mixup_lambda"].numpy()
    # Beta(0.4, 0.4): mean 0.5, variance ab / ((a+b)^2 (a+b+1)) = 0.16 / (0.64 * 1.8). Sampling error, not
    # rounding: the mean of n draws has standard error sigma / sqrt(n), the variance estimate
    # sqrt((mu4 - sigma^4) / n); 5 standard errors fail a correct sampler with probability < 1e-6.
    from scipy import stats

    beta = stats.beta(0.4, 0.4)
    var = 0.16 / (0.64 * 1.8)
    raw = [beta.moment(k) for k in range(1, 5)]
    mu4 = raw[3] - 4 * raw[2] * raw[0] + 6 * raw[1] * raw[0] ** 2 - 3 * raw[0] ** 4
    n = lam.size
    assert abs(lam.mean() - 0.5) < 5 * math.sqrt(var / n)
    assert abs(lam.var() - var) < 5 * math.sqrt((mu4 - var**2) / n)


def test_mixup_too_small_batch_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="n_pairs=2 needs a batch of at least 4"):
        mixup(torch.randn(3, 10), p=1.0, n_pairs=2)


def test_augmenter_is_deterministic_by_seed() -> None:
    wave, mask = _batch()
    cfg = AugmentConfig(noise=NoiseConfig(p=0.7), mixup=MixupConfig(p=1.0, n_pairs=2))
    targets = torch.eye(6)
    a = Augmenter(cfg, _bank())(wave, mask, targets, generator=torch.Generator().manual_seed(5))
    b = Augmenter(cfg, _bank())(wave, mask, targets, generator=torch.Generator().manual_seed(5))
    c = Augmenter(cfg, _bank())(wave, mask, targets, generator=torch.Generator().manual_seed(6))
    assert torch.equal(a.wave, b.wave) and torch.equal(a.targets, b.targets)
    assert not torch.equal(a.wave, c.wave)


def test_augmenter_needs_a_bank_when_noise_is_on() -> None:
    with pytest.raises(ConfigError, match="no noise bank"):
        Augmenter(AugmentConfig(), None)


def test_bank_from_real_files_and_silent_noise_rejected(tmp_path) -> None:
    rng = np.random.default_rng(0)
    (tmp_path / "sub").mkdir()
    sf.write(tmp_path / "a.wav", (0.1 * rng.standard_normal(1600)).astype(np.float32), 16000)
    sf.write(tmp_path / "sub" / "b.flac", (0.2 * rng.standard_normal(800)).astype(np.float32), 16000)
    waves = [
        torch.from_numpy(sf.read(p, dtype="float32")[0])
        for p in (tmp_path / "a.wav", tmp_path / "sub" / "b.flac")
    ]
    bank = noise_bank_from_waves(waves)
    assert bank.shape == (2, 1600)
    assert torch.equal(bank[1, 800:], bank[1, :800])  # tiled, not zero-padded: the same samples
    with pytest.raises(AudioError, match="silent"):
        noise_bank_from_waves([torch.zeros(100)])


def test_preview_returns_audio_and_ored_labels() -> None:
    wave, mask = _batch(B=4)
    targets = torch.eye(4)
    cfg = AugmentConfig(noise=NoiseConfig(p=1.0), mixup=MixupConfig(p=1.0))
    out = preview(wave, bank=_bank(), targets=targets, padding_mask=mask, cfg=cfg, seed=0)
    assert out["before"].shape == out["after"].shape == (4, wave.shape[1])
    assert not np.array_equal(out["before"], out["after"])
    i, j = out["mixup_pairs"][0]
    assert out["targets_after"][i, i] == 1 and out["targets_after"][i, j] == 1
    assert out["targets_after"].sum() == 5
