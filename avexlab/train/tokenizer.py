"""The tokenizers of BEATs-style SSL: frozen maps from a clip to one discrete label per student token.

BEATs-style masked token prediction (:class:`avexlab.train.objectives.BeatsSSLObjective`) predicts the label
of every hidden patch. The labels come from a :class:`Tokenizer`; there are three, one per iteration style:

* :class:`RandomProjectionTokenizer` (iteration 1, BEST-RQ-like): a frozen random projection of each fbank
  patch and the nearest entry of a frozen random codebook.
* :class:`DistilledTokenizer` (iterations 2+, BEATs' own way): a tokenizer trained by distillation from the
  previous SSL iteration (the teacher), read from the run directory of that training
  (:func:`load_tokenizer`).
* :class:`KMeansTokenizer` (iterations 2+, HuBERT-style): the previous iteration's encoder embeds the clip and
  a k-means codebook, fitted before the first step (:meth:`Tokenizer.prepare`), labels each token.

A tokenizer reads the batch as the student sees it (:class:`TokenizerInput`) and returns ``[B, N]`` int64
labels in the student's token order; the objective holds "a tokenizer" and never asks which one.

The distilled tokenizer is trained by :class:`avexlab.train.objectives.BeatsTokenizerObjective`
(``objective.kind beats_tokenizer``). It is:

* an encoder of the same kind as the student (its own patch embedding and transformer; the run's model);
* a quantizer (:class:`NormEMAQuantizer`): a projection (Linear, Tanh, Linear) of every token to
  ``codebook_dim``, L2-normalised, and the nearest of ``codebook_size`` unit-norm code vectors. The codes are
  not trained by gradient: each is an exponential moving average (``ema_decay``) of the normalised mean of
  the vectors assigned to it, renormalised, initialised by spherical k-means before the first step; the
  projection gets gradients through the straight-through estimator and a commitment loss
  (``commitment x ||sg(code) - z||^2``);
* an estimator (``estimator_layers`` transformer layers over the quantized tokens, with positions) that must
  reconstruct the teacher's last-layer output of the full, unmasked clip; the loss is ``1 - cosine``.

Only the encoder + quantizer are kept: the run directory of a tokenizer run holds the encoder
(``encoder.json`` + ``checkpoint.safetensors``, as every run) and ``tokenizer.safetensors`` (the quantizer,
:func:`save_quantizer`, bound to those encoder weights by their SHA-256). An SSL run reads it with
``objective.beats.tokenizer: distilled`` and ``objective.beats.tokenizer_checkpoint: <that run>``.

    # iteration 1 -> tokenizer -> iteration 2 (three `avexlab train` runs)
    recipe: ssl, objective: {kind: beats_ssl}                                           -> runs/it1
    recipe: ssl, objective: {kind: beats_tokenizer, tokenizer: {teacher_checkpoint: runs/it1}} -> runs/tok1
    recipe: ssl, objective: {kind: beats_ssl, beats: {tokenizer: distilled, tokenizer_checkpoint: runs/tok1}}
"""

from __future__ import annotations

import abc
import itertools
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avexlab.errors import CheckpointError, ConfigError, expected_found
from avexlab.fsutil import atomic_write
from avexlab.models.base import fbank_patches

__all__ = [
    "TOKENIZER_FILE",
    "DistilledTokenizer",
    "KMeansTokenizer",
    "NormEMAQuantizer",
    "RandomProjectionTokenizer",
    "Tokenizer",
    "TokenizerInput",
    "load_tokenizer",
    "lloyd_kmeans",
    "save_quantizer",
]

TOKENIZER_FILE = "tokenizer.safetensors"
TOKENIZER_FORMAT = "avexlab-beats-tokenizer"
TOKENIZER_FORMAT_VERSION = 1
_METADATA_KEY = "avexlab_tokenizer"


@dataclass(frozen=True)
class TokenizerInput:
    """A batch as the student encoder sees it: what a tokenizer may read to label the student's tokens.

    Attributes:
        wave: ``[B, T]`` float32 at the student's sample rate.
        padding_mask: ``[B, T]`` bool (True = padded sample) or None.
        fbank: ``[B, F, M]`` the student's ``frontend`` output (frames x mel bins).
        frame_mask: ``[B, F]`` bool (True = padded frame) or None.
        grid: ``(n_freq, n_time)``, the student's token grid: labels are ``[B, n_time x n_freq]``, time-major.
    """

    wave: Tensor
    padding_mask: Tensor | None
    fbank: Tensor
    frame_mask: Tensor | None
    grid: tuple[int, int]


