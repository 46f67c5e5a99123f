"""Presets and knobs: sizes the issue asks for, knob validation, round trips, URIs that carry knobs."""

from __future__ import annotations

import pytest

from avexlab.errors import ConfigError
from avexlab.synth import KNOBS, PRESETS, SynthConfig, World, resolve_config
from avexlab.synth.world import _decode_overrides, _encode_overrides


def test_quick_preset_has_forty_species_in_six_groups() -> None:
    w = World(PRESETS["quick"], 0)
    tax = w.taxonomy
    assert tax.height >= 40
    assert tax["taxon_group"].n_unique() >= 5
    assert tax["species"].n_unique() == tax.height  # binomials are unique
    assert all(len(name.split()) == 2 and name.split()[0][0].isupper() for name in tax["species"])
    assert tax["above_8k"].any() and not tax["above_8k"].all()


def test_congeners_share_call_kinds() -> None:
    w = World(PRESETS["quick"], 0)
    by_genus = {}
    for sp in w.species:
        by_genus.setdefault(sp.genus, []).append(tuple(ct.kind for ct in sp.call_types))
    assert any(len(v) > 1 for v in by_genus.values())
    for kinds in by_genus.values():
        assert len(set(kinds)) == 1  # same genus, same repertoire structure: the hard pairs


@pytest.mark.parametrize(
    "override",
    [
        {"sample_rate": 22050},
        {"snr_db": (10.0, 0.0)},
        {"overlap": 1.5},
        {"background": ("wind", "traffic")},
        {"unseen_species": 0.95},
        {"species_per_group": 3},  # a size, not a knob
        {"snr_dB": (0.0, 1.0)},  # a misspelling
    ],
)
def test_bad_knobs_are_refused_with_the_expected_value(override: dict) -> None:
    with pytest.raises(ConfigError, match="expected"):
        resolve_config("smoke", **override)


def test_unknown_preset_names_the_presets() -> None:
    with pytest.raises(ConfigError, match="quick"):
        resolve_config("huge")


def test_scalar_range_knob_becomes_degenerate_range_and_round_trips() -> None:
    cfg = resolve_config("smoke", snr_db=3, rt60_s=[0.2, 0.9], sample_rate=32000, unseen_sessions=False)
    assert cfg.snr_db == (3.0, 3.0) and cfg.rt60_s == (0.2, 0.9)
    assert SynthConfig.from_dict(cfg.to_dict()) == cfg
    over = cfg.knob_overrides()
    assert set(over) == {"snr_db", "rt60_s", "sample_rate", "unseen_sessions"}
    assert resolve_config("smoke", **_decode_overrides(_encode_overrides(cfg))) == cfg
    assert set(over) <= set(KNOBS)


def test_default_world_paths_carry_no_query_and_knobbed_ones_do() -> None:
    plain = World(PRESETS["smoke"], 3)
    knobbed = World(resolve_config("smoke", background=("wind",)), 3)
    p0 = plain.suites["syn-beans-clf"].manifest["path"][0]
    p1 = knobbed.suites["syn-beans-clf"].manifest["path"][0]
    assert p0.startswith("synth://smoke/3/") and "?" not in p0
    assert p1.startswith(p0 + "?") and "background=wind" in p1
