"""The prepared course folder, its errors, and ``avexlab workshop check`` on a good and a damaged copy (real
processes, the installed entry point)."""

from __future__ import annotations

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
from avexlab.workshop.course import PLANS, Course, few_shot_subset, locate_course, prepare


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
