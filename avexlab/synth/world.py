"""The synthetic world: its catalogue of items, its suites and training pools, rendering in memory or to
disk, and shift sweeps.

A world is fully determined by ``(preset, seed, knobs)``. Building a :class:`World` computes the whole
catalogue (metadata, labels, soundscape events) without rendering audio; audio is rendered on demand by
:meth:`World.load` (in memory, ``synth://`` paths) or written once by :func:`render_world` with ``out``.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode

import numpy as np
import polars as pl

import avexlab
from avexlab.data.manifest import manifest_hash, read_manifest, validate_manifest, write_manifest
from avexlab.data.schema import COLUMNS, EVENT_SCHEMA, SCHEMA
from avexlab.data.suite import Suite
from avexlab.errors import ConfigError, DataNotFoundError, expected_found
from avexlab.frames import exact_sum
from avexlab.synth.config import (
    KNOBS,
    SWEEP_KNOBS,
    TAXON_GROUPS,
    TERRESTRIAL_GROUPS,
    SynthConfig,
    resolve_config,
)
from avexlab.synth.general import GENERAL_CLASSES
from avexlab.synth.render import (
    Event,
    FocalItem,
    GeneralItem,
    Item,
    SceneItem,
    render_focal,
    render_general,
    render_scene,
    scene_events,
)
from avexlab.synth.seeding import rng_for
from avexlab.synth.taxonomy import Species, build_taxonomy

WORLD_VERSION = 2
"""Version of the world's catalogue and renderers, recorded in ``world.json`` as ``world_version``. Bumped
whenever the same ``(preset, seed, config)`` would give other items, labels or audio, so a folder rendered
by an older avexlab is refused (:meth:`World.open`, :func:`open_or_render_world`) rather than mixed with
this one's worlds. 1 (no ``world_version`` key): twelve general-audio classes. 2: the 65-class
general-audio ontology with its animal branch; quick sizes set by rule (pooled classification test set,
30 test soundscapes per suite, general pool twice the bio pool)."""
SOURCE = "avexlab-synth"
LICENSE = "CC0-1.0"
SUITE_NAMES: tuple[str, ...] = (
    "syn-beans-clf",
    "syn-beans-det",
    "syn-birdset",
    "syn-individual",
    "syn-repertoire",
)
POOL_NAMES: tuple[str, ...] = ("bio", "general", "all")
_IND_GROUPS = ("songbirds", "owls_doves", "frogs", "cetaceans", "insects", "bats")
_REP_GROUPS = ("songbirds", "cetaceans", "frogs", "owls_doves", "bats", "insects")


def _row(
    clip_id: str, path: str, dataset: str, split: str, domain: str, labels: list[str], **kw: Any
) -> dict:
    r = {c: None for c in COLUMNS}
    r.update(
        clip_id=clip_id,
        path=path,
        dataset=dataset,
        split=split,
        domain=domain,
        labels=labels,
        source=SOURCE,
        license=LICENSE,
    )
    r.update(kw)
    return r


def _frame(rows: list[dict]) -> pl.DataFrame:
    return pl.DataFrame(rows, schema=SCHEMA)


def _split_counts(n: int) -> tuple[int, int, int]:
    """60/20/20 train/val/test with at least one clip in val and test."""
    n_test = max(1, int(round(0.2 * n)))
    n_val = max(1, int(round(0.2 * n)))
    return n - n_val - n_test, n_val, n_test


def _split_of(i: int, n: int) -> str:
    tr, va, _ = _split_counts(n)
    return "train" if i < tr else "val" if i < tr + va else "test"


def _pick(rng: np.random.Generator, items: list[str], frac: float) -> set[str]:
    k = int(round(frac * len(items)))
    return set(rng.choice(items, size=k, replace=False).tolist()) if k else set()


class World:
    """A synthetic world: ``suites``, ``pools``, ``events``, ``taxonomy``; ``load`` renders (or reads) audio.

    Build it with :func:`render_world` (or ``World(cfg, seed)`` for an in-memory world); reopen a rendered
    one with :meth:`World.open`.
    """

    def __init__(
        self,
        config: SynthConfig,
        seed: int,
        root: Path | None = None,
        audio_format: Literal["flac", "wav"] = "flac",
    ) -> None:
        if not isinstance(seed, int) or seed < 0:
            raise ConfigError(
                expected_found("synth seed", "a non-negative integer", repr(seed), "Pass e.g. seed=0.")
            )
        self.config = config
        self.seed = seed
        self.root = root
        self.audio_format = audio_format
        self.meta: dict[str, Any] = {}
        self.species: list[Species] = build_taxonomy(config, seed)
        self._by_code = {s.code: s for s in self.species}
        self._by_name = {s.name: s for s in self.species}
        self.items: dict[str, Item] = {}
        self._rows: dict[tuple[str, str], list[dict]] = {}
        self._scene_events: dict[str, list[Event]] = {}
        self._scene_meta: dict[str, tuple[str, str]] = {}
        self._build()
        self.suites: dict[str, Suite] = self._suites()
        self.pools: dict[str, pl.DataFrame] = self._pools()
        self.events: pl.DataFrame = self._events_frame()
        self._clip_index = self._index_clips()

    # ------------------------------------------------------------------------------------------ catalogue
    def path_of(self, key: str) -> str:
        """Where the audio of item ``key`` lives: relative file path in a written world, else a URI."""
        if self.root is not None:
            return f"audio/{key}.{self.audio_format}"
        q = _encode_overrides(self.config)
        return f"synth://{self.config.preset}/{self.seed}/{key}" + (f"?{q}" if q else "")

    def _add(self, where: tuple[str, str], row: dict) -> None:
        self._rows.setdefault(where, []).append(row)

    def _focal_row(self, item: FocalItem, dataset: str, split: str, labels: list[str], **kw: Any) -> dict:
        sp = self._by_code[item.species]
        return _row(
            item.key,
            self.path_of(item.key),
            dataset,
            split,
            "focal",
            labels,
            start_s=0.0,
            end_s=self.config.clip_s,
            sample_rate=self.config.sample_rate,
            species=sp.name,
            taxon_group=sp.group,
            individual=item.individual,
            session=item.session,
            **kw,
        )

    def _build(self) -> None:
        cfg, seed = self.config, self.seed
        by_group = {g: [s for s in self.species if s.group == g] for g in TAXON_GROUPS}
        # who never enters the training pools (the unseen_species / unseen_individuals knobs)
        self.unseen_species: set[str] = set()
        self.unseen_individuals: set[str] = set()
        for g, sps in by_group.items():
            self.unseen_species |= _pick(
                rng_for(seed, f"unseen/species/{g}"), [s.name for s in sps], cfg.unseen_species
            )
            for s in sps:
                self.unseen_individuals |= _pick(
                    rng_for(seed, f"unseen/individuals/{s.code}"), list(s.individuals), cfg.unseen_individuals
                )
        # syn-beans-clf (+ syn-birdset train/val): focal recordings, one dataset per taxon group
        for sp in self.species:
            who = rng_for(seed, f"plan/focal/{sp.code}").integers(
                0, len(sp.individuals), size=cfg.focal_per_species
            )
            for r in range(cfg.focal_per_species):
                key = f"focal/{sp.code}/r{r:03d}"
                item = FocalItem(key, sp.code, sp.individuals[who[r]], key)
                self.items[key] = item
                split = _split_of(r, cfg.focal_per_species)
                self._add(
                    ("syn-beans-clf", f"syn-clf-{sp.group}"),
                    self._focal_row(item, f"syn-clf-{sp.group}", split, [sp.name]),
                )
                if sp.group in TERRESTRIAL_GROUPS and split != "test":
                    self._add(
                        ("syn-birdset", "syn-birdset-forest"),
                        self._focal_row(item, "syn-birdset-forest", split, [sp.name]),
                    )
        # syn-individual: shared recording sessions; the last session is the test session
        for j in range(cfg.individual_species):
            sp = by_group[_IND_GROUPS[j % len(_IND_GROUPS)]][(j // len(_IND_GROUPS)) % cfg.species_per_group]
            ds = f"syn-indiv-{sp.code}"
            keys = [
                (s, ind, c)
                for s in range(cfg.individual_sessions)
                for ind in sp.individuals
                for c in range(cfg.individual_clips)
            ]
            shuffled = rng_for(seed, f"plan/indiv/{sp.code}/split").permutation(len(keys))
            n_s = cfg.individual_sessions
            for pos, (s, ind, c) in enumerate(keys):
                if cfg.unseen_sessions:
                    split = "test" if s == n_s - 1 else "val" if s == n_s - 2 else "train"
                else:  # same proportions, but every session appears in every split
                    q = shuffled[pos] * n_s // len(keys)
                    split = "test" if q == n_s - 1 else "val" if q == n_s - 2 else "train"
                session = f"indiv/{sp.code}/s{s}"
                key = f"{session}/{ind}/c{c:02d}"
                item = FocalItem(key, sp.code, ind, session)
                self.items[key] = item
                self._add(("syn-individual", ds), self._focal_row(item, ds, split, [ind]))
        # syn-repertoire: one segmented call per clip
        for j in range(cfg.repertoire_species):
            group = _REP_GROUPS[j % len(_REP_GROUPS)]
            sp = by_group[group][-1 - (j // len(_REP_GROUPS)) % cfg.species_per_group]
            ds = f"syn-rep-{sp.code}"
            for k, ct_name in enumerate(sp.call_type_names):
                who = rng_for(seed, f"plan/rep/{sp.code}/{k}").integers(
                    0, len(sp.individuals), size=cfg.repertoire_clips
                )
                for c in range(cfg.repertoire_clips):
                    key = f"rep/{sp.code}/{ct_name}/c{c:03d}"
                    item = FocalItem(key, sp.code, sp.individuals[who[c]], key, (k,), max_calls=1)
                    self.items[key] = item
                    split = _split_of(c, cfg.repertoire_clips)
                    self._add(
                        ("syn-repertoire", ds), self._focal_row(item, ds, split, [ct_name], call_type=ct_name)
                    )
        # soundscapes: syn-beans-det (train/val/test scenes) and syn-birdset (test scenes)
        terrestrial = [s.code for s in self.species if s.group in TERRESTRIAL_GROUPS]
        scenes = [
            (f"scene/det/{sp}/{i:03d}", "syn-beans-det", "syn-det-forest", sp)
            for sp, n in zip(("train", "val", "test"), cfg.det_scenes, strict=True)
            for i in range(n)
        ]
        scenes += [
            (f"scene/birdset/test/{i:03d}", "syn-birdset", "syn-birdset-forest", "test")
            for i in range(cfg.birdset_scenes)
        ]
        for key, suite, ds, split in scenes:
            item = SceneItem(key, cfg.scene_duration_s)
            self.items[key] = item
            events = scene_events(item, cfg, seed, self._by_code, terrestrial)
            self._scene_events[key] = events
            self._scene_meta[key] = (ds, split)
            for w, (a, b, labels) in enumerate(_windows(events, cfg.scene_duration_s, cfg.clip_s)):
                self._add(
                    (suite, ds),
                    _row(
                        f"{key}/w{w:03d}",
                        self.path_of(key),
                        ds,
                        split,
                        "soundscape",
                        labels,
                        start_s=a,
                        end_s=b,
                        sample_rate=cfg.sample_rate,
                        session=key,
                    ),
                )
        # training pools: their own recordings and sessions, seen species and individuals only
        for sp in self.species:
            if sp.name in self.unseen_species:
                continue
            seen = [i for i in sp.individuals if i not in self.unseen_individuals] or list(sp.individuals[:1])
            who = rng_for(seed, f"plan/pool/{sp.code}").integers(
                0, len(seen), size=cfg.pool_focal_per_species
            )
            for r in range(cfg.pool_focal_per_species):
                key = f"pool/{sp.code}/r{r:03d}"
                item = FocalItem(key, sp.code, seen[who[r]], key)
                self.items[key] = item
                self._add(("pool", "bio"), self._focal_row(item, "pool-bio", "train", [sp.name]))
        for label in GENERAL_CLASSES:
            for r in range(cfg.general_per_class):
                key = f"general/{label}/r{r:03d}"
                self.items[key] = GeneralItem(key, label)
                self._add(
                    ("pool", "general"),
                    _row(
                        key,
                        self.path_of(key),
                        "pool-general",
                        "train",
                        "general",
                        [label],
                        start_s=0.0,
                        end_s=cfg.clip_s,
                        sample_rate=cfg.sample_rate,
                        session=key,
                    ),
                )

    def _suites(self) -> dict[str, Suite]:
        spec = {
            "syn-beans-clf": ("classification", "accuracy", False),
            "syn-beans-det": ("detection", "map", True),
            "syn-birdset": ("birdset", "map", True),
            "syn-individual": ("individual_id", "accuracy", False),
            "syn-repertoire": ("repertoire", "retrieval_roc_auc", False),
        }
        out = {}
        for name, (family, metric, multi) in spec.items():
            dsets = {
                ds: validate_manifest(_frame(rows), source=f"{name}/{ds}")
                for (suite, ds), rows in self._rows.items()
                if suite == name
            }
            out[name] = Suite(
                name=name,
                task_family=family,
                multi_label=multi,
                manifests=dsets,
                root=None if self.root is None else str(self.root),
                metric=metric,
            )
        return out

    def _pools(self) -> dict[str, pl.DataFrame]:
        bio = validate_manifest(_frame(self._rows[("pool", "bio")]), source="pool bio")
        general = validate_manifest(_frame(self._rows[("pool", "general")]), source="pool general")
        return {"bio": bio, "general": general, "all": pl.concat([bio, general])}

    def _events_frame(self) -> pl.DataFrame:
        rows = []
        for key, events in self._scene_events.items():
            ds, split = self._scene_meta[key]
            sp_ct = {e.species: self._by_name[e.species] for e in events}
            for e in events:
                rows.append(
                    {
                        "recording_id": key,
                        "path": self.path_of(key),
                        "onset_s": e.onset_s,
                        "offset_s": e.offset_s,
                        "label": e.species,
                        "species": e.species,
                        "individual": e.individual,
                        "call_type": sp_ct[e.species].call_type_names[e.call_type],
                        "dataset": ds,
                        "split": split,
                        "snr_db": e.snr_db,
                        "distance_m": e.distance_m,
                        "low_hz": e.low_hz,
                        "high_hz": e.high_hz,
                    }
                )
        extra = {
            "dataset": pl.String(),
            "split": pl.String(),
            "snr_db": pl.Float64(),
            "distance_m": pl.Float64(),
            "low_hz": pl.Float64(),
            "high_hz": pl.Float64(),
        }
        return pl.DataFrame(rows, schema={**EVENT_SCHEMA, **extra})

    def _index_clips(self) -> dict[str, tuple[str, float, float | None]]:
        idx: dict[str, tuple[str, float, float | None]] = {}
        frames = [m for s in self.suites.values() for m in s.manifests.values()] + [self.pools["all"]]
        for df in frames:
            for cid, path, a, b in df.select("clip_id", "path", "start_s", "end_s").iter_rows():
                idx[cid] = (_key_of(path), a or 0.0, b)
        return idx

    @property
    def taxonomy(self) -> pl.DataFrame:
        """One row per species: name, code, group, class, order, family, genus, call types, above_8k, unseen."""
        return pl.DataFrame(
            [
                {
                    "species": s.name,
                    "code": s.code,
                    "taxon_group": s.group,
                    "class": s.class_,
                    "order": s.order,
                    "family": s.family,
                    "genus": s.genus,
                    "call_types": list(s.call_type_names),
                    "above_8k": s.above_8k,
                    "unseen": s.name in self.unseen_species,
                }
                for s in self.species
            ]
        )

    def species_by_name(self, name: str) -> Species:
        return self._by_name[name]

    def scene_events(self, key: str) -> list[Event]:
        """The events of soundscape ``key`` (render-level detail: SNR, distance, band, rendition)."""
        return self._scene_events[key]

    # ------------------------------------------------------------------------------------------- audio
    def render(self, key: str) -> np.ndarray:
        """Render item ``key`` (a focal/general clip or a whole soundscape): ``[T]`` float32 in [-1, 1] at
        ``config.sample_rate``. Independent of every other item (bit-identical in any order)."""
        item = self.items.get(key)
        if item is None:
            raise DataNotFoundError(
                expected_found(
                    "synth item",
                    "a key of this world (e.g. 'focal/son00/r000')",
                    repr(key),
                    "Use a clip_id or path from this world's manifests.",
                )
            )
        if isinstance(item, FocalItem):
            return render_focal(item, self.config, self.seed, self._by_code)
        if isinstance(item, SceneItem):
            return _render_scene_cached(self, key).copy()
        return render_general(item, self.config, self.seed)

    def load(self, clip: str) -> tuple[np.ndarray, int]:
        """The audio of a clip (``clip_id``, item key or manifest path): ``([T] float32, sample_rate)``.

        A soundscape window gives its 5 s segment; a path or key of a soundscape gives the whole scene.
        A written world reads its files; an in-memory one renders on demand."""
        if clip in self._clip_index:
            key, a, b = self._clip_index[clip]
        else:
            key, a, b = _key_of(clip), 0.0, None
        sr = self.config.sample_rate
        if self.root is not None:
            import soundfile as sf

            p = self.root / "audio" / f"{key}.{self.audio_format}"
            if not p.exists():
                raise DataNotFoundError(
                    expected_found(
                        "synth audio",
                        f"the file {p}",
                        "nothing",
                        "Re-render the world with render_world(..., out=DIR).",
                    )
                )
            x, file_sr = sf.read(
                p, dtype="float32", start=int(round(a * sr)), stop=None if b is None else int(round(b * sr))
            )
            return x, int(file_sr)
        x = self.render(key)
        i0, i1 = int(round(a * sr)), None if b is None else int(round(b * sr))
        return x[i0:i1], sr

    # -------------------------------------------------------------------------------------------- tables
    def summary(self) -> pl.DataFrame:
        """One row per (suite, dataset, split): clips, classes (distinct labels), hours of audio."""
        parts = [s.manifest.with_columns(pl.lit(n).alias("suite")) for n, s in self.suites.items()]
        parts += [self.pools[p].with_columns(pl.lit(f"pool-{p}").alias("suite")) for p in ("bio", "general")]
        df = pl.concat(parts, how="diagonal_relaxed")
        return (
            df.group_by("suite", "dataset", "split", maintain_order=True)
            .agg(
                pl.len().alias("clips"),
                pl.col("labels").explode().drop_nulls().n_unique().alias("classes"),
                (exact_sum(pl.col("end_s") - pl.col("start_s")) / 3600.0).alias("hours"),
            )
            .sort(
                "suite",
                "dataset",
                pl.col("split").replace_strict({"train": 0, "val": 1, "test": 2}, default=3),
            )
        )

    def provenance(self) -> dict[str, Any]:
        """The config and provenance: world version, preset, seed, knobs, avexlab version, manifest hashes."""
        hashes = {
            f"suite/{n}/{d}": manifest_hash(m) for n, s in self.suites.items() for d, m in s.manifests.items()
        }
        hashes.update({f"pool/{p}": manifest_hash(m) for p, m in self.pools.items()})
        return {
            "world_version": WORLD_VERSION,
            "preset": self.config.preset,
            "seed": self.seed,
            "config": self.config.to_dict(),
            "knobs": {k: getattr(self.config, k) for k in KNOBS},
            "knob_overrides": self.config.knob_overrides(),
            "avexlab_version": avexlab.__version__,
            "manifest_sha256": hashes,
            "events_rows": self.events.height,
            "items": len(self.items),
        }

    def __repr__(self) -> str:
        where = str(self.root) if self.root is not None else "in memory"
        return (
            f"World(preset={self.config.preset!r}, seed={self.seed}, sr={self.config.sample_rate}, "
            f"{len(self.species)} species, {len(self.items)} items, {where})"
        )

    # ------------------------------------------------------------------------------------------ writing
    def write(
        self,
        out: str | Path,
        *,
        progress: bool = False,
        keys: Iterable[str] | None = None,
        audio_format: Literal["flac", "wav"] = "flac",
        workers: int = 1,
    ) -> Path:
        """Write audio files (``audio/<key>.flac``, 24-bit; ``wav`` writes exact float32), one parquet
        manifest per suite and pool, ``events.parquet`` and ``world.json`` under ``out``; manifest paths
        are relative to ``out``. ``keys`` restricts the audio written (default: every item). ``workers``
        processes render in parallel; the files and ``audio_sha256`` do not depend on it."""
        from tqdm.auto import tqdm

        if workers < 1:
            raise ConfigError(
                expected_found("workers", "an integer >= 1", repr(workers), "Pass workers=1 or more.")
            )
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        disk = World(self.config, self.seed, root=out, audio_format=audio_format)
        todo = list(self.items) if keys is None else list(keys)
        t0 = time.perf_counter()
        chunks = [todo[i : i + 32] for i in range(0, len(todo), 32)]
        digests: dict[str, str] = {}
        bar = tqdm(total=len(todo), desc="rendering", unit="item", disable=not progress)
        if workers == 1:
            for chunk in chunks:
                digests.update(_write_items(self, chunk, out, audio_format))
                bar.update(len(chunk))
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor

            ctx = mp.get_context("spawn")  # fork can deadlock on locks held by torch/BLAS threads
            args = [(self.config.to_dict(), self.seed, c, str(out), audio_format) for c in chunks]
            with ProcessPoolExecutor(max_workers=workers, mp_context=ctx) as pool:
                for part in pool.map(_write_chunk, args):
                    digests.update(part)
                    bar.update(len(part))
        bar.close()
        digest = hashlib.sha256()
        for key in sorted(digests):  # order-free: the same hash whatever the workers
            digest.update(f"{key}:{digests[key]}\n".encode())
        for name, suite in disk.suites.items():
            write_manifest(pl.concat(list(suite.manifests.values())), out / f"{name}.parquet")
        for p, m in disk.pools.items():
            write_manifest(m, out / f"pool-{p}.parquet")
        disk.events.write_parquet(out / "events.parquet")
        meta = disk.provenance()
        meta.update(
            audio_sha256=digest.hexdigest(),
            audio_items=len(todo),
            audio_format=audio_format,
            render_seconds=round(time.perf_counter() - t0, 3),
            workers=workers,
        )
        (out / "world.json").write_text(json.dumps(meta, indent=2, default=list))
        return out

    @classmethod
    def open(cls, path: str | Path) -> World:
        """Reopen a world written by :func:`render_world` (``path`` holds ``world.json``); manifests are
        read (and validated) from disk, audio is read from its files. A folder of another
        ``WORLD_VERSION`` is refused (``ConfigError``): its catalogue is not this avexlab's."""
        root = Path(path)
        meta_p = root / "world.json"
        if not meta_p.exists():
            raise DataNotFoundError(
                expected_found(
                    "synth world",
                    f"{meta_p}",
                    "no world.json",
                    "Render one with render_world(preset, seed, out=DIR).",
                )
            )
        meta = json.loads(meta_p.read_text())
        _check_version(meta, root)
        world = cls(
            SynthConfig.from_dict(meta["config"]),
            int(meta["seed"]),
            root=root,
            audio_format=meta.get("audio_format", "flac"),
        )
        for name, suite in world.suites.items():
            df = read_manifest(root / f"{name}.parquet")
            manifests = {ds: df.filter(pl.col("dataset") == ds) for ds in suite.manifests}
            world.suites[name] = dataclasses.replace(suite, manifests=manifests)
        world.pools = {p: read_manifest(root / f"pool-{p}.parquet") for p in POOL_NAMES}
        world.events = pl.read_parquet(root / "events.parquet")
        world.meta = meta
        return world


