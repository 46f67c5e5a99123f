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
# # Agile modeling: from one example to a classifier you can trust (JupyterLab twin of `notebooks/08_agile.py`)
#
# **Embed an archive once**, **search it by example**, **label a few windows**, **train a small classifier**
# on the frozen embeddings (with an explicit *background* class), **calibrate** it and choose
# **per-class thresholds** for the precision you need, let **active learning** choose what to review next,
# then **detect** over the whole archive and **export Raven tables**.
#
# With `RECORDINGS = ""` the archive is the synthetic world's soundscapes: every call is known, the reviewer
# is simulated (labels come from the annotations) and each step is compared with the truth. Set
# `RECORDINGS` to a folder of your recordings (or a manifest) and `QUERIES` to selections in them
# (`"file.wav@12.3-13.1"`); label with `label(rows, "call")` / `label(rows, "background")` below (appended to
# `STORE/labels.jsonl` with `ANNOTATOR` and the time), then run the cells after it again.

# %%
import os
import tempfile
from pathlib import Path

import numpy as np
import polars as pl
from IPython.display import Markdown, display
from scipy.special import expit

from avexlab.agile.active import next_batch
from avexlab.agile.calibration import (
    Calibrator,
    classification_report,
    expected_calibration_error,
    reliability_curve,
    threshold_for_precision,
)
from avexlab.agile.classifier import AgileClassifier, cross_val_logits, training_data
from avexlab.agile.detect import detect, score_store, write_raven
from avexlab.agile.figures import learning_curves_figure, reliability_figure
from avexlab.agile.labels import BACKGROUND, LabelTable, window_truth
from avexlab.agile.search import Query, search
from avexlab.agile.simulate import labels_to_reach, simulate_session
from avexlab.agile.store import archive_recordings, build_store
from avexlab.synth import render_world
from avexlab.viz import SpectrogramPlayer
from avexlab.viz.notebook import catch_user_error, default_scale, world_preset

RECORDINGS = ""  # a folder of recordings or a manifest; empty = the synthetic world's soundscapes
ROOT = None  # a manifest's audio root (default: the manifest's folder)
QUERIES = {"call": []}  # your recordings: class -> ["file.wav@START-END", ...]
ENCODER = "logmel:tiny"  # NAME:SIZE or a checkpoint path (e.g. results/grid/beats-bio-sl/seed-0)
WINDOW_S, HOP_S = 2.0, 1.0
N_CLASSES = 3  # synthetic world: the most frequent species
K_HITS = 12
TARGET_PRECISION = 0.8
ANNOTATOR = "me"
SEED = 0
SCALE = default_scale()
CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "avexlab" / "agile"

# %%
problem = None
if RECORDINGS:
    opened, problem = catch_user_error(archive_recordings, RECORDINGS, ROOT)
    archive, events = RECORDINGS, None
    store_path = CACHE / f"jupyter-{Path(RECORDINGS).name}-{ENCODER.replace('/', '_').replace(':', '-')}"
else:
    world = render_world(world_preset(SCALE), SEED)
    scenes = world.events.select("recording_id", "path", "split").unique().sort("recording_id")
    archive = pl.DataFrame(
        {
            "clip_id": scenes["recording_id"],
            "path": scenes["path"],
            "dataset": "soundscapes",
            "split": scenes["split"],
            "domain": "soundscape",
            "labels": [[]] * scenes.height,
            "start_s": 0.0,
            "end_s": world.config.scene_duration_s,
        },
        schema_overrides={"labels": pl.List(pl.String)},
    )
    events = world.events
    store_path = (
        CACHE
        / f"jupyter-world-{SCALE}-{SEED}-{ENCODER.replace('/', '_').replace(':', '-')}-{WINDOW_S}-{HOP_S}"
    )
if problem is None:
    store, problem = catch_user_error(
        build_store,
        archive,
        store_path,
        ENCODER,
        root=ROOT,
        seed=SEED,
        window_s=WINDOW_S,
        hop_s=HOP_S,
        batch_size=16,
    )
display(Markdown(f"**Cannot continue.** {problem}" if problem else f"`{store!r}`"))

# %% [markdown]
# ## 1. Search by example
#
# The synthetic world's query of each target species is its first annotated call in a training soundscape;
# `holds it` says whether a hit really holds that species (a call at least half inside the window).

