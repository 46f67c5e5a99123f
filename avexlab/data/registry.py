"""The paper's 26 evaluation datasets: what each is, where it comes from, and whether a local copy is usable.

The facts live in ``data_manifests/paper_datasets.yaml``. Nothing is downloaded: :func:`check_local` and
:func:`check_all` say exactly which file is missing and where to put it; :func:`load_paper_dataset`
returns the validated manifest of a local copy. Layout under a data root ``ROOT``::

    ROOT/<name>/manifest.parquet   (or .csv / .jsonl)   paths relative to ROOT/<name>
    ROOT/<name>/audio/...
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import polars as pl
import yaml

from avexlab.data.manifest import read_manifest
from avexlab.data.suite import Suite
from avexlab.errors import ConfigError, DataNotFoundError, ManifestError

__all__ = [
    "DatasetCheck",
    "PaperDataset",
    "check_all",
    "check_local",
    "get_paper_dataset",
    "list_paper_datasets",
    "load_paper_dataset",
    "paper_suites",
    "registry_path",
]

_ENTRY_KEYS = {"name", "title", "family", "domain", "num_classes", "sample_rate", "license", "obtain"}
_UNKNOWN = "unknown"


@dataclass(frozen=True)
class PaperDataset:
    """One registry entry. ``num_classes`` / ``sample_rate`` are None where the registry says unknown."""

    name: str
    title: str
    benchmark: str
    task_family: str
    metric: str
    multi_label: bool
    domain: str
    num_classes: int | None
    sample_rate: int | None
    license: str | None
    obtain: str
    manifest_names: tuple[str, ...] = ("manifest.parquet", "manifest.csv", "manifest.jsonl")
    audio_dir: str = "audio"

    def folder(self, root: str | os.PathLike[str]) -> Path:
        return Path(root) / self.name


@dataclass
class DatasetCheck:
    """Outcome of :func:`check_local`: ``ok`` when the manifest validates and every file it names exists."""

    name: str
    ok: bool
    folder: str
    manifest: str | None = None
    n_clips: int = 0
    n_missing_files: int = 0
    problems: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        if self.ok:
            return f"{self.name}: ok ({self.n_clips} clips, {self.manifest})"
        return f"{self.name}: NOT READY\n" + "\n".join(f"  - {p}" for p in self.problems)


def registry_path() -> Path:
    """Where the registry YAML is read from: ``$AVEXLAB_PAPER_DATASETS`` if set, else the package's
    ``avexlab/data/paper_datasets.yaml``: in a checkout a link to ``data_manifests/paper_datasets.yaml``
    (the one file to edit), in an installed wheel a copy of it."""
    env = os.environ.get("AVEXLAB_PAPER_DATASETS")
    return Path(env) if env else Path(__file__).with_name("paper_datasets.yaml")


def _opt_int(entry: dict[str, Any], key: str) -> int | None:
    v = entry[key]
    if v == _UNKNOWN:
        return None
    if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
        raise ConfigError(
            f"paper dataset registry, entry {entry.get('name')!r}, key {key!r}: expected a positive integer or "
            f"'unknown', found {v!r}. Fix data_manifests/paper_datasets.yaml."
        )
    return v


@lru_cache(maxsize=4)
def _load(path: str) -> dict[str, PaperDataset]:
    p = Path(path)
    if not p.is_file():
        raise DataNotFoundError(
            f"paper dataset registry {path!r}: expected the YAML file, found nothing there. "
            "Restore data_manifests/paper_datasets.yaml or set AVEXLAB_PAPER_DATASETS."
        )
    data = yaml.safe_load(p.read_text(encoding="utf-8"))
    layout, families = data.get("layout", {}), data.get("families", {})
    out: dict[str, PaperDataset] = {}
    for e in data.get("datasets", []):
        keys = set(e)
        if keys != _ENTRY_KEYS:
            raise ConfigError(
                f"paper dataset registry, entry {e.get('name')!r}: expected keys {sorted(_ENTRY_KEYS)}, found "
                f"missing {sorted(_ENTRY_KEYS - keys)} and unknown {sorted(keys - _ENTRY_KEYS)}."
            )
        fam = families.get(e["family"])
        if fam is None:
            raise ConfigError(
                f"paper dataset registry, entry {e['name']!r}: expected a family among {sorted(families)}, "
                f"found {e['family']!r}."
            )
        if e["name"] in out:
            raise ConfigError(f"paper dataset registry: expected unique names, found {e['name']!r} twice.")
        out[e["name"]] = PaperDataset(
            name=e["name"],
            title=e["title"],
            benchmark=fam["benchmark"],
            task_family=e["family"],
            metric=fam["metric"],
            multi_label=bool(fam["multi_label"]),
            domain=e["domain"],
            num_classes=_opt_int(e, "num_classes"),
            sample_rate=_opt_int(e, "sample_rate"),
            license=None if e["license"] == _UNKNOWN else str(e["license"]),
            obtain=e["obtain"],
            manifest_names=tuple(layout.get("manifest", ("manifest.parquet",))),
            audio_dir=layout.get("audio_dir", "audio"),
        )
    return out


def list_paper_datasets() -> pl.DataFrame:
    """The registry as a table: name, title, benchmark, task_family, metric, multi_label, domain,
    num_classes, sample_rate, license, obtain (nulls where unknown)."""
    rows = [
        {
            k: getattr(d, k)
            for k in PaperDataset.__dataclass_fields__
            if k not in ("manifest_names", "audio_dir")
        }
        for d in _load(str(registry_path())).values()
    ]
    return pl.DataFrame(rows)


def get_paper_dataset(name: str) -> PaperDataset:
    """The registry entry ``name``; ConfigError listing the known names otherwise."""
    reg = _load(str(registry_path()))
    if name not in reg:
        raise ConfigError(f"paper dataset {name!r}: expected one of {sorted(reg)}, found no such entry.")
    return reg[name]


def check_local(name: str, root: str | os.PathLike[str]) -> DatasetCheck:
    """Check the local copy of ``name`` under ``root``: manifest present and valid, every audio file there.

    Never raises for missing data: the returned :class:`DatasetCheck` lists every problem with the file
    and the place it should be.
    """
    d = get_paper_dataset(name)
    folder = d.folder(root)
    chk = DatasetCheck(name=name, ok=False, folder=str(folder))
    manifests = [folder / m for m in d.manifest_names if (folder / m).is_file()]
    if not folder.is_dir():
        chk.problems.append(
            f"folder {str(folder)!r} is missing: create it with {d.manifest_names[0]} and {d.audio_dir}/ inside "
            f"(obtain the data from: {d.obtain})."
        )
        return chk
    if not manifests:
        chk.problems.append(
            f"manifest missing: put one of {list(d.manifest_names)} in {str(folder)!r} (avexlab manifest "
            "schema; see data_manifests/README.md)."
        )
    if not (folder / d.audio_dir).is_dir():
        chk.problems.append(f"audio folder missing: put the recordings under {str(folder / d.audio_dir)!r}.")
    if len(manifests) > 1:
        chk.problems.append(
            f"several manifests found ({[m.name for m in manifests]}): keep exactly one so the choice is explicit."
        )
    if len(manifests) != 1:
        return chk
    chk.manifest = str(manifests[0])
    try:
        df = read_manifest(manifests[0], root=folder)
    except ManifestError as e:
        chk.problems.append(f"manifest {chk.manifest!r} is invalid:\n{e}")
        return chk
    chk.n_clips = df.height
    local = (
        df.filter(~pl.col("path").str.contains(r"^[A-Za-z][A-Za-z0-9+.\-]+://"))["path"].unique().to_list()
    )
    missing = sorted(p for p in local if not (folder / p).is_file())
    chk.n_missing_files = len(missing)
    if missing:
        shown = ", ".join(repr(str(folder / p)) for p in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        chk.problems.append(
            f"{len(missing)} audio file(s) named by the manifest are missing: {shown}{more}. Put them there."
        )
    chk.ok = not chk.problems
    return chk


def check_all(root: str | os.PathLike[str]) -> pl.DataFrame:
    """:func:`check_local` for every registry entry, as a table: name, benchmark, task_family, ok,
    n_clips, n_missing_files, problems (one string, newline-separated)."""
    rows = []
    for name, d in _load(str(registry_path())).items():
        c = check_local(name, root)
        rows.append(
            {
                "name": name,
                "benchmark": d.benchmark,
                "task_family": d.task_family,
                "ok": c.ok,
                "n_clips": c.n_clips,
                "n_missing_files": c.n_missing_files,
                "problems": "\n".join(c.problems),
            }
        )
    return pl.DataFrame(rows)


def load_paper_dataset(name: str, root: str | os.PathLike[str]) -> pl.DataFrame:
    """The validated manifest of the local copy of ``name`` (paths relative to ``root/<name>``).

    Raises DataNotFoundError saying what to put where when the copy is missing or incomplete.
    """
    c = check_local(name, root)
    if not c.ok:
        raise DataNotFoundError(
            f"paper dataset {name!r}: expected a complete local copy under {c.folder!r}, found problems:\n"
            + "\n".join(f"  - {p}" for p in c.problems)
        )
    assert c.manifest is not None
    return read_manifest(c.manifest, root=c.folder)


# The registry's task families under the names of avexlab.data.suite.TASK_FAMILIES (the evaluation's).
_EVAL_FAMILY = {"beans_classification": "classification", "beans_detection": "detection"}


def paper_suites(root: str | os.PathLike[str], names: Sequence[str] | None = None) -> list[Suite]:
    """The paper's datasets with a complete local copy under ``root`` (``root/<name>/manifest.*`` and
    audio; :func:`avexlab.data.registry.check_all` says what is missing for the others), one
    :class:`~avexlab.data.suite.Suite` each (``name`` = the paper's benchmark; the manifest keyed by the
    dataset name; ``task_family`` as the evaluation names it, e.g. ``classification`` for the registry's
    ``beans_classification``). ``names`` restricts the candidates; an empty list when none is present."""
    if not Path(root).is_dir():
        return []
    table = check_all(root).filter(pl.col("ok"))
    if names is not None:
        table = table.filter(pl.col("name").is_in(list(names)))
    out = []
    for name in table["name"].to_list():
        d = get_paper_dataset(name)
        out.append(
            Suite(
                name=d.benchmark,
                task_family=_EVAL_FAMILY.get(d.task_family, d.task_family),
                multi_label=d.multi_label,
                root=str(d.folder(root)),
                manifests={name: load_paper_dataset(name, root)},
            )
        )
    return out
