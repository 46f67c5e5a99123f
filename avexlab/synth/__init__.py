"""The synthetic bioacoustic world: a deterministic taxonomy of calling species, focal recordings,
soundscapes with event annotations, a general-audio pool, evaluation suites and training pools, all
rendered bit-identically from ``(preset, seed, knobs)``.

Entry points: :func:`render_world` (the CLI's ``avexlab synth``), :meth:`World.summary`,
:meth:`World.open`, :func:`render_shift_sweep`. Importing this package registers the ``synth://`` URI
scheme with :func:`avexlab.audio.io.register_uri_scheme`, so manifests of in-memory worlds load anywhere.
"""

from avexlab.audio.io import register_uri_scheme
from avexlab.synth.config import KNOBS, PRESETS, SWEEP_KNOBS, TAXON_GROUPS, SynthConfig, resolve_config
from avexlab.synth.general import GENERAL_CLASSES, general_label_at, general_ontology
from avexlab.synth.world import (
    POOL_NAMES,
    SUITE_NAMES,
    WORLD_VERSION,
    ShiftSweep,
    Suite,
    World,
    load_uri,
    open_or_render_world,
    pool_overlap,
    render_shift_sweep,
    render_world,
)

register_uri_scheme("synth", load_uri, replace=True)

__all__ = [
    "GENERAL_CLASSES",
    "KNOBS",
    "POOL_NAMES",
    "PRESETS",
    "SUITE_NAMES",
    "SWEEP_KNOBS",
    "TAXON_GROUPS",
    "WORLD_VERSION",
    "ShiftSweep",
    "Suite",
    "SynthConfig",
    "World",
    "general_label_at",
    "general_ontology",
    "load_uri",
    "open_or_render_world",
    "pool_overlap",
    "render_shift_sweep",
    "render_world",
    "resolve_config",
]
