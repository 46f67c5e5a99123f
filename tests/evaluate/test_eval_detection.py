"""Event extraction and event-based F1 (hand-worked cases, collars, optimal matching)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from tolerance import assert_close_f32, f64_tol

from avexlab.errors import EvaluationError
from avexlab.evaluate.detection import event_f1, scores_to_events


def _events(rows):
    return pl.DataFrame(rows, schema=["recording_id", "onset_s", "offset_s", "label"], orient="row")


def test_scores_to_events_threshold_and_min_duration() -> None:
    s = np.zeros((20, 2))
    s[2:6, 0] = 0.9  # 4 frames of 0.1 s -> [0.2, 0.6)
    s[10, 0] = 0.9  # 1 frame: shorter than min_duration
    s[5:15, 1] = 0.5  # exactly at threshold: active
    ev = scores_to_events(s, ["a", "b"], hop_s=0.1, min_duration_s=0.15, recording_id="r1")
    assert ev["label"].to_list() == ["a", "b"]
    # frame index x hop: 0.1 is not a binary fraction (1 rounding) and the product another; the literal 1
    for col, want in (("onset_s", [0.2, 0.5]), ("offset_s", [0.6, 1.5])):
        assert_close_f32(ev[col].to_numpy(), want, f64_tol(want, ops=2), what=col)
    assert set(ev["recording_id"]) == {"r1"}


def test_median_filter_fills_gaps_and_frame_length_sets_offset() -> None:
    s = np.zeros((12, 1))
    s[2:9, 0] = 1.0
    s[5, 0] = 0.0  # a one-frame dropout
    raw = scores_to_events(s, ["a"], hop_s=1.0)
    assert raw.height == 2
    ev = scores_to_events(s, ["a"], hop_s=1.0, frame_s=5.0, median_filter_s=3.0)
    assert ev.height == 1
    assert (ev["onset_s"][0], ev["offset_s"][0]) == (2.0, 8.0 + 5.0)


def test_collars_onset_and_offset() -> None:
    ref = _events([("r", 1.0, 3.0, "a"), ("r", 10.0, 20.0, "a")])
    # onset within 0.2 s; offset tolerance is max(0.2, 20% of duration): 0.4 s and 2 s
    est = _events([("r", 1.19, 3.39, "a"), ("r", 10.1, 21.9, "a")])
    per_class, summary = event_f1(ref, est)
    assert per_class["tp"].to_list() == [2] and summary["micro_f1"] == 1.0
    est_bad = _events([("r", 1.25, 3.0, "a"), ("r", 10.0, 22.5, "a")])  # onset off by 0.25; offset by 2.5
    per_class, summary = event_f1(ref, est_bad)
    assert per_class["tp"].to_list() == [0] and summary["micro_f1"] == 0.0


def test_matching_is_optimal_not_greedy() -> None:
    # est 0 could match ref 0 or ref 1; est 1 only ref 0. A greedy first-come match of est 0 -> ref 0
    # leaves est 1 unmatched (1 TP); the optimal matching finds 2.
    ref = _events([("r", 1.0, 2.0, "a"), ("r", 1.3, 2.2, "a")])
    est = _events([("r", 1.15, 2.1, "a"), ("r", 0.85, 1.85, "a")])
    per_class, summary = event_f1(ref, est)
    assert per_class["tp"].to_list() == [2]


def test_labels_and_recordings_must_agree_and_averages() -> None:
    ref = _events([("r1", 0.0, 1.0, "a"), ("r2", 0.0, 1.0, "a"), ("r1", 5.0, 6.0, "b")])
    est = _events([("r1", 0.0, 1.0, "a"), ("r1", 0.0, 1.0, "b"), ("r1", 5.0, 6.0, "c")])
    per_class, summary = event_f1(ref, est)
    rows = {r["label"]: r for r in per_class.iter_rows(named=True)}
    assert (rows["a"]["tp"], rows["a"]["fn"], rows["a"]["fp"]) == (1, 1, 0)
    assert (rows["b"]["tp"], rows["b"]["fn"], rows["b"]["fp"]) == (0, 1, 1)
    assert rows["c"]["fp"] == 1
    # F1 from integer counts: a few divisions and products (4 roundings); the macro mean adds 3 terms and a
    # division; all terms non-negative, so relative to the value
    assert_close_f32(rows["a"]["f1"], 2 / 3, f64_tol(2 / 3, ops=4), what="f1 of a")
    assert_close_f32(summary["micro_f1"], 2 / 6, f64_tol(2 / 6, ops=4), what="micro f1")
    macro = (2 / 3 + 0 + 0) / 3
    assert_close_f32(summary["macro_f1"], macro, f64_tol(macro, ops=4 + 4), what="macro f1")


def test_errors() -> None:
    with pytest.raises(EvaluationError, match="missing"):
        event_f1(pl.DataFrame({"onset_s": [0.0]}), _events([("r", 0.0, 1.0, "a")]))
    with pytest.raises(EvaluationError, match="offset_s >= onset_s"):
        event_f1(_events([("r", 2.0, 1.0, "a")]), _events([("r", 0.0, 1.0, "a")]))
    with pytest.raises(EvaluationError, match="one column per label"):
        scores_to_events(np.zeros((3, 2)), ["a"], hop_s=0.1)
