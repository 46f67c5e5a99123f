"""The prepared course: what ``avexlab workshop prepare`` computes once, and how the sections read it.

A course folder (default ``~/avexlab-workshop/<scale>``; ``$AVEXLAB_WORKSHOP_DIR`` moves the parent) holds
everything the six sections read, so no cell waits on rendering, embedding or training:

``course.json``
    what was prepared (scale, world preset and seed, encoders with their weights' hashes, sets, timings)
    and the SHA-256 of every file below except the world's audio (``avexlab workshop check`` verifies them).
``world/``
    the synthetic world of the scale's preset (``workshop`` -> ``quick``), rendered to FLAC
    (:func:`avexlab.experiments.open_world`; a folder holding exactly that world is reused).
``encoders/<key>/``
    the course's trained encoders: checkpoints copied from a grid run (:data:`COURSE_ENCODERS`).
``grid/``
    that grid's ``results.parquet`` and ``grid.json`` (section 3 reads the whole grid).
``sets/<set>.parquet``
    the clips each section uses: suites of the world, at most ``max_clips_per_split`` clips per split of
    each dataset (label-stratified, :func:`avexlab.evaluate.suites.stratified_subsample`).
``embeddings/<key>/<set>.npz``
    every course encoder's embeddings of every set (last layer, mean-pooled; ``load_embeddings``).
``results/course.parquet``, ``results/sweep.parquet``, ``results/fewshot.parquet``
    the tidy results of every encoder on every set, on an SNR sweep of the detection suite, and linear
    probes trained on k labelled clips per class.
``notebooks/``
    a copy of the section notebooks, so the folder alone (plus a wheelhouse) makes a laptop ready.

Which checkpoints: the course reads four encoders. ``baseline`` is the log-mel statistics encoder (nothing
learned). ``sl``, ``ssl`` and ``sl-ssl`` are the BEATs tiny cells trained on the ``bio`` mix by ``avexlab grid
--profile quick`` (``results/grid`` in the repository): one architecture and one data mix, three paradigms,
so sections 4 and 5 compare paradigms with nothing else changed. A grid trained with several seeds keeps a
run per cell and seed (``<cell>/seed-<s>/``); the course copies the runs of the first training seed
(:func:`grid_checkpoints`) and records which in ``course.json``. Section 3 reads the whole grid's table.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl

from avexlab.errors import ConfigError, DataNotFoundError, expected_found
from avexlab.fsutil import atomic_write
from avexlab.workshop.paths import workshop_home

if TYPE_CHECKING:
    import torch

    from avexlab.evaluate.embed import Embeddings
    from avexlab.synth.world import World

__all__ = [
    "COURSE_ENCODERS",
    "COURSE_FORMAT",
    "COURSE_SCALES",
    "PLANS",
    "Course",
    "CourseEncoder",
    "CoursePlan",
    "CourseSet",
    "FewShotPlan",
    "SweepPlan",
    "few_shot_subset",
    "grid_checkpoints",
    "grid_overview",
    "locate_course",
    "name_twins_by_seed",
    "prepare",
    "workshop_home",
]

COURSE_FORMAT = 1
"""Version of the course folder's layout, recorded in ``course.json``; a folder of another version is
refused by :meth:`Course.open` (prepare it again)."""
COURSE_SCALES: tuple[str, ...] = ("smoke", "workshop")
"""Scales a course can be prepared at: ``smoke`` (CI, seconds) and ``workshop`` (the quick world)."""


@dataclass(frozen=True)
class CourseEncoder:
    """One encoder the course reads: ``key`` (what sections and results call it), ``source`` (a grid cell
    folder name, or ``NAME:SIZE`` for an encoder with nothing learned) and a ``label`` for people."""

    key: str
    source: str
    label: str

    @property
    def from_grid(self) -> bool:
        return ":" not in self.source


COURSE_ENCODERS: tuple[CourseEncoder, ...] = (
    CourseEncoder("baseline", "logmel:tiny", "log-mel statistics (nothing learned)"),
    CourseEncoder("sl", "beats-bio-sl", "BEATs tiny, bio mix, supervised (SL)"),
    CourseEncoder("ssl", "beats-bio-ssl", "BEATs tiny, bio mix, self-supervised (SSL)"),
    CourseEncoder("sl-ssl", "beats-bio-sl-ssl", "BEATs tiny, bio mix, SSL then supervised (SL-SSL)"),
)


@dataclass(frozen=True)
class CourseSet:
    """A set of clips the sections read: suite ``suite`` of the world, at most ``max_clips_per_split``
    clips per split of each dataset (None: every clip)."""

    name: str
    suite: str
    max_clips_per_split: int | None


@dataclass(frozen=True)
class SweepPlan:
    """The shift sweep section 5 reads: the detection suite re-rendered at each of ``values`` of ``knob``,
    at most ``max_clips_per_split`` windows per split, for the course encoders ``encoders``."""

    knob: str
    values: tuple[float, ...]
    max_clips_per_split: int
    encoders: tuple[str, ...]


@dataclass(frozen=True)
class FewShotPlan:
    """Probes on ``shots`` labelled clips per class of ``dataset`` (of the ``clf`` set), one per seed."""

    dataset: str
    shots: tuple[int, ...]
    seeds: tuple[int, ...]


@dataclass(frozen=True)
class CoursePlan:
    """What ``prepare`` computes at one scale: the sets, the sweep, the few-shot probes and the probe recipe
    (:data:`avexlab.evaluate.spec.PROBE_RECIPES`) of every probe the course trains. Recorded in
    ``course.json``; the results tables carry the recipe per row."""

    sets: tuple[CourseSet, ...]
    sweep: SweepPlan
    fewshot: FewShotPlan
    probe_recipe: str


PLANS: dict[str, CoursePlan] = {
    # The laptop course: every section's numbers from probes of the standardized recipe (>= 500 steps).
    "workshop": CoursePlan(
        sets=(
            CourseSet("clf", "syn-beans-clf", 64),  # sections 1, 2, 4, 5 (focal)
            CourseSet("birdset", "syn-birdset", 64),  # section 5 (soundscape test windows)
            CourseSet("repertoire", "syn-repertoire", None),  # section 6 (call types)
            CourseSet("individual", "syn-individual", 64),  # section 6 (individuals across sessions)
        ),
        sweep=SweepPlan("snr_db", (-10.0, 5.0, 20.0), 48, ("baseline", "sl", "ssl")),
        fewshot=FewShotPlan("syn-clf-songbirds", (1, 2, 4, 8), (0, 1, 2)),
        probe_recipe="standardized",
    ),
    # CI: the same structure on the tiny world, fewer clips, one few-shot draw, and the paper's recipe
    # (30 epochs: on the smoke world's splits of 8-24 clips a few dozen steps instead of 500). Its
    # numbers test the plumbing, not the encoders.
    "smoke": CoursePlan(
        sets=(
            CourseSet("clf", "syn-beans-clf", 8),
            CourseSet("birdset", "syn-birdset", 16),
            CourseSet("repertoire", "syn-repertoire", None),
            CourseSet("individual", "syn-individual", None),
        ),
        sweep=SweepPlan("snr_db", (-10.0, 5.0, 20.0), 8, ("baseline", "sl", "ssl")),
        fewshot=FewShotPlan("syn-clf-songbirds", (1, 2, 4), (0,)),
        probe_recipe="paper",
    ),
}
"""The course plan of each scale in :data:`COURSE_SCALES`."""

_PREPARE_SEED = 42  # the subsample draw and the probes' seed (the paper's probe seed)


# ------------------------------------------------------------------------------------------- locations
def _check_scale(scale: str) -> str:
    if scale not in COURSE_SCALES:
        raise ConfigError(
            expected_found(
                "workshop scale",
                f"one of {list(COURSE_SCALES)}",
                repr(scale),
                "The course runs on laptops: prepare it at workshop scale (or smoke for a quick try).",
            )
        )
    return scale


def locate_course(scale: str, notebook_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where a section finds its course: the folder above ``notebook_dir`` when it is a course of this
    scale (the notebooks ``prepare`` copied into a course), else ``workshop_home() / scale``."""
    _check_scale(scale)
    if notebook_dir is not None:
        parent = Path(notebook_dir).resolve().parent
        meta = parent / "course.json"
        if meta.is_file():
            try:
                if json.loads(meta.read_text()).get("scale") == scale:
                    return parent
            except (OSError, json.JSONDecodeError):
                pass  # not a readable course: Course.open on the default reports what is wrong
    return workshop_home() / scale


