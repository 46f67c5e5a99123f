import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="avexlab: ablations")


@app.cell
def _():
    import json
    import tempfile
    from pathlib import Path

    import marimo as mo
    import polars as pl
    import polars.selectors as cs

    from avexlab.evaluate.chance import chance_levels
    from avexlab.evaluate.report import items_path, load_results
    from avexlab.evaluate.stats import cell_intervals, effect_interval
    from avexlab.evaluate.tables import (
        ABLATION_FACTORS,
        ANALYSIS_COLUMNS,
        PAPER_COLUMNS,
        ablation_table,
        ablation_view,
    )
    from avexlab.experiments.findings import evaluate_findings, findings_prose
    from avexlab.experiments.grid import GRID_PROFILES, grid, grid_configs, grid_cost
    from avexlab.viz.figures import faceted_bars, interval_figure
    from avexlab.viz.notebook import GRID_PROFILE_OF_SCALE, SCALES, catch_user_error, default_scale

    return (
        ABLATION_FACTORS,
        ANALYSIS_COLUMNS,
        GRID_PROFILES,
        GRID_PROFILE_OF_SCALE,
        PAPER_COLUMNS,
        Path,
        SCALES,
        ablation_table,
        ablation_view,
        catch_user_error,
        cell_intervals,
        chance_levels,
        cs,
        default_scale,
        effect_interval,
        evaluate_findings,
        faceted_bars,
        findings_prose,
        grid,
        grid_configs,
        grid_cost,
        interval_figure,
        items_path,
        json,
        load_results,
        mo,
        pl,
        tempfile,
    )