class Tokenizer(nn.Module, abc.ABC):
    """What BEATs-style SSL needs of a tokenizer: ``labels`` for a batch and the ``codebook_size`` they range
    over; ``prepare`` fits whatever must be fitted before the first step. A tokenizer is frozen: its tensors
    are buffers or parameters without gradient, saved with the SSL run's checkpoint and never trained by it.
    ``forward`` keeps each tokenizer's own input (patches, an fbank, a waveform); objectives call
    ``labels``."""

    @property
    @abc.abstractmethod
    def codebook_size(self) -> int:
        """``V``: labels are in ``[0, V)``."""

    @abc.abstractmethod
    def labels(self, clips: TokenizerInput) -> Tensor:
        """``[B, N]`` int64 labels of ``clips``, one per student token, in the student's token order."""

    def prepare(
        self, encoder: nn.Module, batches: Iterable[dict[str, Any]], generator: torch.Generator
    ) -> dict[str, float]:
        """Fit what must be fitted before the first step from ``batches`` (device batches, the same on every
        rank) as the student ``encoder`` (unwrapped) sees them; deterministic by ``generator`` (CPU). Returns
        numbers for the run's provenance. Default: nothing to fit, ``batches`` is not read."""
        return {}


class RandomProjectionTokenizer(Tokenizer):
    """Iteration-1 BEATs tokenizer, BEST-RQ-like: a frozen random projection of each fbank patch (after
    per-patch standardisation) and the nearest entry (cosine) of a frozen random codebook.

    ``forward(patches [B, N, P]) -> labels [B, N] int64``; :meth:`labels` cuts the student's fbank into its
    patches (:func:`avexlab.models.base.fbank_patches`). Weights are buffers drawn from ``seed`` (saved with
    the checkpoint, never trained)."""

    def __init__(self, patch_dim: int, codebook_size: int, codebook_dim: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        proj = torch.randn(patch_dim, codebook_dim, generator=g) * math.sqrt(2.0 / (patch_dim + codebook_dim))
        codebook = F.normalize(torch.randn(codebook_size, codebook_dim, generator=g), dim=-1)
        self.register_buffer("proj", proj)
        self.register_buffer("codebook", codebook)

    @property
    def codebook_size(self) -> int:
        return int(self.codebook.shape[0])

    def labels(self, clips: TokenizerInput) -> Tensor:
        return self(fbank_patches(clips.fbank, clips.grid))

    @torch.no_grad()
    def forward(self, patches: Tensor) -> Tensor:
        x = patches.float()
        x = (x - x.mean(dim=-1, keepdim=True)) / x.std(dim=-1, keepdim=True).clamp_min(1e-5)
        z = F.normalize(x @ self.proj, dim=-1)
        return (z @ self.codebook.t()).argmax(dim=-1)


class KMeansTokenizer(Tokenizer):
    """Iteration-2+ tokenizer from the previous iteration, HuBERT-style: a frozen SSL ``teacher`` encoder
    (same architecture as the student) embeds the unmasked clip; each token's label is its nearest centroid
    (after LayerNorm without affine) in a codebook ``[V, D]`` fitted by Lloyd's k-means (:meth:`prepare`: the
    teacher's tokens of ``kmeans_batches`` batches, ``kmeans_iters`` iterations) before training. BEATs' own
    way is the :class:`DistilledTokenizer`.

    ``forward(fbank [B, F, M], frame_mask) -> labels [B, N] int64``: the student's fbank (the teacher shares
    its frontend), tokenised by the teacher's ``patchify`` in the student's token order."""

    def __init__(
        self, teacher: nn.Module, codebook_size: int, kmeans_batches: int, kmeans_iters: int
    ) -> None:
        super().__init__()
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.kmeans_batches = int(kmeans_batches)
        self.kmeans_iters = int(kmeans_iters)
        self.register_buffer("codebook", torch.zeros(codebook_size, int(teacher.embed_dim)))
        self.register_buffer("fitted", torch.tensor(False))

    @property
    def codebook_size(self) -> int:
        return int(self.codebook.shape[0])

    def train(self, mode: bool = True) -> KMeansTokenizer:
        super().train(mode)
        self.teacher.eval()
        return self

    @torch.no_grad()
    def features(self, fbank: Tensor, frame_mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """The teacher's last-layer tokens ``[B, N, D]`` of ``fbank``, LayerNormed (no affine), and their
        padding mask ``[B, N]`` (or None): the points k-means clusters."""
        tokens, token_mask, _ = self.teacher.patchify(fbank, frame_mask)
        h = self.teacher.encode(tokens, token_mask).tokens.float()
        return F.layer_norm(h, h.shape[-1:]), token_mask

    @torch.no_grad()
    def fit(self, feats: Tensor, generator: torch.Generator) -> dict[str, float]:
        """Lloyd's k-means (:func:`lloyd_kmeans`, ``kmeans_iters`` iterations) on ``feats`` ``[M, D]`` into
        the codebook. Returns the final inertia (mean squared distance to the nearest centroid) and the
        fraction of centroids used."""
        V = self.codebook.shape[0]
        x = feats.float()
        c, assign = lloyd_kmeans(x, V, self.kmeans_iters, generator)
        inertia = torch.cdist(x, c).min(dim=1).values.square().mean()
        self.codebook.copy_(c)
        self.fitted.fill_(True)
        return {
            "kmeans_inertia": float(inertia),
            "kmeans_used": float((torch.bincount(assign, minlength=V) > 0).float().mean()),
        }

    @torch.no_grad()
    def prepare(
        self, encoder: nn.Module, batches: Iterable[dict[str, Any]], generator: torch.Generator
    ) -> dict[str, float]:
        """Fit the codebook on the teacher's real (non-padded) tokens of the first ``kmeans_batches`` of
        ``batches``, each through the student ``encoder``'s frontend."""
        feats = []
        for batch in itertools.islice(batches, self.kmeans_batches):
            fbank, frame_mask = encoder.frontend(batch["wave"], batch.get("padding_mask"))
            h, token_mask = self.features(fbank, frame_mask)
            feats.append(h[~token_mask] if token_mask is not None else h.reshape(-1, h.shape[-1]))
        return self.fit(torch.cat(feats), generator)

    def labels(self, clips: TokenizerInput) -> Tensor:
        return self(clips.fbank, clips.frame_mask)

    @torch.no_grad()
    def forward(self, fbank: Tensor, frame_mask: Tensor | None) -> Tensor:
        if not bool(self.fitted):
            raise ConfigError(
                "k-means tokenizer: expected a fitted codebook, found none. The trainer fits it before the "
                "first step (Objective.prepare); call prepare() when using the objective by hand."
            )
        h, _ = self.features(fbank, frame_mask)
        return torch.cdist(h, self.codebook.to(h.dtype).expand(h.shape[0], -1, -1)).argmin(dim=-1)


class NormEMAQuantizer(nn.Module):
    """Projection to the unit sphere + nearest unit-norm code (cosine), codes updated by EMA, not gradient.

    ``project(x [..., D]) -> z [..., codebook_dim]`` (L2-normalised); ``assign(z) -> codes [...]`` (int64);
    ``ema_update(z, codes)`` moves each used code toward the normalised mean of its vectors (summed over the
    ranks of a DDP run, so 2 processes update as 1 with the same global batch); ``fit_kmeans`` initialises the
    codebook by spherical k-means."""

    def __init__(
        self,
        embed_dim: int,
        codebook_size: int,
        codebook_dim: int,
        decay: float,
        restart_unused_after: int | None = None,
    ) -> None:
        super().__init__()
        self.restart_unused_after = restart_unused_after
        self.proj = nn.Sequential(
            nn.Linear(embed_dim, embed_dim), nn.Tanh(), nn.Linear(embed_dim, codebook_dim)
        )
        self.decay = float(decay)
        self.register_buffer("codebook", torch.zeros(codebook_size, codebook_dim))
        self.register_buffer("initialised", torch.tensor(False))
        self.register_buffer("idle_steps", torch.zeros(codebook_size, dtype=torch.long))

    @property
    def codebook_size(self) -> int:
        return int(self.codebook.shape[0])

    def project(self, x: Tensor) -> Tensor:
        return F.normalize(self.proj(x).float(), dim=-1)

    @torch.no_grad()
    def assign(self, z: Tensor) -> Tensor:
        if not bool(self.initialised):
            raise ConfigError(
                "beats tokenizer: expected an initialised codebook, found none. The trainer initialises it by "
                "k-means before the first step (Objective.prepare); call prepare() when using it by hand."
            )
        return (z @ self.codebook.to(z.dtype).t()).argmax(dim=-1)

    @torch.no_grad()
    def ema_update(self, z: Tensor, codes: Tensor, generator: torch.Generator | None = None) -> int:
        """``z`` ``[M, codebook_dim]`` (unit rows), ``codes`` ``[M]``: one EMA step of the used codes. With
        ``restart_unused_after = n``, a code no vector chose for ``n`` consecutive updates (over all ranks)
        is re-seeded with a random row of ``z`` (drawn by ``generator``; rank 0's choice is broadcast).
        Returns the number of codes re-seeded."""
        V = self.codebook_size
        counts = torch.bincount(codes, minlength=V).to(z.dtype)
        sums = torch.zeros(V, z.shape[-1], dtype=z.dtype, device=z.device).index_add_(0, codes, z)
        distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
        if distributed:
            torch.distributed.all_reduce(counts)
            torch.distributed.all_reduce(sums)
        used = counts > 0
        means = F.normalize(sums / counts.clamp_min(1)[:, None], dim=-1)
        target = torch.where(used[:, None], means, self.codebook)
        self.codebook.mul_(self.decay).add_(target, alpha=1.0 - self.decay)
        self.codebook.copy_(F.normalize(self.codebook, dim=-1))
        if self.restart_unused_after is None:
            return 0
        self.idle_steps.add_(1).masked_fill_(used, 0)
        dead = self.idle_steps >= self.restart_unused_after  # the same on every rank (counts are global)
        n_dead = int(dead.sum())
        if n_dead == 0:
            return 0
        pool = _gather_rows(z) if distributed else z  # the global batch's vectors, in rank order
        pick = torch.randint(pool.shape[0], (n_dead,), generator=generator)
        fresh = pool[pick.to(pool.device)].contiguous()
        if distributed:  # ranks draw with their own generators: rank 0's draw is the one (as in 1 process)
            torch.distributed.broadcast(fresh, src=0)
        self.codebook[dead] = fresh
        self.idle_steps[dead] = 0
        return n_dead

    @torch.no_grad()
    def fit_kmeans(self, z: Tensor, iters: int, generator: torch.Generator) -> dict[str, float]:
        """Spherical k-means of ``z`` ``[M, codebook_dim]`` (unit rows) into the codebook."""
        centroids, assign = lloyd_kmeans(z, self.codebook_size, iters, generator, spherical=True)
        self.codebook.copy_(centroids)
        self.initialised.fill_(True)
        return {
            "tokenizer_kmeans_used": float(
                (torch.bincount(assign, minlength=self.codebook_size) > 0).float().mean()
            )
        }


def _gather_rows(x: Tensor) -> Tensor:
    """Every rank's rows of ``x`` ``[M_rank, D]`` (row counts may differ), concatenated in rank order."""
    world = torch.distributed.get_world_size()
    n = torch.tensor([x.shape[0]], device=x.device)
    sizes = [torch.zeros_like(n) for _ in range(world)]
    torch.distributed.all_gather(sizes, n)
    m = int(max(int(s) for s in sizes))
    padded = torch.zeros(m, x.shape[1], dtype=x.dtype, device=x.device)
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in range(world)]
    torch.distributed.all_gather(parts, padded)
    return torch.cat([p[: int(s)] for p, s in zip(parts, sizes, strict=True)])


@torch.no_grad()
def lloyd_kmeans(
    x: Tensor, k: int, iters: int, generator: torch.Generator, spherical: bool = False
) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means of ``x`` ``[M, D]`` into ``k`` centroids: they start at random rows; an empty cluster
    is re-seeded with a random row. ``spherical``: centroids are renormalised to unit length after each update
    (rows of ``x`` should be unit vectors; nearest = largest cosine). Deterministic by ``generator`` (CPU).
    Returns the centroids ``[k, D]`` and the assignment ``[M]`` of the last iteration."""
    x = x.float()
    idx = torch.randperm(x.shape[0], generator=generator)[:k]
    if idx.numel() < k:
        idx = torch.randint(x.shape[0], (k,), generator=generator)
    c = x[idx.to(x.device)].clone()
    assign = torch.cdist(x, c).argmin(dim=1)
    for _ in range(iters):
        assign = torch.cdist(x, c).argmin(dim=1)
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        empty = counts == 0
        c = torch.where(empty[:, None], c, sums / counts.clamp_min(1)[:, None])
        if spherical:
            c = F.normalize(c, dim=-1)
        if bool(empty.any()):
            refill = torch.randint(x.shape[0], (int(empty.sum()),), generator=generator).to(x.device)
            c[empty] = x[refill]
    return c, assign


def save_quantizer(quantizer: NormEMAQuantizer, run_dir: Path, teacher: str) -> Path:
    """Write ``run_dir/tokenizer.safetensors``: the quantizer's tensors and, in the header, its sizes, the
    ``teacher`` it was distilled from and the SHA-256 of the encoder weights in ``run_dir`` (written first),
    which :func:`load_tokenizer` checks. Returns the file's path."""
    from safetensors.torch import save_file

    from avexlab.models.checkpoints import CONFIG_FILE

    record = json.loads((run_dir / CONFIG_FILE).read_text())
    meta = {
        "format": TOKENIZER_FORMAT,
        "format_version": TOKENIZER_FORMAT_VERSION,
        "codebook_size": quantizer.codebook_size,
        "codebook_dim": int(quantizer.codebook.shape[1]),
        "embed_dim": int(quantizer.proj[0].in_features),
        "encoder_weights_sha256": record["weights_sha256"],
        "teacher": teacher,
    }
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in quantizer.state_dict().items()}
    target = run_dir / TOKENIZER_FILE
    atomic_write(target, lambda tmp: save_file(tensors, str(tmp), metadata={_METADATA_KEY: json.dumps(meta)}))
    return target


