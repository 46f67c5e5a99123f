"""The reference EfficientNet mel frontend, batched on the waveform's device, with padding masks.

What the AVEX reference code (``avex.data.audio_utils.AudioProcessor`` with the EfficientNet audio config)
computes, and what :class:`MelFrontend` reproduces when nothing is padded:

1. ``torch.stft`` with a periodic Hann window, window = n_fft = 50 ms, hop = 10 ms, ``center=True`` with
   reflect padding of n_fft / 2 samples on both ends (800 / 160 samples at 16 kHz);
2. power spectrum ``|X|^2``;
3. 128 triangular mel filters on the HTK mel scale, without area normalisation (torchaudio's ``MelScale``
   defaults), f_min 0 Hz, f_max = sample_rate / 2;
4. ``log(x + 1e-6)``;
5. per-clip min-max to [0, 1]: ``(x - min) / (max - min + 1e-8)`` over all mel bins and frames of the clip.

Window and hop are defined in seconds (50 ms and 10 ms), so at 32 kHz and 48 kHz they scale to 1600/320 and
2400/480 samples and the time axis keeps 100 frames per second; the mel range follows the Nyquist frequency.

Padding (``padding_mask`` ``[B, T]`` bool, True = padded sample, padding only at the end of each clip): a
clip of L valid samples inside a longer batch gives exactly the frames it gives alone. Its end is
reflect-padded from its own last samples (not from the batch's zeros), its first ``L // hop + 1`` frames are
valid and the rest are marked padded; the min-max ignores padded frames, and padded frames are set to 0 in
the normalised output (the value a CNN's zero padding assumes beyond the clip's end).
"""

from __future__ import annotations

import functools

import torch
import torch.nn.functional as F
import torchaudio.functional as AF
from torch import Tensor, nn

from avexlab.errors import AudioError, ConfigError, expected_found

WINDOW_SECONDS = 0.05
HOP_SECONDS = 0.01
LOG_OFFSET = 1e-6
MINMAX_EPS = 1e-8


def clip_lengths(padding_mask: Tensor | None, wave: Tensor) -> Tensor | None:
    """Valid samples per clip ``[B]`` int64 from a trailing padding mask ``[B, T]`` (True = padded).

    Returns None when ``padding_mask`` is None. Raises AudioError when the mask does not match ``wave``,
    is not boolean, or pads anywhere but the end of a clip.
    """
    if padding_mask is None:
        return None
    if padding_mask.shape != wave.shape or padding_mask.dtype != torch.bool:
        raise AudioError(
            expected_found(
                "padding_mask",
                f"a bool tensor of the waveform's shape {tuple(wave.shape)}",
                f"{padding_mask.dtype} {tuple(padding_mask.shape)}",
                "Pass True for padded samples, one row per clip.",
            )
        )
    lengths = (~padding_mask).sum(dim=1)
    trailing = torch.arange(wave.shape[1], device=wave.device)[None, :] >= lengths[:, None]
    if not torch.equal(trailing, padding_mask):
        raise AudioError(
            expected_found(
                "padding_mask",
                "padding only at the end of each clip (False ... False True ... True)",
                "padded samples before valid ones",
                "Right-pad clips (avexlab.audio crop/pad helpers do) or trim leading silence first.",
            )
        )
    return lengths


