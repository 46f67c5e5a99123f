import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="Workshop 3: architecture and data mix")


@app.cell
def _():
    import marimo as mo
    import polars as pl

    from avexlab.data.published import paper_data_mix
    from avexlab.evaluate.tables import PAPER_COLUMNS, ablation_table, ablation_view, cells_vs_twins
    from avexlab.viz import result_bars
    from avexlab.workshop.course import grid_overview
    from avexlab.workshop.section import course_folder_input, open_section

    return (
        course_folder_input,
        open_section,
        PAPER_COLUMNS,
        ablation_table,
        ablation_view,
        cells_vs_twins,
        grid_overview,
        mo,
        paper_data_mix,
        pl,
        result_bars,
    )


@app.cell
def _(mo):
    mo.md(r"""
    # 3 · Architecture and data mix (25 min)

    **Goals.** After this section you can read an ablation grid: which factor was varied, what every
    other factor was held at, and against what baseline a trained encoder is judged. You will compute a
    cell's gain over its **random-init twins** yourself.

    The study trains the same recipe over a grid: **architecture** (EfficientNet-B0, a CNN; BEATs and
    EAT, transformers) x **data mix** (`bio`: animal sounds; `general`: the AudioSet stand-in; `all`:
    both) x **paradigm** (SL, SSL, SL-SSL: section 4). avexlab runs the same grid on the synthetic world
    (`avexlab grid --profile quick`); this section reads that run.
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
def _(course, grid_overview, mo, pl):
    grid = course.grid_results()
    overview = grid_overview(grid)
    _meta = course.grid_meta()
    _prof = _meta.get("profile", {})
    mo.vstack(
        [
            mo.md(
                f"**The grid.** {overview.filter(~pl.col('twin')).height} trained cells "
                f"({', '.join(_prof.get('architectures', []))} x {', '.join(_prof.get('mixes', []))} x "
                f"{', '.join(_prof.get('paradigms', []))}; size `{_prof.get('size')}`, {course.grid_budget()}"
                f"), measured on the `{_meta.get('world', {}).get('preset')}` world, plus "
                f"{overview.filter(pl.col('twin')).height} **random-init twins**: each architecture with "
                "random weights, evaluated exactly as the trained cells. A cell that does not beat its "
                "twins learned nothing the evaluation can see."
            ),
            mo.ui.table(overview.with_columns(pl.col(pl.Float64).round(3)), selection=None, page_size=12),
        ]
    )
    return grid, overview


@app.cell
def _(PAPER_COLUMNS, mo, overview):
    factor = mo.ui.dropdown(["architecture", "mix", "paradigm"], value="mix", label="factor")
    column = mo.ui.dropdown(
        [c for c, *_ in PAPER_COLUMNS if c in overview.columns], value="BEANS clf probe", label="column"
    )
    mo.vstack([mo.md("## One factor at a time"), mo.hstack([factor, column], justify="start")])
    return column, factor


@app.cell
def _(PAPER_COLUMNS, ablation_table, ablation_view, column, factor, grid, mo, pl, result_bars):
    _family, _method, _metric = next((f, m, k) for c, f, m, k in PAPER_COLUMNS if c == column.value)
    _view = ablation_view(grid, factor.value).filter(
        (pl.col("task_family") == _family) & (pl.col("method") == _method) & (pl.col("metric") == _metric)
    )
    mo.vstack(
        [
            mo.md(
                f"Bars: mean `{column.value}` per **{factor.value}**, trained cells against the twins of the "
                "same architectures (error bars: spread over cells and datasets). The table: every paper "
                "column, with `gain` = trained minus twin."
            ),
            mo.ui.plotly(result_bars(_view, x=factor.value, color="model", title=column.value, height=320)),
            mo.ui.table(
                ablation_table(grid, factor.value).with_columns(pl.col(pl.Float64).round(3)), selection=None
            ),
        ]
    )
    return


@app.cell
def _(mo, paper_data_mix, pl):
    mo.vstack(
        [
            mo.md(
                "**For comparison, the paper on real data** (EfficientNet-B0, SL): general audio alone "
                "transfers poorly; bio + general beats bio alone. Synthetic numbers are never a "
                "reproduction of these: compare the *direction* of the effects."
            ),
            mo.ui.table(paper_data_mix().with_columns(pl.col(pl.Float64).round(3)), selection=None),
        ]
    )
    return


@app.cell
def _(mo, tracker):
    mix_answer = mo.ui.dropdown(
        tracker.options("s3-best-mix"), value=tracker.initial("s3-best-mix"), label="mix"
    )
    mo.vstack([mo.md(tracker.prompt("s3-best-mix")), mix_answer])
    return (mix_answer,)


@app.cell
def _(mix_answer, tracker):
    feedback_mix = tracker.check("s3-best-mix", mix_answer.value)
    feedback_mix
    return (feedback_mix,)


@app.cell
def _(mo, tracker):
    mo.md(tracker.prompt("s3-gain"))
    return


@app.cell
def _(pl):
    def gain_over_twin(table, encoder, column):
        """The cell's value of column minus the mean of its architecture's random-init twins."""
        ...

    _ = pl  # polars is there for your function
    return (gain_over_twin,)


@app.cell
def _(gain_over_twin, tracker):
    feedback_gain = tracker.check("s3-gain", gain_over_twin)
    feedback_gain
    return (feedback_gain,)


@app.cell
def _(cells_vs_twins, feedback_gain, grid, mo, pl):
    mo.stop(not feedback_gain.ok, mo.md("_Once your function passes, the whole grid's gains appear here._"))
    _gains = cells_vs_twins(grid)
    mo.vstack(
        [
            mo.md(
                "Every cell's gain over its twins (what your function computes, for every column). "
                "`twin_spread`: how far one random init lands from the others of its architecture; a "
                "`mean_gain` below it (`beyond_spread` false) is no better than drawing another init."
            ),
            mo.ui.table(_gains.with_columns(pl.col(pl.Float64).round(3)), selection=None, page_size=12),
        ]
    )
    return


@app.cell
def _(mo):
    mo.md(r"""
    ## Recap

    - An ablation varies one factor and holds the others: read each bar against the same architecture's
      random-init twins, not against zero.
    - Several twins per architecture give a yardstick: a gain smaller than the spread between untrained
      networks is noise.
    - The paper's data-mix finding (general audio alone transfers poorly; adding it to bio data helps) is
      a statement about directions; check whether this grid shows the same direction, column by column.
    """)
    return


@app.cell
def _(feedback_gain, feedback_mix, mo, tracker):
    _checked = (feedback_mix, feedback_gain)  # shown once every check has run
    mo.md(
        "**Your exercises:** "
        + ", ".join(f"`{_e}` {'✓' if _s == 'right' else '·'}" for _e, _s, _n in tracker.summary())
    )
    return


if __name__ == "__main__":
    app.run()