# ---------------------------------------------------------------------------------------- helpers
def few_shot_subset(manifest: pl.DataFrame, shots: int, seed: int) -> pl.DataFrame:
    """``manifest`` with at most ``shots`` training clips per label (its first label), drawn at random by
    ``seed``; validation and test rows are kept as they are. Row order is kept.

    Raises ConfigError for ``shots < 1``."""
    if shots < 1:
        raise ConfigError(expected_found("shots", "at least 1 clip per class", repr(shots), "Pick k >= 1."))
    rng = np.random.default_rng(seed)
    df = manifest.with_row_index("__row").with_columns(
        pl.col("labels").list.first().alias("__label"),
        pl.Series("__key", rng.permutation(manifest.height)),
    )
    is_train = pl.col("split") == "train"
    rank = pl.col("__key").rank("ordinal").over("__label", "split") - 1
    keep = ~is_train | (rank < shots)
    return df.filter(keep).sort("__row").drop("__row", "__label", "__key")


def grid_overview(results: pl.DataFrame) -> pl.DataFrame:
    """One row per encoder of a grid's results table: ``encoder, architecture, mix, paradigm, twin`` (True
    for a random-init twin) and the paper columns (:func:`avexlab.evaluate.tables.paper_table`: last
    layer, mean over datasets and seeds)."""
    from avexlab.evaluate.tables import paper_table

    meta = results.select(
        "encoder",
        "architecture",
        "mix",
        "paradigm",
        (pl.col("checkpoint") == "random-init").alias("twin"),
    ).unique(subset=["encoder"], keep="first", maintain_order=True)
    table = paper_table(results)
    cols = [c for c in table.columns if c != "encoder" and table[c].null_count() < table.height]
    return meta.join(table.select("encoder", *cols), on="encoder", how="left", maintain_order="left")


