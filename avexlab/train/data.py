"""The training pool: manifest(s) -> ManifestDataset, joint label space, sampling weights, noise bank.

Labels stay sparse (a list of class indices per clip) until a batch is formed; :func:`multi_hot` makes the
``[B, C]`` targets on the device, so a label space of 10,000+ classes costs nothing up front.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl
import torch
from torch import Tensor

from avexlab.errors import ConfigError, DataNotFoundError

__all__ = ["TrainData", "build_train_data", "multi_hot", "pool_weights", "select_pool"]


@dataclass
class TrainData:
    """What the trainer needs from the data layer.

    Attributes:
        dataset: a map-style dataset of ``dict(wave [L] float32, padding_mask [L] bool, label_idx list[int],
            clip_id str)`` items (optionally with ``set_epoch(epoch)``).
        collate: batches items into ``wave [B, L]``, ``padding_mask [B, L]``, ``label_idx`` (list of lists).
        num_classes: size of the joint label space (0 for unlabelled SSL pools).
        label_space: the :class:`avexlab.data.labels.LabelSpace` (or None).
        noise_bank: ``[K, L]`` float32 background noise at the training sample rate, or None.
        weights: ``[n]`` per-clip sampling weights, or None (uniform shuffle).
        manifest_hashes: name -> content hash, for provenance.
        skipped: JSON-able records of clips that could not be read.
    """

    dataset: Any
    collate: Callable[[list[Any]], dict[str, Any]]
    num_classes: int
    label_space: Any = None
    noise_bank: Tensor | None = None
    weights: Tensor | None = None
    manifest_hashes: dict[str, str] = field(default_factory=dict)
    skipped: list[dict[str, Any]] = field(default_factory=list)


def multi_hot(
    label_idx: Sequence[Sequence[int]], num_classes: int, device: torch.device | str | None = None
) -> Tensor:
    """Sparse labels (one index list per clip) -> ``[B, num_classes]`` float32 multi-hot, built in one
    scatter (no per-clip loop on the device)."""
    lengths = torch.tensor([len(x) for x in label_idx], dtype=torch.int64)
    flat = torch.tensor([i for x in label_idx for i in x], dtype=torch.int64)
    out = torch.zeros(len(label_idx), num_classes, dtype=torch.float32, device=device)
    if flat.numel():
        if int(flat.min()) < 0 or int(flat.max()) >= num_classes:
            raise ConfigError(
                f"multi_hot: expected class indices in [0, {num_classes}), found {int(flat.min())}..{int(flat.max())}."
            )
        rows = torch.repeat_interleave(torch.arange(len(label_idx)), lengths)
        out[rows.to(out.device), flat.to(out.device)] = 1.0
    return out


def select_pool(manifest: pl.DataFrame, mix: str, split: str = "train") -> pl.DataFrame:
    """Rows of ``manifest`` in ``split`` for the data ``mix``: ``bio`` (domain focal|soundscape), ``general``
    (domain general) or ``all``."""
    df = manifest.filter(pl.col("split") == split)
    if mix == "bio":
        df = df.filter(pl.col("domain") != "general")
    elif mix == "general":
        df = df.filter(pl.col("domain") == "general")
    elif mix != "all":
        raise ConfigError(f"data.mix: expected bio|general|all, found {mix!r}.")
    return df


def pool_weights(manifest: pl.DataFrame, weights: dict[str, float] | None) -> Tensor | None:
    """Per-clip sampling weights ``[n]`` from ``weights``: keys are ``dataset`` values or the pool names
    ``bio`` / ``general``; a clip takes its dataset's weight if given, else its pool's. Each key's total
    mass is split over its clips, so ``{"bio": 1, "general": 1}`` draws the two pools equally often whatever
    their sizes. A clip matched by no key is an error (give every clip a weight, 0 to exclude it)."""
    if weights is None:
        return None
    ds = manifest["dataset"].to_list()
    pool = ["general" if d == "general" else "bio" for d in manifest["domain"].to_list()]
    keys = [d if d in weights else p for d, p in zip(ds, pool, strict=True)]
    unknown = sorted(set(weights) - set(ds) - {"bio", "general"})
    if unknown:
        raise ConfigError(
            f"data.sampling_weights: unknown key(s) {unknown}; expected dataset names {sorted(set(ds))} "
            "or the pools 'bio' / 'general'."
        )
    missing = sorted({k for k in keys if k not in weights})
    if missing:
        raise ConfigError(
            f"data.sampling_weights: no weight for {missing}; expected a weight for every clip's dataset or "
            "pool. Add the key(s) (0 excludes them)."
        )
    counts: dict[str, int] = {}
    for k in keys:
        counts[k] = counts.get(k, 0) + 1
    w = torch.tensor([weights[k] / counts[k] for k in keys], dtype=torch.float64)
    if not bool((w > 0).any()):
        raise ConfigError("data.sampling_weights: every clip of the pool has weight 0; nothing can be drawn.")
    return w


def open_world(preset: str, seed: int, world_dir: Path | None) -> Any:
    """The synthetic world ``(preset, seed)``: in memory when ``world_dir`` is None; else reopened from
    ``world_dir`` when it holds exactly that world (another preset, seed or config there is a
    ConfigError), or rendered there once."""
    from avexlab.synth import render_world
    from avexlab.synth.world import open_or_render_world

    if world_dir is None:
        return render_world(preset, seed)
    return open_or_render_world(preset, seed, world_dir)


def _load_manifests(cfg: Any) -> tuple[pl.DataFrame, Path | None, dict[str, str], Any]:
    """The training manifest (all splits), its data root, hashes and the world (or None)."""
    from avexlab.data.manifest import manifest_hash, read_manifest

    d = cfg.data
    if d.manifests:
        frames = []
        hashes = {}
        for p in d.manifests:
            path = Path(p) if d.root is None or Path(p).is_absolute() else Path(d.root) / p
            if not path.is_file():
                raise DataNotFoundError(f"data.manifests: expected a manifest file at {path}, found nothing.")
            df = read_manifest(path)
            frames.append(df)
            hashes[str(p)] = manifest_hash(df)
        root = Path(d.root) if d.root is not None else Path(d.manifests[0]).parent
        return pl.concat(frames, how="diagonal_relaxed"), root, hashes, None
    world = open_world(d.world_preset, d.world_seed, d.world_dir)
    pool = world.pools["all"]
    root = getattr(world, "root", None)
    return pool, root, {f"world:{d.world_preset}/{d.world_seed}/all": manifest_hash(pool)}, world


def world_noise_bank(world: Any, sample_rate: int, length_s: float) -> Tensor:
    """The world's background types (wind, rain, stream, insect chorus, ... as its ``background`` knob
    lists) as a noise bank ``[K, length_s x sample_rate]`` float32, deterministic by the world's seed."""
    import numpy as np

    from avexlab.augment import noise_bank_from_waves
    from avexlab.synth.dsp import background

    n = int(round(length_s * sample_rate))
    kinds = tuple(world.config.background)
    if not kinds:
        raise ConfigError(
            "augment.noise.source='world': the world has no background types (its 'background' knob is "
            "empty). Use augment.noise.source='folder' or augment.noise.enabled=false."
        )
    waves = [
        torch.from_numpy(
            np.asarray(background(k, np.random.default_rng([world.seed, i, 0xB6]), n, sample_rate))
        )
        for i, k in enumerate(kinds)
    ]
    return noise_bank_from_waves(waves)