class DistilledTokenizer(Tokenizer):
    """A trained BEATs tokenizer, frozen: ``forward(wave [B, T], padding_mask) -> labels [B, N]`` (int64, the
    encoder's token order): the clip through its own frontend, encoder and quantizer. Load with
    :func:`load_tokenizer`."""

    def __init__(self, encoder: nn.Module, quantizer: NormEMAQuantizer) -> None:
        super().__init__()
        self.encoder = encoder.eval()
        self.quantizer = quantizer.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    @property
    def codebook_size(self) -> int:
        return self.quantizer.codebook_size

    def train(self, mode: bool = True) -> DistilledTokenizer:
        super().train(mode)
        self.encoder.eval()
        return self

    def labels(self, clips: TokenizerInput) -> Tensor:
        return self(clips.wave, clips.padding_mask)

    @torch.no_grad()
    def forward(self, wave: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        fbank, fmask = self.encoder.frontend(wave, padding_mask)
        tokens, tmask, _ = self.encoder.patchify(fbank, fmask)
        return self.quantizer.assign(self.quantizer.project(self.encoder.encode(tokens, tmask).tokens))


def load_tokenizer(path: str | Path) -> DistilledTokenizer:
    """The tokenizer of a ``beats_tokenizer`` run directory (``encoder.json`` + ``checkpoint.safetensors`` +
    ``tokenizer.safetensors``). Raises CheckpointError, naming the directory, for anything else."""
    from safetensors import safe_open

    from avexlab.models.checkpoints import CONFIG_FILE, load_encoder, load_strict

    run_dir = Path(path)
    qfile = run_dir / TOKENIZER_FILE
    if not qfile.is_file():
        found = sorted(p.name for p in run_dir.iterdir()) if run_dir.is_dir() else "nothing"
        raise CheckpointError(
            expected_found(
                f"BEATs tokenizer {run_dir}",
                f"a tokenizer run directory ({CONFIG_FILE} + {TOKENIZER_FILE}, written by a run with "
                "objective.kind 'beats_tokenizer')",
                f"{found}",
                "Train the tokenizer first: `avexlab train CONFIG --set objective.kind=beats_tokenizer "
                "--set objective.tokenizer.teacher_checkpoint=<the previous SSL run>`; an SSL run directory "
                "is the TEACHER of a tokenizer, not a tokenizer (or use objective.beats.tokenizer=kmeans).",
            )
        )
    try:
        with safe_open(str(qfile), framework="pt") as f:
            meta = json.loads((f.metadata() or {}).get(_METADATA_KEY, "{}"))
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except Exception as err:
        raise CheckpointError(
            f"{qfile}: could not read it as safetensors ({type(err).__name__}: {err})."
        ) from None
    if meta.get("format") != TOKENIZER_FORMAT:
        raise CheckpointError(
            f"{qfile}: expected format {TOKENIZER_FORMAT!r} in its header, found {meta.get('format')!r}."
        )
    sha = (
        json.loads((run_dir / CONFIG_FILE).read_text()).get("weights_sha256")
        if (run_dir / CONFIG_FILE).is_file()
        else None
    )
    if sha != meta["encoder_weights_sha256"]:
        raise CheckpointError(
            expected_found(
                f"BEATs tokenizer {run_dir}",
                f"encoder weights with SHA-256 {meta['encoder_weights_sha256'][:12]}... (those the quantizer "
                "was trained with)",
                f"{(sha or 'no encoder.json')[:12]}",
                "The run directory holds an encoder and a quantizer from different steps (a run stopped "
                "between writing them, or files copied by hand); resume the tokenizer run to finish it.",
            )
        )
    encoder = load_encoder(run_dir)
    quantizer = NormEMAQuantizer(
        int(meta["embed_dim"]), int(meta["codebook_size"]), int(meta["codebook_dim"]), decay=0.0
    )
    load_strict(quantizer, tensors, qfile)
    return DistilledTokenizer(encoder, quantizer)
