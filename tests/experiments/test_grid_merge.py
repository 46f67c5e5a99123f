"""Grid folders of one grid, run with different training seeds, merge into the folder one run would write."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars as pl
import pytest

from avexlab.errors import ConfigError, DataNotFoundError

KEYS = ["encoder", "train_seed", "dataset", "method", "metric", "probe_seed", "layer", "value"]
# an SSL cell and its post-training: the merge must rewrite the parent path the child's config holds
KW = dict(progress=False, architectures=("beats",), paradigms=("ssl", "sl-ssl"), probe_recipe="paper")


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sittings of one smoke grid: seed 0 in ``a``, seed 1 in ``b``, on one world."""
    from avexlab.experiments.grid import grid

    root = tmp_path_factory.mktemp("parts")
    grid("smoke", out=root / "a", world=root / "world", train_seeds=(0,), **KW)
    grid("smoke", out=root / "b", world=root / "world", train_seeds=(1,), **KW)
    return root


def _rows(path: Path, prefix: Path) -> pl.DataFrame:
    """A results table with the folder it was written in taken out of its checkpoint paths, sorted."""
    t = pl.read_parquet(path)
    return t.with_columns(pl.col("checkpoint").str.replace(str(prefix), "GRID", literal=True)).sort(KEYS)


def test_merged_seed_folders_are_one_grid_that_resumes_as_it(parts: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from avexlab.cli import app
    from avexlab.experiments.grid import grid, grid_cost
    from avexlab.experiments.grid_merge import merge_grids

    m = tmp_path / "m"
    merged = merge_grids([parts / "a", parts / "b"], m)

    # every row of both parts, once, its checkpoint path pointing into the merged folder
    both = pl.concat(
        [_rows(parts / p / "results.parquet", parts / p) for p in ("a", "b")], how="diagonal_relaxed"
    )
    rows = _rows(merged, m)
    assert rows.equals(both.sort(KEYS)) and set(rows["train_seed"]) == {0, 1}
    items = pl.read_parquet(m / "items.parquet")
    assert items.height == sum(pl.read_parquet(parts / p / "items.parquet").height for p in ("a", "b"))
    assert not any(str(parts) in c for c in items["checkpoint"].unique().to_list())
    assert any(str(m) in c for c in items["checkpoint"].unique().to_list())
    child, parent = m / "beats-all-sl-ssl" / "seed-1", m / "beats-all-ssl" / "seed-1"
    assert f"init_checkpoint: {parent}\n" in (child / "config.yaml").read_text()
    prov = json.loads((child / "provenance.json").read_text())
    assert prov["input_checkpoints"]["model.init_checkpoint"]["path"] == str(parent)
    assert not list(m.rglob("checkpoints"))  # resume states of finished runs are not copied
    rec = json.loads((m / "grid.json").read_text())
    assert rec["profile"]["train_seeds"] == [0, 1]
    assert rec["runs"] == [f"beats-all-{p}/seed-{s}" for p in ("ssl", "sl-ssl") for s in (0, 1)]
    assert [p["train_seeds"] for p in rec["merged_from"]] == [[0], [1]]
    assert len(rec["cost"]["runs"]) == 4 and rec["cost"]["training_wall_s"] > 0

    # `avexlab grid` over the merged folder with both seeds: every run finished and its own, every
    # evaluation kept (its key is the one the grid computes there), the same table
    weights = {p: p.read_bytes() for p in m.rglob("checkpoint.safetensors")}
    assert len(weights) == 4
    again = grid("smoke", out=m, world=parts / "world", train_seeds=(0, 1), **KW)
    rerun = json.loads((m / "grid.json").read_text())
    assert all(e["reused"] for e in rerun["cost"]["evaluations"])
    kept = {k: rec[k] for k in ("cost", "merged_from", "weights")}
    assert rerun["earlier"] == [kept] and "merged_from" not in rerun, "how the folder was made is kept"
    total = grid_cost(rerun)  # what the folder cost: the parts' sittings and this one
    assert total["sittings"] == 2
    assert total["training_wall_s"] == round(
        rec["cost"]["training_wall_s"] + rerun["cost"]["training_wall_s"], 3
    )
    assert {p: p.read_bytes() for p in weights} == weights
    assert _rows(again, m).equals(rows)

    # without weights: a lighter record; the grid trains its runs again and (same weights) reuses the rest
    w = tmp_path / "w"
    out = CliRunner().invoke(
        app, ["grid-merge", str(parts / "a"), str(parts / "b"), "--out", str(w), "--no-weights"]
    )
    assert out.exit_code == 0, out.output
    assert (
        not list(w.rglob("checkpoint.safetensors"))
        and (w / "beats-all-ssl" / "seed-0" / "encoder.json").is_file()
    )
    grid("smoke", out=w, world=parts / "world", train_seeds=(0, 1), **KW)
    assert len(list(w.rglob("checkpoint.safetensors"))) == 4
    evals = json.loads((w / "grid.json").read_text())["cost"]["evaluations"]
    assert all(e["reused"] for e in evals), [e["name"] for e in evals if not e["reused"]]


def test_merge_refuses_what_is_not_one_grid_before_writing(parts: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from avexlab.cli import app
    from avexlab.experiments.grid_merge import merge_grids

    # a part of another grid: b's folder, its profile's learning rate changed
    other = tmp_path / "other"
    shutil.copytree(parts / "b", other)
    rec = json.loads((other / "grid.json").read_text())
    rec["profile"]["lr"] = 3e-3
    (other / "grid.json").write_text(json.dumps(rec))
    m = tmp_path / "m"
    with pytest.raises(ConfigError, match=r"another grid \(profile\.lr: 0\.001 -> 0\.003\)"):
        merge_grids([parts / "a", other], m)
    with pytest.raises(ConfigError, match="seed 0 in both"):
        merge_grids([parts / "a", parts / "a"], m)
    with pytest.raises(DataNotFoundError, match="no grid.json"):
        merge_grids([parts / "a", parts / "world"], m)
    assert not m.exists()  # refused before a file was written
    # an evaluation a part's table was built from is gone
    broken = tmp_path / "broken"
    shutil.copytree(parts / "b", broken)
    (broken / "eval" / "beats-all-ssl-s1.items.parquet").unlink()
    with pytest.raises(DataNotFoundError, match=r"missing beats-all-ssl-s1\.items\.parquet"):
        merge_grids([parts / "a", broken], m)
    assert not m.exists()
    # never over a folder that holds files
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("a user's file")
    with pytest.raises(ConfigError, match="never writes over a folder"):
        merge_grids([parts / "a", parts / "b"], tmp_path / "full")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    result = CliRunner().invoke(app, ["grid-merge", str(parts / "a"), "--out", str(m)])
    assert result.exit_code != 0 and "two or more grid folders" in result.output
