import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="avexlab: agile modeling")


@app.cell
def _():
    import hashlib
    import os
    import tempfile
    from pathlib import Path

    import marimo as mo
    import numpy as np
    import polars as pl

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
    from avexlab.evaluate.embed import resolve_encoder
    from avexlab.synth import render_world
    from avexlab.viz import SpectrogramPlayer
    from avexlab.viz.notebook import SCALES, catch_user_error, default_scale, world_preset

    return (
        AgileClassifier,
        BACKGROUND,
        Calibrator,
        LabelTable,
        Path,
        Query,
        SCALES,
        SpectrogramPlayer,
        archive_recordings,
        build_store,
        catch_user_error,
        classification_report,
        cross_val_logits,
        default_scale,
        detect,
        expected_calibration_error,
        hashlib,
        labels_to_reach,
        learning_curves_figure,
        mo,
        next_batch,
        np,
        os,
        pl,
        reliability_curve,
        reliability_figure,
        render_world,
        resolve_encoder,
        score_store,
        search,
        simulate_session,
        tempfile,
        threshold_for_precision,
        training_data,
        window_truth,
        world_preset,
        write_raven,
    )


@app.cell
def _(mo):
    mo.md(r"""
    # Agile modeling: from one example to a classifier you can trust

    The loop bioacousticians ask for: **embed an archive once**, **search it by example**, **label a few
    windows**, **train a small classifier** on the frozen embeddings (with an explicit *background* class),
    **calibrate** it and pick **per-class thresholds** for the precision you need, let **active learning**
    choose what to review next, then **detect** over the whole archive and **export Raven tables**.

    On the **synthetic world** every soundscape's calls are known, so each step shows how close it is to
    the truth, and the reviewer is simulated: windows are labelled from the annotations. On **your
    recordings** (a folder, or a manifest made by `avexlab data from-raven` ...) you label in the tables
    below; labels are appended to `STORE/labels.jsonl` with your name and the time, and the same store
    works from the shell (`avexlab agile --help`).

    Encoder: `NAME:SIZE` (`logmel:tiny` is a log-mel baseline that needs no training) or a checkpoint path
    (e.g. `results/grid/beats-bio-sl/seed-0`, trained on the synthetic world's bio pool).
    """)
    return


@app.cell
def _(SCALES, default_scale, mo):
    scale = mo.ui.dropdown(list(SCALES), value=default_scale(), label="scale")
    seed = mo.ui.number(start=0, stop=10_000, value=0, label="seed")
    source = mo.ui.radio(["synthetic world", "my recordings"], value="synthetic world", label="archive")
    folder = mo.ui.text(
        placeholder="/path/to/recordings or a manifest", label="folder or manifest", full_width=True
    )
    data_root = mo.ui.text(
        placeholder="default: the manifest's folder", label="audio root (manifest only)", full_width=True
    )
    encoder_spec = mo.ui.text(
        value="logmel:tiny", label="encoder (NAME:SIZE or checkpoint path)", full_width=True
    )
    window_s = mo.ui.number(start=0.25, stop=30.0, step=0.25, value=2.0, label="window (s)")
    hop_s = mo.ui.number(start=0.25, stop=30.0, step=0.25, value=1.0, label="hop (s)")
    store_dir = mo.ui.text(
        placeholder="default: a folder in your cache", label="store folder", full_width=True
    )
    annotator = mo.ui.text(value="me", label="your name (for labels)")
    mo.vstack(
        [
            mo.hstack([scale, seed, window_s, hop_s], justify="start"),
            source,
            folder,
            data_root,
            encoder_spec,
            store_dir,
            annotator,
        ]
    )
    return annotator, data_root, encoder_spec, folder, hop_s, scale, seed, source, store_dir, window_s


