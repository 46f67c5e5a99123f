"""Spectrograms for looking at audio (numpy only: no torch import, so notebook cells stay fast).

These are display spectrograms (dB, clipped to a dynamic range), not model features: the encoders own
their frontends. Also the event annotation type that every figure and the player draw.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import polars as pl

from avexlab.errors import AudioError, ManifestError, expected_found

SpecKind = Literal["mel", "stft"]


def as_wave(wave: Any, what: str = "wave") -> np.ndarray:
    """Return ``wave`` as a 1-D float32 numpy array; raise :class:`AudioError` if it is not one.

    Accepts numpy arrays, lists and CPU torch tensors of shape ``[T]`` (or ``[1, T]``).
    """
    try:
        arr = np.asarray(wave, dtype=np.float32)
    except (TypeError, ValueError) as exc:
        raise AudioError(
            expected_found(what, "a 1-D float array of samples", type(wave).__name__, "Pass a numpy array.")
        ) from exc
    if arr.ndim == 2 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim != 1:
        raise AudioError(
            expected_found(
                what, "shape [T] (mono)", f"shape {list(arr.shape)}", "Mix channels down first: wave.mean(0)."
            )
        )
    if arr.size == 0:
        raise AudioError(expected_found(what, "at least one sample", "an empty array", "Check the crop."))
    if not np.isfinite(arr).all():
        raise AudioError(
            expected_found(what, "finite samples", "NaN or inf", "Check the source of the audio.")
        )
    return arr


def hz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: ``2595 * log10(1 + hz / 700)``."""
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filterbank(n_mels: int, n_fft: int, sample_rate: int, f_min: float, f_max: float) -> np.ndarray:
    """Triangular HTK mel filters ``[n_mels, n_fft // 2 + 1]`` (peak 1), edges spaced evenly in mel."""
    edges_hz = mel_to_hz(np.linspace(hz_to_mel(f_min), hz_to_mel(f_max), n_mels + 2))
    bins_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    lo, mid, hi = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    up = (bins_hz[None, :] - lo) / np.maximum(mid - lo, 1e-9)
    down = (hi - bins_hz[None, :]) / np.maximum(hi - mid, 1e-9)
    return np.clip(np.minimum(up, down), 0.0, None).astype(np.float32)


@dataclass(frozen=True)
class Spectrogram:
    """A display spectrogram.

    Attributes:
        db: ``[F, T]`` float32 power in dB relative to the loudest bin, in ``[-top_db, 0]``; row 0 is the
            lowest frequency.
        times_s: ``[T]`` frame centres in seconds.
        freqs_hz: ``[F]`` bin centres in Hz (mel band centres for ``kind="mel"``).
        kind: ``"mel"`` or ``"stft"`` (linear frequency).
        f_min_hz, f_max_hz: the frequency range the rows span.
        duration_s: length of the audio in seconds.
    """

    db: np.ndarray
    times_s: np.ndarray
    freqs_hz: np.ndarray
    kind: SpecKind
    f_min_hz: float
    f_max_hz: float
    duration_s: float

    def freq_fraction(self, hz: np.ndarray | float) -> np.ndarray:
        """Height of frequency ``hz`` on this spectrogram's axis, as a fraction in ``[0, 1]`` (0 = f_min)."""
        if self.kind == "mel":
            lo, hi, v = hz_to_mel(self.f_min_hz), hz_to_mel(self.f_max_hz), hz_to_mel(hz)
        else:
            lo, hi, v = self.f_min_hz, self.f_max_hz, np.asarray(hz, dtype=np.float64)
        return np.clip((v - lo) / (hi - lo), 0.0, 1.0)


