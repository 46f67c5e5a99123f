"""Plotly figures: spectrograms with events, embedding maps (+ PCA/UMAP), and result plots.

Every function returns a ``plotly.graph_objects.Figure``; in marimo wrap it with ``mo.ui.plotly`` to make
selections reactive, in Jupyter use ``go.FigureWidget(fig)``.
"""

from __future__ import annotations

import hashlib
import textwrap
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
import plotly.graph_objects as go
import polars as pl

from avexlab.errors import ConfigError, EvaluationError, expected_found
from avexlab.frames import exact_mean, exact_std
from avexlab.viz.spectrogram import EventsLike, SpecKind, as_events, compute_spectrogram, hz_to_mel

# Category colours of embedding maps, set on each trace so that a notebook's plotly theme (marimo's cycles
# five colours) cannot give two call types one colour: 10 well-separated colours (D3) for up to 10
# categories, 26 (Alphabet) beyond; past 26 the marker symbol changes too, so every category stays apart.
_FEW_COLOURS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
_MANY_COLOURS = (
    "#AA0DFE", "#3283FE", "#85660D", "#782AB6", "#565656", "#1C8356", "#16FF32", "#F7E1A0", "#E2E2E2",
    "#1CBE4F", "#C4451C", "#DEA0FD", "#FE00FA", "#325A9B", "#FEAF16", "#F8A19F", "#90AD1C", "#F6222E",
    "#1CFFCE", "#2ED9FF", "#B10DA1", "#C075A6", "#FC1CBF", "#B00068", "#FBE426", "#FA0087",
)  # fmt: skip
_SYMBOLS = ("circle", "square", "diamond", "triangle-up", "cross", "x", "star", "triangle-down", "pentagon")


