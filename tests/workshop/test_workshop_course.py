"""The prepared course folder, its errors, and ``avexlab workshop check`` on a good and a damaged copy (real
processes, the installed entry point)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from avexlab.errors import ConfigError, DataNotFoundError
from avexlab.workshop.course import (
    PLANS,
    Course,
    few_shot_subset,
    grid_checkpoints,
    grid_overview,
    locate_course,
    name_twins_by_seed,
    prepare,
)

GRID = Path(__file__).resolve().parents[2] / "results" / "grid"


def _avexlab(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "avexlab.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


def test_prepared_course_holds_every_set_encoder_and_result(smoke_course: Path) -> None:
    course = Course.open(smoke_course)
    plan = PLANS["smoke"]
    assert course.scale == "smoke" and course.encoder_keys == ["baseline", "sl", "ssl", "sl-ssl"]
    for cs in plan.sets:
        manifest = course.manifest(cs.name)
        for key in course.encoder_keys:
            emb = course.embeddings(key, cs.name)
            assert emb.clip_ids == manifest["clip_id"].to_list() and np.isfinite(emb.array()).all()
    results = course.results()
    assert set(results["encoder"].unique()) == set(course.encoder_keys)
    assert set(results["probe_recipe"].drop_nulls().unique()) == {plan.probe_recipe}
    assert set(course.sweep()["knob_value"].unique()) == set(plan.sweep.values)
    fewshot = course.fewshot()
    assert fewshot.height == len(course.encoder_keys) * len(plan.fewshot.shots) * len(plan.fewshot.seeds)
    assert course.verify_files() == []
    grid = Path(course.meta["grid"]["source"])  # the committed grid (or the grid a reused course came from)
    runs = grid_checkpoints(grid)
    for key, cell in (("sl", "beats-bio-sl"), ("ssl", "beats-bio-ssl"), ("sl-ssl", "beats-bio-sl-ssl")):
        assert course.meta["encoders"][key]["run"] == runs[cell].relative_to(grid).as_posix()
        copied = (smoke_course / "encoders" / key / "checkpoint.safetensors").read_bytes()
        assert copied == (runs[cell] / "checkpoint.safetensors").read_bytes()
    folder = smoke_course / "notebooks"
    copied = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    assert sorted(course.meta["notebooks"]) == copied
    assert sum(c.startswith("s") and c.endswith(".py") for c in copied) == 6 and "README.md" in copied


def test_few_shot_subset_keeps_k_training_clips_per_class_and_every_other_row(smoke_course: Path) -> None:
    df = Course.open(smoke_course).manifest("clf", "syn-clf-songbirds")
    for shots, seed in ((1, 0), (2, 5), (100, 1)):
        out = few_shot_subset(df, shots, seed)
        train = out.filter(pl.col("split") == "train")
        have = df.filter(pl.col("split") == "train").group_by(pl.col("labels").list.first()).len()
        got = train.group_by(pl.col("labels").list.first()).len()
        expect = have.with_columns(pl.col("len").clip(upper_bound=shots))
        assert got.sort("labels").equals(expect.sort("labels"))
        assert out.filter(pl.col("split") != "train").equals(df.filter(pl.col("split") != "train"))
        assert out.equals(few_shot_subset(df, shots, seed))
    with pytest.raises(ConfigError, match="shots"):
        few_shot_subset(df, 0, 0)


def test_course_errors_say_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(DataNotFoundError, match="avexlab workshop prepare"):
        Course.open(tmp_path / "nowhere")
    (tmp_path / "course.json").write_text(json.dumps({"format": 0}))
    with pytest.raises(ConfigError, match="course format 1"):
        Course.open(tmp_path)
    with pytest.raises(ConfigError, match="workshop scale"):
        prepare("paper", tmp_path / "p")
    with pytest.raises(DataNotFoundError, match="beats-bio-sl"):
        prepare("smoke", tmp_path / "p", grid=tmp_path)
    assert not (tmp_path / "p").exists(), "nothing is written before the inputs are checked"


def test_locate_course_prefers_the_course_a_notebook_was_copied_into(
    smoke_course: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AVEXLAB_WORKSHOP_DIR", str(tmp_path))
    assert locate_course("smoke") == tmp_path / "smoke"
    assert locate_course("smoke", smoke_course / "notebooks") == smoke_course.resolve()
    assert locate_course("workshop", smoke_course / "notebooks") == tmp_path / "workshop"


def _copy_course(src: Path, dest: Path) -> Path:
    """A copy to damage: everything but the world's audio, which is linked (read-only use)."""
    shutil.copytree(src, dest, ignore=shutil.ignore_patterns("world", "cache"))
    (dest / "world").symlink_to(src / "world", target_is_directory=True)
    return dest


