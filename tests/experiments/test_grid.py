"""The grid's cells: every architecture x mix x paradigm it can train, once per training seed, sl-ssl after (and
from) its ssl run of the same seed, EfficientNet SL only, budgets in examples seen; every cell a valid config
before any training; evaluation kept per encoder, so a grid resumes in a second sitting."""

from __future__ import annotations

from pathlib import Path

import pytest

from avexlab.errors import ConfigError
from avexlab.experiments.grid import GRID_PROFILES, GridProfile, grid_configs, profile_with_sets


def test_quick_grid_cells_seeds_and_equal_budgets(tmp_path: Path) -> None:
    prof = GRID_PROFILES["quick"]
    cfgs = grid_configs(prof, tmp_path, seed=1)
    runs = [(Path(c.runtime.out_dir).parent.name, c.runtime.seed) for c in cfgs]
    # efficientnet: 3 mixes x sl; beats, eat: 3 mixes x (ssl, sl, sl-ssl, sl-equal); every cell per seed
    assert len({cell for cell, _ in runs}) == 3 + 2 * 12 and len(set(runs)) == len(runs)
    assert (
        len(cfgs) == 27 * len(prof.train_seeds) and len(prof.train_seeds) >= 3 and len(prof.probe_seeds) >= 3
    )
    assert not any(cell.startswith("efficientnet") and not cell.endswith("-sl") for cell, _ in runs)
    order = [f"{cell}/{seed}" for cell, seed in runs]
    for c in cfgs:
        cell = Path(c.runtime.out_dir).parent.name
        assert c.data.world_seed == 1 and c.data.world_preset == "quick"
        assert Path(c.runtime.out_dir).name == f"seed-{c.runtime.seed}"
        if cell.endswith("-sl-ssl"):
            parent = Path(c.model.init_checkpoint)
            assert parent.parent.name == cell.removesuffix("-sl-ssl") + "-ssl"
            assert parent.name == Path(c.runtime.out_dir).name
            assert order.index(f"{parent.parent.name}/{c.runtime.seed}") < order.index(
                f"{cell}/{c.runtime.seed}"
            )
        if c.recipe == "ssl":
            assert c.objective.kind == {"beats": "beats_ssl", "eat": "eat_ssl"}[c.model.name]
    # examples seen: the same for every sl and ssl cell whatever the architecture and mix; sl-ssl post-trains
    # post_examples on top of its parent's; sl-equal sees both from scratch
    seen = {Path(c.runtime.out_dir).parent.name: c.optim.steps * c.optim.batch_size for c in cfgs}
    plain = {v for k, v in seen.items() if k.endswith(("-sl", "-ssl")) and not k.endswith("-sl-ssl")}
    assert plain == {prof.examples}
    assert {v for k, v in seen.items() if k.endswith("-sl-ssl")} == {prof.post_examples}
    assert {v for k, v in seen.items() if k.endswith("-sl-equal")} == {prof.examples + prof.post_examples}
    equal = [c for c in cfgs if "sl-equal" in str(c.runtime.out_dir)]
    assert equal and all(c.recipe == "sl" and c.model.init_checkpoint is None for c in equal)
    assert prof.choices, "the quick profile records how its settings were chosen"


def test_grid_overrides_and_bad_profiles(tmp_path: Path) -> None:
    prof = GridProfile(architectures=("beats",), mixes=("bio",), overrides={"augment.mixup.p": 0.0})
    cfgs = grid_configs(prof, tmp_path)
    assert all(c.augment.mixup.p == 0.0 for c in cfgs)
    # Per-architecture overrides win over the grid-wide ones, for that architecture only.
    prof = GridProfile(
        architectures=("efficientnet", "eat"),
        mixes=("bio",),
        examples=800,
        overrides={"optim.lr": 2e-3},
        arch_overrides={"efficientnet": {"optim.steps": 7, "optim.lr": 5e-4}},
    )
    by_name = {Path(c.runtime.out_dir).parent.name: c for c in grid_configs(prof, tmp_path)}
    assert (by_name["efficientnet-bio-sl"].optim.steps, by_name["efficientnet-bio-sl"].optim.lr) == (7, 5e-4)
    assert (by_name["eat-bio-sl"].optim.steps, by_name["eat-bio-sl"].optim.lr) == (50, 2e-3)
    # ARCH/PARADIGM keys reach that architecture's cells of that paradigm only, after the ARCH keys.
    prof = GridProfile(
        architectures=("beats",),
        mixes=("bio",),
        examples=800,
        post_examples=320,
        arch_overrides={"beats": {"optim.lr": 2e-3}, "beats/ssl": {"optim.steps": 90, "optim.lr": 3e-3}},
    )
    by_name = {Path(c.runtime.out_dir).parent.name: c for c in grid_configs(prof, tmp_path)}
    got = {n: (c.optim.steps, c.optim.lr) for n, c in by_name.items()}
    assert got == {
        "beats-bio-ssl": (90, 3e-3),
        "beats-bio-sl": (50, 2e-3),
        "beats-bio-sl-ssl": (20, 2e-3),
        "beats-bio-sl-equal": (70, 2e-3),  # (800 + 320) / 16 examples per step
    }
    assert [prof.cell_steps("beats", p) for p in ("ssl", "sl", "sl-ssl", "sl-equal")] == [90, 50, 20, 70]
    for bad in ("beat", "beats/supervised", "beats/"):
        with pytest.raises(ConfigError, match="arch_overrides key"):
            grid_configs(GridProfile(arch_overrides={bad: {"optim.steps": 1}}), tmp_path)
    with pytest.raises(ConfigError, match="unknown key"):
        grid_configs(GridProfile(arch_overrides={"beats": {"optim.nope": 1}}), tmp_path)
    with pytest.raises(ConfigError, match="unknown key 'optim.nope'"):
        grid_configs(GridProfile(overrides={"optim.nope": 1}), tmp_path)
    with pytest.raises(ConfigError, match="need 'ssl'"):
        grid_configs(GridProfile(paradigms=("sl", "sl-ssl")), tmp_path)
    for bad in ({"train_seeds": ()}, {"probe_seeds": (1, 1)}, {"examples": 3}, {"paradigms": ("sl", "zsl")}):
        with pytest.raises(ConfigError, match="grid (train_seeds|probe_seeds|examples|paradigms)"):
            GridProfile(**bad)


