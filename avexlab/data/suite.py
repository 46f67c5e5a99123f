"""The one evaluation-suite type, for the synthetic world's suites, the paper's datasets on disk and a
user's own manifest alike.

A suite is a benchmark (``name``) of one task family, made of one manifest per dataset; each manifest holds
the dataset's ``train`` / ``val`` / ``test`` rows in its ``split`` column. Relative paths in the manifests
resolve against ``root``; ``synth://`` paths and absolute paths need none.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import polars as pl

from avexlab.errors import ConfigError, DataNotFoundError, expected_found

__all__ = ["TASK_FAMILIES", "Suite"]

# The task families of the paper's benchmarks. ``individual_id`` retrieves test queries against a gallery
# of the training sessions (the paper's cross-year protocol); the others retrieve within the test split.
TASK_FAMILIES: tuple[str, ...] = ("classification", "detection", "birdset", "individual_id", "repertoire")


@dataclass(frozen=True)
class Suite:
    """One benchmark: ``manifests`` maps each dataset to its manifest (all splits).

    Attributes:
        name: the benchmark, e.g. ``syn-beans-clf`` or ``beans-classification``.
        task_family: one of :data:`TASK_FAMILIES`.
        multi_label: whether a clip may carry zero or several labels (detection windows).
        manifests: dataset name -> manifest with ``split`` in ``train`` / ``val`` / ``test``.
        root: the folder that relative ``path`` values resolve against (None: paths are URIs or absolute).
        metric: the benchmark's primary metric, where one is named (``accuracy``, ``map``, ...).
    """

    name: str
    task_family: str
    multi_label: bool
    manifests: dict[str, pl.DataFrame]
    root: str | None = None
    metric: str | None = None

    def __post_init__(self) -> None:
        if self.task_family not in TASK_FAMILIES:
            raise ConfigError(
                expected_found(
                    f"suite {self.name!r} task family",
                    f"one of {list(TASK_FAMILIES)}",
                    repr(self.task_family),
                    "Pick the family whose protocol fits the data.",
                )
            )

    @property
    def datasets(self) -> list[str]:
        return list(self.manifests)

    def split(self, split: str, dataset: str | None = None) -> pl.DataFrame:
        """Rows of ``split`` (``train``/``val``/``test``), of one dataset or of all of them."""
        frames = [self.manifests[dataset]] if dataset is not None else list(self.manifests.values())
        return pl.concat(frames, how="diagonal_relaxed").filter(pl.col("split") == split)

    @property
    def manifest(self) -> pl.DataFrame:
        """All datasets and splits in one frame."""
        return pl.concat(list(self.manifests.values()), how="diagonal_relaxed")

    @classmethod
    def from_manifest(
        cls,
        manifest: pl.DataFrame | str | os.PathLike[str],
        *,
        task_family: str = "classification",
        name: str | None = None,
        root: str | os.PathLike[str] | None = None,
        multi_label: bool | None = None,
    ) -> Suite:
        """A suite of one manifest (a frame or a ``.parquet`` / ``.csv`` / ``.jsonl`` file), one dataset per
        value of its ``dataset`` column. ``name`` defaults to the file's stem; ``multi_label`` to whether
        any clip has other than one label."""
        if not isinstance(manifest, pl.DataFrame):
            from avexlab.data.manifest import read_manifest

            path = Path(manifest)
            if not path.is_file():
                raise DataNotFoundError(
                    expected_found(
                        "suite manifest",
                        f"a manifest file at {path}",
                        "nothing there",
                        "Make one with `avexlab data from-folder` (or from-raven / from-sonic-visualiser), "
                        "or point at a rendered world's suite .parquet.",
                    )
                )
            name = name or path.stem
            manifest = read_manifest(path)
        ml = bool((manifest["labels"].list.len() != 1).any()) if multi_label is None else multi_label
        datasets = manifest["dataset"].unique(maintain_order=True).to_list()
        return cls(
            name=name or "manifest",
            task_family=task_family,
            multi_label=ml,
            manifests={d: manifest.filter(pl.col("dataset") == d) for d in datasets},
            root=None if root is None else str(root),
        )
