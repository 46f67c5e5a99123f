"""Training BEATs' distilled tokenizer (``objective.kind: beats_tokenizer``): the run's encoder + a normed EMA
quantizer + an estimator that must reconstruct a frozen teacher (the previous SSL iteration) from the codes.
The tokenizer itself, and how it is stored and read, is :mod:`avexlab.train.tokenizer`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avexlab.errors import ConfigError
from avexlab.train.objectives.base import (
    Objective,
    check_same_grid,
    code_health,
    light_transformer,
    require_ssl_hooks,
    sinusoidal_positions,
    unwrap,
)
from avexlab.train.tokenizer import NormEMAQuantizer, save_quantizer

__all__ = ["BeatsTokenizerObjective"]


def _teacher_from(path: Path | None, student: nn.Module, what: str) -> nn.Module:
    """Load the frozen teacher at ``path`` and check that it tokenises a clip like ``student``."""
    from avexlab.models.checkpoints import load_encoder

    if path is None:
        raise ConfigError(f"{what}: expected a teacher checkpoint (an SSL run directory), found none.")
    teacher = load_encoder(path)
    require_ssl_hooks(teacher, f"{what} (teacher {path})")
    for p in teacher.parameters():
        p.requires_grad_(False)
    check_same_grid(student, teacher, f"{what} {path}")
    return teacher.eval()


@torch.no_grad()
def _teacher_targets(teacher: nn.Module, wave: Tensor, padding_mask: Tensor | None) -> Tensor:
    fbank, fmask = teacher.frontend(wave, padding_mask)
    tokens, tmask, _ = teacher.patchify(fbank, fmask)
    return teacher.encode(tokens, tmask).tokens.float()


class BeatsTokenizerObjective(Objective):
    """Train a BEATs tokenizer (the run's encoder + :class:`avexlab.train.tokenizer.NormEMAQuantizer` + an
    estimator) to let the estimator reconstruct a frozen teacher's last layer from the quantized tokens (see
    :mod:`avexlab.train.tokenizer`). The run directory it exports is what :func:`load_tokenizer` reads.

    Logs ``loss``, ``cos_loss`` (1 - cosine to the teacher), ``commit_loss``, ``code_usage`` (fraction of
    the codebook this batch uses), ``code_perplexity`` (a tokenizer whose codes collapse shows it there) and
    ``codes_restarted`` (with ``restart_unused_after``)."""

    def __init__(self, encoder: nn.Module, cfg: Any) -> None:
        super().__init__()
        require_ssl_hooks(encoder, "objective 'beats_tokenizer'")
        enc = unwrap(encoder)
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
        enc = unwrap(encoder)
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
        enc = unwrap(encoder)
        z, real, tmask = self._project(enc, batch)
        codes = self.quantizer.assign(z.detach())
        zq = self.quantizer.codebook[codes]  # before this step's EMA update, as the codes were chosen
        restarted = 0
        if self.training:
            restarted = self.quantizer.ema_update(z.detach()[real], codes[real], batch.get("generator"))
        commit = (zq - z)[real].square().mean()
        st = z + (zq - z).detach()  # straight-through: the estimator's gradient reaches the projection
        B, N, _ = st.shape
        h = self.est_in(st) + sinusoidal_positions(N, self.est_in.out_features, st.device)
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
