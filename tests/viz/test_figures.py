from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
import pytest
from tolerance import rounding_approx

from avexlab.errors import ConfigError, EvaluationError
from avexlab.viz.figures import (
    embedding_map,
    interval_figure,
    reduce_embeddings,
    result_bars,
    result_lines,
    selected_rows,
    spectrogram_figure,
)
from avexlab.viz.spectrogram import Event, hz_to_mel

SR = 16000
Tone = Callable[..., np.ndarray]  # the `tone` fixture (conftest.py)


def test_spectrogram_figure_heatmap_and_event_boxes(tone: Tone) -> None:
    events = [Event(0.2, 0.4, "a", 500.0, 1500.0), Event(0.6, 0.9, "b")]
    fig = spectrogram_figure(tone(1000.0, 1.0), SR, events, kind="mel", title="t")
    (heat,) = fig.data
    z = np.asarray(heat.z)
    assert z.shape == (128, 101)
    assert np.asarray(heat.x)[-1] == 1.0  # frame 100 x 160 / 16000: one correctly rounded division
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert [s.label.text for s in rects] == ["a", "b"]
    # the box edges are hz_to_mel of the band (float64), perhaps via float32 axis values: a few roundings
    assert rects[0].y0 == rounding_approx(float(hz_to_mel(500.0)), ops=4, dtype=np.float32)
    assert rects[1].y1 == rounding_approx(float(hz_to_mel(8000.0)), ops=4, dtype=np.float32)  # full height
    assert "1000" in fig.layout.yaxis.ticktext


def test_spectrogram_figure_pools_long_clips(tone: Tone) -> None:
    fig = spectrogram_figure(tone(300.0, 10.0), SR, kind="stft", max_width=250)
    assert np.asarray(fig.data[0].z).shape[1] <= 250
    assert np.asarray(fig.data[0].y).max() <= SR / 2


def test_embedding_map_traces_hover_and_selection_round_trip() -> None:
    rng = np.random.default_rng(0)
    coords = rng.normal(size=(30, 2))
    labels = ["song", "call", "alarm"] * 10
    fig = embedding_map(coords, labels, {"clip": [f"c{i}" for i in range(30)]}, color_name="call type")
    assert sorted(t.name for t in fig.data) == ["alarm", "call", "song"]
    assert sum(len(t.x) for t in fig.data) == 30
    call = next(i for i, t in enumerate(fig.data) if t.name == "call")
    # Point 2 of the "call" trace is row 7 (rows 1, 4, 7, ... are calls).
    assert fig.data[call].customdata[2][1] == "c7"
    assert [fig.data[call].x[2], fig.data[call].y[2]] == coords[7].tolist()  # the coordinates themselves
    assert selected_rows(
        fig, [{"curveNumber": call, "pointIndex": 2}, {"curveNumber": call, "pointNumber": 0}]
    ) == [
        1,
        7,
    ]
    assert "clip: %{customdata[1]}" in fig.data[0].hovertemplate
    assert fig.layout.dragmode == "lasso"


def test_embedding_map_numeric_colour_and_errors() -> None:
    fig = embedding_map(np.zeros((4, 2)), [0.1, 0.2, 0.3, 0.4])
    assert len(fig.data) == 1 and list(fig.data[0].marker.color) == [0.1, 0.2, 0.3, 0.4]
    with pytest.raises(ConfigError, match="4 values"):
        embedding_map(np.zeros((4, 2)), ["a", "b"])
    with pytest.raises(ConfigError, match=r"\[N, 2\]"):
        embedding_map(np.zeros((4, 3)))
    with pytest.raises(ConfigError, match="curveNumber"):
        selected_rows(fig, [{"x": 1}])


