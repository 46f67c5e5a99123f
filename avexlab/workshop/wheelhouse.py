"""A wheelhouse: every wheel the course's environment needs, so that laptops without internet install from
a USB stick with pip's index disabled.

What it holds (the choice, also in the README): the wheels **pip selects for the platform that builds
it** (operating system, CPU architecture, Python version), pinned to the versions of the environment
that builds it, plus avexlab's own wheel built from this checkout. Build it on a machine of the same
platform as the laptops (one wheelhouse per platform in the room). Nothing is re-resolved on the laptops:
``requirements.txt`` names what to install and pip finds every dependency in the folder or fails.

On Linux x86_64 the registry's torch is the CUDA build and brings the NVIDIA libraries (gigabytes,
useless on laptops without a GPU); pass pip options (``--pip-arg``) pointing at PyTorch's CPU-only wheel
index to get the CPU build instead: the pins match it (``torch==2.14.1`` accepts ``2.14.1+cpu``) and pip
then leaves out the CUDA wheels, because the CPU build does not require them.

Install on a laptop (the command is also written into the folder's ``INSTALL.txt``)::

    python3 -m venv avexlab-env
    avexlab-env/bin/python -m pip install --no-index --find-links WHEELHOUSE -r WHEELHOUSE/requirements.txt
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata as md
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from avexlab.errors import ConfigError, DataNotFoundError, expected_found
from avexlab.fsutil import atomic_write

__all__ = ["DEFAULT_EXTRAS", "build_wheelhouse", "environment_pins", "install_command"]

DEFAULT_EXTRAS: tuple[str, ...] = ("notebooks",)
"""Extras a workshop laptop needs: the notebooks (marimo, JupyterLab, widgets). ``birdnet`` adds the
released BirdNET model (non-commercial licence); ``dev`` is for developers, not learners."""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def environment_pins(exclude: Sequence[str] = ("avexlab",)) -> list[str]:
    """``name==version`` of every distribution installed in this environment (sorted, canonical names),
    except ``exclude``: the constraints that make a wheelhouse hold the versions that were tested."""
    skip = {_canonical(n) for n in exclude}
    pins = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if name and _canonical(name) not in skip:
            pins[_canonical(name)] = f"{_canonical(name)}=={dist.version}"
    return [pins[k] for k in sorted(pins)]


def install_command(wheelhouse: str | os.PathLike[str], python: str = "python") -> list[str]:
    """The one install command of a laptop: pip with its index disabled, every wheel from ``wheelhouse``."""
    wh = Path(wheelhouse)
    return [
        python,
        "-m",
        "pip",
        "install",
        "--no-index",
        "--find-links",
        str(wh),
        "-r",
        str(wh / "requirements.txt"),
    ]


def _source_tree() -> Path:
    import avexlab

    root = Path(avexlab.__file__).resolve().parents[1]
    if not (root / "pyproject.toml").is_file():
        raise DataNotFoundError(
            expected_found(
                "avexlab source checkout",
                "pyproject.toml beside the avexlab package (to build avexlab's own wheel)",
                f"none in {root}",
                "Build the wheelhouse from a clone of the repository (`make wheelhouse`).",
            )
        )
    return root


def _clean_copy(src: Path, dest: str) -> str:
    """What avexlab's wheel is built from: ``pyproject.toml``, ``README.md`` and the ``avexlab`` package of
    the checkout ``src`` copied into ``dest`` (links followed, no ``__pycache__``). Built in place, setuptools
    would reuse the checkout's ``build/`` folder, and a module deleted since an earlier build would still
    ship in the wheel."""
    out = Path(dest) / "src"
    shutil.copytree(src / "avexlab", out / "avexlab", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(src / name, out / name)
    return str(out)


def _pip(args: Sequence[str], echo: Callable[[str], None]) -> None:
    cmd = [sys.executable, "-m", "pip", *args]
    echo("$ " + " ".join(cmd))
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise ConfigError(
            expected_found(
                "pip",
                "success",
                f"exit {proc.returncode}:\n{(proc.stdout + proc.stderr)[-4000:]}",
                "Read pip's message.",
            )
        )


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def build_wheelhouse(
    out: str | os.PathLike[str],
    *,
    requirements: Sequence[str] | None = None,
    extras: Sequence[str] = DEFAULT_EXTRAS,
    pip_args: Sequence[str] = (),
    echo: Callable[[str], None] = print,
) -> Path:
    """Fill the folder ``out`` with wheels (module docstring) and write ``requirements.txt``,
    ``constraints.txt``, ``INSTALL.txt`` and ``wheelhouse.json`` (platform, Python, each wheel's size and
    SHA-256, total size). Returns ``out``.

    Args:
        out: the wheelhouse folder (created; wheels already there are kept and reused by pip).
        requirements: what the laptops install (default: ``avexlab[<extras>]`` at this version). avexlab's
            own wheel is always built into the folder first, so a requirement on ``avexlab`` resolves there.
        extras: avexlab's extras for the default requirement.
        pip_args: more options for ``pip wheel`` (e.g. an extra index for CPU-only torch).
        echo: where progress lines go.
    """
    import avexlab

    wh = Path(out).expanduser()
    wh.mkdir(parents=True, exist_ok=True)
    src = _source_tree()
    reqs = (
        list(requirements)
        if requirements is not None
        else [f"avexlab[{','.join(extras)}]=={avexlab.__version__}"]
    )
    if not reqs:
        raise ConfigError(
            expected_found("requirements", "at least one", "none", "Name what the laptops install.")
        )
    atomic_write(wh / "constraints.txt", "\n".join(environment_pins()) + "\n")
    with tempfile.TemporaryDirectory(prefix="avexlab-wheel-") as tmp:
        _pip(
            ["wheel", "--no-deps", "--no-build-isolation", "--wheel-dir", str(wh), _clean_copy(src, tmp)],
            echo,
        )
    _pip(
        [
            "wheel",
            "--wheel-dir",
            str(wh),
            "--find-links",
            str(wh),
            "-c",
            str(wh / "constraints.txt"),
            *pip_args,
            *reqs,
        ],
        echo,
    )
    atomic_write(wh / "requirements.txt", "\n".join(reqs) + "\n")
    wheels = sorted(wh.glob("*.whl"))
    files = {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in wheels}
    total = sum(f["bytes"] for f in files.values())
    meta = {
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "requirements": reqs,
        "pip_args": list(pip_args),
        "wheels": len(files),
        "total_bytes": total,
        "files": files,
    }
    atomic_write(wh / "wheelhouse.json", json.dumps(meta, indent=2))
    command = " ".join(install_command("WHEELHOUSE", "avexlab-env/bin/python"))
    atomic_write(
        wh / "INSTALL.txt",
        f"avexlab workshop wheelhouse: {len(files)} wheels, {total / 1e9:.2f} GB, for {meta['platform']}, "
        f"Python {meta['python']}.\nInstall without internet (WHEELHOUSE = this folder):\n\n"
        f"    python3 -m venv avexlab-env\n    {command}\n    avexlab-env/bin/avexlab workshop check\n",
    )
    echo(f"{len(files)} wheels, {total / 1e9:.2f} GB in {wh}")
    return wh
