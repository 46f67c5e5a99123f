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
# - **avexlab, synthetic world: grid**: the ablation grid's encoders (notebook 03, `avexlab grid`), each a
#   mean over its training and probe seeds, on the world the grid was run on.
# - **avexlab, synthetic world: live**: encoders evaluated here on the world of `$AVEXLAB_SCALE` (default
#   `workshop`); their names say what they are (random init, released model, checkpoint, world, clips).
# - **avexlab, real data**: the same evaluation on local copies of the paper's datasets under `DATA_ROOT`.
#
# Same protocol (frozen encoder, linear probe, retrieval ROC AUC, k-means NMI), different data: compare
# the *pattern* across encoders and columns, never a synthetic number with a published one. avexlab's
# numbers come with their 95% interval (bootstrap over test clips and seeds), every column with its chance
# level, and the verdicts on the paper's findings are computed from the grid, their sentences generated.
#
# Set `ENCODERS` to `NAME:SIZE` specs, checkpoint paths or `birdnet` (BirdNET V2.4, frozen: 48 kHz input,
# resampled here, several times slower than the tiny networks), `GRID_RESULTS` to the grid's results
# table, `DATA_ROOT` to your copies of the paper's datasets.

# %%
import json
import os
from pathlib import Path

import ipywidgets as widgets
import plotly.graph_objects as go
import polars as pl
from IPython.display import Markdown, display

from avexlab.data.published import PAPER_SOURCE, paper_data_mix, paper_headline
from avexlab.data.registry import check_all, paper_suites
from avexlab.evaluate.chance import chance_levels
from avexlab.evaluate.embed import resolve_encoder
from avexlab.evaluate.report import items_path, load_results
from avexlab.evaluate.spec import EvalSpec
from avexlab.evaluate.stats import cell_intervals
from avexlab.evaluate.suites import evaluate_suite, evaluate_suites
from avexlab.evaluate.tables import PAPER_COLUMNS, REAL_SOURCE, SYNTH_SOURCE, paper_table, side_by_side
from avexlab.experiments.findings import evaluate_findings, findings_prose
from avexlab.synth import render_world
from avexlab.viz.figures import interval_figure
from avexlab.viz.notebook import catch_user_error, default_scale, world_preset

ENCODERS = ["logmel:tiny", "beats:tiny"]
GRID_RESULTS = Path("results/grid/results.parquet")
DATA_ROOT = Path("data/paper")
SEED = 0
SCALE = default_scale()
PROBE_EPOCHS = {"smoke": 5, "workshop": 15, "paper": 30}[SCALE]
# BirdNET is evaluated live when the grid has no BirdNET row; at smoke scale every live row is capped at
# this many clips per split (8 keeps every smoke test clip and trims the training splits)
BIRDNET_LIVE = SCALE == "smoke"
MAX_CLIPS = 8 if SCALE == "smoke" else None
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "avexlab" / "embeddings"
PAPER_COLS = [c[0] for c in PAPER_COLUMNS]


def read_grid(path):
    """The grid's results, its per-item outcomes (None when absent) and the world it was run on."""
    table = load_results(path)
    items = items_path(path)
    record = path.with_name("grid.json")
    world = (json.loads(record.read_text()).get("world") or {}).get("preset") if record.is_file() else None
    return table, pl.read_parquet(items) if items.is_file() else None, world or "unrecorded"


# %%
loaded, problem = catch_user_error(read_grid, GRID_RESULTS) if GRID_RESULTS.is_file() else (None, None)
grid_results, grid_items, grid_world = loaded if loaded is not None else (None, None, None)
if grid_results is not None:
    display(
        Markdown(
            f"Grid results found: `{GRID_RESULTS}` (`{grid_world}` world)."
            + (
                ""
                if grid_items is not None
                else " **No per-item outcomes beside it** (`items.parquet`): its rows show means without "
                "intervals and the findings cannot be tested; re-run the grid to get them."
            )
        )
    )
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
# ## The paper's findings on the grid
#
# Each finding pairs grid cells that differ in one factor; its verdict is read off the 95% interval of the
# effect. The sentences are generated from the verdicts.

# %%
if grid_results is not None and grid_items is not None:
    findings = evaluate_findings(grid_results, grid_items, keep_in=GRID_RESULTS.parent)
    display(Markdown(findings_prose(findings)))
    display(findings.select("finding", "verdict", "effect", "ci_low", "ci_high", "n_pairs"))
    assert set(findings["verdict"]) <= {"reproduced", "contradicted", "inconclusive", "not measured"}
else:
    findings = None
    display(Markdown("Not evaluated: the verdicts need the grid's per-item outcomes (`items.parquet`)."))

# %% [markdown]
# ## 1. Headline table
#
# The live encoders on every synthetic suite of the world (BirdNET too, when the grid has no BirdNET row),
# then the paper-shaped table: estimate `[95% interval]`, avexlab's BirdNET row under the paper's.

