"""Small tidy tables that notebooks display next to figures."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import polars as pl

from avexlab.errors import ConfigError, expected_found


def augmentation_summary(
    result: Mapping[str, Any], clip_ids: Sequence[str], label_names: Sequence[str]
) -> pl.DataFrame:
    """One row per clip of an :func:`avexlab.augment.preview` result: what each augmentation did.

    Args:
        result: the dict ``preview`` returns (``targets_before``/``targets_after`` ``[B, C]`` multi-hot,
            and, when the augmentation ran, ``noise_applied [B]``, ``snr_db [B]``, ``mixup_applied``,
            ``mixup_pairs [n, 2]`` (target, source), ``mixup_lambda [n]``).
        clip_ids: the ``B`` clip ids of the batch, in batch order.
        label_names: the ``C`` label names (column order of the targets).

    Columns: ``clip``, ``labels before``, ``noise`` (bool), ``SNR (dB)`` (null without noise),
    ``mixed with`` (clip id of the source mixed in, null if none), ``lam`` (weight of the clip itself),
    ``labels after`` (labels are ``", "``-joined).
    """
    n = len(clip_ids)
    before, after = np.asarray(result["targets_before"]), np.asarray(result["targets_after"])
    if before.shape != (n, len(label_names)) or after.shape != before.shape:
        raise ConfigError(
            expected_found(
                "augmentation targets",
                f"shape [{n}, {len(label_names)}] (clips x labels)",
                f"{list(before.shape)} before and {list(after.shape)} after",
                "Pass the clip ids and label names of the batch given to preview().",
            )
        )
    names = np.asarray(label_names, dtype=object)

    def joined(targets: np.ndarray) -> list[str]:
        return [", ".join(names[row > 0].tolist()) for row in targets]

    noise = np.asarray(result.get("noise_applied", np.zeros(n, dtype=bool)), dtype=bool)
    snr = np.asarray(result.get("snr_db", np.full(n, np.nan)), dtype=np.float64)
    partner: list[str | None] = [None] * n
    lam: list[float | None] = [None] * n
    if bool(result.get("mixup_applied", False)):
        for (i, j), weight in zip(
            np.asarray(result["mixup_pairs"]), np.asarray(result["mixup_lambda"]), strict=True
        ):
            partner[int(i)], lam[int(i)] = clip_ids[int(j)], float(weight)
    return pl.DataFrame(
        {
            "clip": list(clip_ids),
            "labels before": joined(before),
            "noise": noise.tolist(),
            "SNR (dB)": [float(s) if ok else None for s, ok in zip(snr, noise, strict=True)],
            "mixed with": partner,
            "lam": lam,
            "labels after": joined(after),
        },
        schema_overrides={"mixed with": pl.String, "lam": pl.Float64, "SNR (dB)": pl.Float64},
    )
