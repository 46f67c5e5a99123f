import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="avexlab: ablations")


@app.cell
def _():
    import tempfile
    from pathlib import Path

    import marimo as mo
    import polars as pl
    import polars.selectors as cs

    from avexlab.evaluate.report import load_results
    from avexlab.evaluate.tables import (
        ABLATION_FACTORS,
        ablation_table,
        ablation_view,
        cells_vs_twins,
        to_long,
    )
    from avexlab.experiments.grid import GRID_PROFILES, grid
    from avexlab.viz.figures import faceted_bars
    from avexlab.viz.notebook import GRID_PROFILE_OF_SCALE, SCALES, catch_user_error, default_scale

    return (
        ABLATION_FACTORS,
        GRID_PROFILES,
        GRID_PROFILE_OF_SCALE,
        Path,
        SCALES,
        ablation_table,
        ablation_view,
        catch_user_error,
        cells_vs_twins,
        cs,
        default_scale,
        faceted_bars,
        grid,
        load_results,
        mo,
        pl,
        tempfile,
        to_long,
    )


@app.cell
def _(mo):
    mo.md(r"""
    # Ablations: architecture, data mix and training paradigm

    The paper's controlled study, on the synthetic world: each cell of the grid trains one encoder
    (**architecture** EfficientNet / BEATs / EAT x **data mix** bio / general / all x **paradigm** SL /
    SSL / SL-SSL) and evaluates it, frozen, on every synthetic suite (linear probe, retrieval,
    clustering). Each trained encoder is shown next to its **random-init twin**: the same architecture,
    untrained (the quick grid scores three init seeds, the cells' own initial weights and two others; the
    twin bar is their mean). The gap between the two bars is what training bought; a trained bar at or
    below its twin means the run learned nothing transferable at this scale.

    Pick the factor to group by below. Bars average over the grid cells that share that factor's value
    (e.g. `paradigm = ssl` averages BEATs and EAT over every mix), error bars are the spread over cells and
    datasets.
    """)
    return


@app.cell
def _(ABLATION_FACTORS, SCALES, default_scale, mo):
    scale = mo.ui.dropdown(list(SCALES), value=default_scale(), label="scale")
    factor = mo.ui.radio(list(ABLATION_FACTORS), value="paradigm", label="group by", inline=True)
    results_path = mo.ui.text(
        value="results/grid/results.parquet", label="committed grid results", full_width=True
    )
    mo.vstack([mo.hstack([scale, factor], justify="start"), results_path])
    return factor, results_path, scale


@app.cell
def _(GRID_PROFILES, GRID_PROFILE_OF_SCALE, mo, scale):
    profile_name = GRID_PROFILE_OF_SCALE[scale.value]
    _p = GRID_PROFILES[profile_name]
    _steps = ", ".join(
        f"{a} {_p.cell_steps(a, 'sl')}"
        + (f" (SSL {_p.cell_steps(a, 'ssl')})" if _p.cell_steps(a, "ssl") != _p.cell_steps(a, "sl") else "")
        for a in _p.architectures
    )
    retrain = mo.ui.run_button(label=f"Retrain the grid at '{scale.value}' scale")
    mo.vstack(
        [
            mo.md(
                f"**Retrain** runs `grid({profile_name!r})`: {len(_p.architectures)} architectures x "
                f"{len(_p.mixes)} mixes x {len(_p.paradigms)} paradigms, steps per cell: {_steps} "
                f"(SL-SSL post-training {_p.post_steps}), batch {_p.batch_size}, {_p.size} size, "
                f"{_p.clip_s:g} s crops, into `runs/notebook-grid/{scale.value}` (finished cells are "
                "reused). Seconds at `smoke`; at `workshop` the committed results took about 265 core-minutes of "
                "training (3-49 minutes per cell on one core, the BEATs SSL cells the longest) and about 10 "
                "minutes of evaluation with 2 workers on a 2-core VM; a GPU at `paper`. It never runs on its own at `workshop` or "
                "`paper` scale."
            ),
            retrain,
        ]
    )
    return profile_name, retrain


