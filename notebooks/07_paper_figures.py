import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="avexlab: paper figures")


@app.cell
def _():
    from pathlib import Path

    import marimo as mo
    import polars as pl
    import polars.selectors as cs

    from avexlab.data.published import PAPER_SOURCE, paper_data_mix, paper_headline
    from avexlab.data.registry import check_all, paper_suites
    from avexlab.evaluate.report import load_results
    from avexlab.evaluate.spec import EvalSpec
    from avexlab.evaluate.suites import evaluate_suite
    from avexlab.evaluate.tables import (
        REAL_SOURCE,
        SYNTH_SOURCE,
        grid_data_mix,
        paper_table,
        side_by_side,
        to_long,
    )
    from avexlab.synth import render_world
    from avexlab.viz.figures import faceted_bars
    from avexlab.viz.notebook import SCALES, catch_user_error, default_scale, world_preset

    return (
        EvalSpec,
        PAPER_SOURCE,
        Path,
        REAL_SOURCE,
        SCALES,
        SYNTH_SOURCE,
        catch_user_error,
        check_all,
        cs,
        default_scale,
        evaluate_suite,
        faceted_bars,
        grid_data_mix,
        load_results,
        mo,
        paper_data_mix,
        paper_headline,
        paper_table,
        pl,
        paper_suites,
        render_world,
        side_by_side,
        to_long,
        world_preset,
    )


@app.cell
def _(PAPER_SOURCE, SYNTH_SOURCE, mo):
    mo.md(rf"""
    # The paper's tables beside avexlab's numbers

    Every row below says where its numbers come from, in the `source` column:

    - **{PAPER_SOURCE}**: copied from the AVEX paper (ICLR 2026): published encoders on the 26 real
      datasets (BEANS, BirdSet, individual ID, vocal repertoires). avexlab does not recompute these.
    - **{SYNTH_SOURCE}**: avexlab's encoders on the synthetic world's suites, which mirror the paper's
      task families (`syn-beans-clf`, `syn-beans-det`, `syn-birdset`, `syn-individual`,
      `syn-repertoire`) at the chosen scale. They share the **protocol** (frozen encoder, linear probe,
      retrieval ROC AUC, k-means NMI), not the data: compare the *pattern* across encoders and columns,
      never a synthetic number with a published one.
    - **avexlab, real data**: the same evaluation on local copies of the paper's datasets, when you have
      them (section 3).

    Columns: probe accuracy (classification, individual ID) or mAP (detection, BirdSet); R-auc =
    retrieval ROC AUC (0.5 = chance); C-nmi = k-means NMI. Empty cells: not reported or not measured.
    """)
    return


@app.cell
def _(SCALES, default_scale, mo):
    scale = mo.ui.dropdown(list(SCALES), value=default_scale(), label="scale")
    seed = mo.ui.number(start=0, stop=10_000, value=0, label="seed")
    encoders = mo.ui.text(
        value="logmel:tiny, beats:tiny",
        label="encoders (comma-separated NAME:SIZE or checkpoint paths)",
        full_width=True,
    )
    grid_path = mo.ui.text(
        value="results/grid/results.parquet", label="grid results (notebook 03)", full_width=True
    )
    data_root = mo.ui.text(
        value="data/paper", label="root of the paper's datasets (optional)", full_width=True
    )
    mo.vstack([mo.hstack([scale, seed], justify="start"), encoders, grid_path, data_root])
    return data_root, encoders, grid_path, scale, seed


@app.cell
def _(Path, catch_user_error, encoders, grid_path, load_results, mo, scale):
    specs = [s.strip() for s in encoders.value.split(",") if s.strip()]
    # Probe epochs per scale (the paper's recipe at paper scale).
    probe_epochs = {"smoke": 5, "workshop": 15, "paper": 30}[scale.value]
    _grid = Path(grid_path.value.strip())
    grid_results, _problem = catch_user_error(load_results, _grid) if _grid.is_file() else (None, None)
    if grid_results is not None:
        _note = mo.callout(
            mo.md(f"Grid results found: `{_grid}` (its trained encoders join the tables)."), kind="info"
        )
    elif _problem is not None:
        _note = mo.callout(mo.md(f"**Cannot read the grid results.** {_problem}"), kind="danger")
    else:
        _note = mo.callout(
            mo.md(
                f"No grid results at `{_grid}`: the tables show the encoders above only. Train the grid "
                "with notebook 03 or `avexlab grid --profile quick --out results/grid`."
            ),
            kind="warn",
        )
    _note
    return grid_results, probe_epochs, specs


