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
# # Paper figures (JupyterLab twin of the headline part of `notebooks/07_paper_figures.py`)
#
# The AVEX paper's published headline table (**paper, real data**) beside avexlab's encoders evaluated
# on the synthetic world's suites (**avexlab, synthetic world**) in the same columns. The two are not the
# same benchmark: the synthetic suites mirror the paper's task families, not its datasets, so compare
# rankings and gaps, not absolute numbers. Probe = linear probe; R-auc = retrieval ROC AUC (0.5 =
# chance); C-nmi = k-means NMI. Empty cells: not reported or not measured.
#
# `ENCODERS`: comma-separated `NAME:SIZE` (untrained, seeded) or checkpoint paths. The scale comes from
# `AVEXLAB_SCALE` (`smoke`, `workshop`, `paper`).

# %%
import polars as pl
from tqdm.auto import tqdm

from avexlab.evaluate.suites import evaluate_suite, paper_table
from avexlab.synth import render_world
from avexlab.viz import result_bars
from avexlab.viz.notebook import default_scale, world_preset
from avexlab.viz.paper import SYNTH_SOURCE, paper_headline, side_by_side, to_long

ENCODERS = "logmel:tiny"
SEED = 0
scale = default_scale()
probe_epochs = {"smoke": 5, "workshop": 15, "paper": 30}[scale]

# %%
world = render_world(world_preset(scale), SEED)
specs = [s.strip() for s in ENCODERS.split(",") if s.strip()]
jobs = [(spec, suite) for spec in specs for suite in world.suites.values()]
synth_results = pl.concat(
    [
        evaluate_suite(spec, suite, probe_epochs=probe_epochs, seed=42, cache_dir=".cache/embeddings")
        for spec, suite in tqdm(jobs, desc="evaluating suites")
    ]
)
headline = side_by_side(paper_headline(), paper_table(synth_results))
headline

# %%
# Every published row is kept and labelled; avexlab's rows follow, one per encoder.
assert headline.filter(pl.col("source") == SYNTH_SOURCE).height == len(specs)
assert headline.height == paper_headline().height + len(specs)

# %%
result_bars(
    to_long(headline.drop("paradigm")),
    x="model",
    color="source",
    facet="metric",
    title="Headline columns: paper (real data) vs avexlab (synthetic world)",
    height=460,
)
