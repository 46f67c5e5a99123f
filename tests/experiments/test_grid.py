"""The grid's cells: every architecture x mix x paradigm it can train, sl-ssl after (and from) its ssl run,
EfficientNet SL only; every cell a valid config before any training."""

from __future__ import annotations

from pathlib import Path

import pytest

from avexlab.errors import ConfigError
from avexlab.experiments.grid import GRID_PROFILES, GridProfile, grid_configs, profile_with_sets


def test_quick_grid_cells(tmp_path: Path) -> None:
    cfgs = grid_configs(GRID_PROFILES["quick"], tmp_path, seed=1)
    names = [Path(c.runtime.out_dir).name for c in cfgs]
    # efficientnet: 3 mixes x sl; beats, eat: 3 mixes x (ssl, sl, sl-ssl)
    assert len(cfgs) == 3 + 2 * 9 and len(set(names)) == len(names)
    assert not any(n.startswith("efficientnet") and not n.endswith("-sl") for n in names)
    for c in cfgs:
        assert c.runtime.seed == 1 and c.data.world_preset == "quick"
        if c.recipe == "sl-ssl":
            ssl = f"{c.model.name}-{c.data.mix}-ssl"
            assert Path(c.model.init_checkpoint).name == ssl and names.index(ssl) < names.index(
                Path(c.runtime.out_dir).name
            )
        if c.recipe == "ssl":
            assert c.objective.kind == {"beats": "beats_ssl", "eat": "eat_ssl"}[c.model.name]


def test_grid_overrides_and_bad_profiles(tmp_path: Path) -> None:
    prof = GridProfile(architectures=("beats",), mixes=("bio",), overrides={"augment.mixup.p": 0.0})
    cfgs = grid_configs(prof, tmp_path)
    assert all(c.augment.mixup.p == 0.0 for c in cfgs)
    # Per-architecture overrides win over the grid-wide ones, for that architecture only.
    prof = GridProfile(
        architectures=("efficientnet", "eat"),
        mixes=("bio",),
        steps=50,
        overrides={"optim.lr": 2e-3},
        arch_overrides={"efficientnet": {"optim.steps": 7, "optim.lr": 5e-4}},
    )
    by_name = {Path(c.runtime.out_dir).name: c for c in grid_configs(prof, tmp_path)}
    assert (by_name["efficientnet-bio-sl"].optim.steps, by_name["efficientnet-bio-sl"].optim.lr) == (7, 5e-4)
    assert (by_name["eat-bio-sl"].optim.steps, by_name["eat-bio-sl"].optim.lr) == (50, 2e-3)
    # ARCH/PARADIGM keys reach that architecture's cells of that paradigm only, after the ARCH keys.
    prof = GridProfile(
        architectures=("beats",),
        mixes=("bio",),
        steps=50,
        post_steps=20,
        arch_overrides={"beats": {"optim.lr": 2e-3}, "beats/ssl": {"optim.steps": 90, "optim.lr": 3e-3}},
    )
    by_name = {Path(c.runtime.out_dir).name: c for c in grid_configs(prof, tmp_path)}
    got = {n: (c.optim.steps, c.optim.lr) for n, c in by_name.items()}
    assert got == {"beats-bio-ssl": (90, 3e-3), "beats-bio-sl": (50, 2e-3), "beats-bio-sl-ssl": (20, 2e-3)}
    assert [prof.cell_steps("beats", p) for p in ("ssl", "sl", "sl-ssl")] == [90, 50, 20]
    for bad in ("beat", "beats/supervised", "beats/"):
        with pytest.raises(ConfigError, match="arch_overrides key"):
            grid_configs(GridProfile(arch_overrides={bad: {"optim.steps": 1}}), tmp_path)
    with pytest.raises(ConfigError, match="unknown key"):
        grid_configs(GridProfile(arch_overrides={"beats": {"optim.nope": 1}}), tmp_path)
    with pytest.raises(ConfigError, match="unknown key 'optim.nope'"):
        grid_configs(GridProfile(overrides={"optim.nope": 1}), tmp_path)
    with pytest.raises(ConfigError, match="needs 'ssl'"):
        grid_configs(GridProfile(paradigms=("sl", "sl-ssl")), tmp_path)