class MelFrontend(nn.Module):
    """Waveform ``[B, T]`` float32 at ``sample_rate`` Hz -> min-max log-mel ``[B, n_mels, F]`` in [0, 1].

    ``F = T // hop + 1`` frames at 100 frames per second (frame ``i`` is centred on ``i * 10 ms``).
    The module has no state-dict entries (window and filterbank are non-persistent buffers), so an encoder
    that owns it keeps exactly its backbone's key layout.

    Args:
        sample_rate: input rate in Hz; must be a multiple of 100 so that 50 ms / 10 ms are whole samples
            (16000, 32000 and 48000 are the rates the workbench uses).
        n_mels: number of mel bins (128 in the reference).
    """

    def __init__(self, sample_rate: int = 16000, n_mels: int = 128) -> None:
        super().__init__()
        if sample_rate <= 0 or sample_rate % 100:
            raise ConfigError(
                expected_found(
                    "MelFrontend sample_rate",
                    "a positive multiple of 100 Hz (16000, 32000 or 48000)",
                    repr(sample_rate),
                    "Resample the audio to a supported rate.",
                )
            )
        if n_mels <= 0:
            raise ConfigError(
                expected_found("MelFrontend n_mels", "a positive integer", repr(n_mels), "Use 128.")
            )
        self.sample_rate = int(sample_rate)
        self.n_mels = int(n_mels)
        self.n_fft = round(WINDOW_SECONDS * sample_rate)
        self.hop_length = round(HOP_SECONDS * sample_rate)
        self.register_buffer("window", torch.hann_window(self.n_fft), persistent=False)
        fbank = AF.melscale_fbanks(
            n_freqs=self.n_fft // 2 + 1,
            f_min=0.0,
            f_max=sample_rate / 2,
            n_mels=n_mels,
            sample_rate=sample_rate,
            norm=None,
            mel_scale="htk",
        )
        self.register_buffer("mel_fbank", fbank, persistent=False)  # [n_freqs, n_mels]

    def num_frames(self, num_samples: int) -> int:
        """Frames produced for ``num_samples`` samples (``num_samples // hop + 1``)."""
        return num_samples // self.hop_length + 1

    def frame_padding_mask(self, lengths: Tensor, num_frames: int) -> Tensor:
        """``[B, num_frames]`` bool, True for frames past each clip's ``lengths // hop + 1`` valid frames."""
        valid = lengths // self.hop_length + 1
        return torch.arange(num_frames, device=lengths.device)[None, :] >= valid[:, None]

    def log_mel(self, wave: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Natural-log mel power ``log(mel + 1e-6)`` ``[B, n_mels, F]`` float32 and the frame mask ``[B, F]``.

        The frame mask is None when ``padding_mask`` is None. Values at padded frames are unspecified.
        Runs in float32 with autocast disabled, whatever the input dtype.
        """
        if wave.ndim != 2:
            raise AudioError(
                expected_found(
                    "waveform", "a [B, T] tensor", f"shape {tuple(wave.shape)}", "Batch mono clips."
                )
            )
        half = self.n_fft // 2
        if wave.shape[1] <= half:
            raise AudioError(
                expected_found(
                    "waveform length",
                    f"more than {half} samples ({half / self.sample_rate * 1000:.0f} ms)",
                    f"{wave.shape[1]} samples",
                    "Pad short clips before embedding them.",
                )
            )
        lengths = clip_lengths(padding_mask, wave)
        with torch.autocast(device_type=wave.device.type, enabled=False):
            wave = wave.float()
            if lengths is None:
                padded = F.pad(wave[:, None, :], (half, half), mode="reflect")[:, 0]
            else:
                if int(lengths.min()) <= half:
                    raise AudioError(
                        expected_found(
                            "valid samples per clip",
                            f"more than {half} ({half / self.sample_rate * 1000:.0f} ms)",
                            f"a clip with {int(lengths.min())}",
                            "Drop or pad clips that are shorter than half a window.",
                        )
                    )
                # Reflect each clip at its own end (index 2 (L - 1) - t), as torch.stft does for a clip alone.
                t = (torch.arange(wave.shape[1] + 2 * half, device=wave.device) - half).abs()[None, :]
                last = (lengths - 1)[:, None]
                src = torch.where(t > last, 2 * last - t, t).clamp_(0, wave.shape[1] - 1)
                padded = wave.gather(1, src)
            spec = torch.stft(
                padded,
                n_fft=self.n_fft,
                hop_length=self.hop_length,
                win_length=self.n_fft,
                window=self.window,
                center=False,
                return_complex=True,
            )
            power = spec.real.square() + spec.imag.square()  # [B, n_freqs, F]
            mel = torch.matmul(power.transpose(1, 2), self.mel_fbank).transpose(1, 2)
            logmel = torch.log(mel + LOG_OFFSET)
        frame_mask = None if lengths is None else self.frame_padding_mask(lengths, logmel.shape[-1])
        return logmel, frame_mask

    def forward(self, wave: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Min-max normalised log-mel ``[B, n_mels, F]`` in [0, 1] and the frame mask ``[B, F]`` (or None).

        The min and max are taken per clip over its valid frames only; padded frames are 0.
        """
        x, frame_mask = self.log_mel(wave, padding_mask)
        if frame_mask is None:
            lo = x.amin(dim=(-2, -1), keepdim=True)
            hi = x.amax(dim=(-2, -1), keepdim=True)
            return (x - lo) / (hi - lo + MINMAX_EPS), None
        pad = frame_mask[:, None, :]
        lo = x.masked_fill(pad, float("inf")).amin(dim=(-2, -1), keepdim=True)
        hi = x.masked_fill(pad, float("-inf")).amax(dim=(-2, -1), keepdim=True)
        return ((x - lo) / (hi - lo + MINMAX_EPS)).masked_fill(pad, 0.0), frame_mask

    def statistics(self, wave: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """Mean and standard deviation over valid frames of the log-mel: ``[B, 2 * n_mels]`` float32
        (means first, then population standard deviations)."""
        x, frame_mask = self.log_mel(wave, padding_mask)
        if frame_mask is None:
            mean = x.mean(dim=-1)
            std = x.std(dim=-1, correction=0)
        else:
            keep = (~frame_mask)[:, None, :].to(x.dtype)
            count = keep.sum(dim=-1)
            mean = (x * keep).sum(dim=-1) / count
            std = (((x - mean[..., None]) * keep).square().sum(dim=-1) / count).sqrt()
        return torch.cat([mean, std], dim=-1)

    def extra_repr(self) -> str:
        return (
            f"sample_rate={self.sample_rate}, n_mels={self.n_mels}, n_fft={self.n_fft}, "
            f"hop_length={self.hop_length}"
        )


@functools.lru_cache(maxsize=16)
def _cached_frontend(sample_rate: int, n_mels: int, device: str) -> MelFrontend:
    return MelFrontend(sample_rate, n_mels).to(device)


def log_mel_statistics(
    wave: Tensor, sample_rate: int, padding_mask: Tensor | None = None, n_mels: int = 128
) -> Tensor:
    """Non-learned clip features: per-mel-bin mean and std over time of ``log(mel + 1e-6)``.

    Args:
        wave: ``[B, T]`` float waveforms at ``sample_rate`` Hz.
        sample_rate: Hz, a multiple of 100 (16000, 32000, 48000).
        padding_mask: optional ``[B, T]`` bool, True = padded sample (trailing only); padded frames are
            ignored, so a clip gives the same features alone or padded inside a batch.
        n_mels: mel bins (reference 128).

    Returns:
        ``[B, 2 * n_mels]`` float32: ``n_mels`` means, then ``n_mels`` population standard deviations.
    """
    frontend = _cached_frontend(int(sample_rate), int(n_mels), str(wave.device))
    with torch.no_grad():
        return frontend.statistics(wave, padding_mask)
