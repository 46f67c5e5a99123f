"""BEATs' self-distilled acoustic tokenizer: the labels of BEATs-style SSL iterations 2+.

BEATs alternates two stages. An SSL model learns to predict a tokenizer's discrete labels of masked patches
(iteration 1: a frozen random-projection tokenizer, :class:`avexlab.train.objectives.RandomProjectionTokenizer`).
Then a NEW tokenizer is trained by distillation from that SSL model (the teacher), and the next SSL iteration
predicts its labels. The tokenizer is:

* an encoder of the same kind as the student (its own patch embedding and transformer; the run's model);
* a quantizer (:class:`NormEMAQuantizer`): a projection (Linear, Tanh, Linear) of every token to
  ``codebook_dim``, L2-normalised, and the nearest of ``codebook_size`` unit-norm code vectors. The codes are
  not trained by gradient: each is an exponential moving average (``ema_decay``) of the normalised mean of
  the vectors assigned to it, renormalised, initialised by spherical k-means before the first step; the
  projection gets gradients through the straight-through estimator and a commitment loss
  (``commitment x ||sg(code) - z||^2``);
* an estimator (``estimator_layers`` transformer layers over the quantized tokens, with positions) that must
  reconstruct the teacher's last-layer output of the full, unmasked clip; the loss is ``1 - cosine``.

Only the encoder + quantizer are kept: the run directory of a tokenizer run (``objective.kind
beats_tokenizer``) holds the encoder (``encoder.json`` + ``checkpoint.safetensors``, as every run) and
``tokenizer.safetensors`` (the quantizer, bound to those encoder weights by their SHA-256). An SSL run reads
it with ``objective.beats.tokenizer: distilled`` and ``objective.beats.tokenizer_checkpoint: <that run>``.

    # iteration 1 -> tokenizer -> iteration 2 (three `avexlab train` runs)
    recipe: ssl, objective: {kind: beats_ssl}                                           -> runs/it1
    recipe: ssl, objective: {kind: beats_tokenizer, tokenizer: {teacher_checkpoint: runs/it1}} -> runs/tok1
    recipe: ssl, objective: {kind: beats_ssl, beats: {tokenizer: distilled, tokenizer_checkpoint: runs/tok1}}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avexlab.errors import CheckpointError, ConfigError, expected_found
from avexlab.train.objectives import (
    Objective,
    _require_hooks,
    _sincos,
    _unwrap,
    code_health,
    light_transformer,
    lloyd_kmeans,
    probe_hooks,
)

__all__ = [
    "TOKENIZER_FILE",
    "BeatsTokenizerObjective",
    "DistilledTokenizer",
    "NormEMAQuantizer",
    "load_tokenizer",
]

TOKENIZER_FILE = "tokenizer.safetensors"
TOKENIZER_FORMAT = "avexlab-beats-tokenizer"
TOKENIZER_FORMAT_VERSION = 1
_METADATA_KEY = "avexlab_tokenizer"


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


def _teacher_from(path: Path | None, student: nn.Module, what: str) -> nn.Module:
    """Load the frozen teacher at ``path`` and check that it tokenises a clip like ``student``."""
    from avexlab.models.checkpoints import load_encoder

    if path is None:
        raise ConfigError(f"{what}: expected a teacher checkpoint (an SSL run directory), found none.")
    teacher = load_encoder(path)
    _require_hooks(teacher, f"{what} (teacher {path})")
    for p in teacher.parameters():
        p.requires_grad_(False)
    _check_same_grid(student, teacher, f"{what} {path}")
    return teacher.eval()


def _check_same_grid(student: nn.Module, other: nn.Module, what: str) -> None:
    """The two encoders cut 1 s and 3 s of audio into the same (n_freq, n_time) token grids."""
    s = _unwrap(student)
    for seconds in (1, 3):
        a, b = probe_hooks(s, seconds)[1], probe_hooks(other, seconds)[1]
        if a != b or int(s.sample_rate) != int(other.sample_rate):
            raise ConfigError(
                expected_found(
                    what,
                    f"an encoder whose tokens line up with the student's ({seconds} s of audio at "
                    f"{s.sample_rate} Hz -> (n_freq, n_time) = {a})",
                    f"{getattr(other, 'name', type(other).__name__)!r} at {other.sample_rate} Hz -> {b}",
                    "Use a teacher/tokenizer of the same architecture and patch size as the model trained.",
                )
            )


@torch.no_grad()
def _teacher_targets(teacher: nn.Module, wave: Tensor, padding_mask: Tensor | None) -> Tensor:
    fbank, fmask = teacher.frontend(wave, padding_mask)
    tokens, tmask, _ = teacher.patchify(fbank, fmask)
    return teacher.encode(tokens, tmask).tokens.float()


class BeatsTokenizerObjective(Objective):
    """Train a BEATs tokenizer (the run's encoder + :class:`NormEMAQuantizer` + an estimator) to let the
    estimator reconstruct a frozen teacher's last layer from the quantized tokens (module docstring).

    Logs ``loss``, ``cos_loss`` (1 - cosine to the teacher), ``commit_loss``, ``code_usage`` (fraction of
    the codebook this batch uses), ``code_perplexity`` (a tokenizer whose codes collapse shows it there) and
    ``codes_restarted`` (with ``restart_unused_after``)."""

    def __init__(self, encoder: nn.Module, cfg: Any) -> None:
        super().__init__()
        _require_hooks(encoder, "objective 'beats_tokenizer'")
        enc = _unwrap(encoder)
        d = int(enc.embed_dim)
        self.cfg = cfg
        self.teacher = _teacher_from(cfg.teacher_checkpoint, enc, "objective.tokenizer.teacher_checkpoint")
        self.quantizer = NormEMAQuantizer(
            d, cfg.codebook_size, cfg.codebook_dim, cfg.ema_decay, cfg.restart_unused_after
        )
        self.est_in = nn.Linear(cfg.codebook_dim, d)
        self.estimator = light_transformer(d, layers=cfg.estimator_layers)
        self.est_out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, int(self.teacher.embed_dim)))

    def train(self, mode: bool = True) -> BeatsTokenizerObjective:
        super().train(mode)
        self.teacher.eval()
        return self

    def _project(self, enc: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, Tensor, Tensor | None]:
        fbank, fmask = enc.frontend(batch["wave"], batch.get("padding_mask"))
        tokens, tmask, _ = enc.patchify(fbank, fmask)
        z = self.quantizer.project(enc.encode(tokens, tmask).tokens)
        real = torch.ones(z.shape[:2], dtype=torch.bool, device=z.device) if tmask is None else ~tmask
        return z, real, tmask

    @torch.no_grad()
    def prepare(self, encoder: nn.Module, batches: Any, generator: torch.Generator) -> dict[str, float]:
        """Initialise the codebook by spherical k-means of the projected tokens of ``kmeans_batches``."""
        enc = _unwrap(encoder)
        was = enc.training
        enc.eval()
        zs = []
        for i, batch in enumerate(batches):
            if i == self.cfg.kmeans_batches:
                break
            z, real, _ = self._project(enc, batch)
            zs.append(z[real])
        enc.train(was)
        return self.quantizer.fit_kmeans(torch.cat(zs), self.cfg.kmeans_iters, generator)

    def loss(self, encoder: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        enc = _unwrap(encoder)
        z, real, tmask = self._project(enc, batch)
        codes = self.quantizer.assign(z.detach())
        zq = self.quantizer.codebook[codes]  # before this step's EMA update, as the codes were chosen
        restarted = 0
        if self.training:
            restarted = self.quantizer.ema_update(z.detach()[real], codes[real], batch.get("generator"))
        commit = (zq - z)[real].square().mean()
        st = z + (zq - z).detach()  # straight-through: the estimator's gradient reaches the projection
        B, N, _ = st.shape
        h = self.est_in(st) + _sincos(N, self.est_in.out_features, st.device)
        pred = self.est_out(self.estimator(h, src_key_padding_mask=tmask)).float()
        target = _teacher_targets(self.teacher, batch["wave"], batch.get("padding_mask"))
        if target.shape[:2] != pred.shape[:2]:
            raise ConfigError(
                f"beats tokenizer: the teacher gave {target.shape[1]} tokens per clip where the tokenizer has "
                f"{pred.shape[1]}; they must tokenise the clip alike (same patch size and frontend hop)."
            )
        cos_loss = 1.0 - F.cosine_similarity(pred[real], target[real], dim=-1).mean()
        loss = cos_loss + self.cfg.commitment * commit
        with torch.no_grad():
            logs = {
                "loss": loss.detach(),
                "cos_loss": cos_loss.detach(),
                "commit_loss": commit.detach(),
                "codes_restarted": torch.tensor(float(restarted)),
                **code_health(codes[real], self.quantizer.codebook_size),
            }
        return loss, logs

    def export(self, run_dir: Path) -> None:
        """Write ``tokenizer.safetensors`` (the quantizer), bound to the encoder just exported beside it."""
        save_quantizer(self.quantizer, Path(run_dir), teacher=str(self.cfg.teacher_checkpoint))


def save_quantizer(quantizer: NormEMAQuantizer, run_dir: Path, teacher: str) -> Path:
    from safetensors.torch import save_file

    from avexlab.fsutil import atomic_write
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


class DistilledTokenizer(nn.Module):
    """A trained BEATs tokenizer, frozen: ``forward(wave [B, T], padding_mask) -> labels [B, N]`` (int64, the
    encoder's token order). Load with :func:`load_tokenizer`."""

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
