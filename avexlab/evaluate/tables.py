"""The tidy results table and the tables read off it: the paper-shaped pivot, the focal -> soundscape
(OOD) gaps, and the ablation grid's views (each trained cell against its random-init twins).

Results table, one row per (encoder, training seed, dataset, method, metric, layer, probe seed):
``encoder, checkpoint, benchmark, dataset, task_family, domain, method, metric, value, n, probe_seed, layer,
probe_recipe, train_seed, examples_seen`` (:data:`RESULT_SCHEMA`). ``probe_seed`` is the seed of the
probe and of k-means (null for retrieval, which has none); ``train_seed`` the training seed of the encoder
(its initialisation and data order; null when unknown) and ``examples_seen`` the clips it saw in training
(0 for a random-init encoder, null when unknown). A grid adds ``architecture, mix, paradigm, objective,
ssl_objective, ssl_examples, sl_examples``. Every table here is a pivot of it.

Tables that stand beside the paper's published numbers carry a ``source`` column (:data:`PAPER_SOURCE`,
:data:`SYNTH_SOURCE`, :data:`REAL_SOURCE`), so a number measured on the synthetic world is never read as
a reproduction of a number measured on real recordings.
"""

from __future__ import annotations

from typing import Literal

import polars as pl

from avexlab.data.published import PAPER_SOURCE
from avexlab.errors import ConfigError, EvaluationError, expected_found
from avexlab.frames import exact_mean, exact_sum

__all__ = [
    "ABLATION_FACTORS",
    "ANALYSIS_COLUMNS",
    "PAPER_COLUMNS",
    "PAPER_SOURCE",
    "REAL_SOURCE",
    "RESULT_SCHEMA",
    "SYNTH_SOURCE",
    "ablation_table",
    "ablation_view",
    "cells_vs_twins",
    "grid_data_mix",
    "last_layer",
    "ood_report",
    "paper_columns",
    "paper_table",
    "side_by_side",
    "to_long",
]

RESULT_SCHEMA: dict[str, pl.DataType] = {
    "encoder": pl.String(),
    "checkpoint": pl.String(),
    "benchmark": pl.String(),
    "dataset": pl.String(),
    "task_family": pl.String(),
    "domain": pl.String(),
    "method": pl.String(),
    "metric": pl.String(),
    "value": pl.Float64(),
    "n": pl.Int64(),
    "probe_seed": pl.Int64(),
    "layer": pl.Int64(),
    "probe_recipe": pl.String(),
    "train_seed": pl.Int64(),
    "examples_seen": pl.Int64(),
}


# (column, task_family, method, metric): the paper's headline table, plus the repertoire NMI column of its
# data-mix ablation. Each cell is the mean over the family's datasets.
PAPER_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    ("BEANS clf probe", "classification", "probe", "accuracy"),
    ("BEANS clf R-auc", "classification", "retrieval", "roc_auc"),
    ("BEANS det probe", "detection", "probe", "map"),
    ("BirdSet probe", "birdset", "probe", "map"),
    ("Indiv. ID probe", "individual_id", "probe", "accuracy"),
    ("Repertoire R-auc", "repertoire", "retrieval", "roc_auc"),
    ("Repertoire C-nmi", "repertoire", "clustering", "nmi"),
)

# Columns the analyses read besides the paper's: retrieval on soundscape windows (plain, and with the query's
# own recording left out: the fair focal -> soundscape comparison).
ANALYSIS_COLUMNS: tuple[tuple[str, str, str, str], ...] = (
    *PAPER_COLUMNS,
    ("BEANS det R-auc", "detection", "retrieval", "roc_auc"),
    ("BEANS det R-auc cross-rec", "detection", "retrieval", "roc_auc_cross_recording"),
    ("BirdSet R-auc cross-rec", "birdset", "retrieval", "roc_auc_cross_recording"),
)


def last_layer(results: pl.DataFrame) -> pl.DataFrame:
    """The rows of each encoder's (and checkpoint's) last evaluated layer."""
    if "layer" not in results.columns:
        return results
    return results.filter(pl.col("layer") == pl.col("layer").max().over("encoder", "checkpoint"))


def paper_table(results: pl.DataFrame) -> pl.DataFrame:
    """The paper-shaped table: one row per encoder (last layer; mean over datasets and seeds), columns
    as the paper's headline table (:data:`PAPER_COLUMNS`); a column is null where nothing was measured."""
    res = last_layer(results)
    encoders = res.select("encoder").unique(maintain_order=True)
    out = encoders
    for col, family, method, metric in PAPER_COLUMNS:
        cell = (
            res.filter(
                (pl.col("task_family") == family)
                & (pl.col("method") == method)
                & (pl.col("metric") == metric)
            )
            .group_by("encoder")
            .agg(exact_mean("value").alias(col))
        )
        out = out.join(cell, on="encoder", how="left")
    return out


def ood_report(results: pl.DataFrame) -> pl.DataFrame:
    """Focal vs soundscape, per encoder, method and metric (last layer; mean over datasets and seeds):
    ``focal``, ``soundscape`` and ``gap = soundscape - focal`` (negative = worse under the shift).
    Only metrics measured in both domains appear. When the results carry a shift knob (columns
    ``knob`` and ``knob_value``, as the synthetic world's knob sweep writes), the gap is also given per
    knob value."""
    res = last_layer(results).filter(pl.col("domain").is_in(["focal", "soundscape"]))
    keys = ["encoder", "method", "metric"]
    if {"knob", "knob_value"} <= set(res.columns):
        keys += ["knob", "knob_value"]
    if res.height == 0:
        return pl.DataFrame(
            schema={
                **{k: pl.String for k in keys},
                "focal": pl.Float64,
                "soundscape": pl.Float64,
                "gap": pl.Float64,
            }
        )
    wide = (
        res.group_by([*keys, "domain"])
        .agg(exact_mean("value"))
        .pivot(on="domain", index=keys, values="value")
    )
    if "focal" not in wide.columns or "soundscape" not in wide.columns:
        return wide.head(0).with_columns(pl.lit(None, pl.Float64).alias("gap"))
    return (
        wide.drop_nulls(["focal", "soundscape"])
        .with_columns((pl.col("soundscape") - pl.col("focal")).alias("gap"))
        .select([*keys, "focal", "soundscape", "gap"])
        .sort(keys)
    )


