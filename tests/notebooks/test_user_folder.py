"""05_call_types on a user's recordings (a folder, or a manifest made from annotations): bad input gives a
message in the notebook, never a traceback."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("marimo")

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "05_call_types.py"
SR = 16000


def _run(folder: Path, encoder: str, root: Path | None = None) -> tuple[str, dict[str, Any]]:
    """Run the notebook with its control cell replaced; return all cell output as text, and the defs."""
    spec = importlib.util.spec_from_file_location("_nb_call_types_user", NOTEBOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    controls = {
        "scale": SimpleNamespace(value="smoke"),
        "seed": SimpleNamespace(value=0),
        "source": SimpleNamespace(value="my recordings"),
        "folder": SimpleNamespace(value=str(folder)),
        "data_root": SimpleNamespace(value="" if root is None else str(root)),
        "encoder_spec": SimpleNamespace(value=encoder),
        "clip_s": SimpleNamespace(value=1.0),
    }
    outputs, defs = module.app.run(defs=controls)
    text = "\n".join(str(getattr(o, "text", o)) for o in outputs if o is not None)
    return text, dict(defs)


def _write_calls(folder: Path, label: str, freq: float, n: int = 3) -> None:
    (folder / label).mkdir(parents=True, exist_ok=True)
    t = np.arange(SR // 2) / SR
    for i in range(n):
        tone = 0.3 * np.sin(2 * np.pi * freq * (1 + 0.05 * i) * t)
        sf.write(folder / label / f"{label}_{i}.wav", tone.astype(np.float32), SR)


@pytest.mark.slow
def test_folder_without_audio_shows_a_message(tmp_path: Path, smoke_env: dict[str, str]) -> None:
    (tmp_path / "song").mkdir()
    (tmp_path / "song" / "notes.txt").write_text("no audio here")
    text, defs = _run(tmp_path, "logmel:tiny")
    assert "Cannot use these recordings" in text and "DataNotFoundError" in text
    assert "embeddings" not in defs


@pytest.mark.slow
def test_unreadable_file_is_named(tmp_path: Path, smoke_env: dict[str, str]) -> None:
    _write_calls(tmp_path, "song", 2000.0)
    (tmp_path / "song" / "broken.wav").write_bytes(b"RIFF\x00\x00not really audio")
    text, defs = _run(tmp_path, "logmel:tiny")
    assert "Cannot use these recordings" in text and "broken.wav" in text
    assert "embeddings" not in defs


@pytest.mark.slow
def test_checkpoint_of_the_wrong_kind_shows_a_message(tmp_path: Path, smoke_env: dict[str, str]) -> None:
    _write_calls(tmp_path / "audio", "song", 2000.0)
    _write_calls(tmp_path / "audio", "alarm", 4000.0)
    bogus = tmp_path / "model.pt"
    bogus.write_bytes(b"this is not a checkpoint")
    text, defs = _run(tmp_path / "audio", str(bogus))
    assert "Cannot use this encoder" in text and "CheckpointError" in text
    assert "encoder" not in defs or defs["encoder"] is None


@pytest.mark.slow
def test_a_good_folder_is_mapped_and_clustered(tmp_path: Path, smoke_env: dict[str, str]) -> None:
    _write_calls(tmp_path, "song", 1000.0)
    _write_calls(tmp_path, "alarm", 5000.0)
    text, defs = _run(tmp_path, "logmel:tiny")
    assert "Cannot" not in text
    assert defs["embeddings"].array(-1).shape[0] == 6
    assert sorted(t.name for t in defs["figure"].data) == ["alarm", "song"]
    assert defs["labels"].columns == ["label"]


@pytest.mark.slow
def test_a_raven_manifest_is_mapped_per_selection(tmp_path: Path, smoke_env: dict[str, str]) -> None:
    """A long recording annotated in Raven -> ``avexlab data from-raven`` -> the notebook maps one point
    per selection; with the wrong audio root it names the missing file instead."""
    from typer.testing import CliRunner

    from avexlab.cli import app

    t = np.arange(6 * SR) / SR
    song = np.where((t % 2) < 1, np.sin(2 * np.pi * 1200 * t), np.sin(2 * np.pi * 4500 * t))
    (tmp_path / "audio").mkdir()
    sf.write(tmp_path / "audio" / "dawn.wav", (0.3 * song).astype(np.float32), SR)
    rows = [
        f"{i + 1}\t{i * 1.0 + 0.1:.1f}\t{i * 1.0 + 0.9:.1f}\t{'low' if i % 2 == 0 else 'high'}"
        for i in range(6)
    ]
    (tmp_path / "dawn.txt").write_text(
        "Selection\tBegin Time (s)\tEnd Time (s)\tCall\n" + "\n".join(rows) + "\n"
    )
    made = CliRunner().invoke(
        app,
        [
            "data", "from-raven", str(tmp_path / "dawn.txt"), "--audio-root", str(tmp_path / "audio"),
            "--audio-path", "dawn.wav", "--label-column", "Call", "--dataset", "dawn",
            "--out", str(tmp_path / "dawn.parquet"),
        ],
    )  # fmt: skip
    assert made.exit_code == 0, made.output

    text, defs = _run(tmp_path / "dawn.parquet", "logmel:tiny", root=tmp_path / "audio")
    assert "Cannot" not in text
    assert defs["embeddings"].array(-1).shape[0] == 6
    assert sorted(t.name for t in defs["figure"].data) == ["high", "low"]

    text, defs = _run(tmp_path / "dawn.parquet", "logmel:tiny")  # root defaults to the manifest's folder
    assert "Cannot use these recordings" in text and "dawn.wav" in text
    assert "embeddings" not in defs
