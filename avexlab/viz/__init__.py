"""Looking at and listening to audio, embeddings and results: plotly figures and a spectrogram player.

``SpectrogramPlayer`` (an anywidget) is imported lazily so that figure-only users do not pay for it.
"""

from __future__ import annotations

from typing import Any

from avexlab.viz.audio import Audio, wav_bytes
from avexlab.viz.figures import (
    embedding_map,
    reduce_embeddings,
    result_bars,
    result_lines,
    selected_rows,
    spectrogram_figure,
)
from avexlab.viz.spectrogram import Event, Spectrogram, as_events, compute_spectrogram

__all__ = [
    "Audio",
    "Event",
    "Spectrogram",
    "SpectrogramPlayer",
    "as_events",
    "compute_spectrogram",
    "embedding_map",
    "reduce_embeddings",
    "result_bars",
    "result_lines",
    "selected_rows",
    "spectrogram_figure",
    "wav_bytes",
]


def __getattr__(name: str) -> Any:
    if name == "SpectrogramPlayer":
        from avexlab.viz.player import SpectrogramPlayer

        return SpectrogramPlayer
    raise AttributeError(f"module 'avexlab.viz' has no attribute {name!r}")
