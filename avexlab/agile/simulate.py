"""Simulated labelling sessions on an annotated archive: how many labels a strategy needs.

Where the truth is known (the synthetic world, or recordings that were fully annotated), a session can
be replayed with a reviewer who answers from the annotations (:meth:`LabelTable.add_from_truth`):
start from a few labelled windows, then train -> score -> ask for the next batch (margin, uncertainty or
random) -> label it -> train ..., recording after every round the classifier's ROC AUC per class on
held-out windows. Comparing strategies by the labels they need to reach a target AUC is how active
learning is judged (random sampling is the control).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl

from .active import next_batch
from .classifier import AgileClassifier, training_data
from .labels import LabelTable
from .store import EmbeddingStore

__all__ = ["evaluate_against_truth", "labels_to_reach", "simulate_session"]


def evaluate_against_truth(
    probs: np.ndarray, truth: pl.DataFrame, rows: np.ndarray, classes: Sequence[str]
) -> dict[str, float]:
    """ROC AUC per class of ``probs [len(rows), C + 1]`` against the truth of ``rows``: positives are
    windows holding a call of the class, negatives windows it does not touch (cut calls are left out).
    Classes without both kinds among ``rows`` are nan. Also ``macro`` (mean over defined classes)."""
    from sklearn.metrics import roc_auc_score

    t = truth.select("row", "positives", "touched").to_dict(as_series=False)
    where = {r: i for i, r in enumerate(t["row"])}
    out: dict[str, float] = {}
    for j, c in enumerate(classes):
        y, s = [], []
        for k, r in enumerate(rows.tolist()):
            i = where[r]
            if c in t["positives"][i]:
                y.append(1)
            elif c not in t["touched"][i]:
                y.append(0)
            else:
                continue
            s.append(probs[k, j])
        out[c] = float(roc_auc_score(y, s)) if 0 < sum(y) < len(y) else float("nan")
    vals = [v for v in out.values() if np.isfinite(v)]
    out["macro"] = float(np.mean(vals)) if vals else float("nan")
    return out


def simulate_session(
    store: EmbeddingStore,
    truth: pl.DataFrame,
    classes: Sequence[str],
    *,
    start_rows: Sequence[int],
    strategy: Literal["margin", "uncertainty", "random"] = "margin",
    batch: int = 10,
    rounds: int = 10,
    pool_rows: np.ndarray | None = None,
    eval_rows: np.ndarray | None = None,
    seed: int = 0,
    classifier: dict[str, Any] | None = None,
) -> pl.DataFrame:
    """Replay a session: label ``start_rows`` from the truth, then ``rounds`` times train, score the
    ``pool_rows`` (default: every window), label the next ``batch`` chosen by ``strategy`` (seeded by
    ``seed`` and the round). Returns one row per round: ``round``, ``labels`` (labelled windows),
    ``macro_auc`` and one ``auc_<class>`` column, measured on ``eval_rows`` (default: every window;
    pass held-out recordings for an honest curve)."""
    n = store.n_rows
    pool = np.arange(n) if pool_rows is None else np.asarray(pool_rows, dtype=np.int64)
    held = np.arange(n) if eval_rows is None else np.asarray(eval_rows, dtype=np.int64)
    X_all = store.vectors(np.arange(n))
    stats = store.stats()
    params = dict(classifier or {})
    rows_out = []
    with tempfile.TemporaryDirectory() as tmp:
        table = LabelTable(Path(tmp) / "labels.jsonl")
        table.add_from_truth(store, list(start_rows), truth, classes, source="simulated:start")
        outside = np.setdiff1d(np.arange(n), pool)
        for rnd in range(rounds + 1):
            data = training_data(store, table, classes=classes)
            clf = AgileClassifier(seed=seed, **params).fit(data.X, data.Y, data.classes, stats=stats)
            probs = clf.predict_proba(X_all)
            aucs = evaluate_against_truth(probs[held], truth, held, classes)
            rows_out.append(
                {
                    "round": rnd,
                    "labels": len(data),
                    "macro_auc": aucs["macro"],
                    **{f"auc_{c}": aucs[c] for c in classes},
                }
            )
            if rnd == rounds:
                break
            labelled = np.concatenate([data.rows, outside])
            pick = next_batch(
                store, probs, batch, strategy=strategy, labelled=labelled, seed=seed * 1000 + rnd, spread=True
            )
            if pick.height == 0:
                break
            table.add_from_truth(store, pick["row"].to_list(), truth, classes, source=f"simulated:{strategy}")
    return pl.DataFrame(rows_out)


def labels_to_reach(curve: pl.DataFrame, target: float, column: str = "macro_auc") -> int | None:
    """The labelled-window count of the first round whose ``column`` reaches ``target`` (None: never)."""
    hit = curve.filter(pl.col(column) >= target)
    return int(hit["labels"][0]) if hit.height else None
