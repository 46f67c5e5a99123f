"""The embedding store: every window of an archive embedded once by one encoder, kept on disk.

An archive is a folder of recordings (every audio file under it, whole) or a manifest (one recording
segment per row: ``path``, ``start_s``, ``end_s``). Each recording is cut into windows of ``window_s``
seconds every ``hop_s`` seconds; the last window reaches the end of the recording and is zero-padded
(the encoder pools over real samples only, through its padding mask). A window's embedding is exactly
what ``extract_embeddings`` gives for a manifest row ``[start_s, end_s)`` cropped to ``window_s``: the
segment is read with :func:`avexlab.audio.load_audio` (resampled to the encoder's rate), padded, embedded,
and one layer pooled.

Layout on disk (``STORE/``)::

    store.json                  encoder identity (name, spec, config, SHA-256 of the weights), layer,
                                pooling, window, hop, dim, dtype; written once, checked on every append
    segments/000000/            one per build or append, in order; rows of a segment follow its plan
        segment.json            rows, units, shard row ranges, what was given as the archive
        windows.parquet         one row per window: window_id, path, recording_id, start_s, end_s, ...
        units.parquet           units of work: up to ``unit_windows`` consecutive windows of one recording
        shard-000.npy           [rows of the shard, dim] embeddings, preallocated, memory-mapped
        shard-000.log           append-only commit log: one JSON line per finished unit (rows + SHA-256)

Why it survives a kill: the plan (which window lands on which row) is fixed before any embedding is
computed and renamed into place whole; a unit's rows are written to the memory map, flushed to disk,
and only then is one line appended (and fsynced) to its shard's log. A kill loses at most the units in
flight; rerunning the same build redoes exactly those (no duplicates: rows are fixed; no gaps: every unit
without a commit line is redone). A torn last log line is ignored.

Why it scales: under ``torchrun`` each rank embeds its own shards (contiguous blocks of units, balanced
by window count) and writes only its own shard files; readers see one table because rows are ordered
by the plan. Reading memory-maps the shard files: nothing is loaded whole. Appending a grown folder adds
a segment for the recordings not yet in the store.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import torch

from avexlab.errors import AvexlabError, expected_found
from avexlab.fsutil import atomic_write, fsync_dir

from .errors import StoreError

__all__ = [
    "EmbeddingStore",
    "StoreError",
    "archive_recordings",
    "build_store",
    "embed_segments",
    "import_embeddings",
    "window_id",
]

STORE_VERSION = 1
Pooling = Literal["mean", "max", "cls"]


# ------------------------------------------------------------------------------------------ archives
def archive_recordings(
    source: str | os.PathLike[str] | pl.DataFrame, root: str | os.PathLike[str] | None = None
) -> tuple[pl.DataFrame, str | None]:
    """The recordings of an archive: ``(recordings, root)``.

    ``source``: a folder (every audio file under it, whole; ``root`` is the folder), a manifest file
    (``.parquet``/``.csv``/``.jsonl``; one recording segment per row; ``root`` defaults to the manifest's
    folder) or a manifest DataFrame (``root`` as given; ``synth://`` paths need none).

    Returns a frame with ``path`` (relative to ``root``, or a URI), ``recording_id``, ``start_s`` and
    ``end_s`` (null = to the end of the file), and ``root`` as an absolute path (None when not needed).
    """
    from avexlab.data.manifest import read_manifest, validate_manifest
    from avexlab.data.sources.audiofolder import find_audio
    from avexlab.errors import DataNotFoundError

    if isinstance(source, pl.DataFrame):
        df = validate_manifest(source, source="archive manifest")
        base = None if root is None else str(Path(root).resolve())
    else:
        where = Path(source).expanduser()
        if where.is_dir():
            if root is not None and Path(root).resolve() != where.resolve():
                raise StoreError(
                    expected_found(
                        "archive root",
                        f"none, or the folder itself ({where})",
                        str(root),
                        "A folder is its own root; pass a manifest to use another root.",
                    )
                )
            files = find_audio(where)
            if not files:
                raise DataNotFoundError(
                    expected_found(
                        "archive folder",
                        "audio files (.wav, .flac, .ogg) under it",
                        f"none under {where}",
                        "Point to the folder holding the recordings.",
                    )
                )
            rec = pl.DataFrame(
                {
                    "path": files,
                    "recording_id": [f.rsplit(".", 1)[0] for f in files],
                    "start_s": [0.0] * len(files),
                    "end_s": [None] * len(files),
                },
                schema={
                    "path": pl.String,
                    "recording_id": pl.String,
                    "start_s": pl.Float64,
                    "end_s": pl.Float64,
                },
            )
            return rec, str(where.resolve())
        if not where.is_file():
            raise DataNotFoundError(
                expected_found(
                    "archive",
                    "a folder of recordings or a manifest file (.parquet, .csv, .jsonl)",
                    f"nothing at {where}",
                    "Check the path.",
                )
            )
        base = str(Path(root).resolve()) if root is not None else str(where.parent.resolve())
        df = read_manifest(where, root=base)
    rec = df.select(
        "path",
        pl.col("clip_id").alias("recording_id"),
        pl.col("start_s").fill_null(0.0),
        "end_s",
    )
    needs_root = not rec["path"].str.contains("://").all()
    if needs_root and base is None:  # relative paths of a frame: the current folder, made explicit
        base = str(Path.cwd().resolve())
    return rec, (base if needs_root else None)


def _full_path(path: str, root: str | None) -> str:
    from avexlab.audio.io import is_uri

    if is_uri(path) or root is None:
        return path
    return str(Path(root) / path)


def _durations(rec: pl.DataFrame, root: str | None) -> np.ndarray:
    """End time (seconds in the file) of every recording segment: its ``end_s``, or the file's length."""
    from avexlab.audio.io import audio_info, is_uri, load_audio

    ends = rec["end_s"].to_numpy().astype(np.float64)
    paths = rec["path"].to_list()
    for i in np.flatnonzero(np.isnan(ends)):
        p = _full_path(paths[i], root)
        if is_uri(p):
            wave, sr = load_audio(p)
            ends[i] = wave.shape[-1] / sr
        else:
            ends[i] = audio_info(p).duration_s
    return ends


# --------------------------------------------------------------------------------------- embedding
@torch.no_grad()
def embed_segments(
    encoder: torch.nn.Module,
    segments: Sequence[tuple[str, float, float]],
    *,
    window_s: float,
    layer: int = -1,
    pooling: Pooling = "mean",
    batch_size: int = 32,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Embed audio segments ``(full path or URI, start_s, end_s)`` as store windows: each is read with
    :func:`~avexlab.audio.load_audio` at the encoder's rate, cropped or zero-padded to ``window_s``
    (padding masked), embedded, and ``layer`` pooled. Returns ``[len(segments), D]`` float32.

    Batches are formed in the given order, so the same segments in the same order give the same bits.
    """
    from avexlab.audio.io import crop_or_pad, load_audio

    sr = int(encoder.sample_rate)  # type: ignore[attr-defined]
    dev = torch.device(device)
    out: list[np.ndarray] = []
    was_training = encoder.training
    encoder.eval().to(dev)
    try:
        for b in range(0, len(segments), batch_size):
            waves, masks = [], []
            for path, a, z in segments[b : b + batch_size]:
                wave, _ = load_audio(path, sample_rate=sr, start_s=float(a), end_s=float(z))
                w, m = crop_or_pad(wave, sr, window_s)
                waves.append(w)
                masks.append(m)
            wave_b = torch.stack(waves).to(dev)
            mask_b = torch.stack(masks).to(dev)
            enc_out = encoder(wave_b, mask_b if bool(mask_b.any()) else None)
            pooled = encoder.pool(enc_out, layer=layer, pooling=pooling)  # type: ignore[attr-defined]
            out.append(pooled.float().cpu().numpy())
    finally:
        encoder.train(was_training)
    if not out:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(out).astype(np.float32, copy=False)


def _n_windows(duration_s: float, window_s: float, hop_s: float, sr: int) -> tuple[int, int, int]:
    """``(windows, window samples, hop samples)`` for a segment, as :func:`sliding_windows` with
    ``pad_last=True`` cuts it at ``sr`` Hz."""
    length, hop, total = int(round(window_s * sr)), int(round(hop_s * sr)), int(round(duration_s * sr))
    if total <= length:
        return 1, length, hop
    return min(-(-(total - length) // hop) + 1, -(-total // hop)), length, hop


def window_id(path: str, start_s: float) -> str:
    """A window's key: its recording path and start time in ms (``"a/b.wav@12.500"``). Keys name audio, not
    embeddings, so labels keyed by them carry over to a store of the same archive built by another encoder."""
    return f"{path}@{start_s:.3f}"


# -------------------------------------------------------------------------------------------- plan
def _plan(
    rec: pl.DataFrame,
    ends: np.ndarray,
    *,
    window_s: float,
    hop_s: float,
    sr: int,
    unit_windows: int,
    n_shards: int,
) -> tuple[pl.DataFrame, pl.DataFrame, list[tuple[int, int]]]:
    """Windows, units and shard row ranges of one segment (rows in recording order)."""
    w_path, w_rid, w_start, w_end, w_unit, w_rec = [], [], [], [], [], []
    u_rec, u_lo, u_n = [], [], []
    row = 0
    for i, (path, rid, start) in enumerate(rec.select("path", "recording_id", "start_s").iter_rows()):
        end = float(ends[i])
        if not end > start:
            raise StoreError(
                expected_found(
                    f"recording {path!r}",
                    "end_s > start_s",
                    f"[{start}, {end}] s",
                    "Fix the manifest row or remove the empty file.",
                )
            )
        n, _, hop = _n_windows(end - start, window_s, hop_s, sr)
        starts = start + np.arange(n, dtype=np.int64) * hop / sr
        for u0 in range(0, n, unit_windows):
            u1 = min(n, u0 + unit_windows)
            u_rec.append(i)
            u_lo.append(row + u0)
            u_n.append(u1 - u0)
            w_unit.extend([len(u_rec) - 1] * (u1 - u0))
        w_path.extend([path] * n)
        w_rid.extend([rid] * n)
        w_start.extend(starts.tolist())
        w_end.extend(np.minimum(starts + window_s, end).tolist())
        w_rec.extend([i] * n)
        row += n
    windows = pl.DataFrame(
        {
            "window_id": [window_id(p, s) for p, s in zip(w_path, w_start, strict=True)],
            "path": w_path,
            "recording_id": w_rid,
            "start_s": w_start,
            "end_s": w_end,
            "unit": w_unit,
        },
        schema={
            "window_id": pl.String,
            "path": pl.String,
            "recording_id": pl.String,
            "start_s": pl.Float64,
            "end_s": pl.Float64,
            "unit": pl.Int64,
        },
    )
    units = pl.DataFrame(
        {"unit": range(len(u_rec)), "lo": u_lo, "n": u_n},
        schema={"unit": pl.Int64, "lo": pl.Int64, "n": pl.Int64},
    )
    # Shards: contiguous blocks of units, cut where the cumulative window count passes k/n_shards of all.
    n_shards = max(1, min(n_shards, units.height))
    ends_cum = np.cumsum(u_n)
    cuts = [0]
    for k in range(1, n_shards):
        cuts.append(max(cuts[-1] + 1, int(np.searchsorted(ends_cum, row * k / n_shards, side="left")) + 1))
    cuts = [min(c, units.height) for c in cuts] + [units.height]
    shard_of = np.zeros(units.height, dtype=np.int64)
    ranges: list[tuple[int, int]] = []
    for k in range(n_shards):
        shard_of[cuts[k] : cuts[k + 1]] = k
        lo = u_lo[cuts[k]] if cuts[k] < units.height else row
        hi = u_lo[cuts[k + 1]] if cuts[k + 1] < units.height else row
        ranges.append((lo, hi))
    units = units.with_columns(pl.Series("shard", shard_of))
    return windows, units, [r for r in ranges if r[1] > r[0]]


# ------------------------------------------------------------------------------------------ segment
@dataclass
class _Segment:
    """One segment of a store: its plan, shard files and commit logs."""

    path: Path
    offset: int  # global row of its first window
    meta: dict[str, Any]
    windows: pl.DataFrame
    units: pl.DataFrame

    @property
    def n_rows(self) -> int:
        return int(self.meta["rows"])

    @property
    def shards(self) -> list[tuple[int, int]]:
        return [tuple(r) for r in self.meta["shards"]]  # type: ignore[misc]

    def shard_file(self, k: int) -> Path:
        return self.path / f"shard-{k:03d}.npy"

    def log_file(self, k: int) -> Path:
        return self.path / f"shard-{k:03d}.log"

    def committed(self) -> dict[int, dict[str, Any]]:
        """Units with a commit line whose rows match the plan (a torn or foreign line is ignored)."""
        done: dict[int, dict[str, Any]] = {}
        los = self.units["lo"].to_numpy()
        ns = self.units["n"].to_numpy()
        for k in range(len(self.shards)):
            log = self.log_file(k)
            if not log.exists():
                continue
            for line in log.read_bytes().split(b"\n"):
                try:
                    rec = json.loads(line)
                    u = int(rec["unit"])
                    ok = 0 <= u < len(los) and rec["lo"] == los[u] and rec["hi"] == los[u] + ns[u]
                except (ValueError, KeyError, TypeError):
                    continue
                if ok:
                    done[u] = rec
        return done

    def is_complete(self) -> bool:
        return len(self.committed()) == self.units.height


def _read_segment(path: Path, offset: int) -> _Segment:
    meta = json.loads((path / "segment.json").read_text())
    windows = pl.read_parquet(path / "windows.parquet")
    units = pl.read_parquet(path / "units.parquet")
    return _Segment(path, offset, meta, windows, units)


# -------------------------------------------------------------------------------------------- store
class EmbeddingStore:
    """A store on disk, opened for reading: ``windows`` (one row per window, ``row`` = its index),
    memory-mapped embeddings (:meth:`iter_chunks`, :meth:`vectors`), and the encoder identity.

    Open one with :meth:`open`; make one with :func:`build_store`.
    """

    def __init__(self, path: Path, meta: dict[str, Any], segments: list[_Segment], root: str | None) -> None:
        self.path = path
        self.meta = meta
        self.segments = segments
        self.root = root
        self._maps: list[tuple[int, int, np.ndarray]] | None = None
        self._windows: pl.DataFrame | None = None
        self._stats: tuple[np.ndarray, np.ndarray] | None = None

    # ---------------------------------------------------------------------------------------- open
    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        root: str | os.PathLike[str] | None = None,
        allow_incomplete: bool = False,
    ) -> EmbeddingStore:
        """Open the store at ``path``. ``root`` overrides the recorded data root (a store moved to another
        machine). An incomplete store (a build that was killed or is still running) is refused unless
        ``allow_incomplete``: its uncommitted rows hold no embeddings yet."""
        p = Path(path)
        meta_p = p / "store.json"
        if not meta_p.is_file():
            raise StoreError(
                expected_found(
                    "embedding store", f"a store.json in {p}", "none", "Build one with `avexlab agile build`."
                )
            )
        meta = json.loads(meta_p.read_text())
        if meta.get("version") != STORE_VERSION:
            raise StoreError(
                expected_found(
                    f"embedding store {p}",
                    f"version {STORE_VERSION}",
                    f"version {meta.get('version')}",
                    "Rebuild it with this avexlab.",
                )
            )
        segments, offset = [], 0
        for d in sorted(x for x in (p / "segments").glob("[0-9]*") if x.is_dir()):
            seg = _read_segment(d, offset)
            segments.append(seg)
            offset += seg.n_rows
        store = cls(p, meta, segments, str(Path(root).resolve()) if root is not None else meta.get("root"))
        if not allow_incomplete:
            pending = store.pending_units()
            if pending:
                raise StoreError(
                    expected_found(
                        f"embedding store {p}",
                        "every window embedded",
                        f"{pending} unit(s) of work not committed (a build was stopped or is running)",
                        "Run the same `avexlab agile build` command again: it resumes where it stopped.",
                    )
                )
        return store

    # ------------------------------------------------------------------------------------ identity
    @property
    def encoder_meta(self) -> dict[str, Any]:
        return dict(self.meta["encoder"])

    @property
    def dim(self) -> int:
        return int(self.meta["dim"])

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(self.meta["dtype"])

    @property
    def window_s(self) -> float:
        return float(self.meta["window_s"])

    @property
    def hop_s(self) -> float:
        return float(self.meta["hop_s"])

    @property
    def sample_rate(self) -> int:
        return int(self.meta["encoder"]["sample_rate"])

    @property
    def n_rows(self) -> int:
        return sum(s.n_rows for s in self.segments)

    def __len__(self) -> int:
        return self.n_rows

    def __repr__(self) -> str:
        e = self.meta["encoder"]
        return (
            f"EmbeddingStore({str(self.path)!r}, {self.n_rows} windows x {self.dim} {self.meta['dtype']}, "
            f"encoder {e['spec'] or e['name']} ({e['hash'][:12]}), window {self.window_s} s, hop {self.hop_s} s)"
        )

    def check_encoder(self, encoder: torch.nn.Module) -> None:
        """Raise StoreError unless ``encoder`` is the one the store was built with (same weights hash)."""
        _check_identity(self.path, self.meta["encoder"], _encoder_identity(encoder, None, 0))

    def load_encoder(self) -> torch.nn.Module:
        """The store's encoder, rebuilt from its recorded spec (``NAME:SIZE`` with its seed, or a checkpoint
        path) and checked against the recorded hash."""
        from avexlab.evaluate.embed import resolve_encoder

        e = self.meta["encoder"]
        if not e.get("spec"):
            raise StoreError(
                expected_found(
                    f"embedding store {self.path}",
                    "a recorded encoder spec",
                    "an encoder passed as an object",
                    "Pass the encoder yourself (it is checked against the store's hash).",
                )
            )
        enc = resolve_encoder(e["spec"], seed=int(e.get("seed", 0)))
        self.check_encoder(enc)
        return enc

    # ------------------------------------------------------------------------------------- windows
    @property
    def windows(self) -> pl.DataFrame:
        """``[N]`` rows: ``row`` (global index), ``window_id``, ``path``, ``recording_id``, ``start_s``,
        ``end_s`` (seconds in the file; ``end_s`` stops at the recording's end)."""
        if self._windows is None:
            frames = [
                s.windows.drop("unit").with_columns(
                    pl.int_range(s.offset, s.offset + s.n_rows, dtype=pl.Int64).alias("row")
                )
                for s in self.segments
            ]
            cols = ["row", "window_id", "path", "recording_id", "start_s", "end_s"]
            self._windows = (
                pl.concat(frames).select(cols)
                if frames
                else pl.DataFrame(
                    schema={
                        "row": pl.Int64,
                        "window_id": pl.String,
                        "path": pl.String,
                        "recording_id": pl.String,
                        "start_s": pl.Float64,
                        "end_s": pl.Float64,
                    }
                )
            )
        return self._windows

    def rows_of(self, window_ids: Sequence[str]) -> np.ndarray:
        """Global rows of ``window_ids`` (``[n]`` int64); unknown ids raise StoreError naming them."""
        lookup = pl.DataFrame(
            {"window_id": list(window_ids)}, schema={"window_id": pl.String}
        ).with_row_index("__i")
        found = lookup.join(self.windows.select("window_id", "row"), on="window_id", how="left").sort("__i")
        missing = found.filter(pl.col("row").is_null())["window_id"].to_list()
        if missing:
            raise StoreError(
                expected_found(
                    "window ids",
                    f"windows of the store {self.path}",
                    f"{len(missing)} unknown, e.g. {missing[:3]}",
                    "Labels and queries must name windows of this store (same archive, window and hop).",
                )
            )
        return found["row"].to_numpy().astype(np.int64)

    def pending_units(self) -> int:
        return sum(s.units.height - len(s.committed()) for s in self.segments)

    # ---------------------------------------------------------------------------------- embeddings
    def _shard_maps(self) -> list[tuple[int, int, np.ndarray]]:
        if self._maps is None:
            maps = []
            for s in self.segments:
                for k, (lo, hi) in enumerate(s.shards):
                    f = s.shard_file(k)
                    if f.exists():
                        arr = np.load(f, mmap_mode="r")
                    else:  # a shard not started yet (incomplete store): zeros, never committed
                        arr = np.zeros((hi - lo, self.dim), dtype=self.dtype)
                    maps.append((s.offset + lo, s.offset + hi, arr))
            self._maps = maps
        return self._maps

    def iter_chunks(self, chunk_rows: int = 65536) -> Iterator[tuple[int, np.ndarray]]:
        """``(first row, [n, D] float32)`` chunks in row order, read from the memory maps (at most
        ``chunk_rows`` rows in memory at once)."""
        for lo, hi, arr in self._shard_maps():
            for a in range(0, hi - lo, chunk_rows):
                b = min(hi - lo, a + chunk_rows)
                yield lo + a, np.asarray(arr[a:b], dtype=np.float32)

    def vectors(self, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Embeddings of ``rows`` (global), ``[len(rows), D]`` float32, in the given order."""
        idx = np.asarray(rows, dtype=np.int64).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_rows):
            raise StoreError(
                expected_found(
                    "rows", f"indices in [0, {self.n_rows})", f"{idx.min()}..{idx.max()}", "Check them."
                )
            )
        out = np.empty((idx.size, self.dim), dtype=np.float32)
        for lo, hi, arr in self._shard_maps():
            sel = np.flatnonzero((idx >= lo) & (idx < hi))
            if sel.size:
                local = idx[sel] - lo
                order = np.argsort(local, kind="stable")
                out[sel[order]] = np.asarray(arr[local[order]], dtype=np.float32)
        return out

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-dimension mean and standard deviation over every window, ``([D], [D])`` float64, computed
        in one streaming pass (chunked, shifted sums) and kept: in this object, and on disk in
        ``stats-<rows>.npz`` (committed rows never change and a store only grows, so its row count names
        its content)."""
        cache = self.path / f"stats-{self.n_rows}.npz"
        if self._stats is None and cache.is_file() and not self.pending_units():
            with np.load(cache) as z:
                self._stats = (z["mean"], z["std"])
        if self._stats is None:
            n, shift = 0, None
            s1 = s2 = None
            for _, chunk in self.iter_chunks():
                x = chunk.astype(np.float64)
                if shift is None:
                    shift = x[0].copy()
                    s1 = np.zeros(self.dim)
                    s2 = np.zeros(self.dim)
                x -= shift
                s1 += x.sum(0)
                s2 += (x * x).sum(0)
                n += x.shape[0]
            if n == 0 or shift is None or s1 is None or s2 is None:
                raise StoreError(
                    expected_found(f"store {self.path}", "at least one window", "none", "Build it.")
                )
            mean = s1 / n
            var = np.maximum(s2 / n - mean * mean, 0.0)
            self._stats = (mean + shift, np.sqrt(var))
            if not self.pending_units():
                m, sd = self._stats
                atomic_write(cache, lambda t: np.savez(t, mean=m, std=sd))
        return self._stats

    def verify(self) -> list[str]:
        """Recompute the SHA-256 of every committed unit's rows; returns problems (empty when all match)."""
        problems = []
        for s in self.segments:
            done = s.committed()
            shard_of = s.units["shard"].to_numpy()
            for u, rec in sorted(done.items()):
                k = int(shard_of[u])
                lo_k = s.shards[k][0]
                arr = np.load(s.shard_file(k), mmap_mode="r")
                got = _digest(np.asarray(arr[rec["lo"] - lo_k : rec["hi"] - lo_k]))
                if got != rec["sha256"]:
                    problems.append(f"{s.path.name} unit {u} (rows {rec['lo']}..{rec['hi']}): hash mismatch")
        return problems

    # ------------------------------------------------------------------------------------------ audio
    def full_path(self, path: str) -> str:
        """A window's recording as a loadable path (joined to the store's root) or URI."""
        return _full_path(path, self.root)

    def window_audio(self, row: int, context_s: float = 0.0) -> tuple[np.ndarray, int, float]:
        """The audio of window ``row`` with ``context_s`` seconds on each side (clipped to the file):
        ``([T] float32, sample rate of the file, start of the returned audio in seconds)``."""
        from avexlab.audio.io import audio_info, is_uri, load_audio

        w = self.windows.row(int(row), named=True)
        full = self.full_path(w["path"])
        a = max(0.0, w["start_s"] - context_s)
        z = w["end_s"] + context_s
        if not is_uri(full):
            z = min(z, audio_info(full).duration_s)
        else:
            z = min(z, w["end_s"] + context_s)
        try:
            wave, sr = load_audio(full, start_s=a, end_s=z)
        except AvexlabError:
            wave, sr = load_audio(full, start_s=a, end_s=w["end_s"])
        return wave.numpy(), sr, a


def _digest(arr: np.ndarray) -> str:
    a = np.ascontiguousarray(arr)
    return hashlib.sha256(a.tobytes()).hexdigest()


# -------------------------------------------------------------------------------------- identity
def _encoder_identity(encoder: torch.nn.Module, spec: str | None, seed: int) -> dict[str, Any]:
    from avexlab.evaluate.embed import encoder_hash

    return {
        "name": str(getattr(encoder, "name", type(encoder).__name__)),
        "spec": spec,
        "seed": int(seed),
        "config": json.loads(json.dumps(getattr(encoder, "config", {}), default=str)),
        "hash": encoder_hash(encoder),
        "sample_rate": int(encoder.sample_rate),  # type: ignore[attr-defined]
    }


def _check_identity(path: Path, stored: dict[str, Any], given: dict[str, Any]) -> None:
    if stored["hash"] != given["hash"]:
        raise StoreError(
            expected_found(
                f"encoder for the store {path}",
                f"the encoder it was built with ({stored['spec'] or stored['name']}, weights hash "
                f"{stored['hash'][:12]})",
                f"{given['spec'] or given['name']} with weights hash {given['hash'][:12]}",
                "Embeddings of different encoders cannot be mixed or compared: use the store's encoder "
                "(EmbeddingStore.load_encoder()), or build a new store for this one.",
            )
        )


# ------------------------------------------------------------------------------------ distributed
@contextlib.contextmanager
def _process_group() -> Iterator[tuple[int, int]]:
    """``(world size, rank)`` from torchrun's environment; creates (and afterwards destroys) a gloo
    group when there are several processes and none exists."""
    import torch.distributed as dist

    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    owns = world > 1 and not dist.is_initialized()
    if owns:
        dist.init_process_group("gloo")
    try:
        yield world, rank
    finally:
        if owns:
            dist.destroy_process_group()


def _barrier(world: int) -> None:
    if world > 1:
        import torch.distributed as dist

        dist.barrier()


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive, non-blocking lock on ``path`` (released when the process dies); a second writer of
    the same shard fails at once instead of corrupting it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as e:
            raise StoreError(
                expected_found(
                    f"shard {path.stem}",
                    "no other process writing it",
                    "a running build holding its lock",
                    "Wait for that build to finish, or stop it and run the build again to resume.",
                )
            ) from e
        yield
    finally:
        os.close(fd)


# ------------------------------------------------------------------------------------------ build
def build_store(
    source: str | os.PathLike[str] | pl.DataFrame,
    out: str | os.PathLike[str],
    encoder: torch.nn.Module | str,
    *,
    root: str | os.PathLike[str] | None = None,
    seed: int = 0,
    window_s: float = 5.0,
    hop_s: float | None = None,
    layer: int = -1,
    pooling: Pooling = "mean",
    dtype: Literal["float32", "float16"] = "float32",
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    unit_windows: int = 256,
    shards: int | None = None,
    index_above: int | None = 100_000,
    progress: bool = True,
) -> EmbeddingStore:
    """Build, resume or grow the store ``out`` from an archive; returns it opened.

    Args:
        source: a folder of recordings, a manifest file, or a manifest frame (see :func:`archive_recordings`).
        encoder: an encoder object, or a spec (``NAME:SIZE``, random init seeded by ``seed``; or a
            checkpoint path). A spec is recorded so that :meth:`EmbeddingStore.load_encoder` can rebuild it.
        window_s, hop_s: window length and hop in seconds (hop defaults to the window: no overlap).
        layer, pooling: which layer is pooled into the window embedding, and how.
        dtype: stored precision (``float16`` halves the disk; reads return float32).
        unit_windows: windows per unit of work (what a kill can lose, per process).
        shards: shard count of a new segment (default: the number of torchrun processes).
        index_above: from this many windows on, the approximate search index is built (or brought up to
            date: only new rows are added) once the windows are embedded; exact search serves smaller
            stores. None: never.

    The same call on an existing store first finishes its unfinished units (after a kill), then adds a
    segment for the archive's recordings not yet in the store. A store built with other parameters
    (encoder weights, layer, pooling, window, hop, dtype) is refused. Under ``torchrun`` every rank runs
    this call: rank 0 writes the plan, each rank embeds the shards ``k`` with ``k % world == rank``.
    """
    from tqdm.auto import tqdm

    from avexlab.evaluate.embed import resolve_encoder

    hop = float(window_s if hop_s is None else hop_s)
    if not (window_s > 0 and hop > 0):
        raise StoreError(
            expected_found("window and hop", "positive seconds", f"{window_s}, {hop}", "Fix them.")
        )
    if dtype not in ("float32", "float16"):
        raise StoreError(expected_found("dtype", "'float32' or 'float16'", repr(dtype), "Pick one."))
    spec = encoder if isinstance(encoder, str) else None
    enc = resolve_encoder(encoder, seed=seed) if isinstance(encoder, str) else encoder
    if spec is not None and Path(spec).exists():
        spec = str(Path(spec).resolve())
    out_p = Path(out)
    with _process_group() as (world, rank):
        if rank == 0:
            _prepare(
                source,
                root,
                out_p,
                enc,
                spec,
                seed,
                window_s,
                hop,
                layer,
                pooling,
                dtype,
                unit_windows,
                shards or world,
                device,
            )
        _barrier(world)
        store = EmbeddingStore.open(out_p, root=None, allow_incomplete=True)
        if rank != 0:
            _check_identity(out_p, store.meta["encoder"], _encoder_identity(enc, spec, seed))
        mine = [(s, k) for s in store.segments for k in range(len(s.shards)) if k % world == rank]
        todo_units = []
        total = done_rows = 0
        for s, k in mine:
            done = s.committed()
            units = s.units.filter(pl.col("shard") == k)
            for u, lo, n in units.select("unit", "lo", "n").iter_rows():
                total += n
                if u in done:
                    done_rows += n
                else:
                    todo_units.append((s, k, u, lo, n))
        bar = tqdm(
            total=total,
            initial=done_rows,
            desc=f"embedding windows (rank {rank})" if world > 1 else "embedding windows",
            unit="win",
            disable=not progress or (world > 1 and rank != 0),
        )
        by_shard: dict[tuple[Path, int], list[tuple[int, int, int]]] = {}
        for s, k, u, lo, n in todo_units:
            by_shard.setdefault((s.path, k), []).append((u, lo, n))
        segs = {s.path: s for s in store.segments}
        for (seg_path, k), units in by_shard.items():
            seg = segs[seg_path]
            _embed_shard(seg, k, units, enc, store, batch_size, device, bar, rank)
        bar.close()
        _barrier(world)
        done = EmbeddingStore.open(out_p)
        if rank == 0 and index_above is not None and done.n_rows >= index_above:
            from .index import SearchIndex

            SearchIndex.build(done, progress=progress)
        _barrier(world)
    return EmbeddingStore.open(out_p)


def _prepare(
    source: Any,
    root: Any,
    out: Path,
    enc: torch.nn.Module,
    spec: str | None,
    seed: int,
    window_s: float,
    hop_s: float,
    layer: int,
    pooling: str,
    dtype: str,
    unit_windows: int,
    n_shards: int,
    device: str | torch.device,
) -> None:
    """Rank 0: write store.json (or check it), and add a segment for recordings not yet in the store."""
    ident = _encoder_identity(enc, spec, seed)
    meta_p = out / "store.json"
    params = {
        "window_s": float(window_s),
        "hop_s": float(hop_s),
        "layer": int(layer),
        "pooling": pooling,
        "dtype": dtype,
    }
    rec, base = archive_recordings(source, root)
    if meta_p.exists():
        meta = json.loads(meta_p.read_text())
        _check_identity(out, meta["encoder"], ident)
        differ = {k: (meta[k], v) for k, v in params.items() if meta[k] != v}
        if differ:
            raise StoreError(
                expected_found(
                    f"build parameters of the store {out}",
                    "the ones it was built with",
                    ", ".join(f"{k}={new!r} (store: {old!r})" for k, (old, new) in differ.items()),
                    "Use the store's parameters, or build a new store.",
                )
            )
        if base is not None and meta.get("root") not in (None, base):
            raise StoreError(
                expected_found(
                    f"data root of the store {out}",
                    meta["root"],
                    base,
                    "Relative paths must resolve against one root: add recordings under the store's root.",
                )
            )
    else:
        dim = _probe_dim(enc, window_s, layer, pooling, device)
        meta = {
            "version": STORE_VERSION,
            "encoder": ident,
            **params,
            "dim": dim,
            "root": base,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        out.mkdir(parents=True, exist_ok=True)
        atomic_write(meta_p, json.dumps(meta, indent=2))
    if base is not None and meta.get("root") is None:
        meta["root"] = base
        atomic_write(meta_p, json.dumps(meta, indent=2))
    existing = EmbeddingStore.open(out, allow_incomplete=True)
    have = existing.windows.select("path").unique()
    # Recordings (path + segment) already planned are skipped; a recording whose path is in the store with
    # another segment is refused (its windows would overlap).
    planned = set()
    for s in existing.segments:
        planned |= {tuple(r) for r in s.meta["recordings"]}
    keys = list(zip(rec["path"].to_list(), rec["start_s"].to_list(), rec["end_s"].to_list(), strict=True))
    new_mask = [(p, a, z) not in planned for p, a, z in keys]
    new = rec.filter(pl.Series(new_mask))
    clash = new.join(have, on="path", how="semi")
    if clash.height:
        raise StoreError(
            expected_found(
                f"new recordings for the store {out}",
                "recordings (path and segment) not already in it",
                f"{clash.height} whose path is in the store with another segment, e.g. {clash['path'][0]!r}",
                "Remove those rows, or build a new store.",
            )
        )
    if new.height == 0:
        return
    dup = new.filter(pl.col("path").is_duplicated())
    if dup.height:
        raise StoreError(
            expected_found(
                "archive",
                "each recording path once",
                f"{dup['path'].n_unique()} path(s) in several rows, e.g. {dup['path'][0]!r}",
                "Give one row per recording (segments of one file would share windows).",
            )
        )
    ends = _durations(new, base)
    sr = int(meta["encoder"]["sample_rate"])
    windows, units, shard_ranges = _plan(
        new, ends, window_s=window_s, hop_s=hop_s, sr=sr, unit_windows=unit_windows, n_shards=n_shards
    )
    dup = windows.filter(pl.col("window_id").is_duplicated())
    if dup.height:
        raise StoreError(
            expected_found(
                "windows",
                "distinct start times (window ids are path@start in ms)",
                f"{dup.height} sharing an id, e.g. {dup['window_id'][0]!r}",
                "Use a hop of at least 1 ms.",
            )
        )
    seg_dir = out / "segments"
    seg_dir.mkdir(parents=True, exist_ok=True)
    index = len(existing.segments)
    tmp = seg_dir / f".new-{index:06d}-{os.getpid()}"
    tmp.mkdir()
    windows.write_parquet(tmp / "windows.parquet")
    units.write_parquet(tmp / "units.parquet")
    seg_meta = {
        "rows": windows.height,
        "units": units.height,
        "shards": shard_ranges,
        "recordings": [list(k) for k, m in zip(keys, new_mask, strict=True) if m],
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write(tmp / "segment.json", json.dumps(seg_meta))
    for f in tmp.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())
    fsync_dir(tmp)
    os.rename(tmp, seg_dir / f"{index:06d}")
    fsync_dir(seg_dir)


def _probe_dim(
    enc: torch.nn.Module, window_s: float, layer: int, pooling: str, device: str | torch.device
) -> int:
    """The embedding width of ``layer`` (one forward pass on a silent window); also checks layer/pooling."""
    sr = int(enc.sample_rate)  # type: ignore[attr-defined]
    was = enc.training
    enc.eval().to(torch.device(device))
    try:
        with torch.no_grad():
            wave = torch.zeros(1, int(round(window_s * sr)), device=torch.device(device))
            try:
                v = enc.pool(enc(wave), layer=layer, pooling=pooling)  # type: ignore[attr-defined]
            except (IndexError, ValueError) as e:
                raise StoreError(
                    expected_found("layer and pooling", "ones the encoder has", f"{layer}, {pooling}", str(e))
                ) from e
    finally:
        enc.train(was)
    return int(v.shape[-1])


def _embed_shard(
    seg: _Segment,
    k: int,
    units: list[tuple[int, int, int]],
    enc: torch.nn.Module,
    store: EmbeddingStore,
    batch_size: int,
    device: str | torch.device,
    bar: Any,
    rank: int = 0,
) -> None:
    """Embed the given units of shard ``k`` of ``seg``: rows to the memory map, flush, then one commit line
    (which also records the torchrun rank that wrote it)."""
    lo_k, hi_k = seg.shards[k]
    shard = seg.shard_file(k)
    with _locked(seg.path / f"shard-{k:03d}.lock"):
        if not shard.exists():
            tmp = seg.path / f".shard-{k:03d}.{os.getpid()}.npy"
            arr = np.lib.format.open_memmap(tmp, mode="w+", dtype=store.dtype, shape=(hi_k - lo_k, store.dim))
            arr.flush()
            del arr
            os.replace(tmp, shard)
            fsync_dir(seg.path)
        arr = np.load(shard, mmap_mode="r+")
        if arr.shape != (hi_k - lo_k, store.dim) or arr.dtype != store.dtype:
            raise StoreError(
                expected_found(
                    f"shard file {shard}",
                    f"shape {(hi_k - lo_k, store.dim)} {store.dtype}",
                    f"{arr.shape} {arr.dtype}",
                    "The file was replaced by something else: delete it and run the build again.",
                )
            )
        win = seg.windows
        paths = win["path"].to_list()
        starts = win["start_s"].to_numpy()
        ends = win["end_s"].to_numpy()
        window_s = store.window_s
        layer, pooling = int(store.meta["layer"]), store.meta["pooling"]
        log_fd = os.open(seg.log_file(k), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            _mend_torn_tail(seg.log_file(k), log_fd)
            for u, lo, n in units:
                segs = [
                    (store.full_path(paths[r]), float(starts[r]), float(ends[r])) for r in range(lo, lo + n)
                ]
                vec = embed_segments(
                    enc,
                    segs,
                    window_s=window_s,
                    layer=layer,
                    pooling=pooling,
                    batch_size=batch_size,
                    device=device,
                ).astype(store.dtype)
                arr[lo - lo_k : lo - lo_k + n] = vec
                arr.flush()
                line = json.dumps(
                    {"unit": int(u), "lo": int(lo), "hi": int(lo + n), "sha256": _digest(vec), "rank": rank}
                )
                os.write(log_fd, (line + "\n").encode())
                os.fsync(log_fd)
                bar.update(n)
        finally:
            os.close(log_fd)
            del arr


def import_embeddings(
    out: str | os.PathLike[str],
    windows: pl.DataFrame,
    chunks: Iterable[np.ndarray],
    *,
    encoder_name: str,
    encoder_hash: str,
    sample_rate: int,
    window_s: float,
    hop_s: float,
    dtype: Literal["float32", "float16"] = "float32",
    root: str | None = None,
    progress: bool = False,
) -> EmbeddingStore:
    """A new store from embeddings computed elsewhere (an encoder avexlab cannot run, or synthetic vectors
    for a benchmark): ``windows`` has ``path``, ``recording_id``, ``start_s``, ``end_s`` (one row per
    vector, in order); ``chunks`` yields ``[n_i, D]`` arrays whose rows follow it (so an archive larger
    than memory streams through). The identity records ``encoder_name`` and ``encoder_hash`` with no spec:
    queries must then come as vectors, or with an encoder object whose hash matches."""
    from tqdm.auto import tqdm

    out_p = Path(out)
    if (out_p / "store.json").exists():
        raise StoreError(
            expected_found("new store", f"no store at {out_p}", "one", "Pick another folder or remove it.")
        )
    need = {"path", "recording_id", "start_s", "end_s"}
    if not need <= set(windows.columns):
        raise StoreError(
            expected_found("windows", f"columns {sorted(need)}", str(windows.columns), "Add them.")
        )
    w = windows.select(
        pl.struct("path", "start_s")
        .map_elements(lambda s: window_id(s["path"], s["start_s"]), return_dtype=pl.String)
        .alias("window_id"),
        pl.col("path").cast(pl.String),
        pl.col("recording_id").cast(pl.String),
        pl.col("start_s").cast(pl.Float64),
        pl.col("end_s").cast(pl.Float64),
        pl.lit(0, pl.Int64).alias("unit"),
    )
    if w["window_id"].is_duplicated().any():
        raise StoreError(
            expected_found("windows", "unique (path, start_s)", "duplicates", "Deduplicate them.")
        )
    n = w.height
    it = iter(chunks)
    first = np.asarray(next(it))
    dim = int(first.shape[1])
    ident = {
        "name": encoder_name,
        "spec": None,
        "seed": 0,
        "config": {},
        "hash": encoder_hash,
        "sample_rate": int(sample_rate),
    }
    meta = {
        "version": STORE_VERSION,
        "encoder": ident,
        "window_s": float(window_s),
        "hop_s": float(hop_s),
        "layer": -1,
        "pooling": "mean",
        "dtype": dtype,
        "dim": dim,
        "root": root,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    out_p.mkdir(parents=True, exist_ok=True)
    seg = out_p / "segments" / "000000"
    tmp = out_p / "segments" / f".new-000000-{os.getpid()}"
    tmp.mkdir(parents=True)
    w.write_parquet(tmp / "windows.parquet")
    pl.DataFrame(
        {"unit": [0], "lo": [0], "n": [n], "shard": [0]},
        schema={"unit": pl.Int64, "lo": pl.Int64, "n": pl.Int64, "shard": pl.Int64},
    ).write_parquet(tmp / "units.parquet")
    atomic_write(
        tmp / "segment.json",
        json.dumps({"rows": n, "units": 1, "shards": [[0, n]], "recordings": [], "imported": True}),
    )
    arr = np.lib.format.open_memmap(tmp / "shard-000.npy", mode="w+", dtype=np.dtype(dtype), shape=(n, dim))
    h = hashlib.sha256()
    row = 0
    with tqdm(total=n, desc="importing", unit="win", disable=not progress) as bar:
        for c in _chain(first, it):
            c = np.asarray(c, dtype=np.dtype(dtype))
            if c.ndim != 2 or c.shape[1] != dim or row + c.shape[0] > n:
                raise StoreError(
                    expected_found(
                        "embedding chunks",
                        f"[n_i, {dim}] arrays, {n} rows in all",
                        f"shape {c.shape} at row {row}",
                        "Give one row per window.",
                    )
                )
            arr[row : row + c.shape[0]] = c
            h.update(np.ascontiguousarray(c).tobytes())
            row += c.shape[0]
            bar.update(c.shape[0])
    if row != n:
        raise StoreError(
            expected_found(
                "embedding chunks", f"{n} rows (one per window)", f"{row}", "Give one row per window."
            )
        )
    arr.flush()
    del arr
    line = json.dumps({"unit": 0, "lo": 0, "hi": n, "sha256": h.hexdigest()})
    (tmp / "shard-000.log").write_text(line + "\n")
    atomic_write(out_p / "store.json", json.dumps(meta, indent=2))
    os.rename(tmp, seg)
    fsync_dir(seg.parent)
    return EmbeddingStore.open(out_p)


def _chain(first: np.ndarray, rest: Iterator[np.ndarray]) -> Iterator[np.ndarray]:
    yield first
    yield from rest


def _mend_torn_tail(log: Path, fd: int) -> None:
    """End a log whose last line was cut by a kill with a newline, so the next line starts clean (the torn
    line stays, unparsable, and is ignored by readers)."""
    size = log.stat().st_size
    if size:
        with open(log, "rb") as f:
            f.seek(size - 1)
            if f.read(1) != b"\n":
                os.write(fd, b"\n")
                os.fsync(fd)
