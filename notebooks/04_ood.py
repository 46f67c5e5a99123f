import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="avexlab: out of distribution")


@app.cell
def _():
    import os
    from pathlib import Path

    import marimo as mo
    import polars as pl

    from avexlab.evaluate.embed import resolve_encoder
    from avexlab.evaluate.spec import EvalSpec
    from avexlab.evaluate.suites import evaluate_suite
    from avexlab.evaluate.sweeps import evaluate_shift_sweep, sweep_ood_report
    from avexlab.evaluate.tables import ood_report
    from avexlab.synth import SWEEP_KNOBS, render_shift_sweep, render_world
    from avexlab.viz import result_bars, result_lines
    from avexlab.viz.notebook import SCALES, default_scale, world_preset

    return (
        EvalSpec,
        Path,
        SCALES,
        SWEEP_KNOBS,
        default_scale,
        evaluate_shift_sweep,
        evaluate_suite,
        mo,
        ood_report,
        os,
        pl,
        render_shift_sweep,
        render_world,
        resolve_encoder,
        result_bars,
        result_lines,
        sweep_ood_report,
        world_preset,
    )


@app.cell
def _(mo):
    mo.md(r"""
    # Out of distribution: focal recordings vs soundscapes

    Encoders are mostly trained and probed on **focal** recordings (one animal, close, high SNR) but
    deployed on **soundscapes** (distant callers, overlap, background, reverberation). The paper measures
    the drop on real data; the synthetic world can also *control* the shift.

    1. The same encoders on `syn-beans-clf` (focal test clips) and `syn-birdset` (probes trained on focal
       clips, tested on soundscape windows): retrieval and clustering scores side by side, and the gap
       (`soundscape - focal`, negative = worse under the shift).
    2. Gap curves: the detection suite's test soundscapes re-rendered with one knob changed (same calls,
       same background), scored at each value.

    Encoders: comma-separated `NAME:SIZE` specs (untrained, seeded), checkpoint paths (e.g. one per
    training paradigm from `avexlab grid`) or `birdnet` (BirdNET V2.4, the released bird model, run frozen:
    it takes 48 kHz audio, so clips are resampled, and it embeds its 3 s windows several times slower than
    the tiny networks; set a cap on clips per split at `workshop` scale).
    """)
    return


@app.cell
def _(SCALES, SWEEP_KNOBS, default_scale, mo):
    scale = mo.ui.dropdown(list(SCALES), value=default_scale(), label="scale")
    seed = mo.ui.number(start=0, stop=10_000, value=0, label="seed")
    encoders = mo.ui.text(
        value="logmel:tiny",
        label="encoders (comma-separated NAME:SIZE, checkpoint paths, or birdnet)",
        full_width=True,
    )
    knob = mo.ui.dropdown(list(SWEEP_KNOBS), value="snr_db", label="shift knob")
    cap = mo.ui.number(start=0, stop=100_000, value=0, label="max clips per split (0 = every clip)")
    mo.vstack([mo.hstack([scale, seed, knob, cap], justify="start"), encoders])
    return cap, encoders, knob, scale, seed


@app.cell
def _(EvalSpec, Path, cap, encoders, mo, os, resolve_encoder, scale):
    specs = [s.strip() for s in encoders.value.split(",") if s.strip()]
    # Each spec resolved once: the same weights for every suite and knob value.
    models = {_spec: resolve_encoder(_spec) for _spec in specs}
    # Probe epochs per scale (the paper's recipe at paper scale), and knob values swept per knob.
    probe_epochs = {"smoke": 5, "workshop": 15, "paper": 30}[scale.value]
    # Clips evaluated per split of each dataset: every clip by default (at workshop scale the whole
    # notebook takes about a minute on 2 CPU cores); a cap draws a seeded, label-stratified subset, for
    # many encoders on a small machine.
    max_clips = int(cap.value) or None
    # Embeddings are cached per encoder and manifest in the user's cache: reruns skip the encoder.
    cache_dir = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "avexlab" / "embeddings"
    # One evaluation spec for every suite and knob value (probe seed 42, the paper's).
    eval_spec = EvalSpec(probe_epochs=probe_epochs, cache_dir=cache_dir, max_clips_per_split=max_clips)
    sweep_values = {
        "snr_db": [-10.0, 5.0, 20.0],
        "overlap": [0.0, 0.5, 1.0],
        "rt60_s": [0.2, 1.0, 2.5],
        "distance_m": [5.0, 20.0, 80.0],
    }
    mo.md(
        "**Evaluated:** every clip of each split of each suite."
        if max_clips is None
        else f"**Evaluated subset:** at most **{max_clips} clips per split** (train, val, test) of each "
        "dataset, drawn label-stratified with seed 42 (the same clips at every SNR, RT60 and distance "
        "value). Probes train on fewer clips than the full suites, so these scores are not comparable to "
        "full-suite numbers; the `n` column counts the test clips scored."
    )
    return eval_spec, models, sweep_values


