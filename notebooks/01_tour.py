import marimo

__generated_with = "0.25.2"
app = marimo.App(
    width="medium",
    app_title="avexlab: a tour of the synthetic world",
)


@app.cell
def _():
    import marimo as mo
    import polars as pl

    from avexlab.synth import render_world
    from avexlab.viz import SpectrogramPlayer, spectrogram_figure
    from avexlab.viz.notebook import SCALES, default_scale, world_preset

    return (
        SCALES,
        SpectrogramPlayer,
        default_scale,
        mo,
        pl,
        render_world,
        spectrogram_figure,
        world_preset,
    )


@app.cell
def _(mo):
    mo.md(r"""
    # A tour of the synthetic world

    avexlab ships a deterministic bioacoustic world so that every experiment of the AVEX study can run on
    a laptop, and so that distribution shift can be *controlled*. It has a taxonomy of calling species in
    several taxon groups (songbirds, owls and doves, frogs, insects, cetaceans, bats), each species with a
    repertoire of call types and individuals with stable voices; **focal recordings** (one animal, high
    SNR) and **soundscapes** (long scenes with wind, rain, streams and several callers, annotated events).

    The same `(preset, seed)` always renders the same audio. Pick a scale: `smoke` renders in a second,
    `workshop` is the `quick` preset (about 50 species), `paper` is the large one.
    """)
    return


@app.cell
def _(SCALES, default_scale, mo):
    scale = mo.ui.dropdown(list(SCALES), value=default_scale(), label="scale")
    seed = mo.ui.number(start=0, stop=10_000, value=0, label="seed")
    mo.hstack([scale, seed], justify="start")
    return scale, seed


@app.cell
def _(mo, render_world, scale, seed, world_preset):
    with mo.status.spinner(title=f"Building the {scale.value} world ..."):
        world = render_world(world_preset(scale.value), seed.value)
    mo.vstack(
        [
            mo.md(f"`{world!r}`. Every suite and training pool, with clips, classes and hours of audio:"),
            mo.ui.table(world.summary(), selection=None, page_size=8),
        ]
    )
    return (world,)


@app.cell
def _(mo):
    mo.md(r"""
    ## Taxa and species

    Species of one genus sound alike (the hard pairs); `above_8k` marks species with energy above 8 kHz,
    which a 16 kHz model cannot hear; `unseen` species never appear in the training pools (an OOD knob).
    """)
    return


@app.cell
def _(mo, world):
    group = mo.ui.dropdown(
        world.taxonomy["taxon_group"].unique(maintain_order=True).to_list(),
        value=world.taxonomy["taxon_group"][0],
        label="taxon group",
    )
    group
    return (group,)


@app.cell
def _(group, mo, pl, world):
    in_group = world.taxonomy.filter(pl.col("taxon_group") == group.value)
    species = mo.ui.dropdown(in_group["species"].to_list(), value=in_group["species"][0], label="species")
    mo.vstack([mo.ui.table(in_group, selection=None, page_size=6), species])
    return (species,)


@app.cell
def _(mo):
    mo.md(r"""
    ## Focal recordings

    Five-second recordings of one animal (`syn-beans-clf`). Click the spectrogram to seek; the red line
    follows playback. The plotly view below has axes in seconds and Hz (mel-spaced) and can be zoomed.
    """)
    return


@app.cell
def _(mo, pl, species, world):
    focal = world.suites["syn-beans-clf"].manifest.filter(pl.col("species") == species.value)
    recording = mo.ui.dropdown(focal["clip_id"].to_list(), value=focal["clip_id"][0], label="recording")
    recording
    return (recording,)


@app.cell
def _(SpectrogramPlayer, mo, recording, spectrogram_figure, world):
    _wave, _sr = world.load(recording.value)
    mo.vstack(
        [
            mo.ui.anywidget(SpectrogramPlayer.from_waveform(_wave, _sr, height_px=160)),
            mo.ui.plotly(spectrogram_figure(_wave, _sr, title=recording.value)),
        ]
    )
    return


