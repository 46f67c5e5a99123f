"""What every objective shares: the :class:`Objective` contract, the masking functions and the helpers over an
encoder's SSL hooks (:class:`avexlab.models.base.SSLEncoder`).

A batch is a dict: ``wave`` ``[B, T]`` float32 at the encoder's sample rate, ``padding_mask`` ``[B, T]`` bool
(True = padded) or None, ``targets`` ``[B, C]`` float multi-hot (supervised only) and ``generator`` (a CPU
``torch.Generator`` for masks; the trainer reseeds it every step). ``logs`` maps names to 0-d tensors
(detached), so logging costs no device sync until the trainer reads them.

Objectives are ``nn.Module`` s: their own parameters (heads, predictors, decoders, an EMA teacher) are
trained and checkpointed with the encoder. SSL objectives hide tokens from the encoder through its hooks::

    fbank, frame_mask = encoder.frontend(wave, padding_mask)       # [B, F, M], [B, F]
    tokens, token_mask, (n_freq, n_time) = encoder.patchify(fbank, frame_mask)   # [B, N, D] (time-major)
    out = encoder.encode(tokens_subset, token_mask_subset)        # EncoderOutput
"""

from __future__ import annotations

import abc
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avexlab.errors import ConfigError, expected_found
from avexlab.models.base import SSL_HOOKS, missing_ssl_hooks

__all__ = [
    "MaskedPrediction",
    "Objective",
    "check_same_grid",
    "code_health",
    "encode_visible",
    "inverse_block_mask",
    "light_transformer",
    "probe_hooks",
    "random_keep",
    "require_ssl_hooks",
    "sinusoidal_positions",
    "unwrap",
]