def test_smoke_grid_trains_evaluates_and_records_the_probe_recipe(tmp_path: Path) -> None:
    import json

    import polars as pl

    from avexlab.experiments.grid import grid
    from avexlab.synth import resolve_config

    kw = dict(out=tmp_path / "grid", world=tmp_path / "world", progress=False)
    kw.update(architectures=("efficientnet",), paradigms=("sl",), probe_recipe="paper", twin_seeds=2)
    with pytest.raises(ConfigError, match="twin_seeds"):  # refused before anything is rendered or trained
        grid("smoke", **{**kw, "twin_seeds": 0})
    assert not (tmp_path / "grid").exists() and not (tmp_path / "world").exists()
    out = grid("smoke", **kw)
    res = pl.read_parquet(out)
    assert set(res["paradigm"]) == {"random-init", "sl"}
    assert set(res["checkpoint"]) == {"random-init", str(tmp_path / "grid" / "efficientnet-all-sl")}
    # Two random-init twins (init seeds 0 and 1): different networks, so different scores somewhere,
    # and cells_vs_twins measures the cell against their mean and their spread.
    twins = res.filter(pl.col("checkpoint") == "random-init")
    assert set(twins["encoder"]) == {"efficientnet-random-init", "efficientnet-random-init-seed1"}
    by_twin = twins.pivot("encoder", index=["dataset", "method", "metric"], values="value")
    assert (by_twin["efficientnet-random-init"] != by_twin["efficientnet-random-init-seed1"]).any()
    from avexlab.evaluate.tables import cells_vs_twins

    gains = cells_vs_twins(res)
    assert gains["encoder"].to_list() == ["efficientnet-all-sl"] and gains["twin_spread"][0] >= 0
    assert set(res.filter(pl.col("method") == "probe")["probe_recipe"]) == {"paper"}
    by_ckpt = res.group_by("checkpoint").agg(pl.col("objective").unique(), pl.col("ssl_objective").unique())
    assert {r["checkpoint"]: (r["objective"], r["ssl_objective"]) for r in by_ckpt.iter_rows(named=True)} == {
        "random-init": ([None], [None]),
        str(tmp_path / "grid" / "efficientnet-all-sl"): (["supervised"], [None]),
    }
    info = json.loads((tmp_path / "grid" / "grid.json").read_text())
    assert info["profile"]["probe_recipe"] == "paper" and info["cells"] == ["efficientnet-all-sl"]
    # the world it was measured on, down to its manifests' and audio's hashes
    world_json = json.loads((tmp_path / "world" / "world.json").read_text())
    assert info["world"]["config"] == resolve_config("smoke").to_dict()
    assert info["world"]["manifest_sha256"] == world_json["manifest_sha256"]
    assert (
        info["world"]["audio_sha256"] == world_json["audio_sha256"]
        and len(info["world"]["audio_sha256"]) == 64
    )
    # Two evaluation workers give the same table (jobs come back in order; caches are content-keyed).
    # The embeddings come from the cache here and probes run on one thread, so the rows are identical.
    assert pl.read_parquet(grid("smoke", workers=2, **kw)).equals(res)
    # A finished cell is not trained again: its weights stay byte-identical on a second call.
    weights = (tmp_path / "grid" / "efficientnet-all-sl" / "checkpoint.safetensors").read_bytes()
    grid("smoke", evaluate=False, **kw)
    assert (tmp_path / "grid" / "efficientnet-all-sl" / "checkpoint.safetensors").read_bytes() == weights