# %%
grid_has_birdnet = grid_results is not None and "birdnet" in set(grid_results["encoder"])
specs = ENCODERS + (
    ["birdnet"] if BIRDNET_LIVE and not grid_has_birdnet and "birdnet" not in ENCODERS else []
)
live_world = world_preset(SCALE)
world = render_world(live_world, SEED)
spec = EvalSpec(probe_epochs=PROBE_EPOCHS, cache_dir=CACHE, max_clips_per_split=MAX_CLIPS, progress=True)


def live_label(name, encoder):
    """What a live row is, in its name: never the name of a trained grid cell."""
    if name == "birdnet":
        kind = "released BirdNET V2.4"
    elif Path(name).exists():
        kind = "checkpoint"
    elif not any(True for _ in encoder.parameters()):
        kind = "no learned weights"
    else:
        kind = "random init"
    where = f"{live_world} world, live" + (f", <= {MAX_CLIPS} clips/split" if MAX_CLIPS else "")
    return f"{name} ({kind}, {where})"


frames, items_list, labels = [], [], {}
for name in specs:
    encoder, why = catch_user_error(resolve_encoder, name, seed=SEED)
    if why is not None:
        display(Markdown(f"**Skipped** `{name}`: {why}"))
        continue
    labels[name] = live_label(name, encoder)
    frames.append(
        evaluate_suites(
            encoder, list(world.suites.values()), spec, encoder_name=labels[name], items=items_list
        )
    )
live_results, live_items = pl.concat(frames), pl.concat(items_list, how="diagonal_relaxed")

# %%
LONG = {
    "source": pl.String, "model": pl.String, "paradigm": pl.String, "group": pl.String, "column": pl.String,
    "estimate": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
}  # fmt: skip


def interval_rows(results, items, source, group, keep_in=None):
    """Every encoder x paper column with its interval (the means alone when there are no items)."""
    if items is not None:
        iv = cell_intervals(items, keep_in=keep_in)
    else:
        wide = paper_table(results)
        iv = wide.unpivot(
            on=[c for c in PAPER_COLS if c in wide.columns], index="encoder", variable_name="column"
        )
        iv = iv.select("encoder", "column", pl.col("value").alias("estimate"), ci_low=None, ci_high=None)
    meta = results.select("encoder", *[c for c in ("architecture", "paradigm") if c in results.columns])
    out = iv.join(meta.unique("encoder", keep="first", maintain_order=True), on="encoder", how="left")
    if "paradigm" not in out.columns:
        out = out.with_columns(paradigm=pl.lit(None, pl.String))
    return (
        out.with_columns(source=pl.lit(source), model=pl.col("encoder"), group=group).select(*LONG).cast(LONG)
    )


paper = paper_headline()
parts = [
    paper.unpivot(on=[c for c in PAPER_COLS if c in paper.columns], index=["source", "model", "paradigm"],
                  variable_name="column", value_name="estimate")
    .with_columns(group=pl.lit("paper"), ci_low=None, ci_high=None).select(*LONG).cast(LONG)
]  # fmt: skip
chance_parts = []
grid_source = f"{SYNTH_SOURCE}: grid ({grid_world})"
if grid_results is not None:
    parts.append(
        interval_rows(
            grid_results, grid_items, grid_source, pl.col("architecture"), keep_in=GRID_RESULTS.parent
        )
    )
    if grid_items is not None:
        chance_parts.append(
            chance_levels(grid_items).with_columns(label=pl.lit(f"chance, grid ({grid_world})"))
        )
live = live_results.with_columns(
    paradigm=pl.col("encoder").str.extract(r"\((random init|released|checkpoint|no learned weights)")
)
parts.append(interval_rows(live, live_items, f"{SYNTH_SOURCE}: live ({live_world})", pl.lit("live")))
chance_parts.append(chance_levels(live_items).with_columns(label=pl.lit(f"chance, live ({live_world})")))
headline_long = pl.concat(parts)
chance = pl.concat(chance_parts)


def fmt(r):
    e, lo, hi = r["estimate"], r["ci_low"], r["ci_high"]
    if e is None:
        return None
    return f"{e:.3f}" if lo is None or hi is None or lo != lo or hi != hi else f"{e:.3f} [{lo:.3f}, {hi:.3f}]"


columns = [c for c in PAPER_COLS if c in paper.columns]
wide = (
    headline_long.filter(pl.col("column").is_in(columns))
    .with_columns(
        pl.struct("estimate", "ci_low", "ci_high").map_elements(fmt, return_dtype=pl.String).alias("value")
    )
    .pivot(on="column", index=["source", "model", "paradigm"], values="value", aggregate_function="first")
)
wide = wide.select("source", "model", "paradigm", *[c for c in columns if c in wide.columns])
is_bird = pl.col("model").str.to_lowercase().str.starts_with("birdnet")
theirs, ours = wide.filter(pl.col("source") == PAPER_SOURCE), wide.filter(pl.col("source") != PAPER_SOURCE)
cut = theirs.with_row_index().filter(is_bird)["index"][0] + 1
headline = pl.concat([theirs.head(cut), ours.filter(is_bird), theirs.slice(cut), ours.filter(~is_bird)])
display(headline)
assert headline.filter(pl.col("source") == PAPER_SOURCE).height == 7
assert set(labels.values()) <= set(headline["model"]) and all("live" in v for v in labels.values())
if "birdnet" in labels or grid_has_birdnet:  # avexlab's BirdNET row stands right under the paper's
    assert headline["model"][cut - 1] == "BirdNet" and headline["model"][cut].lower().startswith("birdnet")