@app.cell
def _(
    archive_recordings,
    catch_user_error,
    data_root,
    folder,
    mo,
    pl,
    render_world,
    scale,
    seed,
    source,
    world_preset,
):
    # The archive: the world's soundscapes (known calls), or your recordings (checked here, before embedding).
    if source.value == "my recordings":
        mo.stop(
            not folder.value.strip(),
            mo.callout(mo.md("Type the path of a folder of recordings or of a manifest."), kind="info"),
        )
        _opened, _problem = catch_user_error(
            archive_recordings, folder.value.strip(), data_root.value.strip() or None
        )
        mo.stop(
            _problem is not None,
            mo.callout(mo.md(f"**Cannot use these recordings.** {_problem}"), kind="danger"),
        )
        archive, archive_root = folder.value.strip(), data_root.value.strip() or None
        events = None
        _what = f"{_opened[0].height} recordings from `{archive}`"
    else:
        with mo.status.spinner(title=f"Building the {scale.value} world ..."):
            world = render_world(world_preset(scale.value), seed.value)
        _scenes = world.events.select("recording_id", "path", "split").unique().sort("recording_id")
        archive = pl.DataFrame(
            {
                "clip_id": _scenes["recording_id"],
                "path": _scenes["path"],
                "dataset": "soundscapes",
                "split": _scenes["split"],
                "domain": "soundscape",
                "labels": [[]] * _scenes.height,
                "start_s": 0.0,
                "end_s": world.config.scene_duration_s,
            },
            schema_overrides={"labels": pl.List(pl.String)},
        )
        archive_root = None
        events = world.events
        _what = f"{archive.height} soundscapes of {world.config.scene_duration_s:.0f} s, {events.height} annotated calls"
    mo.md(_what)
    return archive, archive_root, events


@app.cell
def _(
    Path,
    archive,
    catch_user_error,
    encoder_spec,
    hashlib,
    hop_s,
    mo,
    os,
    resolve_encoder,
    seed,
    store_dir,
    window_s,
):
    encoder, _problem = catch_user_error(resolve_encoder, encoder_spec.value.strip(), seed=seed.value)
    mo.stop(
        _problem is not None, mo.callout(mo.md(f"**Cannot use this encoder.** {_problem}"), kind="danger")
    )
    _key = hashlib.sha256(
        repr(
            (
                str(archive) if isinstance(archive, str) else archive["path"].to_list(),
                encoder_spec.value.strip(),
                seed.value,
                window_s.value,
                hop_s.value,
            )
        ).encode()
    ).hexdigest()[:16]
    _cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "avexlab" / "agile"
    store_path = Path(store_dir.value.strip()) if store_dir.value.strip() else _cache / _key
    mo.md(
        f"Encoder `{encoder.name}` ({encoder.embed_dim}-d, {encoder.sample_rate} Hz). Store: `{store_path}`"
    )
    return encoder, store_path


@app.cell
def _(
    archive,
    archive_root,
    build_store,
    catch_user_error,
    encoder,
    encoder_spec,
    hop_s,
    mo,
    store_path,
    window_s,
):
    # Embedded once: a rerun (or the CLI) reuses the store; a killed build resumes where it stopped.
    with mo.status.spinner(title="Embedding every window of the archive (once) ..."):
        store, _problem = catch_user_error(
            build_store,
            archive,
            store_path,
            encoder_spec.value.strip() if ":" in encoder_spec.value else encoder,
            root=archive_root,
            window_s=window_s.value,
            hop_s=hop_s.value,
            batch_size=16,
        )
    mo.stop(_problem is not None, mo.callout(mo.md(f"**Cannot build the store.** {_problem}"), kind="danger"))
    mo.md(f"`{store!r}`")
    return (store,)


@app.cell
def _(events, mo, pl, store, window_truth):
    # The truth of every window (synthetic world): calls at least half inside it, and calls touching it.
    truth = window_truth(store.windows, events) if events is not None else None
    if truth is not None:
        _counts = truth.explode("positives").drop_nulls("positives").group_by("positives").len()
        classes_by_count = _counts.sort(["len", "positives"], descending=[True, False])["positives"].to_list()
        _bg = truth.filter(pl.col("touched").list.len() == 0).height
        _msg = f"{store.n_rows} windows: {_bg} hold background only; {len(classes_by_count)} species call in them."
    else:
        classes_by_count = []
        _msg = f"{store.n_rows} windows."
    mo.md(_msg)
    return classes_by_count, truth


@app.cell
def _(mo):
    mo.md(r"""
    ## 1. Search by example

    A query is a selection inside a recording (`PATH@START-END` in seconds, relative to the archive), or
    several. On the synthetic world the query of each target species is its first annotated call in a
    training soundscape; the table marks whether each hit really holds that species.
    """)
    return


@app.cell
def _(classes_by_count, mo, source):
    n_classes = mo.ui.slider(
        1, 5, value=min(3, max(1, len(classes_by_count))), label="target species (most frequent first)"
    )
    k_hits = mo.ui.slider(4, 40, value=12, step=2, label="hits per query")
    query_text = mo.ui.text_area(
        placeholder="one query per line: recording.wav@12.3-13.1",
        label="queries (your recordings)",
        full_width=True,
    )
    query_class = mo.ui.text(value="call", label="their class")
    mo.vstack([n_classes, k_hits] if source.value != "my recordings" else [query_text, query_class, k_hits])
    return k_hits, n_classes, query_class, query_text


