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
# # Call types: what does an encoder hear? (JupyterLab twin of `notebooks/05_call_types.py`)
#
# Embed every clip with an encoder, project the embeddings to 2-D and look: do calls of one type, one
# individual or one species land together? **Select points** on the map (lasso or box) to listen to them.
# Then k-means with K = the number of known classes is scored against each known label (NMI, ARI).
#
# Set `RECORDINGS` to your own recordings (a folder with one sub-folder per label, or a manifest made by
# `avexlab data from-raven` / `from-sonic-visualiser`, with `ROOT` the folder its paths are relative to)
# and `ENCODER` to `NAME:SIZE` (e.g. `logmel:tiny`, a baseline without training), the path of any
# checkpoint, or `birdnet` (BirdNET V2.4, frozen: 48 kHz input, resampled here, and several times slower
# than the tiny networks). Problems with the recordings or the checkpoint are printed as a message, not a traceback.

# %%
import ipywidgets as widgets
import plotly.graph_objects as go
import polars as pl
from IPython.display import Markdown, clear_output, display

from avexlab.evaluate.clustering import clustering_scores
from avexlab.evaluate.embed import extract_embeddings, resolve_encoder
from avexlab.synth import render_world
from avexlab.viz import SpectrogramPlayer, embedding_map, reduce_embeddings, selected_rows
from avexlab.viz.notebook import (
    catch_user_error,
    default_scale,
    label_columns,
    load_clip,
    open_recordings,
    world_preset,
)

RECORDINGS = ""  # a folder or a manifest file; empty = the synthetic world's syn-repertoire suite
ROOT = None  # a manifest's audio root (default: the manifest's folder)
ENCODER = "logmel:tiny"
CLIP_S = 5.0
SEED = 0
METHOD = "pca"  # or "umap" (seconds on first use)

# %%
if RECORDINGS:
    opened, problem = catch_user_error(open_recordings, RECORDINGS, ROOT)
    manifest, root = opened if opened is not None else (None, None)
else:
    root, problem = None, None
    manifest = render_world(world_preset(default_scale()), SEED).suites["syn-repertoire"].manifest
encoder, encoder_problem = catch_user_error(resolve_encoder, ENCODER, seed=SEED)
problem = problem or encoder_problem
if problem:
    display(Markdown(f"**Cannot continue.** {problem}"))
else:
    print(f"{manifest.height} clips; encoder {encoder.name} ({encoder.embed_dim}-d)")

# %%
if not problem:
    embeddings, problem = catch_user_error(
        extract_embeddings, encoder, manifest, root=root, clip_s=CLIP_S, batch_size=16, progress=True
    )
    if problem:
        display(Markdown(f"**Cannot embed these clips.** {problem}"))

# %% [markdown]
# ## The embedding map
#
# Colour by a known label; lasso or box-select points to listen to them (up to four).

# %%
if not problem:
    X = embeddings.array(-1)
    coords = reduce_embeddings(X, METHOD, seed=SEED, n_neighbors=min(15, X.shape[0] - 1))
    labels = label_columns(manifest)
    colour = labels.columns[0] if labels.columns else None
    figure = go.FigureWidget(
        embedding_map(
            coords,
            labels[colour].to_list() if colour else None,
            hover=manifest.select("clip_id").hstack(labels),
            color_name=colour or "label",
        )
    )
    listen_out = widgets.Output()
    shown = {}  # what the selection displayed last (the check below reads it)

    def show_rows(rows):
        shown["rows"] = rows[:4]
        shown["players"] = [
            SpectrogramPlayer.from_waveform(*load_clip(manifest, r, root), height_px=110) for r in rows[:4]
        ]
        with listen_out:
            clear_output(wait=True)
            print(f"{len(rows)} clips selected")
            for r, player in zip(shown["rows"], shown["players"], strict=True):
                print(manifest["clip_id"][r])
                display(player)

    def on_selection(trace, points, _selector):
        index = list(figure.data).index(trace)
        picked = [{"curveNumber": index, "pointIndex": i} for i in points.point_inds]
        if picked:
            show_rows(selected_rows(figure, picked))

    for trace in figure.data:
        trace.on_selection(on_selection)
    display(widgets.VBox([figure, listen_out]))

# %%
# Selecting the first points of the first trace shows their clips (as a lasso in the browser would).
if not problem:
    first = figure.data[0]
    show_rows(
        selected_rows(figure, [{"curveNumber": 0, "pointIndex": i} for i in range(min(2, len(first.x)))])
    )
    assert shown["rows"] == [int(r[0]) for r in first.customdata[:2]]
    assert all(p.image_width > 0 for p in shown["players"])

# %% [markdown]
# ## Clustering against the known labels
#
# k-means on the raw embeddings (K = number of distinct labels, 10 restarts, seed 42): NMI (0 = unrelated,
# 1 = identical partitions) and ARI (0 = chance).

# %%
if not problem and labels.columns:
    scores = pl.DataFrame(
        [{"labels": c, **clustering_scores(X, labels[c].to_list())} for c in labels.columns]
    )
    display(scores)
    assert scores["nmi"].is_between(0, 1).all()
