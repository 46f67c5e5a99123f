"""Aggregations that give the same bits on every run.

polars splits a ``group_by`` (and a window ``over``) across threads and adds each thread's partial sum
in whatever order the threads finish, so a float mean of the same rows can differ in its last bits from
one call to the next (seen on the committed grid: ``paper_table`` disagreed with itself in 37 of 60
calls). Tables the project compares, commits or reports must not change when nothing changed, so every
float sum, mean and standard deviation over groups goes through these expressions: the group's values
are sorted first, which fixes the order of the additions (and makes the result independent of the
order of the rows, too). Nulls are ignored, as by the plain expressions.
"""

from __future__ import annotations

import polars as pl


def _col(col: str | pl.Expr) -> pl.Expr:
    return pl.col(col) if isinstance(col, str) else col


def exact_sum(col: str | pl.Expr) -> pl.Expr:
    """``col``'s sum, added in sorted order (the same bits on every run and for any row order)."""
    return _col(col).sort().sum()


def exact_mean(col: str | pl.Expr) -> pl.Expr:
    """``col``'s mean over its non-null values, added in sorted order (see :func:`exact_sum`)."""
    return _col(col).sort().mean()


def exact_std(col: str | pl.Expr, ddof: int = 1) -> pl.Expr:
    """``col``'s standard deviation (``ddof`` as polars), computed on sorted values (see :func:`exact_sum`)."""
    return _col(col).sort().std(ddof=ddof)