@app.cell
def _(
    Query,
    catch_user_error,
    classes_by_count,
    events,
    k_hits,
    mo,
    n_classes,
    pl,
    query_class,
    query_text,
    search,
    store,
    truth,
):
    queries = {}
    if events is not None:
        for _c in classes_by_count[: n_classes.value]:
            _first = (
                events.filter((pl.col("label") == _c) & (pl.col("split") == "train")).sort("onset_s").head(1)
            )
            _first = _first if _first.height else events.filter(pl.col("label") == _c).head(1)
            _r = _first.row(0, named=True)
            queries[_c] = [Query(_r["path"], _r["onset_s"], _r["offset_s"])]
    else:
        _lines = [x.strip() for x in query_text.value.splitlines() if x.strip()]
        mo.stop(not _lines, mo.callout(mo.md("Type one or more queries (`PATH@START-END`)."), kind="info"))
        queries[query_class.value.strip() or "call"] = [Query.parse(x) for x in _lines]
    _frames = []
    for _c, _qs in queries.items():
        _hits, _problem = catch_user_error(search, store, _qs, k_hits.value)
        mo.stop(_problem is not None, mo.callout(mo.md(f"**Cannot search.** {_problem}"), kind="danger"))
        _frames.append(_hits.with_columns(pl.lit(_c).alias("query")))
    hits = pl.concat(_frames)
    if truth is not None:
        hits = hits.join(truth, on="row", how="left").with_columns(
            pl.col("positives").list.contains(pl.col("query")).alias("holds it")
        )
        _p = hits.group_by("query", maintain_order=True).agg(pl.col("holds it").mean().alias("precision@k"))
        _summary = mo.ui.table(_p, selection=None)
    else:
        _summary = mo.md("")
    mo.vstack([mo.md(f"{hits.height} hits ({hits['method'][0]} search)."), _summary])
    return hits, queries


@app.cell
def _(SpectrogramPlayer, hits, mo, store):
    # Listen: the best hits of the first query, with a second of context on each side.
    _rows = hits.head(3)
    _players = []
    for _r in _rows.iter_rows(named=True):
        _wave, _sr, _t0 = store.window_audio(_r["row"], context_s=1.0)
        _box = [
            {
                "onset_s": _r["start_s"] - _t0,
                "offset_s": _r["end_s"] - _t0,
                "label": f"#{_r['rank']} {_r['score']:.2f}",
            }
        ]
        _players.append(
            mo.vstack(
                [
                    mo.md(f"`{_r['window_id']}`"),
                    mo.ui.anywidget(SpectrogramPlayer.from_waveform(_wave, _sr, _box, height_px=110)),
                ]
            )
        )
    mo.vstack(_players)
    return


@app.cell
def _(mo):
    mo.md(r"""
    ## 2. Label

    Synthetic world: the simulated reviewer labels every hit from the truth (positive for a species whose
    call is in the window, negative for species not touching it, **background** when no call touches it).
    Your recordings: select rows of the hit table and append them as positives, negatives or background.
    """)
    return


@app.cell
def _(
    BACKGROUND,
    LabelTable,
    annotator,
    classes_by_count,
    events,
    hits,
    mo,
    n_classes,
    queries,
    store,
    tempfile,
    Path,
):
    # Labels: a simulated session's table (a fresh file per run) or the store's own append-only table.
    if events is not None:
        labels = LabelTable(Path(tempfile.mkdtemp(prefix="agile-labels-")) / "labels.jsonl")
        target_classes = classes_by_count[: n_classes.value]
    else:
        labels = LabelTable(store.path / "labels.jsonl")
        target_classes = list(queries)
    hit_table = mo.ui.table(
        hits.select("rank", "row", "query", "path", "start_s", "end_s", "score"), label="hits"
    )
    label_as = mo.ui.dropdown([*target_classes, BACKGROUND], value=target_classes[0], label="label")
    label_value = mo.ui.radio(["positive", "negative"], value="positive", label="value")

    def _append(_) -> int:
        _rows = hit_table.value["row"].to_list() if hit_table.value is not None else []
        return labels.add(
            store, _rows, label_as.value, label_value.value, annotator=annotator.value, source="search"
        )

    append_button = mo.ui.button(label="append labels for the selected rows", on_click=_append, value=0)
    mo.vstack(
        [hit_table, mo.hstack([label_as, label_value, append_button], justify="start")]
    ) if events is None else mo.md(f"Target species: {', '.join(target_classes)}")
    return append_button, hit_table, label_as, label_value, labels, target_classes


