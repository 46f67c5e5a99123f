"""Shift sweeps: test sets that differ only in the swept knob, with the same calls."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from tolerance import assert_close_f32, fft_bin_error

from avexlab.errors import ConfigError
from avexlab.synth import render_shift_sweep

SAME = ["recording_id", "species", "individual", "call_type"]


def _test_scene(sweep, v) -> str:
    return sweep.suites[v].split("test")["path"][0]


def test_snr_sweep_keeps_every_call_and_changes_only_levels() -> None:
    sweep = render_shift_sweep("smoke", 0, "snr_db", [-5.0, 15.0])
    lo, hi = sweep.events[-5.0], sweep.events[15.0]
    assert lo.select(SAME + ["onset_s", "offset_s"]).equals(hi.select(SAME + ["onset_s", "offset_s"]))
    assert (lo["snr_db"] == -5.0).all() and (hi["snr_db"] == 15.0).all()
    assert (
        sweep.suites[-5.0].split("test")["labels"].to_list()
        == sweep.suites[15.0].split("test")["labels"].to_list()
    )
    key = lo.filter(pl.col("split") == "test")["recording_id"][0]
    a, b = sweep.worlds[-5.0].render(key), sweep.worlds[15.0].render(key)
    assert a.shape == b.shape and np.sqrt(np.mean(b**2)) > 1.5 * np.sqrt(np.mean(a**2))
    # the background alone (before the first call) is the same in both
    first = int(
        lo.filter(pl.col("recording_id") == key)["onset_s"].min() * sweep.worlds[-5.0].config.sample_rate
    )
    if first > 2000:
        # The same background samples through the same mixing, with no call there; but the recorder colouring
        # is one FFT pass over the whole recording (and the reverb an overlap-add of FFT blocks), whose
        # rounding spreads over every sample in proportion to the whole signal, calls included. Per sample:
        # 4 FFTs' error (fft_bin_error, per-sample root mean square ||x||_2 / sqrt(n)) through a response
        # whose gain spans +-recorder_response_db; each render on its own side.
        cfg = sweep.worlds[-5.0].config
        h_span = 10 ** (2 * cfg.recorder_response_db / 20)
        tol = sum(
            4 * h_span * float(fft_bin_error(x.size, np.linalg.norm(x))) / np.sqrt(x.size) for x in (a, b)
        )
        assert_close_f32(a[: first // 2], b[: first // 2], tol, what="background before the first call")


def test_overlap_sweep_moves_onsets_but_keeps_the_calls() -> None:
    sweep = render_shift_sweep("smoke", 0, "overlap", [0.0, 1.0])
    a, b = sweep.events[0.0], sweep.events[1.0]
    key = ["recording_id", "individual", "call_type", "snr_db", "distance_m"]
    assert a.select(key).sort(key).equals(b.select(key).sort(key))
    assert not a["onset_s"].sort().equals(b["onset_s"].sort())

    def crowding(ev: pl.DataFrame) -> float:  # mean number of other calls within 1 s of each onset
        out = []
        for _, g in ev.group_by("recording_id"):
            t = g["onset_s"].to_numpy()
            out.append((np.abs(t[:, None] - t[None, :]) < 1.0).sum(1).mean() - 1)
        return float(np.mean(out))

    assert crowding(b) > crowding(a)


@pytest.mark.parametrize("knob,values", [("rt60_s", [0.1, 2.0]), ("distance_m", [5.0, 80.0])])
def test_acoustic_sweeps_change_audio_not_annotations(knob: str, values: list[float]) -> None:
    sweep = render_shift_sweep("smoke", 0, knob, values)
    e0, e1 = sweep.events[values[0]], sweep.events[values[1]]
    assert e0.select(SAME + ["onset_s", "snr_db"]).equals(e1.select(SAME + ["onset_s", "snr_db"]))
    key = e0.filter(pl.col("split") == "test")["recording_id"][0]
    a, b = sweep.worlds[values[0]].render(key), sweep.worlds[values[1]].render(key)
    assert not np.allclose(a, b)
    assert sweep.suites[values[0]].name == f"syn-shift-{knob}={values[0]:g}"


def test_sweep_refuses_other_knobs() -> None:
    with pytest.raises(ConfigError, match="snr_db"):
        render_shift_sweep("smoke", 0, "sample_rate", [16000])
