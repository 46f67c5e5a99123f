import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Workshop 6: call types and individuals")


@app.cell
def _():
    import marimo as mo
    import numpy as np
    import polars as pl

    from avexlab.evaluate.clustering import clustering_scores
    from avexlab.evaluate.embed import extract_embeddings
    from avexlab.evaluate.individual import individual_retrieval
    from avexlab.viz import embedding_map, reduce_embeddings
    from avexlab.viz.notebook import catch_user_error, label_columns, open_recordings
    from avexlab.workshop.section import course_folder_input, open_section

    return (
        course_folder_input,
        open_section,
        catch_user_error,
        clustering_scores,
        embedding_map,
        extract_embeddings,
        individual_retrieval,
        label_columns,
        mo,
        np,
        open_recordings,
        pl,
        reduce_embeddings,
    )


@app.cell
def _(mo):
    mo.md(r"""
    # 6 · Call types and individuals, on your own recordings (30 min)

    **Goals.** After this section you can ask an encoder two questions the study's repertoire and
    individual-ID tasks ask (do its embeddings group a species' **call types**? can it tell **individuals**
    apart across recording sessions?), and ask them of **your own recordings**.
    """)
    return


@app.cell
def _(course_folder_input, mo):
    course_folder = course_folder_input(mo)
    course_folder
    return (course_folder,)


@app.cell
def _(course_folder, mo, open_section):
    course, tracker, _note = open_section(mo, course_folder.value)
    _note
    return course, tracker


@app.cell
def _(course, mo):
    rep_dataset = mo.ui.dropdown(
        course.datasets("repertoire"), value=course.datasets("repertoire")[0], label="species"
    )
    rep_encoder = mo.ui.radio(course.encoder_keys, value="sl", label="encoder", inline=True)
    rep_colour = mo.ui.radio(["call_type", "individual"], value="call_type", label="colour by", inline=True)
    mo.vstack(
        [
            mo.md(
                "## A species' repertoire\n\nEach clip is one call of one individual; the species has several "
                "call types. Every clip of the species (clustering trains nothing), PCA of the embeddings."
            ),
            mo.hstack([rep_dataset, rep_encoder, rep_colour], justify="start"),
        ]
    )
    return rep_colour, rep_dataset, rep_encoder


@app.cell
def _(
    clustering_scores,
    course,
    embedding_map,
    mo,
    pl,
    reduce_embeddings,
    rep_colour,
    rep_dataset,
    rep_encoder,
):
    _emb = course.embeddings(rep_encoder.value, "repertoire", rep_dataset.value)
    _x, _rows = _emb.array(), _emb.manifest
    _nmi = pl.DataFrame(
        [
            {"label": _c, "classes": _rows[_c].n_unique(), **clustering_scores(_x, _rows[_c].to_list())}
            for _c in ("call_type", "individual")
            if _rows[_c].n_unique() >= 2
        ]
    ).select("label", "classes", pl.col("nmi", "ari").round(3))
    mo.hstack(
        [
            mo.ui.plotly(
                embedding_map(
                    reduce_embeddings(_x, "pca"),
                    _rows[rep_colour.value].to_list(),
                    hover=_rows.select("clip_id", "call_type", "individual"),
                    color_name=rep_colour.value,
                    title=f"{rep_encoder.value} on {rep_dataset.value}",
                    height=400,
                )
            ),
            mo.vstack(
                [
                    mo.md("k-means with K = number of classes of each label (the paper's protocol):"),
                    mo.ui.table(_nmi, selection=None),
                ]
            ),
        ],
        widths=[2, 1],
    )
    return


@app.cell
def _(mo, tracker):
    label_answer = mo.ui.dropdown(
        tracker.options("s6-best-label"), value=tracker.initial("s6-best-label"), label="label"
    )
    mo.vstack([mo.md(tracker.prompt("s6-best-label")), label_answer])
    return (label_answer,)


@app.cell
def _(label_answer, tracker):
    feedback_label = tracker.check("s6-best-label", label_answer.value)
    feedback_label
    return (feedback_label,)


@app.cell
def _(course, mo):
    ind_dataset = mo.ui.dropdown(
        course.datasets("individual"), value=course.datasets("individual")[0], label="species"
    )
    mo.vstack(
        [
            mo.md(
                r"""
## Individuals across recording sessions

Several individuals of one species, recorded in several **sessions**; the test clips come from a later
session than the training clips. Two ways to ask "who is calling?" by retrieval:

- **cross-session** (the paper's protocol): each test clip is searched among the *training* sessions;
- **same session**: among the other test clips, which share the session's recording conditions, so an
  encoder can score by recognising the session instead of the animal.
"""
            ),
            ind_dataset,
        ]
    )
    return (ind_dataset,)


@app.cell
def _(course, ind_dataset, individual_retrieval, mo, pl):
    _frames = []
    for _key in course.encoder_keys:
        _emb = course.embeddings(_key, "individual", ind_dataset.value)
        _frames.append(
            individual_retrieval(_emb.array(), _emb.manifest).with_columns(pl.lit(_key).alias("encoder"))
        )
    mo.ui.table(
        pl.concat(_frames).select(
            "encoder", "mode", pl.col("roc_auc", "precision_at_1").round(3), "n_queries"
        ),
        selection=None,
    )
    return