@app.cell
def _(append_button, events, hits, labels, mo, np, seed, store, target_classes, truth):
    # The simulated reviewer (synthetic world): every hit, plus a first listen to 16 random windows.
    if events is not None:
        _first_listen = np.random.default_rng(seed.value).choice(
            store.n_rows, size=min(16, store.n_rows), replace=False
        )
        _who = "simulated reviewer"
        labels.add_from_truth(
            store, hits["row"].unique().to_list(), truth, target_classes, annotator=_who, source="search"
        )
        labels.add_from_truth(
            store, _first_listen.tolist(), truth, target_classes, annotator=_who, source="random listen"
        )
    _clicks = append_button.value  # re-read the table after each append
    current_labels = labels.current()
    mo.vstack(
        [
            mo.md(f"**{current_labels['window_id'].n_unique()} labelled windows** in `{labels.path}`"),
            mo.ui.table(
                current_labels.group_by("label", "value").len().sort("label", "value"), selection=None
            ),
        ]
    )
    return (current_labels,)


@app.cell
def _(mo):
    mo.md(r"""
    ## 3. Train, calibrate, choose thresholds

    A linear classifier on the frozen embeddings: one sigmoid per species plus one for **background**,
    standardised by the statistics of the whole store (the same object standardises training and
    inference inputs). Calibration and thresholds are fitted on **held-out** scores: each labelled window
    is scored by a classifier trained without its recording (cross-validation by recording).
    """)
    return


@app.cell
def _(mo):
    target_precision = mo.ui.slider(0.5, 0.99, value=0.8, step=0.01, label="target precision")
    method = mo.ui.radio(["temperature", "platt"], value="temperature", label="calibration")
    hidden = mo.ui.dropdown(["linear", "MLP (32)"], value="linear", label="classifier")
    mo.hstack([target_precision, method, hidden], justify="start")
    return hidden, method, target_precision


@app.cell
def _(
    AgileClassifier,
    catch_user_error,
    current_labels,
    hidden,
    labels,
    mo,
    store,
    target_classes,
    training_data,
):
    _ = current_labels
    data, _problem = catch_user_error(training_data, store, labels, target_classes)
    mo.stop(_problem is not None, mo.callout(mo.md(f"**Label more windows first.** {_problem}"), kind="warn"))
    clf = AgileClassifier(hidden=0 if hidden.value == "linear" else 32).fit(
        data.X, data.Y, data.classes, stats=store.stats(), encoder_hash=store.encoder_meta["hash"]
    )
    mo.md(f"Trained on {len(data)} labelled windows: {clf.info['positives']} positives.")
    return clf, data


@app.cell
def _(
    Calibrator,
    catch_user_error,
    classification_report,
    clf,
    cross_val_logits,
    data,
    expected_calibration_error,
    method,
    mo,
    np,
    pl,
    reliability_curve,
    reliability_figure,
    store,
    target_precision,
    threshold_for_precision,
):
    from scipy.special import expit

    oof, _problem = catch_user_error(cross_val_logits, data, folds=5, stats=store.stats(), hidden=clf.hidden)
    mo.stop(_problem is not None, mo.callout(mo.md(f"**Cannot cross-validate.** {_problem}"), kind="warn"))
    calibration = Calibrator.fit(oof, data.Y, method.value)
    p_before, p_after = expit(oof), expit(calibration.apply(oof))
    _known = data.Y >= 0
    _eces = {
        "before": expected_calibration_error(p_before[_known], data.Y[_known]),
        "after": expected_calibration_error(p_after[_known], data.Y[_known]),
    }
    _fig = reliability_figure(
        {
            "before": reliability_curve(p_before[_known], data.Y[_known]),
            "after": reliability_curve(p_after[_known], data.Y[_known]),
        },
        _eces,
    )
    _rows = []
    thresholds = {}
    for _j, _c in enumerate(data.classes):
        _t = threshold_for_precision(p_after[:, _j], data.Y[:, _j], target_precision.value, n_resamples=300)
        thresholds[_c] = _t["threshold"]
        _rows.append(
            {
                "class": _c,
                "threshold": _t["threshold"],
                "90% interval": f"[{_t['threshold_lo']:.2f}, {_t['threshold_hi']:.2f}]",
                "precision": _t["precision"],
                "precision 90%": f"[{_t['precision_lo']:.2f}, {_t['precision_hi']:.2f}]",
                "recall": _t["recall"],
                "reached": _t["reachable"],
                "positives": _t["n_positive"],
            }
        )
    clf.calibration = calibration
    clf.thresholds = dict(thresholds)
    report = classification_report(data.Y, p_after, clf.outputs, thresholds)
    mo.vstack(
        [
            mo.ui.plotly(_fig),
            mo.md(
                f"ECE over all labelled outputs: {_eces['before']:.3f} before, {_eces['after']:.3f} after calibration."
            ),
            mo.md(
                f"**Thresholds for precision {target_precision.value:.2f}** (bootstrap intervals, 300 resamples)"
            ),
            mo.ui.table(pl.DataFrame(_rows), selection=None),
            mo.md("**Per-class report** (held-out scores, at those thresholds)"),
            mo.ui.table(report, selection=None),
        ]
    )
    return calibration, report, thresholds


