"""Section 5, out of distribution: the focal -> soundscape gap, and which encoder the SNR knob hurts least."""

from __future__ import annotations

from typing import Any

import polars as pl

from avexlab.frames import exact_mean

from .base import Exercise, Mistake, number

GAP_ENCODER = "sl"


def _gap(course: Any, metric: str, sign: float = 1.0) -> float:
    from avexlab.evaluate.tables import ood_report

    rep = ood_report(course.results()).filter(
        (pl.col("encoder") == GAP_ENCODER) & (pl.col("method") == "retrieval") & (pl.col("metric") == metric)
    )
    return sign * float(rep["gap"][0])


def _gap_solution(course: Any) -> float:
    # as the notebook's table shows it: mean over the focal datasets and over the soundscape datasets
    res = course.results().filter(
        (pl.col("encoder") == GAP_ENCODER)
        & (pl.col("method") == "retrieval")
        & (pl.col("metric") == "roc_auc")
    )
    focal = res.filter(pl.col("domain") == "focal")["value"].mean()
    soundscape = res.filter(pl.col("domain") == "soundscape")["value"].mean()
    return round(soundscape - focal, 2)


# ------------------------------------------------------------------------------------------ s5-robust
def snr_drop(course: Any) -> pl.DataFrame:
    """Per sweep encoder: probe mAP at the highest knob value minus at the lowest (mean over datasets);
    ``drop`` > 0 means the encoder lost that much when the calls got quieter."""
    sw = course.sweep().filter((pl.col("method") == "probe") & (pl.col("metric") == "map"))
    lo, hi = sw["knob_value"].min(), sw["knob_value"].max()
    per = sw.group_by("encoder", "knob_value").agg(exact_mean("value"))
    wide = per.pivot(on="knob_value", index="encoder", values="value")
    return wide.select("encoder", (pl.col(str(hi)) - pl.col(str(lo))).alias("drop")).sort("encoder")


def _robust_reference(course: Any) -> frozenset[str]:
    drops = snr_drop(course)
    least = drops["drop"].min()
    return frozenset(drops.filter(pl.col("drop") == least)["encoder"].to_list())


def _robust_solution(course: Any) -> str:
    return str(snr_drop(course).sort("drop")["encoder"][0])


def _sweep_encoders(course: Any) -> list[str]:
    return sorted(course.sweep()["encoder"].unique().to_list())


EXERCISES = (
    Exercise(
        id="s5-gap",
        section=5,
        title="The focal -> soundscape gap",
        kind="value",
        prompt=(
            f"From the table above: what is the gap of retrieval `roc_auc` for the `{GAP_ENCODER}` encoder, "
            "`gap = soundscape - focal` (each the mean over that domain's datasets)? Type it to two "
            "decimals (negative when the soundscapes are harder)."
        ),
        hint="Take the `roc_auc` row of the retrieval method: soundscape column minus focal column.",
        reference=lambda c: _gap(c, "roc_auc"),
        solution=_gap_solution,
        outputs=lambda a, c: number(a),
        tol=0.0051,  # two decimals: half a unit of the last digit, plus float slack
        mistakes=(
            Mistake(
                "The sign is reversed: the gap is soundscape minus focal, negative when the encoder does worse "
                "on soundscapes.",
                lambda c: -_gap(c, "roc_auc"),
            ),
            Mistake(
                "That is the gap of `precision_at_1`. The task asks for `roc_auc`.",
                lambda c: _gap(c, "precision_at_1"),
            ),
        ),
    ),
    Exercise(
        id="s5-robust",
        section=5,
        title="Who loses least when the calls get quieter?",
        kind="choice",
        prompt=(
            "The detection suite's soundscapes were re-rendered at several SNRs (same calls, same "
            "background). Which encoder's probe mAP drops least from the highest SNR to the lowest?"
        ),
        hint="For each encoder: mAP at the highest SNR minus mAP at the lowest. The smallest difference wins.",
        reference=_robust_reference,
        solution=_robust_solution,
        options=_sweep_encoders,
    ),
)
