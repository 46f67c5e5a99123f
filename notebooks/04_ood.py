import marimo

__generated_with = "0.25.2"
app = marimo.App(width="medium", app_title="avexlab: out of distribution")


@app.cell
def _():
    import marimo as mo
    import polars as pl

    from avexlab.evaluate.suites import evaluate_suite, ood_report
    from avexlab.synth import SWEEP_KNOBS, render_shift_sweep, render_world
    from avexlab.viz import result_bars, result_lines
    from avexlab.viz.notebook import SCALES, default_scale, world_preset

    return (
        SCALES,
        SWEEP_KNOBS,
        default_scale,
        evaluate_suite,
        mo,
        ood_report,
        pl,
        render_shift_sweep,
        render_world,
        result_bars,
        result_lines,
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

    Encoders: comma-separated `NAME:SIZE` specs (untrained, seeded) or checkpoint paths, e.g. one per
    training paradigm from `avexlab grid`.
    """)
    return


@app.cell
def _(SCALES, SWEEP_KNOBS, default_scale, mo):
    scale = mo.ui.dropdown(list(SCALES), value=default_scale(), label="scale")
    seed = mo.ui.number(start=0, stop=10_000, value=0, label="seed")
    encoders = mo.ui.text(value="logmel:tiny", label="encoders (comma-separated)", full_width=True)
    knob = mo.ui.dropdown(list(SWEEP_KNOBS), value="snr_db", label="shift knob")
    mo.vstack([mo.hstack([scale, seed, knob], justify="start"), encoders])
    return encoders, knob, scale, seed


@app.cell
def _(encoders, scale):
    specs = [s.strip() for s in encoders.value.split(",") if s.strip()]
    # Probe epochs per scale (the paper's recipe at paper scale), and knob values swept per knob.
    probe_epochs = {"smoke": 5, "workshop": 15, "paper": 30}[scale.value]
    sweep_values = {
        "snr_db": [-10.0, 5.0, 20.0],
        "overlap": [0.0, 0.5, 1.0],
        "rt60_s": [0.2, 1.0, 2.5],
        "distance_m": [5.0, 20.0, 80.0],
    }
    return probe_epochs, specs, sweep_values


@app.cell
def _(evaluate_suite, mo, pl, probe_epochs, render_world, scale, seed, specs, world_preset):
    world = render_world(world_preset(scale.value), seed.value)
    _jobs = [(_spec, _suite) for _spec in specs for _suite in ("syn-beans-clf", "syn-birdset")]
    _frames = []
    for _spec, _suite in mo.status.progress_bar(_jobs, title="Evaluating focal and soundscape suites"):
        _frames.append(
            evaluate_suite(
                _spec, world.suites[_suite], probe_epochs=probe_epochs, seed=42, cache_dir=".cache/embeddings"
            )
        )
    results = pl.concat(_frames)
    return (results,)


@app.cell
def _(mo, ood_report, results):
    mo.vstack(
        [
            mo.md("## Focal vs soundscape\n\nMean over datasets; `gap = soundscape - focal`."),
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

    The detection suite (`syn-beans-det`): probes train on the base world's soundscapes; the test
    soundscapes are re-rendered at each knob value. Curves falling with the knob show what the encoder is
    sensitive to.
    """)
    return


@app.cell
def _(
    evaluate_suite,
    knob,
    mo,
    pl,
    probe_epochs,
    render_shift_sweep,
    scale,
    seed,
    specs,
    sweep_values,
    world_preset,
):
    _values = sweep_values[knob.value]
    sweep = render_shift_sweep(world_preset(scale.value), seed.value, knob.value, _values)
    _jobs = [(_spec, _v) for _spec in specs for _v in _values]
    _frames = []
    for _spec, _v in mo.status.progress_bar(_jobs, title=f"Evaluating the {knob.value} sweep"):
        _frames.append(
            evaluate_suite(
                _spec, sweep.suites[_v], probe_epochs=probe_epochs, seed=42, cache_dir=".cache/embeddings"
            ).with_columns(pl.lit(knob.value).alias("knob"), pl.lit(_v).alias("knob_value"))
        )
    sweep_results = pl.concat(_frames)
    return (sweep_results,)


@app.cell
def _(knob, mo, result_lines, sweep_results):
    mo.ui.plotly(
        result_lines(
            sweep_results, x="knob_value", color="encoder", facet="metric", title=f"Scores vs {knob.value}"
        )
    )
    return


if __name__ == "__main__":
    app.run()