@app.cell
def _(calibration, clf, score_store, store, thresholds):
    # The calibrated classifier over every window of the archive.
    _ = calibration, thresholds
    probs = score_store(store, clf)
    return (probs,)


@app.cell
def _(clf, data, mo, np, pl, probs, store, truth):
    # How close is it? (synthetic world) Every window the reviewer did NOT label, against the truth.
    mo.stop(truth is None, mo.md(""))
    from sklearn.metrics import roc_auc_score

    _unlabelled = np.setdiff1d(np.arange(store.n_rows), data.rows)
    _t = truth[_unlabelled]
    _rows = []
    _detected_any = np.zeros(_unlabelled.size, dtype=bool)
    for _j, _c in enumerate(clf.classes):
        _pos = _t["positives"].list.contains(_c).to_numpy()
        _neg = ~_t["touched"].list.contains(_c).to_numpy()
        _s = probs[_unlabelled, _j]
        _det = _s >= clf.thresholds[_c]
        _detected_any |= _det
        _rows.append(
            {
                "class": _c,
                "roc_auc": roc_auc_score(_pos[_pos | _neg], _s[_pos | _neg])
                if _pos.any() and _neg.any()
                else None,
                "precision": float(_pos[_det].mean()) if _det.any() else None,
                "recall": float(_det[_pos].mean()) if _pos.any() else None,
                "true calls": int(_pos.sum()),
            }
        )
    _bg = (_t["touched"].list.len() == 0).to_numpy()
    fpr_background = float(_detected_any[_bg].mean()) if _bg.any() else float("nan")
    mo.vstack(
        [
            mo.md(
                f"Against the truth on the {_unlabelled.size} unlabelled windows (calls at least half inside a window count):"
            ),
            mo.ui.table(pl.DataFrame(_rows), selection=None),
            mo.md(
                f"Background-only windows with any detection: **{fpr_background:.1%}** of {int(_bg.sum())}."
            ),
        ]
    )
    return (fpr_background,)


@app.cell
def _(mo):
    mo.md(r"""
    ## 4. What to label next

    **Margin** sampling proposes the windows the classifier can least tell from their runner-up output;
    **random** is the control. Below, simulated sessions (the reviewer labels each proposed batch from the
    truth) show how many labels each needs to reach a good ROC AUC on held-out soundscapes.
    """)
    return


@app.cell
def _(data, mo, next_batch, probs, store, truth):
    batch = next_batch(store, probs, 8, strategy="margin", labelled=data.rows)
    _shown = batch.join(truth, on="row", how="left") if truth is not None else batch
    mo.vstack(
        [
            mo.md("Next batch to review (margin; no two windows overlap):"),
            mo.ui.table(_shown.drop("window_id"), selection=None),
        ]
    )
    return (batch,)


