"""The synthetic world's configuration: one frozen dataclass holding the sizes (set by the preset) and the
shift knobs (what an OOD study varies). Presets are named instances composed in code.

Every range is ``(low, high)`` in the unit its name says (dB, metres, seconds, Hz). A scalar knob in a
shift sweep is written as a degenerate range ``(v, v)``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from avexlab.errors import ConfigError, expected_found

TAXON_GROUPS: tuple[str, ...] = ("songbirds", "owls_doves", "frogs", "insects", "cetaceans", "bats")
"""Taxon groups with distinct call physics. Bats call above 8 kHz (echolocation), so they are only partly
audible at 16 kHz; some cetacean whistles also reach above 8 kHz."""

TERRESTRIAL_GROUPS: tuple[str, ...] = ("songbirds", "owls_doves", "frogs", "insects", "bats")
"""Groups that sing in the (terrestrial) soundscapes."""

BACKGROUNDS: tuple[str, ...] = ("wind", "rain", "stream", "insect_chorus")
"""Background sound types a soundscape or focal session can mix (a pink-noise floor is always present)."""

SAMPLE_RATES: tuple[int, ...] = (16000, 32000, 48000)

KNOBS: tuple[str, ...] = (
    "sample_rate",
    "snr_db",
    "focal_snr_db",
    "background",
    "background_level_db",
    "distance_m",
    "rt60_s",
    "overlap",
    "recorder_response_db",
    "unseen_species",
    "unseen_individuals",
    "unseen_sessions",
)
"""The shift knobs: change any of them with ``render_world(..., knob=value)``."""

SWEEP_KNOBS: tuple[str, ...] = ("snr_db", "overlap", "rt60_s", "distance_m")
"""Knobs a shift sweep varies while keeping every soundscape event (species, individual, call) the same."""


@dataclass(frozen=True)
class SynthConfig:
    """Sizes and shift knobs of one synthetic world. Build it with :func:`resolve_config`.

    Sizes (per preset):
        species_per_group, genera_per_group: taxonomy size; species of one genus sound alike (hard pairs).
        call_types_per_species: repertoire size. individuals_per_species: individuals with stable voices.
        focal_per_species: focal recordings per species in ``syn-beans-clf`` (split 60/20/20).
        pool_focal_per_species, general_per_class: clips per species / class in the training pools.
        individual_species, individual_sessions, individual_clips: ``syn-individual`` datasets, recording
            sessions per dataset (the last is the test session), clips per individual per session.
        repertoire_species, repertoire_clips: ``syn-repertoire`` datasets and clips per call type.
        det_scenes (train, val, test), birdset_scenes: soundscapes; scene_duration_s each.
        events_per_minute: calls per minute in a soundscape; community_size: species per soundscape.
        clip_s: focal clip and soundscape window length, seconds.

    Knobs (see ``KNOBS``):
        sample_rate: Hz, one of 16000/32000/48000. Calls above ``0.45 * sample_rate`` are not rendered.
        snr_db: soundscape call SNR at 10 m against the scene background, dB (uniform in the range).
        focal_snr_db: focal recording SNR, dB.
        background: background types mixed in soundscapes and focal sessions (subset of ``BACKGROUNDS``).
        background_level_db: soundscape background level relative to the default, dB.
        distance_m: soundscape caller distance, metres (log-uniform); spreading loss re 10 m and
            frequency-dependent absorption (high frequencies fade first).
        rt60_s: soundscape reverberation time, seconds (focal recordings use a quarter of it).
        overlap: 0..1, how much soundscape calls bunch together in time (0 = spread, 1 = in choruses).
        recorder_response_db: strength of each recording session's microphone/recorder colouring, dB.
        unseen_species: fraction of each group's species that never appear in the training pools.
        unseen_individuals: fraction of each species' individuals that never appear in the training pools.
        unseen_sessions: if True, ``syn-individual`` tests on a recording session absent from training.
    """

    preset: str = "smoke"
    # sizes
    species_per_group: int = 4
    genera_per_group: int = 2
    call_types_per_species: int = 3
    individuals_per_species: int = 4
    focal_per_species: int = 10
    pool_focal_per_species: int = 3
    general_per_class: int = 1
    individual_species: int = 2
    individual_sessions: int = 3
    individual_clips: int = 2
    repertoire_species: int = 2
    repertoire_clips: int = 6
    det_scenes: tuple[int, int, int] = (2, 1, 1)
    birdset_scenes: int = 1
    scene_duration_s: float = 30.0
    events_per_minute: float = 30.0
    community_size: int = 5
    clip_s: float = 5.0
    # knobs
    sample_rate: int = 16000
    snr_db: tuple[float, float] = (0.0, 18.0)
    focal_snr_db: tuple[float, float] = (5.0, 25.0)
    background: tuple[str, ...] = BACKGROUNDS
    background_level_db: float = 0.0
    distance_m: tuple[float, float] = (5.0, 40.0)
    rt60_s: tuple[float, float] = (0.4, 1.6)
    overlap: float = 0.3
    recorder_response_db: float = 6.0
    unseen_species: float = 0.2
    unseen_individuals: float = 0.25
    unseen_sessions: bool = True

    def __post_init__(self) -> None:
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> SynthConfig:
        """Inverse of :meth:`to_dict` (unknown keys are errors)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(
                expected_found("synth config", f"keys among {sorted(names)}", str(unknown), "Remove them.")
            )
        kw = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kw)

    def knob_overrides(self) -> dict[str, Any]:
        """The knobs whose value differs from this config's preset (what a ``synth://`` URI must carry)."""
        base = PRESETS[self.preset]
        return {k: getattr(self, k) for k in KNOBS if getattr(self, k) != getattr(base, k)}


