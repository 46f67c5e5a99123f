import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Workshop 1: what an encoder hears")


@app.cell
def _():
    import marimo as mo
    import numpy as np
    import polars as pl

    from avexlab.synth import render_world
    from avexlab.viz import SpectrogramPlayer, embedding_map, reduce_embeddings, spectrogram_figure
    from avexlab.workshop.section import course_folder_input, open_section

    return (
        course_folder_input,
        open_section,
        SpectrogramPlayer,
        embedding_map,
        mo,
        np,
        pl,
        reduce_embeddings,
        render_world,
        spectrogram_figure,
    )


@app.cell
def _(mo):
    mo.md(r"""
    # 1 · What an encoder hears (25 min)

    **Goals.** After this section you can read a spectrogram of an animal call, say what a recording's
    sample rate lets through and what it loses, and explain what an *embedding* is: one vector per clip,
    in which similar sounds should lie close together.

    **Plan.** Listen to one call of each taxon group of the synthetic world; see what a 16 kHz recording
    cuts off; look at the embeddings of many clips at once; write the function that finds a clip's
    nearest neighbour.
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
    ## Listen and look

    A **spectrogram** shows time left to right, frequency bottom to top, loudness as colour. Pick a taxon
    group: each has its own physics (songbirds sweep and trill, owls hoot low, frogs pulse, insects chirp
    in narrow high bands, cetaceans moan and whistle, bats call very high). Press play and watch the cursor.
    """)
    return


@app.cell
def _(course, mo):
    group = mo.ui.dropdown(
        [d.removeprefix("syn-clf-") for d in course.datasets("clf")], value="bats", label="taxon group"
    )
    group
    return (group,)


@app.cell
def _(SpectrogramPlayer, course, group, mo, pl, spectrogram_figure):
    _rows = course.manifest("clf").with_row_index("row")
    clip_row = _rows.filter((pl.col("dataset") == f"syn-clf-{group.value}") & (pl.col("split") == "test"))
    clip_row = clip_row.row(0, named=True)
    wave, sr = course.clip("clf", clip_row["row"])
    mo.vstack(
        [
            mo.md(f"`{clip_row['clip_id']}`: *{clip_row['species']}* ({clip_row['taxon_group']}), {sr} Hz"),
            mo.ui.plotly(spectrogram_figure(wave, sr, title="mel spectrogram", height=260)),
            mo.ui.anywidget(SpectrogramPlayer.from_waveform(wave, sr, height_px=110)),
        ]
    )
    return clip_row, sr, wave


@app.cell
def _(course, mo, tracker):
    nyquist_answer = mo.ui.text(
        value=tracker.initial("s1-nyquist") or "",
        placeholder="a frequency in Hz",
        label="highest frequency (Hz) =",
    )
    mo.vstack(
        [
            mo.md(f"The course's encoders take audio at **{course.encoder('sl').sample_rate} Hz**."),
            mo.md(tracker.prompt("s1-nyquist")),
            nyquist_answer,
        ]
    )
    return (nyquist_answer,)


@app.cell
def _(nyquist_answer, tracker):
    feedback_nyquist = tracker.check("s1-nyquist", nyquist_answer.value)
    feedback_nyquist
    return (feedback_nyquist,)


@app.cell
def _(mo):
    mo.md(r"""
    ## What a 16 kHz recording loses

    The same clip rendered by the synthetic world at **48 kHz** (right) and at the course's rate (left),
    on a linear frequency axis; the dashed line marks 8 kHz. Anything above the line at 48 kHz never
    reaches a 16 kHz encoder. Try every group.
    """)
    return


@app.cell
def _(clip_row, course, mo, render_world, spectrogram_figure, wave, sr):
    world_48k = render_world(course.meta["preset"], course.seed, sample_rate=48000)
    _wave48, _sr48 = world_48k.load(clip_row["clip_id"])
    _figs = []
    for _w, _r in ((wave, sr), (_wave48, _sr48)):
        _fig = spectrogram_figure(_w, _r, kind="stft", title=f"{_r} Hz", height=280)
        _fig.add_hline(y=8000, line_dash="dash", line_color="white")
        _figs.append(mo.ui.plotly(_fig))
    mo.hstack(_figs, widths="equal")
    return


@app.cell
def _(mo, tracker):
    hidden_answer = mo.ui.dropdown(
        tracker.options("s1-hidden-group"), value=tracker.initial("s1-hidden-group"), label="taxon group"
    )
    mo.vstack([mo.md(tracker.prompt("s1-hidden-group")), hidden_answer])
    return (hidden_answer,)


