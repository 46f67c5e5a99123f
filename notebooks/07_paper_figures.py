import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="avexlab: paper figures")


@app.cell
def _():
    import json
    import os
    from pathlib import Path

    import marimo as mo
    import polars as pl
    import polars.selectors as cs

    from avexlab.data.published import PAPER_SOURCE, paper_data_mix, paper_headline
    from avexlab.data.registry import check_all, paper_suites
    from avexlab.evaluate.chance import chance_levels
    from avexlab.evaluate.embed import resolve_encoder
    from avexlab.evaluate.report import items_path, load_results
    from avexlab.evaluate.spec import EvalSpec
    from avexlab.evaluate.stats import cell_intervals
    from avexlab.evaluate.suites import evaluate_suite, evaluate_suites
    from avexlab.evaluate.tables import (
        PAPER_COLUMNS,
        REAL_SOURCE,
        SYNTH_SOURCE,
        paper_table,
        side_by_side,
    )
    from avexlab.experiments.findings import evaluate_findings, findings_prose
    from avexlab.synth import render_world
    from avexlab.viz.figures import interval_figure
    from avexlab.viz.notebook import SCALES, catch_user_error, default_scale, world_preset

    return (
        EvalSpec,
        PAPER_COLUMNS,
        PAPER_SOURCE,
        Path,
        REAL_SOURCE,
        SCALES,
        SYNTH_SOURCE,
        catch_user_error,
        cell_intervals,
        chance_levels,
        check_all,
        cs,
        default_scale,
        evaluate_findings,
        evaluate_suite,
        evaluate_suites,
        findings_prose,
        interval_figure,
        items_path,
        json,
        load_results,
        mo,
        os,
        paper_data_mix,
        paper_headline,
        paper_suites,
        paper_table,
        pl,
        render_world,
        resolve_encoder,
        side_by_side,
        world_preset,
    )


@app.cell
def _(PAPER_SOURCE, SYNTH_SOURCE, mo):
    mo.md(rf"""
    # The paper's tables beside avexlab's numbers

    Every row says where its numbers come from, in the `source` column:

    - **{PAPER_SOURCE}**: copied from the AVEX paper (ICLR 2026): published encoders on the 26 real
      datasets (BEANS, BirdSet, individual ID, vocal repertoires). avexlab does not recompute these.
    - **{SYNTH_SOURCE}: grid**: the encoders of the ablation grid (notebook 03, `avexlab grid`), each a
      mean over its training and probe seeds, on the synthetic world the grid was run on.
    - **{SYNTH_SOURCE}: live**: encoders evaluated here, now, on the world of the chosen scale. Their
      names say what they are (random init, released model or checkpoint, world, clips per split).
    - **avexlab, real data**: the same evaluation on local copies of the paper's datasets, when you have
      them (section 3).

    The synthetic suites mirror the paper's task families and share its **protocol** (frozen encoder,
    linear probe, retrieval ROC AUC, k-means NMI), not its data: compare the *pattern* across encoders and
    columns, never a synthetic number with a published one. avexlab's numbers come with their **95%
    interval** (a bootstrap over the test clips and the seeds) and each column with its **chance level**;
    the verdicts on the paper's findings are computed from the grid and their sentences generated from
    the verdicts.

    Columns: probe accuracy (classification, individual ID) or mAP (detection, BirdSet); R-auc =
    retrieval ROC AUC; C-nmi = k-means NMI.
    """)
    return


