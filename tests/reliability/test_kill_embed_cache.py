"""SIGKILL while the embedding cache or a results file is being written never leaves a half-written file
that is later read, and a corrupt cache entry is detected by its hash, reported and recomputed.

The writer runs in a real subprocess. To land kills *inside* a write (a write of a few kB takes
microseconds), the child replaces the bytes-to-disk step with a slow one (the same bytes, written in
chunks with sleeps between them, like a slow network disk); what is written and the rename that follows
are the library's own.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf

from avexlab.data.schema import SCHEMA
from avexlab.evaluate.embed import extract_embeddings, resolve_encoder
from avexlab.evaluate.report import load_results, save_results
from avexlab.threads import torch_threads

N_KILLS_CACHE = 5
N_KILLS_RESULTS = 4
ENCODER = "beats:tiny"

# A slow disk: np.savez / DataFrame.write_parquet write the real bytes to memory, then dribble them out.
SLOW_DISK = """
import io, time

def dribble(target, data, chunk=256, pause=0.01):
    with open(target, "wb") as f:
        for i in range(0, len(data), chunk):
            f.write(data[i : i + chunk])
            f.flush()
            time.sleep(pause)
"""

CACHE_CHILD = SLOW_DISK + textwrap.dedent(
    """
    import sys
    import numpy as np
    import polars as pl
    import torch

    torch.set_num_threads(1)
    real_savez = np.savez

    def slow_savez(target, **arrays):
        buf = io.BytesIO()
        real_savez(buf, **arrays)
        dribble(target, buf.getvalue(), pause=0.02)

    np.savez = slow_savez
    from avexlab.evaluate.embed import extract_embeddings, resolve_encoder

    root, cache = sys.argv[1], sys.argv[2]
    manifest = pl.read_parquet(root + "/manifest.parquet")
    print("start", flush=True)
    extract_embeddings(resolve_encoder(sys.argv[3]), manifest, root=root, cache_dir=cache, progress=False)
    print("done", flush=True)
    """
)

RESULTS_CHILD = SLOW_DISK + textwrap.dedent(
    """
    import sys
    import polars as pl

    real_write = pl.DataFrame.write_parquet

    def slow_write(self, target, **kw):
        buf = io.BytesIO()
        real_write(self, buf, **kw)
        dribble(target, buf.getvalue(), chunk=64)

    pl.DataFrame.write_parquet = slow_write
    from avexlab.evaluate.report import save_results

    print("start", flush=True)
    save_results(pl.read_parquet(sys.argv[2]), sys.argv[1])
    print("done", flush=True)
    """
)


def _corpus(root: Path, n: int = 12, sr: int = 16000) -> pl.DataFrame:
    rng = np.random.default_rng(0)
    (root / "audio").mkdir(parents=True)
    rows = []
    for i in range(n):
        x = 0.3 * np.sin(2 * np.pi * (300 + 150 * i) * np.arange(int(0.5 * sr)) / sr)
        sf.write(root / f"audio/{i}.wav", (x + 0.01 * rng.standard_normal(x.size)).astype(np.float32), sr)
        rows.append(
            {
                "clip_id": f"c{i:02d}",
                "path": f"audio/{i}.wav",
                "dataset": "d",
                "split": "test",
                "domain": "focal",
                "labels": [f"f{i % 3}"],
            }
        )
    df = pl.DataFrame(rows)
    df = df.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in SCHEMA.items() if c not in df.columns)
    df = df.select(list(SCHEMA))
    df.write_parquet(root / "manifest.parquet")
    return df


def _spawn(script: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _kill_at(proc: subprocess.Popen[str], temps: Callable[[], set[Path]] | None, delay: float) -> bool:
    """SIGKILL ``proc`` ``delay`` seconds after it started, or, with ``temps`` (the temporary files present
    now), after a new temporary file appeared (its write began). Returns whether the kill landed while the
    new temporary file was still there, i.e. inside a write."""
    before = temps() if temps is not None else set()
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "start", proc.stderr.read() if proc.stderr else ""
    if temps is not None:
        deadline = time.time() + 60
        while not temps() - before and proc.poll() is None and time.time() < deadline:
            time.sleep(0.002)
    time.sleep(delay)
    mid_write = temps is not None and proc.poll() is None and bool(temps() - before)
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    return mid_write


@pytest.mark.slow
def test_sigkill_while_writing_the_cache_never_exposes_a_partial_entry(tmp_path: Path) -> None:
    root, cache = tmp_path / "data", tmp_path / "cache"
    df = _corpus(root)
    with torch_threads(1):
        reference = extract_embeddings(resolve_encoder(ENCODER), df, root=root, progress=False).array()
    script = tmp_path / "child.py"
    script.write_text(CACHE_CHILD)

    rng = random.Random(0)
    outcomes: Counter[str] = Counter()
    for cycle in range(N_KILLS_CACHE):
        for entry in cache.glob("[!.]*.npz"):
            entry.unlink()  # every cycle writes the entry afresh; leftovers of killed writes stay
        proc = _spawn(script, str(root), str(cache), ENCODER)
        aim_at_write = cycle % 3 != 0  # two kills in three aim inside the write, one anywhere after start
        delay = rng.uniform(0.0, 0.3) if aim_at_write else rng.uniform(0.0, 3.0)
        mid_write = _kill_at(proc, (lambda: set(cache.glob(".*.npz"))) if aim_at_write else None, delay)
        entries = list(cache.glob("[!.]*.npz"))
        outcomes["killed" if proc.returncode == -signal.SIGKILL else "completed before the kill"] += 1
        outcomes["killed inside the write"] += mid_write
        outcomes["entry present after kill" if entries else "no entry after kill"] += 1
        # The rerun reads the entry if the killed run renamed it into place, else recomputes: never a
        # warning about corruption (no half-written file is ever at the entry's name), same bits.
        with warnings.catch_warnings():
            warnings.simplefilter("error", RuntimeWarning)
            with torch_threads(1):
                again = extract_embeddings(
                    resolve_encoder(ENCODER), df, root=root, cache_dir=cache, progress=False
                )
        assert ("cache" in again.meta) == bool(entries), (cycle, entries, again.meta)
        np.testing.assert_array_equal(again.array(), reference)
        assert again.array().tobytes() == reference.tobytes()
    print(dict(outcomes))
    assert outcomes["killed inside the write"] >= 1, f"no kill landed inside a write: {outcomes}"


def test_flipped_bytes_in_a_cache_entry_are_detected_or_harmless(tmp_path: Path) -> None:
    root, cache = tmp_path / "data", tmp_path / "cache"
    df = _corpus(root, n=6)
    encoder = resolve_encoder("logmel:tiny")
    reference = extract_embeddings(encoder, df, root=root, cache_dir=cache, progress=False).array()
    (entry,) = cache.glob("*.npz")
    good = entry.read_bytes()
    start = good.find(reference.tobytes()[:64])
    assert start > 0, "the stored array bytes were not found in the entry"
    rng = np.random.default_rng(0)
    in_data = rng.integers(start, start + reference.nbytes, size=8)
    anywhere = rng.integers(0, len(good), size=8)
    detected = 0
    for kind, offsets in (("array bytes", in_data), ("anywhere", anywhere)):
        for off in offsets.tolist():
            bad = bytearray(good)
            bad[off] ^= 0xFF
            entry.write_bytes(bytes(bad))
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                again = extract_embeddings(encoder, df, root=root, cache_dir=cache, progress=False)
            corrupt = [w for w in caught if "corrupt" in str(w.message) and str(entry) in str(w.message)]
            if kind == "array bytes":
                assert corrupt, f"a flipped byte at {off} inside the stored array went unnoticed"
            detected += bool(corrupt)
            assert again.array().tobytes() == reference.tobytes(), (kind, off)
            if corrupt:  # recomputed and rewritten: the entry is whole again
                assert "cache" not in again.meta
                with np.load(entry) as z:
                    assert z["layer_0"].tobytes() == reference.tobytes()
    # Truncation at any length is detected too.
    for cut in sorted(rng.integers(1, len(good), size=4).tolist()):
        entry.write_bytes(good[:cut])
        with pytest.warns(RuntimeWarning, match="corrupt"):
            again = extract_embeddings(encoder, df, root=root, cache_dir=cache, progress=False)
        assert again.array().tobytes() == reference.tobytes()
    print(
        f"cache entry: {detected}/16 single-byte flips detected (8/8 required inside the array), 4 truncations"
    )
    assert detected >= 8


def _table(encoder: str, n: int, value: float) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "encoder": [encoder] * n,
            "checkpoint": ["abc"] * n,
            "benchmark": ["syn-beans-clf"] * n,
            "dataset": [f"d{i}" for i in range(n)],
            "task_family": ["classification"] * n,
            "domain": ["focal"] * n,
            "method": ["probe"] * n,
            "metric": ["accuracy"] * n,
            "value": [value + i / 100 for i in range(n)],
            "n": [10] * n,
            "probe_seed": [42] * n,
        }
    )


@pytest.mark.slow
def test_sigkill_while_saving_results_keeps_old_or_new_table(tmp_path: Path) -> None:
    path = tmp_path / "results.parquet"
    old = _table("A", 50, 0.5)
    new = _table("B", 50, 0.7)
    new.write_parquet(tmp_path / "new.parquet")
    script = tmp_path / "child.py"
    script.write_text(RESULTS_CHILD)
    merged = pl.concat([old, new])
    rng = random.Random(1)
    seen: Counter[str] = Counter()
    for _ in range(N_KILLS_RESULTS):
        save_results(old, path, append=False)
        proc = _spawn(script, str(path), str(tmp_path / "new.parquet"))
        seen["killed inside the write"] += _kill_at(
            proc, lambda: set(tmp_path.glob(".results.parquet.*")), rng.uniform(0.0, 0.1)
        )
        back = load_results(path)  # never a half-written file
        if back.equals(old):
            seen["old table intact"] += 1
        else:
            assert back.sort("encoder", "dataset").equals(merged.sort("encoder", "dataset")), back
            seen["new table complete"] += 1
    print(dict(seen))
    assert seen["killed inside the write"] >= 1 and seen["old table intact"] >= 1, seen