def name_twins_by_seed(results: pl.DataFrame) -> pl.DataFrame:
    """A grid's results table with each random-init twin under a name of its own.

    A grid with training seeds (a ``train_seed`` column) evaluates one twin per architecture and seed, all
    named ``<arch>-random-init``; tables grouped by encoder would then merge them into one row and lose
    the spread between untrained networks that section 3 compares a cell's gain with. Their rows are
    renamed ``<arch>-random-init-seed<s>``, as a grid without training seeds named its extra twins. Trained
    cells keep their names (their seeds are averaged, as in the paper's tables); a table without
    ``train_seed`` is returned as it is."""
    if "train_seed" not in results.columns:
        return results
    twin = (pl.col("checkpoint") == "random-init") & pl.col("train_seed").is_not_null()
    renamed = pl.format("{}-seed{}", pl.col("encoder"), pl.col("train_seed"))
    return results.with_columns(pl.when(twin).then(renamed).otherwise(pl.col("encoder")).alias("encoder"))


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _notebook_source() -> Path:
    """The section notebooks of this checkout (``notebooks/workshop`` beside the ``avexlab`` package)."""
    import avexlab

    return Path(avexlab.__file__).resolve().parents[1] / "notebooks" / "workshop"


# ------------------------------------------------------------------------------------------- Course
class Course:
    """A prepared course folder (see the module docstring). Open it with :meth:`Course.open`."""

    def __init__(self, root: Path, meta: dict[str, Any]) -> None:
        self.root = root
        self.meta = meta
        self._cache: dict[tuple, Any] = {}

    @classmethod
    def open(cls, path: str | os.PathLike[str]) -> Course:
        """Open the course at ``path``; DataNotFoundError when it was never prepared, ConfigError when it
        was prepared by another course format."""
        root = Path(path).expanduser()
        meta_p = root / "course.json"
        if not meta_p.is_file():
            raise DataNotFoundError(
                expected_found(
                    "workshop course",
                    f"a prepared course folder ({meta_p})",
                    "no course.json" if root.is_dir() else f"no folder {root}",
                    "Prepare it with `avexlab workshop prepare --scale workshop` (or point the notebook at "
                    "the folder your instructor gave you).",
                )
            )
        try:
            meta = json.loads(meta_p.read_text())
        except json.JSONDecodeError as err:
            raise ConfigError(
                expected_found(str(meta_p), "a JSON file", f"unreadable JSON ({err})", "Prepare it again.")
            ) from None
        if meta.get("format") != COURSE_FORMAT:
            raise ConfigError(
                expected_found(
                    f"course {root}",
                    f"course format {COURSE_FORMAT}",
                    f"format {meta.get('format')!r}",
                    "It was prepared by another avexlab: run `avexlab workshop prepare` again.",
                )
            )
        return cls(root, meta)

    def __repr__(self) -> str:
        return f"Course({str(self.root)!r}, scale={self.scale!r}, preset={self.meta['preset']!r})"

    # -------------------------------------------------------------------------------- what it holds
    @property
    def scale(self) -> str:
        return str(self.meta["scale"])

    @property
    def seed(self) -> int:
        return int(self.meta["seed"])

    @property
    def world_dir(self) -> Path:
        return self.root / "world"

    @property
    def encoder_keys(self) -> list[str]:
        return list(self.meta["encoders"])

    def encoder_label(self, key: str) -> str:
        return str(self._encoder_meta(key)["label"])

    def _encoder_meta(self, key: str) -> dict[str, Any]:
        if key not in self.meta["encoders"]:
            raise ConfigError(
                expected_found("course encoder", f"one of {self.encoder_keys}", repr(key), "Pick one.")
            )
        return self.meta["encoders"][key]

    def _set_meta(self, name: str) -> dict[str, Any]:
        if name not in self.meta["sets"]:
            raise ConfigError(
                expected_found("course set", f"one of {list(self.meta['sets'])}", repr(name), "Pick one.")
            )
        return self.meta["sets"][name]

    def _memo(self, key: tuple, make: Callable[[], Any]) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def manifest(self, name: str, dataset: str | None = None) -> pl.DataFrame:
        """The clips of set ``name`` (all datasets, or one); paths are relative to :attr:`world_dir`."""
        from avexlab.data.manifest import read_manifest

        self._set_meta(name)
        df = self._memo(("manifest", name), lambda: read_manifest(self.root / "sets" / f"{name}.parquet"))
        return df if dataset is None else df.filter(pl.col("dataset") == dataset)

    def datasets(self, name: str) -> list[str]:
        """The datasets of set ``name``, in the suite's order."""
        return list(self._set_meta(name)["datasets"])

    def embeddings(self, key: str, name: str, dataset: str | None = None) -> Embeddings:
        """Encoder ``key``'s embeddings of set ``name`` (or of one of its datasets), aligned to
        :meth:`manifest`: ``.array()`` is ``[N, D]`` float32, ``.manifest`` the rows."""
        from avexlab.evaluate.embed import load_embeddings

        self._encoder_meta(key)
        emb = self._memo(
            ("emb", key, name),
            lambda: load_embeddings(
                self.root / "embeddings" / key / f"{name}.npz", self.manifest(name), name=key
            ),
        )
        return emb if dataset is None else emb.subset(emb.manifest["dataset"] == dataset)

    def results(self) -> pl.DataFrame:
        """Every course encoder on every set: the tidy results table (encoder = the course key)."""
        return self._memo(("results",), lambda: pl.read_parquet(self.root / "results" / "course.parquet"))

    def sweep(self) -> pl.DataFrame:
        """The SNR sweep's results (the tidy table plus ``knob`` and ``knob_value``)."""
        return self._memo(("sweep",), lambda: pl.read_parquet(self.root / "results" / "sweep.parquet"))

    def fewshot(self) -> pl.DataFrame:
        """Probe accuracy with k labelled clips per class: ``encoder, shots, seed, n_train, accuracy``."""
        return self._memo(("fewshot",), lambda: pl.read_parquet(self.root / "results" / "fewshot.parquet"))

    def grid_results(self) -> pl.DataFrame:
        """The grid's own results table (all its cells and random-init twins, on the grid's world), with
        one encoder name per random-init twin (:func:`name_twins_by_seed`)."""
        return self._memo(
            ("grid",), lambda: name_twins_by_seed(pl.read_parquet(self.root / "grid" / "results.parquet"))
        )

    def grid_meta(self) -> dict[str, Any]:
        """The grid's ``grid.json`` (its profile and the world it was measured on)."""
        return self._memo(("gridmeta",), lambda: json.loads((self.root / "grid" / "grid.json").read_text()))

    def grid_budget(self) -> str:
        """The grid's training budget in words, from its profile in ``grid.json``: examples seen per cell
        and training seeds (:class:`avexlab.experiments.grid.GridProfile`), or optimiser steps for a grid
        from before budgets were counted in examples."""
        prof = self.grid_meta().get("profile", {})
        if "examples" in prof:
            seeds = prof.get("train_seeds", [])
            return (
                f"{prof['examples']} training examples per cell (SL-SSL: +{prof.get('post_examples')} of "
                f"supervised post-training), {len(seeds)} training seed{'s' if len(seeds) != 1 else ''}"
            )
        if "steps" in prof:
            return f"{prof['steps']} steps of {prof.get('batch_size')} clips per cell"
        raise ConfigError(
            expected_found(
                f"{self.root / 'grid' / 'grid.json'}",
                "a grid profile with `examples` (or `steps` for an older grid)",
                f"profile keys {sorted(prof)}",
                "Prepare the course again from a finished `avexlab grid` run.",
            )
        )

    def encoder(self, key: str) -> torch.nn.Module:
        """The encoder ``key`` (loaded once), in eval mode on the CPU."""
        from avexlab.evaluate.embed import resolve_encoder

        info = self._encoder_meta(key)
        spec = str(self.root / "encoders" / key) if info["from_grid"] else info["source"]
        return self._memo(("encoder", key), lambda: resolve_encoder(spec).eval())

    def world(self) -> World:
        """The course's world (its catalogue: species, call types, individuals; audio read from disk)."""
        from avexlab.synth.world import World

        return self._memo(("world",), lambda: World.open(self.world_dir))

    def clip(self, name: str, row: int) -> tuple[np.ndarray, int]:
        """The audio of row ``row`` of set ``name`` as ``([T] float32, Hz)``."""
        from avexlab.viz.notebook import load_clip

        return load_clip(self.manifest(name), row, self.world_dir)

    # ---------------------------------------------------------------------------------- integrity
    def verify_files(self) -> list[str]:
        """Problems with the files ``course.json`` lists (missing or changed since prepare; a list with no
        files is a problem too, since nothing could be verified): [] when all are intact."""
        if not self.meta.get("files"):
            return ["course.json lists no files to verify: prepare the course again"]
        problems = []
        for rel, digest in sorted(self.meta["files"].items()):
            p = self.root / rel
            if not p.is_file():
                problems.append(f"{rel}: missing")
            elif _sha256(p) != digest:
                problems.append(f"{rel}: changed since prepare (SHA-256 differs)")
        return problems


