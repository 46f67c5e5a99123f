"""EAT-style teacher-student SSL (``objective.kind: eat_ssl``): an EMA teacher's layer averages of the full
clip are regressed from the visible tokens of masked copies (frames) and from the CLS token (utterance)."""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avexlab.models.base import masked_pool
from avexlab.train.objectives.base import (
    Objective,
    encode_visible,
    inverse_block_mask,
    require_ssl_hooks,
    unwrap,
)

__all__ = ["ConvDecoder2d", "EatSSLObjective", "ema_decays"]


class ConvDecoder2d(nn.Module):
    """EAT's light decoder for frame targets: ``layers`` x (conv ``k x k`` over the (time, freq) token grid,
    LayerNorm, GELU) with residuals, then a linear projection to the target width.
    ``forward(x [B, N, D_in], grid) -> [B, N, D_out]`` (time-major tokens)."""

    def __init__(self, d_in: int, d_out: int, dim: int, layers: int, kernel: int) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, dim)
        self.convs = nn.ModuleList(nn.Conv2d(dim, dim, kernel, padding=kernel // 2) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(dim, elementwise_affine=False) for _ in range(layers))
        self.proj = nn.Linear(dim, d_out)

    def forward(self, x: Tensor, grid: tuple[int, int]) -> Tensor:
        n_freq, n_time = grid
        B, N, _ = x.shape
        h = self.inp(x)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            y = h.view(B, n_time, n_freq, -1).permute(0, 3, 1, 2)
            y = conv(y).permute(0, 2, 3, 1).reshape(B, N, -1)
            y = F.gelu(norm(y))
            h = y if i == 0 else h + y
        return self.proj(h)


class EatSSLObjective(Objective):
    """EAT-style teacher-student (data2vec 2.0 family).

    * teacher: an EMA copy of the encoder, fed the full unmasked patches; target per token = mean over the
      top ``average_top_k_layers`` (default all) blocks' FFN outputs (``encode_with_ffn``, as EAT; layer
      outputs for encoders without that hook), each instance-normed over the clip's real tokens; the
      utterance target is the mean of the frame targets over real tokens (EAT LayerNorms the averaged
      layers, ``layer_norm_targets``; without that the mean is zero by construction).
    * student: ``clones`` copies of each clip, each with its own inverse block mask (``mask_ratio`` masked,
      visible tokens in ``block_size`` blocks), encodes only visible tokens; the conv decoder fills masked
      positions (learned mask embedding) and regresses the frame targets there (MSE); the CLS token (mean of
      visible outputs when the encoder has none) regresses the utterance target (MSE weighted
      ``utterance_weight`` x the number of masked copies in the global batch, as EAT's summed loss).
      The decoder is the encoder's own (``encoder.decode``, EAT's Decoder2d) when it has one, else
      :class:`ConvDecoder2d` (then ``decoder_dim/layers/kernel`` of the config apply).
    * EMA decay: linear from ``ema_start`` to ``ema_end`` over ``ema_anneal_frac`` of the run's steps, both
      scaled to the run length (:func:`ema_decays`).
    Logs ``loss``, ``frame_loss``, ``utt_loss``, ``target_var`` (variance of targets over tokens: collapse
    drives it to 0), ``pred_var`` and ``ema_decay``."""

    def __init__(self, encoder: nn.Module, cfg: Any) -> None:
        super().__init__()
        require_ssl_hooks(encoder, "objective 'eat_ssl'")
        enc = unwrap(encoder)
        d = int(enc.embed_dim)
        self.cfg = cfg
        self.teacher = copy.deepcopy(enc)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.mask_emb = nn.Parameter(torch.zeros(d))
        nn.init.normal_(self.mask_emb, std=0.02)
        # EAT's own decoder (``encoder.decode``) when the encoder has one; otherwise a conv decoder here.
        self.use_encoder_decoder = getattr(enc, "decoder", None) is not None and callable(
            getattr(enc, "decode", None)
        )
        self.decoder = (
            None
            if self.use_encoder_decoder
            else ConvDecoder2d(d, d, cfg.decoder_dim or d, cfg.decoder_layers, cfg.decoder_kernel)
        )
        self.utt_proj = nn.Linear(d, d)
        self.register_buffer("ema_decay", torch.tensor(float(cfg.ema_start), dtype=torch.float64))

    def train(self, mode: bool = True) -> EatSSLObjective:
        super().train(mode)
        self.teacher.eval()  # the teacher never uses dropout
        return self

    @torch.no_grad()
    def _targets(self, fbank: Tensor, frame_mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        tokens, token_mask, _ = self.teacher.patchify(fbank, frame_mask)
        if callable(getattr(self.teacher, "encode_with_ffn", None)):  # EAT: the blocks' FFN outputs
            out, ffn = self.teacher.encode_with_ffn(tokens, token_mask)
            layers = [f[:, f.shape[1] - tokens.shape[1] :] for f in ffn]  # drop the CLS position
        else:
            layers = self.teacher.encode(tokens, token_mask).hidden_states
        k = self.cfg.average_top_k_layers or len(layers)
        keep = None if token_mask is None else (~token_mask).float()[..., None]
        acc = 0.0
        for h in layers[-k:]:
            h = h.float()
            if keep is None:
                mu, var = h.mean(1, keepdim=True), h.var(1, keepdim=True, unbiased=False)
            else:
                cnt = keep.sum(1, keepdim=True).clamp_min(1)
                mu = (h * keep).sum(1, keepdim=True) / cnt
                var = ((h - mu).square() * keep).sum(1, keepdim=True) / cnt
            acc = acc + (h - mu) / torch.sqrt(var + 1e-5)
        y = acc / k
        if self.cfg.layer_norm_targets:
            y = F.layer_norm(y, y.shape[-1:])
        return y, token_mask

    def loss(self, encoder: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        enc = unwrap(encoder)
        cfg = self.cfg
        fbank, frame_mask = enc.frontend(batch["wave"], batch.get("padding_mask"))
        target, token_mask = self._targets(fbank, frame_mask)  # [B, N, D]
        tokens, token_mask, grid = enc.patchify(fbank, frame_mask)
        B, N, D = tokens.shape
        C = cfg.clones
        keep = max(1, round((1.0 - cfg.mask_ratio) * N))
        rep = lambda x: None if x is None else x.repeat_interleave(C, dim=0)  # noqa: E731
        tok_c, mask_c, tgt_c = rep(tokens), rep(token_mask), rep(target)
        vis = inverse_block_mask(B * C, grid, keep, cfg.block_size, mask_c, batch.get("generator"))
        out, full, masked, vis_mask = encode_visible(enc, tok_c, mask_c, vis, self.mask_emb)
        h = out.tokens
        pred = (enc.decode(full, grid) if self.use_encoder_decoder else self.decoder(full, grid)).float()
        frame_loss = (pred[masked] - tgt_c[masked]).square().mean()
        if out.cls is not None:
            utt = out.cls[-1]
        else:
            utt = masked_pool(h, vis_mask, "mean")
        real = None if token_mask is None else (~token_mask).float()[..., None]
        utt_target = target.mean(1) if real is None else (target * real).sum(1) / real.sum(1).clamp_min(1)
        utt_loss = (self.utt_proj(utt).float() - rep(utt_target)).square().mean()
        # EAT's fairseq loss sums the utterance errors over the masked copies while the frame errors are a
        # mean per token: the utterance term weighs (clips x clones) times its per-element mean. The count
        # is the GLOBAL one here (EAT's is per GPU), so a run does not depend on how it is split over ranks.
        world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
        loss = frame_loss + cfg.utterance_weight * (B * C * world) * utt_loss
        with torch.no_grad():
            real_tgt = target if token_mask is None else target[~token_mask]
            logs = {
                "loss": loss.detach(),
                "frame_loss": frame_loss.detach(),
                "utt_loss": utt_loss.detach(),
                "target_var": real_tgt.reshape(-1, D).var(0).mean(),
                "pred_var": pred[masked].var(0).mean(),
                "ema_decay": self.ema_decay.float(),
            }
        return loss, logs

    @torch.no_grad()
    def after_step(self, encoder: nn.Module, step: int, total_steps: int) -> dict[str, float]:
        """EMA update of the teacher after optimiser step ``step`` (1-based) of ``total_steps``."""
        cfg = self.cfg
        anneal = max(1, round(cfg.ema_anneal_frac * total_steps))
        frac = min(1.0, step / anneal)
        start, end = ema_decays(cfg, total_steps)
        decay = start + (end - start) * frac
        self.ema_decay.fill_(decay)
        student = unwrap(encoder)
        t_params = list(self.teacher.parameters())
        s_params = [p.detach() for p in student.parameters()]
        torch._foreach_mul_(t_params, decay)
        torch._foreach_add_(t_params, s_params, alpha=1.0 - decay)
        for tb, sb in zip(self.teacher.buffers(), student.buffers(), strict=True):
            tb.copy_(sb)
        return {"ema_decay": decay}


def ema_decays(cfg: Any, total_steps: int) -> tuple[float, float]:
    """The (start, end) EMA decays of an EAT-style run of ``total_steps`` optimiser steps: ``cfg.ema_start``
    / ``cfg.ema_end`` raised to ``cfg.ema_reference_steps / total_steps`` (the teacher's memory stays the
    same fraction of the run; exact at the reference length), or as written when that is None."""
    ref = cfg.ema_reference_steps
    if ref is None:
        return float(cfg.ema_start), float(cfg.ema_end)
    power = ref / max(1, total_steps)
    return float(cfg.ema_start) ** power, float(cfg.ema_end) ** power
