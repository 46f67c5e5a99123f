import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="avexlab: individual identification")


@app.cell
def _():
    import marimo as mo
    import polars as pl

    from avexlab.evaluate.embed import extract_embeddings, resolve_encoder
    from avexlab.evaluate.individual import individual_id_scores
    from avexlab.evaluate.spec import EvalSpec
    from avexlab.synth import render_world
    from avexlab.viz import embedding_map, reduce_embeddings, result_bars
    from avexlab.viz.notebook import SCALES, catch_user_error, default_scale, world_preset

    return (
        EvalSpec,
        SCALES,
        catch_user_error,
        default_scale,
        embedding_map,
        extract_embeddings,
        individual_id_scores,
        mo,
        pl,
        reduce_embeddings,
        render_world,
        resolve_encoder,
        result_bars,
        world_preset,
    )


@app.cell
def _(mo):
    mo.md(r"""
    # Individual identification across recording sessions

    Can an encoder tell **which animal** is calling, not just which species? The paper tests this on
    pipits, chiffchaffs and little owls recorded in different years: the probe and the retrieval gallery
    come from one year, the queries from another, so a model cannot succeed by recognising the
    microphone, the site or the weather of one recording session.

    The synthetic world's `syn-individual` suite copies that protocol. Per species, a few individuals
    with stable voices are recorded in several **sessions** (each session has its own recording
    conditions); the sessions are split whole:

    - **train** = the first sessions: the probe's training clips and the retrieval gallery;
    - **val** = the next session: picks the probe's best epoch;
    - **test** = the last session, never seen in training.

    Two scores per species:

    - **probe accuracy** (the paper's *Indiv. ID probe*): a linear classifier over individuals, trained on
      the training sessions, scored on the test session. Chance = 1 / number of individuals.
    - **retrieval ROC AUC**, in two modes: *cross-session* (test queries ranked against the training
      gallery: the paper's protocol) and *same session* (test queries ranked against the other test clips).
      Chance = 0.5. Same-session retrieval can be inflated by shared recording conditions; a large gap
      between the two modes means the encoder hears the session, not the animal.

    Encoder: `NAME:SIZE` (`logmel:tiny`, a log-mel statistics baseline that needs no training; `beats:tiny`
    or `efficientnet:tiny`, untrained random-init networks), the path of a checkpoint (`avexlab train`
    output, official BEATs/EAT weights), or `birdnet` (BirdNET V2.4, the released bird model, run frozen: it
    takes 48 kHz audio, so clips are resampled, and it embeds its 3 s windows several times slower than the
    tiny networks).
    """)
    return


@app.cell
def _(SCALES, default_scale, mo):
    scale = mo.ui.dropdown(list(SCALES), value=default_scale(), label="scale")
    seed = mo.ui.number(start=0, stop=10_000, value=0, label="seed")
    encoder_spec = mo.ui.text(
        value="logmel:tiny", label="encoder (NAME:SIZE, checkpoint path, or birdnet)", full_width=True
    )
    mo.vstack([mo.hstack([scale, seed], justify="start"), encoder_spec])
    return encoder_spec, scale, seed


@app.cell
def _(mo, pl, render_world, scale, seed, world_preset):
    with mo.status.spinner(title=f"Building the {scale.value} world ..."):
        suite = render_world(world_preset(scale.value), seed.value).suites["syn-individual"]
    _plan = (
        suite.manifest.group_by("dataset", "species", "split")
        .agg(
            pl.col("session").unique().sort().alias("sessions"),
            pl.col("individual").n_unique().alias("individuals"),
            pl.len().alias("clips"),
        )
        .sort("dataset", "split")
    )
    mo.vstack(
        [
            mo.md(f"`syn-individual`: {len(suite.manifests)} species, {suite.manifest.height} clips."),
            mo.ui.table(_plan, selection=None),
        ]
    )
    return (suite,)


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
def _(catch_user_error, encoder, extract_embeddings, mo, suite):
    embeddings = {}
    for _dataset in mo.status.progress_bar(list(suite.manifests), title="Embedding each species' clips"):
        embeddings[_dataset], _problem = catch_user_error(
            extract_embeddings,
            encoder,
            suite.manifests[_dataset],
            batch_size=16,
            cache_dir=".cache/embeddings",
            progress=False,
        )
        mo.stop(
            _problem is not None,
            mo.callout(mo.md(f"**Cannot embed `{_dataset}`.** {_problem}"), kind="danger"),
        )
    return (embeddings,)


