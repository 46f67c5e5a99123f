"""The same seed gives bit-identical results across processes: synthetic audio, evaluation tables and CPU
training. Each pair runs in two separate processes with different ``PYTHONHASHSEED`` (so nothing may depend
on Python's string hashing or on state left over in one process); a different seed must change the result
(so the comparison can fail)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import polars as pl
import pytest
import torch
from safetensors.torch import load_file

TRAIN_DIR = Path(__file__).parents[1] / "train"
sys.path.insert(0, str(TRAIN_DIR))
from tiny import make_corpus  # noqa: E402

SYNTH_EVAL_CHILD = textwrap.dedent(
    """
    import hashlib, json, sys
    import torch

    torch.set_num_threads(1)
    import dataclasses
    from avexlab.evaluate.spec import EvalSpec
    from avexlab.evaluate.suites import evaluate_suite
    from avexlab.synth import render_world

    seed, out = int(sys.argv[1]), sys.argv[2]
    world = render_world("smoke", seed)
    keys = [next(k for k in world.items if k.startswith(p)) for p in ("focal/", "general/", "indiv/", "scene/")]
    audio = {k: hashlib.sha256(world.render(k).tobytes()).hexdigest() for k in keys}
    suite = world.suites["syn-individual"]
    name, manifest = sorted(suite.manifests.items())[0]

    one = dataclasses.replace(suite, manifests={name: manifest})
    res = evaluate_suite("logmel:tiny", one, EvalSpec(probe_epochs=5, probe_seeds=(42,)))
    res.write_parquet(out + ".parquet")
    with open(out + ".json", "w") as f:
        json.dump({"audio": audio, "manifests": world.provenance()["manifest_sha256"]}, f)
    """
)


def _env(hash_seed: int) -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": str(hash_seed)}


def _run_all(cmds: list[tuple[list[str], int]]) -> None:
    """Run the commands concurrently (each with its PYTHONHASHSEED) and require every one to succeed."""
    procs = [
        subprocess.Popen(cmd, env=_env(h), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for cmd, h in cmds
    ]
    for p in procs:
        out, _ = p.communicate(timeout=600)
        assert p.returncode == 0, out[-3000:]


@pytest.mark.slow
def test_synthetic_audio_and_evaluation_are_identical_across_processes(tmp_path: Path) -> None:
    script = tmp_path / "child.py"
    script.write_text(SYNTH_EVAL_CHILD)
    runs = {"a": (0, 1), "b": (0, 2), "other_seed": (1, 1)}
    _run_all([([sys.executable, str(script), str(s), str(tmp_path / n)], h) for n, (s, h) in runs.items()])
    meta = {n: json.loads((tmp_path / f"{n}.json").read_text()) for n in runs}
    tables = {n: pl.read_parquet(tmp_path / f"{n}.parquet") for n in runs}

    assert len(meta["a"]["audio"]) == 4
    assert meta["a"]["audio"] == meta["b"]["audio"]  # focal, general, individual and soundscape audio
    assert meta["a"]["manifests"] and meta["a"]["manifests"] == meta["b"]["manifests"]
    assert tables["a"].height > 0 and {"probe", "retrieval"} <= set(tables["a"]["method"])
    assert tables["a"].equals(tables["b"])  # every value bit for bit, not approximately
    print(
        f"identical: {len(meta['a']['audio'])} audio items, {len(meta['a']['manifests'])} manifest hashes, "
        f"{tables['a'].height} result rows"
    )
    # The control: another seed renders other audio and scores differently.
    assert set(meta["other_seed"]["audio"].values()).isdisjoint(meta["a"]["audio"].values())
    assert tables["other_seed"]["value"].to_list() != tables["a"]["value"].to_list()


@pytest.mark.slow
def test_cpu_training_with_the_same_config_gives_identical_weights(tmp_path: Path) -> None:
    manifest = make_corpus(tmp_path / "corpus", n_bio=8, n_general=4)
    sets = ["optim.steps=3", "optim.batch_size=4"]

    def cmd(out: str, *extra: str) -> list[str]:
        args = [sys.executable, str(TRAIN_DIR / "run_train.py"), str(manifest), str(tmp_path / out)]
        for s in [*sets, *extra]:
            args += ["--set", s]
        return args

    _run_all([(cmd("a"), 1), (cmd("b"), 2), (cmd("other_seed", "runtime.seed=1"), 1)])
    w = {n: load_file(str(tmp_path / n / "checkpoint.safetensors")) for n in ("a", "b", "other_seed")}
    assert w["a"].keys() == w["b"].keys() and len(w["a"]) > 0
    for k in w["a"]:
        assert torch.equal(w["a"][k], w["b"][k]), k
    loss = {n: pl.read_parquet(tmp_path / n / "metrics.parquet")["loss"].to_list() for n in w}
    assert len(loss["a"]) == 3 and loss["a"] == loss["b"]
    print(f"identical: {len(w['a'])} weight tensors, {len(loss['a'])} step losses")
    assert loss["other_seed"] != loss["a"]  # the seed drives the data order and crops
