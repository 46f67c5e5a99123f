import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Workshop 4: SSL vs SL")


@app.cell
def _():
    import marimo as mo
    import numpy as np
    import polars as pl

    from avexlab.evaluate.metrics import accuracy
    from avexlab.evaluate.probe import LinearProbe
    from avexlab.evaluate.spec import PROBE_RECIPES
    from avexlab.evaluate.tables import ablation_table
    from avexlab.viz import embedding_map, reduce_embeddings, result_lines
    from avexlab.workshop.section import course_folder_input, open_section

    return (
        course_folder_input,
        open_section,
        LinearProbe,
        PROBE_RECIPES,
        ablation_table,
        accuracy,
        embedding_map,
        mo,
        np,
        pl,
        reduce_embeddings,
        result_lines,
    )


@app.cell
def _(mo):
    mo.md(r"""
    # 4 · SSL vs SL (25 min)

    **Goals.** After this section you can say what a supervised (SL) and a self-supervised (SSL) encoder
    were trained to do, why that changes what their embeddings keep, and how to measure it fairly when
    labels are scarce, without leaking test clips into training.

    - **SL**: predict the labels of the training clips (species, sound classes): the embedding keeps what
      separates those labels.
    - **SSL**: no labels; the BEATs recipe hides 75% of the spectrogram patches and predicts discrete
      codes of the hidden ones: the embedding keeps what describes a sound in general.
    - **SL-SSL**: SSL first, then supervised post-training on the same data (the paper's best models).

    The three course encoders differ **only** in the paradigm: same architecture (BEATs tiny), same
    `bio` data, same grid.
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
def _(course):
    fewshot_dataset = course.meta["plan"]["fewshot"]["dataset"]
    recipe = course.meta["plan"]["probe_recipe"]
    clips = course.manifest("clf", fewshot_dataset)
    paradigms = [k for k in ("sl", "ssl", "sl-ssl") if k in course.encoder_keys]
    return clips, fewshot_dataset, paradigms, recipe


@app.cell
def _(clips, course, embedding_map, fewshot_dataset, mo, paradigms, reduce_embeddings):
    _maps = []
    for _key in paradigms:
        _emb = course.embeddings(_key, "clf", fewshot_dataset)
        _maps.append(
            mo.ui.plotly(
                embedding_map(
                    reduce_embeddings(_emb.array(), "pca"),
                    clips["species"].to_list(),
                    color_name="species",
                    title=_key,
                    height=330,
                )
            )
        )
    mo.vstack(
        [
            mo.md(
                f"## Same clips, three paradigms\n\nAll clips of `{fewshot_dataset}`, PCA of each encoder's "
                "embeddings, coloured by species. Which map separates the species? Which keeps other "
                "structure?"
            ),
            mo.hstack(_maps, widths="equal"),
        ]
    )
    return


@app.cell
def _(course, mo, result_lines):
    mo.vstack(
        [
            mo.md(
                "## When labels are scarce\n\nA linear probe trained on *k* labelled clips per species "
                "(mean over draws, error bars: spread over draws), scored on the same test clips. Computed "
                "when the course was prepared."
            ),
            mo.ui.plotly(
                result_lines(
                    course.fewshot(),
                    x="shots",
                    color="encoder",
                    value="accuracy",
                    title="test accuracy",
                    height=340,
                )
            ),
        ]
    )
    return


@app.cell
def _(mo, tracker):
    mo.md(tracker.prompt("s4-few-shot"))
    return


@app.cell
def _(np, pl):
    def few_shot(manifest, k, seed):
        """The manifest with k training clips per class (drawn with seed); val and test unchanged."""
        ...

    _ = (np, pl)  # numpy and polars are there for your function
    return (few_shot,)


@app.cell
def _(few_shot, tracker):
    feedback_few_shot = tracker.check("s4-few-shot", few_shot)
    feedback_few_shot
    return (feedback_few_shot,)


@app.cell
def _(feedback_few_shot, mo):
    mo.stop(
        not feedback_few_shot.ok,
        mo.md("_Once your function passes, probe the encoders on your own draws here._"),
    )
    shots = mo.ui.slider(1, 8, value=2, label="labels per class", show_value=True)
    draw = mo.ui.number(start=0, stop=99, value=0, label="draw (seed)")
    mo.hstack([shots, draw], justify="start")
    return draw, shots


@app.cell
def _(
    LinearProbe,
    PROBE_RECIPES,
    accuracy,
    clips,
    course,
    draw,
    feedback_few_shot,
    fewshot_dataset,
    mo,
    pl,
    recipe,
    shots,
):
    _kept = set(feedback_few_shot.answer(clips, shots.value, draw.value)["clip_id"].to_list())
    _split = clips["split"].to_numpy()
    _train = (_split == "train") & clips["clip_id"].is_in(list(_kept)).to_numpy()
    _y = clips["labels"].list.first().to_numpy()
    _rows = []
    for _key in course.encoder_keys:
        _x = course.embeddings(_key, "clf", fewshot_dataset).array()
        _probe = LinearProbe(random_state=draw.value, **PROBE_RECIPES[recipe])
        _probe.fit(_x[_train], _y[_train], _x[_split == "val"], _y[_split == "val"])
        _pred = _probe.classes_[_probe.decision_function(_x[_split == "test"]).argmax(axis=1)]
        _rows.append(
            {
                "encoder": _key,
                "train clips": int(_train.sum()),
                "test accuracy": accuracy(_y[_split == "test"], _pred),
            }
        )
    mo.ui.table(pl.DataFrame(_rows).with_columns(pl.col("test accuracy").round(3)), selection=None)
    return


@app.cell
def _(mo, tracker):
    paradigm_answer = mo.ui.dropdown(
        tracker.options("s4-best-paradigm"), value=tracker.initial("s4-best-paradigm"), label="encoder"
    )
    mo.vstack([mo.md(tracker.prompt("s4-best-paradigm")), paradigm_answer])
    return (paradigm_answer,)


@app.cell
def _(paradigm_answer, tracker):
    feedback_paradigm = tracker.check("s4-best-paradigm", paradigm_answer.value)
    feedback_paradigm
    return (feedback_paradigm,)


@app.cell
def _(ablation_table, course, mo, pl):
    mo.vstack(
        [
            mo.md(
                "## The whole grid by paradigm\n\nEvery architecture and mix, averaged per paradigm, against "
                "the random-init twins (section 3). The paper finds SSL less discriminative but more robust "
                "(section 5), and SL-SSL keeping both."
            ),
            mo.ui.table(
                ablation_table(course.grid_results(), "paradigm").with_columns(pl.col(pl.Float64).round(3)),
                selection=None,
            ),
        ]
    )
    return


@app.cell
def _(mo):
    mo.md(r"""
    ## Recap

    - SL learns what separates its training labels; SSL learns to describe sounds without labels; SL-SSL
      starts from SSL and adds labels.
    - Few-shot curves show how much labelled data a downstream user needs with each encoder.
    - A few-shot draw takes training clips only: a validation or test clip in the training set inflates the
      score (a leak) and invalidates the comparison.
    """)
    return


@app.cell
def _(feedback_few_shot, feedback_paradigm, mo, tracker):
    _checked = (feedback_few_shot, feedback_paradigm)  # shown once every check has run
    mo.md(
        "**Your exercises:** "
        + ", ".join(f"`{_e}` {'✓' if _s == 'right' else '·'}" for _e, _s, _n in tracker.summary())
    )
    return


if __name__ == "__main__":
    app.run()
