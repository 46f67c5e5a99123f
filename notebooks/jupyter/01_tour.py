# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # A tour of the synthetic world (JupyterLab twin of `notebooks/01_tour.py`)
#
# avexlab ships a deterministic bioacoustic world: a taxonomy of calling species in several taxon groups,
# each with a repertoire of call types and individuals with stable voices; **focal recordings** (one
# animal, high SNR) and **soundscapes** (long scenes with several callers and annotated events). The same
# `(preset, seed)` always renders the same audio.
#
# The scale comes from the environment variable `AVEXLAB_SCALE` (`smoke`, `workshop`, `paper`); change
# `scale` below to override it. Click a spectrogram to seek; the red line follows playback.

# %%
import ipywidgets as widgets
import polars as pl
from IPython.display import clear_output, display

from avexlab.synth import render_world
from avexlab.viz import SpectrogramPlayer, spectrogram_figure
from avexlab.viz.notebook import default_scale, world_preset

scale = default_scale()
seed = 0
world = render_world(world_preset(scale), seed)
print(world)
world.summary()

# %% [markdown]
# ## Taxa, species and their focal recordings

# %%
groups = world.taxonomy["taxon_group"].unique(maintain_order=True).to_list()
group = widgets.Dropdown(options=groups, value=groups[0], description="taxon group")
species = widgets.Dropdown(description="species")
recording = widgets.Dropdown(description="recording")
focal_out = widgets.Output()
shown = {}  # what the callbacks displayed last (the checks below read it)


def on_group(_change=None):
    names = world.taxonomy.filter(pl.col("taxon_group") == group.value)["species"].to_list()
    species.options, species.value = names, names[0]


def on_species(_change=None):
    clips = world.suites["syn-beans-clf"].manifest.filter(pl.col("species") == species.value)
    recording.options, recording.value = clips["clip_id"].to_list(), clips["clip_id"][0]


def on_recording(_change=None):
    with focal_out:
        clear_output(wait=True)
        if recording.value is None:
            return
        wave, sr = world.load(recording.value)
        shown["focal"] = SpectrogramPlayer.from_waveform(wave, sr, height_px=160)
        display(shown["focal"], spectrogram_figure(wave, sr, title=recording.value))


group.observe(on_group, "value")
species.observe(on_species, "value")
recording.observe(on_recording, "value")
on_group()
display(widgets.VBox([widgets.HBox([group, species, recording]), focal_out]))

# %%
# Choosing a recording shows its player (a 5 s clip at the world's sample rate).
assert recording.value is not None
assert shown["focal"].duration_s == world.config.clip_s

# %% [markdown]
# ## Soundscapes and shift knobs
#
# White boxes are the annotated events (onset, offset, frequency band; labelled by species). The sliders
# re-render the same soundscape (same calls and background) with another call SNR, overlap and
# reverberation time: the knobs of the OOD study.

# %%
scenes = world.events["recording_id"].unique(maintain_order=True).to_list()
scene = widgets.Dropdown(options=scenes, value=scenes[0], description="soundscape")
snr = widgets.IntSlider(value=5, min=-15, max=25, description="SNR (dB)", continuous_update=False)
overlap = widgets.FloatSlider(
    value=0.3, min=0.0, max=1.0, step=0.1, description="overlap", continuous_update=False
)
rt60 = widgets.FloatSlider(
    value=0.8, min=0.1, max=3.0, step=0.1, description="RT60 (s)", continuous_update=False
)
scene_out = widgets.Output()


def on_scene(_change=None):
    shifted = render_world(
        world_preset(scale), seed, snr_db=snr.value, overlap=overlap.value, rt60_s=rt60.value
    )
    wave, sr = shifted.load(scene.value)
    events = shifted.events.filter(pl.col("recording_id") == scene.value)
    shown["scene"] = SpectrogramPlayer.from_waveform(wave, sr, events, height_px=220)
    with scene_out:
        clear_output(wait=True)
        print(f"{events.height} events in {len(wave) / sr:.0f} s")
        display(shown["scene"], spectrogram_figure(wave, sr, events, title=scene.value, height=360))


for control in (scene, snr, overlap, rt60):
    control.observe(on_scene, "value")
on_scene()
display(widgets.VBox([scene, widgets.HBox([snr, overlap, rt60]), scene_out]))

# %%
# Moving a knob re-renders the scene: the same calls (one box per event), quieter audio.
before = shown["scene"]
snr.value = -5
assert shown["scene"] is not before and len(shown["scene"].boxes) == len(before.boxes) > 0
assert shown["scene"].wav != before.wav
