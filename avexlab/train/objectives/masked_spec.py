"""Masked-spectrogram reconstruction (``objective.kind: masked_spec``), the generative SSL baseline."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from avexlab.models.base import fbank_patches
from avexlab.train.objectives.base import (
    MaskedPrediction,
    inverse_block_mask,
    probe_hooks,
    random_keep,
    require_ssl_hooks,
    unwrap,
)

__all__ = ["MaskedSpecObjective"]


class MaskedSpecObjective(MaskedPrediction):
    """Masked-spectrogram reconstruction (SSAST / MAE-AST / Audio-MAE's generative objective), the SSL
    baseline without a tokenizer or a teacher: nothing here can collapse, because the targets are the input.

    ``mask_ratio`` of the non-padded fbank patches are hidden (``masking``: uniform, or EAT's inverse blocks);
    the encoder sees only the visible ones; a light transformer (``decoder_layers``, learned mask embedding +
    sin-cos positions) regresses every hidden patch's ``p x p`` fbank values (the encoder's own frontend and
    patch grid, :func:`avexlab.models.base.fbank_patches`), standardised per patch when ``norm_patches``.
    Loss: MSE over hidden, non-padded patches. Logs ``loss``, ``explained_var`` (1 - loss / the targets'
    variance over those patches; 0 = predicting the mean patch) and ``pred_var``."""

    def __init__(self, encoder: nn.Module, cfg: Any) -> None:
        super().__init__()
        require_ssl_hooks(encoder, "objective 'masked_spec'")
        enc = unwrap(encoder)
        d = int(enc.embed_dim)
        self.cfg = cfg
        shape, grid = probe_hooks(enc)
        fbank_patches(torch.zeros(1, *shape[1:]), grid)  # the grid must tile the fbank: clear error now
        self._build_predictor(d, (shape[-1] // grid[0]) ** 2, layers=cfg.decoder_layers)

    def loss(self, encoder: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        enc = unwrap(encoder)
        cfg = self.cfg
        fbank, frame_mask = enc.frontend(batch["wave"], batch.get("padding_mask"))
        tokens, token_mask, grid = enc.patchify(fbank, frame_mask)
        B, N, _ = tokens.shape
        with torch.no_grad():
            target = fbank_patches(fbank.float(), grid)  # [B, N, p*p]
            if cfg.norm_patches:
                mu, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True, unbiased=False)
                target = (target - mu) / torch.sqrt(var + 1e-6)
        keep = max(1, round((1.0 - cfg.mask_ratio) * N))
        if cfg.masking == "block":
            vis = inverse_block_mask(B, grid, keep, cfg.block_size, token_mask, batch.get("generator"))
        else:
            vis = random_keep(N, keep, token_mask, B, batch.get("generator"))
        pred, masked = self._predict(enc, tokens, token_mask, vis)
        tgt = target[masked]
        loss = (pred[masked] - tgt).square().mean()
        with torch.no_grad():
            logs = {
                "loss": loss.detach(),
                "explained_var": 1.0 - loss.detach() / tgt.var(0, unbiased=False).mean().clamp_min(1e-12),
                "pred_var": pred[masked].var(0, unbiased=False).mean(),
            }
        return loss, logs
