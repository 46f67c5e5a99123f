"""Reusing a rendered world folder: only when it holds exactly the world asked for (preset, seed AND config).

The demo, training and the grid all reopen a world folder when it is already rendered. A folder written
with knob overrides, or by an avexlab whose preset had other sizes, carries the same preset name; reusing
it would silently train and evaluate on another world. So would a folder rendered by an avexlab whose
catalogue or renderers differ (another ``WORLD_VERSION``), even under the very same config."""

from __future__ import annotations

import json

import pytest

from avexlab.errors import ConfigError
from avexlab.experiments import open_world
from avexlab.synth import WORLD_VERSION, World, open_or_render_world, render_world


def _write_some(world: World, folder) -> None:
    keys = [next(k for k in world.items if k.startswith(p)) for p in ("focal/", "indiv/", "general/")]
    world.write(folder, keys=keys, audio_format="wav")


def test_the_same_world_is_reused_untouched(smoke: World, tmp_path) -> None:
    _write_some(smoke, tmp_path)
    before = (tmp_path / "world.json").read_bytes()
    said: list[str] = []
    w = open_or_render_world("smoke", 0, tmp_path, echo=said.append)
    assert w.root == tmp_path and w.config == smoke.config
    assert said == [f"reusing the world rendered in {tmp_path}"]
    assert (tmp_path / "world.json").read_bytes() == before
    assert open_world("smoke", 0, tmp_path).config == smoke.config


@pytest.mark.parametrize("opener", [open_or_render_world, open_world], ids=["synth", "experiments"])
def test_a_knobbed_world_under_the_preset_name_is_refused(opener, tmp_path) -> None:
    _write_some(render_world("smoke", 0, rt60_s=2.0), tmp_path)
    before = sorted(p.name for p in tmp_path.rglob("*"))
    with pytest.raises(ConfigError) as e:
        opener("smoke", 0, tmp_path)
    msg = str(e.value)
    assert str(tmp_path) in msg and "rt60_s: [2.0, 2.0] there" in msg
    assert "another folder" in msg
    assert sorted(p.name for p in tmp_path.rglob("*")) == before  # nothing re-rendered or removed


def test_a_world_from_an_older_preset_definition_is_refused(smoke: World, tmp_path) -> None:
    _write_some(smoke, tmp_path)
    meta = json.loads((tmp_path / "world.json").read_text())
    want = meta["config"]["individual_clips"]
    meta["config"]["individual_clips"] = want + 3  # what a preset resized by a later version looks like
    (tmp_path / "world.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match=rf"individual_clips: {want + 3} there, {want} in the preset"):
        open_world("smoke", 0, tmp_path)


def test_another_preset_or_seed_is_refused(smoke: World, tmp_path) -> None:
    _write_some(smoke, tmp_path)
    with pytest.raises(ConfigError, match="preset 'smoke', seed 0"):
        open_or_render_world("smoke", 1, tmp_path)
    with pytest.raises(ConfigError, match="the world of preset 'quick', seed 0"):
        open_world("quick", 0, tmp_path)


def test_world_json_records_the_world_version(smoke: World, tmp_path) -> None:
    _write_some(smoke, tmp_path)
    assert json.loads((tmp_path / "world.json").read_text())["world_version"] == WORLD_VERSION >= 2
    assert World.open(tmp_path).meta["world_version"] == WORLD_VERSION


@pytest.mark.parametrize(
    "recorded", [None, WORLD_VERSION - 1, WORLD_VERSION + 1], ids=["v1-no-key", "older", "newer"]
)
@pytest.mark.parametrize(
    "opener",
    [open_or_render_world, open_world, lambda preset, seed, folder: World.open(folder)],
    ids=["synth", "experiments", "World.open"],
)
def test_a_world_of_another_version_is_refused_untouched(smoke: World, tmp_path, opener, recorded) -> None:
    _write_some(smoke, tmp_path)
    meta = json.loads((tmp_path / "world.json").read_text())
    if recorded is None:
        del meta["world_version"]  # what every folder rendered before the version was recorded looks like
    else:
        meta["world_version"] = recorded
    (tmp_path / "world.json").write_text(json.dumps(meta))
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    with pytest.raises(ConfigError) as e:
        opener("smoke", 0, tmp_path)
    msg = str(e.value)
    found = 1 if recorded is None else recorded
    assert f"expected a world of version {WORLD_VERSION}" in msg and f"found version {found}" in msg
    assert f"Delete {tmp_path} and render it again (avexlab synth --preset smoke --seed 0" in msg
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
