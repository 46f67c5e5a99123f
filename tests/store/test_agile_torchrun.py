"""A store built by a real 2-process ``torchrun`` (gloo, CPU) with the CLI's own command: each rank embeds
and writes its own shard, and the store reads as one: the same windows, in the same order, with the same
bits as a one-process build; the same store then serves search and classification."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from avexlab.agile.classifier import AgileClassifier, training_data
from avexlab.agile.labels import BACKGROUND, LabelTable
from avexlab.agile.search import Query, search
from avexlab.agile.store import EmbeddingStore, build_store
from avexlab.threads import torch_threads


@pytest.mark.slow
def test_two_torchrun_ranks_build_one_store(tmp_path: Path, archive: Path) -> None:
    out = tmp_path / "sharded"
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [
        str(torchrun), "--standalone", "--nproc_per_node=2", "-m", "avexlab.cli", "agile", "build", str(archive),
        "--out", str(out), "--encoder", "logmel:tiny", "--window-s", "1", "--hop-s", "0.5", "--unit-windows", "8",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    with torch_threads(1):
        one = build_store(
            archive, tmp_path / "one", "logmel:tiny", window_s=1.0, hop_s=0.5, unit_windows=8, progress=False
        )

    two = EmbeddingStore.open(out)
    seg = two.segments[0]
    assert len(seg.shards) == 2 and len(one.segments[0].shards) == 1
    # each rank wrote its own shard file and log, and nothing else
    for k in range(2):
        assert seg.shard_file(k).exists()
        lines = [json.loads(x) for x in seg.log_file(k).read_text().splitlines()]
        units = seg.units.filter(pl.col("shard") == k)["unit"].to_list()
        assert sorted(r["unit"] for r in lines) == units and {r["rank"] for r in lines} == {k}
    # the shards split the windows about evenly and read back as one table
    sizes = [hi - lo for lo, hi in seg.shards]
    assert abs(sizes[0] - sizes[1]) <= 8 + 8
    assert two.windows.equals(one.windows)
    assert two.vectors(np.arange(len(two))).tobytes() == one.vectors(np.arange(len(one))).tobytes()
    assert two.verify() == []

    # the same store serves search and classification
    hits = search(two, [Query("dawn.wav", 1.2, 1.8)], k=3)
    assert hits.height == 3
    labels = LabelTable(tmp_path / "labels.jsonl")
    labels.add(two, hits["row"].to_list(), "chirp", annotator="a")
    labels.add(two, [0, 40, 80], BACKGROUND, annotator="a")
    d = training_data(two, labels)
    clf = AgileClassifier().fit(d.X, d.Y, d.classes, stats=two.stats(), encoder_hash=two.encoder_meta["hash"])
    assert (clf.predict_proba(d.X)[:, 0] >= 0.5).tolist() == (d.Y[:, 0] == 1).tolist()