AblationFactor = Literal["architecture", "mix", "paradigm"]
ABLATION_FACTORS: tuple[AblationFactor, ...] = ("architecture", "mix", "paradigm")


SYNTH_SOURCE = "avexlab, synthetic world"
REAL_SOURCE = "avexlab, real data"


def paper_columns() -> list[str]:
    """The paper-shaped column names, in the order of :data:`PAPER_COLUMNS`."""
    return [c[0] for c in PAPER_COLUMNS]


def side_by_side(paper: pl.DataFrame, ours: pl.DataFrame, *, source: str = SYNTH_SOURCE) -> pl.DataFrame:
    """Stack a published table and avexlab's on the paper's columns, labelled by ``source``.

    Args:
        paper: e.g. :func:`avexlab.data.published.paper_headline` (has ``source`` and ``model``).
        ours: e.g. :func:`paper_table` output (``encoder`` is renamed ``model``);
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
    :func:`paper_table`) as tidy rows: its key columns (every non-score column,
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


def _check_grid(results: pl.DataFrame) -> None:
    need = ("architecture", "mix", "paradigm", "checkpoint", "dataset", "method", "metric", "value")
    missing = [c for c in need if c not in results.columns]
    if missing:
        raise EvaluationError(
            expected_found(
                "grid results",
                f"the columns of avexlab.experiments.grid.grid's results.parquet {list(need)}",
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
        results: the grid's ``results.parquet`` (:func:`avexlab.experiments.grid.grid`): tidy result rows with
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
    res = last_layer(results)
    keys = ["architecture", "task_family", "dataset", "method", "metric"]
    trained = res.filter(pl.col("checkpoint") != "random-init")
    twins = (
        res.filter(pl.col("checkpoint") == "random-init")
        .group_by(keys)
        .agg(exact_mean("value").alias("twin_value"))
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
            .agg(exact_mean("value").alias(col))
        )
        out = out.join(cell, on=[factor, "model"], how="left")
    measured = [c for c in paper_columns() if out[c].null_count() < out.height]
    return out.select(factor, "model", *measured)


def cells_vs_twins(results: pl.DataFrame) -> pl.DataFrame:
    """Did training add anything? One row per trained grid cell: for each measured paper column
    (:data:`PAPER_COLUMNS`), the cell's value minus its architecture's random-init
    twin's (same world, suites and probe recipe; the mean over the twins when the grid evaluated several
    init seeds, whether named apart or one name with a ``train_seed`` each), then ``won`` (columns with a positive gain), ``measured`` (columns compared) and
    ``mean_gain`` (mean of the gains).

    ``twin_spread`` is the yardstick for ``mean_gain``: how far one untrained network of the architecture
    lands from the others. For each twin, its own ``mean_gain`` against the mean of the OTHER twins; the
    largest absolute one. ``beyond_spread`` is ``mean_gain > twin_spread``: a cell whose gain does not clear
    it did no better than drawing another random init. Both are null when the grid evaluated one twin per
    architecture (a grid of one training seed: the twins are those of ``GridProfile.train_seeds``).

    Args:
        results: the grid's ``results.parquet`` (:func:`avexlab.experiments.grid.grid`).

    Returns:
        ``encoder, architecture, mix, paradigm, <paper columns...>, won, measured, mean_gain, twin_spread,
        beyond_spread`` in the results' cell order.
    """
    _check_grid(results)
    table = paper_table(results)
    cols = [c for c in paper_columns() if c in table.columns and table[c].null_count() < table.height]
    meta = results.select("encoder", "checkpoint", "architecture", "mix", "paradigm").unique(
        subset=["encoder"], keep="first", maintain_order=True
    )
    t = table.join(meta, on="encoder", how="left", maintain_order="left")
    # A seeded grid evaluates one twin per training seed under one name: each (name, train_seed) is a twin.
    twin_res = results.filter(pl.col("checkpoint") == "random-init")
    if "train_seed" in twin_res.columns and twin_res["train_seed"].n_unique() > 1:
        twin_res = twin_res.with_columns(
            pl.format("{} (train seed {})", "encoder", pl.col("train_seed").fill_null(-1)).alias("encoder")
        )
    twin_meta = twin_res.select("encoder", "architecture").unique(subset=["encoder"], maintain_order=True)
    twin_rows = paper_table(twin_res).join(twin_meta, on="encoder", how="left", maintain_order="left")
    twins = twin_rows.group_by("architecture").agg(exact_mean(c).alias(f"{c} (twin)") for c in cols)
    # leave-one-out: each twin against the mean of the architecture's other twins
    n = pl.len().over("architecture")
    loo = twin_rows.with_columns(
        (pl.col(c) - (exact_sum(c).over("architecture") - pl.col(c)) / (n - 1)).alias(c) for c in cols
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
    """The grid's counterpart of :func:`avexlab.data.published.paper_data_mix`: :func:`paper_table` of
    the ``architecture`` x ``paradigm`` cells, one row per mix (columns ``model``, ``mix``, scores), ready
    for :func:`side_by_side`. Empty (no rows) when the grid trained no such cell."""
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