def compute_spectrogram(
    wave: Any,
    sample_rate: int,
    *,
    kind: SpecKind = "mel",
    win_s: float = 0.025,
    hop_s: float = 0.010,
    n_mels: int = 128,
    f_min_hz: float = 0.0,
    f_max_hz: float | None = None,
    top_db: float = 80.0,
) -> Spectrogram:
    """Hann-windowed power spectrogram of a mono clip, in dB.

    Args:
        wave: ``[T]`` float samples at ``sample_rate`` Hz.
        kind: ``"mel"`` (``n_mels`` HTK bands) or ``"stft"`` (linear bins).
        win_s, hop_s: window and hop in seconds (FFT size is the window rounded up to a power of two).
        f_max_hz: top of the axis (default Nyquist).
        top_db: dynamic range kept below the loudest bin.
    """
    x = as_wave(wave)
    if sample_rate <= 0:
        raise AudioError(expected_found("sample_rate", "a positive rate in Hz", str(sample_rate), "Fix it."))
    if kind not in ("mel", "stft"):
        raise AudioError(expected_found("kind", "'mel' or 'stft'", repr(kind), "Pick one of them."))
    nyquist = sample_rate / 2
    f_max = nyquist if f_max_hz is None else float(f_max_hz)
    if not 0 <= f_min_hz < f_max <= nyquist:
        raise AudioError(
            expected_found(
                "frequency range",
                f"0 <= f_min_hz < f_max_hz <= {nyquist:g} Hz (Nyquist)",
                f"f_min_hz={f_min_hz:g}, f_max_hz={f_max:g}",
                "Narrow the range or raise the sample rate.",
            )
        )
    win = max(int(round(win_s * sample_rate)), 2)
    hop = max(int(round(hop_s * sample_rate)), 1)
    n_fft = 1 << (win - 1).bit_length()
    pad = n_fft // 2
    padded = np.pad(x, (pad, pad))  # centred frames: T // hop + 1 of them
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft)[::hop]  # [T, n_fft]
    window = np.zeros(n_fft, dtype=np.float32)
    start = (n_fft - win) // 2
    window[start : start + win] = np.hanning(win).astype(np.float32)
    power = np.abs(np.fft.rfft(frames * window, axis=-1)) ** 2  # [T, n_fft//2+1]
    if kind == "mel":
        fb = mel_filterbank(n_mels, n_fft, sample_rate, f_min_hz, f_max)
        spec = power @ fb.T  # [T, n_mels]
        freqs = mel_to_hz(np.linspace(hz_to_mel(f_min_hz), hz_to_mel(f_max), n_mels + 2)[1:-1])
    else:
        bins = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
        keep = (bins >= f_min_hz) & (bins <= f_max)
        spec, freqs = power[:, keep], bins[keep]
    db = 10.0 * np.log10(np.maximum(spec, 1e-12))
    db = np.maximum(db - db.max(), -float(top_db)).T.astype(np.float32)  # [F, T]
    times = (np.arange(db.shape[1]) * hop / sample_rate).astype(np.float64)
    return Spectrogram(
        db=db,
        times_s=times,
        freqs_hz=np.asarray(freqs, dtype=np.float64),
        kind=kind,
        f_min_hz=float(f_min_hz),
        f_max_hz=f_max,
        duration_s=x.size / sample_rate,
    )


@dataclass(frozen=True)
class Event:
    """One annotated sound event: times in seconds from the start of the clip, band in Hz (None = whole
    band)."""

    onset_s: float
    offset_s: float
    label: str = ""
    low_hz: float | None = None
    high_hz: float | None = None


EventsLike = pl.DataFrame | Iterable[Event | Mapping[str, Any]] | None


def as_events(events: EventsLike) -> list[Event]:
    """Normalise annotations to a list of :class:`Event`.

    Accepts None, a list of :class:`Event`, a list of mappings or a polars DataFrame with columns
    ``onset_s``, ``offset_s`` and optionally ``label`` (else ``call_type`` or ``species``), ``low_hz``,
    ``high_hz`` (the events table of the manifest schema has this shape).
    """
    if events is None:
        return []
    rows: Iterable[Any] = events.to_dicts() if isinstance(events, pl.DataFrame) else events
    out: list[Event] = []
    for i, row in enumerate(rows):
        if isinstance(row, Event):
            ev = row
        elif isinstance(row, Mapping):
            missing = [k for k in ("onset_s", "offset_s") if row.get(k) is None]
            if missing:
                raise ManifestError(
                    expected_found(
                        f"event {i}", "keys onset_s and offset_s", f"{sorted(row)}", f"Add {missing}."
                    )
                )
            label = row.get("label") or row.get("call_type") or row.get("species") or ""
            low, high = row.get("low_hz"), row.get("high_hz")
            ev = Event(
                float(row["onset_s"]),
                float(row["offset_s"]),
                str(label),
                None if low is None else float(low),
                None if high is None else float(high),
            )
        else:
            raise ManifestError(
                expected_found(f"event {i}", "an Event or a mapping", type(row).__name__, "Convert it.")
            )
        if not ev.offset_s >= ev.onset_s:
            raise ManifestError(
                expected_found(
                    f"event {i} ({ev.label!r})",
                    "offset_s >= onset_s",
                    f"onset_s={ev.onset_s}, offset_s={ev.offset_s}",
                    "Swap or fix the times.",
                )
            )
        out.append(ev)
    return out
