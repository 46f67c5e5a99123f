"""Batched Kaldi filter banks, numerically identical to ``torchaudio.compliance.kaldi.fbank``.

``torchaudio.compliance.kaldi.fbank`` takes one clip at a time; the reference BEATs and EAT code call it in
a Python loop on the CPU. :class:`KaldiFbank` computes the same features for a whole batch ``[B, T]`` on
the batch's device in one pass (framing with ``unfold``, one ``rfft``, one matrix product with the mel
banks), and turns a sample-level padding mask into a frame-level one.

Only ``snip_edges=True`` framing and ``dither=0`` are supported (what BEATs and EAT use): both make the
features deterministic and independent of the rest of the batch.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avexlab.errors import AudioError, ConfigError, expected_found

WindowType = Literal["povey", "hanning", "hamming", "rectangular"]

_EPS = torch.finfo(torch.float32).eps  # Kaldi's floor for log energies (float32 epsilon)


def _mel(freq: Tensor) -> Tensor:
    return 1127.0 * torch.log1p(freq / 700.0)


def kaldi_mel_banks(
    num_mel_bins: int, padded_window_size: int, sample_rate: float, low_freq: float, high_freq: float
) -> Tensor:
    """Kaldi's triangular mel filters ``[num_mel_bins, padded_window_size // 2 + 1]`` float32.

    ``high_freq <= 0`` is an offset from the Nyquist frequency (Kaldi's convention, 0 means ``sr / 2``).
    The last column (the Nyquist bin) is zero, as in Kaldi.
    """
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq += nyquist
    if not 0.0 <= low_freq < high_freq <= nyquist:
        raise ConfigError(
            expected_found(
                "mel range",
                f"0 <= low_freq < high_freq <= {nyquist:g} Hz (sr / 2)",
                f"low_freq={low_freq:g}, high_freq={high_freq:g}",
                "Pick a range inside the Nyquist band of the sample rate.",
            )
        )
    num_fft_bins = padded_window_size // 2
    fft_bin_width = sample_rate / padded_window_size
    mel_low = 1127.0 * math.log(1.0 + low_freq / 700.0)
    mel_high = 1127.0 * math.log(1.0 + high_freq / 700.0)
    delta = (mel_high - mel_low) / (num_mel_bins + 1)
    b = torch.arange(num_mel_bins, dtype=torch.float32).unsqueeze(1)
    left = mel_low + b * delta
    center = mel_low + (b + 1.0) * delta
    right = mel_low + (b + 2.0) * delta
    mel = _mel(fft_bin_width * torch.arange(num_fft_bins, dtype=torch.float32)).unsqueeze(0)
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return F.pad(banks, (0, 1))


def kaldi_window(window_type: WindowType, size: int, blackman_coeff: float = 0.42) -> Tensor:
    """The analysis window ``[size]`` float32 (symmetric, as Kaldi)."""
    if window_type == "hanning":
        return torch.hann_window(size, periodic=False, dtype=torch.float32)
    if window_type == "hamming":
        return torch.hamming_window(size, periodic=False, alpha=0.54, beta=0.46, dtype=torch.float32)
    if window_type == "povey":
        return torch.hann_window(size, periodic=False, dtype=torch.float32).pow(0.85)
    if window_type == "rectangular":
        return torch.ones(size, dtype=torch.float32)
    raise ConfigError(
        expected_found(
            "window_type",
            "'povey', 'hanning', 'hamming' or 'rectangular'",
            repr(window_type),
            "Fix the config.",
        )
    )


def valid_lengths(padding_mask: Tensor) -> Tensor:
    """Number of real samples per clip ``[B]`` int64 from a sample padding mask ``[B, T]`` (True = pad).

    Padding must be a suffix (real samples first, then padding); anything else raises AudioError (checked
    in eager mode; a ``torch.compile`` trace trusts the mask).
    """
    if padding_mask.dim() != 2:
        raise AudioError(
            expected_found("padding_mask", "a [B, T] bool tensor", f"shape {tuple(padding_mask.shape)}", "")
        )
    pm = padding_mask.to(torch.bool)
    # The check reads one bool back from the device; inside torch.compile it is skipped (no graph break).
    if pm.shape[1] > 1 and not torch.compiler.is_compiling() and bool((pm[:, :-1] & ~pm[:, 1:]).any()):
        raise AudioError(
            expected_found(
                "padding_mask",
                "padding only at the end of each clip (False... then True...)",
                "a padded sample followed by a real one",
                "Put the real samples first and pad at the end.",
            )
        )
    return (~pm).sum(dim=1)


class KaldiFbank(nn.Module):
    """Kaldi fbank for a batch: ``wave [B, T]`` float at ``sample_rate`` Hz -> ``[B, F, M]`` float32.

    ``F = 1 + (T - win) // hop`` frames (snip_edges) with ``win = int(sample_rate * frame_length_ms / 1000)``
    and ``hop = int(sample_rate * frame_shift_ms / 1000)`` samples, ``M = num_mel_bins`` (+1 when
    ``use_energy``). Per frame: remove the DC offset, pre-emphasis, window, zero-pad to a power of two,
    power spectrum, mel banks (``low_freq`` .. ``sr / 2 + high_freq`` Hz), log floored at float32 eps.
    Matches ``torchaudio.compliance.kaldi.fbank(wave[b:b+1], ..., dither=0)`` clip by clip.

    The mel banks and window are non-persistent buffers: they follow ``.to(device)`` and never appear in
    a state dict. Autocast is disabled inside: features are always float32.
    """

    def __init__(
        self,
        *,
        sample_rate: int = 16000,
        num_mel_bins: int = 128,
        frame_length_ms: float = 25.0,
        frame_shift_ms: float = 10.0,
        window_type: WindowType = "povey",
        preemphasis: float = 0.97,
        remove_dc_offset: bool = True,
        low_freq: float = 20.0,
        high_freq: float = 0.0,
        use_energy: bool = False,
        raw_energy: bool = True,
        energy_floor: float = 1.0,
        htk_compat: bool = False,
        use_log_fbank: bool = True,
        use_power: bool = True,
        blackman_coeff: float = 0.42,
    ) -> None:
        super().__init__()
        self.sample_rate = int(sample_rate)
        self.win = int(sample_rate * frame_length_ms * 0.001)
        self.hop = int(sample_rate * frame_shift_ms * 0.001)
        if self.win < 2 or self.hop < 1:
            raise ConfigError(
                expected_found(
                    "frame length/shift",
                    "at least 2 and 1 samples",
                    f"{self.win} and {self.hop} samples at {sample_rate} Hz",
                    "Use longer frames.",
                )
            )
        self.n_fft = 1 << (self.win - 1).bit_length()
        self.num_mel_bins = int(num_mel_bins)
        self.preemphasis = float(preemphasis)
        self.remove_dc_offset = bool(remove_dc_offset)
        self.use_energy = bool(use_energy)
        self.raw_energy = bool(raw_energy)
        self.energy_floor = float(energy_floor)
        self.htk_compat = bool(htk_compat)
        self.use_log_fbank = bool(use_log_fbank)
        self.use_power = bool(use_power)
        self.register_buffer("window", kaldi_window(window_type, self.win, blackman_coeff), persistent=False)
        self.register_buffer(
            "mel_banks",
            kaldi_mel_banks(self.num_mel_bins, self.n_fft, float(sample_rate), low_freq, high_freq)
            .t()
            .contiguous(),
            persistent=False,
        )

    def num_frames(self, num_samples: Tensor | int) -> Tensor | int:
        """Frames for clips of ``num_samples`` samples (0 when shorter than one frame)."""
        if isinstance(num_samples, Tensor):
            return torch.where(num_samples >= self.win, 1 + (num_samples - self.win) // self.hop, 0)
        return 0 if num_samples < self.win else 1 + (num_samples - self.win) // self.hop

    def frame_padding_mask(self, padding_mask: Tensor | None, num_frames: int) -> Tensor | None:
        """``[B, F]`` bool, True where a frame is not entirely made of real samples; None if no padding."""
        if padding_mask is None:
            return None
        n_valid = self.num_frames(valid_lengths(padding_mask))
        idx = torch.arange(num_frames, device=padding_mask.device)
        return idx.unsqueeze(0) >= n_valid.unsqueeze(1)

    def forward(self, wave: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``wave [B, T]`` (+ sample mask ``[B, T]``, True = pad) -> ``(fbank [B, F, M], frame mask [B, F])``."""
        if wave.dim() != 2:
            raise AudioError(
                expected_found("wave", "[B, T] samples", f"shape {tuple(wave.shape)}", "Add a batch axis.")
            )
        if wave.shape[1] < self.win:
            raise AudioError(
                expected_found(
                    "clip length",
                    f">= {self.win} samples (one {self.win / self.sample_rate * 1000:g} ms frame)",
                    f"{wave.shape[1]} samples",
                    "Pad or drop clips shorter than one frame.",
                )
            )
        with torch.autocast(device_type=wave.device.type, enabled=False):
            frames = wave.float().unfold(-1, self.win, self.hop)  # [B, F, win]
            if self.remove_dc_offset:
                frames = frames - frames.mean(dim=-1, keepdim=True)
            energy = None
            if self.use_energy and self.raw_energy:
                energy = frames.pow(2).sum(-1).clamp_min(_EPS).log()
            if self.preemphasis != 0.0:
                prev = torch.cat([frames[..., :1], frames[..., :-1]], dim=-1)
                frames = frames - self.preemphasis * prev
            frames = frames * self.window
            if self.use_energy and not self.raw_energy:
                energy = frames.pow(2).sum(-1).clamp_min(_EPS).log()
            spec = torch.fft.rfft(frames, n=self.n_fft).abs()
            if self.use_power:
                spec = spec.pow(2)
            feats = spec @ self.mel_banks
            if self.use_log_fbank:
                feats = feats.clamp_min(_EPS).log()
            if energy is not None:
                if self.energy_floor > 0.0:
                    energy = energy.clamp_min(math.log(self.energy_floor))
                energy = energy.unsqueeze(-1)
                feats = torch.cat([feats, energy] if self.htk_compat else [energy, feats], dim=-1)
        return feats, self.frame_padding_mask(padding_mask, feats.shape[1])
