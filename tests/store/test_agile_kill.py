"""SIGKILL during a store build, then the same build again: no duplicates, no gaps, the same bits.

The build runs in a real subprocess. So that kills land inside the interesting places (while a unit is
being embedded, and while its commit line is being written), the child slows two steps down without
changing what they do: each unit's embedding waits 10 ms before returning, and its commit line is written
8 bytes at a time with pauses (~70 ms a line, like a slow network disk). The first kill is aimed: it waits
until a commit line has begun to grow the log, then lands a few ms later, inside that write; the second
lands at a random time. Everything else is the library's own.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from avexlab.agile.store import EmbeddingStore, build_store
from avexlab.threads import torch_threads

CHILD = textwrap.dedent(
    """
    import os, sys, time, types
    import avexlab.agile.store as st

    real_embed = st.embed_segments

    def slow_embed(*a, **kw):
        out = real_embed(*a, **kw)
        if not slow_embed.started:  # the plan is on disk and the first unit embedded
            print("start", flush=True)
            slow_embed.started = True
        time.sleep(0.01)
        return out

    slow_embed.started = False

    def dribble(fd, data):
        for i in range(0, len(data), 8):
            os.write(fd, data[i : i + 8])
            time.sleep(0.006)
        return len(data)

    st.embed_segments = slow_embed
    st.os = types.SimpleNamespace(**{k: getattr(os, k) for k in dir(os) if not k.startswith("__")})
    st.os.write = dribble
    st.build_store(sys.argv[1], sys.argv[2], "logmel:tiny", window_s=1.0, hop_s=0.5, unit_windows=3, progress=False)
    print("done", flush=True)
    """
)
N_KILLS = 2


def _commit_lines(log: Path) -> tuple[list[int], int]:
    units, torn = [], 0
    for line in log.read_bytes().split(b"\n"):
        if not line:
            continue
        try:
            units.append(int(json.loads(line)["unit"]))
        except ValueError:
            torn += 1
    return units, torn


@pytest.mark.slow
def test_sigkill_during_build_then_resume_gives_the_uninterrupted_store(
    tmp_path: Path, archive: Path
) -> None:
    with torch_threads(1):
        ref = build_store(
            archive, tmp_path / "ref", "logmel:tiny", window_s=1.0, hop_s=0.5, unit_windows=3, progress=False
        )
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    out = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    rng = random.Random(0)
    seen: Counter[str] = Counter()
    committed_after: list[int] = []
    for cycle in range(N_KILLS):
        proc = subprocess.Popen(
            [sys.executable, str(script), str(archive), str(out)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None and proc.stdout.readline().strip() == "start", (
            proc.stderr.read() if proc.stderr else ""
        )
        log = out / "segments" / "000000" / "shard-000.log"
        if cycle == 0:  # aimed: wait for the log to grow (a commit line is being written), then land in it
            size = log.stat().st_size if log.exists() else 0
            deadline = time.time() + 30
            while (log.stat().st_size if log.exists() else 0) == size and time.time() < deadline:
                time.sleep(0.001)
            time.sleep(rng.uniform(0.0, 0.03))
        else:
            time.sleep(rng.uniform(0.05, 0.6))
        assert proc.poll() is None, "the build finished before the kill: slow it down further"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        store = EmbeddingStore.open(out, allow_incomplete=True)
        units, torn = _commit_lines(store.segments[0].log_file(0))
        seen["torn commit lines"] = torn
        assert len(units) == len(set(units)), f"a unit was committed twice: {units}"
        assert store.verify() == [], "a committed unit holds other rows than those it committed"
        committed_after.append(len(units))
    total_units = EmbeddingStore.open(out, allow_incomplete=True).segments[0].units.height
    assert 0 < committed_after[-1] < total_units, (committed_after, total_units)
    assert committed_after == sorted(committed_after), "a later run lost commits of an earlier one"

    with torch_threads(1):
        done = build_store(
            archive, out, "logmel:tiny", window_s=1.0, hop_s=0.5, unit_windows=3, progress=False
        )
    assert done.windows.equals(ref.windows)
    assert done.vectors(np.arange(len(done))).tobytes() == ref.vectors(np.arange(len(ref))).tobytes()
    units, torn = _commit_lines(done.segments[0].log_file(0))
    assert sorted(units) == list(range(total_units)), "gaps or duplicates in the commit log"
    assert done.verify() == []
    print(f"commits after each kill: {committed_after} of {total_units}; torn lines left: {torn}")
    assert seen["torn commit lines"] >= 1 and torn >= 1, "no kill landed inside a commit-line write"
