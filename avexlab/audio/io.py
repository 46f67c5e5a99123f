"""Audio input/output in seconds: read a segment, mix down, resample, save atomically, crop/pad, window.

Every function speaks seconds, never frames. Waveforms are torch float32 tensors: ``[T]`` (mono) or
``[C, T]`` (channels first) for one file, ``[B, T]`` for a batch. Reading uses soundfile (libsndfile:
WAV, FLAC, OGG/Vorbis and friends) and seeks to the requested segment instead of decoding the whole file.
Resampling uses ``torchaudio.functional.resample`` (band-limited sinc), imported only when needed.

Paths of the form ``scheme://...`` are handed to a loader registered with :func:`register_uri_scheme`
(the synthetic world registers ``synth``), so manifests can point at audio rendered on demand.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import soundfile as sf
import torch
from torch import Tensor

from avexlab.errors import AudioError, ConfigError
from avexlab.fsutil import atomic_write

__all__ = [
    "AudioInfo",
    "audio_info",
    "crop_or_pad",
    "is_uri",
    "load_audio",
    "register_uri_scheme",
    "registered_uri_schemes",
    "save_audio",
    "sliding_windows",
]

UriLoader = Callable[[str], tuple[np.ndarray | Tensor, int]]
CropPolicy = Literal["start", "random", "centre"]

_URI_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+)://")
_URI_LOADERS: dict[str, UriLoader] = {}


# ----------------------------------------------------------------------------------------------- URIs
def is_uri(path: str | os.PathLike[str]) -> bool:
    """True when ``path`` looks like ``scheme://...`` (two or more scheme letters, so ``C:/`` is a path)."""
    return isinstance(path, str) and _URI_RE.match(path) is not None


def uri_scheme(path: str) -> str | None:
    """The scheme of a URI (``"synth"`` for ``synth://...``), or None for a plain path."""
    m = _URI_RE.match(path)
    return m.group(1).lower() if m else None


def register_uri_scheme(scheme: str, loader: UriLoader, *, replace: bool = False) -> None:
    """Let :func:`load_audio` read ``scheme://...`` paths by calling ``loader(uri)``.

    ``loader`` receives the full URI and returns ``(samples, sample_rate)`` with samples ``[T]`` or
    ``[C, T]`` (numpy or torch, float, full scale 1.0) at ``sample_rate`` Hz. Segment selection, mix-down,
    resampling and sample checks are then applied exactly as for files. Registering a scheme twice is an
    error unless ``replace=True``.
    """
    key = scheme.lower().removesuffix("://")
    if not re.fullmatch(r"[a-z][a-z0-9+.\-]+", key):
        raise ConfigError(
            f"URI scheme {scheme!r}: expected two or more letters, digits, '+', '.' or '-' starting with a "
            "letter (e.g. 'synth'). Choose another name."
        )
    if key in _URI_LOADERS and not replace and _URI_LOADERS[key] is not loader:
        raise ConfigError(
            f"URI scheme {key!r} is already registered to {_URI_LOADERS[key]!r}. "
            "Pass replace=True to override it on purpose."
        )
    _URI_LOADERS[key] = loader


def registered_uri_schemes() -> list[str]:
    """Names of the schemes :func:`load_audio` can read, sorted."""
    return sorted(_URI_LOADERS)


# ------------------------------------------------------------------------------------------- reading
class AudioInfo:
    """Header facts of an audio file: ``frames``, ``sample_rate`` (Hz), ``channels``, ``duration_s``,
    ``format`` and ``subtype`` (e.g. ``"WAV"``, ``"PCM_24"``)."""

    __slots__ = ("path", "frames", "sample_rate", "channels", "format", "subtype")

    def __init__(
        self, path: str, frames: int, sample_rate: int, channels: int, format: str, subtype: str
    ) -> None:
        self.path, self.frames, self.sample_rate = path, frames, sample_rate
        self.channels, self.format, self.subtype = channels, format, subtype

    @property
    def duration_s(self) -> float:
        return self.frames / self.sample_rate

    def __repr__(self) -> str:
        return (
            f"AudioInfo({self.path!r}, {self.duration_s:.3f} s, {self.sample_rate} Hz, "
            f"{self.channels} ch, {self.format}/{self.subtype})"
        )


