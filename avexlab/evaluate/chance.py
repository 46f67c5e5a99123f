"""Chance levels: what each column of the paper-shaped tables scores for a predictor that knows nothing
about the audio, computed from the test items the column was measured on (the ``items`` table,
:data:`avexlab.evaluate.stats.ITEM_SCHEMA`).

The content-free predictor is a constant one: it gives every test clip the same output. Each metric then
scores exactly:

- probe ``accuracy`` (classification, individual ID): the majority-class rate of the dataset's test items
  (the classifier that always answers the most frequent class);
- probe ``map`` (detection, BirdSet): the mean over ALL classes of the class's prevalence among the test
  items. A constant score ties every item, so each class's average precision is its precision at the one
  threshold, the prevalence; a class without positives counts 0, as in the paper's mAP. (Scores drawn at
  random instead of tied average slightly more when a class has few positives: ``H_N / N`` for one positive
  among ``N`` items; prevalence is the constant predictor's.)
- retrieval ROC AUC (every variant): 0.5, all similarities tied;
- k-means ``nmi``: 0, every item in one cluster. NMI is not corrected for chance: a random split of a few
  items into several clusters scores above 0, so small test sets put the floor of a real clustering above
  the line drawn at 0.

A column is the mean over its datasets, so its chance level is the mean of the datasets' levels, as the
column's value is.
"""

from __future__ import annotations

import numpy as np
import polars as pl

from avexlab.errors import EvaluationError, expected_found

from .tables import ANALYSIS_COLUMNS

__all__ = ["CHANCE_RULES", "chance_levels"]

# metric -> how its chance level is read off the items (the column ``rule`` of chance_levels)
CHANCE_RULES: dict[str, str] = {
    "accuracy": "majority-class rate of the test items",
    "map": "mean class prevalence of the test items (a class without positives counts 0)",
    "roc_auc": "0.5 (every similarity tied)",
    "roc_auc_cross_recording": "0.5 (every similarity tied)",
    "nmi": "0 (one cluster; NMI is not chance-corrected: random clusters of few items score above 0)",
}

_RUN = ("encoder", "train_seed", "probe_seed", "layer")  # one evaluation's items of a dataset


def _one_run(d: pl.DataFrame, column: str, dataset: str) -> pl.DataFrame:
    """The items of one evaluation of ``dataset`` (sorted by item), after checking that every evaluation
    in ``d`` scored the same test items (so one chance level holds for all of them)."""
    metric = d["metric"][0]
    # a fingerprint of the evaluation's (item, true label) pairs, whatever their order
    truth = {"accuracy": ["label"], "map": ["targets"]}.get(metric, [])
    fingerprint = (pl.struct("item", *truth).hash() % (1 << 32)).sum()  # < 2**32 items: no overflow
    runs = d.group_by(_RUN).agg(pl.len().alias("n"), fingerprint.alias("items"))
    if runs.drop(_RUN).n_unique() > 1:
        raise EvaluationError(
            expected_found(
                f"test items of {dataset!r} ({column})",
                "the same test items and labels in every evaluation (one chance level for the column)",
                f"{runs.drop(_RUN).n_unique()} different item sets among {runs.height} evaluations",
                "Compute the chance levels per encoder: chance_levels(items.filter(pl.col('encoder') == e)).",
            )
        )
    first = runs.sort(_RUN, nulls_last=True).row(0, named=True)
    cond = pl.all_horizontal(pl.col(k).eq_missing(first[k]) for k in _RUN)
    return d.filter(cond).sort("item")


def _dataset_chance(d: pl.DataFrame, metric: str, column: str, dataset: str) -> float:
    if metric == "accuracy":
        labels = d["label"]
        if labels.null_count():
            raise EvaluationError(
                expected_found(
                    f"accuracy items of {dataset!r} ({column})",
                    "the true class code of every item (column 'label')",
                    f"{labels.null_count()} of {labels.len()} without one",
                    "Re-evaluate: items written by an older avexlab carry no labels.",
                )
            )
        return float(np.bincount(labels.to_numpy()).max() / labels.len())
    if metric == "map":
        targets = np.asarray(d["targets"].to_list(), dtype=bool)  # [n, C]
        return float(targets.mean(axis=0).mean())
    if metric.startswith("roc_auc"):
        return 0.5
    return 0.0  # nmi


def chance_levels(items: pl.DataFrame) -> pl.DataFrame:
    """The chance level of every column (:data:`~avexlab.evaluate.tables.ANALYSIS_COLUMNS`) the items
    measure: ``column, chance, rule, n_datasets`` (last layer not required: the test items are the same at
    every layer). Raises EvaluationError when two evaluations of a dataset scored different test items
    (e.g. different ``max_clips_per_split``): compute it per encoder then."""
    need = {"dataset", "task_family", "method", "metric", "item", "label", "targets", *_RUN}
    missing = sorted(need - set(items.columns))
    if missing:
        raise EvaluationError(
            expected_found(
                "items table", f"the columns {sorted(need)}", f"no {missing}", "Pass items.parquet."
            )
        )
    rows = []
    for column, family, method, metric in ANALYSIS_COLUMNS:
        sub = items.filter(
            (pl.col("task_family") == family) & (pl.col("method") == method) & (pl.col("metric") == metric)
        )
        if sub.height == 0:
            continue
        levels = [
            _dataset_chance(_one_run(d, column, str(ds)), metric, column, str(ds))
            for (ds,), d in sub.group_by("dataset", maintain_order=True)
        ]
        rows.append(
            {"column": column, "chance": float(np.mean(levels)), "rule": CHANCE_RULES[metric],
             "n_datasets": len(levels)}
        )  # fmt: skip
    return pl.DataFrame(
        rows, schema={"column": pl.String, "chance": pl.Float64, "rule": pl.String, "n_datasets": pl.Int64}
    )
