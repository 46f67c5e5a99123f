# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # The paper's tables beside avexlab's numbers (JupyterLab twin of `notebooks/07_paper_figures.py`)
#
# Every row says where its numbers come from, in the `source` column:
#
# - **paper, real data**: copied from the AVEX paper (ICLR 2026), published encoders on the 26 real
#   datasets. avexlab does not recompute these.
# - **avexlab, synthetic world**: avexlab's encoders on the synthetic suites that mirror the paper's task
#   families, at the scale of `$AVEXLAB_SCALE` (default `workshop`). Same protocol (frozen encoder,
#   linear probe, retrieval ROC AUC, k-means NMI), different data: compare the *pattern* across encoders
#   and columns, never a synthetic number with a published one.
# - **avexlab, real data**: the same evaluation on local copies of the paper's datasets under `DATA_ROOT`.
#
# Set `ENCODERS` to `NAME:SIZE` specs or checkpoint paths, `GRID_RESULTS` to the grid's results table
# (notebook 03, `avexlab grid`), `DATA_ROOT` to your copies of the paper's datasets.

# %%
from pathlib import Path

import ipywidgets as widgets
import plotly.graph_objects as go
import polars as pl
import polars.selectors as cs
from IPython.display import Markdown, display

from avexlab.data.published import PAPER_SOURCE, paper_data_mix, paper_headline
from avexlab.data.registry import check_all, paper_suites
from avexlab.evaluate.report import load_results
from avexlab.evaluate.spec import EvalSpec
from avexlab.evaluate.suites import evaluate_suite
from avexlab.evaluate.tables import (
    REAL_SOURCE,
    SYNTH_SOURCE,
    grid_data_mix,
    paper_table,
    side_by_side,
    to_long,
)
from avexlab.synth import render_world
from avexlab.viz import result_bars
from avexlab.viz.figures import faceted_bars
from avexlab.viz.notebook import catch_user_error, default_scale, world_preset

ENCODERS = ["logmel:tiny", "beats:tiny"]
GRID_RESULTS = Path("results/grid/results.parquet")
DATA_ROOT = Path("data/paper")
SEED = 0
SCALE = default_scale()
PROBE_EPOCHS = {"smoke": 5, "workshop": 15, "paper": 30}[SCALE]

# %%
grid_results, problem = (
    catch_user_error(load_results, GRID_RESULTS) if GRID_RESULTS.is_file() else (None, None)
)
if grid_results is not None:
    display(Markdown(f"Grid results found: `{GRID_RESULTS}` (its trained encoders join the tables)."))
else:
    display(
        Markdown(
            (
                f"**Cannot read the grid results.** {problem}"
                if problem
                else f"No grid results at `{GRID_RESULTS}`."
            )
            + " Train the grid with notebook 03 or `avexlab grid --profile quick --out results/grid`."
        )
    )

# %% [markdown]
# ## 1. Headline table
#
# Each encoder on every synthetic suite of the world (a progress bar per suite), then the paper-shaped
# table under the paper's rows.

# %%
world = render_world(world_preset(SCALE), SEED)
synth_results = pl.concat(
    [
        evaluate_suite(
            spec, suite, EvalSpec(probe_epochs=PROBE_EPOCHS, cache_dir=".cache/embeddings", progress=True)
        )
        for spec in ENCODERS
        for suite in world.suites.values()
    ]
)
ours = paper_table(synth_results)
if grid_results is not None:
    ours = pl.concat(
        [ours, paper_table(grid_results.filter(pl.col("checkpoint") != "random-init"))],
        how="diagonal_relaxed",
    )
headline = side_by_side(paper_headline(), ours)
display(headline.with_columns(cs.float().round(3)))
assert headline.filter(pl.col("source") == PAPER_SOURCE).height == 7
assert set(headline.filter(pl.col("source") == SYNTH_SOURCE)["model"]) >= {s.split(":")[0] for s in ENCODERS}

# %% [markdown]
# Pick a column: the paper's published encoders and avexlab's, coloured by source.

# %%
long = to_long(headline.drop("paradigm"))
column = widgets.Dropdown(options=sorted(set(long["metric"])), value="BEANS clf R-auc", description="column")
figure = go.FigureWidget(
    result_bars(long.filter(pl.col("metric") == column.value), x="model", color="source", height=420)
)


def show_column(change=None):
    fresh = result_bars(long.filter(pl.col("metric") == column.value), x="model", color="source", height=420)
    with figure.batch_update():
        figure.data = []
        for trace in fresh.data:
            figure.add_trace(trace)
        figure.layout.title = f"{column.value}: paper (real data) vs avexlab (synthetic world)"


column.observe(show_column, names="value")
show_column()
display(widgets.VBox([column, figure]))

# %%
# Switching the column redraws the bars of that column (as a click in the browser would).
column.value = "BEANS clf probe"
drawn = {y for trace in figure.data for y in trace.y}
expected = set(long.filter(pl.col("metric") == "BEANS clf probe")["value"].to_list())
assert drawn == expected and len(drawn) > 0

# %% [markdown]
# ## 2. Data-mix ablation (EfficientNet-B0, SL)
#
# `general` = general audio only (AudioSet in the paper, the world's general-audio pool in avexlab),
# `bio` = animal sounds only, `all` = both. avexlab rows come from the grid results, when present.

# %%
mine = grid_data_mix(grid_results) if grid_results is not None else paper_data_mix().head(0).drop("source")
data_mix = side_by_side(paper_data_mix(), mine)
display(data_mix.with_columns(cs.float().round(3)))
faceted_bars(
    to_long(data_mix.drop("model")), x="mix", color="source", title="Data mix: paper vs avexlab grid"
)

# %% [markdown]
# ## 3. The paper's real datasets
#
# Which of the 26 have a complete local copy under `DATA_ROOT` (nothing is downloaded; `avexlab data
# check-paper ROOT` says what to put where); those present are evaluated with the same encoders.

# %%
checks = check_all(DATA_ROOT)
display(Markdown(f"{checks['ok'].sum()} of {checks.height} datasets present under `{DATA_ROOT}`."))
display(checks.select("name", "benchmark", "task_family", "ok", "n_clips"))
suites = paper_suites(DATA_ROOT)
if suites:
    real = pl.concat(
        [
            evaluate_suite(spec, s, EvalSpec(probe_epochs=PROBE_EPOCHS, cache_dir=".cache/embeddings"))
            for spec in ENCODERS
            for s in suites
        ]
    )
    display(
        side_by_side(paper_headline(), paper_table(real).with_columns(pl.lit(REAL_SOURCE).alias("source")))
    )
else:
    display(Markdown("No real dataset present: only synthetic numbers are shown above."))