# %%
if not problem:
    truth = window_truth(store.windows, events) if events is not None else None
    if truth is not None:
        counts = truth.explode("positives").drop_nulls("positives").group_by("positives").len()
        target_classes = counts.sort(["len", "positives"], descending=[True, False])["positives"].to_list()[
            :N_CLASSES
        ]
        queries = {}
        for c in target_classes:
            first = (
                events.filter((pl.col("label") == c) & (pl.col("split") == "train")).sort("onset_s").head(1)
            )
            first = first if first.height else events.filter(pl.col("label") == c).head(1)
            r = first.row(0, named=True)
            queries[c] = [Query(r["path"], r["onset_s"], r["offset_s"])]
    else:
        queries = {c: [Query.parse(q) for q in qs] for c, qs in QUERIES.items() if qs}
        target_classes = list(queries)
    frames = [search(store, qs, K_HITS).with_columns(pl.lit(c).alias("query")) for c, qs in queries.items()]
    hits = pl.concat(frames) if frames else None
    if hits is not None and truth is not None:
        hits = hits.join(truth, on="row", how="left").with_columns(
            pl.col("positives").list.contains(pl.col("query")).alias("holds it")
        )
        display(
            hits.group_by("query", maintain_order=True).agg(pl.col("holds it").mean().alias("precision@k"))
        )
    if hits is not None:
        display(hits.select("rank", "row", "query", "path", "start_s", "end_s", "score"))
        for r in hits.head(2).iter_rows(named=True):
            wave, sr, t0 = store.window_audio(r["row"], context_s=1.0)
            box = [{"onset_s": r["start_s"] - t0, "offset_s": r["end_s"] - t0, "label": f"#{r['rank']}"}]
            display(
                Markdown(f"`{r['window_id']}`"), SpectrogramPlayer.from_waveform(wave, sr, box, height_px=110)
            )

# %% [markdown]
# ## 2. Label
#
# Synthetic world: the simulated reviewer labels every hit and 16 random windows from the truth. Your
# recordings: call `label(rows, "call")`, `label(rows, "call", "negative")` or `label(rows, BACKGROUND)`
# with store rows (the `row` column of the hits), then rerun the cells below.

# %%
if not problem:
    if truth is not None:
        labels = LabelTable(Path(tempfile.mkdtemp(prefix="agile-labels-")) / "labels.jsonl")
        listen = np.random.default_rng(SEED).choice(store.n_rows, size=min(16, store.n_rows), replace=False)
        labels.add_from_truth(
            store,
            hits["row"].unique().to_list(),
            truth,
            target_classes,
            annotator="simulated reviewer",
            source="search",
        )
        labels.add_from_truth(
            store,
            listen.tolist(),
            truth,
            target_classes,
            annotator="simulated reviewer",
            source="random listen",
        )
    else:
        labels = LabelTable(store.path / "labels.jsonl")

    def label(rows, name, value="positive"):
        """Append labels for store ``rows`` (who: ANNOTATOR; when: now)."""
        return labels.add(store, rows, name, value, annotator=ANNOTATOR, source="search")

    display(labels.current().group_by("label", "value").len().sort("label", "value"))

# %% [markdown]
# ## 3. Train, calibrate, choose thresholds
#
# One sigmoid per class plus one for background; the same object standardises training and inference
# inputs. Calibration and thresholds come from held-out scores (cross-validation by recording).

# %%
if not problem:
    data, problem = catch_user_error(training_data, store, labels, target_classes)
    if problem:
        display(Markdown(f"**Label more windows first.** {problem}"))
