import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="avexlab: call types")


@app.cell
def _():
    import marimo as mo
    import polars as pl

    from avexlab.evaluate.clustering import clustering_scores
    from avexlab.evaluate.embed import extract_embeddings, resolve_encoder
    from avexlab.synth import render_world
    from avexlab.viz import (
        SpectrogramPlayer,
        embedding_map,
        reduce_embeddings,
        selected_rows,
        spectrogram_figure,
    )
    from avexlab.viz.notebook import (
        SCALES,
        catch_user_error,
        default_scale,
        label_columns,
        load_clip,
        open_recordings,
        world_preset,
    )

    return (
        SCALES,
        SpectrogramPlayer,
        catch_user_error,
        clustering_scores,
        default_scale,
        embedding_map,
        extract_embeddings,
        label_columns,
        load_clip,
        mo,
        open_recordings,
        pl,
        reduce_embeddings,
        render_world,
        resolve_encoder,
        selected_rows,
        spectrogram_figure,
        world_preset,
    )


@app.cell
def _(mo):
    mo.md(r"""
    # Call types: what does an encoder hear?

    Embed every clip with an encoder, project the embeddings to 2-D and look: do calls of one type, one
    individual or one species land together? **Select points** on the map (lasso or box) to listen to
    them and see their spectrograms. Below the map, k-means with K = the number of known classes is scored
    against each known label (NMI, ARI): the paper's clustering protocol.

    Data: the synthetic world's `syn-repertoire` suite (clips of known call types, individuals and
    species), or **your own recordings**: a folder (one sub-folder per label, e.g. `alarm/`, `song/`) or a
    manifest made from annotations (`avexlab data from-raven` / `from-sonic-visualiser`: one clip per
    selection) with the folder its paths are relative to.
    Encoder: `NAME:SIZE` (e.g. `logmel:tiny`, a log-mel statistics baseline that needs no training, or an
    untrained `beats:tiny`), the path of any checkpoint (`avexlab train` output, official BEATs/EAT), or
    `birdnet` (BirdNET V2.4, the released bird model, run frozen: it takes 48 kHz audio, so clips are
    resampled, and it embeds its 3 s windows several times slower than the tiny networks).
    """)
    return


@app.cell
def _(SCALES, default_scale, mo):
    scale = mo.ui.dropdown(list(SCALES), value=default_scale(), label="scale")
    seed = mo.ui.number(start=0, stop=10_000, value=0, label="seed")
    source = mo.ui.radio(
        ["synthetic repertoire", "my recordings"], value="synthetic repertoire", label="data"
    )
    folder = mo.ui.text(
        placeholder="/path/to/recordings or /path/to/manifest.parquet",
        label="folder or manifest",
        full_width=True,
    )
    data_root = mo.ui.text(
        placeholder="default: the manifest's folder", label="audio root (manifest only)", full_width=True
    )
    encoder_spec = mo.ui.text(
        value="logmel:tiny", label="encoder (NAME:SIZE, checkpoint path, or birdnet)", full_width=True
    )
    clip_s = mo.ui.number(start=0.5, stop=60.0, step=0.5, value=5.0, label="clip length (s)")
    mo.vstack([mo.hstack([scale, seed, clip_s], justify="start"), source, folder, data_root, encoder_spec])
    return clip_s, data_root, encoder_spec, folder, scale, seed, source


@app.cell
def _(
    catch_user_error, data_root, folder, mo, open_recordings, render_world, scale, seed, source, world_preset
):
    if source.value == "my recordings":
        mo.stop(
            not folder.value.strip(),
            mo.callout(mo.md("Type the path of a folder of recordings or of a manifest."), kind="info"),
        )
        _opened, _problem = catch_user_error(
            open_recordings, folder.value.strip(), data_root.value.strip() or None
        )
        mo.stop(
            _problem is not None,
            mo.callout(mo.md(f"**Cannot use these recordings.** {_problem}"), kind="danger"),
        )
        manifest, root = _opened
    else:
        root = None
        with mo.status.spinner(title=f"Building the {scale.value} world ..."):
            manifest = render_world(world_preset(scale.value), seed.value).suites["syn-repertoire"].manifest
    mo.md(f"{manifest.height} clips from `{root or 'syn-repertoire'}`.")
    return manifest, root