@app.cell
def _(Path, catch_user_error, grid, load_results, mo, profile_name, results_path, retrain, scale, tempfile):
    _committed = Path(results_path.value.strip())
    _how = (
        f"Produce it with `avexlab grid --profile {profile_name} --out {_committed.parent}` "
        "(or press the retrain button above)."
    )
    if retrain.value:
        with mo.status.spinner(title=f"Training and evaluating the {profile_name!r} grid ..."):
            _path = grid(profile_name, out=Path("runs/notebook-grid") / scale.value, progress=True)
        results = load_results(_path)
        origin = f"Retrained just now at `{scale.value}` scale: `{_path}`."
    elif _committed.is_file():
        results, _problem = catch_user_error(load_results, _committed)
        mo.stop(
            _problem is not None,
            mo.callout(mo.md(f"**Cannot read `{_committed}`.** {_problem} {_how}"), kind="danger"),
        )
        origin = f"Committed grid results: `{_committed}`."
    elif scale.value == "smoke":
        # A temporary folder (about 100 MB of checkpoints and caches), deleted once the table is read.
        with (
            tempfile.TemporaryDirectory(prefix="avexlab-grid-smoke-") as _out,
            mo.status.spinner(title="No committed results: running the smoke grid (seconds per cell) ..."),
        ):
            results = load_results(grid("smoke", out=_out, progress=True))
        origin = (
            f"**No committed grid results at `{_committed}`.** {_how} Shown instead: the `smoke` grid, "
            "run just now in a temporary folder (a few training steps per cell: expect trained and "
            "random-init bars to be close)."
        )
    else:
        mo.stop(
            True,
            mo.callout(
                mo.md(
                    f"**No committed grid results at `{_committed}`.** {_how} Or switch the scale to "
                    "`smoke` to see the seconds-long grid."
                ),
                kind="warn",
            ),
        )
    mo.callout(mo.md(origin), kind="info")
    return (results,)


@app.cell
def _(ablation_table, cs, factor, mo, results):
    table = ablation_table(results, factor.value)
    mo.vstack(
        [
            mo.md(
                f"## Paper-shaped table by {factor.value}\n\nMean over cells and datasets of each column of "
                "the paper's headline table (probe accuracy or mAP, retrieval ROC AUC, clustering NMI; "
                "columns whose suite the grid's world lacks are left out). Compare each `trained` row with "
                "the `random-init twin` row of the same value."
            ),
            mo.ui.table(table.with_columns(cs.float().round(3)), selection=None),
        ]
    )
    return (table,)


@app.cell
def _(factor, faceted_bars, mo, table, to_long):
    mo.ui.plotly(
        faceted_bars(
            to_long(table),
            x=factor.value,
            color="model",
            title=f"Trained vs random-init twin, by {factor.value} (one panel per paper column)",
        )
    )
    return


@app.cell
def _(cells_vs_twins, cs, mo, pl, results):
    gains = cells_vs_twins(results)
    _beat = gains.filter(pl.col("mean_gain") > 0).height
    _clear = gains.filter(pl.col("beyond_spread")).height
    _spread = (
        f"**{_clear} of {gains.height}** clear their architecture's `twin_spread`: the largest mean gain one "
        "random-init network shows against the other random inits of the same architecture (the grid "
        "evaluates several init seeds as twins). A cell below it did no better than drawing another "
        "random init."
        if gains["twin_spread"].null_count() < gains.height
        else "This grid evaluated one twin per architecture, so there is no yardstick for the noise: "
        "differences of a few hundredths are within what another random init gives."
    )
    mo.vstack(
        [
            mo.md(
                "## Every cell against its own twin\n\nEach trained encoder's value minus its "
                "architecture's random-init twin's (the mean over the twins' init seeds), per paper column "
                "(positive = training helped), the columns it won and the mean gain. "
                f"**{_beat} of {gains.height} cells** have a positive mean gain; {_spread} On the quick "
                "world the test splits are small (40 clips per classification dataset)."
            ),
            mo.ui.table(gains.with_columns(cs.float().round(3)), selection=None),
        ]
    )
    return


@app.cell
def _(ablation_view, factor, mo, results):
    view = ablation_view(results, factor.value)
    _choices = sorted({f"{m} / {k}" for m, k in view.select("method", "metric").unique().iter_rows()})
    detail = mo.ui.dropdown(
        _choices,
        value="retrieval / roc_auc" if "retrieval / roc_auc" in _choices else _choices[0],
        label="method / metric",
    )
    mo.vstack(
        [
            mo.md(
                "## Any metric, per task family\n\nEvery metric the evaluation records (e.g. balanced "
                "accuracy, precision@1, ARI), one panel per task family. Error bars: standard deviation "
                "over the cells and datasets averaged."
            ),
            detail,
        ]
    )
    return detail, view


@app.cell
def _(detail, factor, faceted_bars, mo, pl, view):
    _method, _metric = detail.value.split(" / ")
    mo.ui.plotly(
        faceted_bars(
            view.filter((pl.col("method") == _method) & (pl.col("metric") == _metric)),
            x=factor.value,
            color="model",
            facet="task_family",
            errors=True,
            title=f"{detail.value} by {factor.value}",
        )
    )
    return


if __name__ == "__main__":
    app.run()