# ------------------------------------------------------------------------------------------- prepare
def grid_checkpoints(grid: str | os.PathLike[str]) -> dict[str, Path]:
    """The run folder of each grid cell the course reads (:data:`COURSE_ENCODERS`), in a finished
    ``avexlab grid`` folder of either layout:

    - one run per cell, ``<grid>/<cell>/encoder.json`` (grids trained before training seeds existed);
    - one run per cell and training seed, ``<grid>/<cell>/seed-<s>/encoder.json``
      (:func:`avexlab.experiments.grid.run_dir_of`): the course reads the first of the profile's
      ``train_seeds`` in ``grid.json`` (every cell of a grid is trained at each of them), so its three
      paradigms come from one seed.

    Raises DataNotFoundError naming both layouts, what the folder holds and what to do when
    ``results.parquet``, ``grid.json`` or a cell's run is missing."""
    from avexlab.experiments.grid import run_dir_of

    grid = Path(grid).expanduser()
    cells = [c.source for c in COURSE_ENCODERS if c.from_grid]
    problems = [f"no {f}" for f in ("results.parquet", "grid.json") if not (grid / f).is_file()]
    seeds: list[Any] = []
    if (grid / "grid.json").is_file():
        try:
            seeds = list(
                json.loads((grid / "grid.json").read_text()).get("profile", {}).get("train_seeds", [])
            )
        except json.JSONDecodeError as err:
            problems.append(f"grid.json is not JSON ({err})")
    found: dict[str, Path] = {}
    for cell in cells:
        run = run_dir_of(grid, cell, int(seeds[0])) if seeds else grid / cell
        if (grid / cell / "encoder.json").is_file():
            found[cell] = grid / cell
        elif (run / "encoder.json").is_file():
            found[cell] = run
        elif not (grid / cell).is_dir():
            problems.append(f"no folder {cell}/")
        else:
            held = sorted(p.name for p in (grid / cell).iterdir())[:6]
            problems.append(
                f"no {run.relative_to(grid).as_posix()}/encoder.json ({cell}/ holds {held or 'nothing'})"
            )
    if problems:
        raise DataNotFoundError(
            expected_found(
                f"grid folder {grid}",
                "a finished `avexlab grid --profile quick` run: results.parquet, grid.json and, for each of the "
                f"cells {', '.join(cells)}, a trained run in <cell>/encoder.json or, for a grid with training "
                "seeds, <cell>/seed-<s>/encoder.json for the first of grid.json's profile train_seeds",
                "; ".join(problems),
                "Pass --grid with such a folder (the repository's results/grid is one), or run "
                "`avexlab grid --profile quick` to completion (it resumes where it stopped).",
            )
        )
    return found


