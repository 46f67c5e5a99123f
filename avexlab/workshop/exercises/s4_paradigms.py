"""Section 4, SSL vs SL: draw a few-shot training set without leaking test clips, and read which paradigm
learns most from two labels per class."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl

from avexlab.frames import exact_mean

from .base import Exercise, Mistake

SHOTS = 2


def fewshot_manifest(course: Any) -> pl.DataFrame:
    """The few-shot dataset's clips (all splits) in the ``clf`` set."""
    return course.manifest("clf", course.meta["plan"]["fewshot"]["dataset"])


# ---------------------------------------------------------------------------------------- s4-few-shot
_CASES = ((1, 0), (3, 0), (3, 1))  # (shots, seed)


def _summary(out: Any, source: pl.DataFrame, again: Any) -> tuple[Any, ...] | None:
    """What the check compares for one call: per-label training counts, the validation and test clips
    kept, whether every training clip came from the training split, and whether the same seed gives the
    same draw."""
    if out is None or out is Ellipsis:
        return None  # the stub: not answered yet
    if not isinstance(out, pl.DataFrame) or not {"clip_id", "split", "labels"} <= set(out.columns):
        raise TypeError(
            f"expected a polars DataFrame with the manifest's columns, found {type(out).__name__}"
        )
    train = out.filter(pl.col("split") == "train")
    counts = tuple(sorted(train.group_by(pl.col("labels").list.first().alias("label")).len().iter_rows()))
    kept = tuple(sorted(out.filter(pl.col("split") != "train")["clip_id"].to_list()))
    source_train = set(source.filter(pl.col("split") == "train")["clip_id"].to_list())
    from_train = all(c in source_train for c in train["clip_id"].to_list())
    same_again = isinstance(again, pl.DataFrame) and sorted(again["clip_id"].to_list()) == sorted(
        out["clip_id"].to_list()
    )
    return (counts, kept, from_train, same_again)


def _fewshot_outputs(fn: Any, course: Any) -> tuple[Any, ...]:
    df = fewshot_manifest(course)
    return tuple(_summary(fn(df, k, s), df, fn(df, k, s)) for k, s in _CASES)


def _fewshot_reference(course: Any) -> tuple[Any, ...]:
    from avexlab.workshop.course import few_shot_subset

    df = fewshot_manifest(course)
    return tuple(_summary(few_shot_subset(df, k, s), df, few_shot_subset(df, k, s)) for k, s in _CASES)


def few_shot(manifest, k, seed):  # noqa: ANN001, ANN201 - written as a learner writes it
    rng = np.random.default_rng(seed)
    train = manifest.filter(pl.col("split") == "train")
    keep = []
    for label in sorted(set(train["labels"].list.first().to_list())):
        ids = train.filter(pl.col("labels").list.first() == label)["clip_id"].to_list()
        keep += list(rng.choice(ids, size=min(k, len(ids)), replace=False))
    return manifest.filter((pl.col("split") != "train") | pl.col("clip_id").is_in(keep))


def _fewshot_total(manifest, k, seed):  # noqa: ANN001, ANN202
    train = manifest.filter(pl.col("split") == "train").sample(n=k, seed=seed)
    return pl.concat([train, manifest.filter(pl.col("split") != "train")])


def _fewshot_any_split(manifest, k, seed):  # noqa: ANN001, ANN202
    rng = np.random.default_rng(seed)
    keep = []
    for label in sorted(set(manifest["labels"].list.first().to_list())):
        ids = manifest.filter(pl.col("labels").list.first() == label)["clip_id"].to_list()
        keep += list(rng.choice(ids, size=min(k, len(ids)), replace=False))
    return manifest.filter(pl.col("clip_id").is_in(keep)).with_columns(split=pl.lit("train"))


def _fewshot_drops_eval(manifest, k, seed):  # noqa: ANN001, ANN202
    return few_shot(manifest, k, seed).filter(pl.col("split") == "train")


# ------------------------------------------------------------------------------------ s4-best-paradigm
def _paradigm_reference(course: Any) -> frozenset[str]:
    per = course.fewshot().filter(pl.col("shots") == SHOTS).group_by("encoder").agg(exact_mean("accuracy"))
    top = per["accuracy"].max()
    return frozenset(per.filter(pl.col("accuracy") == top)["encoder"].to_list())


def _paradigm_solution(course: Any) -> str:
    curve = course.fewshot().group_by("encoder", "shots").agg(exact_mean("accuracy"))  # the plotted curve
    return str(curve.filter(pl.col("shots") == SHOTS).sort("accuracy", descending=True)["encoder"][0])


EXERCISES = (
    Exercise(
        id="s4-few-shot",
        section=4,
        title="A few labels per class, no leak",
        kind="function",
        prompt=(
            "Write `few_shot(manifest, k, seed)`: the same manifest with only `k` **training** clips per "
            "class (the class is the first entry of `labels`), drawn at random with `seed`. Validation and "
            "test rows stay exactly as they are. Then move the *labels per class* slider to probe the "
            "encoders on your draw."
        ),
        hint=(
            "Filter `split == 'train'`; for each label pick `min(k, n)` clip ids with "
            "`np.random.default_rng(seed).choice(ids, size=..., replace=False)`; keep rows that are not "
            "training rows or whose `clip_id` you picked."
        ),
        reference=_fewshot_reference,
        solution=lambda c: few_shot,
        outputs=_fewshot_outputs,
        mistakes=(
            Mistake(
                "You kept k training clips in total. The task asks for k per class: with 2 per class every "
                "species is seen twice.",
                lambda c: _fewshot_total,
            ),
            Mistake(
                "Your training clips include validation or test clips: the probe would be scored on clips it "
                "was trained on (a leak). Draw only from `split == 'train'`.",
                lambda c: _fewshot_any_split,
            ),
            Mistake(
                "You dropped the validation and test rows: the probe needs them to pick its epoch and to be "
                "scored. Keep every non-training row.",
                lambda c: _fewshot_drops_eval,
            ),
        ),
        stub=(
            "def few_shot(manifest, k, seed):\n"
            '    """The manifest with k training clips per class (drawn with seed); val and test unchanged."""\n'
            "    ...\n"
        ),
    ),
    Exercise(
        id="s4-best-paradigm",
        section=4,
        title="Who learns most from two labels?",
        kind="choice",
        prompt=(
            f"In the few-shot curves above, which encoder's probe is best with **{SHOTS} labelled clips per "
            "class** (mean over the draws)?"
        ),
        hint=f"Read the curves at x = {SHOTS}, or sort the table's rows with shots == {SHOTS} by accuracy.",
        reference=_paradigm_reference,
        solution=_paradigm_solution,
        options=lambda c: c.encoder_keys,
    ),
)
