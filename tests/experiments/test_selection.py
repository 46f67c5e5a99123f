"""Settings are chosen on validation suites that never read the test split."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
import yaml

from avexlab.errors import ConfigError
from avexlab.experiments.selection import validation_suite
from avexlab.synth import render_world


def test_validation_suites_never_hold_a_test_clip() -> None:
    world = render_world("smoke", 0)
    for suite in world.suites.values():
        val = validation_suite(suite, fraction=0.25, seed=3)
        assert val.task_family == suite.task_family and val.multi_label == suite.multi_label
        for dataset, m in suite.manifests.items():
            v = val.manifests[dataset]
            test_ids = set(m.filter(pl.col("split") == "test")["clip_id"])
            assert test_ids.isdisjoint(v["clip_id"])  # the test split is never read
            # the old validation split is the new held-out split; train is split, nothing else moves
            assert set(v.filter(pl.col("split") == "test")["clip_id"]) == set(
                m.filter(pl.col("split") == "val")["clip_id"]
            )
            train = set(m.filter(pl.col("split") == "train")["clip_id"])
            assert set(v.filter(pl.col("split") != "test")["clip_id"]) == train
            # a quarter of train (at least one clip) becomes the probe's validation split
            moved = v.filter(pl.col("split") == "val")
            assert moved.height == max(1, round(0.25 * len(train))) < len(train)
        again = validation_suite(suite, fraction=0.25, seed=3)
        assert all(again.manifests[d].equals(val.manifests[d]) for d in suite.manifests)  # seeded


def _table(means: dict[str, list[float]]) -> pl.DataFrame:
    rows = [
        {"candidate": c, "cell": f"cell{i}", "mean": m} for c, ms in means.items() for i, m in enumerate(ms)
    ]
    return pl.DataFrame(rows)


def test_the_rule_keeps_the_setting_in_use_unless_another_beats_it_by_more_than_the_tie() -> None:
    from avexlab.experiments.selection import choose

    table = _table({"lr=1": [0.50, 0.60], "lr=3": [0.54, 0.60], "lr=0.3": [0.40, 0.41]})
    chosen, per = choose(table, current="lr=1")
    assert chosen == "lr=3" and per["candidate"].to_list() == ["lr=3", "lr=1", "lr=0.3"]
    assert per.filter(pl.col("candidate") == "lr=3")["vs_current"].item() == pytest.approx(0.02)
    assert choose(table, current="lr=1", tie=0.05)[0] == "lr=1", "0.02 better is within a 0.05 tie"
    assert choose(table, current="lr=3")[0] == "lr=3"


def test_the_rule_refuses_candidates_scored_on_other_cells_or_without_the_setting_in_use() -> None:
    from avexlab.experiments.selection import choose

    table = _table({"lr=1": [0.5, 0.6], "lr=3": [0.7]})
    with pytest.raises(ConfigError, match="the same cells for every candidate"):
        choose(table, current="lr=1")
    with pytest.raises(ConfigError, match="Add the setting in use"):
        choose(_table({"lr=1": [0.5], "lr=3": [0.7]}), current="lr=2")


def test_choose_trains_each_value_scores_it_on_validation_and_resumes(tmp_path: Path) -> None:
    """A real (smoke) comparison through the CLI: every value trains once, the scores never come from a
    test split, choice.json follows the rule on the written table, and a second call trains and evaluates
    nothing (the runs and their validation scores are reused)."""
    from typer.testing import CliRunner

    from avexlab.cli import app
    from avexlab.experiments.selection import choose

    out, world = tmp_path / "choose", tmp_path / "world"
    args = ["choose", "optim.lr=0.001,0.003", "--cells", "efficientnet-all-sl", "--profile", "smoke"]
    args += ["--world", str(world), "--out", str(out)]
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    table = pl.read_parquet(out / "validation.parquet")
    assert table.height == 3 and set(table["candidate"]) == {
        "optim.lr=0.001",
        "optim.lr=0.003",
        "random-init",
    }
    twin = table.filter(pl.col("candidate") == "random-init")
    assert twin["cell"].to_list() == ["efficientnet-random-init"], "the floor: the architecture's twin"
    record = json.loads((out / "choice.json").read_text())
    assert record["current"] == 0.001 and record["setting"] == "optim.lr"
    chosen, _ = choose(table, current="optim.lr=0.001")
    assert record["chosen"] == {"optim.lr=0.001": 0.001, "optim.lr=0.003": 0.003}[chosen]
    assert record["twins"] == {"efficientnet": twin["mean"].item()}
    runs = sorted(out.glob("*/efficientnet-all-sl/seed-0"))
    assert len(runs) == 2 and all((r / "validation.json").is_file() for r in runs)
    assert {yaml.safe_load((r / "config.yaml").read_text())["optim"]["lr"] for r in runs} == {0.001, 0.003}
    kept = [p for r in runs for p in (r / "validation.json", r / "checkpoint.safetensors")]
    kept.append(out / "random-init" / "efficientnet" / "seed-0" / "validation.json")
    stamps = {p: p.stat().st_mtime_ns for p in kept}
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps, "nothing trained or evaluated again"
    assert pl.read_parquet(out / "validation.parquet").equals(table)
    assert "chosen" in again.output


def test_choose_refuses_a_value_list_without_the_setting_in_use_and_post_training_cells(
    tmp_path: Path,
) -> None:
    from typer.testing import CliRunner

    from avexlab.cli import app

    base = ["--profile", "smoke", "--world", str(tmp_path / "w"), "--out", str(tmp_path / "o")]
    res = CliRunner().invoke(app, ["choose", "optim.lr=0.01,0.03", "--cells", "efficientnet-all-sl", *base])
    assert res.exit_code != 0 and "in use among the candidates" in res.output and "0.001" in res.output
    res = CliRunner().invoke(app, ["choose", "optim.lr=0.001,0.003", "--cells", "beats-all-sl-ssl", *base])
    assert res.exit_code != 0 and "an sl or ssl cell" in res.output
    res = CliRunner().invoke(app, ["choose", "optim.lr=0.001", "--cells", "beats-all-sl", *base])
    assert res.exit_code != 0 and "two values or more" in res.output
    assert not (tmp_path / "o").exists(), "refused before any run"