def category_styles(n: int) -> list[tuple[str, str]]:
    """``n`` distinct ``(colour, marker symbol)`` pairs for the categories of a map (see ``_FEW_COLOURS``)."""
    palette = _FEW_COLOURS if n <= len(_FEW_COLOURS) else _MANY_COLOURS
    return [(palette[i % len(palette)], _SYMBOLS[(i // len(palette)) % len(_SYMBOLS)]) for i in range(n)]


_HZ_TICKS = np.array([100, 250, 500, 1000, 2000, 4000, 8000, 16000, 32000, 64000], dtype=np.float64)


def spectrogram_figure(
    wave: Any,
    sample_rate: int,
    events: EventsLike = None,
    *,
    kind: SpecKind = "mel",
    f_max_hz: float | None = None,
    top_db: float = 80.0,
    max_width: int = 1500,
    title: str | None = None,
    height: int = 300,
) -> go.Figure:
    """Heatmap of a clip's spectrogram (x in seconds, y in Hz) with events drawn as labelled rectangles.

    Args:
        wave: ``[T]`` float samples at ``sample_rate`` Hz.
        events: annotations (see :func:`avexlab.viz.spectrogram.as_events`); no band = whole height.
        kind: ``"mel"`` (y axis evenly spaced in mel, ticks labelled in Hz) or ``"stft"`` (linear Hz).
        max_width: at most this many time columns (frames are max-pooled beyond it).
    """
    spec = compute_spectrogram(wave, sample_rate, kind=kind, f_max_hz=f_max_hz, top_db=top_db)
    db, times = spec.db, spec.times_s
    group = max(1, -(-db.shape[1] // max_width))
    if group > 1:
        n = -(-db.shape[1] // group)
        db = np.pad(db, ((0, 0), (0, n * group - db.shape[1])), constant_values=-top_db)
        db = db.reshape(db.shape[0], n, group).max(axis=2)
        times = times[::group][:n]

    def y_of(hz: np.ndarray | float) -> np.ndarray:
        return hz_to_mel(hz) if kind == "mel" else np.asarray(hz, dtype=np.float64)

    fig = go.Figure(
        go.Heatmap(
            x=times,
            y=y_of(spec.freqs_hz),
            z=db,
            zmin=-top_db,
            zmax=0.0,
            colorscale="Viridis",
            colorbar={"title": {"text": "dB"}},
            hovertemplate="%{x:.2f} s<br>%{z:.0f} dB<extra></extra>",
            name="spectrogram",
        )
    )
    lo_y, hi_y = float(y_of(spec.f_min_hz)), float(y_of(spec.f_max_hz))
    for ev in as_events(events):
        fig.add_shape(
            type="rect",
            x0=ev.onset_s,
            x1=ev.offset_s,
            y0=lo_y if ev.low_hz is None else float(y_of(ev.low_hz)),
            y1=hi_y if ev.high_hz is None else float(y_of(ev.high_hz)),
            line={"color": "white", "width": 1.5},
            label={"text": ev.label, "textposition": "top left", "font": {"color": "white", "size": 10}},
        )
    yaxis: dict[str, Any] = {"title": {"text": "frequency (Hz)"}, "range": [lo_y, hi_y]}
    if kind == "mel":
        ticks = _HZ_TICKS[(_HZ_TICKS >= spec.f_min_hz) & (_HZ_TICKS <= spec.f_max_hz)]
        yaxis |= {"tickvals": y_of(ticks).tolist(), "ticktext": [f"{t:g}" for t in ticks]}
    fig.update_layout(
        title={"text": title} if title else None,
        xaxis={"title": {"text": "time (s)"}, "range": [0.0, spec.duration_s]},
        yaxis=yaxis,
        height=height,
        margin={"l": 60, "r": 20, "t": 40 if title else 10, "b": 40},
    )
    return fig


HoverLike = pl.DataFrame | Mapping[str, Sequence[Any]] | None


def embedding_map(
    coords: Any,
    color_by: Sequence[Any] | None = None,
    hover: HoverLike = None,
    *,
    color_name: str = "label",
    title: str | None = None,
    height: int = 500,
    marker_size: int = 6,
) -> go.Figure:
    """Scatter of 2-D embedding coordinates, one trace per category (click the legend to hide one).

    Args:
        coords: ``[N, 2]`` coordinates (e.g. from :func:`reduce_embeddings`).
        color_by: ``N`` values; strings (or any non-float) give one trace per category, floats a colour bar.
        hover: columns shown on hover, ``N`` values each.

    Each point's row number is stored in ``customdata[0]``; :func:`selected_rows` maps a selection back
    to rows. The default drag mode is lasso selection.
    """
    xy = np.asarray(coords, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2:
        raise ConfigError(
            expected_found("coords", "shape [N, 2]", f"shape {list(xy.shape)}", "Reduce to 2-D first.")
        )
    n = xy.shape[0]
    cols: dict[str, list[Any]] = {}
    if hover is not None:
        items = hover.to_dict(as_series=False) if isinstance(hover, pl.DataFrame) else hover
        for name, values in items.items():
            cols[name] = list(values)
    if color_by is not None:
        color_by = list(color_by)
    for name, values in [*cols.items(), *([(color_name, color_by)] if color_by is not None else [])]:
        if len(values) != n:
            raise ConfigError(
                expected_found(
                    f"column {name!r}", f"{n} values (one per point)", f"{len(values)}", "Align it."
                )
            )
    hover_lines = [f"{name}: %{{customdata[{k + 1}]}}" for k, name in enumerate(cols)]
    template = "<br>".join(["row: %{customdata[0]}", *hover_lines]) + "<extra>%{fullData.name}</extra>"
    custom = np.empty((n, 1 + len(cols)), dtype=object)
    custom[:, 0] = np.arange(n)
    for k, values in enumerate(cols.values()):
        custom[:, k + 1] = values

    fig = go.Figure()
    numeric = color_by is not None and all(isinstance(v, float | np.floating) for v in color_by)
    if color_by is None or numeric:
        marker: dict[str, Any] = {"size": marker_size}
        if numeric:
            marker |= {
                "color": color_by,
                "colorscale": "Viridis",
                "colorbar": {"title": {"text": color_name}},
            }
        fig.add_trace(
            go.Scatter(
                x=xy[:, 0],
                y=xy[:, 1],
                mode="markers",
                marker=marker,
                customdata=custom,
                hovertemplate=template,
                name="points",
            )
        )
    else:
        labels = np.array(["(none)" if v is None else str(v) for v in color_by], dtype=object)
        cats = sorted(set(labels.tolist()))
        for cat, (colour, symbol) in zip(cats, category_styles(len(cats)), strict=True):
            idx = np.flatnonzero(labels == cat)
            fig.add_trace(
                go.Scatter(
                    x=xy[idx, 0],
                    y=xy[idx, 1],
                    mode="markers",
                    marker={"size": marker_size, "color": colour, "symbol": symbol},
                    customdata=custom[idx],
                    hovertemplate=template,
                    name=cat,
                )
            )
    fig.update_layout(
        title={"text": title} if title else None,
        dragmode="lasso",
        height=height,
        legend={"title": {"text": color_name}},
        xaxis={"title": {"text": "dim 1"}},
        yaxis={"title": {"text": "dim 2"}},
        margin={"l": 50, "r": 20, "t": 40 if title else 10, "b": 40},
    )
    return fig


def selected_rows(fig: go.Figure, points: Sequence[Mapping[str, Any]]) -> list[int]:
    """Row numbers (as given to :func:`embedding_map`) of selected points, sorted and unique.

    Args:
        fig: the figure the selection was made on.
        points: selected points, each with ``curveNumber`` and ``pointIndex`` (or ``pointNumber``), as
            plotly events and ``mo.ui.plotly(fig).value`` give them.
    """
    rows: set[int] = set()
    for p in points:
        curve = p.get("curveNumber")
        idx = p.get("pointIndex", p.get("pointNumber"))
        if curve is None or idx is None:
            raise ConfigError(
                expected_found(
                    "selected point", "keys curveNumber and pointIndex", f"{sorted(p)}", "Pass plotly points."
                )
            )
        rows.add(int(fig.data[int(curve)].customdata[int(idx)][0]))
    return sorted(rows)


_REDUCE_CACHE: OrderedDict[str, np.ndarray] = OrderedDict()
_REDUCE_CACHE_SIZE = 8


def reduce_embeddings(
    X: Any,
    method: Literal["pca", "umap"] = "pca",
    seed: int = 0,
    *,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    n_epochs: int | None = None,
) -> np.ndarray:
    """Project ``[N, D]`` embeddings to ``[N, 2]`` float32 coordinates, deterministically for a seed.

    PCA (exact SVD) takes a fraction of a second; UMAP (imported on first use) takes seconds to tens of
    seconds (numba compilation on first use in a process). Results are cached in memory by the bytes of
    ``X`` and the parameters, so re-running a notebook cell with the same inputs is free.
    """
    x = np.ascontiguousarray(np.asarray(X, dtype=np.float32))
    if x.ndim != 2 or x.shape[0] < 3 or x.shape[1] < 2:
        raise EvaluationError(
            expected_found(
                "embeddings",
                "shape [N, D] with N >= 3 and D >= 2",
                f"shape {list(x.shape)}",
                "Embed more clips.",
            )
        )
    if not np.isfinite(x).all():
        raise EvaluationError(
            expected_found("embeddings", "finite values", "NaN or inf", "Check the encoder.")
        )
    if method not in ("pca", "umap"):
        raise ConfigError(expected_found("method", "'pca' or 'umap'", repr(method), "Pick one."))
    if method == "umap" and n_neighbors >= x.shape[0]:
        raise EvaluationError(
            expected_found(
                "UMAP input",
                f"more than n_neighbors={n_neighbors} points",
                f"{x.shape[0]}",
                "Lower n_neighbors or use method='pca'.",
            )
        )
    h = hashlib.sha1(x.tobytes())
    h.update(repr((x.shape, method, seed, n_neighbors, min_dist, n_epochs)).encode())
    key = h.hexdigest()
    if key in _REDUCE_CACHE:
        _REDUCE_CACHE.move_to_end(key)
        return _REDUCE_CACHE[key].copy()
    if method == "pca":
        from sklearn.decomposition import PCA

        out = PCA(n_components=2, svd_solver="full", random_state=seed).fit_transform(x)
    else:
        import umap  # lazy: importing it costs seconds (numba)

        reducer = umap.UMAP(
            n_components=2,
            n_neighbors=n_neighbors,
            min_dist=min_dist,
            n_epochs=n_epochs,
            random_state=seed,
            n_jobs=1,  # a seed makes UMAP single-threaded anyway; saying so avoids its warning
        )
        out = reducer.fit_transform(x)
    out = np.asarray(out, dtype=np.float32)
    _REDUCE_CACHE[key] = out
    while len(_REDUCE_CACHE) > _REDUCE_CACHE_SIZE:
        _REDUCE_CACHE.popitem(last=False)
    return out.copy()


def _summarise(results: pl.DataFrame, keys: list[str], value: str) -> pl.DataFrame:
    missing = [c for c in [*keys, value] if c not in results.columns]
    if missing:
        raise EvaluationError(
            expected_found(
                "results table",
                f"columns {[*keys, value]}",
                f"no {missing} among {results.columns}",
                "Pass a tidy results table (avexlab.evaluate) or pick existing columns.",
            )
        )
    return (
        results.group_by(keys, maintain_order=True)
        .agg(
            exact_mean(value).alias("mean"),
            exact_std(value).fill_null(0.0).alias("std"),
            pl.len().alias("runs"),
        )
        .sort(keys)
    )


def _one_metric(results: pl.DataFrame, keys: list[str]) -> None:
    if "metric" in results.columns and "metric" not in keys and results["metric"].n_unique() > 1:
        raise EvaluationError(
            expected_found(
                "results table",
                "one metric (values of different metrics are not comparable)",
                f"metrics {sorted(results['metric'].unique().to_list())}",
                "Filter to one metric or pass facet='metric'.",
            )
        )


def result_bars(
    results: pl.DataFrame,
    *,
    x: str = "encoder",
    color: str | None = None,
    facet: str | None = None,
    value: str = "value",
    title: str | None = None,
    height: int = 400,
) -> go.Figure:
    """Grouped bars of the mean of ``value`` (error bars: standard deviation over the rows averaged,
    e.g. seeds) from a tidy results table, e.g. ablation bars with ``x="encoder"``, ``color="domain"``.

    ``facet`` makes one panel per value of that column (side by side, shared y axis).
    """
    keys = [c for c in (facet, x, color) if c is not None]
    _one_metric(results, keys)
    table = _summarise(results, keys, value)
    panels = table[facet].unique(maintain_order=True).to_list() if facet else [None]
    fig = _panels(len(panels), titled=facet is not None)
    groups = table[color].unique(maintain_order=True).to_list() if color else [None]
    shown: set[object] = set()  # each group in the legend once, from the first panel that has it
    for p, panel in enumerate(panels):
        sub = table.filter(pl.col(facet) == panel) if facet else table
        for gi, g in enumerate(groups):
            part = sub.filter(pl.col(color) == g) if color else sub
            legend = color is not None and part.height > 0 and g not in shown
            shown.update([g] if legend else [])
            fig.add_trace(
                go.Bar(
                    marker_color=_group_color(gi),
                    x=[str(v) for v in part[x].to_list()],
                    y=part["mean"].to_list(),
                    error_y={"type": "data", "array": part["std"].to_list()},
                    name=str(g) if color else value,
                    legendgroup=str(g),
                    showlegend=legend,
                    customdata=part["runs"].to_list(),
                    hovertemplate="%{x}: %{y:.3f} (%{customdata} runs)",
                ),
                row=p // _MAX_COLS + 1,
                col=p % _MAX_COLS + 1,
            )
        if facet:
            fig.layout.annotations[p].text = f"{facet} = {panel}"
    fig.update_layout(
        barmode="group", title={"text": title} if title else None, height=height * _rows(len(panels))
    )
    fig.update_yaxes(title_text=value, col=1)
    return fig


def result_lines(
    results: pl.DataFrame,
    *,
    x: str,
    color: str = "encoder",
    facet: str | None = None,
    value: str = "value",
    title: str | None = None,
    height: int = 400,
) -> go.Figure:
    """Lines of the mean of ``value`` against a numeric column ``x`` (e.g. a shift knob such as SNR in
    dB) with standard-deviation error bars, one line per ``color`` value: OOD gap curves."""
    keys = [c for c in (facet, color, x) if c is not None]
    _one_metric(results, keys)
    table = _summarise(results, keys, value).sort([*keys[:-1], x])
    panels = table[facet].unique(maintain_order=True).to_list() if facet else [None]
    fig = _panels(len(panels), titled=facet is not None)
    groups = table[color].unique(maintain_order=True).to_list()
    shown: set[object] = set()
    for p, panel in enumerate(panels):
        sub = table.filter(pl.col(facet) == panel) if facet else table
        for gi, g in enumerate(groups):
            part = sub.filter(pl.col(color) == g)
            legend = part.height > 0 and g not in shown
            shown.update([g] if legend else [])
            fig.add_trace(
                go.Scatter(
                    line_color=_group_color(gi),
                    x=part[x].to_list(),
                    y=part["mean"].to_list(),
                    error_y={"type": "data", "array": part["std"].to_list()},
                    mode="lines+markers",
                    name=str(g),
                    legendgroup=str(g),
                    showlegend=legend,
                ),
                row=p // _MAX_COLS + 1,
                col=p % _MAX_COLS + 1,
            )
        if facet:
            fig.layout.annotations[p].text = f"{facet} = {panel}"
    fig.update_layout(title={"text": title} if title else None, height=height * _rows(len(panels)))
    fig.update_xaxes(title_text=x)
    fig.update_yaxes(title_text=value, col=1)
    return fig


_MAX_COLS = 4  # facet panels per row; more panels wrap onto further rows


def _rows(n: int) -> int:
    return -(-n // _MAX_COLS)


def _group_color(i: int) -> str:
    """The i-th colour of plotly's default palette: one group keeps one colour in every panel."""
    import plotly.colors

    palette = plotly.colors.qualitative.Plotly
    return palette[i % len(palette)]


def _panels(n: int, titled: bool) -> go.Figure:
    from plotly.subplots import make_subplots

    rows, cols = _rows(n), min(n, _MAX_COLS)
    return make_subplots(
        rows=rows,
        cols=cols,
        shared_yaxes=True,
        subplot_titles=[" "] * (rows * cols) if titled else None,
        vertical_spacing=0.5 / rows if rows > 1 else None,
    )


def faceted_bars(
    long: pl.DataFrame,
    *,
    x: str,
    color: str,
    facet: str = "metric",
    value: str = "value",
    cols: int = 3,
    errors: bool = False,
    title: str | None = None,
    panel_height: int = 260,
) -> go.Figure:
    """Bars of the mean of ``value`` per ``x`` (one colour per ``color`` value, the same colour in every
    panel), one panel per ``facet`` value in a grid of ``cols`` columns, each panel with its own x axis
    (so a panel shows only the ``x`` values measured there). ``errors``: error bars of one standard
    deviation over the rows averaged (e.g. cells and datasets). Input: tidy rows, e.g. :func:`avexlab.evaluate.tables.to_long`."""
    import plotly.express as px
    from plotly.subplots import make_subplots

    missing = [c for c in (x, color, facet, value) if c not in long.columns]
    if missing or long.height == 0:
        raise EvaluationError(
            expected_found(
                "long table",
                f"rows with columns {[x, color, facet, value]}",
                f"{long.height} rows, no {missing}" if missing else "no rows",
                "Pass to_long() output.",
            )
        )
    table = long.group_by(facet, x, color, maintain_order=True).agg(
        exact_mean(value).alias("mean"),
        exact_std(value).fill_null(0.0).alias("std"),
        pl.len().alias("rows"),
    )
    panels = table[facet].unique(maintain_order=True).to_list()
    groups = table[color].unique(maintain_order=True).to_list()
    palette = px.colors.qualitative.Plotly
    n_rows = -(-len(panels) // cols)
    fig = make_subplots(
        rows=n_rows,
        cols=min(cols, len(panels)),
        subplot_titles=[str(p) for p in panels],
        vertical_spacing=0.5 / n_rows if n_rows > 1 else 0.2,
        horizontal_spacing=0.06,
    )
    in_legend: set[str] = set()
    for i, panel in enumerate(panels):
        for j, group in enumerate(groups):
            part = table.filter((pl.col(facet) == panel) & (pl.col(color) == group))
            if part.height == 0:
                continue
            fig.add_trace(
                go.Bar(
                    x=[str(v) for v in part[x].to_list()],
                    y=part["mean"].to_list(),
                    error_y={"type": "data", "array": part["std"].to_list(), "visible": errors},
                    name=str(group),
                    legendgroup=str(group),
                    marker_color=palette[j % len(palette)],
                    showlegend=str(group) not in in_legend,
                    customdata=part["rows"].to_list(),
                    hovertemplate=f"%{{x}}<br>{group}: %{{y:.3f}} (mean of %{{customdata}})<extra></extra>",
                ),
                row=i // cols + 1,
                col=i % cols + 1,
            )
            in_legend.add(str(group))
    fig.update_layout(
        barmode="group",
        title={"text": title} if title else None,
        height=panel_height * n_rows + 120,
    )
    fig.update_xaxes(tickangle=-35)
    return fig


def interval_figure(
    cells: pl.DataFrame,
    *,
    x: str = "encoder",
    color: str = "paradigm",
    group: str | None = "architecture",
    panel: str = "column",
    chance: pl.DataFrame | None = None,
    bands: pl.DataFrame | None = None,
    band_name: str = "random-init twins, 95% interval",
    cols: int = 2,
    title: str | None = None,
    panel_height: int = 280,
) -> go.Figure:
    """Every row's estimate with its 95% interval as error bars, one panel per ``panel`` value (a column
    of the paper-shaped table), with the chance level as a dashed line and a shaded band per ``group``
    (e.g. the random-init twins' interval behind the cells of their architecture).

    Args:
        cells: one row per (``x``, ``panel``): ``x``, ``panel``, ``estimate``, ``ci_low``, ``ci_high``,
            ``color`` and ``group`` (when given); e.g. :func:`avexlab.evaluate.stats.cell_intervals` joined
            with the grid's factors. A null or NaN bound draws the point without an error bar.
        x: the column naming a point (a tick on the x axis).
        color: points are coloured (one trace, one legend entry) by this column.
        group: points of one ``group`` value stand together (groups in order of first appearance, a gap
            between groups; within a group by ``color``, then by first appearance); their band is drawn
            over their extent. None: one group.
        panel: one panel per value, in order of first appearance.
        chance: rows ``panel, chance`` and optionally ``label`` (default ``"chance"``): a dashed line across
            its panel per row (one line style per label).
        bands: rows ``panel, group, ci_low, ci_high`` and optionally ``estimate``: a shaded band (and a
            dotted line at the estimate) over the group's points in that panel, drawn behind them.
        band_name: the bands' legend entry.
        cols: panels per row.

    Returns:
        The figure. Traces, in drawing order: bands (``fill="toself"``), chance lines (``line.dash ==
        "dash"``), then one marker trace per (panel, ``color`` value) with ``error_y`` (asymmetric: ``array``
        = high - estimate, ``arrayminus`` = estimate - low). Every panel has the same x positions, labelled
        on the lowest panel of each panel column (names longer than 36 characters on several lines).
    """
    from plotly.subplots import make_subplots

    need = [c for c in dict.fromkeys([x, panel, color, *([group] if group else []), "estimate"])]
    need += ["ci_low", "ci_high"]
    missing = [c for c in need if c not in cells.columns]
    if missing or cells.height == 0:
        raise EvaluationError(
            expected_found(
                "interval table",
                f"rows with columns {need}",
                f"{cells.height} rows, no {missing}" if missing else "no rows",
                "Pass cell_intervals() output joined with the factors you group by.",
            )
        )
    if cells.select(x, panel).is_duplicated().any():
        raise EvaluationError(
            expected_found(
                "interval table", f"one row per ({x}, {panel})", "duplicates", "Aggregate or filter first."
            )
        )
    cells = cells.with_columns(pl.col("estimate", "ci_low", "ci_high").cast(pl.Float64).fill_nan(None))
    grp = pl.col(group).cast(pl.String) if group else pl.lit("")
    keyed = cells.with_columns(grp.alias("_group"), pl.col(color).cast(pl.String).alias("_color"))

    def first_seen(col: str) -> dict[str, int]:
        return {v: i for i, v in enumerate(keyed[col].unique(maintain_order=True).to_list())}

    g_rank, c_rank = first_seen("_group"), first_seen("_color")
    x_rank = {str(v): i for i, v in enumerate(keyed[x].unique(maintain_order=True).to_list())}
    order = (
        keyed.select(pl.col(x).cast(pl.String).alias("_x"), "_group", "_color")
        .unique("_x", keep="first", maintain_order=True)
        .with_columns(
            pl.col("_group").replace_strict(g_rank).alias("_g"),
            pl.col("_color").replace_strict(c_rank).alias("_c"),
            pl.col("_x").replace_strict(x_rank).alias("_i"),
        )
        .sort("_g", "_c", "_i")
    )
    position: dict[str, float] = {}
    extent: dict[str, tuple[float, float]] = {}
    pos, previous = 0.0, None
    for name, g in order.select("_x", "_group").iter_rows():
        if previous is not None and g != previous:
            pos += 1.0  # a gap between groups
        position[name] = pos
        lo, _ = extent.get(g, (pos, pos))
        extent[g] = (lo, pos)
        previous, pos = g, pos + 1.0
    ticks = sorted(position, key=position.__getitem__)

    panels = keyed[panel].unique(maintain_order=True).to_list()
    colours = list(c_rank)
    n_rows = -(-len(panels) // cols)
    n_cols = min(cols, len(panels))
    fig = make_subplots(
        rows=n_rows,
        cols=n_cols,
        subplot_titles=[str(p) for p in panels],
        vertical_spacing=min(0.12, 0.35 / n_rows),
        horizontal_spacing=0.07,
    )
    lowest = {c: max(i for i in range(len(panels)) if i % n_cols == c) for c in range(n_cols)}
    shown: set[str] = set()

    def legend(key: str) -> bool:
        fresh = key not in shown
        shown.add(key)
        return fresh

    x_range = [-0.7, pos - 0.3]
    for i, p in enumerate(panels):
        row, col = i // n_cols + 1, i % n_cols + 1
        if bands is not None:
            for b in bands.filter(pl.col(panel) == p).iter_rows(named=True):
                g = str(b[group]) if group else ""
                if g not in extent or b["ci_low"] is None or b["ci_high"] is None:
                    continue
                x0, x1 = extent[g][0] - 0.45, extent[g][1] + 0.45
                lo, hi = float(b["ci_low"]), float(b["ci_high"])
                est = b.get("estimate")
                text = (
                    f"{g} {band_name}: "
                    + (f"{est:.3f} " if est is not None else "")
                    + f"[{lo:.3f}, {hi:.3f}]"
                )
                fig.add_trace(
                    go.Scatter(
                        x=[x0, x1, x1, x0, x0],
                        y=[lo, lo, hi, hi, lo],
                        fill="toself",
                        fillcolor="rgba(120, 120, 120, 0.22)",
                        line={"width": 0},
                        mode="lines",
                        hoveron="fills",
                        text=text,
                        hoverinfo="text",
                        name=band_name,
                        legendgroup="band",
                        showlegend=legend("band"),
                    ),
                    row=row,
                    col=col,
                )
                if est is not None:
                    fig.add_trace(
                        go.Scatter(
                            x=[x0, x1],
                            y=[est, est],
                            mode="lines",
                            line={"width": 1, "dash": "dot", "color": "rgba(90, 90, 90, 0.8)"},
                            hoverinfo="skip",
                            name=f"{band_name} (estimate)",
                            legendgroup="band",
                            showlegend=False,
                        ),
                        row=row,
                        col=col,
                    )
        if chance is not None:
            lines = chance.filter(pl.col(panel) == p)
            for k, c in enumerate(lines.iter_rows(named=True)):
                label = str(c.get("label") or "chance")
                fig.add_trace(
                    go.Scatter(
                        x=x_range,
                        y=[c["chance"], c["chance"]],
                        mode="lines",
                        line={
                            "dash": "dash",
                            "width": 1.5,
                            "color": ("#444444", "#b15928", "#6a3d9a")[k % 3],
                        },
                        name=label,
                        legendgroup=f"chance {label}",
                        showlegend=legend(f"chance {label}"),
                        hovertemplate=f"{label}: {c['chance']:.3f}<extra></extra>",
                    ),
                    row=row,
                    col=col,
                )
        for j, cv in enumerate(colours):
            part = keyed.filter((pl.col(panel) == p) & (pl.col("_color") == cv))
            if part.height == 0:
                continue
            names = [str(v) for v in part[x].to_list()]
            est = part["estimate"].to_list()
            lo, hi = part["ci_low"].to_list(), part["ci_high"].to_list()
            fig.add_trace(
                go.Scatter(
                    x=[position[n] for n in names],
                    y=est,
                    mode="markers",
                    marker={"size": 8, "color": _FEW_COLOURS[j % len(_FEW_COLOURS)]},
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": [
                            None if h is None or e is None else h - e for h, e in zip(hi, est, strict=True)
                        ],
                        "arrayminus": [
                            None if l_ is None or e is None else e - l_ for l_, e in zip(lo, est, strict=True)
                        ],
                        "thickness": 1.5,
                        "width": 3,
                    },
                    name=cv,
                    legendgroup=f"color {cv}",
                    showlegend=legend(f"color {cv}"),
                    customdata=[[n, lo_, hi_] for n, lo_, hi_ in zip(names, lo, hi, strict=True)],
                    hovertemplate=(
                        "%{customdata[0]}<br>%{y:.3f} (95% interval %{customdata[1]:.3f} to "
                        f"%{{customdata[2]:.3f}})<extra>{cv}</extra>"
                    ),
                ),
                row=row,
                col=col,
            )
        fig.update_xaxes(
            range=x_range,
            tickvals=[position[t] for t in ticks],
            ticktext=["<br>".join(textwrap.wrap(t, 36)) for t in ticks],  # long names on several lines
            zeroline=False,
            showticklabels=i == lowest[col - 1],
            tickangle=-60,
            tickfont={"size": 10},
            showgrid=False,
            row=row,
            col=col,
        )
    fig.update_layout(
        title={"text": title} if title else None,
        height=panel_height * n_rows + 220,
        legend={"title": {"text": color}},
        margin={"b": 160},
    )
    return fig