@app.cell
def _(mo):
    mo.md(r"""
    ## Calls: a repertoire

    `syn-repertoire` holds clips of one call type each, for a few species. One clip per call type:
    """)
    return


@app.cell
def _(mo, world):
    repertoire = mo.ui.dropdown(
        world.suites["syn-repertoire"].datasets,
        value=world.suites["syn-repertoire"].datasets[0],
        label="species",
    )
    repertoire
    return (repertoire,)


@app.cell
def _(SpectrogramPlayer, mo, repertoire, world):
    _calls = (
        world.suites["syn-repertoire"]
        .manifests[repertoire.value]
        .unique("call_type", keep="first", maintain_order=True)
    )
    mo.vstack(
        [
            mo.vstack(
                [
                    mo.md(f"**{_row['call_type']}** ({_row['species']}, {_row['individual']})"),
                    mo.ui.anywidget(
                        SpectrogramPlayer.from_waveform(*world.load(_row["clip_id"]), height_px=120)
                    ),
                ]
            )
            for _row in _calls.iter_rows(named=True)
        ]
    )
    return


@app.cell
def _(mo):
    mo.md(r"""
    ## Soundscapes

    Long scenes with several species at random times and distances. White boxes are the annotated events
    (onset, offset and frequency band, labelled by species); these annotations are the ground truth of
    the detection and BirdSet-style suites.
    """)
    return


@app.cell
def _(mo, world):
    scenes = world.events["recording_id"].unique(maintain_order=True).to_list()
    scene = mo.ui.dropdown(scenes, value=scenes[0], label="soundscape")
    scene
    return (scene,)


@app.cell
def _(SpectrogramPlayer, mo, pl, scene, spectrogram_figure, world):
    _wave, _sr = world.load(scene.value)
    _events = world.events.filter(pl.col("recording_id") == scene.value)
    mo.vstack(
        [
            mo.md(f"{_events.height} events in {len(_wave) / _sr:.0f} s"),
            mo.ui.anywidget(SpectrogramPlayer.from_waveform(_wave, _sr, _events, height_px=220)),
            mo.ui.plotly(spectrogram_figure(_wave, _sr, _events, title=scene.value, height=360)),
        ]
    )
    return


@app.cell
def _(mo):
    mo.md(r"""
    ## Shift knobs

    The same soundscape (same calls, same background) re-rendered with other conditions: call SNR,
    overlap (how much calls bunch into choruses; it moves onsets) and reverberation time. These are the
    knobs the OOD notebook sweeps.
    """)
    return


@app.cell
def _(mo):
    snr = mo.ui.slider(-15, 25, step=1, value=5, label="SNR (dB)", debounce=True, show_value=True)
    overlap = mo.ui.slider(0.0, 1.0, step=0.1, value=0.3, label="overlap", debounce=True, show_value=True)
    rt60 = mo.ui.slider(0.1, 3.0, step=0.1, value=0.8, label="RT60 (s)", debounce=True, show_value=True)
    mo.hstack([snr, overlap, rt60], justify="start")
    return overlap, rt60, snr


@app.cell
def _(
    SpectrogramPlayer,
    mo,
    overlap,
    pl,
    render_world,
    rt60,
    scale,
    scene,
    seed,
    snr,
    spectrogram_figure,
    world_preset,
):
    _shifted = render_world(
        world_preset(scale.value), seed.value, snr_db=snr.value, overlap=overlap.value, rt60_s=rt60.value
    )
    _wave, _sr = _shifted.load(scene.value)
    _events = _shifted.events.filter(pl.col("recording_id") == scene.value)
    mo.vstack(
        [
            mo.ui.anywidget(SpectrogramPlayer.from_waveform(_wave, _sr, _events, height_px=220)),
            mo.ui.plotly(
                spectrogram_figure(
                    _wave,
                    _sr,
                    _events,
                    title=f"SNR {snr.value} dB, overlap {overlap.value}, RT60 {rt60.value} s",
                    height=360,
                )
            ),
        ]
    )
    return


if __name__ == "__main__":
    app.run()
