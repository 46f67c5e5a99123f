"""Hard enough to tell encoders apart: a log-mel-statistics + logistic-regression baseline is far from
perfect yet well above chance on every suite family, and drops from focal to soundscape data.

The smoke world is small (a handful of test clips per dataset), so bounds are on family means and looser
than the quick-preset figures reported in data_manifests/synth_README.md."""

from __future__ import annotations

import polars as pl
import pytest

from avexlab.synth import World
from avexlab.synth.baseline import baseline_scores


@pytest.fixture(scope="module")
def scores(smoke: World) -> pl.DataFrame:
    return baseline_scores(smoke)


def _family(scores: pl.DataFrame, suite: str, domain: str | None = None) -> tuple[float, float]:
    df = scores.filter(pl.col("suite") == suite)
    if domain is not None:
        df = df.filter(pl.col("domain") == domain)
    assert df.height > 0, suite
    return float(df["value"].mean()), float(df["chance"].mean())


@pytest.mark.slow
@pytest.mark.parametrize(
    "suite,margin,ceiling",
    [("syn-beans-clf", 0.2, 0.95), ("syn-individual", 0.1, 0.95), ("syn-repertoire", 0.1, 1.0)],
)
def test_focal_suites_are_learnable_but_not_solved(
    scores: pl.DataFrame, suite: str, margin: float, ceiling: float
) -> None:
    value, chance = _family(scores, suite)
    assert chance + margin < value < ceiling, (suite, value, chance)


@pytest.mark.slow
def test_soundscape_suites_stay_far_from_perfect_yet_above_chance(scores: pl.DataFrame) -> None:
    for suite in ("syn-beans-det", "syn-birdset"):
        value, chance = _family(scores, suite, "soundscape")
        assert chance < value < 0.8, (suite, value, chance)


@pytest.mark.slow
def test_scores_drop_from_focal_to_soundscape(scores: pl.DataFrame) -> None:
    focal, _ = _family(scores, "syn-birdset", "focal")
    soundscape, _ = _family(scores, "syn-birdset", "soundscape")
    assert focal > soundscape + 0.1, (focal, soundscape)
    clf, _ = _family(scores, "syn-beans-clf")
    det, _ = _family(scores, "syn-beans-det")
    assert clf > det
