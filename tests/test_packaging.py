"""The built wheel is a working avexlab on its own: installed away from the checkout, it finds the data it
reads at run time (the paper-dataset registry, whose one editable copy is ``data_manifests/``)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from avexlab.data.registry import list_paper_datasets

ROOT = Path(__file__).resolve().parents[1]
# what the wheel is built from: the package and its build inputs, not the environment, results or runs
SKIP = shutil.ignore_patterns(
    ".git", ".venv", "build", "*.egg-info", "__pycache__", "results", "runs", "worlds", "notebooks", "tests"
)


@pytest.mark.slow
def test_installed_wheel_reads_the_paper_dataset_registry(tmp_path: Path) -> None:
    src = tmp_path / "src"
    shutil.copytree(ROOT, src, ignore=SKIP, symlinks=True)
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            "whl",
            "./src",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert build.returncode == 0, build.stderr[-3000:]
    (wheel,) = (tmp_path / "whl").glob("avexlab-*.whl")
    with zipfile.ZipFile(wheel) as z:
        packed = z.read("avexlab/data/paper_datasets.yaml")
    # a copy of the file, not a link to a path that exists only in a checkout
    assert packed == (ROOT / "data_manifests" / "paper_datasets.yaml").read_bytes()

    site = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    probe = (
        "import json, avexlab\n"
        "from avexlab.data.registry import list_paper_datasets, registry_path\n"
        "print(json.dumps([avexlab.__file__, str(registry_path()), list_paper_datasets()['name'].to_list()]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "AVEXLAB_PAPER_DATASETS"}
    env["PYTHONPATH"] = str(site)
    run = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert run.returncode == 0, run.stderr[-3000:]
    module, registry, names = json.loads(run.stdout)
    assert Path(module).is_relative_to(site), module  # the installed copy, not the checkout
    assert Path(registry).is_relative_to(site), registry
    assert names == list_paper_datasets()["name"].to_list() and names