def _check_version(meta: dict[str, Any], folder: Path) -> None:
    """Refuse a world folder whose ``world.json`` records another ``WORLD_VERSION`` (none recorded: 1)."""
    found = meta.get("world_version", 1)
    if found != WORLD_VERSION:
        preset, seed = meta.get("preset", "PRESET"), meta.get("seed", "SEED")
        raise ConfigError(
            expected_found(
                f"world folder {folder}",
                f"a world of version {WORLD_VERSION} (what this avexlab's catalogue and renderers give)",
                f"version {found}"
                + (" (world.json has no world_version)" if "world_version" not in meta else ""),
                "It was rendered by another avexlab version: its clips, labels and audio differ from this "
                f"one's. Delete {folder} and render it again (avexlab synth --preset {preset} --seed {seed} "
                f"--out {folder}), or pass another folder.",
            )
        )


@functools.lru_cache(maxsize=2)
def _render_scene_cached(world: World, key: str) -> np.ndarray:
    # consecutive windows of one scene re-use its rendering (two scenes kept)
    item = world.items[key]
    assert isinstance(item, SceneItem)
    x = render_scene(item, world.scene_events(key), world.config, world.seed, world._by_name)
    x.setflags(write=False)
    return x


def _write_items(world: World, keys: list[str], out: Path, audio_format: str) -> dict[str, str]:
    """Render and save ``keys``; returns each item's SHA-256 of its float32 samples."""
    from avexlab.audio.io import save_audio

    subtype = "PCM_24" if audio_format == "flac" else "FLOAT"
    digests = {}
    for key in keys:  # one file per item
        x = world.render(key)
        digests[key] = hashlib.sha256(x.tobytes()).hexdigest()
        save_audio(out / "audio" / f"{key}.{audio_format}", x, world.config.sample_rate, subtype=subtype)
    return digests