@app.cell
def _(
    events,
    labels_to_reach,
    learning_curves_figure,
    mo,
    np,
    pl,
    scale,
    simulate_session,
    store,
    target_classes,
    truth,
):
    mo.stop(events is None, mo.md(""))
    _w = store.windows
    _held = _w.filter(pl.col("recording_id").str.contains("/test/"))["row"].to_numpy()
    _pool = np.setdiff1d(np.arange(store.n_rows), _held)
    _seeds, _rounds, _batch = (2, 3, 6) if scale.value == "smoke" else (5, 12, 10)
    # species with pool positives; a session starts from search: 2 of their positives, plus 10 random windows
    _positives = {
        _c: np.intersect1d(truth.filter(truth["positives"].list.contains(_c))["row"].to_numpy(), _pool)
        for _c in target_classes
    }
    sim_classes = [_c for _c, _p in _positives.items() if _p.size >= 2]
    mo.stop(
        not sim_classes,
        mo.md("No target species calls in the training soundscapes: no sessions to simulate."),
    )
    _curves = []
    with mo.status.spinner(title="Simulating labelling sessions ..."):
        for _seed in range(_seeds):
            _rng = np.random.default_rng(_seed)
            _start = [int(r) for _c in sim_classes for r in _rng.choice(_positives[_c], 2, replace=False)]
            _start += _rng.choice(_pool, size=min(10, _pool.size), replace=False).tolist()
            for _strategy in ("margin", "random"):
                _c = simulate_session(
                    store, truth, sim_classes, start_rows=_start, strategy=_strategy, batch=_batch,
                    rounds=_rounds, pool_rows=_pool, eval_rows=_held, seed=_seed,
                )  # fmt: skip
                _curves.append(
                    _c.with_columns(pl.lit(_strategy).alias("strategy"), pl.lit(_seed).alias("seed"))
                )
    curves = pl.concat(_curves)
    _best = curves["macro_auc"].max()
    _target = _best - 0.02
    _need = curves.group_by("strategy", "seed").agg(pl.struct("labels", "macro_auc")).sort("strategy", "seed")
    _reach = [
        {"strategy": s, "seed": sd, "labels to reach": labels_to_reach(pl.DataFrame(v), _target)}
        for s, sd, v in _need.iter_rows()
    ]
    mo.vstack(
        [
            mo.ui.plotly(learning_curves_figure(curves, target=_target)),
            mo.md(
                f"Labels to reach macro AUC {_target:.3f} (the best seen minus .02) on held-out soundscapes:"
            ),
            mo.ui.table(pl.DataFrame(_reach), selection=None),
        ]
    )
    return curves, sim_classes


@app.cell
def _(mo):
    mo.md(r"""
    ## 5. Detect over the whole archive and export

    Windows at or above each class's threshold, overlapping windows merged into events, written as a tidy
    parquet table and as one Raven selection table per recording (Raven Pro, avexlab's `from-raven` and
    `crowsetta` read them).
    """)
    return


@app.cell
def _(Path, clf, detect, mo, probs, store, tempfile, thresholds, write_raven):
    _ = thresholds
    detections = detect(store, clf, probs=probs, merge=True)
    export_dir = Path(tempfile.mkdtemp(prefix="agile-raven-"))
    raven_files = write_raven(detections, export_dir, store=store)
    _first = raven_files[0].read_text().splitlines()[:4] if raven_files else []
    mo.vstack(
        [
            mo.md(
                f"**{detections.height} detections**; {len(raven_files)} Raven table(s) in `{export_dir}`."
            ),
            mo.ui.table(detections.drop("row"), selection=None),
            mo.md("First lines of the first table:\n\n```\n" + "\n".join(_first) + "\n```"),
        ]
    )
    return detections, raven_files


@app.cell
def _(SpectrogramPlayer, detections, events, mo, pl, store):
    # One recording with its detections (and, on the synthetic world, the true calls of the target species).
    mo.stop(detections.height == 0, mo.md("No detections at these thresholds."))
    _path = detections["path"][0]
    _full = store.full_path(_path)
    from avexlab.audio.io import load_audio

    _wave, _sr = load_audio(_full)
    _boxes = [
        {"onset_s": r["start_s"], "offset_s": r["end_s"], "label": f"{r['label']} {r['score']:.2f}"}
        for r in detections.filter(pl.col("path") == _path).iter_rows(named=True)
    ]
    if events is not None:
        _boxes += [
            {
                "onset_s": r["onset_s"],
                "offset_s": r["offset_s"],
                "label": f"true: {r['label']}",
                "low_hz": r["low_hz"],
                "high_hz": r["high_hz"],
            }
            for r in events.filter(
                (pl.col("path") == _path) & pl.col("label").is_in(detections["label"].unique().to_list())
            ).iter_rows(named=True)
        ]
    mo.vstack(
        [
            mo.md(f"`{_path}`: detections (full height) and true calls (their band)"),
            mo.ui.anywidget(SpectrogramPlayer.from_waveform(_wave.numpy(), _sr, _boxes, height_px=160)),
        ]
    )
    return


if __name__ == "__main__":
    app.run()
