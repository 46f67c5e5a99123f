"""Untrusted files are data, never code: pickled checkpoints that carry code, YAML configs with Python tags,
manifests whose values look like code, and no network access at run time."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf
import torch

from avexlab.config import load_config
from avexlab.data.manifest import read_manifest, validate_manifest, write_manifest
from avexlab.data.schema import SCHEMA
from avexlab.errors import CheckpointError, ConfigError
from avexlab.models import build_encoder, load_encoder


class _WritesMarker:
    """Unpickling this object calls ``Path.write_text(marker, "pwned")``: the payload of a hostile file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):  # noqa: ANN204 - pickle protocol
        return (Path.write_text, (self.marker, "pwned"))


def _hostile_checkpoints(tmp_path: Path, marker: Path) -> dict[str, Path]:
    """Four shapes of a hostile torch file: the payload at the top, beside a real state dict, inside the
    official BEATs layout, and in the legacy (non-zip) serialisation."""
    state = build_encoder("beats", size="tiny").state_dict()
    payloads = {
        "top.pt": _WritesMarker(marker),
        "beside_state_dict.pt": {"state_dict": state, "extra": _WritesMarker(marker)},
        "official_layout.pt": {"cfg": {"encoder_layers": 2, "hook": _WritesMarker(marker)}, "model": state},
    }
    out = {}
    for name, obj in payloads.items():
        torch.save(obj, tmp_path / name)
        out[name] = tmp_path / name
    torch.save(payloads["beside_state_dict.pt"], tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    out["legacy.pt"] = tmp_path / "legacy.pt"
    return out


def test_pickled_code_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    files = _hostile_checkpoints(tmp_path, marker)
    for name, path in files.items():
        with pytest.raises(CheckpointError) as info:
            load_encoder(path)
        msg = str(info.value)
        assert name in msg, msg  # names the file
        assert "allow_pickle=True" in msg and "run code" in msg, msg  # explains the opt-in and why
        assert not marker.exists(), f"loading {name} executed its payload"
    # The check is real: unpickling the same file without the guard does run the payload.
    torch.load(files["top.pt"], weights_only=False)
    assert marker.read_text() == "pwned"


def test_yaml_python_tags_are_refused(tmp_path: Path) -> None:
    marker = tmp_path / "marker.txt"
    cases = {
        "object_apply": f"recipe: !!python/object/apply:pathlib.Path.write_text [{str(marker)!r}, pwned]\n",
        "object_new": "model: !!python/object/new:os.system [echo pwned]\n",
        "name": "runtime:\n  seed: !!python/name:os.system\n",
        "module": "optim: !!python/module:os\n",
    }
    for name, text in cases.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=rf"{name}\.yaml: expected YAML, could not parse"):
            load_config(path)
        assert not marker.exists(), name
    # A plain config with the same keys loads (the refusal is about the tags, not the file).
    ok = tmp_path / "ok.yaml"
    ok.write_text("runtime:\n  seed: 3\n")
    assert load_config(ok).runtime.seed == 3


CODE_LIKE = [
    "__import__('os').system('touch pwned')",
    "${HOME}",
    "{{7*7}}",
    "$(touch pwned)",
    "'; DROP TABLE clips; --",
    "!!python/object/apply:os.system [ls]",
    "=cmd|' /C calc'!A0",
    "lambda: 1",
]


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "parquet"])
def test_manifest_values_that_look_like_code_stay_strings(tmp_path: Path, fmt: str) -> None:
    n = len(CODE_LIKE)
    # CSV stores label lists ';'-joined and refuses labels holding ';' (a documented limit, tested elsewhere)
    labels = [[v.replace(";", " ") if fmt == "csv" else v] for v in CODE_LIKE]
    sf.write(tmp_path / "a.wav", np.zeros(1600, dtype=np.float32), 16000)
    rows = {
        "clip_id": [f"c{i}" for i in range(n)],
        "path": ["a.wav"] * n,
        "dataset": CODE_LIKE,
        "split": ["train"] * n,
        "domain": ["focal"] * n,
        "labels": labels,
        "species": CODE_LIKE,
        "individual": CODE_LIKE[::-1],
        "source": CODE_LIKE,
    }
    df = pl.DataFrame(rows)
    df = validate_manifest(
        df.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in SCHEMA.items() if c not in df.columns)
    )
    cwd = os.getcwd()
    os.chdir(tmp_path)  # a shell or template expansion would create files here
    try:
        back = read_manifest(write_manifest(df, tmp_path / f"m.{fmt}"), root=tmp_path)
    finally:
        os.chdir(cwd)
    assert back["species"].to_list() == back["dataset"].to_list() == CODE_LIKE
    assert back["individual"].to_list() == CODE_LIKE[::-1]
    assert back["labels"].to_list() == labels
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["a.wav", f"m.{fmt}"])


OFFLINE_SCRIPT = textwrap.dedent(
    """
    import socket, sys

    attempts = []

    def refuse(*args, **kwargs):
        attempts.append(repr(args)[:200])
        raise OSError("network access attempted at run time: " + repr(args)[:200])

    socket.socket.connect = refuse
    socket.socket.connect_ex = refuse
    socket.getaddrinfo = refuse
    socket.create_connection = refuse

    import dataclasses
    import polars as pl
    from avexlab.evaluate.embed import extract_embeddings
    from avexlab.evaluate.spec import EvalSpec
    from avexlab.evaluate.suites import evaluate_suite
    from avexlab.models import build_encoder
    from avexlab.synth import render_world

    world = render_world("smoke", 0)
    suite = world.suites["syn-repertoire"]
    name, manifest = next(iter(suite.manifests.items()))

    one = dataclasses.replace(suite, manifests={name: manifest})
    enc = build_encoder("beats", size="tiny")
    emb = extract_embeddings(enc, manifest, root=world.root, progress=False, cache_dir=sys.argv[1])
    res = evaluate_suite(
        enc, one, EvalSpec(methods=("retrieval", "probe"), probe_epochs=2, cache_dir=sys.argv[1])
    )
    assert res.height > 0 and emb.array().shape[0] == manifest.height
    print("OK", res.height, "attempts", len(attempts))
    """
)


@pytest.mark.slow
def test_render_embed_evaluate_never_touch_the_network(tmp_path: Path) -> None:
    """Python-level sockets only: a C library opening its own sockets would not be seen."""
    script = tmp_path / "offline.py"
    script.write_text(OFFLINE_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "cache")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "OK" in proc.stdout and proc.stdout.strip().endswith("attempts 0"), proc.stdout