@app.cell
def _(mo):
    mo.md(r"""
    # Ablations: architecture, data mix and training paradigm

    The paper's controlled study, on the synthetic world: each cell of the grid trains one encoder
    (**architecture** EfficientNet / BEATs / EAT x **data mix** bio / general / all x **paradigm** SL /
    SSL / SL-SSL, plus `sl-equal`, SL trained on as many examples as an SL-SSL cell saw in total) with
    several training seeds, and evaluates it, frozen, on every synthetic suite (linear probes with several
    probe seeds, retrieval, clustering). Each architecture's **random-init twins** (the cells' initial
    weights, untrained) are evaluated the same way: what training bought is the distance to them.

    Every number below comes with a **95% interval**: a bootstrap that redraws the test clips of every
    dataset, the training seeds and the probe seeds. The **verdicts** at the top are computed from the
    table, finding by finding (`avexlab findings`), and the sentences under them are generated from those
    verdicts: nothing on this page states a result by hand.
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
def _(GRID_PROFILES, GRID_PROFILE_OF_SCALE, Path, grid_configs, mo, scale):
    profile_name = GRID_PROFILE_OF_SCALE[scale.value]
    _p = GRID_PROFILES[profile_name]
    _cells = len({Path(c.runtime.out_dir).parent.name for c in grid_configs(_p, Path("runs/notebook-grid"))})
    _choices = "".join(f"\n- `{k}`: {v}" for k, v in _p.choices.items())
    retrain = mo.ui.run_button(label=f"Retrain the grid at '{scale.value}' scale")
    mo.vstack(
        [
            mo.md(
                f"**Retrain** runs `grid({profile_name!r})` on the `{_p.world_preset}` world: "
                f"{len(_p.architectures)} architectures ({', '.join(_p.architectures)}) x {len(_p.mixes)} "
                f"mixes ({', '.join(_p.mixes)}) x paradigms {', '.join(_p.paradigms)} (EfficientNet trains "
                f"SL only, as in the paper): {_cells} cells, each trained with {len(_p.train_seeds)} "
                f"training seed(s) {list(_p.train_seeds)} and probed with {len(_p.probe_seeds)} probe "
                f"seed(s) {list(_p.probe_seeds)}.\n\n"
                f"Budgets are **examples seen**, equal for every cell a comparison pairs: "
                f"{_p.cell_examples('sl'):,} clips for every SL and SSL cell, "
                f"{_p.cell_examples('sl-ssl'):,} more for the supervised post-training of an SL-SSL cell, "
                f"{_p.cell_examples('sl-equal'):,} for the equal-budget SL control `sl-equal`; batches of "
                f"{_p.batch_size} clips ({_p.cell_steps(_p.architectures[0], 'sl'):,} optimiser steps for "
                f"an SL cell), `{_p.size}` encoders, {_p.clip_s:g} s crops, probes of {_p.probe_epochs} "
                f"epochs (`{_p.probe_recipe}` recipe). How the settings were chosen:{_choices or ' (not recorded)'}"
                f"\n\nInto `runs/notebook-grid/{scale.value}`; finished runs and evaluations are reused, so "
                "an interrupted grid resumes where it stopped. It never runs on its own at `workshop` or "
                "`paper` scale; the cost of the table shown below is read from its `grid.json`."
            ),
            retrain,
        ]
    )
    return profile_name, retrain


@app.cell
def _(
    Path,
    catch_user_error,
    grid,
    grid_cost,
    items_path,
    json,
    load_results,
    mo,
    pl,
    profile_name,
    results_path,
    retrain,
    scale,
    tempfile,
):
    def _read(path):
        """The results table, its items (None when absent) and its grid.json (None when absent)."""
        table = load_results(path)
        _items = items_path(path)
        record = Path(path).with_name("grid.json")
        return (
            table,
            pl.read_parquet(_items) if _items.is_file() else None,
            json.loads(record.read_text()) if record.is_file() else None,
        )

    _committed = Path(results_path.value.strip())
    _how = (
        f"Produce it with `avexlab grid --profile {profile_name} --out {_committed.parent}` "
        "(or press the retrain button above)."
    )
    if retrain.value:
        with mo.status.spinner(title=f"Training and evaluating the {profile_name!r} grid ..."):
            _path = grid(profile_name, out=Path("runs/notebook-grid") / scale.value, progress=True)
        results, items, record = _read(_path)
        keep_in = Path(_path).parent
        origin = f"Retrained just now at `{scale.value}` scale: `{_path}`."
    elif _committed.is_file():
        _loaded, _problem = catch_user_error(_read, _committed)
        mo.stop(
            _problem is not None,
            mo.callout(mo.md(f"**Cannot read `{_committed}`.** {_problem} {_how}"), kind="danger"),
        )
        results, items, record = _loaded
        keep_in = _committed.parent
        origin = f"Committed grid results: `{_committed}`."
    elif scale.value == "smoke":
        # A temporary folder (about 100 MB of checkpoints and caches), deleted once the tables are read.
        with (
            tempfile.TemporaryDirectory(prefix="avexlab-grid-smoke-") as _out,
            mo.status.spinner(title="No committed results: running the smoke grid (seconds per cell) ..."),
        ):
            results, items, record = _read(grid("smoke", out=_out, progress=True))
        keep_in = None  # the temporary folder is gone
        origin = (
            f"**No committed grid results at `{_committed}`.** {_how} Shown instead: the `smoke` grid, "
            "run just now in a temporary folder (a few training steps per cell)."
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
    _seeds = (
        sorted(results["train_seed"].drop_nulls().unique().to_list())
        if "train_seed" in results.columns
        else []
    )
    _probe = sorted(results["probe_seed"].drop_nulls().unique().to_list())
    _shape = (
        f" {results['encoder'].n_unique()} encoders; training seeds {_seeds or 'not recorded'}, probe seeds "
        f"{_probe}."
    )
    _cost = (record or {}).get("cost") or {}
    _total = grid_cost(record or {})
    if _total["training_wall_s"] is not None:
        _runs = [r["wall_s"] for r in _cost.get("runs", []) if r.get("wall_s") is not None]
        _cost_md = (
            f" Its cost (`grid.json`, {_total['sittings']} sitting(s) added): "
            f"{_total['training_wall_s'] / 60:.1f} min of training wall time "
            f"({sum(_runs) / 60:.1f} min summed over {len(_runs)} runs)"
            + (
                f" and {_total['evaluation_wall_s'] / 60:.1f} min of evaluation"
                if _total["evaluation_wall_s"] is not None
                else ""
            )
            + f", {_cost.get('workers', 1)} worker(s) on {_cost.get('cpu_count', '?')} CPU cores."
        )
    else:
        _cost_md = " Its `grid.json` records no cost (a grid written before avexlab measured it)."
    _no_items = (
        ""
        if items is not None
        else (
            "\n\n**This table has no per-item outcomes** (`items.parquet` beside it: a grid written before "
            "avexlab kept them). Intervals, chance levels and verdicts are computed from them, so only the "
            f"means are shown below. Re-run the grid to get them: {_how}"
        )
    )
    mo.callout(mo.md(origin + _shape + _cost_md + _no_items), kind="info" if items is not None else "warn")
    return items, keep_in, results


@app.cell
def _(evaluate_findings, findings_prose, items, keep_in, mo, results):
    mo.stop(
        items is None,
        mo.md("## Findings\n\nNot evaluated: verdicts need the per-item outcomes (`items.parquet`)."),
    )
    with mo.status.spinner(title="Evaluating the paper's findings (paired bootstrap) ..."):
        findings = evaluate_findings(results, items, keep_in=keep_in)
    _counts = findings["verdict"].value_counts(sort=True)
    _summary = ", ".join(f"{n} {v}" for v, n in _counts.iter_rows())
    mo.vstack(
        [
            mo.md(
                "## Findings: the paper's claims, tested on this grid\n\n"
                f"{findings.height} findings: {_summary}. Each pairs cells that differ in one factor, "
                "averages the paired differences over the pairs and the columns it reads, and gives the 95% "
                "interval of that effect (the same test clips and seeds on both sides of a pair). A "
                "`greater` claim is **reproduced** when the whole interval is above 0, **contradicted** when "
                "it is below 0, **inconclusive** otherwise; a `not_less` claim compares with minus its "
                "margin. These verdicts are about this grid on the synthetic world, not about the paper's "
                "real data.\n\n" + findings_prose(findings)
            ),
            mo.ui.table(
                findings.drop("statement").with_columns(
                    [findings[c].round(3) for c in ("effect", "ci_low", "ci_high")]
                ),
                selection=None,
                page_size=12,
            ),
        ]
    )
    return


@app.cell
def _(ANALYSIS_COLUMNS, cell_intervals, chance_levels, items, keep_in, mo, pl, results):
    mo.stop(items is None)
    with mo.status.spinner(title="Bootstrap intervals of every encoder and column ..."):
        _iv = cell_intervals(items, keep_in=keep_in)
    _factors = [
        c
        for c in ("architecture", "mix", "paradigm", "examples_seen", "ssl_examples", "sl_examples")
        if c in results.columns
    ]
    _meta = results.select("encoder", *_factors).unique("encoder", keep="first", maintain_order=True)
    _order = {c[0]: i for i, c in enumerate(ANALYSIS_COLUMNS)}
    intervals = (
        _iv.join(_meta, on="encoder", how="left")
        .with_columns(pl.col("column").replace_strict(_order).alias("_order"))
        .sort("_order", maintain_order=True)
        .drop("_order")
    )
    chance = chance_levels(items)
    twins = intervals.filter(pl.col("paradigm") == "random-init")
    return chance, intervals, twins


@app.cell
def _(PAPER_COLUMNS, intervals, mo):
    _measured = intervals["column"].unique(maintain_order=True).to_list()
    _paper = [c[0] for c in PAPER_COLUMNS]
    shown_columns = mo.ui.multiselect(
        _measured, value=[c for c in _measured if c in _paper], label="columns shown"
    )
    shown_columns
    return (shown_columns,)


@app.cell
def _(chance, factor, interval_figure, intervals, mo, pl, shown_columns, twins):
    _keep = pl.col("column").is_in(shown_columns.value)
    _points = intervals.filter(_keep & (pl.col("paradigm") != "random-init")).with_columns(
        pl.col(factor.value).cast(pl.String).fill_null("released model")
    )
    mo.stop(_points.height == 0, mo.md("Pick at least one column."))
    mo.vstack(
        [
            mo.md(
                f"## Every encoder with its 95% interval, by {factor.value}\n\nOne panel per column of the "
                "paper's table; one point per grid cell (mean over its training and probe seeds), coloured "
                f"by {factor.value} and grouped by architecture. The **grey band** behind an architecture's "
                "cells is its random-init twins' interval (dotted line: their estimate): a cell inside it "
                "did no better than the untrained network. The **dashed line** is the chance level: the "
                "score of a predictor that gives every clip the same output (majority class for accuracy, "
                "class prevalence for mAP, 0.5 for retrieval ROC AUC, 0 for NMI), computed from the test "
                "clips' labels. Hover a point for its interval."
            ),
            mo.ui.plotly(
                interval_figure(
                    _points,
                    color=factor.value,
                    group="architecture",
                    chance=chance.filter(_keep),
                    bands=twins.filter(_keep),
                    title=f"Estimates and 95% intervals by {factor.value}",
                )
            ),
        ]
    )
    return


@app.cell
def _(chance, intervals, mo, pl):
    def _fmt(e, lo, hi):
        if e is None:
            return None
        if lo is None or hi is None or lo != lo or hi != hi:
            return f"{e:.3f}"
        return f"{e:.3f} [{lo:.3f}, {hi:.3f}]"

    _cols = intervals["column"].unique(maintain_order=True).to_list()
    _keys = [
        c
        for c in (
            "encoder",
            "architecture",
            "mix",
            "paradigm",
            "examples_seen",
            "n_train_seeds",
            "n_probe_seeds",
        )
        if c in intervals.columns
    ]
    _wide = (
        intervals.with_columns(
            pl.struct("estimate", "ci_low", "ci_high")
            .map_elements(lambda r: _fmt(r["estimate"], r["ci_low"], r["ci_high"]), return_dtype=pl.String)
            .alias("value")
        )
        .pivot(on="column", index=_keys, values="value", aggregate_function="first")
        .select(*_keys, *_cols)
    )
    _chance_row = pl.DataFrame(
        {
            "encoder": "chance (constant predictor)",
            **{c: f"{v:.3f}" for c, v in chance.select("column", "chance").iter_rows()},
        }
    )
    cell_table = pl.concat([_chance_row, _wide], how="diagonal_relaxed").select(*_keys, *_cols)
    mo.vstack(
        [
            mo.md(
                "## Every cell and twin, with intervals\n\nEach column's estimate `[95% interval]`: mean over "
                "the column's datasets, averaged over the encoder's training and probe seeds; the interval "
                "redraws the test clips of every dataset and the seeds. Random-init twins are the rows of "
                "paradigm `random-init`; the first row is the chance level."
            ),
            mo.ui.table(cell_table, selection=None, page_size=15),
        ]
    )
    return


@app.cell
def _(factor, mo):
    # On demand: a paired bootstrap per (value, model, column) takes a while on a full grid.
    factor_intervals = mo.ui.run_button(
        label=f"Add the 95% intervals (paired bootstrap of every {factor.value} value and column)"
    )
    return (factor_intervals,)


@app.cell
def _(
    PAPER_COLUMNS,
    ablation_table,
    catch_user_error,
    cs,
    effect_interval,
    factor,
    factor_intervals,
    items,
    mo,
    pl,
    results,
):
    _means = ablation_table(results, factor.value)
    _measured = [c[0] for c in PAPER_COLUMNS if c[0] in _means.columns]
    if items is None or not factor_intervals.value:
        _table = _means.with_columns(cs.float().round(3))
        _how = (
            "no intervals without `items.parquet`, so differences between rows cannot be told from noise here."
            if items is None
            else "the button adds each one's 95% interval (a bootstrap per value and column: it takes a "
            "while on a full grid; the per-cell intervals above are already there)."
        )
    else:
        _grid = results.filter(~pl.col("paradigm").is_in(["random-init", "existing"]))
        _cells = _grid.select("encoder", "architecture", factor.value).unique("encoder", maintain_order=True)
        _twin_of = dict(
            results.filter(pl.col("paradigm") == "random-init")
            .select("architecture", "encoder")
            .unique("architecture")
            .iter_rows()
        )

        _problems = {}

        def _ci(terms, sign=""):
            iv, problem = catch_user_error(effect_interval, items, terms)
            if iv is None:  # named under the table, never a silent gap
                _problems.setdefault(problem, len(_problems) + 1)
                return f"not computed ({_problems[problem]})"
            return f"{iv.estimate:{sign}.3f} [{iv.ci_low:{sign}.3f}, {iv.ci_high:{sign}.3f}]"

        _rows = []
        _groups = list(_cells.group_by(factor.value, maintain_order=True))
        for (_value,), _g in mo.status.progress_bar(
            _groups, title=f"Intervals of the means by {factor.value}"
        ):
            _enc = _g["encoder"].to_list()
            _twins = [_twin_of.get(a) for a in _g["architecture"].to_list()]
            _w = 1 / len(_enc)
            for _model in ("trained", "random-init twin", "gain"):
                _row = {factor.value: _value, "model": _model, "cells": len(_enc)}
                for _c in _measured:
                    _t = [(_w, e, _c) for e in _enc]
                    _tw = [(_w, e, _c) for e in _twins if e is not None]
                    if _model == "trained":
                        _row[_c] = _ci(_t)
                    elif len(_tw) < len(_enc):
                        _row[_c] = None
                    elif _model == "random-init twin":
                        _row[_c] = _ci(_tw)
                    else:
                        _row[_c] = _ci(_t + [(-w, e, c) for w, e, c in _tw], sign="+")
                _rows.append(_row)
        _table = pl.DataFrame(_rows)
        _how = (
            "each with its 95% interval (one paired bootstrap: the same clips and seeds for every cell and its "
            "twin; `gain` = trained - twin, positive = training helped). `cells` counts the cells averaged; "
            "an empty twin or gain means a cell has no random-init twin."
            + "".join(f"\n\n**Not computed ({n}):** {p}" for p, n in _problems.items())
        )
    mo.vstack(
        [
            mo.md(
                f"## Paper-shaped table by {factor.value}\n\nFor each value of {factor.value}: the mean over "
                "its grid cells of each column of the paper's headline table (`trained`) and the same mean "
                f"over the cells' random-init twins; {_how}"
            ),
            *([factor_intervals] if items is not None else []),
            mo.ui.table(_table, selection=None, page_size=15),
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
                "accuracy, precision@1, ARI), one panel per task family, trained cells against their twins. "
                "Error bars here are the **spread** (standard deviation over the cells, seeds and datasets "
                "averaged), not an interval: read differences against the intervals above."
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
            title=f"{detail.value} by {factor.value} (error bars: standard deviation)",
        )
    )
    return


if __name__ == "__main__":
    app.run()
