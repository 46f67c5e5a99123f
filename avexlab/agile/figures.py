"""Plotly figures of the agile loop (shared by notebook 08 and its Jupyter twin): the reliability diagram
before and after calibration, and labelling curves of active-learning strategies."""

from __future__ import annotations

from collections.abc import Mapping

import plotly.graph_objects as go
import polars as pl

from avexlab.frames import exact_mean

__all__ = ["learning_curves_figure", "reliability_figure"]


def reliability_figure(
    curves: Mapping[str, pl.DataFrame], eces: Mapping[str, float], *, title: str | None = None
) -> go.Figure:
    """Accuracy against confidence per bin (from :func:`~avexlab.agile.calibration.reliability_curve`), one
    line per named curve (e.g. ``"before"``, ``"after"``) with its ECE in the legend; marker size follows
    the bin's window count; the diagonal is perfect calibration."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "grey"}, name="calibrated")
    )
    for name, c in curves.items():
        n = c["n"].to_numpy()
        size = 6 + 18 * (n / max(1, n.max())) ** 0.5
        fig.add_trace(
            go.Scatter(
                x=c["confidence"].to_list(),
                y=c["accuracy"].to_list(),
                mode="lines+markers",
                marker={"size": size.tolist()},
                name=f"{name} (ECE {eces.get(name, float('nan')):.3f})",
                customdata=n.tolist(),
                hovertemplate="confidence %{x:.2f}<br>fraction positive %{y:.2f}<br>%{customdata} windows",
            )
        )
    fig.update_layout(
        title=title or "Reliability (held-out scores of labelled windows)",
        xaxis_title="predicted probability",
        yaxis_title="fraction positive",
        xaxis_range=[0, 1],
        yaxis_range=[0, 1],
        height=380,
    )
    return fig


def learning_curves_figure(
    curves: pl.DataFrame, *, target: float | None = None, title: str | None = None
) -> go.Figure:
    """Mean macro ROC AUC against labelled windows per ``strategy`` (``curves``: rows of
    ``simulate_session`` with ``strategy`` and ``seed`` columns), with the min-max band over seeds and the
    target AUC as a dashed line."""
    fig = go.Figure()
    agg = (
        curves.group_by("strategy", "round")
        .agg(
            exact_mean("labels"),
            exact_mean("macro_auc").alias("mean"),
            pl.col("macro_auc").min().alias("lo"),
            pl.col("macro_auc").max().alias("hi"),
        )
        .sort("strategy", "round")
    )
    for (s,), g in agg.group_by(["strategy"], maintain_order=True):
        x = g["labels"].to_list()
        fig.add_trace(
            go.Scatter(
                x=x + x[::-1],
                y=g["hi"].to_list() + g["lo"].to_list()[::-1],
                fill="toself",
                opacity=0.2,
                line={"width": 0},
                showlegend=False,
                hoverinfo="skip",
                name=f"{s} range",
            )
        )
        fig.add_trace(go.Scatter(x=x, y=g["mean"].to_list(), mode="lines+markers", name=str(s)))
    if target is not None:
        fig.add_hline(y=target, line={"dash": "dash", "color": "grey"}, annotation_text="target")
    fig.update_layout(
        title=title or "Labels needed: active learning against random sampling",
        xaxis_title="labelled windows",
        yaxis_title="macro ROC AUC (held-out recordings)",
        height=380,
    )
    return fig
