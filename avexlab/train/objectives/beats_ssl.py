"""BEATs-style masked token prediction (``objective.kind: beats_ssl``): the encoder sees the visible patches,
a light predictor names the tokenizer label of every hidden one."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avexlab.errors import ConfigError
from avexlab.train.objectives.base import (
    MaskedPrediction,
    check_same_grid,
    code_health,
    probe_hooks,
    random_keep,
    require_ssl_hooks,
    unwrap,
)
from avexlab.train.tokenizer import (
    KMeansTokenizer,
    RandomProjectionTokenizer,
    Tokenizer,
    TokenizerInput,
    load_tokenizer,
)

__all__ = ["BeatsSSLObjective", "build_tokenizer"]


class BeatsSSLObjective(MaskedPrediction):
    """BEATs-style masked token prediction.

    ``mask_ratio`` of the non-padded patches are masked; the encoder sees only the visible ones
    (``encode(visible)``); a light predictor (2 transformer layers) gets the encoder outputs at the visible
    positions and a learned mask embedding at masked positions (plus sin-cos positions) and predicts each
    masked patch's tokenizer label (:class:`avexlab.train.tokenizer.Tokenizer`, chosen by ``cfg.tokenizer``:
    :func:`build_tokenizer`) with cross-entropy. Logs ``loss``, ``acc`` (masked-token accuracy),
    ``code_usage`` (fraction of the codebook used by this batch's targets) and ``code_perplexity``."""

    def __init__(self, encoder: nn.Module, cfg: Any) -> None:
        super().__init__()
        require_ssl_hooks(encoder, "objective 'beats_ssl'")
        enc = unwrap(encoder)
        d = int(enc.embed_dim)
        self.cfg = cfg
        self.tokenizer: Tokenizer = build_tokenizer(cfg, enc)
        self._build_predictor(d, cfg.codebook_size, layers=2)

    @torch.no_grad()
    def prepare(self, encoder: nn.Module, batches: Any, generator: torch.Generator) -> dict[str, float]:
        """Fit the tokenizer where it needs fitting (k-means: on the teacher's tokens of ``batches``)."""
        return self.tokenizer.prepare(unwrap(encoder), batches, generator)

    def loss(self, encoder: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        enc = unwrap(encoder)
        fbank, frame_mask = enc.frontend(batch["wave"], batch.get("padding_mask"))
        tokens, token_mask, grid = enc.patchify(fbank, frame_mask)
        B, N, _ = tokens.shape
        targets = self.tokenizer.labels(
            TokenizerInput(batch["wave"], batch.get("padding_mask"), fbank, frame_mask, grid)
        )  # [B, N]
        if targets.shape != (B, N):
            raise ConfigError(
                f"beats_ssl: the tokenizer gave labels of shape {tuple(targets.shape)} for {B} clips of {N} "
                "tokens; it must tokenise the clip like the student (same patch size and frontend hop)."
            )
        keep = max(1, round((1.0 - self.cfg.mask_ratio) * N))
        vis = random_keep(N, keep, token_mask, B, batch.get("generator"))
        logits, masked = self._predict(enc, tokens, token_mask, vis)
        targets = targets.to(logits.device)
        ce = F.cross_entropy(logits[masked], targets[masked])
        with torch.no_grad():
            logs = {
                "loss": ce.detach(),
                "acc": (logits[masked].argmax(-1) == targets[masked]).float().mean(),
                **code_health(targets[masked], self.cfg.codebook_size),
            }
        return ce, logs


def build_tokenizer(cfg: Any, encoder: nn.Module) -> Tokenizer:
    """The tokenizer ``cfg.tokenizer`` (``objective.beats``) names, for the student ``encoder`` (unwrapped):
    a random projection of its fbank patches, the k-means tokenizer over the previous iteration at
    ``cfg.tokenizer_checkpoint`` (same architecture), or the distilled tokenizer trained there (its token grid
    must match the student's). Raises ConfigError, naming the checkpoint, for one that does not fit."""
    what = f"objective.beats.tokenizer_checkpoint {cfg.tokenizer_checkpoint}"
    if cfg.tokenizer == "kmeans":
        from avexlab.models.checkpoints import load_encoder

        teacher = load_encoder(cfg.tokenizer_checkpoint)
        if getattr(teacher, "name", None) != getattr(encoder, "name", None):
            raise ConfigError(
                f"{what}: expected a {encoder.name!r} encoder (the previous iteration of this model), found "
                f"{teacher.name!r}."
            )
        return KMeansTokenizer(teacher, cfg.codebook_size, cfg.kmeans_batches, cfg.kmeans_iters)
    if cfg.tokenizer == "distilled":
        tokenizer = load_tokenizer(cfg.tokenizer_checkpoint)
        if tokenizer.codebook_size != cfg.codebook_size:
            raise ConfigError(
                f"{what}: expected a tokenizer with objective.beats.codebook_size={cfg.codebook_size} codes, "
                f"found {tokenizer.codebook_size}. Set objective.beats.codebook_size to "
                f"{tokenizer.codebook_size} (the predictor's output size)."
            )
        check_same_grid(encoder, tokenizer.encoder, what)
        return tokenizer
    return RandomProjectionTokenizer(
        _patch_dim(encoder), cfg.codebook_size, cfg.codebook_dim, cfg.tokenizer_seed
    )


def _patch_dim(enc: nn.Module) -> int:
    """Values per fbank patch (``p x p``), found by running the hooks on 1 s of silence."""
    shape, (n_freq, _) = probe_hooks(enc)
    p = shape[-1] // n_freq
    return p * p