class Objective(nn.Module, abc.ABC):
    """The contract the trainer drives: ``loss`` for every micro-batch (``encoder`` may be wrapped by DDP:
    :func:`unwrap`), ``prepare`` once before the first step of a fresh run, ``after_step`` after every
    optimiser step (EMA teachers) and ``export`` at every checkpoint. The objective's own parameters are the
    trainer's "head" groups: trained with the encoder, and alone while the backbone is frozen."""

    @abc.abstractmethod
    def loss(self, encoder: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """Scalar loss and detached 0-d logs for one batch."""

    def after_step(self, encoder: nn.Module, step: int, total_steps: int) -> dict[str, float]:
        """Update after optimiser step ``step`` (1-based) of ``total_steps``; numbers for the metrics row.
        Default: nothing."""
        return {}

    def prepare(self, encoder: nn.Module, batches: Any, generator: torch.Generator) -> dict[str, float]:
        """Work before the first step of a fresh run (fit a tokenizer); ``batches`` is an iterable of
        device batches, the same on every rank. Not called on resume (the result is in the checkpoint)."""
        return {}

    def export(self, run_dir: Path) -> None:
        """Write what the objective adds to a run directory (rank 0, at every checkpoint, after the encoder
        export): a tokenizer run writes its quantizer here. Default: nothing."""


def unwrap(encoder: nn.Module) -> nn.Module:
    """The encoder inside a DistributedDataParallel wrapper (its ``module``), or ``encoder`` itself."""
    return getattr(encoder, "module", encoder)


def require_ssl_hooks(encoder: nn.Module, what: str) -> None:
    """Raise ConfigError (naming ``what`` and the missing hooks) unless ``encoder`` (unwrapped) implements
    :class:`avexlab.models.base.SSLEncoder`."""
    enc = unwrap(encoder)
    missing = missing_ssl_hooks(enc)
    if missing:
        raise ConfigError(
            expected_found(
                what,
                f"an encoder with the SSL hooks {'/'.join(SSL_HOOKS)} (avexlab.models.base.SSLEncoder)",
                f"{getattr(enc, 'name', type(enc).__name__)!r}, which lacks {missing}",
                "Use model.name 'beats' or 'eat', or the 'sl' recipe.",
            )
        )


@torch.no_grad()
def probe_hooks(enc: nn.Module, seconds: float = 1.0) -> tuple[torch.Size, tuple[int, int]]:
    """Run ``enc``'s frontend and patchify hooks on ``seconds`` of silence (eval mode, then restored):
    the fbank's shape and the token grid ``(n_freq, n_time)``."""
    dev = next(enc.parameters()).device
    was = enc.training
    enc.eval()
    fbank, fmask = enc.frontend(torch.zeros(1, int(enc.sample_rate * seconds), device=dev), None)
    _, _, (n_freq, n_time) = enc.patchify(fbank, fmask)
    enc.train(was)
    return fbank.shape, (int(n_freq), int(n_time))


def check_same_grid(student: nn.Module, other: nn.Module, what: str) -> None:
    """Raise ConfigError (naming ``what``) unless ``other`` cuts 1 s and 3 s of audio into the same
    ``(n_freq, n_time)`` token grids as ``student``, at the same sample rate: a teacher or tokenizer whose
    labels must line up with the student's tokens."""
    s = unwrap(student)
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


# ------------------------------------------------------------------------------------------- masking


def random_keep(
    n_tokens: int, keep: int, token_mask: Tensor | None, batch: int, generator: torch.Generator | None
) -> Tensor:
    """Indices ``[B, keep]`` (sorted) of tokens kept visible, chosen uniformly among non-padded tokens (a
    padded token is only kept when a clip has fewer than ``keep`` real ones)."""
    noise = torch.rand(batch, n_tokens, generator=generator)
    if token_mask is not None:
        noise = noise + 2.0 * token_mask.cpu().float()
    return noise.argsort(dim=1)[:, :keep].sort(dim=1).values


def inverse_block_mask(
    n_clips: int,
    grid: tuple[int, int],
    keep: int,
    block: int,
    token_mask: Tensor | None,
    generator: torch.Generator | None,
) -> Tensor:
    """EAT's inverse block masking: visible tokens come in ``block x block`` (time x freq) blocks.

    Block centres are drawn so that the blocks cover about ``keep`` tokens, dilated by a max-pool, then
    exactly ``keep`` tokens per clip are taken (covered tokens first, ties broken at random). Returns sorted
    indices ``[n_clips, keep]`` into the time-major token order; padded tokens are kept last."""
    n_freq, n_time = grid
    n = n_freq * n_time
    frac_keep = keep / n
    p_centre = 1.0 - (1.0 - frac_keep) ** (1.0 / (block * block))
    centres = (torch.rand(n_clips, 1, n_time, n_freq, generator=generator) < p_centre).float()
    covered = F.max_pool2d(centres, kernel_size=block, stride=1, padding=block // 2)[:, 0, :n_time, :n_freq]
    score = covered.reshape(n_clips, n) + torch.rand(n_clips, n, generator=generator)
    if token_mask is not None:
        score = score - 4.0 * token_mask.cpu().float()
    return score.argsort(dim=1, descending=True)[:, :keep].sort(dim=1).values


def _gather(x: Tensor, idx: Tensor) -> Tensor:
    """``x`` ``[B, N, ...]`` at ``idx`` ``[B, K]`` -> ``[B, K, ...]``."""
    idx = idx.to(x.device)
    return x.gather(1, idx.view(*idx.shape, *([1] * (x.ndim - 2))).expand(*idx.shape, *x.shape[2:]))


def encode_visible(
    enc: nn.Module, tokens: Tensor, token_mask: Tensor | None, vis: Tensor, mask_emb: Tensor
) -> tuple[Any, Tensor, Tensor, Tensor | None]:
    """The masked-prediction step every SSL objective here shares: the encoder sees only the tokens at
    ``vis`` ``[B, K]`` (sorted indices into ``tokens`` ``[B, N, D]``). Returns ``(out, full, masked,
    vis_mask)``: the encoder's output on the visible tokens; ``full`` ``[B, N, D]`` = its tokens at the visible
    positions and ``mask_emb`` elsewhere (the predictor's / decoder's input); ``masked`` ``[B, N]`` bool = the
    hidden, non-padded positions (where losses are taken); the visible tokens' padding mask."""
    B, N, _ = tokens.shape
    vis_mask = None if token_mask is None else _gather(token_mask, vis)
    out = enc.encode(_gather(tokens, vis), vis_mask)
    h = out.tokens
    full = mask_emb.to(h.dtype).expand(B, N, -1).clone()
    full.scatter_(1, vis.to(h.device)[..., None].expand(-1, -1, h.shape[-1]), h)
    masked = torch.ones(B, N, dtype=torch.bool, device=h.device)
    masked.scatter_(1, vis.to(h.device), False)
    if token_mask is not None:
        masked &= ~token_mask
    return out, full, masked, vis_mask


def sinusoidal_positions(n: int, dim: int, device: torch.device) -> Tensor:
    """Transformer sin-cos positions ``[n, dim]`` float32 (sin on even, cos on odd channels, wavelengths
    from 2 pi up to 10000 x 2 pi): added to the tokens of the SSL heads' light transformers, which have
    none of their own."""
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(n, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return pe


def light_transformer(d: int, layers: int) -> nn.TransformerEncoder:
    """The small pre-LN transformer of SSL heads (BEATs-style predictor, tokenizer estimator): ``d // 64``
    heads (at least 1), FFN ``4 d``, no dropout."""
    layer = nn.TransformerEncoderLayer(
        d, max(1, d // 64), 4 * d, dropout=0.0, batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)


@torch.no_grad()
def code_health(codes: Tensor, codebook_size: int) -> dict[str, Tensor]:
    """``code_usage`` (fraction of the codebook among ``codes``) and ``code_perplexity`` (exp of their
    entropy; 1 = one code, ``codebook_size`` = uniform): a tokenizer that collapses shows it here."""
    counts = torch.bincount(codes.reshape(-1), minlength=codebook_size).float()
    prob = counts / counts.sum().clamp_min(1)
    return {
        "code_usage": (counts > 0).float().mean(),
        "code_perplexity": torch.exp(-(prob * prob.clamp_min(1e-12).log()).sum()),
    }


class MaskedPrediction(Objective):
    """What BEATs-style token prediction and masked-spectrogram reconstruction share: a learned mask
    embedding, a light transformer over all positions (encoder outputs at the visible ones, the mask embedding
    elsewhere, plus sin-cos positions) and a LayerNorm + Linear head to ``out_dim`` per position."""

    def _build_predictor(self, d: int, out_dim: int, layers: int) -> None:
        self.mask_emb = nn.Parameter(torch.zeros(d))
        nn.init.normal_(self.mask_emb, std=0.02)
        self.predictor = light_transformer(d, layers=layers)
        self.out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, out_dim))

    def _predict(
        self, enc: nn.Module, tokens: Tensor, token_mask: Tensor | None, vis: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Float predictions ``[B, N, out_dim]`` for every position and the ``masked`` ``[B, N]`` positions
        (hidden, non-padded) where the loss is taken; the encoder sees only ``vis``."""
        _, full, masked, _ = encode_visible(enc, tokens, token_mask, vis, self.mask_emb)
        full = full + sinusoidal_positions(full.shape[1], full.shape[-1], full.device).to(full.dtype)
        return self.out(self.predictor(full, src_key_padding_mask=token_mask)).float(), masked