@app.cell
def _(catch_user_error, encoder_spec, mo, resolve_encoder, seed):
    encoder, _problem = catch_user_error(resolve_encoder, encoder_spec.value.strip(), seed=seed.value)
    mo.stop(
        _problem is not None, mo.callout(mo.md(f"**Cannot use this encoder.** {_problem}"), kind="danger")
    )
    mo.md(
        f"Encoder `{encoder.name}`: {encoder.num_layers} layers, {encoder.embed_dim}-d embeddings, "
        f"{encoder.sample_rate} Hz input."
    )
    return (encoder,)


@app.cell
def _(catch_user_error, clip_s, encoder, extract_embeddings, manifest, mo, root):
    with mo.status.spinner(title=f"Embedding {manifest.height} clips ...") as _spinner:
        embeddings, _problem = catch_user_error(
            extract_embeddings,
            encoder,
            manifest,
            root=root,
            clip_s=clip_s.value,
            batch_size=16,
            progress=True,
        )
    mo.stop(
        _problem is not None, mo.callout(mo.md(f"**Cannot embed these clips.** {_problem}"), kind="danger")
    )
    return (embeddings,)


@app.cell
def _(embeddings, label_columns, manifest, mo):
    labels = label_columns(manifest)
    method = mo.ui.radio(["pca", "umap"], value="pca", label="projection (UMAP: seconds on first use)")
    color_by = mo.ui.dropdown(
        labels.columns or ["(none)"], value=(labels.columns or ["(none)"])[0], label="colour by"
    )
    mo.vstack(
        [
            mo.md(f"Embeddings: {embeddings.array(-1).shape[0]} x {embeddings.array(-1).shape[1]}."),
            mo.hstack([method, color_by], justify="start"),
        ]
    )
    return color_by, labels, method


@app.cell
def _(embeddings, method, mo, reduce_embeddings, seed):
    with mo.status.spinner(title=f"Projecting with {method.value.upper()} ..."):
        coords = reduce_embeddings(
            embeddings.array(-1),
            method.value,
            seed=seed.value,
            n_neighbors=min(15, embeddings.array(-1).shape[0] - 1),
        )
    return (coords,)


@app.cell
def _(color_by, coords, embedding_map, labels, manifest, mo):
    figure = embedding_map(
        coords,
        labels[color_by.value].to_list() if color_by.value in labels.columns else None,
        hover=manifest.select("clip_id").hstack(labels),
        color_name=color_by.value,
        title="Embedding map (select points to listen)",
    )
    embedding_plot = mo.ui.plotly(figure)
    embedding_plot
    return embedding_plot, figure


@app.cell
def _(embedding_plot, figure, selected_rows):
    chosen = selected_rows(figure, embedding_plot.value)
    return (chosen,)


@app.cell
def _(SpectrogramPlayer, chosen, load_clip, manifest, mo, root, spectrogram_figure):
    _rows = chosen[:4] or [0]
    _intro = (
        f"{len(chosen)} clips selected; the first {len(_rows)}:"
        if chosen
        else "Nothing selected yet: the first clip is shown. Select points on the map to listen to them."
    )
    _clips = [(manifest["clip_id"][_r], *load_clip(manifest, _r, root)) for _r in _rows]
    mo.vstack(
        [
            mo.md(_intro),
            mo.ui.plotly(spectrogram_figure(_clips[0][1], _clips[0][2], title=_clips[0][0], height=260)),
            *[
                mo.vstack(
                    [
                        mo.md(f"`{_cid}`"),
                        mo.ui.anywidget(SpectrogramPlayer.from_waveform(_w, _sr, height_px=110)),
                    ]
                )
                for _cid, _w, _sr in _clips
            ],
        ]
    )
    return


@app.cell
def _(mo):
    mo.md(r"""
    ## Clustering against the known labels

    k-means on the raw embeddings (K = number of distinct labels, 10 restarts, seed 42), scored by
    normalised mutual information (NMI, 0 = unrelated, 1 = identical partitions) and adjusted Rand index
    (ARI, 0 = chance). Low numbers for `call_type` with an untrained encoder are expected.
    """)
    return


@app.cell
def _(clustering_scores, embeddings, labels, mo, pl):
    mo.stop(not labels.columns, mo.callout(mo.md("No label column to score clusters against."), kind="info"))
    pl.DataFrame(
        [
            {"labels": _c, **clustering_scores(embeddings.array(-1), labels[_c].to_list())}
            for _c in labels.columns
        ]
    )
    return


if __name__ == "__main__":
    app.run()