@app.cell
def _(SCALES, default_scale, mo):
    scale = mo.ui.dropdown(list(SCALES), value=default_scale(), label="scale")
    seed = mo.ui.number(start=0, stop=10_000, value=0, label="seed")
    encoders = mo.ui.text(
        value="logmel:tiny, beats:tiny",
        label="live encoders (comma-separated NAME:SIZE, checkpoint paths, or birdnet)",
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
def _(mo, scale):
    birdnet_live = mo.ui.checkbox(
        value=scale.value == "smoke", label="evaluate BirdNET live when the grid has no BirdNET row"
    )
    cap = mo.ui.number(
        start=0,
        stop=100_000,
        value=8 if scale.value == "smoke" else 0,
        label="live rows: max clips per split (0 = every clip)",
    )
    mo.vstack(
        [
            mo.hstack([birdnet_live, cap], justify="start"),
            mo.md(
                "BirdNET V2.4 (`birdnet`, the released model, frozen) takes 48 kHz audio, so the world's "
                "clips are resampled, and it embeds its 3 s windows several times slower than the tiny "
                "networks. The live rows therefore evaluate at most this many clips of each split of each "
                "dataset (a label-stratified draw, the same clips for every live encoder; at `smoke` 8 keeps "
                "every test clip and trims the training splits); embeddings are cached, so a rerun skips the "
                "encoders."
            ),
        ]
    )
    return birdnet_live, cap


@app.cell
def _(Path, catch_user_error, grid_path, items_path, json, load_results, mo, pl):
    def _read(path):
        table = load_results(path)
        _items = items_path(path)
        record = Path(path).with_name("grid.json")
        return (
            table,
            pl.read_parquet(_items) if _items.is_file() else None,
            json.loads(record.read_text()) if record.is_file() else {},
        )

    _grid = Path(grid_path.value.strip())
    _loaded, _problem = catch_user_error(_read, _grid) if _grid.is_file() else (None, None)
    grid_results, grid_items, _record = _loaded if _loaded is not None else (None, None, {})
    grid_world = ((_record.get("world") or {}).get("preset")) or "unrecorded"
    grid_has_birdnet = grid_results is not None and "birdnet" in set(grid_results["encoder"])
    grid_dir = _grid.parent if grid_results is not None else None
    if grid_results is not None:
        _note = mo.callout(
            mo.md(
                f"Grid results found: `{_grid}` ({grid_results['encoder'].n_unique()} encoders, "
                f"`{grid_world}` world)."
                + (
                    ""
                    if grid_items is not None
                    else " **It has no per-item outcomes** (`items.parquet` beside it: a grid written "
                    "before avexlab kept them), so its rows show means without intervals and the findings "
                    "cannot be tested. Re-run the grid (`avexlab grid --profile quick --out "
                    f"{_grid.parent}`) to get them."
                )
            ),
            kind="info" if grid_items is not None else "warn",
        )
    elif _problem is not None:
        _note = mo.callout(mo.md(f"**Cannot read the grid results.** {_problem}"), kind="danger")
    else:
        _note = mo.callout(
            mo.md(
                f"No grid results at `{_grid}`: the tables show the live encoders only. Train the grid "
                "with notebook 03 or `avexlab grid --profile quick --out results/grid`."
            ),
            kind="warn",
        )
    _note
    return grid_dir, grid_has_birdnet, grid_items, grid_results, grid_world


@app.cell
def _(evaluate_findings, grid_dir, grid_items, grid_results):
    # None when the grid has no items (the verdicts resample them)
    findings = (
        evaluate_findings(grid_results, grid_items, keep_in=grid_dir)
        if grid_results is not None and grid_items is not None
        else None
    )
    return (findings,)


@app.cell
def _(findings, findings_prose, grid_world, mo):
    mo.stop(findings is None)
    mo.vstack(
        [
            mo.md(
                f"## The paper's findings on the grid (`{grid_world}` world)\n\nEach finding is a paired "
                "comparison of grid cells that differ in one factor; the verdict is read off the 95% "
                "interval of the effect (`reproduced`: the whole interval on the claim's side; "
                "`contradicted`: on the other side; `inconclusive`: across). Generated from the verdicts:"
                "\n\n" + findings_prose(findings)
            ),
            mo.ui.table(
                findings.select("finding", "verdict", "effect", "ci_low", "ci_high", "n_pairs").with_columns(
                    [findings[c].round(3) for c in ("effect", "ci_low", "ci_high")]
                ),
                selection=None,
                page_size=12,
            ),
        ]
    )
    return


@app.cell
def _(
    EvalSpec,
    Path,
    birdnet_live,
    cap,
    catch_user_error,
    encoders,
    evaluate_suites,
    grid_has_birdnet,
    mo,
    os,
    pl,
    render_world,
    resolve_encoder,
    scale,
    seed,
    world_preset,
):
    # Probe epochs per scale (the paper's recipe at paper scale).
    probe_epochs = {"smoke": 5, "workshop": 15, "paper": 30}[scale.value]
    live_world = world_preset(scale.value)
    _cap = int(cap.value) or None
    specs = [s.strip() for s in encoders.value.split(",") if s.strip()]
    if birdnet_live.value and not grid_has_birdnet and "birdnet" not in specs:
        specs.append("birdnet")

    def live_label(spec, encoder):
        """What a live row is, in its name: never the name of a trained grid cell."""
        if spec == "birdnet":
            kind = "released BirdNET V2.4"
        elif Path(spec).exists():
            kind = "checkpoint"
        elif not any(True for _ in encoder.parameters()):
            kind = "no learned weights"
        else:
            kind = "random init"
        where = f"{live_world} world, live" + (f", <= {_cap} clips/split" if _cap else "")
        return f"{spec} ({kind}, {where})"

    world = render_world(live_world, seed.value)
    # Embeddings are cached per encoder and manifest in the user's cache: reruns skip the encoder.
    cache_dir = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "avexlab" / "embeddings"
    live_spec = EvalSpec(probe_epochs=probe_epochs, cache_dir=cache_dir, max_clips_per_split=_cap)
    _frames, _items, _skipped, _labels = [], [], [], []
    for _spec in mo.status.progress_bar(specs, title="Evaluating the live encoders on every synthetic suite"):
        _encoder, _problem = catch_user_error(resolve_encoder, _spec, seed=seed.value)
        if _problem is not None:
            _skipped.append(f"`{_spec}`: {_problem}")
            continue
        _labels.append(live_label(_spec, _encoder))
        _frames.append(
            evaluate_suites(
                _encoder, list(world.suites.values()), live_spec, encoder_name=_labels[-1], items=_items
            )
        )
    live_results = pl.concat(_frames) if _frames else None
    live_items = pl.concat(_items, how="diagonal_relaxed") if _items else None
    _bird = (
        "BirdNET: from the grid (its `existing` row)."
        if grid_has_birdnet
        else "BirdNET: evaluated live below."
        if "birdnet" in specs and not any(s.startswith("`birdnet`") for s in _skipped)
        else "BirdNET: not evaluated (tick the box above, or add `birdnet` to the live encoders)."
    )
    mo.md(
        f"**Live rows:** {', '.join(f'`{s}`' for s in _labels) or 'none'}. {_bird}"
        + ("".join(f"\n\n**Skipped** {s}" for s in _skipped))
    )
    return live_items, live_results, live_spec, live_world, specs


@app.cell
def _(
    PAPER_COLUMNS,
    PAPER_SOURCE,
    SYNTH_SOURCE,
    cell_intervals,
    chance_levels,
    grid_dir,
    grid_items,
    grid_results,
    grid_world,
    live_items,
    live_results,
    live_world,
    paper_headline,
    paper_table,
    pl,
):
    _paper_cols = [c[0] for c in PAPER_COLUMNS]
    grid_source = f"{SYNTH_SOURCE}: grid ({grid_world})"
    live_source = f"{SYNTH_SOURCE}: live ({live_world})"
    _long = {
        "source": pl.String, "model": pl.String, "paradigm": pl.String, "group": pl.String,
        "column": pl.String, "estimate": pl.Float64, "ci_low": pl.Float64, "ci_high": pl.Float64,
    }  # fmt: skip

    def _means(results):
        """Rows without items: the paper-shaped means, no interval."""
        wide = paper_table(results)
        return wide.unpivot(
            on=[c for c in _paper_cols if c in wide.columns], index="encoder", variable_name="column"
        ).select("encoder", "column", pl.col("value").alias("estimate"), ci_low=None, ci_high=None)

    def _rows(results, items, source, group_of, keep_in=None):
        iv = cell_intervals(items, keep_in=keep_in) if items is not None else _means(results)
        meta = results.select("encoder", *[c for c in ("architecture", "paradigm") if c in results.columns])
        meta = meta.unique("encoder", keep="first", maintain_order=True)
        out = iv.join(meta, on="encoder", how="left").with_columns(
            pl.lit(source).alias("source"), pl.col("encoder").alias("model"), group_of.alias("group")
        )
        if "paradigm" not in out.columns:
            out = out.with_columns(paradigm=pl.lit(None, pl.String))
        return out.select(*_long).cast(_long)

    _paper = paper_headline()
    _parts = [
        _paper.unpivot(on=[c for c in _paper_cols if c in _paper.columns], index=["source", "model", "paradigm"],
                       variable_name="column", value_name="estimate")
        .with_columns(group=pl.lit("paper"), ci_low=None, ci_high=None)
        .select(*_long).cast(_long)
    ]  # fmt: skip
    _chance = []
    if grid_results is not None:
        _parts.append(_rows(grid_results, grid_items, grid_source, pl.col("architecture"), keep_in=grid_dir))
        if grid_items is not None:
            _chance.append(
                chance_levels(grid_items).with_columns(label=pl.lit(f"chance, grid ({grid_world})"))
            )
    if live_results is not None:
        _live_paradigm = pl.col("encoder").str.extract(
            r"\((random init|released|checkpoint|no learned weights)"
        )
        _live = live_results.with_columns(paradigm=_live_paradigm)
        _parts.append(_rows(_live, live_items, live_source, pl.lit("live")))
        _chance.append(chance_levels(live_items).with_columns(label=pl.lit(f"chance, live ({live_world})")))
    headline_long = pl.concat(_parts)
    chance = pl.concat(_chance) if _chance else None
    return chance, grid_source, headline_long, live_source


@app.cell
def _(pl):
    def wide_intervals(long, index, columns):
        """Tidy rows (``index``, ``column``, ``estimate``, ``ci_low``, ``ci_high``) as one row per ``index``
        with one string per column: ``estimate [low, high]`` (the estimate alone without an interval)."""

        def fmt(r):
            e, lo, hi = r["estimate"], r["ci_low"], r["ci_high"]
            if e is None:
                return None
            if lo is None or hi is None or lo != lo or hi != hi:
                return f"{e:.3f}"
            return f"{e:.3f} [{lo:.3f}, {hi:.3f}]"

        wide = (
            long.filter(pl.col("column").is_in(columns))
            .with_columns(
                pl.struct("estimate", "ci_low", "ci_high")
                .map_elements(fmt, return_dtype=pl.String)
                .alias("value")
            )
            .pivot(on="column", index=index, values="value", aggregate_function="first")
        )
        return wide.select(*index, *[c for c in columns if c in wide.columns])

    return (wide_intervals,)


@app.cell
def _(PAPER_COLUMNS, PAPER_SOURCE, chance, headline_long, mo, pl, wide_intervals):
    _cols = [
        c[0]
        for c in PAPER_COLUMNS
        if c[0] in set(headline_long.filter(pl.col("source") == PAPER_SOURCE)["column"])
    ]
    _wide = wide_intervals(headline_long, ["source", "model", "paradigm"], _cols)
    # avexlab's BirdNET row stands right under the paper's
    _is_bird = pl.col("model").str.to_lowercase().str.starts_with("birdnet")
    _paper_rows = _wide.filter(pl.col("source") == PAPER_SOURCE)
    _ours = _wide.filter(pl.col("source") != PAPER_SOURCE)
    _at = _paper_rows.with_row_index().filter(_is_bird)["index"].to_list()
    _cut = (_at[0] + 1) if _at else _paper_rows.height
    _chance_rows = (
        chance.filter(pl.col("column").is_in(_cols))
        .with_columns(pl.col("chance").map_elements(lambda v: f"{v:.3f}", return_dtype=pl.String))
        .pivot(on="column", index="label", values="chance")
        .rename({"label": "model"})
        .with_columns(source=pl.lit("chance level"), paradigm=pl.lit(None, pl.String))
        if chance is not None
        else _wide.head(0)
    )
    headline = pl.concat(
        [
            _paper_rows.head(_cut),
            _ours.filter(_is_bird),
            _paper_rows.slice(_cut),
            _ours.filter(~_is_bird),
            _chance_rows,
        ],
        how="diagonal_relaxed",
    ).select(_wide.columns)
    mo.vstack(
        [
            mo.md(
                "## 1. Headline table\n\nThe paper's headline table, avexlab's BirdNET row right under the "
                "paper's, then the grid's cells and twins (paradigm `random-init`) and the live encoders in "
                "the same columns: estimate `[95% interval]`. The last rows are the chance levels of "
                "avexlab's test sets (a predictor that gives every clip the same output)."
            ),
            mo.ui.table(headline, selection=None, page_size=40),
        ]
    )
    return (headline,)


@app.cell
def _(PAPER_COLUMNS, chance, grid_source, headline_long, interval_figure, mo, pl):
    _cols = [c[0] for c in PAPER_COLUMNS][:6]
    _points = headline_long.filter(
        pl.col("column").is_in(_cols) & (pl.col("paradigm") != "random-init").fill_null(True)
    )
    _twins = headline_long.filter(
        (pl.col("source") == grid_source)
        & (pl.col("paradigm") == "random-init")
        & pl.col("column").is_in(_cols)
    )
    mo.vstack(
        [
            mo.md(
                "Each panel one column: published encoders (no interval: the paper gives none), the grid's "
                "cells grouped by architecture with the random-init twins' interval as a **grey band**, the "
                "live encoders; error bars are 95% intervals, **dashed lines** the chance levels of "
                "avexlab's test sets (on the paper's data they differ)."
            ),
            mo.ui.plotly(
                interval_figure(
                    _points,
                    x="model",
                    color="source",
                    group="group",
                    chance=chance.filter(pl.col("column").is_in(_cols)) if chance is not None else None,
                    bands=_twins if _twins.height else None,
                    title="Headline columns: paper (real data) vs avexlab (synthetic world), 95% intervals",
                )
            ),
        ]
    )
    return


@app.cell
def _(
    chance,
    findings,
    findings_prose,
    grid_results,
    grid_source,
    headline_long,
    interval_figure,
    mo,
    paper_data_mix,
    pl,
    wide_intervals,
):
    _paper = paper_data_mix()
    _cols = [c for c in _paper.columns if c not in ("source", "model", "mix")]
    _mix_of = (
        grid_results.filter((pl.col("architecture") == "efficientnet") & (pl.col("paradigm") == "sl"))
        .select("encoder", "mix")
        .unique()
        if grid_results is not None and "architecture" in grid_results.columns
        else pl.DataFrame(schema={"encoder": pl.String, "mix": pl.String})
    )
    _ours = headline_long.filter(pl.col("source") == grid_source).join(
        _mix_of.rename({"encoder": "model"}), on="model", how="inner"
    )
    _theirs = _paper.unpivot(
        on=_cols, index=["source", "model", "mix"], variable_name="column", value_name="estimate"
    )
    data_mix_long = pl.concat(
        [
            _theirs.with_columns(group=pl.lit("paper"), ci_low=None, ci_high=None),
            _ours.filter(pl.col("column").is_in(_cols)),
        ],
        how="diagonal_relaxed",
    ).with_columns(pl.col("mix").alias("paradigm"))
    _twins = headline_long.filter(
        (pl.col("source") == grid_source)
        & (pl.col("model") == "efficientnet-random-init")
        & pl.col("column").is_in(_cols)
    ).with_columns(group=pl.lit("efficientnet"))
    _mix_findings = (
        findings.filter(pl.col("finding").is_in(["bio_beats_general", "all_not_below_bio", "all_beats_bio"]))
        if findings is not None
        else None
    )
    _table = wide_intervals(data_mix_long, ["source", "model", "mix"], _cols)
    if _mix_findings is not None and _mix_findings.height:
        _say = (
            ". What the grid says about the paper's data-mix claims (generated from the verdicts):\n\n"
            + findings_prose(_mix_findings)
        )
    elif _ours.height:
        _say = " (no per-item outcomes: no intervals, no verdicts)."
    else:
        _say = ": none loaded, so only the paper's rows appear."
    _blocks = [
        mo.md(
            "## 2. Data-mix ablation (EfficientNet-B0, SL)\n\n`general` = general audio only (AudioSet in the "
            "paper, the world's general-audio pool in avexlab), `bio` = animal sounds only, `all` = both. "
            "avexlab rows come from the grid (notebook 03)" + _say
        ),
        mo.ui.table(_table, selection=None),
    ]
    if _ours.height:
        _blocks.append(
            mo.ui.plotly(
                interval_figure(
                    data_mix_long,
                    x="model",
                    color="source",
                    group="group",
                    chance=chance.filter(pl.col("column").is_in(_cols) & pl.col("label").str.contains("grid"))
                    if chance is not None
                    else None,
                    bands=_twins if _twins.height else None,
                    title="Data mix: paper (real data) vs avexlab grid (synthetic world), 95% intervals",
                )
            )
        )
    mo.vstack(_blocks)
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
                "where). Those present are evaluated below with the live encoders."
            ),
            mo.ui.table(
                checks.select("name", "benchmark", "task_family", "ok", "n_clips", "problems"), selection=None
            ),
        ]
    )
    return


@app.cell
def _(
    REAL_SOURCE,
    cs,
    data_root,
    evaluate_suite,
    live_spec,
    mo,
    paper_headline,
    paper_suites,
    paper_table,
    pl,
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
        _frames.append(evaluate_suite(_spec, _suite, live_spec.replace(max_clips_per_split=None)))
    _real = paper_table(pl.concat(_frames)).with_columns(pl.lit(REAL_SOURCE).alias("source"))
    mo.ui.table(side_by_side(paper_headline(), _real).with_columns(cs.float().round(3)), selection=None)
    return


if __name__ == "__main__":
    app.run()
