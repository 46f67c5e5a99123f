"""Serve a notebook with ``marimo run`` and check in headless Chromium that its plots really rendered."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from notebook_browser import CHROMIUM, chromium_page, serve  # noqa: E402

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK = NOTEBOOKS / "05_call_types.py"

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


@pytest.fixture(scope="module")
def small_grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose ``results/grid`` holds a grid made here (where notebooks 03 and 07 look by default):
    the smoke profile with two training seeds, cut to the EfficientNet SL cell and its random-init twins
    and to the paper's probe recipe (no 500-step minimum), so that it trains and evaluates in about a
    minute on two cores."""
    from avexlab.experiments.grid import grid

    root = tmp_path_factory.mktemp("grid-for-notebooks")
    grid("smoke", out=root / "results" / "grid", world=root / "world", progress=False, train_seeds=(0, 1),
         architectures=("efficientnet",), paradigms=("sl",), probe_recipe="paper")  # fmt: skip
    return root


# Every trace of a plotly figure in the page, as plotly.js holds it after drawing.
TRACES = """el => ({
    titles: (el.layout.annotations || []).map(a => a.text),
    traces: (el.data || []).map(t => ({
        name: t.name, mode: t.mode, fill: t.fill || null, dash: (t.line && t.line.dash) || null,
        xaxis: t.xaxis || 'x', y: Array.from(t.y || []), names: (t.customdata || []).map(c => c[0]),
        up: t.error_y && t.error_y.array ? Array.from(t.error_y.array) : null,
        down: t.error_y && t.error_y.arrayminus ? Array.from(t.error_y.arrayminus) : null,
    })),
    bars: el.querySelectorAll('.errorbar').length,
})"""


def test_ablation_notebook_draws_intervals_chance_lines_twin_bands_and_verdicts(
    small_grid: Path, tmp_path: Path
) -> None:
    """Notebook 03 on a grid with items: the page shows the verdicts and their generated sentences, and its
    interval figure draws every cell's point with its 95% interval, the chance line of each column and the
    twins' band, with the very numbers the library computes from the same tables; its button adds the
    paper-shaped table's intervals (trained cells, and their gain over the twins)."""
    from avexlab.evaluate.chance import chance_levels
    from avexlab.evaluate.stats import cell_intervals, effect_interval
    from avexlab.evaluate.tables import PAPER_COLUMNS, ablation_table
    from avexlab.experiments.findings import evaluate_findings, load_grid_tables
    from avexlab.experiments.grid import grid_cost

    results, items = load_grid_tables(small_grid / "results" / "grid" / "results.parquet")
    trained = results.filter(~pl.col("paradigm").is_in(["random-init", "existing"]))["encoder"].unique()
    twin = "efficientnet-random-init"
    measured = [c for c, *_ in PAPER_COLUMNS if c in ablation_table(results, "paradigm").columns]
    # What the paper-shaped table must show once the button is pressed, with how often the string is on the
    # page: the SL cells' mean (also in the per-cell table above, as the grid has one SL cell) and its gain.
    by_paradigm = {}
    for c in measured:
        w = 1 / len(trained)
        iv = effect_interval(items, [(w, e, c) for e in trained])
        gain = effect_interval(items, [(w, e, c) for e in trained] + [(-1.0, twin, c)])
        by_paradigm[f"{iv.estimate:.3f} [{iv.ci_low:.3f}, {iv.ci_high:.3f}]"] = 2
        by_paradigm[f"{gain.estimate:+.3f} [{gain.ci_low:+.3f}, {gain.ci_high:+.3f}]"] = 1
    findings = {r["finding"]: r for r in evaluate_findings(results, items).iter_rows(named=True)}
    cells = {(r["encoder"], r["column"]): r for r in cell_intervals(items).iter_rows(named=True)}
    chance = dict(chance_levels(items).select("column", "chance").iter_rows())
    helps = findings["training_helps"]
    assert helps["verdict"] != "not measured"
    total = grid_cost(json.loads((small_grid / "results" / "grid" / "grid.json").read_text()))
    cost = f"{total['sittings']} sitting(s) added): {total['training_wall_s'] / 60:.1f} min of training wall time"
    with (
        serve(NOTEBOOKS / "03_ablations.py", tmp_path / "marimo.log", cwd=small_grid) as url,
        chromium_page() as page,
    ):
        page.goto(url)
        # the verdict, in the sentence generated from it, and the findings table
        sentence = page.locator("li", has_text="Trained encoders beat their random initialisation")
        sentence.wait_for(timeout=240_000)
        prose = sentence.inner_text()
        page.get_by_text("training_helps").first.wait_for(timeout=60_000)
        figure = page.locator(".js-plotly-plot").filter(has_text="Estimates and 95% intervals")
        figure.wait_for(timeout=120_000)
        page.wait_for_timeout(1500)  # plotly's last redraw
        drawn = figure.evaluate(TRACES)
        page.get_by_role("button", name="Add the 95% intervals").click()
        page.get_by_text(list(by_paradigm)[-1], exact=True).first.wait_for(timeout=240_000)
        shown = {v: page.get_by_text(v, exact=True).count() for v in by_paradigm}
        not_computed = page.get_by_text("not computed").count()
        cost_shown = page.get_by_text(cost).count()
        page.screenshot(path=str(tmp_path / "03_ablations.png"), full_page=True)
    assert cost_shown >= 1, f"the grid's cost over its sittings: {cost!r} not on the page"
    assert all(shown[v] >= n for v, n in by_paradigm.items()) and not not_computed, (shown, not_computed)
    assert f"{helps['verdict']} on this grid" in prose
    assert (
        f"Effect {helps['effect']:+.3f} (95% interval {helps['ci_low']:+.3f} to {helps['ci_high']:+.3f}"
        in prose
    )
    panel = {("x" if i == 0 else f"x{i + 1}"): title for i, title in enumerate(drawn["titles"])}
    points = [t for t in drawn["traces"] if t["mode"] == "markers"]
    lines = [t for t in drawn["traces"] if t["dash"] == "dash"]
    bands = [t for t in drawn["traces"] if t["fill"] == "toself"]
    assert points and lines and bands and drawn["bars"] > 0, drawn
    # float64 through JSON and back: the page holds the library's numbers (a few roundings at most)
    close = {"rel": 1e-12, "abs": 1e-15}
    for t in points:
        for name, y, up, down in zip(t["names"], t["y"], t["up"], t["down"], strict=True):
            cell = cells[(name, panel[t["xaxis"]])]
            assert y == pytest.approx(cell["estimate"], **close)
            assert (y + up, y - down) == (
                pytest.approx(cell["ci_high"], **close),
                pytest.approx(cell["ci_low"], **close),
            )
    assert {panel[t["xaxis"]]: t["y"][0] for t in lines} == pytest.approx(
        {panel[t["xaxis"]]: chance[panel[t["xaxis"]]] for t in lines}
    )
    for t in bands:  # the twins' interval of that column
        twin = cells[("efficientnet-random-init", panel[t["xaxis"]])]
        assert (min(t["y"]), max(t["y"])) == (
            pytest.approx(twin["ci_low"], **close),
            pytest.approx(twin["ci_high"], **close),
        )
    assert {panel[t["xaxis"]] for t in points} == {panel[t["xaxis"]] for t in lines} == set(panel.values())