def _check_range(name: str, v: Any, lo: float, hi: float) -> None:
    ok = isinstance(v, tuple) and len(v) == 2 and all(isinstance(x, int | float) for x in v)
    if not ok or not (lo <= v[0] <= v[1] <= hi):
        raise ConfigError(
            expected_found(
                f"synth knob {name!r}",
                f"a (low, high) pair with {lo} <= low <= high <= {hi}",
                repr(v),
                "Fix the range.",
            )
        )


def _validate(c: SynthConfig) -> None:
    if c.sample_rate not in SAMPLE_RATES:
        raise ConfigError(
            expected_found(
                "synth knob 'sample_rate'", f"one of {SAMPLE_RATES} Hz", repr(c.sample_rate), "Pick one."
            )
        )
    _check_range("snr_db", c.snr_db, -40.0, 60.0)
    _check_range("focal_snr_db", c.focal_snr_db, -40.0, 60.0)
    _check_range("distance_m", c.distance_m, 1.0, 1000.0)
    _check_range("rt60_s", c.rt60_s, 0.0, 5.0)
    bad = [b for b in c.background if b not in BACKGROUNDS]
    if bad or not isinstance(c.background, tuple):
        raise ConfigError(
            expected_found(
                "synth knob 'background'",
                f"a tuple of names among {BACKGROUNDS}",
                repr(c.background),
                "Fix the names.",
            )
        )
    for name in ("overlap", "unseen_species", "unseen_individuals"):
        v = getattr(c, name)
        if not (isinstance(v, int | float) and 0.0 <= v <= 1.0):
            raise ConfigError(
                expected_found(f"synth knob {name!r}", "a number in [0, 1]", repr(v), "Fix it.")
            )
    if c.unseen_species > 0.8:
        raise ConfigError(
            expected_found(
                "synth knob 'unseen_species'",
                "at most 0.8 (the pools need species)",
                repr(c.unseen_species),
                "Lower it.",
            )
        )
    if not 0.0 <= c.recorder_response_db <= 30.0:
        raise ConfigError(
            expected_found(
                "synth knob 'recorder_response_db'", "0..30 dB", repr(c.recorder_response_db), "Fix it."
            )
        )
    if c.genera_per_group < 1 or c.species_per_group < c.genera_per_group:
        raise ConfigError(
            expected_found(
                "synth sizes",
                "species_per_group >= genera_per_group >= 1",
                f"{c.species_per_group} species, {c.genera_per_group} genera",
                "Fix the preset.",
            )
        )
    if c.individual_sessions < 2 or c.individuals_per_species < 2 or c.focal_per_species < 3:
        raise ConfigError(
            expected_found(
                "synth sizes",
                "individual_sessions >= 2, individuals_per_species >= 2, focal_per_species >= 3",
                f"{c.individual_sessions}, {c.individuals_per_species}, {c.focal_per_species}",
                "Fix the preset.",
            )
        )
    if c.scene_duration_s < c.clip_s or len(c.det_scenes) != 3 or min(c.det_scenes) < 1:
        raise ConfigError(
            expected_found(
                "synth sizes",
                "scene_duration_s >= clip_s and det_scenes = (train, val, test) all >= 1",
                f"scene {c.scene_duration_s} s, clip {c.clip_s} s, det_scenes {c.det_scenes}",
                "Fix the preset.",
            )
        )