def test_smoke_grid_with_seeds_budgets_items_and_resume(tmp_path: Path) -> None:
    import json

    import polars as pl

    from avexlab.evaluate.stats import ITEM_SCHEMA
    from avexlab.experiments.grid import grid
    from avexlab.synth import resolve_config

    kw = dict(out=tmp_path / "grid", world=tmp_path / "world", progress=False)
    kw.update(architectures=("efficientnet",), paradigms=("sl",), probe_recipe="paper", train_seeds=(0, 1))
    with pytest.raises(ConfigError, match="train_seeds"):  # refused before anything is rendered or trained
        grid("smoke", **{**kw, "train_seeds": ()})
    assert not (tmp_path / "grid").exists() and not (tmp_path / "world").exists()
    out = grid("smoke", **kw)
    res = pl.read_parquet(out)
    assert set(res["paradigm"]) == {"random-init", "sl"}
    cell = tmp_path / "grid" / "efficientnet-all-sl"
    assert set(res["checkpoint"]) == {"random-init", str(cell / "seed-0"), str(cell / "seed-1")}
    # every row says which training seed and how many examples made its encoder; twins saw nothing
    per = (
        res.group_by("encoder", "train_seed")
        .agg(pl.col("examples_seen").unique())
        .sort("encoder", "train_seed")
    )
    assert per.rows() == [
        ("efficientnet-all-sl", 0, [16]), ("efficientnet-all-sl", 1, [16]),
        ("efficientnet-random-init", 0, [0]), ("efficientnet-random-init", 1, [0]),
    ]  # fmt: skip
    # twins of two seeds are two networks: different scores somewhere
    twins = res.filter(pl.col("checkpoint") == "random-init").pivot(
        "train_seed", index=["dataset", "method", "metric", "probe_seed"], values="value"
    )
    assert (twins["0"] != twins["1"]).any()
    assert set(res.filter(pl.col("method") == "probe")["probe_recipe"]) == {"paper"}
    retrieval = res.filter(pl.col("method") == "retrieval")
    assert retrieval["probe_seed"].null_count() == retrieval.height  # retrieval has no probe
    items = pl.read_parquet(tmp_path / "grid" / "items.parquet")
    assert items.schema == pl.Schema(ITEM_SCHEMA)
    assert set(items.select("encoder", "train_seed").unique().rows()) == set(
        res.select("encoder", "train_seed").unique().rows()
    )
    info = json.loads((tmp_path / "grid" / "grid.json").read_text())
    assert info["profile"]["probe_recipe"] == "paper" and info["cells"] == ["efficientnet-all-sl"]
    assert info["runs"] == ["efficientnet-all-sl/seed-0", "efficientnet-all-sl/seed-1"]
    # what it cost: every run's wall time and throughput from its provenance, every evaluation's wall time
    assert [r["examples_seen"] for r in info["cost"]["runs"]] == [16, 16]
    assert all(r["wall_s"] > 0 and r["clips_per_s"] > 0 for r in info["cost"]["runs"])
    assert len(info["cost"]["evaluations"]) == 4 and not any(e["reused"] for e in info["cost"]["evaluations"])
    # the world it was measured on, down to its version and its manifests' and audio's hashes
    world_json = json.loads((tmp_path / "world" / "world.json").read_text())
    assert info["world"]["config"] == resolve_config("smoke").to_dict()
    assert info["world"]["world_version"] == world_json["world_version"]
    assert (
        info["world"]["audio_sha256"] == world_json["audio_sha256"]
        and len(info["world"]["audio_sha256"]) == 64
    )
    # a second sitting: nothing is trained or evaluated again and the tables are the same
    weights = (cell / "seed-0" / "checkpoint.safetensors").read_bytes()
    again = grid("smoke", workers=2, **kw)
    assert pl.read_parquet(again).equals(res)
    rec = json.loads((tmp_path / "grid" / "grid.json").read_text())
    assert all(e["reused"] for e in rec["cost"]["evaluations"])
    assert rec["earlier"] == [{"cost": info["cost"]}], "the first sitting's cost survives the second"
    assert (cell / "seed-0" / "checkpoint.safetensors").read_bytes() == weights
    # a third training seed: only its run and its twin are new
    grid("smoke", **{**kw, "train_seeds": (0, 1, 2)})
    evals = json.loads((tmp_path / "grid" / "grid.json").read_text())["cost"]["evaluations"]
    assert sorted(e["name"] for e in evals if not e["reused"]) == [
        "efficientnet-all-sl-s2",
        "efficientnet-random-init-s2",
    ]


