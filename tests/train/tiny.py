"""Test fixtures for the trainer: a tiny encoder with the SSL hooks, and a real on-disk corpus.

Not a test module (no ``test_`` prefix). Subprocess scripts import it by putting this folder on sys.path.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import soundfile as sf
import torch
from torch import Tensor, nn

from avexlab.data.manifest import write_manifest
from avexlab.data.schema import SCHEMA
from avexlab.models.base import Encoder, EncoderOutput


class TinyPatchEncoder(Encoder):
    """A 2-layer transformer over 8x8 patches of a 32-bin log spectrum (10 ms frames). No dropout, no
    batch norm, so DDP over ranks equals one process exactly up to float reduction order."""

    name = "tinytest"

    def __init__(self, dim: int = 32, layers: int = 2, sample_rate: int = 16000, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.config = {"dim": dim, "layers": layers, "sample_rate": sample_rate, "seed": seed}
        self.sample_rate, self.embed_dim, self.num_layers = sample_rate, dim, layers
        self.hop = sample_rate // 100
        self.patch = nn.Conv2d(1, dim, kernel_size=8, stride=8)
        self.layers = nn.ModuleList(
            nn.TransformerEncoderLayer(dim, 4, 2 * dim, dropout=0.0, batch_first=True) for _ in range(layers)
        )

    def frontend(self, wave: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        frames = wave.unfold(-1, self.hop, self.hop)  # [B, F, hop]
        spec = torch.fft.rfft(frames, n=64).abs().square()[..., :32]
        fb = torch.log(spec + 1e-6)
        fm = None if padding_mask is None else padding_mask.unfold(-1, self.hop, self.hop).all(-1)
        return fb, fm

    def patchify(
        self, fbank: Tensor, frame_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None, tuple[int, int]]:
        x = self.patch(fbank.unsqueeze(1))  # [B, D, n_time, n_freq]
        n_time, n_freq = x.shape[2], x.shape[3]
        x = x.flatten(2).transpose(1, 2)
        pos = torch.arange(x.shape[1], device=x.device, dtype=x.dtype)[:, None]
        x = x + torch.sin(pos / (10.0 ** (torch.arange(self.embed_dim, device=x.device) / self.embed_dim)))
        tm = None
        if frame_mask is not None:
            tm = frame_mask[:, : n_time * 8].reshape(-1, n_time, 8).all(-1).repeat_interleave(n_freq, 1)
            tm = tm if bool(tm.any()) else None
        return x, tm, (n_freq, n_time)

    def encode(self, tokens: Tensor, token_mask: Tensor | None = None) -> EncoderOutput:
        hidden = []
        h = tokens
        for layer in self.layers:
            h = layer(h, src_key_padding_mask=token_mask)
            hidden.append(h)
        return EncoderOutput(tokens=h, hidden_states=hidden, padding_mask=token_mask)

    def forward(self, wave: Tensor, padding_mask: Tensor | None = None) -> EncoderOutput:
        return self.encode(*self.patchify(*self.frontend(wave, padding_mask))[:2])


def make_corpus(root: Path, n_bio: int = 16, n_general: int = 8, sr: int = 16000, seed: int = 0) -> Path:
    """Write ``n_bio + n_general`` short tonal WAV clips (0.6-1.0 s) with labels and a manifest; returns it.

    Bio clips are labelled by species (tone frequency), general clips by class (noise band)."""
    rng = np.random.default_rng(seed)
    rows: list[dict[str, Any]] = []
    (root / "audio").mkdir(parents=True, exist_ok=True)
    for i in range(n_bio + n_general):
        general = i >= n_bio
        dur = float(rng.uniform(0.6, 1.0))
        t = np.arange(int(dur * sr)) / sr
        k = i % 3
        if general:
            x = 0.2 * rng.standard_normal(t.size) * (1 + np.sin(2 * math.pi * (2 + k) * t))
            labels = [f"noise_{k}"]
        else:
            x = 0.3 * np.sin(2 * math.pi * (500 + 700 * k) * t) + 0.02 * rng.standard_normal(t.size)
            labels = [f"sp_{k}"] + (["sp_extra"] if i % 4 == 0 else [])
        path = f"audio/clip{i:03d}.wav"
        sf.write(root / path, x.astype(np.float32), sr)
        rows.append(
            {
                "clip_id": f"c{i:03d}",
                "path": path,
                "dataset": "gen" if general else "birds",
                "split": "train" if i % 8 != 7 else "test",
                "domain": "general" if general else "focal",
                "labels": labels,
            }
        )
    df = pl.DataFrame(rows)
    for col, dtype in SCHEMA.items():
        if col not in df.columns:
            df = df.with_columns(pl.lit(None, dtype=dtype).alias(col))
    out = root / "manifest.parquet"
    write_manifest(df.select(list(SCHEMA)), out)
    return out


def tiny_config(manifest: Path, out_dir: Path, **over: Any) -> dict[str, Any]:
    """A small run config (plain dict) on the corpus, no augmentation."""
    cfg: dict[str, Any] = {
        "recipe": "sl",
        "model": {"name": "tinytest", "size": "tiny"},
        # the test encoder is not a registered architecture, so the config names its rate
        "data": {
            "manifests": [str(manifest)],
            "clip_s": 0.8,
            "crop": "random",
            "mix": "all",
            "sample_rate": 16000,
        },
        "augment": {"noise": {"enabled": False}, "mixup": {"enabled": False}},
        "optim": {"lr": 3e-3, "steps": 6, "batch_size": 4, "warmup_steps": 2},
        "runtime": {"seed": 0, "device": "cpu", "out_dir": str(out_dir), "progress": False},
    }
    for k, v in over.items():
        node = cfg
        parts = k.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = v
    return cfg