# %% [markdown]
# Pick a column: the paper's published encoders (no interval: the paper gives none), the grid's cells with
# the random-init twins' interval as a grey band, the live encoders; error bars are 95% intervals, dashed
# lines the chance levels of avexlab's test sets.

# %%
points = headline_long.filter(pl.col("paradigm").ne_missing("random-init"))
twins = headline_long.filter((pl.col("source") == grid_source) & (pl.col("paradigm") == "random-init"))
column = widgets.Dropdown(options=columns, value="BEANS clf R-auc", description="column")


def column_figure(name):
    keep = pl.col("column") == name
    return interval_figure(
        points.filter(keep),
        x="model",
        color="source",
        group="group",
        chance=chance.filter(keep),
        bands=twins.filter(keep) if twins.filter(keep).height else None,
        cols=1,
        title=f"{name}: paper (real data) vs avexlab (synthetic world), 95% intervals",
        panel_height=420,
    )


figure = go.FigureWidget(column_figure(column.value))


def show_column(change=None):
    fresh = column_figure(column.value)
    with figure.batch_update():
        figure.data = []
        for trace in fresh.data:
            figure.add_trace(trace)
        figure.layout = fresh.layout


column.observe(show_column, names="value")
display(widgets.VBox([column, figure]))

# %%
# Switching the column redraws that column's points (as a click in the browser would), with their error
# bars and the chance line.
column.value = "BEANS clf probe"
drawn = {y for trace in figure.data if trace.mode == "markers" for y in trace.y}
expected = set(points.filter(pl.col("column") == "BEANS clf probe")["estimate"].drop_nulls().to_list())
assert drawn == expected and len(drawn) > 0
assert any(t.mode == "markers" and t.error_y.array is not None for t in figure.data)
assert any(t.line.dash == "dash" for t in figure.data if t.mode == "lines")

# %% [markdown]
# ## 2. Data-mix ablation (EfficientNet-B0, SL)
#
# `general` = general audio only (AudioSet in the paper, the world's general-audio pool in avexlab),
# `bio` = animal sounds only, `all` = both. avexlab rows come from the grid, when present; what the grid
# says about the paper's data-mix claims is generated from the verdicts.

# %%
mix_paper = paper_data_mix()
mix_cols = [c for c in mix_paper.columns if c not in ("source", "model", "mix")]
mix_of = (
    grid_results.filter((pl.col("architecture") == "efficientnet") & (pl.col("paradigm") == "sl")).select(
        pl.col("encoder").alias("model"), "mix"
    )
    if grid_results is not None
    else pl.DataFrame(schema={"model": pl.String, "mix": pl.String})
)
mix_long = pl.concat(
    [
        mix_paper.unpivot(
            on=mix_cols, index=["source", "model", "mix"], variable_name="column", value_name="estimate"
        ).with_columns(ci_low=None, ci_high=None),
        headline_long.filter(pl.col("source") == grid_source)
        .join(mix_of.unique(), on="model")
        .select("source", "model", "mix", "column", "estimate", "ci_low", "ci_high"),
    ],
    how="diagonal_relaxed",
).filter(pl.col("column").is_in(mix_cols))
display(
    mix_long.with_columns(
        pl.struct("estimate", "ci_low", "ci_high").map_elements(fmt, return_dtype=pl.String).alias("value")
    ).pivot(on="column", index=["source", "model", "mix"], values="value", aggregate_function="first")
)
if findings is not None:
    mix_claims = ["bio_beats_general", "all_not_below_bio", "all_beats_bio"]
    display(Markdown(findings_prose(findings.filter(pl.col("finding").is_in(mix_claims)))))

# %% [markdown]
# ## 3. The paper's real datasets
#
# Which of the 26 have a complete local copy under `DATA_ROOT` (nothing is downloaded; `avexlab data
# check-paper ROOT` says what to put where); those present are evaluated with the live encoders.

# %%
checks = check_all(DATA_ROOT)
display(Markdown(f"{checks['ok'].sum()} of {checks.height} datasets present under `{DATA_ROOT}`."))
display(checks.select("name", "benchmark", "task_family", "ok", "n_clips"))
suites = paper_suites(DATA_ROOT)
if suites:
    real = pl.concat(
        [evaluate_suite(name, s, spec.replace(max_clips_per_split=None)) for name in labels for s in suites]
    )
    display(
        side_by_side(paper_headline(), paper_table(real).with_columns(pl.lit(REAL_SOURCE).alias("source")))
    )
else:
    display(Markdown("No real dataset present: only synthetic numbers are shown above."))