def _open(path: str) -> sf.SoundFile:
    p = Path(path)
    if not p.exists():
        raise AudioError(
            f"audio file {path!r}: expected an existing file, found nothing at that path. "
            "Check the manifest's path and data root."
        )
    if not p.is_file():
        raise AudioError(f"audio file {path!r}: expected a file, found a directory. Point to the audio file.")
    if p.stat().st_size == 0:
        raise AudioError(
            f"audio file {path!r}: expected audio, found an empty (0-byte) file. Replace the file."
        )
    try:
        f = sf.SoundFile(path)
    except (sf.LibsndfileError, RuntimeError, TypeError) as e:
        raise AudioError(
            f"audio file {path!r}: expected a WAV/FLAC/OGG file, found something libsndfile cannot read "
            f"({e}). The file is corrupt, truncated or not audio: re-export or remove it."
        ) from e
    problem = _truncation(f.extra_info)
    if problem is not None:
        f.close()
        raise AudioError(
            f"audio file {path!r}: expected as much audio as its header declares, found {problem}. "
            "The file is truncated (an interrupted copy or recording): re-copy or re-export it."
        )
    return f


# libsndfile silently shortens truncated WAV/AIFF files to the bytes present; its log keeps the evidence.
_DATA_SHORT = re.compile(r"^(?:data|SSND)\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_STREAMING_PLACEHOLDERS = {0, 0xFFFFFFFF, 0x7FFFFFFF}


def _truncation(log: str) -> str | None:
    """A description of truncation found in libsndfile's header log, or None."""
    m = _DATA_SHORT.search(log)
    if m is not None:
        declared, present = int(m.group(1)), int(m.group(2))
        # Streaming writers leave a placeholder size; those files are complete, not truncated.
        if declared > present and declared not in _STREAMING_PLACEHOLDERS:
            return f"a data chunk of {present} bytes where the header declares {declared}"
    if "File ended unexpectedly" in log:
        return "an Ogg stream that ends without its end-of-stream page"
    return None


def audio_info(path: str | os.PathLike[str]) -> AudioInfo:
    """Read only the header of an audio file (fast: no samples are decoded).

    Raises AudioError (naming the file) when it is missing, unreadable or holds zero frames.
    """
    path = os.fspath(path)
    with _open(path) as f:
        info = AudioInfo(path, f.frames, f.samplerate, f.channels, f.format, f.subtype)
    if info.frames <= 0:
        raise AudioError(
            f"audio file {path!r}: expected at least one sample, found a zero-length recording. "
            "Remove it from the manifest or re-export it."
        )
    return info


def _segment_frames(name: str, total: int, sr: int, start_s: float, end_s: float | None) -> tuple[int, int]:
    dur = total / sr
    if not np.isfinite(start_s) or start_s < 0:
        raise AudioError(
            f"audio {name!r}: expected start_s >= 0, found {start_s}. Fix the segment's start time."
        )
    start = int(round(start_s * sr))
    stop = total if end_s is None else int(round(end_s * sr))
    if end_s is not None and (not np.isfinite(end_s) or end_s <= start_s):
        raise AudioError(
            f"audio {name!r}: expected end_s > start_s, found start_s={start_s}, end_s={end_s}. "
            "Fix the segment's times."
        )
    if start >= total or stop > total:
        raise AudioError(
            f"audio {name!r}: expected the segment [{start_s}, {end_s if end_s is not None else dur}] s to lie "
            f"inside the recording (0 to {dur:.6f} s), found it outside. Fix the segment times or the file."
        )
    if stop <= start:
        raise AudioError(
            f"audio {name!r}: expected a segment of at least one sample at {sr} Hz, found "
            f"[{start_s}, {end_s}] s which rounds to none. Use a longer segment."
        )
    return start, stop


@functools.lru_cache(maxsize=32)
def _resampler(orig_hz: int, new_hz: int) -> torch.nn.Module:
    """``torchaudio.transforms.Resample`` with its sinc kernel computed once per rate pair (the same
    arithmetic as ``torchaudio.functional.resample`` with default arguments, which rebuilds the kernel on
    every call). torchaudio is imported here, lazily."""
    import torchaudio.transforms as tat

    return tat.Resample(orig_hz, new_hz)


def _finish(
    name: str,
    data: Tensor,
    sr: int,
    sample_rate: int | None,
    mono: bool,
    min_duration_s: float | None,
) -> tuple[Tensor, int]:
    """data: [C, T] float32. Checks samples, mixes down, resamples."""
    if data.shape[-1] == 0:
        raise AudioError(
            f"audio {name!r}: expected at least one sample, found a zero-length recording. "
            "Remove it from the manifest or re-export it."
        )
    # One reduction finds the common all-finite case; the element-wise check runs only when the sum is not
    # finite (NaN/Inf present, or a float32 overflow of huge but finite samples).
    if not bool(torch.isfinite(data.sum())) and not bool((finite := torch.isfinite(data)).all()):
        bad = int((~finite).sum())
        first = int((~finite).any(0).nonzero()[0, 0])
        raise AudioError(
            f"audio {name!r}: expected finite samples, found {bad} NaN/Inf value(s) (first at "
            f"{first / sr:.6f} s). Re-export the file from its source; avexlab will not silently repair it."
        )
    if min_duration_s is not None and data.shape[-1] < min_duration_s * sr:
        raise AudioError(
            f"audio {name!r}: expected at least {min_duration_s} s, found {data.shape[-1] / sr:.6f} s "
            f"({data.shape[-1]} samples at {sr} Hz). Drop the clip or lower the minimum duration."
        )
    wave = (data[0] if data.shape[0] == 1 else data.mean(0)) if mono else data
    out_sr = sr
    if sample_rate is not None and sample_rate != sr:
        if sample_rate <= 0:
            raise AudioError(
                f"audio {name!r}: expected a positive target sample_rate, found {sample_rate}. Pass e.g. 16000."
            )
        wave = _resampler(sr, sample_rate)(wave)
        out_sr = sample_rate
    return wave.contiguous(), out_sr


def load_audio(
    path: str | os.PathLike[str],
    sample_rate: int | None = None,
    mono: bool = True,
    *,
    start_s: float = 0.0,
    end_s: float | None = None,
    min_duration_s: float | None = None,
) -> tuple[Tensor, int]:
    """Read ``[start_s, end_s)`` seconds of an audio file (or ``scheme://`` URI).

    Args:
        path: a WAV/FLAC/OGG file (any libsndfile format; 8/16/24/32-bit int or float; any rate) or a URI
            whose scheme was registered with :func:`register_uri_scheme`.
        sample_rate: target rate in Hz; the audio is resampled when it differs. None keeps the file's rate.
        mono: mix channels down by their mean (``[T]``); False keeps ``[C, T]``.
        start_s, end_s: segment in seconds from the start of the file; ``end_s=None`` reads to the end. Only
            this segment is decoded (the file is seeked, not read whole).
        min_duration_s: raise if the segment (before resampling) is shorter than this.

    Returns:
        ``(waveform, sample_rate)``: float32 ``[T]`` (mono) or ``[C, T]``, full scale 1.0, at the returned
        rate in Hz. Silence and clipped audio load as they are.

    Raises:
        AudioError naming the file: missing, empty, corrupt/truncated/not audio, NaN/Inf samples, segment
        outside the file, shorter than ``min_duration_s``, or an unregistered URI scheme.
    """
    if isinstance(path, str) and is_uri(path):
        scheme = uri_scheme(path)
        assert scheme is not None
        loader = _URI_LOADERS.get(scheme)
        if loader is None:
            raise AudioError(
                f"audio {path!r}: expected a file path or a URI with a registered scheme "
                f"({registered_uri_schemes() or 'none registered'}), found scheme {scheme!r}. Import the module "
                "that registers it (e.g. `import avexlab.synth` for synth://) or call register_uri_scheme."
            )
        samples, sr = loader(path)
        # A copy: the caller may modify the result, and the loader may hand out a cached array.
        data = torch.as_tensor(np.asarray(samples) if not isinstance(samples, Tensor) else samples)
        data = data.detach().to("cpu", torch.float32, copy=True)
        if data.ndim == 1:
            data = data.unsqueeze(0)
        if data.ndim != 2:
            raise AudioError(
                f"audio {path!r}: expected the {scheme!r} loader to return [T] or [C, T] samples, found shape "
                f"{tuple(data.shape)}. Fix the loader."
            )
        total = data.shape[-1]
        if total == 0:
            raise AudioError(f"audio {path!r}: expected at least one sample, found a zero-length recording.")
        start, stop = _segment_frames(path, total, int(sr), start_s, end_s)
        return _finish(path, data[:, start:stop], int(sr), sample_rate, mono, min_duration_s)

    name = os.fspath(path)
    with _open(name) as f:
        total, sr = f.frames, f.samplerate
        if total <= 0:
            raise AudioError(
                f"audio file {name!r}: expected at least one sample, found a zero-length recording. "
                "Remove it from the manifest or re-export it."
            )
        start, stop = _segment_frames(name, total, sr, start_s, end_s)
        try:
            if start:
                f.seek(start)
            arr = f.read(stop - start, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError) as e:
            raise AudioError(
                f"audio file {name!r}: expected readable samples in [{start_s}, {end_s}] s, found a decoding "
                f"error ({e}). The file is corrupt or truncated: re-export or remove it."
            ) from e
    if arr.shape[0] != stop - start:
        raise AudioError(
            f"audio file {name!r}: expected {stop - start} samples from its header, found {arr.shape[0]}. "
            "The file is truncated: re-export or remove it."
        )
    data = torch.from_numpy(np.ascontiguousarray(arr.T))
    return _finish(name, data, sr, sample_rate, mono, min_duration_s)


# ------------------------------------------------------------------------------------------- writing
def save_audio(
    path: str | os.PathLike[str],
    waveform: Tensor | np.ndarray,
    sample_rate: int,
    subtype: str | None = None,
) -> Path:
    """Write ``waveform`` (``[T]`` or ``[C, T]``, float, full scale 1.0) to ``path`` atomically.

    The format follows the suffix (``.wav``, ``.flac``, ``.ogg``); ``subtype`` (e.g. ``"PCM_16"``,
    ``"PCM_24"``, ``"FLOAT"``) defaults to libsndfile's choice for the format. Integer subtypes clip samples
    outside [-1, 1] (libsndfile behaviour). Written with :func:`avexlab.fsutil.atomic_write` (temporary file
    beside ``path``, fsync, rename, directory fsync), so a reader never sees half a file and a failed write
    leaves no temporary file. Returns the path written.
    """
    out = Path(path)
    data = waveform.detach().cpu().numpy() if isinstance(waveform, Tensor) else np.asarray(waveform)
    if data.ndim not in (1, 2) or data.shape[-1] == 0:
        raise AudioError(
            f"saving {str(out)!r}: expected a non-empty [T] or [C, T] waveform, found shape {data.shape}."
        )
    if not np.isfinite(data).all():
        raise AudioError(
            f"saving {str(out)!r}: expected finite samples, found NaN/Inf. Fix the signal before writing."
        )
    if sample_rate <= 0:
        raise AudioError(f"saving {str(out)!r}: expected a positive sample_rate, found {sample_rate}.")
    frames = np.ascontiguousarray(data.T if data.ndim == 2 else data)
    ext = out.suffix.lstrip(".").upper()
    fmt = ext if ext in sf.available_formats() else None
    try:
        atomic_write(
            out, lambda tmp: sf.write(str(tmp), frames, int(sample_rate), subtype=subtype, format=fmt)
        )
    except Exception as e:
        raise AudioError(
            f"saving {str(out)!r}: expected a writable {out.suffix or '(no suffix)'} file with subtype "
            f"{subtype!r}, found an error ({e}). Use .wav/.flac/.ogg and a subtype that format supports."
        ) from e
    return out


# ------------------------------------------------------------------------------- crop, pad, windows
def _n_samples(seconds: float, sample_rate: int, what: str) -> int:
    n = int(round(seconds * sample_rate))
    if not np.isfinite(seconds) or n < 1:
        raise ConfigError(
            f"{what}: expected at least one sample, found {seconds} s at {sample_rate} Hz ({n} samples). "
            "Use a longer duration."
        )
    return n


def crop_or_pad(
    wave: Tensor,
    sample_rate: int,
    length_s: float,
    policy: CropPolicy = "start",
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Bring ``wave`` to exactly ``length_s`` seconds: crop when longer, zero-pad at the end when shorter.

    Args:
        wave: ``[T]`` or ``[B, T]`` at ``sample_rate`` Hz.
        length_s: target duration in seconds; ``L = round(length_s * sample_rate)`` samples.
        policy: where to crop when ``T > L``: ``"start"`` (offset 0), ``"centre"`` (middle),
            ``"random"`` (uniform offset per row, drawn from ``generator``; deterministic for a seeded one).
            Padding is always at the end, so the kept signal starts at sample 0 of the output.
        generator: torch.Generator for ``"random"`` (None uses torch's global RNG).

    Returns:
        ``(out, padding_mask)``: ``out`` ``[..., L]`` same dtype as ``wave``; ``padding_mask`` ``[..., L]`` bool,
        True where the sample is padding.
    """
    if policy not in ("start", "random", "centre"):
        raise ConfigError(
            f"crop policy: expected 'start', 'random' or 'centre', found {policy!r}. Pick one of those."
        )
    if wave.ndim not in (1, 2):
        raise ConfigError(f"crop_or_pad: expected wave [T] or [B, T], found shape {tuple(wave.shape)}.")
    L = _n_samples(length_s, sample_rate, "crop_or_pad length_s")
    squeeze = wave.ndim == 1
    x = wave.unsqueeze(0) if squeeze else wave
    B, T = x.shape
    if T >= L:
        if policy == "start" or T == L:
            out = x[:, :L]
        elif policy == "centre":
            off = (T - L) // 2
            out = x[:, off : off + L]
        else:
            offs = torch.randint(0, T - L + 1, (B,), generator=generator)
            idx = offs.to(x.device)[:, None] + torch.arange(L, device=x.device)[None, :]
            out = torch.gather(x, 1, idx)
        mask = torch.zeros(B, L, dtype=torch.bool, device=x.device)
    else:
        out = torch.nn.functional.pad(x, (0, L - T))
        mask = (torch.arange(L, device=x.device) >= T).expand(B, L).clone()
    out = out.contiguous()
    return (out[0], mask[0]) if squeeze else (out, mask)


def sliding_windows(
    wave: Tensor,
    sample_rate: int,
    window_s: float,
    hop_s: float,
    pad_last: bool = True,
) -> tuple[Tensor, Tensor, Tensor]:
    """Cut ``wave`` ``[T]`` into windows of ``window_s`` seconds every ``hop_s`` seconds.

    With ``pad_last=True`` the windows reach the end of the recording: the last one is zero-padded
    (a recording shorter than one window gives one padded window); when ``hop_s <= window_s`` every sample
    lies in some window, and no window starts after the last sample. With ``pad_last=False`` only full
    windows are returned (possibly none).

    Returns:
        ``(windows, starts_s, padding_mask)``: ``windows`` ``[W, L]`` (a copy), ``starts_s`` ``[W]`` float64
        start times in seconds, ``padding_mask`` ``[W, L]`` bool (True = padding), with
        ``L = round(window_s * sample_rate)``.
    """
    if wave.ndim != 1:
        raise ConfigError(f"sliding_windows: expected wave [T], found shape {tuple(wave.shape)}.")
    L = _n_samples(window_s, sample_rate, "sliding_windows window_s")
    H = _n_samples(hop_s, sample_rate, "sliding_windows hop_s")
    T = wave.shape[0]
    if pad_last:
        # Enough windows to reach the last sample, but never one that starts after it (hop > window).
        W = 1 if T <= L else min(-(-(T - L) // H) + 1, -(-T // H))
    else:
        W = 0 if T < L else (T - L) // H + 1
    if W == 0:
        empty = wave.new_zeros(0, L)
        return empty, torch.zeros(0, dtype=torch.float64), torch.zeros(0, L, dtype=torch.bool)
    need = (W - 1) * H + L
    x = torch.nn.functional.pad(wave, (0, max(0, need - T)))
    windows = x.unfold(0, L, H)[:W].clone()
    starts = torch.arange(W, dtype=torch.int64) * H
    pos = starts[:, None] + torch.arange(L)[None, :]
    mask = (pos >= T).to(wave.device)
    return windows, starts.to(torch.float64) / sample_rate, mask
