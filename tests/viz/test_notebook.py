from __future__ import annotations

from pathlib import Path

import pytest

from avexlab.errors import ConfigError
from avexlab.viz.notebook import SCALE_ENV, default_scale, world_preset


def test_default_scale_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SCALE_ENV, raising=False)
    assert default_scale() == "workshop"
    assert default_scale("smoke") == "smoke"
    monkeypatch.setenv(SCALE_ENV, " Paper ")
    assert default_scale() == "paper"
    monkeypatch.setenv(SCALE_ENV, "huge")
    with pytest.raises(ConfigError, match="AVEXLAB_SCALE"):
        default_scale()


def test_world_preset_per_scale() -> None:
    assert [world_preset(s) for s in ("smoke", "workshop", "paper")] == ["smoke", "quick", "paper"]
    with pytest.raises(ConfigError, match="scale"):
        world_preset("tiny")


def test_catch_user_error_returns_the_message_and_lets_bugs_through() -> None:
    from avexlab.errors import DataNotFoundError
    from avexlab.viz.notebook import catch_user_error

    def missing() -> None:
        raise DataNotFoundError("folder '/x': expected audio, found none. Put files there.")

    assert catch_user_error(lambda a, b=0: a + b, 1, b=2) == (3, None)
    value, message = catch_user_error(missing)
    assert (
        value is None
        and message == "DataNotFoundError: folder '/x': expected audio, found none. Put files there."
    )
    with pytest.raises(ZeroDivisionError):
        catch_user_error(lambda: 1 / 0)


def test_label_columns_keeps_usable_columns_only() -> None:
    import polars as pl

    from avexlab.viz.notebook import label_columns

    frame = pl.DataFrame(
        {
            "call_type": ["song", "alarm", "song"],
            "individual": ["a", None, "b"],  # a gap: unusable
            "species": ["x", "x", "x"],  # one value: nothing to separate
            "labels": [["song"], ["alarm"], ["song"]],  # repeats call_type
        }
    )
    assert label_columns(frame).columns == ["call_type"]
    folder = pl.DataFrame({"labels": [["a"], ["b"], ["b"]], "call_type": [None, None, None]})
    assert label_columns(folder)["label"].to_list() == ["a", "b", "b"]
    multi = pl.DataFrame({"labels": [["a", "b"], ["b"]]})
    assert label_columns(multi).columns == []


def test_load_clip_reads_the_row_segment(tmp_path: Path) -> None:
    import numpy as np
    import polars as pl
    import soundfile as sf

    from avexlab.viz.notebook import load_clip

    wave = np.linspace(-0.5, 0.5, 16000, dtype=np.float32)
    sf.write(tmp_path / "a.wav", wave, 16000, subtype="FLOAT")
    frame = pl.DataFrame({"path": ["a.wav"], "start_s": [0.25], "end_s": [0.5]})
    out, sr = load_clip(frame, 0, tmp_path)
    assert sr == 16000 and out.shape == (4000,)
    np.testing.assert_array_equal(out, wave[4000:8000])  # FLOAT samples, read back as written


def test_open_recordings_takes_a_folder_or_a_manifest(tmp_path) -> None:
    import numpy as np
    import soundfile as sf

    from avexlab.data import write_manifest
    from avexlab.errors import AvexlabError, DataNotFoundError
    from avexlab.viz.notebook import open_recordings

    for label in ("song", "alarm"):
        (tmp_path / "rec" / label).mkdir(parents=True)
        sf.write(tmp_path / "rec" / label / "a.wav", np.zeros(800, dtype=np.float32), 16000)
    manifest, root = open_recordings(tmp_path / "rec")
    assert root == str(tmp_path / "rec") and sorted(manifest["clip_id"]) == [
        "my-folder/alarm/a",
        "my-folder/song/a",
    ]
    with pytest.raises(ConfigError, match="its own root"):
        open_recordings(tmp_path / "rec", tmp_path)

    write_manifest(manifest, tmp_path / "m.csv")
    again, root = open_recordings(tmp_path / "m.csv", tmp_path / "rec")
    assert root == str(tmp_path / "rec") and again["clip_id"].to_list() == manifest["clip_id"].to_list()
    # the root defaults to the manifest's folder, where no audio is
    with pytest.raises(AvexlabError, match="song/a.wav"):
        open_recordings(tmp_path / "m.csv")
    with pytest.raises(DataNotFoundError, match="from-raven"):
        open_recordings(tmp_path / "nothing")