def test_cli_grid_refuses_a_bad_twin_count_before_any_work(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from avexlab.cli import app

    out = tmp_path / "grid"
    result = CliRunner().invoke(app, ["grid", "--profile", "smoke", "--out", str(out), "--twin-seeds", "0"])
    assert result.exit_code != 0
    assert "twin_seeds: expected an integer >= 1, found 0" in result.output
    assert not out.exists()


def test_grid_reuses_a_finished_cell_only_if_it_is_this_grids(tmp_path: Path) -> None:
    import json
    import shutil

    import torch

    from avexlab.experiments.grid import grid
    from avexlab.models.checkpoints import load_encoder, save_encoder

    kw = dict(out=tmp_path / "grid", world=tmp_path / "world", progress=False, evaluate=False)
    kw.update(architectures=("beats",), paradigms=("ssl", "sl-ssl"))
    grid("smoke", **kw)
    ssl, post = tmp_path / "grid" / "beats-all-ssl", tmp_path / "grid" / "beats-all-sl-ssl"
    rec = json.loads((post / "provenance.json").read_text())["input_checkpoints"]["model.init_checkpoint"]
    assert rec["path"] == str(ssl)
    assert rec["sha256"] == json.loads((ssl / "encoder.json").read_text())["weights_sha256"]

    def untouched_after(**over: object) -> str:
        before = {p: p.stat().st_mtime_ns for p in (tmp_path / "grid").rglob("*")}
        with pytest.raises(ConfigError) as err:
            grid("smoke", **{**kw, **over})
        assert {p: p.stat().st_mtime_ns for p in (tmp_path / "grid").rglob("*")} == before
        return str(err.value)

    # another profile over the same folder: the finished cells are not this grid's
    msg = untouched_after(lr=3e-3)
    assert "beats-all-ssl: trained with another config (optim.lr: 0.001 -> 0.003)" in msg
    # the SSL parent was replaced (retrained elsewhere, copied in): its post-training is stale
    enc = load_encoder(ssl)
    with torch.no_grad():
        next(enc.parameters()).add_(0.1)
    save_encoder(enc, ssl)
    assert f"post-trained {ssl} when its weights had SHA-256 {rec['sha256'][:12]}" in untouched_after()
    # the SSL parent is gone and would be trained again: same
    shutil.rmtree(ssl)
    assert f"post-trained {ssl}, which this grid trains again" in untouched_after()
    shutil.rmtree(post)
    grid("smoke", **kw)  # both retrained
    assert (post / "encoder.json").is_file()


def test_grid_set_items_reach_the_cells_they_name(tmp_path: Path) -> None:
    import copy

    before = copy.deepcopy(GRID_PROFILES["quick"].arch_overrides)
    ssl_steps = before["beats/ssl"]["optim.steps"]
    assert ssl_steps not in (7, GRID_PROFILES["quick"].steps)  # else the checks below could not tell
    prof = profile_with_sets(
        "quick",
        [
            "beats/ssl:objective.kind=masked_spec",
            "eat:optim.lr=0.002",
            "augment.mixup.p=0",
            "beats:optim.steps=7",
        ],
    )
    by_name = {Path(c.runtime.out_dir).name: c for c in grid_configs(prof, tmp_path)}
    kinds = {n: c.objective.kind for n, c in by_name.items() if c.recipe == "ssl"}
    assert kinds == {
        **{f"beats-{m}-ssl": "masked_spec" for m in ("bio", "general", "all")},
        **{f"eat-{m}-ssl": "eat_ssl" for m in ("bio", "general", "all")},
    }
    assert all(c.augment.mixup.p == 0 for c in by_name.values())
    assert {n for n, c in by_name.items() if c.optim.lr == 0.002} == {
        n for n in by_name if n.startswith("eat")
    }
    # The profile's own per-cell settings stay unless a --set names them: beats/ssl keeps its SSL steps (a
    # ARCH/PARADIGM key wins over the ARCH one), the other BEATs cells get 7.
    assert by_name["beats-bio-ssl"].optim.steps == ssl_steps and by_name["beats-bio-sl"].optim.steps == 7
    assert by_name["efficientnet-bio-sl"].optim.steps == 300
    assert GRID_PROFILES["quick"].arch_overrides == before  # not mutated
    for bad in ("optim.lr", "=3", "beats/ssl:=3", ":optim.lr=3"):
        with pytest.raises(ConfigError, match="grid --set"):
            profile_with_sets("quick", [bad])


def test_grid_rows_say_which_objective_made_each_encoder(tmp_path: Path) -> None:
    from avexlab.config import save_config
    from avexlab.experiments.grid import cell_objectives

    prof = profile_with_sets("quick", ["beats/ssl:objective.kind=masked_spec"])
    cfgs = grid_configs(prof, tmp_path)
    got = {Path(c.runtime.out_dir).name: cell_objectives(c, cfgs) for c in cfgs}
    assert got["beats-bio-ssl"] == {"objective": "masked_spec", "ssl_objective": "masked_spec"}
    assert got["beats-bio-sl-ssl"] == {"objective": "supervised", "ssl_objective": "masked_spec"}
    assert got["eat-all-sl-ssl"] == {"objective": "supervised", "ssl_objective": "eat_ssl"}
    assert got["efficientnet-bio-sl"] == {"objective": "supervised", "ssl_objective": None}
    # an sl-ssl cell whose parent is not in this grid: the parent's own config.yaml says
    post = next(c for c in cfgs if Path(c.runtime.out_dir).name == "beats-all-sl-ssl")
    parent = next(c for c in cfgs if Path(c.runtime.out_dir).name == "beats-all-ssl")
    save_config(parent, Path(parent.runtime.out_dir) / "config.yaml")
    for init in (Path(parent.runtime.out_dir), Path(parent.runtime.out_dir) / "checkpoint.safetensors"):
        alone = post.model_copy(update={"model": post.model.model_copy(update={"init_checkpoint": init})})
        assert cell_objectives(alone, [alone])["ssl_objective"] == "masked_spec"


def test_cli_grid_set_refuses_unknown_keys_and_architectures_before_any_work(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from avexlab.cli import app

    out = tmp_path / "grid"
    for bad, says in (
        ("beats/ssl:objective.masked_spec.nope=1", "unknown key 'objective.masked_spec.nope'"),
        ("beat:optim.lr=0.1", "arch_overrides key"),
    ):
        result = CliRunner().invoke(app, ["grid", "--profile", "smoke", "--out", str(out), "--set", bad])
        assert result.exit_code != 0 and says in result.output, result.output
        assert not out.exists()