def test_cli_grid_refuses_bad_seed_lists_before_any_work(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from avexlab.cli import app

    out = tmp_path / "grid"
    for option, value, says in (
        ("--train-seeds", "0,x", "--train-seeds: expected comma-separated integers"),
        ("--probe-seeds", "1,1", "probe_seeds: expected distinct seeds"),
        ("--existing", "nonet", "existing models"),
    ):
        result = CliRunner().invoke(app, ["grid", "--profile", "smoke", "--out", str(out), option, value])
        assert result.exit_code != 0 and says in result.output, result.output
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
    ssl, post = (
        tmp_path / "grid" / "beats-all-ssl" / "seed-0",
        tmp_path / "grid" / "beats-all-sl-ssl" / "seed-0",
    )
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
    assert "beats-all-ssl/seed-0: trained with another config (optim.lr: 0.001 -> 0.003)" in msg
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
    prof = profile_with_sets(
        "quick",
        [
            "beats/ssl:objective.kind=masked_spec",
            "eat:optim.lr=0.002",
            "augment.mixup.p=0",
            "beats:optim.steps=7",
            "beats/ssl:optim.steps=9",
        ],
    )
    by_name = {Path(c.runtime.out_dir).parent.name: c for c in grid_configs(prof, tmp_path)}
    kinds = {n: c.objective.kind for n, c in by_name.items() if c.recipe == "ssl"}
    assert kinds == {
        **{f"beats-{m}-ssl": "masked_spec" for m in ("bio", "general", "all")},
        **{f"eat-{m}-ssl": "eat_ssl" for m in ("bio", "general", "all")},
    }
    assert all(c.augment.mixup.p == 0 for c in by_name.values())
    assert {n for n, c in by_name.items() if c.optim.lr == 0.002} == {
        n for n in by_name if n.startswith("eat")
    }
    # an ARCH/PARADIGM key wins over the ARCH one; other cells keep the profile's budget
    assert by_name["beats-bio-ssl"].optim.steps == 9 and by_name["beats-bio-sl"].optim.steps == 7
    assert by_name["efficientnet-bio-sl"].optim.steps == GRID_PROFILES["quick"].cell_steps(
        "efficientnet", "sl"
    )
    assert GRID_PROFILES["quick"].arch_overrides == before  # not mutated
    for bad in ("optim.lr", "=3", "beats/ssl:=3", ":optim.lr=3"):
        with pytest.raises(ConfigError, match="grid --set"):
            profile_with_sets("quick", [bad])


def test_grid_rows_say_which_objective_made_each_encoder(tmp_path: Path) -> None:
    from avexlab.config import save_config
    from avexlab.experiments.grid import cell_objectives

    prof = profile_with_sets("quick", ["beats/ssl:objective.kind=masked_spec"])
    cfgs = grid_configs(prof, tmp_path)
    got = {Path(c.runtime.out_dir).parent.name: cell_objectives(c, cfgs) for c in cfgs}
    assert got["beats-bio-ssl"] == {"objective": "masked_spec", "ssl_objective": "masked_spec"}
    assert got["beats-bio-sl-ssl"] == {"objective": "supervised", "ssl_objective": "masked_spec"}
    assert got["eat-all-sl-ssl"] == {"objective": "supervised", "ssl_objective": "eat_ssl"}
    assert got["efficientnet-bio-sl"] == {"objective": "supervised", "ssl_objective": None}
    # an sl-ssl cell whose parent is not in this grid: the parent's own config.yaml says
    post = next(c for c in cfgs if Path(c.runtime.out_dir).parent.name == "beats-all-sl-ssl")
    parent = next(c for c in cfgs if Path(c.runtime.out_dir).parent.name == "beats-all-ssl")
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
