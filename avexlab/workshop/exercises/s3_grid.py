"""Section 3, architecture and data mix: read the grid (which mix is best), and a cell's gain over its
random-init twins by hand."""

from __future__ import annotations

from typing import Any

import polars as pl

from avexlab.frames import exact_mean

from .base import Exercise, Mistake, run_cases

MIX_ARCHITECTURE = "beats"
MIX_PARADIGM = "sl"
MIX_COLUMN = "BEANS clf probe"


def overview(course: Any) -> pl.DataFrame:
    """:func:`avexlab.workshop.course.grid_overview` of the course's grid (what the section shows)."""
    from avexlab.workshop.course import grid_overview

    return grid_overview(course.grid_results())


# -------------------------------------------------------------------------------------- s3-best-mix
def _mix_rows(course: Any) -> pl.DataFrame:
    return overview(course).filter(
        (pl.col("architecture") == MIX_ARCHITECTURE) & (pl.col("paradigm") == MIX_PARADIGM) & ~pl.col("twin")
    )


def _mix_reference(course: Any) -> frozenset[str]:
    # the tidy table itself, not the overview: mean over the suite's datasets of the last layer's accuracy
    from avexlab.evaluate.tables import last_layer

    res = last_layer(course.grid_results()).filter(
        (pl.col("architecture") == MIX_ARCHITECTURE)
        & (pl.col("paradigm") == MIX_PARADIGM)
        & (pl.col("checkpoint") != "random-init")
        & (pl.col("task_family") == "classification")
        & (pl.col("method") == "probe")
        & (pl.col("metric") == "accuracy")
    )
    per_mix = res.group_by("mix").agg(exact_mean("value"))
    top = per_mix["value"].max()
    return frozenset(per_mix.filter(pl.col("value") == top)["mix"].to_list())


def _mix_solution(course: Any) -> str:
    rows = _mix_rows(course).sort(MIX_COLUMN, descending=True)
    return str(rows["mix"][0])


def _mixes(course: Any) -> list[str]:
    return sorted(_mix_rows(course)["mix"].unique().to_list())


# ----------------------------------------------------------------------------------------- s3-gain
def gain_cases(course: Any) -> list[tuple[pl.DataFrame, str, str]]:
    """``(overview table, encoder, column)`` triples the check runs ``gain_over_twin`` on: two trained cells
    of each architecture that has random-init twins (a released model beside the grid, e.g. BirdNET, has
    none), on the first two paper columns the grid measured."""
    table = overview(course)
    cols = [c for c in table.columns if c not in ("encoder", "architecture", "mix", "paradigm", "twin")]
    with_twins = table.filter(pl.col("twin"))["architecture"].unique().to_list()
    cells = table.filter(~pl.col("twin") & pl.col("architecture").is_in(with_twins))
    cases = []
    for arch in sorted(cells["architecture"].unique().to_list()):
        for enc in cells.filter(pl.col("architecture") == arch)["encoder"].to_list()[:2]:
            cases += [(table, enc, col) for col in cols[:2]]
    return cases


def _gain_outputs(fn: Any, course: Any) -> tuple[Any, ...]:
    return tuple(None if o is None or o is Ellipsis else float(o) for o in run_cases(fn, gain_cases(course)))


def _gain_reference(course: Any) -> tuple[float, ...]:
    from avexlab.evaluate.tables import cells_vs_twins

    gains = cells_vs_twins(course.grid_results())
    return tuple(float(gains.filter(pl.col("encoder") == enc)[col][0]) for _, enc, col in gain_cases(course))


def gain_over_twin(table, encoder, column):  # noqa: ANN001, ANN201 - written as a learner writes it
    row = table.filter(pl.col("encoder") == encoder)
    arch = row["architecture"][0]
    twins = table.filter((pl.col("architecture") == arch) & pl.col("twin"))
    return row[column][0] - twins[column].mean()


def _gain_first_twin(table, encoder, column):  # noqa: ANN001, ANN202
    row = table.filter(pl.col("encoder") == encoder)
    twins = table.filter((pl.col("architecture") == row["architecture"][0]) & pl.col("twin"))
    return row[column][0] - twins[column][0]


def _gain_reversed(table, encoder, column):  # noqa: ANN001, ANN202
    return -gain_over_twin(table, encoder, column)


def _gain_all_twins(table, encoder, column):  # noqa: ANN001, ANN202
    row = table.filter(pl.col("encoder") == encoder)
    return row[column][0] - table.filter(pl.col("twin"))[column].mean()


EXERCISES = (
    Exercise(
        id="s3-best-mix",
        section=3,
        title="Which data mix?",
        kind="choice",
        prompt=(
            f"In this grid, which training data mix gives the {MIX_ARCHITECTURE} {MIX_PARADIGM.upper()} "
            f"cells the best `{MIX_COLUMN}` (linear-probe accuracy on the classification suite, mean over "
            "its datasets)? Read the table or the bars above."
        ),
        hint=(
            f"Keep the rows with architecture `{MIX_ARCHITECTURE}`, paradigm `{MIX_PARADIGM}` and no twin, "
            f"then compare their `{MIX_COLUMN}` column."
        ),
        reference=_mix_reference,
        solution=_mix_solution,
        options=_mixes,
    ),
    Exercise(
        id="s3-gain",
        section=3,
        title="Did training add anything?",
        kind="function",
        prompt=(
            "Write `gain_over_twin(table, encoder, column)`: the value of `column` for the trained cell "
            "`encoder` minus the **mean** over the random-init twins of the same architecture (rows with "
            "`twin == True`). `table` is the overview table above (a polars DataFrame)."
        ),
        hint=(
            "`table.filter(pl.col('encoder') == encoder)` gives the cell and its `architecture`; filter the "
            "twins with `(pl.col('architecture') == arch) & pl.col('twin')` and take `[column].mean()`."
        ),
        reference=_gain_reference,
        solution=lambda c: gain_over_twin,
        outputs=_gain_outputs,
        tol=1e-12,  # a difference of means of a few float64 values
        mistakes=(
            Mistake(
                "You subtracted a single twin. The grid trains several random inits per architecture: "
                "subtract their mean, so one lucky (or unlucky) init does not decide.",
                lambda c: _gain_first_twin,
            ),
            Mistake(
                "The sign is reversed: gain = trained cell minus twin (positive = training helped).",
                lambda c: _gain_reversed,
            ),
            Mistake(
                "You averaged the twins of every architecture. Compare a cell only with twins of its own "
                "architecture: the untrained networks differ by architecture.",
                lambda c: _gain_all_twins,
            ),
        ),
        stub=(
            "def gain_over_twin(table, encoder, column):\n"
            '    """The cell\'s value of column minus the mean of its architecture\'s random-init twins."""\n'
            "    ...\n"
        ),
    ),
)
