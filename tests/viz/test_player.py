from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pytest
import soundfile as sf
from tolerance import rounding_approx

from avexlab.errors import ConfigError
from avexlab.viz.player import SpectrogramPlayer, colorize
from avexlab.viz.spectrogram import Event

SR = 16000
Tone = Callable[..., np.ndarray]  # the `tone` fixture (conftest.py)


def _image(player: SpectrogramPlayer) -> np.ndarray:
    return np.frombuffer(player.image, dtype=np.uint8).reshape(player.image_height, player.image_width, 4)


def test_player_image_audio_and_events(tone: Tone) -> None:
    wave = tone(1000.0, 2.0)
    player = SpectrogramPlayer.from_waveform(wave, SR, [Event(0.5, 1.0, "call", 500.0, 2000.0)], kind="stft")
    img = _image(player)
    assert img.shape[2] == 4 and (img[..., 3] == 255).all()
    # The tone is the brightest row; row 0 is the top (highest frequency) of the image.
    bright_row = int(np.argmax(img[..., :3].astype(int).sum(axis=(1, 2))))
    expected = player.image_height - 1 - int(np.argmin(np.abs(player.spectrogram.freqs_hz - 1000.0)))
    assert abs(bright_row - expected) <= 1
    x, sr = sf.read(io.BytesIO(player.wav), dtype="float32")
    assert sr == SR and x.size == wave.size
    assert player.duration_s == 2.0  # 32000 samples / 16000 Hz
    (box,) = player.boxes
    assert (box["x0"], box["x1"], box["label"]) == (0.25, 0.5, "call")
    # fractions of the linear axis: a ratio of differences, a few roundings
    assert box["y0"] == rounding_approx(500.0 / 8000.0, ops=4, scale=1.0)
    assert box["y1"] == rounding_approx(2000.0 / 8000.0, ops=4, scale=1.0)


def test_long_clips_are_pooled_without_losing_short_calls(tone: Tone) -> None:
    wave = np.zeros(SR * 20, dtype=np.float32)
    wave[SR * 10 : SR * 10 + 800] = tone(3000.0, 0.05)  # one 50 ms call in 20 s
    player = SpectrogramPlayer.from_waveform(wave, SR, max_width=300)
    assert player.image_width <= 300
    img = _image(player).astype(int)[..., :3].sum(axis=(0, 2))
    assert abs(int(np.argmax(img)) / player.image_width - 0.5) < 0.02


def test_events_update_and_position_is_a_synced_trait(tone: Tone) -> None:
    player = SpectrogramPlayer.from_waveform(tone(500.0, 1.0), SR)
    assert player.boxes == []
    player.set_events([{"onset_s": 0.0, "offset_s": 0.5, "label": "x"}])
    assert player.boxes[0]["y0"] == 0.0 and player.boxes[0]["y1"] == 1.0
    player.position_s = 0.3
    state = player.get_state()
    assert state["position_s"] == 0.3 and "image" in state and "wav" in state
    assert "export default" in player._esm and "requestAnimationFrame" in player._esm
    with pytest.raises(ConfigError, match="from_waveform"):
        SpectrogramPlayer().set_events([])


def test_works_as_a_marimo_widget(tone: Tone) -> None:
    mo = pytest.importorskip("marimo")
    player = SpectrogramPlayer.from_waveform(tone(500.0, 0.5), SR)
    wrapped = mo.ui.anywidget(player)
    assert wrapped.widget is player
    assert "position_s" in wrapped.value


def test_colorize_uses_the_scale_ends() -> None:
    rgba = colorize(np.array([[-80.0, 0.0]]), 80.0, "Greys")
    assert rgba.shape == (1, 2, 4)
    assert rgba[0, 0, :3].tolist() != rgba[0, 1, :3].tolist()
    assert rgba[0, 0, :3].tolist() in ([255, 255, 255], [0, 0, 0])
