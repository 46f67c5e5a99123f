"""Notebook 08 on a user's folder of recordings (the synthetic-world path runs in tests/notebooks with every
notebook): bad input gives a message, never a traceback; without labels it stops and says so; with labels
(appended as the notebook's buttons or `avexlab agile label` would) it trains, calibrates, detects and
exports Raven tables."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import polars as pl
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from agile_archive import truth  # noqa: E402

pytest.importorskip("marimo")

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "08_agile.py"


def _run(
    folder: Path | str, store: Path, queries: str = "dawn.wav@1.2-1.8\nnoon.wav@3.3-3.9"
) -> tuple[str, dict[str, Any]]:
    spec = importlib.util.spec_from_file_location("_nb_agile_user", NOTEBOOK)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    controls = {
        "scale": SimpleNamespace(value="smoke"),
        "seed": SimpleNamespace(value=0),
        "source": SimpleNamespace(value="my recordings"),
        "folder": SimpleNamespace(value=str(folder)),
        "data_root": SimpleNamespace(value=""),
        "encoder_spec": SimpleNamespace(value="logmel:tiny"),
        "window_s": SimpleNamespace(value=1.0),
        "hop_s": SimpleNamespace(value=0.5),
        "store_dir": SimpleNamespace(value=str(store)),
        "annotator": SimpleNamespace(value="tester"),
        "n_classes": SimpleNamespace(value=1),
        "k_hits": SimpleNamespace(value=12),
        "query_text": SimpleNamespace(value=queries),
        "query_class": SimpleNamespace(value="call"),
    }
    outputs, defs = module.app.run(defs=controls)
    text = "\n".join(str(getattr(o, "text", o)) for o in outputs if o is not None)
    return text, dict(defs)


@pytest.mark.slow
def test_notebook_on_a_folder_of_recordings(
    tmp_path: Path, archive: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    text, defs = _run(tmp_path / "nowhere", tmp_path / "s0")
    assert "Cannot use these recordings" in text and "nothing at" in text and "store" not in defs

    store_dir = tmp_path / "store"
    text, defs = _run(archive, store_dir)
    assert "Label more windows first" in text and "clf" not in defs
    store = defs["store"]
    assert defs["hits"].height == 12 and set(defs["hits"]["query"].to_list()) == {"call"}

    # the reviewer's labels, appended to the store's table (what the notebook's button does)
    from avexlab.agile.labels import BACKGROUND, LabelTable

    tr = truth(store.windows)
    table = LabelTable(store_dir / "labels.jsonl")
    table.add(
        store,
        tr.filter(pl.col("positives").list.contains("chirp"))["row"].to_list(),
        "call",
        annotator="tester",
    )
    table.add(
        store,
        tr.filter(pl.col("touched").list.len() == 0)["row"].to_list()[::2],
        BACKGROUND,
        annotator="tester",
    )
    text, defs = _run(archive, store_dir)
    assert "Label more" not in text and "Cannot" not in text
    assert defs["clf"].classes == ["call"] and "call" in defs["thresholds"]
    assert defs["report"]["class"].to_list() == ["call", "background", "macro avg"]
    assert defs["batch"].height == 8
    det = defs["detections"]
    assert det.height > 0 and set(det["label"].to_list()) == {"call"}
    assert len(defs["raven_files"]) == det["path"].n_unique()
    assert defs["truth"] is None and "curves" not in defs  # no annotations: no simulated sessions