@app.cell
def _(EvalSpec, embeddings, individual_id_scores, mo, scale):
    # Probe epochs per scale (the paper's recipe at paper scale).
    _epochs = {"smoke": 5, "workshop": 15, "paper": 30}[scale.value]
    with mo.status.spinner(title="Fitting probes and ranking galleries ..."):
        scores = individual_id_scores(embeddings, EvalSpec(probe_epochs=_epochs))
    return (scores,)


@app.cell
def _(mo, pl, scores):
    _wide = (
        scores.with_columns(
            (pl.col("method") + " " + pl.col("metric") + " (" + pl.col("mode") + ")").alias("score")
        )
        .pivot(on="score", index=["dataset", "species", "n_individuals", "chance"], values="value")
        .sort("dataset")
    )
    mo.vstack(
        [
            mo.md(
                "## Per species\n\nOne row per species. `chance` is the probe accuracy of guessing; "
                "retrieval ROC AUC's chance is 0.5."
            ),
            mo.ui.table(_wide, selection=None),
        ]
    )
    return


@app.cell
def _(mo, pl, result_bars, scores):
    _probe = scores.filter((pl.col("method") == "probe") & (pl.col("metric") == "accuracy"))
    _chance = _probe.select(
        "species", pl.lit("chance (1 / individuals)").alias("what"), pl.col("chance").alias("value")
    )
    _bars = pl.concat(
        [_probe.select("species", pl.lit("probe, unseen session").alias("what"), "value"), _chance]
    )
    _retrieval = scores.filter((pl.col("method") == "retrieval") & (pl.col("metric") == "roc_auc"))
    mo.vstack(
        [
            mo.md(
                "## Probe and retrieval, per species\n\nLeft: probe accuracy on the unseen session against "
                "chance. Right: retrieval ROC AUC, cross-session vs same session (0.5 = chance)."
            ),
            mo.hstack(
                [
                    mo.ui.plotly(
                        result_bars(_bars, x="species", color="what", title="Probe accuracy", height=360)
                    ),
                    mo.ui.plotly(
                        result_bars(
                            _retrieval, x="species", color="mode", title="Retrieval ROC AUC", height=360
                        )
                    ),
                ],
                widths="equal",
            ),
        ]
    )
    return


@app.cell
def _(embeddings, mo):
    species_pick = mo.ui.dropdown(list(embeddings), value=next(iter(embeddings)), label="species (dataset)")
    species_pick
    return (species_pick,)


@app.cell
def _(embedding_map, embeddings, mo, reduce_embeddings, seed, species_pick):
    _emb = embeddings[species_pick.value]
    _m = _emb.manifest
    _coords = reduce_embeddings(_emb.array(-1), "pca", seed=seed.value)
    mo.vstack(
        [
            mo.md(
                "## Embedding map, coloured by individual\n\nPCA of every clip of one species (all "
                "sessions). Tight same-colour groups that stay together across sessions (hover: `session`) "
                "mean the encoder hears the individual; groups that split by session mean it hears the "
                "recording conditions."
            ),
            mo.ui.plotly(
                embedding_map(
                    _coords,
                    _m["individual"].to_list(),
                    hover=_m.select("clip_id", "session", "split"),
                    color_name="individual",
                    title=f"{species_pick.value}: {_m.height} clips",
                )
            ),
        ]
    )
    return


if __name__ == "__main__":
    app.run()
