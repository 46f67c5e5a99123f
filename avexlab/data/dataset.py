"""A torch Dataset over a manifest: reads each clip's segment, resamples, crops/pads, encodes labels.

Unreadable clips, with ``on_error="skip"``, are handled in two places so that nothing is dropped silently:

* :meth:`ManifestDataset.scan` reads every file's header once (no samples decoded) before work starts,
  records each failure in ``dataset.skipped`` and removes those rows from the dataset, so ``len()``, the
  sampler and every epoch see only readable clips.
* problems only visible while decoding (NaN/Inf samples, decoder errors) make ``__getitem__`` return a
  :class:`Skipped` record instead of a sample; :func:`collate` drops it from the batch and lists it under
  ``batch["skipped"]`` (this survives DataLoader worker processes, where ``dataset.skipped`` of the main
  process cannot be updated). Call :meth:`ManifestDataset.record_skipped` with it to keep one report.

With ``on_error="raise"`` (default) the first unreadable clip raises its AudioError (``scan`` raises one
error listing all of them).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import polars as pl
import torch
from torch import Tensor
from torch.nn.utils.rnn import pad_sequence

from avexlab.audio.io import CropPolicy, audio_info, crop_or_pad, is_uri, load_audio
from avexlab.data.labels import LabelSpace
from avexlab.data.manifest import read_manifest, validate_manifest
from avexlab.errors import AudioError, ConfigError

__all__ = ["ManifestDataset", "Skipped", "collate"]


@dataclass(frozen=True)
class Skipped:
    """A clip that could not be read: its ``index`` (manifest row), ``clip_id``, ``path`` and ``reason``."""

    index: int
    clip_id: str
    path: str
    reason: str


class ManifestDataset(torch.utils.data.Dataset):
    """Clips of a manifest as ``dict(wave [L] float32, padding_mask [L] bool, label_idx list[int],
    clip_id str, index int)``.

    Args:
        manifest: a manifest frame or a manifest file (validated either way).
        root: data root for relative paths; defaults to the manifest file's folder (or the cwd for frames).
        sample_rate: output rate in Hz; clips are resampled to it.
        clip_s: output length in seconds (crop/zero-pad, with ``padding_mask`` True on padding); None
            returns each segment whole (``collate`` pads the batch).
        crop: ``"start"``, ``"centre"`` or ``"random"``; random crops are a pure function of
            ``(seed, epoch, manifest row)`` (see :meth:`set_epoch`), so runs and workers agree.
        label_space: space for ``label_idx``; defaults to one built from this manifest.
        on_error: ``"raise"`` or ``"skip"`` (see the module docstring).
        seed: base seed of random crops.
    """

    def __init__(
        self,
        manifest: pl.DataFrame | str | os.PathLike[str],
        *,
        root: str | os.PathLike[str] | None = None,
        sample_rate: int = 16000,
        clip_s: float | None = None,
        crop: CropPolicy = "start",
        label_space: LabelSpace | None = None,
        on_error: Literal["raise", "skip"] = "raise",
        seed: int = 0,
    ) -> None:
        if on_error not in ("raise", "skip"):
            raise ConfigError(f"on_error: expected 'raise' or 'skip', found {on_error!r}.")
        if crop not in ("start", "random", "centre"):
            raise ConfigError(f"crop: expected 'start', 'random' or 'centre', found {crop!r}.")
        if clip_s is not None and clip_s <= 0:
            raise ConfigError(f"clip_s: expected a positive duration in seconds or None, found {clip_s}.")
        if isinstance(manifest, pl.DataFrame):
            df = validate_manifest(manifest, label_space=label_space)
            base = Path(root) if root is not None else Path.cwd()
        else:
            df = read_manifest(manifest, label_space=label_space)
            base = Path(root) if root is not None else Path(manifest).parent
        self.manifest = df
        self.root = base
        self.sample_rate = sample_rate
        self.clip_s = clip_s
        self.crop: CropPolicy = crop
        self.on_error = on_error
        self.seed = seed
        self.epoch = 0
        self.label_space = label_space if label_space is not None else LabelSpace.from_manifests(df)
        self._label_idx = self.label_space.encode_column(df["labels"])
        self._clip_ids: list[str] = df["clip_id"].to_list()
        self._paths: list[str] = [p if is_uri(p) else str(base / p) for p in df["path"].to_list()]
        self._start: list[float] = df["start_s"].fill_null(0.0).to_list()
        self._end: list[float | None] = df["end_s"].to_list()
        self._rows = np.arange(df.height)
        self.skipped: list[Skipped] = []

    # ------------------------------------------------------------------------------------- protocol
    def __len__(self) -> int:
        return len(self._rows)

    @property
    def active_rows(self) -> np.ndarray:
        """Manifest row indices this dataset serves (``[len(self)]`` int64; rows dropped by :meth:`scan`
        are absent). ``self.manifest[self.active_rows]`` is the manifest of the served clips."""
        return self._rows.copy()

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose random crops ``__getitem__`` returns."""
        self.epoch = int(epoch)

    def _generator(self, row: int) -> torch.Generator:
        state = np.random.SeedSequence([self.seed, self.epoch, row]).generate_state(2, dtype=np.uint32)
        return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))

    def __getitem__(self, i: int) -> dict[str, Any] | Skipped:
        row = int(self._rows[i])
        path = self._paths[row]
        try:
            wave, _ = load_audio(path, self.sample_rate, True, start_s=self._start[row], end_s=self._end[row])
        except AudioError as e:
            if self.on_error == "raise":
                raise
            skip = Skipped(row, self._clip_ids[row], path, str(e))
            self.record_skipped([skip])
            return skip
        if self.clip_s is not None:
            gen = self._generator(row) if self.crop == "random" else None
            wave, mask = crop_or_pad(wave, self.sample_rate, self.clip_s, self.crop, gen)
        else:
            mask = torch.zeros(wave.shape[0], dtype=torch.bool)
        return {
            "wave": wave,
            "padding_mask": mask,
            "label_idx": self._label_idx[row],
            "clip_id": self._clip_ids[row],
            "index": row,
        }

    # ----------------------------------------------------------------------------------- skipping
    def record_skipped(self, items: list[Skipped] | list[dict[str, Any]]) -> None:
        """Add skipped clips (e.g. ``batch["skipped"]`` from workers) to ``self.skipped``, once each."""
        seen = {s.index for s in self.skipped}
        for it in items:
            s = it if isinstance(it, Skipped) else Skipped(**it)
            if s.index not in seen:
                self.skipped.append(s)
                seen.add(s.index)

    def scan(self) -> list[Skipped]:
        """Read every active file's header (no samples) and check its segment fits.

        With ``on_error="skip"`` the failures are recorded in ``self.skipped`` and removed from the
        dataset (``len`` shrinks); returns them. With ``on_error="raise"`` one AudioError lists them all.
        URIs are not scanned (they are rendered on demand).
        """
        infos: dict[str, Any] = {}
        bad: list[Skipped] = []
        keep: list[int] = []
        for row in self._rows.tolist():
            path = self._paths[row]
            if is_uri(path):
                keep.append(row)
                continue
            reason = None
            if path not in infos:
                try:
                    infos[path] = audio_info(path)
                except AudioError as e:
                    infos[path] = e
            info = infos[path]
            if isinstance(info, AudioError):
                reason = str(info)
            else:
                start, end = self._start[row], self._end[row]
                if end is not None and end * info.sample_rate > info.frames + 0.5:
                    reason = (
                        f"audio file {path!r}: expected the segment [{start}, {end}] s inside the recording "
                        f"(0 to {info.duration_s:.6f} s), found it outside. Fix the manifest's times."
                    )
                elif start * info.sample_rate >= info.frames:
                    reason = (
                        f"audio file {path!r}: expected start_s {start} before the end of the recording "
                        f"({info.duration_s:.6f} s), found it after. Fix the manifest's times."
                    )
            if reason is None:
                keep.append(row)
            else:
                bad.append(Skipped(row, self._clip_ids[row], path, reason))
        if bad and self.on_error == "raise":
            lines = "\n".join(f"  - clip {b.clip_id!r}: {b.reason}" for b in bad[:20])
            more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
            raise AudioError(
                f"{len(bad)} of {len(self._rows)} clips cannot be read:\n{lines}{more}\n"
                "Fix or remove them, or pass on_error='skip' to train without them."
            )
        self._rows = np.asarray(keep, dtype=np.int64)
        self.record_skipped(bad)
        return bad

    def skipped_report(self) -> list[dict[str, Any]]:
        """``self.skipped`` as JSON-able dicts (for provenance.json)."""
        return [asdict(s) for s in self.skipped]