@app.cell
def _(
    eval_spec,
    evaluate_suite,
    mo,
    models,
    pl,
    render_world,
    scale,
    seed,
    world_preset,
):
    world = render_world(world_preset(scale.value), seed.value)
    _jobs = [(_spec, _suite) for _spec in models for _suite in ("syn-beans-clf", "syn-birdset")]
    _frames = []
    for _spec, _suite in mo.status.progress_bar(_jobs, title="Evaluating focal and soundscape suites"):
        _frames.append(evaluate_suite(models[_spec], world.suites[_suite], eval_spec))
    results = pl.concat(_frames)
    return (results,)


@app.cell
def _(mo, ood_report, results):
    mo.vstack(
        [
            mo.md(
                "## Focal vs soundscape\n\nMean over datasets; `gap = soundscape - focal`. Soundscape test "
                "windows are cut from a few long recordings: a window's neighbours in its own recording share "
                "its background and species, so the paper's `roc_auc` / `precision_at_1` reward recognising "
                "the recording. The `*_cross_recording` rows leave the query's own recording out of its "
                "ranking (focal test clips are one file each, so both agree there): read the gap there. They are "
                "absent when a test split holds one recording (the smoke world's)."
            ),
            mo.ui.table(ood_report(results), selection=None),
        ]
    )
    return


@app.cell
def _(mo, results, result_bars):
    mo.ui.plotly(
        result_bars(
            results,
            x="encoder",
            color="domain",
            facet="metric",
            title="Focal vs soundscape test sets, per metric",
        )
    )
    return


@app.cell
def _(mo):
    mo.md(r"""
    ## Gap curves over a shift knob

    The detection suite (`syn-beans-det`) rendered with one knob set to each value (same calls, same
    background); probes train and test at that value. Curves falling with the knob show what the encoder
    is sensitive to; the table gives the focal -> soundscape gap at each value (focal = `syn-beans-clf`).
    """)
    return


@app.cell
def _(
    eval_spec,
    evaluate_shift_sweep,
    knob,
    mo,
    models,
    pl,
    render_shift_sweep,
    scale,
    seed,
    sweep_values,
    world_preset,
):
    sweep = render_shift_sweep(world_preset(scale.value), seed.value, knob.value, sweep_values[knob.value])
    sweep_results = pl.concat(
        [
            evaluate_shift_sweep(models[_spec], sweep, eval_spec)
            for _spec in mo.status.progress_bar(list(models), title=f"Evaluating the {knob.value} sweep")
        ]
    )
    return (sweep_results,)


@app.cell
def _(knob, mo, result_lines, results, sweep_ood_report, sweep_results):
    mo.vstack(
        [
            mo.ui.plotly(
                result_lines(
                    sweep_results,
                    x="knob_value",
                    color="encoder",
                    facet="metric",
                    title=f"Scores vs {knob.value}",
                )
            ),
            mo.md(
                f"Gap to focal at each `{knob.value}` value (`gap = soundscape - focal`). Focal is "
                "`syn-beans-clf`, another task with other classes: read how the gap moves along the "
                "knob, not its level."
            ),
            mo.ui.table(sweep_ood_report(results, sweep_results), selection=None),
        ]
    )
    return


if __name__ == "__main__":
    app.run()
