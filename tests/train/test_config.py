"""Run config: strict keys, typed overrides, YAML round trip, recipe consistency, hash semantics."""

from __future__ import annotations

from pathlib import Path

import pytest

from avexlab.config import RunConfig, config_hash, load_config, save_config
from avexlab.errors import ConfigError


def test_unknown_key_names_it_and_the_allowed_keys(tmp_path: Path) -> None:
    p = tmp_path / "run.yaml"
    p.write_text("optim:\n  lr: 0.001\n  lrr: 2\n")
    with pytest.raises(ConfigError, match=r"unknown key 'optim.lrr': expected one of \[.*'lr'.*\]"):
        load_config(p)
    with pytest.raises(ConfigError, match="unknown key 'modle'"):
        load_config(None, ["modle.name=beats"])


def test_overrides_are_typed_and_checked() -> None:
    cfg = load_config(None, ["optim.lr=1e-3", "optim.betas=[0.9, 0.95]", "augment.noise.snr_db=[-5, 20]"])
    assert (
        cfg.optim.lr == 1e-3 and cfg.optim.betas == (0.9, 0.95) and cfg.augment.noise.snr_db == (-5.0, 20.0)
    )
    with pytest.raises(ConfigError, match="optim.batch_size"):
        load_config(None, ["optim.batch_size=many"])
    with pytest.raises(ConfigError, match="expected 'key.sub=value'"):
        load_config(None, ["optim.lr"])
    with pytest.raises(ConfigError, match="low <= high"):
        load_config(None, ["augment.noise.snr_db=[20, -5]"])


def test_yaml_round_trip_and_hash(tmp_path: Path) -> None:
    cfg = load_config(None, ["model.name=beats", "optim.steps=7", "runtime.out_dir=/tmp/x"])
    save_config(cfg, tmp_path / "config.yaml")
    back = load_config(tmp_path / "config.yaml")
    assert back == cfg and config_hash(back) == config_hash(cfg)
    moved = load_config(tmp_path / "config.yaml", ["runtime.out_dir=/elsewhere", "runtime.progress=false"])
    assert config_hash(moved) == config_hash(cfg)  # where a run writes does not change what it computes
    assert config_hash(load_config(tmp_path / "config.yaml", ["optim.lr=1e-2"])) != config_hash(cfg)


def test_recipe_consistency_and_defaults_are_recorded() -> None:
    with pytest.raises(ConfigError, match="recipe 'ssl' needs objective.kind"):
        load_config(None, ["recipe=ssl"])
    with pytest.raises(ConfigError, match="set model.init_checkpoint"):
        load_config(None, ["recipe=sl-ssl"])
    with pytest.raises(ConfigError, match="at most one of epochs and steps"):
        load_config(None, ["optim.epochs=2", "optim.steps=10"])
    with pytest.raises(ConfigError, match="two sources"):
        load_config(None, ["data.world_preset=smoke", "data.manifests=[a.parquet]"])
    cfg = RunConfig()
    assert cfg.optim.epochs == 1 and cfg.data.world_preset == "smoke"