def test_paper_figures_notebook_draws_intervals_chance_lines_verdicts_and_a_birdnet_row(
    small_grid: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Notebook 07 on the same grid: the verdicts' sentences, the headline figure with the paper's points,
    the grid's and the live encoders' intervals, a chance line per test set and the twins' band, and
    avexlab's BirdNET row (evaluated live: the grid has none) named as what it is."""
    pytest.importorskip("ai_edge_litert")
    from avexlab.experiments.findings import evaluate_findings, load_grid_tables

    results, items = load_grid_tables(small_grid / "results" / "grid" / "results.parquet")
    helps = evaluate_findings(results, items).filter(pl.col("finding") == "training_helps").row(0, named=True)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # the live rows' embedding cache
    with (
        serve(NOTEBOOKS / "07_paper_figures.py", tmp_path / "marimo.log", cwd=small_grid) as url,
        chromium_page() as page,
    ):
        page.goto(url)
        sentence = page.locator("li", has_text="Trained encoders beat their random initialisation")
        sentence.wait_for(timeout=240_000)
        prose = sentence.first.inner_text()
        figure = page.locator(".js-plotly-plot").filter(has_text="Headline columns")
        figure.wait_for(timeout=600_000)
        page.wait_for_timeout(1500)
        drawn = figure.evaluate(TRACES)
        birdnet = page.get_by_text("birdnet (released BirdNET V2.4, smoke world, live").count()
        page.screenshot(path=str(tmp_path / "07_paper_figures.png"), full_page=True)
    assert f"{helps['verdict']} on this grid" in prose
    points = [t for t in drawn["traces"] if t["mode"] == "markers"]
    by_source = {t["name"] for t in points}
    assert by_source == {
        "paper, real data",
        "avexlab, synthetic world: grid (smoke)",
        "avexlab, synthetic world: live (smoke)",
    }
    assert all(
        t["up"] is None or all(u is None for u in t["up"]) for t in points if t["name"].startswith("paper")
    )
    assert all(any(u is not None for u in t["up"]) for t in points if t["name"].startswith("avexlab"))
    assert {t["name"] for t in drawn["traces"] if t["dash"] == "dash"} == {
        "chance, grid (smoke)",
        "chance, live (smoke)",
    }
    assert any(t["fill"] == "toself" for t in drawn["traces"]) and drawn["bars"] > 0
    live = {n for t in points if t["name"].endswith("live (smoke)") for n in t["names"]}
    assert "birdnet (released BirdNET V2.4, smoke world, live, <= 8 clips/split)" in live and birdnet > 0
    assert all("live" in n for n in live) and not live & set(results["encoder"])
