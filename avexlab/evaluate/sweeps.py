"""Evaluate encoders over a shift sweep: the same detection test set re-rendered with one knob changed.

:func:`evaluate_shift_sweep` scores an encoder on every suite of a
:class:`~avexlab.synth.world.ShiftSweep` (from :func:`avexlab.synth.render_shift_sweep`; any object with
``knob``, ``values`` and ``suites: {value: Suite}`` will do) and returns the tidy results table
(:data:`~avexlab.evaluate.tables.RESULT_SCHEMA`) with two more columns, ``knob`` (e.g. ``snr_db``) and
``knob_value`` (float, in the knob's unit: dB, seconds, metres or the overlap fraction), which
:func:`~avexlab.evaluate.tables.ood_report` reads to give the gap per knob value.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import polars as pl
import torch

from avexlab.data.suite import Suite
from avexlab.errors import ConfigError, expected_found

from .embed import Embeddings, resolve_encoder
from .spec import EvalSpec
from .suites import evaluate_suite
from .tables import RESULT_SCHEMA, ood_report

__all__ = ["SWEEP_SCHEMA", "evaluate_shift_sweep"]

SWEEP_SCHEMA: dict[str, pl.DataType] = {**RESULT_SCHEMA, "knob": pl.String(), "knob_value": pl.Float64()}


def evaluate_shift_sweep(
    encoder: torch.nn.Module | Embeddings | str | os.PathLike[str],
    sweep: Any,
    spec: EvalSpec | None = None,
) -> pl.DataFrame:
    """Evaluate ``encoder`` on each knob value of ``sweep``, in the order of ``sweep.values``.

    Args:
        encoder: what :func:`~avexlab.evaluate.suites.evaluate_suite` accepts: an ``Encoder``,
            precomputed :class:`Embeddings` covering every sweep suite's clips, a checkpoint path, a
            ``NAME:SIZE`` spec (random init, seeded) or an embeddings file. A spec or checkpoint is
            resolved once, so every knob value sees the same weights.
        sweep: a :class:`~avexlab.synth.world.ShiftSweep` (``knob``, ``values`` and one suite per value
            in ``suites``).
        spec: how every value is evaluated (:class:`~avexlab.evaluate.spec.EvalSpec`). With
            ``spec.max_clips_per_split`` the values keep the same clips wherever their labels agree (the draw
            depends on labels and clip ids, not on how the audio was rendered): always for ``snr_db``,
            ``rt60_s`` and ``distance_m``; ``overlap`` moves onsets, so window labels and picks may
            differ.

    Returns:
        :data:`SWEEP_SCHEMA`: the results table plus ``knob`` and ``knob_value``.

    Raises:
        ConfigError: the sweep has no values, or a value has no suite.
    """
    values = tuple(float(v) for v in sweep.values)
    missing = [v for v in values if v not in sweep.suites]
    if not values or missing:
        raise ConfigError(
            expected_found(
                f"shift sweep over {sweep.knob!r}",
                "at least one knob value, each with a suite",
                f"values {list(values)}, none for {missing}" if missing else "no values",
                "Build it with avexlab.synth.render_shift_sweep(preset, seed, knob, values).",
            )
        )
    if isinstance(encoder, str | os.PathLike):
        path = Path(encoder)
        if not (path.suffix in (".npz", ".parquet") and path.exists()):  # as evaluate_suite reads it
            encoder = resolve_encoder(str(encoder))
    frames = []
    for v in values:
        suite: Suite = sweep.suites[v]
        res = evaluate_suite(encoder, suite, spec)
        frames.append(
            res.with_columns(
                pl.lit(sweep.knob, pl.String).alias("knob"), pl.lit(v, pl.Float64).alias("knob_value")
            )
        )
    return pl.concat(frames).cast(SWEEP_SCHEMA)  # type: ignore[arg-type]


def sweep_ood_report(focal_results: pl.DataFrame, sweep_results: pl.DataFrame) -> pl.DataFrame:
    """The focal -> soundscape gap at each knob value of a sweep.

        Args:
            focal_results: results table of focal suites (rows with ``domain == "focal"`` are used), e.g.
                :func:`~avexlab.evaluate.suites.evaluate_suite` on ``syn-beans-clf``.
            sweep_results: :func:`evaluate_shift_sweep`'s table (soundscape rows with ``knob`` and
                ``knob_value``).

        Returns:
    :func:`~avexlab.evaluate.tables.ood_report`'s table keyed by ``encoder, method, metric, knob,
            knob_value``: the focal score (the same at every value) beside the soundscape score at that
            value, and ``gap = soundscape - focal``. Only metrics measured in both appear.
    """
    missing = sorted({"knob", "knob_value"} - set(sweep_results.columns))
    if missing:
        raise ConfigError(
            expected_found(
                "sweep results",
                "columns knob and knob_value",
                f"none of {missing}",
                "Pass the table evaluate_shift_sweep returns.",
            )
        )
    focal = focal_results.filter(pl.col("domain") == "focal").select(list(RESULT_SCHEMA))
    points = sweep_results.select("knob", "knob_value").unique(maintain_order=True)
    both = pl.concat(
        [focal.join(points, how="cross"), sweep_results.select(list(SWEEP_SCHEMA))], how="vertical_relaxed"
    )
    return ood_report(both)
