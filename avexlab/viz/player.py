"""A spectrogram player widget: playhead, click-to-seek and event boxes, for marimo and JupyterLab.

One anywidget (front end as an ES module string, no build step). In marimo wrap it with
``mo.ui.anywidget(player)``; in Jupyter display it directly. ``player.position_s`` follows playback.
"""

from __future__ import annotations

from typing import Any

import anywidget
import numpy as np
import plotly.colors
import traitlets

from avexlab.errors import ConfigError, expected_found
from avexlab.viz.audio import wav_bytes
from avexlab.viz.spectrogram import EventsLike, SpecKind, Spectrogram, as_events, compute_spectrogram

_ESM = r"""
function bytes(v) {
  if (v instanceof DataView) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  if (v instanceof ArrayBuffer) return new Uint8Array(v);
  if (ArrayBuffer.isView(v)) return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
  return new Uint8Array(0);
}
function render({ model, el }) {
  const root = document.createElement("div");
  root.className = "avexlab-player";
  const canvas = document.createElement("canvas");
  const audio = document.createElement("audio");
  audio.controls = true;
  root.append(canvas, audio);
  el.appendChild(root);
  const ctx = canvas.getContext("2d");
  let image = null, url = null, raf = 0, lastSync = 0;

  function loadImage() {
    const w = model.get("image_width"), h = model.get("image_height");
    const px = bytes(model.get("image"));
    canvas.width = w; canvas.height = h;
    canvas.style.height = model.get("height_px") + "px";
    if (w * h * 4 !== px.length || w === 0) { image = null; return; }
    image = new ImageData(new Uint8ClampedArray(px), w, h);
  }
  function loadAudio() {
    if (url) URL.revokeObjectURL(url);
    url = URL.createObjectURL(new Blob([bytes(model.get("wav"))], { type: "audio/wav" }));
    audio.src = url;
  }
  function now() { return audio.src ? audio.currentTime : model.get("position_s"); }
  function draw() {
    if (!image) return;
    const w = canvas.width, h = canvas.height, dur = model.get("duration_s") || 1;
    ctx.putImageData(image, 0, 0);
    ctx.lineWidth = 1; ctx.font = "11px sans-serif";
    for (const b of model.get("boxes")) {
      const x0 = b.x0 * w, x1 = b.x1 * w, y0 = (1 - b.y1) * h, y1 = (1 - b.y0) * h;
      ctx.strokeStyle = "rgba(255,255,255,0.9)";
      ctx.strokeRect(x0, y0, Math.max(x1 - x0, 1), y1 - y0);
      if (b.label) { ctx.fillStyle = "rgba(255,255,255,0.95)"; ctx.fillText(b.label, x0 + 2, y0 + 11); }
    }
    const x = Math.min(now() / dur, 1) * w;
    ctx.strokeStyle = "#ff3b30"; ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(x, 0); ctx.lineTo(x, h); ctx.stroke();
  }
  function sync(force) {
    const t = performance.now();
    if (!force && t - lastSync < 250) return;
    lastSync = t;
    model.set("position_s", audio.currentTime);
    model.set("playing", !audio.paused);
    model.save_changes();
  }
  function tick() {
    draw();
    if (!audio.paused) sync(false);
    raf = requestAnimationFrame(tick);
  }
  canvas.addEventListener("click", (e) => {
    const r = canvas.getBoundingClientRect();
    const frac = Math.min(Math.max((e.clientX - r.left) / r.width, 0), 1);
    audio.currentTime = frac * model.get("duration_s");
    sync(true); draw();
  });
  for (const ev of ["pause", "play", "seeked", "ended"]) audio.addEventListener(ev, () => sync(true));
  model.on("change:position_s", () => {
    const t = model.get("position_s");
    if (Math.abs(audio.currentTime - t) > 0.05) audio.currentTime = t;
  });
  model.on("change:image", () => { loadImage(); draw(); });
  model.on("change:wav", loadAudio);
  model.on("change:boxes", draw);
  loadImage(); loadAudio();
  audio.currentTime = model.get("position_s");
  raf = requestAnimationFrame(tick);
  return () => { cancelAnimationFrame(raf); audio.pause(); if (url) URL.revokeObjectURL(url); };
}
export default { render };
"""

_CSS = """
.avexlab-player { display: flex; flex-direction: column; gap: 4px; max-width: 100%; }
.avexlab-player canvas { width: 100%; image-rendering: auto; cursor: crosshair; background: #000; }
.avexlab-player audio { width: 100%; }
"""


