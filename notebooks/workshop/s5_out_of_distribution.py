import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Workshop 5: out of distribution")


@app.cell
def _():
    import marimo as mo
    import polars as pl

    from avexlab.evaluate.tables import ood_report
    from avexlab.synth import render_world
    from avexlab.viz import SpectrogramPlayer, result_bars, result_lines, spectrogram_figure
    from avexlab.workshop.section import course_folder_input, open_section

    return (
        course_folder_input,
        open_section,
        SpectrogramPlayer,
        mo,
        ood_report,
        pl,
        render_world,
        result_bars,
        result_lines,
        spectrogram_figure,
    )


@app.cell
def _(mo):
    mo.md(r"""
    # 5 · Out of distribution (30 min)

    **Goals.** After this section you can measure how much an encoder loses between the recordings it was
    trained and probed on and those it is deployed on, read that gap fairly, and use the synthetic
    world's **shift knobs** to find out *what* it is sensitive to.

    Encoders are trained on **focal** recordings: one animal, close, loud. They are deployed on
    **soundscapes**: distant callers, several at once, wind and rain, reverberation. The paper measures
    the drop on real data (SSL lost less than SL); the synthetic world can also *control* the shift.
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
def _(SpectrogramPlayer, course, mo, pl, spectrogram_figure):
    _cards = []
    for _set, _what in (("clf", "focal recording"), ("birdset", "soundscape window")):
        _rows = (
            course.manifest(_set)
            .with_row_index("row")
            .filter((pl.col("split") == "test") & (pl.col("labels").list.len() > 0))
        )
        _rec = _rows.row(0, named=True)
        _w, _r = course.clip(_set, _rec["row"])
        _cards.append(
            mo.vstack(
                [
                    mo.md(f"**{_what}** `{_rec['clip_id']}`: {', '.join(_rec['labels'])}"),
                    mo.ui.plotly(spectrogram_figure(_w, _r, height=240)),
                    mo.ui.anywidget(SpectrogramPlayer.from_waveform(_w, _r, height_px=90)),
                ]
            )
        )
    mo.vstack([mo.md("## Hear the shift"), mo.hstack(_cards, widths="equal")])
    return


@app.cell
def _(course, mo, ood_report, pl, result_bars):
    _res = course.results()
    _gaps = ood_report(_res)
    mo.vstack(
        [
            mo.md(
                r"""
## Focal vs soundscape

Probes and retrieval on the focal suite (`syn-beans-clf`) and on soundscape windows (`syn-birdset`:
probes trained on focal clips, tested on 5 s windows of long recordings). `gap = soundscape - focal`,
each the mean over that domain's datasets: negative means worse on soundscapes.

Careful with retrieval on soundscapes: windows cut from one recording share its background, so a query
can score by finding *its recording* rather than its species. The `*_cross_recording` rows (where the
world has several test recordings) leave the query's own recording out: read the fair gap there.
"""
            ),
            mo.ui.table(_gaps.with_columns(pl.col(pl.Float64).round(3)), selection=None),
            mo.ui.plotly(
                result_bars(
                    _res.filter((pl.col("method") == "retrieval") & (pl.col("metric") == "roc_auc")),
                    x="encoder",
                    color="domain",
                    title="retrieval ROC AUC, focal vs soundscape",
                    height=320,
                )
            ),
        ]
    )
    return


@app.cell
def _(mo, tracker):
    gap_answer = mo.ui.text(value=tracker.initial("s5-gap") or "", placeholder="e.g. -0.05", label="gap =")
    mo.vstack([mo.md(tracker.prompt("s5-gap")), gap_answer])
    return (gap_answer,)


@app.cell
def _(gap_answer, tracker):
    feedback_gap = tracker.check("s5-gap", gap_answer.value)
    feedback_gap
    return (feedback_gap,)


@app.cell
def _(mo):
    mo.md(r"""
    ## Turn a knob

    The world renders the same soundscape with one condition changed: the callers' **SNR** (dB against
    the background), their **distance** (m; high frequencies fade first), the **reverberation** time
    (RT60, s) or the **overlap** of calls (0 = spread, 1 = choruses). Pick a knob and a value; listen.
    """)
    return


@app.cell
def _(mo):
    knob = mo.ui.dropdown(["snr_db", "distance_m", "rt60_s", "overlap"], value="snr_db", label="knob")
    knob
    return (knob,)


@app.cell
def _(knob, mo):
    _ranges = {
        "snr_db": (-20, 30, 5, -10),
        "distance_m": (5, 200, 5, 80),
        "rt60_s": (0, 3, 0.25, 2),
        "overlap": (0, 1, 0.25, 1),
    }
    _lo, _hi, _step, _start = _ranges[knob.value]
    knob_value = mo.ui.slider(_lo, _hi, step=_step, value=_start, label=knob.value, show_value=True)
    knob_value
    return (knob_value,)


@app.cell
def _(SpectrogramPlayer, course, knob, knob_value, mo, pl, render_world, spectrogram_figure):
    _world = render_world(course.meta["preset"], course.seed, **{knob.value: float(knob_value.value)})
    _det = _world.suites["syn-beans-det"].manifests["syn-det-forest"]
    _rec = _det.filter((pl.col("split") == "test") & (pl.col("labels").list.len() > 0)).row(0, named=True)
    _w, _r = _world.load(_rec["clip_id"])
    mo.vstack(
        [
            mo.md(f"`{_rec['clip_id']}` with {knob.value} = {knob_value.value}: {', '.join(_rec['labels'])}"),
            mo.ui.plotly(spectrogram_figure(_w, _r, height=260)),
            mo.ui.anywidget(SpectrogramPlayer.from_waveform(_w, _r, height_px=100)),
        ]
    )
    return


@app.cell
def _(course, mo, pl, result_lines):
    _sweep = course.sweep().filter((pl.col("method") == "probe") & (pl.col("metric") == "map"))
    _knob = _sweep["knob"][0]
    mo.vstack(
        [
            mo.md(
                f"## A whole sweep\n\nThe detection suite's soundscapes rendered at each `{_knob}` value (same "
                "calls, same background); probes trained and tested at that value (computed when the course "
                "was prepared)."
            ),
            mo.ui.plotly(
                result_lines(
                    _sweep, x="knob_value", color="encoder", title=f"probe mAP vs {_knob}", height=340
                )
            ),
        ]
    )
    return


@app.cell
def _(mo, tracker):
    robust_answer = mo.ui.dropdown(
        tracker.options("s5-robust"), value=tracker.initial("s5-robust"), label="encoder"
    )
    mo.vstack([mo.md(tracker.prompt("s5-robust")), robust_answer])
    return (robust_answer,)


@app.cell
def _(robust_answer, tracker):
    feedback_robust = tracker.check("s5-robust", robust_answer.value)
    feedback_robust
    return (feedback_robust,)


@app.cell
def _(mo):
    mo.md(r"""
    ## Recap

    - The focal -> soundscape gap is `soundscape - focal` of the *same* metric; on windows of long
      recordings, leave the query's own recording out before reading retrieval.
    - Knobs change one condition and keep every call: a falling curve names what the encoder is sensitive
      to, something real datasets (where everything changes at once) cannot tell.
    - The paper's claim to check on any new encoder: SSL loses less under the shift than SL; SL-SSL keeps
      most of SSL's robustness.
    """)
    return


@app.cell
def _(feedback_gap, feedback_robust, mo, tracker):
    _checked = (feedback_gap, feedback_robust)  # shown once every check has run
    mo.md(
        "**Your exercises:** "
        + ", ".join(f"`{_e}` {'✓' if _s == 'right' else '·'}" for _e, _s, _n in tracker.summary())
    )
    return


if __name__ == "__main__":
    app.run()