def test_pca_is_the_top_two_principal_components_and_cached() -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 6)) * np.array([5.0, 3.0, 1.0, 0.5, 0.1, 0.1])
    out = reduce_embeddings(x, "pca", seed=0)
    assert out.shape == (40, 2) and out.dtype == np.float32
    centred = x - x.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    ref = centred @ vt[:2].T
    for k in range(2):
        assert abs(np.corrcoef(out[:, k], ref[:, k])[0, 1]) > 0.9999
    again = reduce_embeddings(x, "pca", seed=0)
    np.testing.assert_array_equal(out, again)
    again[0, 0] = 1e9  # the cache hands out copies
    assert reduce_embeddings(x, "pca", seed=0)[0, 0] != 1e9


def test_reduce_rejects_bad_inputs() -> None:
    with pytest.raises(EvaluationError, match="N >= 3"):
        reduce_embeddings(np.zeros((2, 4)))
    with pytest.raises(EvaluationError, match="finite"):
        reduce_embeddings(np.full((5, 4), np.nan))
    with pytest.raises(EvaluationError, match="n_neighbors"):
        reduce_embeddings(np.ones((5, 4)), "umap", n_neighbors=15)
    with pytest.raises(ConfigError, match="'pca' or 'umap'"):
        reduce_embeddings(np.ones((5, 4)), "tsne")  # type: ignore[arg-type]


@pytest.mark.slow
def test_umap_is_deterministic_for_a_seed() -> None:
    pytest.importorskip("umap")
    rng = np.random.default_rng(2)
    x = np.concatenate([rng.normal(0, 1, (20, 5)), rng.normal(8, 1, (20, 5))]).astype(np.float32)
    a = reduce_embeddings(x, "umap", seed=3, n_neighbors=5, n_epochs=30)
    b = reduce_embeddings(x + 0.0, "umap", seed=3, n_neighbors=5, n_epochs=30)
    np.testing.assert_array_equal(a, b)
    # The two blobs stay apart in 2-D.
    gap = np.linalg.norm(a[:20].mean(0) - a[20:].mean(0))
    spread = max(a[:20].std(0).max(), a[20:].std(0).max())
    assert gap > 2 * spread


def _results() -> pl.DataFrame:
    rows = []
    for enc, base in [("beats", 0.8), ("eat", 0.7)]:
        for domain, drop in [("focal", 0.0), ("soundscape", 0.2)]:
            for seed in range(3):
                for snr in (-5.0, 5.0):
                    rows.append(
                        {
                            "encoder": enc,
                            "domain": domain,
                            "metric": "accuracy",
                            "seed": seed,
                            "snr_db": snr,
                            "value": base - drop + 0.01 * seed + 0.01 * snr,
                        }
                    )
    return pl.DataFrame(rows)


def test_result_bars_mean_and_std_over_seeds() -> None:
    fig = result_bars(_results().filter(pl.col("snr_db") == 5.0), x="encoder", color="domain")
    assert [t.name for t in fig.data] == ["focal", "soundscape"]
    focal = fig.data[0]
    assert list(focal.x) == ["beats", "eat"]
    # means and sample standard deviations over 3 seeds of scores below 1: a dozen float64 roundings of
    # values up to 1 (the deviations from the mean cancel, so the std's error is relative to 1, not 0.01)
    assert focal.y[0] == rounding_approx(0.8 + 0.01 + 0.05, ops=12, scale=1.0)
    assert focal.error_y.array[0] == rounding_approx(0.01, ops=12, scale=1.0)
    assert fig.data[1].y[1] == rounding_approx(0.7 - 0.2 + 0.01 + 0.05, ops=12, scale=1.0)


def test_result_plots_facets_and_metric_guard() -> None:
    res = _results()
    fig = result_lines(res, x="snr_db", color="encoder", facet="domain")
    assert len(fig.data) == 4
    assert [a.text for a in fig.layout.annotations] == ["domain = focal", "domain = soundscape"]
    assert list(fig.data[0].x) == [-5.0, 5.0] and fig.data[0].y[1] > fig.data[0].y[0]
    mixed = pl.concat([res, res.with_columns(metric=pl.lit("map"))])
    with pytest.raises(EvaluationError, match="one metric"):
        result_bars(mixed)
    with pytest.raises(EvaluationError, match="columns"):
        result_bars(res, x="nope")


