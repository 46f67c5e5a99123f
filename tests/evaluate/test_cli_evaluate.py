"""``avexlab evaluate --suite`` on a rendered world: the results table it appends to and what it refuses."""

from __future__ import annotations

from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from avexlab.cli import app


def test_evaluate_a_world_suite_appends_to_the_results_table(tmp_path: Path) -> None:
    runner = CliRunner()
    world, res = tmp_path / "world", tmp_path / "res.parquet"
    assert runner.invoke(app, ["synth", "--preset", "smoke", "--out", str(world)]).exit_code == 0
    base = ["evaluate", "--world", str(world), "--out", str(res), "--suite", "syn-repertoire"]
    result = runner.invoke(app, [*base, "--encoder", "logmel:tiny"])
    assert result.exit_code == 0, result.output
    assert "logmel:tiny on syn-repertoire" in result.output  # the paper-shaped table
    result = runner.invoke(app, [*base, "--encoder", "logmel:tiny", "--layers", "every"])
    assert result.exit_code == 2 and "'last', 'all' or comma-separated indices" in result.output
    result = runner.invoke(app, [*base, "--encoder", "logmel:tiny", "--layers", "0,5"])
    assert result.exit_code == 2 and "indices in [-1, 1)" in result.output  # logmel has one layer
    result = runner.invoke(app, [*base[:-2], "--suite", "syn-nothing", "--encoder", "logmel:tiny"])
    assert result.exit_code == 2 and "syn-repertoire" in result.output  # names the suites there are
    table = pl.read_parquet(res)
    assert set(table["benchmark"]) == {"syn-repertoire"} and set(table["encoder"]) == {"logmel"}
    assert {"probe", "clustering"} <= set(table["method"])  # smoke test splits may hold no retrieval pair
