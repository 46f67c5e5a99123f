"""A small archive of real audio files with known calls, shared by the agile-modeling tests.

Four 12 s recordings at 16 kHz (one at 22.05 kHz, stereo) of pink-ish noise with two kinds of call at
known times: ``chirp`` (a 0.6 s upward sweep 1.5 -> 3.5 kHz) and ``tone`` (a 0.6 s 5 kHz tone with a
harmonic). Windows are 1 s with a 0.5 s hop, so every call lies whole inside at least one window and
most windows hold noise only (the background).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import polars as pl
import soundfile as sf

SR = 16000
CALLS: dict[str, list[tuple[str, float]]] = {
    "dawn.wav": [("chirp", 1.2), ("tone", 4.2), ("chirp", 7.7), ("tone", 10.1)],
    "noon.wav": [("tone", 0.7), ("chirp", 3.3), ("chirp", 6.1), ("tone", 9.4)],
    "dusk.flac": [("chirp", 2.2), ("tone", 5.6), ("tone", 8.2)],
    "night/owl.wav": [("tone", 1.9), ("chirp", 5.0), ("chirp", 9.9)],
}
RATES = {"dusk.flac": 22050}
CALL_S = 0.6
WINDOW_S, HOP_S = 1.0, 0.5


def _call(kind: str, sr: int, rng: np.random.Generator) -> np.ndarray:
    t = np.arange(int(CALL_S * sr)) / sr
    env = np.sin(np.pi * t / CALL_S) ** 2
    if kind == "chirp":
        f0, f1 = 1500.0 * rng.uniform(0.95, 1.05), 3500.0
        phase = 2 * np.pi * (f0 * t + (f1 - f0) * t**2 / (2 * CALL_S))
        return 0.5 * env * np.sin(phase)
    f = 5000.0 * rng.uniform(0.97, 1.03)
    return 0.4 * env * (np.sin(2 * np.pi * f * t) + 0.3 * np.sin(2 * np.pi * 2 * f * t) * (f * 2 < sr / 2))


def write_archive(root: Path, seed: int = 0, files: dict[str, list[tuple[str, float]]] | None = None) -> Path:
    """Write the recordings of ``files`` (default :data:`CALLS`) under ``root``; returns ``root``."""
    rng = np.random.default_rng(seed)
    for name, calls in (files or CALLS).items():
        sr = RATES.get(name, SR)
        n = int(12.0 * sr)
        noise = np.cumsum(rng.standard_normal(n)) * 0.0005
        noise = 0.02 * rng.standard_normal(n) + noise - np.convolve(noise, np.ones(400) / 400, mode="same")
        x = noise.copy()
        for kind, at in calls:
            c = _call(kind, sr, rng)
            i = int(at * sr)
            x[i : i + c.size] += c
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if name == "dusk.flac":
            x = np.stack([x, 0.9 * x], axis=1)  # stereo: mixed down on reading
        sf.write(path, x.astype(np.float32), sr)
    return root


def truth(windows: pl.DataFrame) -> pl.DataFrame:
    """Per store window: ``positives`` (calls lying whole inside it) and ``touched`` (calls overlapping
    it at all); a window with no touched call is background."""
    pos, touched = [], []
    for path, a, b in windows.select("path", "start_s", "end_s").iter_rows():
        calls = CALLS.get(path, [])
        pos.append(sorted({k for k, t in calls if t >= a and t + CALL_S <= b}))
        touched.append(sorted({k for k, t in calls if t < b and t + CALL_S > a}))
    return windows.select("row").with_columns(
        pl.Series("positives", pos, dtype=pl.List(pl.String)),
        pl.Series("touched", touched, dtype=pl.List(pl.String)),
    )