if not problem:
    clf = AgileClassifier().fit(
        data.X, data.Y, data.classes, stats=store.stats(), encoder_hash=store.encoder_meta["hash"]
    )
    oof = cross_val_logits(data, folds=5, stats=store.stats())
    clf.calibration = Calibrator.fit(oof, data.Y, "temperature")
    p_before, p_after = expit(oof), expit(clf.calibration.apply(oof))
    known = data.Y >= 0
    eces = {
        "before": expected_calibration_error(p_before[known], data.Y[known]),
        "after": expected_calibration_error(p_after[known], data.Y[known]),
    }
    display(
        reliability_figure(
            {
                "before": reliability_curve(p_before[known], data.Y[known]),
                "after": reliability_curve(p_after[known], data.Y[known]),
            },
            eces,
        )
    )
    rows = []
    for j, c in enumerate(data.classes):
        t = threshold_for_precision(p_after[:, j], data.Y[:, j], TARGET_PRECISION, n_resamples=300, seed=SEED)
        clf.thresholds[c] = t["threshold"]
        rows.append(
            {
                k: t[k]
                for k in (
                    "threshold",
                    "threshold_lo",
                    "threshold_hi",
                    "precision",
                    "precision_lo",
                    "precision_hi",
                    "recall",
                    "reachable",
                )
            }
            | {"class": c}
        )
    thresholds_table = pl.DataFrame(rows)
    report = classification_report(data.Y, p_after, clf.outputs, clf.thresholds)
    display(
        Markdown(f"ECE {eces['before']:.3f} before, {eces['after']:.3f} after calibration."),
        thresholds_table,
        report,
    )
    assert 0 <= eces["after"] <= 1 and 0 <= eces["before"] <= 1
    assert report["class"].to_list() == [*clf.classes, BACKGROUND, "macro avg"]

# %% [markdown]
# ## 4. How close is it, and what next?

# %%
if not problem:
    probs = score_store(store, clf)
    batch = next_batch(store, probs, 8, strategy="margin", labelled=data.rows)
    display(
        Markdown("Next batch to review (margin):"),
        batch.join(truth, on="row", how="left") if truth is not None else batch,
    )
    assert not set(batch["row"].to_list()) & set(data.rows.tolist())
if not problem and truth is not None:
    unlabelled = np.setdiff1d(np.arange(store.n_rows), data.rows)
    tt = truth[unlabelled]
    detected = np.zeros(unlabelled.size, dtype=bool)
    for j, c in enumerate(clf.classes):
        detected |= probs[unlabelled, j] >= clf.thresholds[c]
    bg = (tt["touched"].list.len() == 0).to_numpy()
    display(
        Markdown(
            f"Background-only windows with any detection: **{detected[bg].mean():.1%}** of {int(bg.sum())}."
        )
    )
    held = store.windows.filter(pl.col("recording_id").str.contains("/test/"))["row"].to_numpy()
    pool = np.setdiff1d(np.arange(store.n_rows), held)
    seeds, rounds, size = (2, 3, 6) if SCALE == "smoke" else (5, 12, 10)
    positives = {
        c: np.intersect1d(truth.filter(truth["positives"].list.contains(c))["row"].to_numpy(), pool)
        for c in target_classes
    }
    sim_classes = [
        c for c, p in positives.items() if p.size >= 2
    ]  # species that call in the training soundscapes
    curves = []
    for s in range(seeds):
        rng = np.random.default_rng(
            s
        )  # a session starts from search: 2 positives per species + 10 random windows
        start = [int(r) for c in sim_classes for r in rng.choice(positives[c], 2, replace=False)]
        start += rng.choice(pool, size=min(10, pool.size), replace=False).tolist()
        for strategy in ("margin", "random"):
            c = simulate_session(
                store,
                truth,
                sim_classes,
                start_rows=start,
                strategy=strategy,
                batch=size,
                rounds=rounds,
                pool_rows=pool,
                eval_rows=held,
                seed=s,
            )
            curves.append(c.with_columns(pl.lit(strategy).alias("strategy"), pl.lit(s).alias("seed")))
    curves = pl.concat(curves)
    target = curves["macro_auc"].max() - 0.02
    display(learning_curves_figure(curves, target=target))
    need = [
        {"strategy": st, "seed": s, "labels to reach": labels_to_reach(g, target)}
        for (st, s), g in curves.group_by(["strategy", "seed"], maintain_order=True)
    ]
    display(pl.DataFrame(need))

# %% [markdown]
# ## 5. Detect and export Raven tables

# %%
if not problem:
    detections = detect(store, clf, probs=probs, merge=True)
    out_dir = Path(tempfile.mkdtemp(prefix="agile-raven-"))
    files = write_raven(detections, out_dir, store=store)
    display(
        Markdown(f"**{detections.height} detections**, {len(files)} Raven table(s) in `{out_dir}`"),
        detections.drop("row"),
    )
    assert len(files) == detections["path"].n_unique()
