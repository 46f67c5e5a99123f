"""Serve a notebook with ``marimo run`` and check in headless Chromium that its plots really rendered."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from notebook_browser import CHROMIUM, chromium_page, serve  # noqa: E402

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "05_call_types.py"

pytestmark = [pytest.mark.browser, pytest.mark.slow]

if not CHROMIUM.exists():  # the lead's setup installs Debian's chromium (apt-get install -y chromium)
    pytest.skip(f"{CHROMIUM} is absent: apt-get install -y chromium", allow_module_level=True)
pytest.importorskip("playwright.sync_api")


PLAYER_APP = """
import marimo

app = marimo.App()


@app.cell
def _():
    import marimo as mo
    import numpy as np

    from avexlab.viz import SpectrogramPlayer

    sr = 16000
    t = np.arange(4 * sr) / sr
    wave = (0.3 * np.sin(2 * np.pi * (500 + 800 * t) * t)).astype("float32")
    events = [{"onset_s": 1.0, "offset_s": 2.0, "label": "ev", "low_hz": 500.0, "high_hz": 4000.0}]
    player = mo.ui.anywidget(SpectrogramPlayer.from_waveform(wave, sr, events))
    player
    return mo, player


@app.cell
def _(mo, player):
    mo.md(f"position={player.value['position_s']:.2f}")
    return
"""


def test_player_draws_and_click_seeks_with_position_synced_to_python(tmp_path: Path) -> None:
    app = tmp_path / "player_app.py"
    app.write_text(PLAYER_APP)
    with serve(app, tmp_path / "marimo.log") as url, chromium_page() as page:
        page.goto(url)
        canvas = page.locator(".avexlab-player canvas").first  # inside the widget's shadow root
        canvas.wait_for(timeout=120_000)
        page.wait_for_timeout(500)
        size = canvas.evaluate("c => [c.width, c.height]")
        # The playhead (red) is drawn at x = 0 before any click; a pixel in the middle is spectrogram.
        box = canvas.bounding_box()
        assert box is not None
        canvas.click(position={"x": box["width"] * 0.75, "y": 10})
        page.get_by_text("position=3.00").wait_for(timeout=30_000)
        red_at_click = canvas.evaluate(
            "c => { const d = c.getContext('2d').getImageData(Math.round(c.width * 0.75), 5, 1, 1).data;"
            " return d[0] > 200 && d[1] < 120 && d[2] < 120; }"
        )
        page.screenshot(path=str(tmp_path / "player.png"))
    assert size[0] > 100 and size[1] == 128
    assert red_at_click, "no playhead drawn where the canvas was clicked"


def test_spectrogram_and_embedding_map_render(tmp_path: Path) -> None:
    with serve(NOTEBOOK, tmp_path / "marimo.log") as url, chromium_page() as page:
        page.goto(url)
        # Kernel start, torch import and the smoke world take a while on 2 shared cores. Plots live in
        # the shadow roots of marimo's plugins: Playwright locators pierce them, document queries do not.
        plot_nodes = page.locator(".js-plotly-plot")
        plot_nodes.nth(1).wait_for(timeout=180_000)
        page.wait_for_timeout(1500)  # let plotly finish drawing
        plots = [
            plot_nodes.nth(i).evaluate(
                """el => ({
                    types: (el.data || []).map(t => t.type || 'scatter'),
                    points: el.querySelectorAll('.scatterlayer .point').length,
                    heatmaps: el.querySelectorAll('.heatmaplayer image, .hm image').length,
                })"""
            )
            for i in range(plot_nodes.count())
        ]
        players = page.locator(".avexlab-player canvas")
        widths = [players.nth(i).evaluate("c => c.width") for i in range(players.count())]
        page.screenshot(path=str(tmp_path / "05_call_types.png"), full_page=True)
        # Lasso every point of the embedding map: the notebook must show the selected clips' players.
        scatter_index = next(i for i, p in enumerate(plots) if "heatmap" not in p["types"])
        drag = plot_nodes.nth(scatter_index).locator(".nsewdrag").first.bounding_box()
        assert drag is not None
        x0, y0 = drag["x"] + 3, drag["y"] + 3
        x1, y1 = drag["x"] + drag["width"] - 3, drag["y"] + drag["height"] - 3
        page.mouse.move(x0, y0)
        page.mouse.down()
        for x, y in [(x1, y0), (x1, y1), (x0, y1), (x0, y0 + 5)]:
            page.mouse.move(x, y, steps=8)
        page.mouse.up()
        selected_text = page.get_by_text("clips selected")
        selected_text.wait_for(timeout=60_000)
        selection = selected_text.inner_text()
        page.wait_for_timeout(1000)
        players_after = page.locator(".avexlab-player canvas").count()
        page.screenshot(path=str(tmp_path / "05_call_types_selected.png"), full_page=True)
    heat = [p for p in plots if "heatmap" in p["types"]]
    scatter = [p for p in plots if "scatter" in p["types"]]
    assert heat, f"no spectrogram heatmap among rendered plots {plots}"
    assert any(p["heatmaps"] > 0 for p in heat), f"a heatmap trace exists but drew no image: {heat}"
    assert scatter and max(p["points"] for p in scatter) >= 10, (
        f"embedding map drew too few points: {scatter}"
    )
    assert widths and all(w > 0 for w in widths), f"spectrogram player canvas missing or empty: {widths}"
    assert (tmp_path / "05_call_types.png").stat().st_size > 10_000
    n_points = max(p["points"] for p in scatter)
    assert selection.startswith(f"{n_points} clips selected"), selection
    assert players_after == min(4, n_points), (
        f"expected a player per selected clip (max 4), found {players_after}"
    )


def test_screenshot_tool_captures_a_settled_notebook(tmp_path: Path) -> None:
    """``tools/screenshot_notebooks.py`` (the README's pictures) waits for every cell: the picture of the
    tour shows its spectrogram player, which exists only after the world is built and a clip rendered."""
    import numpy as np
    from PIL import Image
    from screenshot_notebooks import screenshot

    out = screenshot("01_tour", scale="smoke", height=1800, out_dir=tmp_path, timeout_s=300)
    image = Image.open(out)
    assert image.size == (1280, 1800) and image.mode == "P"
    rgb = np.asarray(image.convert("RGB"), dtype=np.int16)
    # The player's spectrogram (viridis) is the one large colourful area of the page; text, tables and
    # controls are grey. A picture taken while the world was still building has almost no colour.
    colourful = float(((rgb.max(-1) - rgb.min(-1)) > 60).mean())
    assert colourful > 0.03, f"{colourful:.1%} colourful pixels: the player was not drawn yet"