def _write_chunk(args: tuple[dict, int, list[str], str, str]) -> dict[str, str]:
    cfg, seed, keys, out, audio_format = args
    return _write_items(
        _world_for_config(json.dumps(cfg, sort_keys=True), seed), keys, Path(out), audio_format
    )


@functools.lru_cache(maxsize=2)
def _world_for_config(cfg_json: str, seed: int) -> World:
    return World(SynthConfig.from_dict(json.loads(cfg_json)), seed)


def _windows(events: list[Event], duration_s: float, clip_s: float) -> list[tuple[float, float, list[str]]]:
    """Consecutive ``clip_s`` windows of a scene with their labels: the species whose call overlaps the
    window by at least min(0.25 s, half the call). Windows may be empty (no label)."""
    out = []
    for w in range(int(duration_s // clip_s)):
        a, b = w * clip_s, (w + 1) * clip_s
        labels = sorted(
            {
                e.species
                for e in events
                if min(b, e.offset_s) - max(a, e.onset_s) >= min(0.25, 0.5 * (e.offset_s - e.onset_s))
            }
        )
        out.append((a, b, labels))
    return out


def _key_of(path: str) -> str:
    """The item key of a manifest path (``synth://preset/seed/KEY?...`` or ``audio/KEY.flac``)."""
    if path.startswith("synth://"):
        return path.split("?", 1)[0].split("/", 4)[4]
    if path.startswith("audio/"):
        return path[len("audio/") :].rsplit(".", 1)[0]
    return path


def _encode_overrides(cfg: SynthConfig) -> str:
    def enc(v: Any) -> str:
        if isinstance(v, tuple):
            return ",".join(str(x) for x in v)
        return str(v)

    return urlencode(sorted((k, enc(v)) for k, v in cfg.knob_overrides().items()))


def _decode_overrides(query: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in parse_qsl(query, keep_blank_values=True):
        if k not in KNOBS:
            raise ConfigError(
                expected_found("synth URI knob", f"one of {list(KNOBS)}", repr(k), "Fix the URI.")
            )
        if k == "background":
            out[k] = tuple(x for x in v.split(",") if x)
        elif k == "unseen_sessions":
            out[k] = v == "True"
        elif k == "sample_rate":
            out[k] = int(v)
        elif "," in v:
            out[k] = tuple(float(x) for x in v.split(","))
        else:
            out[k] = float(v)
    return out


@functools.lru_cache(maxsize=8)
def _world_for(preset: str, seed: int, query: str) -> World:
    return World(resolve_config(preset, **_decode_overrides(query)), seed)


def load_uri(uri: str) -> tuple[np.ndarray, int]:
    """Loader of ``synth://<preset>/<seed>/<item key>[?knob=value&...]`` URIs: renders the item (a whole
    soundscape for a scene key) from the URI alone, in any process. Registered with
    :func:`avexlab.audio.io.register_uri_scheme` on import of :mod:`avexlab.synth`."""
    body, _, query = uri.partition("?")
    parts = body.split("/", 4)
    if len(parts) < 5 or not parts[3].isdigit():
        raise ConfigError(
            expected_found(
                "synth URI",
                "synth://<preset>/<seed>/<item key>",
                repr(uri),
                "Use a path from a synth world's manifest.",
            )
        )
    world = _world_for(parts[2], int(parts[3]), query)
    return world.render(parts[4]), world.config.sample_rate


def render_world(
    preset: str = "quick",
    seed: int = 0,
    out: str | Path | None = None,
    *,
    progress: bool = False,
    audio_format: Literal["flac", "wav"] = "flac",
    workers: int = 1,
    **knob_overrides: Any,
) -> World:
    """Build the synthetic world of ``(preset, seed, knobs)``.

    Without ``out`` the world is in memory: manifests use ``synth://<preset>/<seed>/<item>`` paths and
    audio renders on demand (``World.load`` or ``avexlab.audio.load_audio``). With ``out`` every item is
    rendered (``progress=True`` shows a bar) and written as FLAC (24-bit) with parquet manifests per suite
    and pool, ``events.parquet`` and ``world.json``; the returned world reads from there. ``workers``
    processes render in parallel (identical files).

    Knobs (``avexlab.synth.KNOBS``), e.g. ``sample_rate=32000``, ``snr_db=(-10, 5)``, ``rt60_s=1.5``.
    """
    if audio_format not in ("flac", "wav"):
        raise ConfigError(expected_found("audio_format", "'flac' or 'wav'", repr(audio_format), "Pick one."))
    world = World(resolve_config(preset, **knob_overrides), seed)
    if out is None:
        return world
    world.write(out, progress=progress, audio_format=audio_format, workers=workers)
    return World.open(out)


def open_or_render_world(
    preset: str,
    seed: int,
    folder: str | Path,
    *,
    progress: bool = False,
    workers: int = 1,
    echo: Callable[[str], Any] | None = None,
) -> World:
    """The world of ``(preset, seed)`` in ``folder``: reopened when ``folder`` already holds exactly that
    world, rendered there otherwise.

    "Exactly" means the same ``WORLD_VERSION`` and the whole config, not just the preset's name: a folder
    rendered by an avexlab with another catalogue, or with knob overrides
    (``avexlab synth --sample-rate 32000``, ``render_world(preset, seed, out, snr_db=...)``), or by an avexlab
    whose preset had other sizes, holds a different world under the same name, and training or evaluating
    on it would silently change the results. Such a folder is an error naming the keys that differ; nothing in it is touched or
    overwritten."""
    folder = Path(folder)
    meta = folder / "world.json"
    if not meta.is_file():
        if echo is not None:
            echo(f"rendering world {preset!r} (seed {seed}) into {folder} ...")
        return render_world(preset, seed, folder, progress=progress, workers=workers)
    info = json.loads(meta.read_text())
    _check_version(info, folder)
    found = (info.get("preset"), info.get("seed"))
    if found != (preset, seed):
        raise ConfigError(
            expected_found(
                f"world folder {folder}",
                f"the world of preset {preset!r}, seed {seed}",
                f"preset {found[0]!r}, seed {found[1]}",
                "Pass another folder (--out / --world / data.world_dir) or delete that one.",
            )
        )
    want = resolve_config(preset).to_dict()
    have = info.get("config", {})
    differ = sorted(k for k in set(want) | set(have) if want.get(k) != have.get(k))
    if differ:
        shown = "; ".join(
            f"{k}: {have.get(k, '(absent)')!r} there, {want.get(k, '(absent)')!r} in the preset"
            for k in differ[:6]
        )
        raise ConfigError(
            expected_found(
                f"world folder {folder}",
                f"the {preset!r} preset's world as this avexlab defines it",
                f"a world rendered with other settings ({shown}{'; ...' if len(differ) > 6 else ''})",
                "It was rendered with knob overrides or by another avexlab version. Pass another folder, "
                f"or delete {folder} and run again to render the preset there.",
            )
        )
    if echo is not None:
        echo(f"reusing the world rendered in {folder}")
    return World.open(folder)


@dataclass(frozen=True)
class ShiftSweep:
    """Detection suites that differ only in one knob. ``suites[value]`` is ``syn-det-forest`` with every split
    (train, val and test) rendered with ``knob=value`` (their paths carry ``?knob=value``), so a probe trains
    and tests under the same condition; ``events[value]`` the events (identical calls for every value; only
    onsets move for ``overlap``)."""

    knob: str
    values: tuple[float, ...]
    suites: dict[float, Suite] = field(default_factory=dict)
    events: dict[float, pl.DataFrame] = field(default_factory=dict)
    worlds: dict[float, World] = field(default_factory=dict)


def render_shift_sweep(
    preset: str, seed: int, knob: str, values: Iterable[float], **base_overrides: Any
) -> ShiftSweep:
    """For one knob among ``snr_db``, ``overlap``, ``rt60_s``, ``distance_m``: in-memory worlds that differ
    only in that knob, set to each of ``values`` (a range knob gets the degenerate range ``(v, v)``).
    Every soundscape keeps its calls (species, individual, call type, rendition, background)."""
    if knob not in SWEEP_KNOBS:
        raise ConfigError(
            expected_found("shift-sweep knob", f"one of {SWEEP_KNOBS}", repr(knob), "Pick one.")
        )
    vals = tuple(float(v) for v in values)
    if not vals:
        raise ConfigError(expected_found("shift-sweep values", "at least one value", "none", "Pass values."))
    sweep = ShiftSweep(knob, vals)
    for v in vals:
        w = World(resolve_config(preset, **{**base_overrides, knob: v}), seed)
        det = w.suites["syn-beans-det"]
        sweep.worlds[v] = w
        sweep.suites[v] = dataclasses.replace(det, name=f"syn-shift-{knob}={v:g}")
        sweep.events[v] = w.events.filter(pl.col("dataset") == "syn-det-forest")
    return sweep


def pool_overlap(world: World) -> pl.DataFrame:
    """Clips of a training pool that also appear (by clip_id or item) in any suite's test split: empty
    for every world (the pools are disjoint from evaluation by construction)."""
    tests = pl.concat([s.split("test") for s in world.suites.values()], how="diagonal_relaxed")
    test_keys = {_key_of(p) for p in tests["path"].to_list()} | set(tests["clip_id"].to_list())
    pool = world.pools["all"]
    return pool.filter(
        pl.col("clip_id").is_in(list(test_keys))
        | pl.col("path").map_elements(lambda p: _key_of(p) in test_keys, return_dtype=pl.Boolean)
    )