@app.cell
def _(hidden_answer, tracker):
    feedback_hidden = tracker.check("s1-hidden-group", hidden_answer.value)
    feedback_hidden
    return (feedback_hidden,)


@app.cell
def _(mo):
    mo.md(r"""
    ## From sound to a vector

    An encoder turns each clip into a list of numbers, its **embedding** (here 128 or so of them). We
    cannot look at 128 dimensions, so the map below projects them to 2-D with PCA. Colour by taxon group,
    then by species: which encoder puts clips of one kind together? The log-mel **baseline** learned
    nothing; the others were trained (section 4 says how).
    """)
    return


@app.cell
def _(course, mo):
    map_encoder = mo.ui.radio(course.encoder_keys, value="sl", label="encoder", inline=True)
    map_colour = mo.ui.radio(["taxon_group", "species"], value="taxon_group", label="colour by", inline=True)
    mo.hstack([map_encoder, map_colour], justify="start")
    return map_colour, map_encoder


@app.cell
def _(course, embedding_map, map_colour, map_encoder, mo, reduce_embeddings):
    _emb = course.embeddings(map_encoder.value, "clf")
    _test = (_emb.manifest["split"] == "test").to_numpy()
    _rows = _emb.manifest.filter(_test)
    _x = _emb.array()[_test]
    mo.vstack(
        [
            mo.md(f"{_x.shape[0]} test clips, embeddings `{list(_x.shape)}` (`[clips, dimensions]`)."),
            mo.ui.plotly(
                embedding_map(
                    reduce_embeddings(_x, "pca"),
                    _rows[map_colour.value].to_list(),
                    hover=_rows.select("clip_id", "species"),
                    color_name=map_colour.value,
                    title=f"{map_encoder.value}: PCA of the embeddings",
                    height=420,
                )
            ),
        ]
    )
    return


@app.cell
def _(mo, tracker):
    mo.md(tracker.prompt("s1-nearest"))
    return


@app.cell
def _(np):
    def nearest_clip(embeddings, i):
        """Row index of the clip most cosine-similar to clip i (never i itself)."""
        ...

    _ = np  # numpy is there for your function
    return (nearest_clip,)


@app.cell
def _(nearest_clip, tracker):
    feedback_nearest = tracker.check("s1-nearest", nearest_clip)
    feedback_nearest
    return (feedback_nearest,)


@app.cell
def _(course, feedback_nearest, mo):
    mo.stop(
        not feedback_nearest.ok,
        mo.md("_Once your function passes, listen to clips and their nearest neighbours here._"),
    )
    _emb = course.embeddings("sl", "clf")
    _n_test = int((_emb.manifest["split"] == "test").sum())
    query = mo.ui.slider(0, _n_test - 1, value=0, label="query clip (test row)", show_value=True)
    query
    return (query,)


@app.cell
def _(SpectrogramPlayer, course, feedback_nearest, mo, np, query):
    _emb = course.embeddings("sl", "clf")
    _test_rows = np.flatnonzero((_emb.manifest["split"] == "test").to_numpy())
    _x = _emb.array()[_test_rows]
    _j = feedback_nearest.answer(_x, query.value)
    _cards = []
    for _name, _i in (("query", query.value), ("nearest", _j)):
        _row = int(_test_rows[_i])
        _rec = _emb.manifest.row(_row, named=True)
        _w, _r = course.clip("clf", _row)
        _cards.append(
            mo.vstack(
                [
                    mo.md(f"**{_name}** `{_rec['clip_id']}`: *{_rec['species']}*"),
                    mo.ui.anywidget(SpectrogramPlayer.from_waveform(_w, _r, height_px=100)),
                ]
            )
        )
    mo.hstack(_cards, widths="equal")
    return


@app.cell
def _(mo):
    mo.md(r"""
    ## Recap

    - A spectrogram is what the encoders' front ends compute first (mel bands, about 10 ms frames).
    - A recording sampled at *r* Hz holds frequencies up to *r*/2: at 16 kHz, bats' echolocation calls
      are lost. The paper's encoders all run at 16 kHz; this is one of its stated limitations.
    - An embedding is one vector per clip; nearness is cosine similarity. Whether neighbours share a
      species is exactly what retrieval (section 2) measures.
    """)
    return


@app.cell
def _(feedback_hidden, feedback_nearest, feedback_nyquist, mo, tracker):
    _checked = (feedback_nyquist, feedback_hidden, feedback_nearest)  # shown once every check has run
    mo.md(
        "**Your exercises:** "
        + ", ".join(f"`{_e}` {'✓' if _s == 'right' else '·'}" for _e, _s, _n in tracker.summary())
    )
    return


if __name__ == "__main__":
    app.run()