PRESETS: dict[str, SynthConfig] = {
    # tests: a few seconds to render. One clip per general class: the pool still holds all 65 classes
    # (65 clips against 54 in the bio pool) and the smoke world's render time stays where it was.
    "smoke": SynthConfig(preset="smoke"),
    # demos, workshops and the quick grid: 48 species, renders on a laptop (render times:
    # benchmarks/RESULTS.md). Sizes are set by rule before any run (data_manifests/synth_README.md,
    # "Sizes and the rules that set them"):
    "quick": SynthConfig(
        preset="quick",
        species_per_group=8,
        genera_per_group=4,
        call_types_per_species=6,
        individuals_per_species=8,
        # Classification column SE <= .02 at worst case p = .5: sqrt(.25 / n) <= .02 needs n >= 625 pooled
        # test clips, i.e. ceil(625 / 48 species) = 14 per species (13 gives 624). The 60/20/20 split
        # takes round(0.2 * n) test clips, and 68 is the smallest n with round(0.2 * n) = 14
        # (40 / 14 / 14): 672 test clips, SE .0193; 112 per dataset (SE .047 each).
        focal_per_species=68,
        pool_focal_per_species=12,
        # General pool twice the bio pool or more, with 65 classes: 36 seen species x 12 = 432 bio clips,
        # ceil(2 x 432 / 65) = 14 per class = 910 general clips (2.1x).
        general_per_class=14,
        individual_species=3,
        individual_sessions=4,
        # 12 clips per individual per session: 96 test clips per syn-indiv dataset. With 4 (32 test clips,
        # one clip = .031 accuracy) the Indiv. ID column moved by +-.05 between runs differing only in seed.
        # Every other suite, the pools and all their audio are identical for any value of this size.
        individual_clips=12,
        repertoire_species=4,
        repertoire_clips=30,
        # >= 30 test recordings for detection and for BirdSet (cross-recording retrieval needs many
        # recordings more than long ones): 30 each, 30 s long = 6 windows per recording, 180 test windows
        # per suite. Train/val keep the windows they had (192 / 48) in 32 / 8 recordings.
        det_scenes=(32, 8, 30),
        birdset_scenes=30,
        scene_duration_s=30.0,
        community_size=8,
    ),
    # GPU scale: never rendered in tests
    "paper": SynthConfig(
        preset="paper",
        species_per_group=40,
        genera_per_group=14,
        call_types_per_species=6,
        individuals_per_species=20,
        focal_per_species=120,
        pool_focal_per_species=400,
        # the quick preset's rule: 192 seen species x 400 = 76,800 bio clips; 2 x 76,800 / 65 -> 2,400
        general_per_class=2400,
        individual_species=6,
        individual_sessions=5,
        individual_clips=10,
        repertoire_species=6,
        repertoire_clips=150,
        det_scenes=(200, 40, 80),
        birdset_scenes=80,
        scene_duration_s=300.0,
        community_size=12,
    ),
}


def resolve_config(preset: str, **knob_overrides: Any) -> SynthConfig:
    """The preset's config with ``knob_overrides`` applied. Only knobs (``KNOBS``) may be overridden:
    sizes belong to the preset. Lists are accepted for ranges and become tuples."""
    if preset not in PRESETS:
        raise ConfigError(
            expected_found("synth preset", f"one of {sorted(PRESETS)}", repr(preset), "Pick one.")
        )
    unknown = sorted(set(knob_overrides) - set(KNOBS))
    if unknown:
        raise ConfigError(
            expected_found(
                "synth knob override", f"names among {list(KNOBS)}", str(unknown), "Check the spelling."
            )
        )
    kw = {}
    for k, v in knob_overrides.items():
        if isinstance(v, list):
            v = tuple(v)
        if k in ("snr_db", "focal_snr_db", "distance_m", "rt60_s") and isinstance(v, int | float):
            v = (float(v), float(v))
        if isinstance(v, tuple) and k != "background":
            v = tuple(float(x) for x in v)
        kw[k] = v
    return dataclasses.replace(PRESETS[preset], **kw)