def _subsample(df: pl.DataFrame, cap: int | None) -> pl.DataFrame:
    from avexlab.evaluate.suites import stratified_subsample

    return df if cap is None else stratified_subsample(df, cap, _PREPARE_SEED)


def prepare(
    scale: str = "workshop",
    out: str | os.PathLike[str] | None = None,
    *,
    grid: str | os.PathLike[str] = "results/grid",
    seed: int = 0,
    workers: int | None = None,
    echo: Callable[[str], None] = print,
) -> Path:
    """Prepare a course folder (module docstring) at ``scale``; returns its path.

    Args:
        scale: ``workshop`` (the quick world) or ``smoke`` (the tiny world, for CI).
        out: the course folder (default ``workshop_home() / scale``). Files there are replaced; a world
            folder holding exactly this world is reused, embeddings already computed come from the cache
            under ``out/cache`` (an interrupted prepare resumes).
        grid: a finished quick grid run holding the course's checkpoints (:data:`COURSE_ENCODERS`).
        seed: the world's seed.
        workers: processes rendering the world (default: 2 at workshop scale; 1 at smoke scale, whose tiny
            world renders faster than two processes start).
        echo: where progress lines go.
    """
    from avexlab.data.manifest import write_manifest
    from avexlab.evaluate.embed import encoder_hash, extract_embeddings, resolve_encoder
    from avexlab.evaluate.spec import EvalSpec
    from avexlab.evaluate.suites import evaluate_suite
    from avexlab.evaluate.sweeps import evaluate_shift_sweep
    from avexlab.experiments import open_world
    from avexlab.synth import render_shift_sweep
    from avexlab.viz.notebook import world_preset

    t_start = time.perf_counter()
    scale = _check_scale(scale)
    root = Path(out).expanduser() if out is not None else workshop_home() / scale
    grid_dir = Path(grid).expanduser()
    runs = grid_checkpoints(grid_dir)
    preset = world_preset(scale)
    plan = PLANS[scale]
    root.mkdir(parents=True, exist_ok=True)
    cache = root / "cache"
    seconds: dict[str, float] = {}

    def stage(name: str, t0: float) -> None:
        seconds[name] = round(time.perf_counter() - t0, 2)
        echo(f"  {name}: {seconds[name]:.1f} s")

    # 1. the world
    t0 = time.perf_counter()
    echo(f"[1/6] world {preset} seed {seed} -> {root / 'world'}")
    workers = workers if workers is not None else (1 if scale == "smoke" else 2)
    world = open_world(preset, seed, root / "world", workers=workers, echo=echo)
    stage("world", t0)

    # 2. encoders and the grid's table
    t0 = time.perf_counter()
    echo(f"[2/6] encoders from {grid_dir}")
    for f in ("results.parquet", "grid.json"):
        atomic_write(root / "grid" / f, (grid_dir / f).read_bytes())
    encoders: dict[str, Any] = {}
    enc_meta: dict[str, Any] = {}
    for ce in COURSE_ENCODERS:
        if ce.from_grid:
            dest = root / "encoders" / ce.key
            for f in ("encoder.json", "checkpoint.safetensors", "config.yaml", "provenance.json"):
                if (runs[ce.source] / f).is_file():
                    atomic_write(dest / f, (runs[ce.source] / f).read_bytes())
            enc = resolve_encoder(str(dest))
        else:
            enc = resolve_encoder(ce.source)
        encoders[ce.key] = enc.eval()
        enc_meta[ce.key] = {
            "source": ce.source,
            "from_grid": ce.from_grid,
            "run": runs[ce.source].relative_to(grid_dir).as_posix() if ce.from_grid else None,
            "label": ce.label,
            "weights": encoder_hash(enc),
        }
    stage("encoders", t0)

    # 3. the sets and their embeddings
    t0 = time.perf_counter()
    echo("[3/6] embeddings")
    sets_meta: dict[str, Any] = {}
    embeddings: dict[tuple[str, str], Any] = {}
    for cs in plan.sets:
        suite = world.suites[cs.suite]
        manifest = pl.concat([_subsample(m, cs.max_clips_per_split) for m in suite.manifests.values()])
        write_manifest(manifest, root / "sets" / f"{cs.name}.parquet")
        sets_meta[cs.name] = {
            "suite": cs.suite,
            "datasets": list(suite.manifests),
            "max_clips_per_split": cs.max_clips_per_split,
            "clips": manifest.height,
        }
        for key, enc in encoders.items():
            t1 = time.perf_counter()
            emb = extract_embeddings(
                enc, manifest, root=world.root, cache_dir=cache, progress=False, batch_size=32
            )
            emb.meta["encoder"] = key
            emb.save(root / "embeddings" / key / f"{cs.name}.npz")
            embeddings[key, cs.name] = emb
            echo(f"  {key} x {cs.name}: {manifest.height} clips in {time.perf_counter() - t1:.1f} s")
    stage("embeddings", t0)

    # 4. results of every encoder on every set
    t0 = time.perf_counter()
    echo("[4/6] evaluation (probe, retrieval, clustering)")
    spec = EvalSpec(probe_seeds=(_PREPARE_SEED,), probe_recipe=plan.probe_recipe)  # type: ignore[arg-type]
    frames = []
    for cs in plan.sets:
        suite = world.suites[cs.suite]
        sub = dataclasses.replace(
            suite, manifests={d: _subsample(m, cs.max_clips_per_split) for d, m in suite.manifests.items()}
        )
        for key in encoders:
            frames.append(evaluate_suite(embeddings[key, cs.name], sub, spec, encoder_name=key))
    results = pl.concat(frames, how="diagonal_relaxed")
    atomic_write(root / "results" / "course.parquet", lambda t: results.write_parquet(t))
    stage("evaluation", t0)

    # 5. the shift sweep (soundscapes re-rendered in memory at each knob value)
    t0 = time.perf_counter()
    echo(f"[5/6] {plan.sweep.knob} sweep at {list(plan.sweep.values)}")
    sweep = render_shift_sweep(preset, seed, plan.sweep.knob, plan.sweep.values)
    sub_sweep = dataclasses.replace(
        sweep,
        suites={
            v: dataclasses.replace(
                s,
                manifests={d: _subsample(m, plan.sweep.max_clips_per_split) for d, m in s.manifests.items()},
            )
            for v, s in sweep.suites.items()
        },
    )
    sweep_spec = spec.replace(cache_dir=cache)
    sweep_results = pl.concat(
        [
            evaluate_shift_sweep(encoders[k], sub_sweep, sweep_spec).with_columns(pl.lit(k).alias("encoder"))
            for k in plan.sweep.encoders
        ]
    )
    atomic_write(root / "results" / "sweep.parquet", lambda t: sweep_results.write_parquet(t))
    stage("sweep", t0)

    # 6. few-shot probes
    t0 = time.perf_counter()
    echo(f"[6/6] few-shot probes on {plan.fewshot.dataset}")
    fewshot = _fewshot(embeddings, list(encoders), plan)
    atomic_write(root / "results" / "fewshot.parquet", lambda t: fewshot.write_parquet(t))
    stage("fewshot", t0)

    copied = _copy_notebooks(root)
    seconds["total"] = round(time.perf_counter() - t_start, 2)
    files = {
        str(p.relative_to(root)): _sha256(p)
        for sub in ("encoders", "grid", "sets", "embeddings", "results", "notebooks")
        for p in sorted((root / sub).rglob("*"))
        if p.is_file()
    }
    import avexlab

    meta = {
        "format": COURSE_FORMAT,
        "scale": scale,
        "preset": preset,
        "seed": seed,
        "avexlab_version": avexlab.__version__,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "grid": {
            "source": str(grid_dir.resolve()),
            "world": json.loads((grid_dir / "grid.json").read_text()).get("world", {}).get("preset"),
        },
        "world": {
            "audio_sha256": world.meta.get("audio_sha256"),
            "audio_items": world.meta.get("audio_items"),
        },
        "encoders": enc_meta,
        "sets": sets_meta,
        "plan": dataclasses.asdict(plan),
        "notebooks": copied,
        "seconds": seconds,
        "files": files,
    }
    atomic_write(root / "course.json", json.dumps(meta, indent=2))
    echo(f"course ready in {root} ({seconds['total']:.0f} s)")
    return root


