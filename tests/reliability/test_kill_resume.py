"""A training run killed with SIGKILL at random points and resumed ends bit-identical to an uninterrupted one."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))
import polars as pl  # noqa: E402
from tiny import make_corpus  # noqa: E402

SCRIPT = Path(__file__).parents[1] / "train" / "run_train.py"
SETS = ["optim.steps=12", "runtime.checkpoint_every=2", "runtime.deterministic=true", "optim.grad_accum=2"]


def _run(manifest: Path, out: Path, *extra: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    args = [sys.executable, str(SCRIPT), str(manifest), str(out), *extra]
    for s in SETS:
        args += ["--set", s]
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _latest_step(out: Path) -> int:
    p = out / "checkpoints" / "latest"
    return int(p.read_text().split("-")[1]) if p.is_file() else 0


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_gives_identical_weights(tmp_path: Path) -> None:
    manifest = make_corpus(tmp_path / "corpus")
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "killed"
    ref = _run(manifest, ref_dir)  # the uninterrupted run, concurrently with the killed one

    rng = random.Random(0)
    kills = []
    for _cycle in range(2):
        proc = _run(manifest, run_dir, "--slow", "0.02")
        start = _latest_step(run_dir)
        deadline = time.time() + 90
        while _latest_step(run_dir) <= start and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.15))  # land anywhere inside the next steps
        assert proc.poll() is None, "the run ended before it could be killed; raise --slow"
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        kills.append(_latest_step(run_dir))
    assert all(0 < k < 12 for k in kills), kills
    assert any(k % 5 for k in kills), "expected at least one kill away from an epoch boundary (5 steps/epoch)"
    # No half-written checkpoint is ever followed: only complete step dirs and the pointer.
    names = {p.name for p in (run_dir / "checkpoints").iterdir()}
    assert "latest" in names

    done = _run(manifest, run_dir)
    assert done.wait(timeout=120) == 0, done.stdout.read().decode()[-3000:]
    assert ref.wait(timeout=120) == 0, ref.stdout.read().decode()[-3000:]

    a = load_file(str(ref_dir / "checkpoints" / "step-00000012" / "weights.safetensors"))
    b = load_file(str(run_dir / "checkpoints" / "step-00000012" / "weights.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k
    ea, eb = (
        load_file(str(ref_dir / "checkpoint.safetensors")),
        load_file(str(run_dir / "checkpoint.safetensors")),
    )
    assert all(torch.equal(ea[k], eb[k]) for k in ea)
    ma, mb = pl.read_parquet(ref_dir / "metrics.parquet"), pl.read_parquet(run_dir / "metrics.parquet")
    assert ma["step"].to_list() == mb["step"].to_list() == list(range(1, 13))
    assert ma["loss"].to_list() == mb["loss"].to_list()
