import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Workshop 2: probing, retrieval, clustering")


@app.cell
def _():
    import marimo as mo
    import numpy as np
    import polars as pl
    from sklearn.cluster import KMeans
    from sklearn.metrics import normalized_mutual_info_score

    from avexlab.evaluate.retrieval import retrieval_scores
    from avexlab.evaluate.spec import EvalSpec
    from avexlab.evaluate.suites import evaluate_embeddings
    from avexlab.viz import embedding_map, reduce_embeddings
    from avexlab.workshop.exercises.s2_methods import DATASET
    from avexlab.workshop.section import course_folder_input, open_section

    return (
        course_folder_input,
        open_section,
        DATASET,
        EvalSpec,
        KMeans,
        embedding_map,
        evaluate_embeddings,
        mo,
        normalized_mutual_info_score,
        np,
        pl,
        reduce_embeddings,
        retrieval_scores,
    )


@app.cell
def _(mo):
    mo.md(r"""
    # 2 · Probing, retrieval, clustering (25 min)

    **Goals.** After this section you can say what each of the paper's three ways of judging a frozen
    encoder measures, what it needs (labels? training?), compute one of them by hand, and explain why two
    methods can rank the same encoders differently.

    The encoder is **frozen**: nothing below changes its weights. We only look at its embeddings, one
    vector per clip.
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
def _(mo):
    mo.md(r"""
    ## The three methods

    | method | what it asks | needs | the paper's metric |
    |---|---|---|---|
    | **linear probe** | can a *linear* classifier trained on the embeddings tell the classes apart? | labelled training and validation clips | accuracy (mAP for multi-label) |
    | **retrieval** | are a clip's nearest neighbours (cosine similarity) of its own class? | labels only to score | ROC AUC per query, precision@1 |
    | **clustering** | does k-means, told only K, find the classes? | labels only to score | NMI (0 = unrelated, 1 = the classes) |

    A probe can *learn* which directions matter and ignore the rest; retrieval and clustering take the
    geometry as it is. An encoder whose classes are separable but not compact scores well on the probe
    and poorly on the other two.

    Below: one dataset of the course (`syn-clf-songbirds`: focal recordings of songbird species, one
    animal per clip), one encoder at a time.
    """)
    return


@app.cell
def _(course, mo):
    encoder_key = mo.ui.radio(course.encoder_keys, value="sl", label="encoder", inline=True)
    encoder_key
    return (encoder_key,)


@app.cell
def _(DATASET, course, encoder_key, pl):
    emb = course.embeddings(encoder_key.value, "clf", DATASET)
    is_test = (emb.manifest["split"] == "test").to_numpy()
    x_test = emb.array()[is_test]
    labels_test = emb.manifest.filter(pl.Series(is_test))["labels"].list.first().to_list()
    return emb, labels_test, x_test


@app.cell
def _(DATASET, EvalSpec, course, emb, encoder_key, evaluate_embeddings, mo, pl):
    _spec = EvalSpec(probe_recipe=course.meta["plan"]["probe_recipe"])
    _table = evaluate_embeddings(
        emb,
        benchmark="syn-beans-clf",
        dataset=DATASET,
        task_family="classification",
        multi_label=False,
        spec=_spec,
    )
    _shown = _table.filter(pl.col("metric").is_in(["accuracy", "roc_auc", "precision_at_1", "nmi"]))
    mo.vstack(
        [
            mo.md(
                f"**Demonstration.** `{encoder_key.value}` ({course.encoder_label(encoder_key.value)}) on "
                f"{emb.manifest.height} clips: the probe trains on the `train` split, picks its epoch on `val` "
                "and is scored on `test`; retrieval and clustering use the `test` split only."
            ),
            mo.ui.table(_shown.select("method", "metric", pl.col("value").round(3), "n"), selection=None),
        ]
    )
    return


@app.cell
def _(mo):
    mo.md(r"""
    ## Clustering: what K does

    k-means needs K, the number of clusters. Move the slider: the map on the left is coloured by species,
    the one on the right by k-means cluster; NMI says how well the clusters match the species.
    """)
    return


@app.cell
def _(mo):
    k_slider = mo.ui.slider(2, 16, value=3, label="K (clusters)", show_value=True)
    k_slider
    return (k_slider,)


@app.cell
def _(
    KMeans,
    embedding_map,
    k_slider,
    labels_test,
    mo,
    normalized_mutual_info_score,
    reduce_embeddings,
    x_test,
):
    _k = min(k_slider.value, x_test.shape[0])
    _clusters = KMeans(n_clusters=_k, n_init=10, random_state=42).fit_predict(x_test)
    _nmi = normalized_mutual_info_score(labels_test, _clusters)
    _coords = reduce_embeddings(x_test, "pca")
    mo.vstack(
        [
            mo.md(f"K = {_k}: **NMI = {_nmi:.3f}**"),
            mo.hstack(
                [
                    mo.ui.plotly(
                        embedding_map(
                            _coords, labels_test, color_name="species", title="by species", height=380
                        )
                    ),
                    mo.ui.plotly(
                        embedding_map(
                            _coords,
                            [f"cluster {c}" for c in _clusters],
                            color_name="cluster",
                            title="by k-means cluster",
                            height=380,
                        )
                    ),
                ],
                widths="equal",
            ),
        ]
    )
    return


@app.cell
def _(mo, tracker):
    k_answer = mo.ui.text(value=tracker.initial("s2-kmeans-k") or "", placeholder="a number", label="K =")
    mo.vstack([mo.md(tracker.prompt("s2-kmeans-k")), k_answer])
    return (k_answer,)


@app.cell
def _(k_answer, tracker):
    feedback_k = tracker.check("s2-kmeans-k", k_answer.value)
    feedback_k
    return (feedback_k,)


@app.cell
def _(mo):
    mo.md(r"""
    ## Retrieval by hand

    Retrieval treats every test clip as a query and ranks all other test clips by cosine similarity
    (the dot product of the length-normalised vectors). **precision@1** is the share of queries whose top
    hit has the query's label; the paper's **ROC AUC** scores the whole ranking. (The library averages
    over queries that have at least one other clip of their class: here every class has several.)
    """)
    return


@app.cell
def _(mo, tracker):
    mo.md(tracker.prompt("s2-precision-at-1"))
    return


@app.cell
def _(np):
    def precision_at_1(embeddings, labels):
        """Fraction of clips whose most cosine-similar other clip has the same label."""
        ...

    _ = np  # numpy is there for your function
    return (precision_at_1,)


@app.cell
def _(precision_at_1, tracker):
    feedback_p1 = tracker.check("s2-precision-at-1", precision_at_1)
    feedback_p1
    return (feedback_p1,)


@app.cell
def _(encoder_key, feedback_p1, labels_test, mo, retrieval_scores, x_test):
    _lib = retrieval_scores(x_test, labels_test)
    _mine = feedback_p1.answer(x_test, labels_test) if feedback_p1.ok else None
    mo.md(
        f"`{encoder_key.value}` on the test clips: the library's precision@1 = **{_lib['precision_at_1']:.3f}**"
        + (
            f", yours = **{_mine:.3f}**"
            if _mine is not None
            else " (yours appears once your function passes)"
        )
        + f"; ROC AUC = {_lib['roc_auc']:.3f} over {_lib['n_queries']} queries."
    )
    return


@app.cell
def _(mo):
    mo.md(r"""
    ## Do the methods agree?

    Every course encoder on every dataset of the classification suite (mean over its datasets, computed
    when the course was prepared). Read down each column: does the probe rank the encoders as retrieval
    and clustering do?
    """)
    return


@app.cell
def _(course, mo, pl):
    _res = course.results().filter(
        (pl.col("benchmark") == "syn-beans-clf")
        & pl.col("metric").is_in(["accuracy", "roc_auc", "precision_at_1", "nmi"])
    )
    _table = (
        _res.group_by("encoder", "method", "metric")
        .agg(pl.col("value").mean())
        .with_columns(pl.concat_str("method", pl.lit(" "), "metric").alias("column"))
        .pivot(on="column", index="encoder", values="value")
        .sort("encoder")
        .with_columns(pl.exclude("encoder").round(3))
    )
    mo.ui.table(_table, selection=None)
    return


@app.cell
def _(mo):
    mo.md(r"""
    ## Recap

    - The **probe** measures what a linear read-out can extract with labels; **retrieval** and
      **clustering** measure the geometry the encoder gives for free.
    - Clustering's K comes from the data (the number of classes being clustered), never tuned on the test
      set; NMI rewards clusters that follow the classes.
    - precision@1 is a few lines of numpy: normalise, take similarities, exclude the query itself.
    - When methods disagree, that is information: separable-but-spread classes favour the probe.
    """)
    return


@app.cell
def _(feedback_k, feedback_p1, mo, tracker):
    _checked = (feedback_k, feedback_p1)  # shown once every check has run
    mo.md(
        "**Your exercises:** "
        + ", ".join(f"`{_e}` {'✓' if _s == 'right' else '·'}" for _e, _s, _n in tracker.summary())
    )
    return


if __name__ == "__main__":
    app.run()