@pytest.mark.slow
def test_check_passes_on_the_course_and_names_each_damaged_item(smoke_course: Path, tmp_path: Path) -> None:
    good = _avexlab("workshop", "check", "--course", str(smoke_course))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "FAIL" not in good.stdout and " 0 failed" in good.stdout
    for item in (
        "import torch",
        "course files",
        "world",
        "embeddings",
        "encoder forward pass",
        "free disk",
        "memory",
    ):
        assert f"PASS  {item}" in good.stdout, item

    bad = _copy_course(smoke_course, tmp_path / "course")
    emb = bad / "embeddings" / "sl" / "clf.npz"
    data = {k: v + 1.0 if k.startswith("layer_") else v for k, v in np.load(emb).items()}  # still valid
    np.savez(emb, **data)
    (bad / "results" / "sweep.parquet").unlink()
    damaged = _avexlab("workshop", "check", "--course", str(bad))
    assert damaged.returncode == 1, damaged.stdout + damaged.stderr
    line = next(x for x in damaged.stdout.splitlines() if x.startswith("FAIL  course files"))
    assert "embeddings/sl/clf.npz: changed since prepare" in line and "results/sweep.parquet: missing" in line


def test_check_of_a_folder_never_prepared_says_how_to_prepare_it(tmp_path: Path) -> None:
    from avexlab.workshop.laptop import check_laptop

    items = check_laptop(tmp_path / "never-prepared")
    assert [i.item for i in items if not i.ok] == ["course folder"]
    assert "avexlab workshop prepare" in items[-1].detail and items[-1].line().startswith(
        "FAIL  course folder"
    )


def test_verify_files_names_each_changed_and_missing_file(tmp_path: Path) -> None:
    root = tmp_path / "course"
    (root / "sets").mkdir(parents=True)
    for name in ("a.parquet", "b.parquet", "c.parquet"):
        (root / "sets" / name).write_bytes(name.encode() * 100)
    files = {f"sets/{p.name}": hashlib.sha256(p.read_bytes()).hexdigest() for p in (root / "sets").iterdir()}
    course = Course(root, {"files": files})
    assert course.verify_files() == []
    data = bytearray((root / "sets" / "b.parquet").read_bytes())
    data[7] ^= 1  # one bit, same size
    (root / "sets" / "b.parquet").write_bytes(bytes(data))
    (root / "sets" / "c.parquet").unlink()
    assert course.verify_files() == [
        "sets/b.parquet: changed since prepare (SHA-256 differs)",
        "sets/c.parquet: missing",
    ]
    assert Course(root, {"files": {}}).verify_files() == [
        "course.json lists no files to verify: prepare the course again"
    ]


COURSE_CELLS = ("beats-bio-sl", "beats-bio-ssl", "beats-bio-sl-ssl")


def _flat_grid(tmp_path: Path) -> Path:
    """The committed grid's course runs in the layout of a grid without training seeds: ``<cell>/`` (links
    to the committed runs, whichever layout the committed grid has)."""
    grid = tmp_path / "flat"
    grid.mkdir()
    for cell, run in grid_checkpoints(GRID).items():
        (grid / cell).symlink_to(run, target_is_directory=True)
    for f in ("grid.json", "results.parquet"):
        shutil.copyfile(GRID / f, grid / f)
    return grid


def _seeded_grid(tmp_path: Path, seeds: tuple[int, ...] = (2, 0)) -> Path:
    """The committed grid's course runs in the layout of a grid with training seeds: ``<cell>/seed-<s>/``
    (links to the committed runs) and the current quick profile in grid.json, its first seed ``seeds[0]``."""
    from avexlab.experiments.grid import GRID_PROFILES

    grid = tmp_path / "grid"
    grid.mkdir()
    for cell, run in grid_checkpoints(GRID).items():
        for s in seeds:
            (grid / cell).mkdir(exist_ok=True)
            (grid / cell / f"seed-{s}").symlink_to(run, target_is_directory=True)
    profile = dataclasses.asdict(dataclasses.replace(GRID_PROFILES["quick"], train_seeds=seeds))
    (grid / "grid.json").write_text(json.dumps({"profile": profile, "world": {"preset": "quick"}}))
    shutil.copyfile(GRID / "results.parquet", grid / "results.parquet")
    return grid


