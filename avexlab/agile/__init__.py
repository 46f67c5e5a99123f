"""Agile modeling: from one example of a call to a classifier you can trust over a whole archive.

The loop (each step one module, each callable from Python, the CLI's ``avexlab agile`` and notebook 08):

1. :mod:`~avexlab.agile.store`: every window of an archive embedded once by one encoder, on disk
   (appendable, resumable after a kill, sharded under ``torchrun``, memory-mapped when read).
2. :mod:`~avexlab.agile.search`: search by example (a clip, a selection, several), exact or through an
   approximate ``usearch`` index whose recall against exact search is measured and recorded.
3. :mod:`~avexlab.agile.labels`: an append-only table of positive / negative / background labels with
   who and when; :mod:`~avexlab.agile.classifier`: a linear (or small MLP) classifier on frozen
   embeddings that owns its normalisation, with an explicit background output and class weights.
4. :mod:`~avexlab.agile.calibration`: temperature / Platt scaling, ECE and reliability curves,
   per-class thresholds for a target precision (or recall) with bootstrap intervals, a per-class report.
5. :mod:`~avexlab.agile.active`: what to review next (margin, uncertainty, or random as the control).
6. :mod:`~avexlab.agile.detect`: scores over the store, detections, Raven selection tables and parquet.

:mod:`~avexlab.agile.simulate` replays sessions on annotated archives (a reviewer answering from the
annotations) to compare strategies; ``avexlab agile ...`` (:mod:`~avexlab.agile.cli`) runs each step
from the shell.

Names are resolved lazily so that ``import avexlab.agile`` stays cheap. The functions ``search`` and
``detect`` share their modules' names: import them from ``avexlab.agile.search`` / ``avexlab.agile.detect``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .active import next_batch
    from .calibration import (
        Calibrator,
        classification_report,
        expected_calibration_error,
        reliability_curve,
        threshold_for_precision,
        threshold_for_recall,
    )
    from .classifier import AgileClassifier, training_data
    from .detect import read_raven_detections, score_store, write_detections, write_raven
    from .index import SearchIndex
    from .labels import BACKGROUND, LabelTable, window_truth
    from .search import Query
    from .simulate import simulate_session
    from .store import EmbeddingStore, StoreError, archive_recordings, build_store, import_embeddings

_EXPORTS: dict[str, str] = {
    "EmbeddingStore": "store",
    "StoreError": "store",
    "build_store": "store",
    "import_embeddings": "store",
    "archive_recordings": "store",
    "SearchIndex": "index",
    "Query": "search",
    "BACKGROUND": "labels",
    "LabelTable": "labels",
    "window_truth": "labels",
    "simulate_session": "simulate",
    "AgileClassifier": "classifier",
    "training_data": "classifier",
    "Calibrator": "calibration",
    "classification_report": "calibration",
    "expected_calibration_error": "calibration",
    "reliability_curve": "calibration",
    "threshold_for_precision": "calibration",
    "threshold_for_recall": "calibration",
    "next_batch": "active",
    "score_store": "detect",
    "write_detections": "detect",
    "write_raven": "detect",
    "read_raven_detections": "detect",
}

__all__ = [
    "AgileClassifier",
    "BACKGROUND",
    "Calibrator",
    "EmbeddingStore",
    "LabelTable",
    "Query",
    "SearchIndex",
    "StoreError",
    "archive_recordings",
    "build_store",
    "classification_report",
    "expected_calibration_error",
    "import_embeddings",
    "next_batch",
    "read_raven_detections",
    "reliability_curve",
    "score_store",
    "simulate_session",
    "threshold_for_precision",
    "threshold_for_recall",
    "training_data",
    "window_truth",
    "write_detections",
    "write_raven",
]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