@app.cell
def _(EvalSpec, evaluate_suite, mo, pl, probe_epochs, render_world, scale, seed, specs, world_preset):
    world = render_world(world_preset(scale.value), seed.value)
    _jobs = [(_spec, _suite) for _spec in specs for _suite in world.suites.values()]
    _frames = []
    for _spec, _suite in mo.status.progress_bar(
        _jobs, title="Evaluating the encoders on every synthetic suite"
    ):
        _frames.append(
            evaluate_suite(_spec, _suite, EvalSpec(probe_epochs=probe_epochs, cache_dir=".cache/embeddings"))
        )
    synth_results = pl.concat(_frames)
    return (synth_results,)


@app.cell
def _(grid_results, paper_headline, paper_table, pl, side_by_side, synth_results):
    _ours = paper_table(synth_results)
    if grid_results is not None:
        _ours = pl.concat(
            [_ours, paper_table(grid_results.filter(pl.col("checkpoint") != "random-init"))],
            how="diagonal_relaxed",
        )
    headline = side_by_side(paper_headline(), _ours)
    return (headline,)


@app.cell
def _(cs, headline, mo):
    mo.vstack(
        [
            mo.md(
                "## 1. Headline table\n\nThe paper's headline table, then avexlab's encoders on the synthetic "
                "suites in the same columns."
            ),
            mo.ui.table(headline.with_columns(cs.float().round(3)), selection=None, page_size=20),
        ]
    )
    return


@app.cell
def _(faceted_bars, headline, mo, to_long):
    mo.ui.plotly(
        faceted_bars(
            to_long(headline.drop("paradigm")),
            x="model",
            color="source",
            title="Headline columns: paper (real data) vs avexlab (synthetic world)",
        )
    )
    return


@app.cell
def _(cs, grid_data_mix, grid_results, mo, paper_data_mix, side_by_side):
    _ours = (
        grid_data_mix(grid_results) if grid_results is not None else paper_data_mix().head(0).drop("source")
    )
    data_mix = side_by_side(paper_data_mix(), _ours)
    mo.vstack(
        [
            mo.md(
                "## 2. Data-mix ablation (EfficientNet-B0, SL)\n\n`general` = general audio only (AudioSet in "
                "the paper, the world's general-audio pool in avexlab), `bio` = animal sounds only, `all` = "
                "both. The paper's finding: general audio alone transfers poorly and `all` beats `bio` almost "
                "everywhere. avexlab rows come from the grid results (notebook 03)"
                + ("." if grid_results is not None else ": none loaded, so only the paper's rows appear.")
            ),
            mo.ui.table(data_mix.with_columns(cs.float().round(3)), selection=None),
        ]
    )
    return (data_mix,)


@app.cell
def _(data_mix, faceted_bars, mo, to_long):
    mo.ui.plotly(
        faceted_bars(
            to_long(data_mix.drop("model")),
            x="mix",
            color="source",
            title="Data mix: paper (real data) vs avexlab grid (synthetic world)",
        )
    )
    return


@app.cell
def _(Path, check_all, data_root, mo, pl):
    _root = Path(data_root.value.strip() or ".")
    checks = check_all(_root)
    _ok = checks.filter(pl.col("ok"))
    mo.vstack(
        [
            mo.md(
                f"## 3. The paper's real datasets\n\n{_ok.height} of {checks.height} datasets have a complete "
                f"local copy under `{_root}` (nothing is downloaded; `avexlab data check-paper ROOT` says what to put "
                "where). Those present are evaluated below with the same encoders."
            ),
            mo.ui.table(
                checks.select("name", "benchmark", "task_family", "ok", "n_clips", "problems"), selection=None
            ),
        ]
    )
    return


@app.cell
def _(
    EvalSpec,
    REAL_SOURCE,
    cs,
    data_root,
    evaluate_suite,
    mo,
    paper_headline,
    paper_table,
    pl,
    paper_suites,
    probe_epochs,
    side_by_side,
    specs,
):
    _suites = paper_suites(data_root.value.strip() or ".")
    mo.stop(
        not _suites,
        mo.callout(mo.md("No real dataset present: only synthetic numbers are shown above."), kind="info"),
    )
    _jobs = [(_spec, _suite) for _spec in specs for _suite in _suites]
    _frames = []
    for _spec, _suite in mo.status.progress_bar(_jobs, title="Evaluating on the local real datasets"):
        _frames.append(
            evaluate_suite(_spec, _suite, EvalSpec(probe_epochs=probe_epochs, cache_dir=".cache/embeddings"))
        )
    _real = paper_table(pl.concat(_frames)).with_columns(pl.lit(REAL_SOURCE).alias("source"))
    mo.ui.table(side_by_side(paper_headline(), _real).with_columns(cs.float().round(3)), selection=None)
    return


if __name__ == "__main__":
    app.run()