@app.cell
def _(mo, tracker):
    mo.md(tracker.prompt("s6-cross-session"))
    return


@app.cell
def _(np):
    def cross_session_precision_at_1(embeddings, individuals, splits):
        """Fraction of test clips whose most cosine-similar training clip is the same individual."""
        ...

    _ = np  # numpy is there for your function
    return (cross_session_precision_at_1,)


@app.cell
def _(cross_session_precision_at_1, tracker):
    feedback_session = tracker.check("s6-cross-session", cross_session_precision_at_1)
    feedback_session
    return (feedback_session,)


@app.cell
def _(course, mo):
    own_folder = mo.ui.text(
        placeholder="/path/to/recordings (one sub-folder per label) or /path/to/manifest.parquet",
        label="your recordings",
        full_width=True,
    )
    own_root = mo.ui.text(
        placeholder="default: the manifest's folder", label="audio root (manifest only)", full_width=True
    )
    own_encoder = mo.ui.radio(course.encoder_keys, value="sl", label="encoder", inline=True)
    mo.vstack(
        [
            mo.md(
                r"""
## Your own recordings

A folder with one sub-folder per label (`alarm/`, `song/`, or one per individual), or a manifest made
from annotations (`avexlab data from-raven` / `from-sonic-visualiser`: one clip per selection). Every
clip is embedded with the chosen course encoder (first 5 s of each clip); the map and the clustering
scores follow. No check here: you know your animals better than any reference.
"""
            ),
            own_folder,
            own_root,
            own_encoder,
        ]
    )
    return own_encoder, own_folder, own_root


@app.cell
def _(catch_user_error, mo, open_recordings, own_folder, own_root):
    mo.stop(
        not own_folder.value.strip(),
        mo.md("_Type the path of a folder or manifest to try your own recordings._"),
    )
    _opened, _problem = catch_user_error(
        open_recordings, own_folder.value.strip(), own_root.value.strip() or None
    )
    mo.stop(
        _problem is not None, mo.callout(mo.md(f"**Cannot use these recordings.** {_problem}"), kind="danger")
    )
    own_manifest, own_data_root = _opened
    mo.md(f"{own_manifest.height} clips from `{own_data_root}`.")
    return own_data_root, own_manifest


@app.cell
def _(
    catch_user_error,
    clustering_scores,
    course,
    embedding_map,
    extract_embeddings,
    label_columns,
    mo,
    own_data_root,
    own_encoder,
    own_manifest,
    pl,
    reduce_embeddings,
):
    with mo.status.spinner(title=f"Embedding {own_manifest.height} clips ..."):
        _emb, _problem = catch_user_error(
            extract_embeddings,
            course.encoder(own_encoder.value),
            own_manifest,
            root=own_data_root,
            clip_s=5.0,
            batch_size=16,
            progress=False,
        )
    mo.stop(
        _problem is not None, mo.callout(mo.md(f"**Cannot embed these clips.** {_problem}"), kind="danger")
    )
    _x = _emb.array()
    _labels = label_columns(own_manifest)
    _scores = [
        {"label": _c, "classes": _labels[_c].n_unique(), **clustering_scores(_x, _labels[_c].to_list())}
        for _c in _labels.columns
        if _x.shape[0] > _labels[_c].n_unique()
    ]
    _first = _labels.columns[0] if _labels.columns else None
    mo.vstack(
        [
            mo.ui.plotly(
                embedding_map(
                    reduce_embeddings(_x, "pca"),
                    _labels[_first].to_list() if _first else None,
                    hover=own_manifest.select("clip_id"),
                    color_name=_first or "label",
                    title="your recordings",
                    height=420,
                )
            ),
            mo.ui.table(
                pl.DataFrame(_scores).select("label", "classes", pl.col("nmi", "ari").round(3)),
                selection=None,
            )
            if _scores
            else mo.md("_No label with at least two classes to score clusters against._"),
        ]
    )
    return


@app.cell
def _(mo):
    mo.md(r"""
    ## Recap

    - Clustering scores against *each* label tell what an encoder's geometry follows: call type,
      individual, or neither.
    - Individual identity must be tested **across sessions**: within a session, recording conditions
      give the answer away.
    - The same workflow runs on your recordings: a folder or an annotation table becomes a manifest, the
      manifest becomes embeddings, the embeddings become maps and scores (`avexlab evaluate --manifest`
      gives the full protocol, probes included).
    """)
    return


@app.cell
def _(feedback_label, feedback_session, mo, tracker):
    _checked = (feedback_label, feedback_session)  # shown once every check has run
    mo.md(
        "**Your exercises:** "
        + ", ".join(f"`{_e}` {'✓' if _s == 'right' else '·'}" for _e, _s, _n in tracker.summary())
    )
    return


if __name__ == "__main__":
    app.run()