def test_a_group_keeps_its_colour_in_every_panel_and_many_panels_wrap() -> None:
    res = pl.concat(
        [_results().with_columns(metric=pl.lit(f"m{i}"), value=pl.col("value") + i) for i in range(6)]
    )
    fig = result_bars(
        res.rename({"metric": "panel"}).with_columns(metric=pl.lit("x")),
        x="encoder",
        color="domain",
        facet="panel",
    )
    colours: dict[str, set[str]] = {}
    for trace in fig.data:
        colours.setdefault(trace.name, set()).add(trace.marker.color)
    assert set(colours) == {"focal", "soundscape"}
    assert all(len(c) == 1 for c in colours.values())
    assert colours["focal"] != colours["soundscape"]
    # six panels wrap onto two rows of four: every trace sits on the axis of its own panel
    assert [a.text for a in fig.layout.annotations][:6] == [f"panel = m{i}" for i in range(6)]
    assert {t.yaxis for t in fig.data[8:12]} <= {"y5", "y6"}
    lines = result_lines(res.filter(pl.col("metric") == "m0"), x="snr_db", color="encoder", facet="domain")
    assert lines.data[0].line.color == lines.data[2].line.color != lines.data[1].line.color


def test_legend_lists_a_group_missing_from_the_first_panel() -> None:
    res = _results().filter(pl.col("snr_db") == 5.0)
    # panel "a" has only focal rows; soundscape first appears in panel "b"
    res = pl.concat(
        [
            res.filter(pl.col("domain") == "focal").with_columns(panel=pl.lit("a")),
            res.with_columns(panel=pl.lit("b")),
        ]
    )
    fig = result_bars(res, x="encoder", color="domain", facet="panel")
    assert sorted(t.name for t in fig.data if t.showlegend) == ["focal", "soundscape"]


@pytest.mark.parametrize("n", [6, 12, 40])
def test_embedding_map_gives_every_category_its_own_look(n: int) -> None:
    """Colours are set on each trace (a notebook theme's colour cycle, marimo's has five, would repeat
    them); past the palette the marker symbol changes too."""
    labels = [f"type-{i:02d}" for i in range(n)] * 2
    fig = embedding_map(np.random.default_rng(0).normal(size=(2 * n, 2)), labels)
    looks = [(t.marker.color, t.marker.symbol) for t in fig.data]
    assert len(fig.data) == n and len(set(looks)) == n and all(c is not None for c, _ in looks)
    if n <= 10:
        assert len({c for c, _ in looks}) == n  # few categories: colour alone tells them apart


def _cells() -> pl.DataFrame:
    """Two columns x five encoders of two architectures (listed out of order), one without an interval."""
    rows = []
    for c, column in enumerate(("BEANS clf probe", "BEANS clf R-auc")):
        for e, (enc, arch, paradigm) in enumerate(
            [
                ("beats-all-sl", "beats", "sl"),
                ("efficientnet-all-sl", "efficientnet", "sl"),
                ("beats-all-ssl", "beats", "ssl"),
                ("beats-bio-sl", "beats", "sl"),
                ("efficientnet-bio-sl", "efficientnet", "sl"),
            ]
        ):
            est = 0.3 + 0.1 * c + 0.01 * e
            lo, hi = (
                (None, None) if enc == "beats-all-ssl" and c == 1 else (est - 0.05 - 0.001 * e, est + 0.04)
            )
            rows.append(dict(encoder=enc, architecture=arch, paradigm=paradigm, column=column,
                             estimate=est, ci_low=lo, ci_high=hi))  # fmt: skip
    return pl.DataFrame(rows)