def collate(batch: list[dict[str, Any] | Skipped]) -> dict[str, Any]:
    """Stack clips into a batch, dropping :class:`Skipped` items.

    Returns ``wave`` ``[B, L]`` float32 (zero-padded to the longest clip), ``padding_mask`` ``[B, L]``
    bool (True = padding), ``label_idx`` list of B index lists, ``clip_id`` list[str], ``index`` ``[B]``
    int64 (manifest rows) and ``skipped`` (list of dicts: index, clip_id, path, reason).
    """
    items = [b for b in batch if not isinstance(b, Skipped)]
    skipped = [asdict(b) for b in batch if isinstance(b, Skipped)]
    if not items:
        return {
            "wave": torch.zeros(0, 0),
            "padding_mask": torch.zeros(0, 0, dtype=torch.bool),
            "label_idx": [],
            "clip_id": [],
            "index": torch.zeros(0, dtype=torch.int64),
            "skipped": skipped,
        }
    wave: Tensor = pad_sequence([b["wave"] for b in items], batch_first=True)
    mask: Tensor = pad_sequence([b["padding_mask"] for b in items], batch_first=True, padding_value=True)
    return {
        "wave": wave,
        "padding_mask": mask,
        "label_idx": [b["label_idx"] for b in items],
        "clip_id": [b["clip_id"] for b in items],
        "index": torch.tensor([b["index"] for b in items], dtype=torch.int64),
        "skipped": skipped,
    }
