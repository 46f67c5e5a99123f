"""Evaluation of frozen embeddings: the paper's metrics (probe, retrieval, clustering), event-level
detection, embedding extraction with a cache, suites and the tidy results table.

Python API other code relies on (imported lazily, so ``import avexlab.evaluate`` stays light):
``retrieval_roc_auc(embeddings, labels) -> float``, ``retrieval_scores``,
``clustering_scores(embeddings, labels) -> {"nmi", "ari", "v_measure", "k"}``,
``mean_average_precision(scores, targets) -> float`` (the paper's: all classes, absent ones count 0),
``mean_average_precision_present``, ``accuracy``, ``balanced_accuracy``, ``macro_f1``,
``LinearProbe``, ``MLPProbe``, ``scores_to_events``, ``event_f1``; ``extract_embeddings`` /
``load_embeddings`` -> ``Embeddings``; ``EvalSpec`` (how to evaluate) and ``evaluate_suite`` -> tidy
results table; ``paper_table``, ``ood_report`` (pivots of it); ``individual_id_scores``;
``load_results``, ``save_results``, ``write_html_report``. Evaluating on a synthetic world (which opens
it) lives in :mod:`avexlab.experiments`.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    "accuracy": "metrics",
    "balanced_accuracy": "metrics",
    "macro_f1": "metrics",
    "average_precision_per_class": "metrics",
    "mean_average_precision": "metrics",
    "mean_average_precision_present": "metrics",
    "retrieval_roc_auc": "retrieval",
    "retrieval_scores": "retrieval",
    "clustering_scores": "clustering",
    "scores_to_events": "detection",
    "event_f1": "detection",
    "LinearProbe": "probe",
    "MLPProbe": "probe",
    "Embeddings": "embed",
    "extract_embeddings": "embed",
    "load_embeddings": "embed",
    "resolve_encoder": "embed",
    "evaluate_suite": "suites",
    "evaluate_embeddings": "suites",
    "EvalSpec": "spec",
    "resolve_layers": "spec",
    "paper_table": "tables",
    "ood_report": "tables",
    "RESULT_SCHEMA": "tables",
    "individual_id_scores": "individual",
    "individual_retrieval": "individual",
    "load_results": "report",
    "save_results": "report",
    "write_html_report": "report",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