def test_interval_figure_draws_intervals_chance_lines_and_twin_bands() -> None:
    cells = _cells()
    chance = pl.DataFrame({"column": ["BEANS clf probe", "BEANS clf R-auc"], "chance": [0.25, 0.5]})
    bands = pl.DataFrame(
        {
            "column": ["BEANS clf probe", "BEANS clf probe", "BEANS clf R-auc"],
            "architecture": ["beats", "efficientnet", "beats"],
            "estimate": [0.28, 0.2, 0.45],
            "ci_low": [0.2, 0.15, 0.4],
            "ci_high": [0.33, 0.26, 0.52],
        }
    )
    fig = interval_figure(cells, color="paradigm", group="architecture", chance=chance, bands=bands, cols=2)
    points = [t for t in fig.data if t.mode == "markers"]
    lines = [t for t in fig.data if t.line.dash == "dash"]
    filled = [t for t in fig.data if t.fill == "toself"]
    assert [t.name for t in points] == ["sl", "ssl", "sl", "ssl"]  # per panel, per paradigm
    assert [len(t.x) for t in filled] == [5, 5, 5] and len(lines) == 2
    # positions: architectures in order of first appearance, a gap between them; sl before ssl inside one
    ticks = dict(zip(fig.layout.xaxis.ticktext, fig.layout.xaxis.tickvals, strict=True))
    assert ticks == {
        "beats-all-sl": 0, "beats-bio-sl": 1, "beats-all-ssl": 2, "efficientnet-all-sl": 4,
        "efficientnet-bio-sl": 5,
    }  # fmt: skip
    assert fig.layout.xaxis2.tickvals == fig.layout.xaxis.tickvals
    # every point sits at its encoder's position with its own asymmetric interval
    for t in points:
        panel = "BEANS clf probe" if t.xaxis == "x" else "BEANS clf R-auc"
        for name, x, y, up, down in zip(
            [c[0] for c in t.customdata], t.x, t.y, t.error_y.array, t.error_y.arrayminus, strict=True
        ):
            row = cells.filter((pl.col("encoder") == name) & (pl.col("column") == panel)).row(0, named=True)
            assert (x, y) == (ticks[name], row["estimate"])
            if row["ci_low"] is None:
                assert up is None and down is None  # no interval, no bar
            else:
                assert (up, down) == (row["ci_high"] - row["estimate"], row["estimate"] - row["ci_low"])
    # the chance line of each panel spans it at that panel's level
    assert [(t.xaxis, t.y) for t in lines] == [("x", (0.25, 0.25)), ("x2", (0.5, 0.5))]
    assert lines[0].x[0] < -0.5 and lines[0].x[1] > 5.5
    # a band covers its architecture's points only, from the twins' low to high end, behind the points
    beats = filled[0]
    assert (min(beats.x), max(beats.x)) == (-0.45, 2.45) and set(beats.y) == {0.2, 0.33}
    assert (min(filled[1].x), max(filled[1].x)) == (3.55, 5.45) and filled[2].xaxis == "x2"
    assert fig.data.index(beats) < fig.data.index(points[0])
    assert sum(bool(t.showlegend) for t in fig.data) == 4  # band, chance, sl, ssl: once each


def test_interval_figure_labels_several_chance_lines_and_refuses_bad_tables() -> None:
    cells = _cells()
    chance = pl.DataFrame(
        {"column": ["BEANS clf probe"] * 2, "chance": [0.25, 0.3], "label": ["chance, grid", "chance, live"]}
    )
    fig = interval_figure(cells, color="architecture", group=None, chance=chance, cols=1)
    assert [t.name for t in fig.data if t.line.dash == "dash"] == ["chance, grid", "chance, live"]
    assert fig.layout.xaxis.showticklabels is False and fig.layout.xaxis2.showticklabels is True  # one column
    # a long name is written on several lines
    long = cells.with_columns(
        pl.col("encoder").str.replace("beats-all-sl$", "beats-all-sl (random init, smoke world, live)")
    )
    ticks = interval_figure(long, group=None).layout.xaxis.ticktext
    assert "beats-all-sl (random init, smoke<br>world, live)" in ticks and "beats-bio-sl" in ticks
    with pytest.raises(EvaluationError, match="one row per"):
        interval_figure(pl.concat([cells, cells.head(1)]))
    with pytest.raises(EvaluationError, match="ci_low"):
        interval_figure(cells.drop("ci_low"))