def colorize(db: np.ndarray, top_db: float, colorscale: str = "Viridis") -> np.ndarray:
    """Map ``[F, T]`` dB values in ``[-top_db, 0]`` to ``[F, T, 4]`` uint8 RGBA through a plotly colour
    scale (row 0 stays row 0)."""
    stops = plotly.colors.get_colorscale(colorscale)
    pos = np.array([p for p, _ in stops])
    rgb = np.array(
        [
            plotly.colors.unlabel_rgb(plotly.colors.convert_colors_to_same_type(c, "rgb")[0][0])
            for _, c in stops
        ]
    )
    level = np.clip((db + top_db) / top_db, 0.0, 1.0)
    chans = [np.interp(level, pos, rgb[:, k]) for k in range(3)]
    out = np.empty((*db.shape, 4), dtype=np.uint8)
    for k in range(3):
        out[..., k] = np.round(chans[k]).astype(np.uint8)
    out[..., 3] = 255
    return out


def _pool_columns(db: np.ndarray, max_width: int) -> np.ndarray:
    """Shrink ``[F, T]`` to at most ``max_width`` columns by taking the max over groups of frames
    (short calls stay visible)."""
    t = db.shape[1]
    if t <= max_width:
        return db
    group = -(-t // max_width)
    pad = group * (-(-t // group)) - t
    padded = np.pad(db, ((0, 0), (0, pad)), constant_values=db.min())
    return padded.reshape(db.shape[0], -1, group).max(axis=2)


class SpectrogramPlayer(anywidget.AnyWidget):
    """Spectrogram image + audio with a moving playhead; click the image to seek.

    Synced traits (Python <-> browser):
        position_s: playback position in seconds (set it from Python to seek).
        playing: whether the browser is playing (read-only in spirit).
        boxes: event boxes as fractions of the image ``{x0, x1, y0, y1, label}`` (y 0 = bottom).
    Build it with :meth:`from_waveform`.
    """

    _esm = _ESM
    _css = _CSS

    image = traitlets.Bytes(b"").tag(sync=True)
    image_width = traitlets.Int(0).tag(sync=True)
    image_height = traitlets.Int(0).tag(sync=True)
    wav = traitlets.Bytes(b"").tag(sync=True)
    duration_s = traitlets.Float(0.0).tag(sync=True)
    boxes = traitlets.List(traitlets.Dict()).tag(sync=True)
    position_s = traitlets.Float(0.0).tag(sync=True)
    playing = traitlets.Bool(False).tag(sync=True)
    height_px = traitlets.Int(200).tag(sync=True)

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.spectrogram: Spectrogram | None = None

    @classmethod
    def from_waveform(
        cls,
        wave: Any,
        sample_rate: int,
        events: EventsLike = None,
        *,
        kind: SpecKind = "mel",
        f_max_hz: float | None = None,
        top_db: float = 80.0,
        max_width: int = 1200,
        height_px: int = 200,
        normalize_audio: bool = False,
        colorscale: str = "Viridis",
    ) -> SpectrogramPlayer:
        """Build a player for a mono clip.

        Args:
            wave: ``[T]`` float samples at ``sample_rate`` Hz.
            events: annotations (see :func:`avexlab.viz.spectrogram.as_events`), drawn as boxes.
            kind: ``"mel"`` or ``"stft"`` frequency axis.
            max_width: at most this many image columns (frames are max-pooled beyond it).
            height_px: displayed height of the image in CSS pixels.
            normalize_audio: peak-normalise the audio for listening (the image is unaffected).
        """
        spec = compute_spectrogram(wave, sample_rate, kind=kind, f_max_hz=f_max_hz, top_db=top_db)
        db = _pool_columns(spec.db, max_width)[::-1]  # row 0 = highest frequency, as on screen
        rgba = colorize(np.ascontiguousarray(db), top_db, colorscale)
        player = cls(
            image=rgba.tobytes(),
            image_width=int(rgba.shape[1]),
            image_height=int(rgba.shape[0]),
            wav=wav_bytes(wave, sample_rate, normalize=normalize_audio),
            duration_s=spec.duration_s,
            height_px=height_px,
        )
        player.spectrogram = spec
        player.set_events(events)
        return player

    def set_events(self, events: EventsLike) -> None:
        """Replace the drawn event boxes (times in seconds, band in Hz; no band = whole height)."""
        spec = self.spectrogram
        if spec is None:
            raise ConfigError(
                expected_found(
                    "SpectrogramPlayer",
                    "a spectrogram",
                    "none",
                    "Build it with SpectrogramPlayer.from_waveform.",
                )
            )
        boxes = []
        for ev in as_events(events):
            lo = 0.0 if ev.low_hz is None else float(spec.freq_fraction(ev.low_hz))
            hi = 1.0 if ev.high_hz is None else float(spec.freq_fraction(ev.high_hz))
            boxes.append(
                {
                    "x0": min(max(ev.onset_s / spec.duration_s, 0.0), 1.0),
                    "x1": min(max(ev.offset_s / spec.duration_s, 0.0), 1.0),
                    "y0": lo,
                    "y1": hi,
                    "label": ev.label,
                }
            )
        self.boxes = boxes
