"""The training pool: manifest(s) -> ManifestDataset, joint label space, sampling weights, noise bank.

The trainer receives its data: a :class:`PoolSource` (manifest, root, hashes, noise bank) that
:func:`manifest_source` reads from ``data.manifests`` or :mod:`avexlab.experiments` builds from a synthetic
world.

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

__all__ = [
    "PoolSource",
    "TrainData",
    "build_train_data",
    "manifest_source",
    "multi_hot",
    "pool_weights",
    "select_pool",
]


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


@dataclass(frozen=True)
class PoolSource:
    """Where a training pool comes from, already resolved: ``manifest`` (all splits; the pool is chosen
    from it by ``data.split`` and ``data.mix``), the ``root`` its relative paths resolve against, content
    ``hashes`` for provenance, and the ``noise_bank`` (``[K, L]`` float32 at the training sample rate) that
    ``augment.noise.source: world`` draws from, when the source has one."""

    manifest: pl.DataFrame
    root: Path | None
    hashes: dict[str, str]
    noise_bank: Tensor | None = None


def manifest_source(cfg: Any) -> PoolSource:
    """The :class:`PoolSource` of ``data.manifests`` (paths relative to ``data.root``)."""
    from avexlab.data.manifest import manifest_hash, read_manifest

    d = cfg.data
    if not d.manifests:
        raise ConfigError(
            f"data: expected data.manifests for a pool read from disk, found world_preset={d.world_preset!r}. "
            "A synthetic world's pool is built by avexlab.experiments (experiments.train_run, or the "
            "`avexlab train` command): the trainer receives data and never opens a world."
        )
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
    return PoolSource(pl.concat(frames, how="diagonal_relaxed"), root, hashes)


def build_train_data(cfg: Any, source: PoolSource | None = None) -> TrainData:
    """Build the training pool of ``cfg`` (a RunConfig) from ``source`` (default: ``data.manifests``,
    :func:`manifest_source`). Audio is resampled to ``data.sample_rate`` (the encoder's rate). Raises
    before any work for an empty pool, unknown sampling-weight keys or a noise source that is missing."""
    from avexlab.augment import load_noise_bank
    from avexlab.data.dataset import ManifestDataset, collate
    from avexlab.data.labels import LabelSpace

    d = cfg.data
    if d.sample_rate is None:
        raise ConfigError(
            "data.sample_rate: expected the encoder's rate (the config resolves it for registered "
            f"architectures), found none for model.name {cfg.model.name!r}. Set data.sample_rate."
        )
    source = source if source is not None else manifest_source(cfg)
    manifest, root = source.manifest, source.root
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
        elif source.noise_bank is None:
            raise ConfigError(
                "augment.noise.source='world' needs the noise bank of a synthetic world, but the pool comes "
                "from data.manifests. Set augment.noise.source='folder' with augment.noise.folder, or "
                "augment.noise.enabled=false."
            )
        else:
            bank = source.noise_bank
    return TrainData(
        dataset=dataset,
        collate=collate,
        num_classes=len(label_space) if supervised else 0,
        label_space=label_space if supervised else None,
        noise_bank=bank,
        weights=weights,
        manifest_hashes=dict(source.hashes),
        skipped=dataset.skipped_report(),
    )