def build_train_data(cfg: Any) -> TrainData:
    """Build the training pool of ``cfg`` (a RunConfig). Raises before any work for an empty pool, unknown
    sampling-weight keys or a noise source that is missing."""
    from avexlab.augment import load_noise_bank
    from avexlab.data.dataset import ManifestDataset, collate
    from avexlab.data.labels import LabelSpace

    d = cfg.data
    manifest, root, hashes, world = _load_manifests(cfg)
    pool = select_pool(manifest, d.mix, d.split)
    if pool.height == 0:
        have = manifest.group_by("split", "domain").len().sort("split", "domain").rows()
        raise DataNotFoundError(
            f"training pool: expected clips with split={d.split!r} for mix={d.mix!r}, found none "
            f"(the manifests hold (split, domain, clips): {have}). Pick another data.mix/split or add clips."
        )
    supervised = cfg.objective.kind == "supervised"
    label_space = LabelSpace.from_manifests(pool)
    if supervised and len(label_space) == 0:
        raise DataNotFoundError(
            f"training pool ({pool.height} clips, mix={d.mix!r}): expected labels for supervised training, "
            "found none. Label the clips or use an SSL recipe."
        )
    dataset = ManifestDataset(
        pool,
        root=root,
        sample_rate=d.sample_rate,
        clip_s=d.clip_s,
        crop=d.crop,
        label_space=label_space,
        on_error=d.on_error,
        seed=cfg.runtime.seed,
    )
    dataset.scan()
    if len(dataset) == 0:
        raise DataNotFoundError(
            f"training pool: all {pool.height} clips were unreadable and skipped: {dataset.skipped_report()[:3]}."
        )
    weights = pool_weights(dataset.manifest[dataset.active_rows.tolist()], d.sampling_weights)
    bank = None
    n = cfg.augment.noise
    if n.enabled and n.p > 0:
        if n.source == "folder":
            bank = load_noise_bank(n.folder, d.sample_rate)
        elif world is None:
            raise ConfigError(
                "augment.noise.source='world' needs a synthetic world, but data.manifests is set. "
                "Set augment.noise.source='folder' with augment.noise.folder, or augment.noise.enabled=false."
            )
        else:
            bank = world_noise_bank(world, d.sample_rate, max(d.clip_s, 1.0))
    return TrainData(
        dataset=dataset,
        collate=collate,
        num_classes=len(label_space) if supervised else 0,
        label_space=label_space if supervised else None,
        noise_bank=bank,
        weights=weights,
        manifest_hashes=hashes,
        skipped=dataset.skipped_report(),
    )
