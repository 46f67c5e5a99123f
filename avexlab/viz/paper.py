"""The paper's published numbers beside avexlab's, the ablation grid against its random-init twins, and
individual identification across recording sessions: the library behind notebooks 03, 06 and 07.

Every table carries a ``source`` column saying where its numbers come from, so a number measured on the
synthetic world is never read as a reproduction of a number measured on real recordings:

- :data:`PAPER_SOURCE` ``"paper, real data"``: copied from the AVEX paper (PAPER.md), never recomputed;
- :data:`SYNTH_SOURCE` ``"avexlab, synthetic world"``: avexlab's encoders on the synthetic suites;
- :data:`REAL_SOURCE` ``"avexlab, real data"``: avexlab's encoders on local copies of the paper's datasets.

The paper-shaped columns are :data:`avexlab.evaluate.suites.PAPER_COLUMNS`' names, so a frame from
:func:`avexlab.evaluate.suites.paper_table` lines up with :func:`paper_headline` column by column.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import polars as pl

from avexlab.errors import ConfigError, EvaluationError, expected_found

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from avexlab.evaluate.embed import Embeddings

__all__ = [
    "ABLATION_FACTORS",
    "GRID_PROFILE_OF_SCALE",
    "PAPER_SOURCE",
    "REAL_SOURCE",
    "SYNTH_SOURCE",
    "RealSuite",
    "ablation_table",
    "ablation_view",
    "cells_vs_twins",
    "faceted_bars",
    "grid_data_mix",
    "individual_id_scores",
    "individual_retrieval",
    "paper_columns",
    "paper_data_mix",
    "paper_headline",
    "real_suites",
    "side_by_side",
    "to_long",
]

PAPER_SOURCE = "paper, real data"
SYNTH_SOURCE = "avexlab, synthetic world"
REAL_SOURCE = "avexlab, real data"

# The grid profile (avexlab.train.grids.GRID_PROFILES) a notebook scale trains.
GRID_PROFILE_OF_SCALE: dict[str, str] = {"smoke": "smoke", "workshop": "quick", "paper": "paper"}

AblationFactor = Literal["architecture", "mix", "paradigm"]
ABLATION_FACTORS: tuple[AblationFactor, ...] = ("architecture", "mix", "paradigm")

_HEADLINE_COLUMNS = (
    "BEANS clf probe",
    "BEANS clf R-auc",
    "BEANS det probe",
    "BirdSet probe",
    "Indiv. ID probe",
    "Repertoire R-auc",
)
# PAPER.md, "Headline results (paper, real data)"; None = N/A in the paper.
_HEADLINE: tuple[tuple[str, str, tuple[float | None, ...]], ...] = (
    ("BEATs (pretrained)", "SSL", (0.774, 0.734, 0.339, 0.129, 0.380, 0.775)),
    ("Perch", "SL", (0.768, 0.759, 0.368, 0.233, 0.530, 0.758)),
    ("BirdNet", "SL", (0.796, 0.772, 0.392, None, 0.472, 0.795)),
    ("NatureBEATs", "SL-SSL", (0.804, 0.774, 0.385, 0.223, 0.410, 0.811)),
    ("EffNetB0-all", "SL", (0.800, 0.809, 0.362, 0.279, 0.531, 0.830)),
    ("sl-BEATS-all", "SL-SSL", (0.832, 0.813, 0.408, 0.294, 0.511, 0.798)),
    ("sl-BEATS-bio", "SL-SSL", (0.840, 0.811, 0.390, 0.288, 0.484, 0.789)),
)
_MIX_COLUMNS = ("BEANS clf probe", "BEANS clf R-auc", "BirdSet probe", "Indiv. ID probe", "Repertoire C-nmi")
# PAPER.md, data-mix ablation (EfficientNet-B0, SL); mix names as avexlab's grid spells them.
_DATA_MIX: tuple[tuple[str, str, tuple[float, ...]], ...] = (
    ("EffNetB0-AudioSet", "general", (0.651, 0.721, 0.098, 0.397, 0.481)),
    ("EffNetB0-bio", "bio", (0.786, 0.799, 0.279, 0.457, 0.568)),
    ("EffNetB0-all", "all", (0.800, 0.809, 0.279, 0.531, 0.582)),
)


def paper_columns() -> list[str]:
    """The paper-shaped column names, in the order of :data:`avexlab.evaluate.suites.PAPER_COLUMNS`."""
    from avexlab.evaluate.suites import PAPER_COLUMNS

    return [c[0] for c in PAPER_COLUMNS]


def paper_headline() -> pl.DataFrame:
    """PAPER.md's headline table: one row per published model; columns ``source`` (always
    :data:`PAPER_SOURCE`), ``model``, ``paradigm`` and the six headline scores (fractions in [0, 1];
    null where the paper reports N/A)."""
    rows = [
        {"source": PAPER_SOURCE, "model": m, "paradigm": p, **dict(zip(_HEADLINE_COLUMNS, v, strict=True))}
        for m, p, v in _HEADLINE
    ]
    return pl.DataFrame(
        rows,
        schema={"source": pl.String, "model": pl.String, "paradigm": pl.String}
        | {c: pl.Float64 for c in _HEADLINE_COLUMNS},
    )


def paper_data_mix() -> pl.DataFrame:
    """PAPER.md's data-mix ablation (EfficientNet-B0 trained SL on one mix): columns ``source``
    (:data:`PAPER_SOURCE`), ``model``, ``mix`` (``general`` = AudioSet only, ``bio``, ``all``) and five
    scores (fractions in [0, 1])."""
    rows = [
        {"source": PAPER_SOURCE, "model": m, "mix": x, **dict(zip(_MIX_COLUMNS, v, strict=True))}
        for m, x, v in _DATA_MIX
    ]
    return pl.DataFrame(
        rows,
        schema={"source": pl.String, "model": pl.String, "mix": pl.String}
        | {c: pl.Float64 for c in _MIX_COLUMNS},
    )


def side_by_side(paper: pl.DataFrame, ours: pl.DataFrame, *, source: str = SYNTH_SOURCE) -> pl.DataFrame:
    """Stack a published table and avexlab's on the paper's columns, labelled by ``source``.

    Args:
        paper: e.g. :func:`paper_headline` (has ``source`` and ``model``).
        ours: e.g. :func:`avexlab.evaluate.suites.paper_table` output (``encoder`` is renamed ``model``);
            its ``source`` column, when present, wins over ``source``.
        source: the label of ``ours`` rows when it has no ``source`` column.

    Returns:
        ``paper`` rows then ``ours`` rows; columns ``source``, ``model``, any other key column of either
        (e.g. ``paradigm``, ``mix``), then the paper's score columns present in ``paper``, in its order.
        Only ``paper``'s score columns are kept: avexlab columns the paper did not publish are left out.
    """
    if "model" not in paper.columns or "source" not in paper.columns:
        raise EvaluationError(
            expected_found(
                "paper table", "columns 'source' and 'model'", f"{paper.columns}", "Pass paper_headline()."
            )
        )
    mine = ours.rename({"encoder": "model"}) if "encoder" in ours.columns else ours
    if "model" not in mine.columns:
        raise EvaluationError(
            expected_found(
                "avexlab table", "an 'encoder' or 'model' column", f"{ours.columns}", "Pass paper_table()."
            )
        )
    if "source" not in mine.columns:
        mine = mine.with_columns(pl.lit(source).alias("source"))
    known = set(paper_columns())
    scores = [c for c in paper.columns if c in known]
    keys = [c for c in [*paper.columns, *mine.columns] if c not in known and c not in ("source", "model")]
    keys = list(dict.fromkeys(keys))
    cols = ["source", "model", *keys, *scores]
    mine = mine.with_columns([pl.lit(None, pl.Float64).alias(c) for c in scores if c not in mine.columns])
    mine = mine.with_columns([pl.lit(None, pl.String).alias(c) for c in keys if c not in mine.columns])
    theirs = paper.with_columns([pl.lit(None, pl.String).alias(c) for c in keys if c not in paper.columns])
    return pl.concat([theirs.select(cols), mine.select(cols)], how="vertical_relaxed")


def to_long(table: pl.DataFrame) -> pl.DataFrame:
    """A wide paper-shaped table (:func:`side_by_side`, :func:`ablation_table`,
    :func:`avexlab.evaluate.suites.paper_table`) as tidy rows: its key columns (every non-score column,
    e.g. ``source, model``), then ``metric`` (the paper's column name) and ``value``; missing cells are
    dropped. Feed it to :func:`avexlab.viz.result_bars` with ``facet="metric"``."""
    scores = [c for c in paper_columns() if c in table.columns]
    if not scores:
        raise EvaluationError(
            expected_found(
                "paper-shaped table",
                f"some of the columns {paper_columns()}",
                f"{table.columns}",
                "Pass side_by_side(), ablation_table() or paper_table() output.",
            )
        )
    index = [c for c in table.columns if c not in scores]
    return table.unpivot(on=scores, index=index, variable_name="metric", value_name="value").drop_nulls(
        "value"
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
    deviation over the rows averaged (e.g. cells and datasets). Input: tidy rows, e.g. :func:`to_long`."""
    import plotly.express as px
    import plotly.graph_objects as go
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
        pl.col(value).mean().alias("mean"),
        pl.col(value).std().fill_null(0.0).alias("std"),
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


def _check_grid(results: pl.DataFrame) -> None:
    need = ("architecture", "mix", "paradigm", "checkpoint", "dataset", "method", "metric", "value")
    missing = [c for c in need if c not in results.columns]
    if missing:
        raise EvaluationError(
            expected_found(
                "grid results",
                f"the columns of avexlab.train.grids.grid's results.parquet {list(need)}",
                f"no {missing}",
                "Load the grid's results.parquet (or run grid()).",
            )
        )
    if results.filter(pl.col("checkpoint") == "random-init").height == 0:
        raise EvaluationError(
            expected_found(
                "grid results",
                "random-init twin rows (checkpoint == 'random-init')",
                "none",
                "Run the grid with evaluate=True: it evaluates each architecture's twin.",
            )
        )


def ablation_view(results: pl.DataFrame, factor: AblationFactor) -> pl.DataFrame:
    """Each trained grid row next to its random-init twin, keyed by one ablation ``factor``.

    Args:
        results: the grid's ``results.parquet`` (:func:`avexlab.train.grids.grid`): tidy result rows with
            ``architecture``, ``mix``, ``paradigm``; twins have ``checkpoint == "random-init"``.
        factor: ``architecture``, ``mix`` or ``paradigm``: the column the bars are grouped by.

    Returns:
        Tidy rows ``factor, model, encoder, architecture, task_family, dataset, method, metric, value``
        (last layer only): ``model`` is ``"trained"`` for a grid cell and ``"random-init twin"`` for the
        twin of that cell's architecture scored on the same dataset, method and metric (one twin row per
        trained row, so the two bars of a factor value average over the same datasets).
    """
    if factor not in ABLATION_FACTORS:
        raise ConfigError(
            expected_found("factor", f"one of {list(ABLATION_FACTORS)}", repr(factor), "Pick one.")
        )
    _check_grid(results)
    res = results
    if "layer" in res.columns:
        res = res.filter(pl.col("layer") == pl.col("layer").max().over("encoder", "checkpoint"))
    keys = ["architecture", "task_family", "dataset", "method", "metric"]
    trained = res.filter(pl.col("checkpoint") != "random-init")
    twins = (
        res.filter(pl.col("checkpoint") == "random-init")
        .group_by(keys)
        .agg(pl.col("value").mean().alias("twin_value"))
    )
    both = trained.join(twins, on=keys, how="inner")
    cols = list(dict.fromkeys([factor, "encoder", *keys]))
    out = pl.concat(
        [
            both.select(*cols, pl.lit("trained").alias("model"), "value"),
            both.select(
                *cols, pl.lit("random-init twin").alias("model"), pl.col("twin_value").alias("value")
            ),
        ]
    )
    order = list(dict.fromkeys([factor, "model", "encoder", *keys]))
    return out.select(*order, "value").sort(order)


def ablation_table(results: pl.DataFrame, factor: AblationFactor) -> pl.DataFrame:
    """The paper-shaped table of an ablation: one row per (``factor`` value, ``model``) with the mean
    over cells and datasets of each paper column (:func:`paper_columns`; null where the grid's world has
    no such suite), plus ``gain`` columns (trained minus random-init twin) for each measured column."""
    from avexlab.evaluate.suites import PAPER_COLUMNS

    view = ablation_view(results, factor)
    out = view.select(factor, "model").unique().sort(factor, "model")
    for col, family, method, metric in PAPER_COLUMNS:
        cell = (
            view.filter(
                (pl.col("task_family") == family)
                & (pl.col("method") == method)
                & (pl.col("metric") == metric)
            )
            .group_by(factor, "model")
            .agg(pl.col("value").mean().alias(col))
        )
        out = out.join(cell, on=[factor, "model"], how="left")
    measured = [c for c in paper_columns() if out[c].null_count() < out.height]
    return out.select(factor, "model", *measured)


def cells_vs_twins(results: pl.DataFrame) -> pl.DataFrame:
    """Did training add anything? One row per trained grid cell: for each measured paper column
    (:data:`avexlab.evaluate.suites.PAPER_COLUMNS`), the cell's value minus its architecture's random-init
    twin's (same world, suites and probe recipe; the mean over the twins when the grid evaluated several
    init seeds), then ``won`` (columns with a positive gain), ``measured`` (columns compared) and
    ``mean_gain`` (mean of the gains).

    ``twin_spread`` is the yardstick for ``mean_gain``: how far one untrained network of the architecture
    lands from the others. For each twin, its own ``mean_gain`` against the mean of the OTHER twins; the
    largest absolute one. ``beyond_spread`` is ``mean_gain > twin_spread``: a cell whose gain does not clear
    it did no better than drawing another random init. Both are null when the grid evaluated one twin per
    architecture (``GridProfile.twin_seeds``).

    Args:
        results: the grid's ``results.parquet`` (:func:`avexlab.train.grids.grid`).

    Returns:
        ``encoder, architecture, mix, paradigm, <paper columns...>, won, measured, mean_gain, twin_spread,
        beyond_spread`` in the results' cell order.
    """
    from avexlab.evaluate.suites import paper_table

    _check_grid(results)
    table = paper_table(results)
    cols = [c for c in paper_columns() if c in table.columns and table[c].null_count() < table.height]
    meta = results.select("encoder", "checkpoint", "architecture", "mix", "paradigm").unique(
        subset=["encoder"], keep="first", maintain_order=True
    )
    t = table.join(meta, on="encoder", how="left", maintain_order="left")
    twin_rows = t.filter(pl.col("checkpoint") == "random-init")
    twins = twin_rows.group_by("architecture").agg(pl.col(c).mean().alias(f"{c} (twin)") for c in cols)
    # leave-one-out: each twin against the mean of the architecture's other twins
    n = pl.len().over("architecture")
    loo = twin_rows.with_columns(
        (pl.col(c) - (pl.col(c).sum().over("architecture") - pl.col(c)) / (n - 1)).alias(c) for c in cols
    ).filter(n > 1)
    spread = loo.group_by("architecture").agg(pl.mean_horizontal(cols).abs().max().alias("twin_spread"))
    cells = (
        t.filter(pl.col("checkpoint") != "random-init")
        .join(twins, on="architecture", how="inner", maintain_order="left")
        .join(spread, on="architecture", how="left", maintain_order="left")
    )
    gains = [(pl.col(c) - pl.col(f"{c} (twin)")).alias(c) for c in cols]
    out = cells.select("encoder", "architecture", "mix", "paradigm", *gains, "twin_spread")
    out = out.with_columns(
        pl.sum_horizontal([(pl.col(c) > 0).cast(pl.Int64) for c in cols]).alias("won"),
        pl.lit(len(cols), pl.Int64).alias("measured"),
        pl.mean_horizontal(cols).alias("mean_gain"),
    )
    return out.select(
        pl.exclude("twin_spread"),
        pl.col("twin_spread").cast(pl.Float64),
        (pl.col("mean_gain") > pl.col("twin_spread")).alias("beyond_spread"),
    )


def grid_data_mix(
    results: pl.DataFrame, *, architecture: str = "efficientnet", paradigm: str = "sl"
) -> pl.DataFrame:
    """The grid's counterpart of :func:`paper_data_mix`: :func:`avexlab.evaluate.suites.paper_table` of
    the ``architecture`` x ``paradigm`` cells, one row per mix (columns ``model``, ``mix``, scores), ready
    for :func:`side_by_side`. Empty (no rows) when the grid trained no such cell."""
    from avexlab.evaluate.suites import paper_table

    _check_grid(results)
    cells = results.filter(
        (pl.col("architecture") == architecture)
        & (pl.col("paradigm") == paradigm)
        & (pl.col("checkpoint") != "random-init")
    )
    mix_of = cells.select("encoder", "mix").unique()
    return (
        paper_table(cells)
        .join(mix_of, on="encoder", how="left")
        .rename({"encoder": "model"})
        .select("model", "mix", *paper_columns())
        .sort("mix")
    )


def individual_retrieval(
    embeddings: np.ndarray, manifest: pl.DataFrame, *, device: str = "cpu"
) -> pl.DataFrame:
    """Individual identification by retrieval, in the two modes that tell session cues from identity.

    Args:
        embeddings: ``[N, D]`` float32, one row per ``manifest`` row (one species' dataset).
        manifest: rows with ``split`` (``train``/``val``/``test``) and ``individual``; in the synthetic
            world's ``syn-individual`` suite (unseen sessions) the test rows are a later session.
        device: torch device of the retrieval computation.

    Returns:
        Two rows ``mode, roc_auc, precision_at_1, n_queries``:
        ``cross-session`` = test queries ranked against the training gallery (the paper's protocol:
        another session, another year); ``same session`` = test queries ranked against the other test
        clips (shared recording conditions can inflate it).
    """
    from avexlab.evaluate.retrieval import retrieval_scores

    x = np.asarray(embeddings)
    if x.ndim != 2 or x.shape[0] != manifest.height:
        raise EvaluationError(
            expected_found(
                "embeddings",
                f"shape [{manifest.height}, D] (one row per manifest row)",
                f"shape {list(x.shape)}",
                "Embed the same manifest you pass.",
            )
        )
    for col in ("split", "individual"):
        if col not in manifest.columns or manifest[col].null_count():
            raise EvaluationError(
                expected_found(
                    "manifest",
                    f"a '{col}' value on every row",
                    f"columns {manifest.columns}",
                    "Use syn-individual.",
                )
            )
    split = manifest["split"].to_numpy()
    who = manifest["individual"].to_numpy()
    te, tr = split == "test", split == "train"
    if not te.any() or not tr.any():
        raise EvaluationError(
            expected_found(
                "manifest", "train and test rows", f"splits {sorted(set(split))}", "Use syn-individual."
            )
        )
    sel = te | tr
    cross = retrieval_scores(x[sel], who[sel].tolist(), queries=te[sel], device=device)
    same = retrieval_scores(x[te], who[te].tolist(), device=device)
    return pl.DataFrame(
        [
            {"mode": "cross-session", **{k: cross[k] for k in ("roc_auc", "precision_at_1", "n_queries")}},
            {"mode": "same session", **{k: same[k] for k in ("roc_auc", "precision_at_1", "n_queries")}},
        ],
        schema={
            "mode": pl.String,
            "roc_auc": pl.Float64,
            "precision_at_1": pl.Float64,
            "n_queries": pl.Int64,
        },
    )


def individual_id_scores(
    embeddings: Mapping[str, Embeddings],
    *,
    probe_epochs: int = 30,
    probe_recipe: str = "standardized",
    seed: int = 42,
    device: str = "cpu",
) -> pl.DataFrame:
    """Individual identification per species: the linear probe (trained on the training sessions,
    best epoch on val, scored on the held-out session) and retrieval in both modes of
    :func:`individual_retrieval`.

    Args:
        embeddings: one :class:`~avexlab.evaluate.embed.Embeddings` per dataset (one species each, e.g.
            the ``syn-individual`` suite's manifests embedded with
            :func:`~avexlab.evaluate.embed.extract_embeddings`), each with its manifest.
        probe_epochs, probe_recipe, seed, device: of the probe
            (:func:`avexlab.evaluate.suites.evaluate_embeddings`; ``probe_recipe="paper"`` is the paper's).

    Returns:
        Tidy rows ``dataset, species, n_individuals, chance, method, mode, metric, value, n``: ``method``
        ``probe`` (metrics ``accuracy``, ``balanced_accuracy``; mode ``cross-session``) or ``retrieval``
        (``roc_auc``, ``precision_at_1``; both modes). ``chance`` = 1 / number of individuals (the
        accuracy of guessing; retrieval ROC AUC's chance is 0.5).
    """
    from avexlab.evaluate.suites import evaluate_embeddings

    frames = []
    for dataset, emb in embeddings.items():
        m = emb.manifest
        if m is None:
            raise EvaluationError(
                expected_found(f"embeddings of {dataset!r}", "a manifest", "none", "Embed a manifest.")
            )
        species = m["species"][0] if "species" in m.columns else dataset
        n_ind = int(m["individual"].n_unique()) if "individual" in m.columns else 0
        probe = evaluate_embeddings(
            emb,
            benchmark="individual-id",
            dataset=dataset,
            task_family="individual_id",
            multi_label=False,
            methods=("probe",),
            probe_epochs=probe_epochs,
            probe_recipe=probe_recipe,  # type: ignore[arg-type]
            seed=seed,
            device=device,
        ).filter(pl.col("metric").is_in(["accuracy", "balanced_accuracy"]))
        probe = probe.select("method", pl.lit("cross-session").alias("mode"), "metric", "value", "n")
        ret = individual_retrieval(emb.array(-1), m, device=device).unpivot(
            on=["roc_auc", "precision_at_1"], index=["mode", "n_queries"], variable_name="metric"
        )
        ret = ret.select(
            pl.lit("retrieval").alias("method"), "mode", "metric", "value", pl.col("n_queries").alias("n")
        )
        frames.append(
            pl.concat([probe, ret]).select(
                pl.lit(dataset).alias("dataset"),
                pl.lit(species).alias("species"),
                pl.lit(n_ind, pl.Int64).alias("n_individuals"),
                pl.lit(1.0 / n_ind if n_ind else None, pl.Float64).alias("chance"),
                pl.all(),
            )
        )
    if not frames:
        raise EvaluationError(
            expected_found("embeddings", "at least one dataset", "none", "Pass the suite's embeddings.")
        )
    return pl.concat(frames)


# The registry's task families (data_manifests/paper_datasets.yaml) under the names the evaluation's paper
# columns use (avexlab.evaluate.suites.PAPER_COLUMNS, the synthetic suites' families).
_EVAL_FAMILY = {"beans_classification": "classification", "beans_detection": "detection"}


@dataclass(frozen=True)
class RealSuite:
    """A local copy of one of the paper's datasets shaped as a suite for
    :func:`avexlab.evaluate.suites.evaluate_suite` (pass ``root=suite.root``)."""

    name: str
    task_family: str
    multi_label: bool
    root: str
    manifests: dict[str, pl.DataFrame] = field(default_factory=dict)


def real_suites(root: str | os.PathLike[str], names: Sequence[str] | None = None) -> list[RealSuite]:
    """The paper's datasets with a complete local copy under ``root`` (``root/<name>/manifest.*`` and
    audio; :func:`avexlab.data.registry.check_all` says what is missing for the others), one
    :class:`RealSuite` each (``name`` = the paper's benchmark; the manifest keyed by the dataset name;
    ``task_family`` as the evaluation's paper columns name it, e.g. ``classification`` for the registry's
    ``beans_classification``).
    ``names`` restricts the candidates; an empty list when none is present."""
    from avexlab.data.registry import check_all, get_paper_dataset, load_paper_dataset

    if not Path(root).is_dir():
        return []
    table = check_all(root).filter(pl.col("ok"))
    if names is not None:
        table = table.filter(pl.col("name").is_in(list(names)))
    out = []
    for name in table["name"].to_list():
        d = get_paper_dataset(name)
        out.append(
            RealSuite(
                name=d.benchmark,
                task_family=_EVAL_FAMILY.get(d.task_family, d.task_family),
                multi_label=d.multi_label,
                root=str(d.folder(root)),
                manifests={name: load_paper_dataset(name, root)},
            )
        )
    return out