def _fewshot(embeddings: dict[tuple[str, str], Any], keys: Sequence[str], plan: CoursePlan) -> pl.DataFrame:
    """Linear probes (the plan's recipe, seed = the draw) on k clips per class of the few-shot
    dataset, best epoch on its whole validation split, accuracy on its test split."""
    from avexlab.evaluate.metrics import accuracy
    from avexlab.evaluate.probe import LinearProbe
    from avexlab.evaluate.spec import PROBE_RECIPES

    rows = []
    for key in keys:
        emb = embeddings[key, "clf"]
        emb = emb.subset(emb.manifest["dataset"] == plan.fewshot.dataset)
        x, df = emb.array(-1), emb.manifest
        label = df["labels"].list.first().to_numpy()
        split = df["split"].to_numpy()
        for seed in plan.fewshot.seeds:
            for shots in plan.fewshot.shots:
                kept = set(few_shot_subset(df, shots, seed)["clip_id"].to_list())
                tr = (split == "train") & np.array([c in kept for c in df["clip_id"].to_list()])
                va, te = split == "val", split == "test"
                probe = LinearProbe(random_state=seed, **PROBE_RECIPES[plan.probe_recipe])
                probe.fit(x[tr], label[tr], x[va], label[va])
                pred = probe.classes_[probe.decision_function(x[te]).argmax(axis=1)]
                rows.append(
                    {
                        "encoder": key,
                        "shots": shots,
                        "seed": seed,
                        "n_train": int(tr.sum()),
                        "accuracy": accuracy(label[te], pred),
                        "probe_recipe": plan.probe_recipe,
                    }
                )
    return pl.DataFrame(rows)


def _copy_notebooks(root: Path) -> list[str]:
    """Copy the section notebooks, their Jupyter twins and the instructor guide into ``root/notebooks``;
    returns their paths relative to it.
    Outside a source checkout there is nothing to copy (the course then only serves notebooks opened from
    elsewhere)."""
    src = _notebook_source()
    if not src.is_dir():
        return []
    names = []
    for p in sorted(src.glob("*.py")) + sorted(src.glob("*.md")) + sorted(src.glob("jupyter/*.py")):
        rel = p.relative_to(src).as_posix()
        atomic_write(root / "notebooks" / rel, p.read_bytes())
        names.append(rel)
    return names