def test_grid_checkpoints_reads_both_grid_layouts(tmp_path: Path) -> None:
    flat = grid_checkpoints(_flat_grid(tmp_path))
    assert flat == {c: tmp_path / "flat" / c for c in COURSE_CELLS}
    seeded = grid_checkpoints(_seeded_grid(tmp_path))
    assert seeded == {c: tmp_path / "grid" / c / "seed-2" for c in COURSE_CELLS}, "the profile's first seed"


def test_grid_checkpoints_error_names_both_layouts_and_what_it_found(tmp_path: Path) -> None:
    grid = _seeded_grid(tmp_path, seeds=(1, 0))
    for cell in COURSE_CELLS:
        (grid / cell / "seed-1").unlink()  # only seed-0 left: not the profile's first seed
    shutil.rmtree(grid / "beats-bio-ssl")
    (grid / "results.parquet").unlink()
    with pytest.raises(DataNotFoundError) as err:
        grid_checkpoints(grid)
    msg = str(err.value)
    for part in (
        "<cell>/encoder.json",
        "<cell>/seed-<s>/encoder.json",
        "no results.parquet",
        "no folder beats-bio-ssl/",
        "no beats-bio-sl/seed-1/encoder.json (beats-bio-sl/ holds ['seed-0'])",
        "avexlab grid --profile quick",
    ):
        assert part in msg, (part, msg)


def test_twins_of_a_seeded_grid_stay_distinct_as_in_the_committed_grid(tmp_path: Path) -> None:
    """A grid table without training seeds (twins ``<arch>-random-init``, ``-seed1``, ...) rewritten as a
    grid with training seeds writes it (all twins of an architecture named alike, a ``train_seed`` column)
    reads back as the same overview and the same gains. The committed table gives the first form (or is
    turned into it, once the committed grid is one with training seeds)."""
    from avexlab.evaluate.tables import cells_vs_twins

    as_old = pl.col("encoder").str.replace(r"-random-init-seed0$", "-random-init")
    old = pl.read_parquet(GRID / "results.parquet")
    if "train_seed" in old.columns:
        old = name_twins_by_seed(old).with_columns(as_old).drop("train_seed")
    twin = pl.col("checkpoint") == "random-init"
    seed = pl.col("encoder").str.extract(r"-random-init-seed(\d+)$").cast(pl.Int64).fill_null(0)
    new = old.with_columns(
        pl.when(twin).then(seed).otherwise(0).alias("train_seed"),
        pl.when(twin)
        .then(pl.col("encoder").str.replace(r"-seed\d+$", ""))
        .otherwise(pl.col("encoder"))
        .alias("encoder"),
    )
    assert name_twins_by_seed(old).equals(old), "a table without train_seed is kept as it is"
    renamed = name_twins_by_seed(new)
    assert grid_overview(renamed).with_columns(as_old).equals(grid_overview(old))
    assert grid_overview(new).filter("twin").height == 3, "merged twins: what the renaming prevents"
    gains_new, gains_old = cells_vs_twins(renamed), cells_vs_twins(old)
    assert gains_new.equals(gains_old)
    # the spread between twins is measured exactly when an architecture has more than one twin
    per_arch = old.filter(twin).group_by("architecture").agg(pl.col("encoder").n_unique().alias("twins"))
    several = set(per_arch.filter(pl.col("twins") > 1)["architecture"].to_list())
    assert gains_old.select(
        (pl.col("twin_spread").is_not_null() == pl.col("architecture").is_in(several)).all()
    ).item()


def test_grid_budget_reads_both_profile_generations(tmp_path: Path) -> None:
    from avexlab.experiments.grid import GRID_PROFILES

    def budget(profile: dict) -> str:
        (tmp_path / "grid").mkdir(exist_ok=True)
        (tmp_path / "grid" / "grid.json").write_text(json.dumps({"profile": profile}))
        return Course(tmp_path, {}).grid_budget()

    # a profile from before budgets were counted in examples (the committed grid's, when it was written)
    assert budget({"size": "tiny", "steps": 1000, "post_steps": 500, "batch_size": 16}) == (
        "1000 steps of 16 clips per cell"
    )
    prof = GRID_PROFILES["quick"]
    assert budget(dataclasses.asdict(prof)) == (
        f"{prof.examples} training examples per cell (SL-SSL: +{prof.post_examples} of supervised "
        f"post-training), {len(prof.train_seeds)} training seeds"
    )
    with pytest.raises(ConfigError, match="a grid profile with `examples`"):
        budget({"size": "tiny"})
