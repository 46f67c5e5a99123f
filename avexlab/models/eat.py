"""EAT (Efficient Audio Transformer, data2vec-multi image modality) in plain PyTorch.

Pipeline (``forward(wave [B, T] float32 in [-1, 1] at sample_rate Hz, padding_mask [B, T])``)::

    wave - mean(real samples) -> Kaldi fbank (Hanning, htk_compat, 25 ms / 10 ms, 128 mel)  frontend()
    -> padded frames set to 0, zero-pad to a multiple of 16 frames -> (x + 4.268) / (2 x 4.569)  [B, F, M]
    -> Conv2d 16x16 stride 16 (bias) -> time-major tokens + fixed 2-D sin-cos positions         patchify()
       (first half of the channels encodes the frequency patch index, second half the time index)
    -> [CLS] + tokens -> LayerNorm (eps 1e-6) -> depth post-LN ViT blocks                        encode()

Post-LN as in the source (``layer_norm_first=False`` in every released config; the data2vec ``AltBlock``):
``x = x + attn(x); r = norm1(x); x = norm2(r + mlp(r))``; the ``mlp(r)`` outputs are the SSL targets
(:meth:`EAT.encode_with_ffn`). The 6-layer conv decoder of SSL pre-training (``decoder.*``,
``Decoder2d``) is kept (``decoder_layers=0`` drops it): :meth:`EAT.decode`.

Where avexlab differs from the reference, and why:
- Clips of any length: positions are computed for the clip's own number of time patches, not read from a
  fixed table of 768 (the values are the same for every row the table holds), and clips are not cropped
  to 1024 frames.
- Padding: the mean is taken over real samples only; frames that are not made entirely of real samples
  are set to 0 before normalising (what the reference's zero-padding to 1024 frames does to a clip alone),
  tokens whose frames are all padding are masked as attention keys. A clip therefore embeds the same
  alone or padded inside a batch. The reference pads every clip to 10.24 s and attends to the padding.
- Attention runs through ``F.scaled_dot_product_attention``; the fbank is batched on the device.
- No host synchronisation on the forward path (``torch.compile`` friendly): a token padding mask is
  returned whenever a sample padding mask was given, all False when nothing is padded (same numbers as
  None). :meth:`EAT.set_fast_path` compiles the blocks.

State-dict keys follow the Hugging Face port (``worstchan/EAT-*``) without its ``model.`` prefix:
``extra_tokens``, ``local_encoder.proj``, ``pre_norm`` (fairseq: ``context_encoder.norm``),
``blocks.{i}.norm1|attn.qkv|attn.proj|norm2|mlp.fc1|mlp.fc2``, and fairseq's ``decoder.*``.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avexlab.audio.fbank import KaldiFbank, valid_lengths
from avexlab.errors import CheckpointError, ConfigError, expected_found

from .base import Encoder, EncoderOutput, check_config_keys
from .checkpoints import load_strict, read_json, read_safetensors
from .registry import register_checkpoint_reader, register_encoder

__all__ = ["EAT", "from_hf_state_dict", "from_official_checkpoint", "sincos_positions"]


def sincos_positions(n_time: int, n_freq: int, dim: int, device: torch.device | None = None) -> Tensor:
    """Fixed 2-D sin-cos positions ``[n_time * n_freq, dim]`` float32, time-major rows.

    Channels ``[:dim/2]`` encode the frequency patch index, ``[dim/2:]`` the time patch index; each half is
    ``[sin(p w_k), cos(p w_k)]`` with ``w_k = 10000^(-k / (dim/4))`` (MAE's 2-D sin-cos as EAT uses it).
    """
    if dim % 4:
        raise ConfigError(
            expected_found("embed_dim", "a multiple of 4 (2-D sin-cos positions)", str(dim), "")
        )
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, dtype=torch.float64, device=device) / quarter)
    f = torch.arange(n_freq, dtype=torch.float64, device=device).repeat(n_time)
    t = torch.arange(n_time, dtype=torch.float64, device=device).repeat_interleave(n_freq)

    def one(p: Tensor) -> Tensor:
        a = p[:, None] * omega[None, :]
        return torch.cat([a.sin(), a.cos()], dim=1)

    return torch.cat([one(f), one(t)], dim=1).float()


class PatchEmbed(nn.Module):
    """``proj``: Conv2d(1, D, p, stride p) on ``[B, 1, F, M]`` -> time-major ``[B, N, D]``."""

    def __init__(self, patch: int, dim: int) -> None:
        super().__init__()
        self.proj = nn.Conv2d(1, dim, kernel_size=patch, stride=patch)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, qkv_bias: bool, attn_drop: float) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(expected_found("embed_dim", f"a multiple of num_heads={heads}", str(dim), ""))
        self.heads, self.attn_drop = heads, attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, key_mask: Tensor | None) -> Tensor:
        """``x [B, N, D]``, ``key_mask [B, 1, 1, N]`` bool (True = attend) or None."""
        b, n, d = x.shape
        q, k, v = self.qkv(x).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=key_mask, dropout_p=self.attn_drop if self.training else 0.0
        )
        return self.proj(out.transpose(1, 2).reshape(b, n, d))


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int, drop: float) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)
        self.drop = drop

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.dropout(F.gelu(self.fc1(x)), self.drop, self.training))


class Block(nn.Module):
    """Post-LN block: ``x = x + attn(x); r = norm1(x); t = mlp(r); x = norm2(r + t)``; returns ``(x, t)``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float, cfg: dict[str, Any]) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=cfg["norm_eps"])
        self.attn = Attention(dim, heads, cfg["qkv_bias"], cfg["attention_dropout"])
        self.norm2 = nn.LayerNorm(dim, eps=cfg["norm_eps"])
        self.mlp = Mlp(dim, int(dim * mlp_ratio), cfg["activation_dropout"])
        self.drop = cfg["dropout"]

    def forward(self, x: Tensor, key_mask: Tensor | None) -> tuple[Tensor, Tensor]:
        x = x + F.dropout(self.attn(x, key_mask), self.drop, self.training)
        r = self.norm1(x)
        t = self.mlp(r)
        return self.norm2(r + F.dropout(t, self.drop, self.training)), t


class Decoder2d(nn.Module):
    """EAT's SSL conv decoder (fairseq ``Decoder2d``): ``blocks.{i}.0`` grouped Conv2d k x k over the
    (time, freq) patch grid -> channel LayerNorm (no affine) -> GELU, residual between blocks of equal
    width, then ``proj`` Linear(decoder_dim -> D)."""

    def __init__(self, dim: int, decoder_dim: int, kernel: int, groups: int, layers: int) -> None:
        super().__init__()
        self.kernel = kernel
        self.blocks = nn.ModuleList(
            nn.ModuleList(
                [
                    nn.Conv2d(
                        dim if i == 0 else decoder_dim,
                        decoder_dim,
                        kernel,
                        padding=kernel // 2,
                        groups=groups,
                    )
                ]
            )
            for i in range(layers)
        )
        self.norms = nn.ModuleList(nn.LayerNorm(decoder_dim, elementwise_affine=False) for _ in range(layers))
        self.proj = nn.Linear(decoder_dim, dim)

    def forward(self, x: Tensor, grid: tuple[int, int]) -> Tensor:
        """``x [B, N, D]`` (N = n_time * n_freq, time-major, no CLS), ``grid (n_freq, n_time)`` -> ``[B, N, D]``."""
        n_freq, n_time = grid
        b, n, d = x.shape
        if n != n_freq * n_time:
            raise ConfigError(
                expected_found("decoder input", f"{n_freq * n_time} tokens (the full grid)", f"{n}", "")
            )
        h = x.transpose(1, 2).reshape(b, d, n_time, n_freq)
        residual = h
        for block, norm in zip(self.blocks, self.norms, strict=True):
            y = block[0](h)
            if self.kernel % 2 == 0:  # same padding for even kernels
                y = y[:, :, :-1, :-1]
            y = F.gelu(norm(y.permute(0, 2, 3, 1)).permute(0, 3, 1, 2))
            if residual.shape[1] == y.shape[1]:
                y = y + residual
            h = residual = y
        return self.proj(h.reshape(b, h.shape[1], n).transpose(1, 2))


_BASE: dict[str, Any] = {
    "sample_rate": 16000,
    "num_mel_bins": 128,
    "frame_length_ms": 25.0,
    "frame_shift_ms": 10.0,
    "fbank_mean": -4.268,
    "fbank_std": 4.569,
    "patch_size": 16,
    "embed_dim": 768,
    "depth": 12,
    "num_heads": 12,
    "mlp_ratio": 4.0,
    "qkv_bias": True,
    "norm_eps": 1e-6,
    "decoder_dim": 768,
    "decoder_kernel": 3,
    "decoder_groups": 16,
    "decoder_layers": 6,
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
}
# ``tiny``: the CPU workshop size, 128-d x 4 layers like BEATs' tiny (why: the note above
# ``avexlab.models.beats.PRESETS``; EAT-style SSL probe .275 vs random init .225 at this width).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        **_BASE,
        "embed_dim": 128,
        "depth": 4,
        "num_heads": 4,
        "mlp_ratio": 2.0,
        "decoder_dim": 128,
        "decoder_groups": 4,
        "decoder_layers": 2,
    },
    "small": {
        **_BASE,
        "embed_dim": 384,
        "depth": 12,
        "num_heads": 6,
        "decoder_dim": 384,
        "decoder_groups": 8,
    },
    "base": dict(_BASE),
}


@register_encoder("eat", presets=PRESETS)
class EAT(Encoder):
    """EAT encoder with a CLS token (see the module docstring for the pipeline and the differences).

    SSL hooks (:class:`avexlab.models.base.SSLEncoder`:
    ``forward(w, m) == encode(*patchify(*frontend(w, m))[:2])``):
    ``frontend(wave, mask) -> (fbank [B, F, M], frame mask [B, F] | None)`` with F a multiple of 16;
    ``patchify(fbank, frame_mask) -> (tokens [B, N, D] with positions added, token mask, (n_freq, n_time))``;
    ``encode(tokens, mask)`` takes any subset of tokens (e.g. the visible ones) and prepends the CLS token;
    ``encode_with_ffn`` also returns every block's FFN output (the teacher targets);
    ``decode(tokens, grid)`` runs the conv decoder on a full grid.
    """

    has_cls = True

    def __init__(self, **cfg: Any) -> None:
        super().__init__()
        check_config_keys("EAT", cfg, _BASE)
        self.config = dict(cfg)
        self.sample_rate = int(cfg["sample_rate"])
        self.embed_dim = int(cfg["embed_dim"])
        self.num_layers = int(cfg["depth"])
        self.patch = int(cfg["patch_size"])
        self.fbank = KaldiFbank(
            sample_rate=self.sample_rate,
            num_mel_bins=int(cfg["num_mel_bins"]),
            frame_length_ms=float(cfg["frame_length_ms"]),
            frame_shift_ms=float(cfg["frame_shift_ms"]),
            window_type="hanning",
            htk_compat=True,
        )
        d = self.embed_dim
        self.local_encoder = PatchEmbed(self.patch, d)
        self.extra_tokens = nn.Parameter(torch.zeros(1, 1, d))
        self.pre_norm = nn.LayerNorm(d, eps=cfg["norm_eps"])
        self.blocks = nn.ModuleList(
            Block(d, cfg["num_heads"], cfg["mlp_ratio"], cfg) for _ in range(cfg["depth"])
        )
        self.decoder = (
            Decoder2d(
                d, cfg["decoder_dim"], cfg["decoder_kernel"], cfg["decoder_groups"], cfg["decoder_layers"]
            )
            if cfg["decoder_layers"] > 0
            else None
        )
        self._init()

    def _init(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
        w = self.local_encoder.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.trunc_normal_(self.extra_tokens, std=0.02)

    # --- SSL hooks ----------------------------------------------------------------------------------
    def frontend(self, wave: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``wave [B, T]`` float in [-1, 1] -> ``(fbank [B, F, M], frame mask [B, F] | None)``.

        ``F`` is the frame count rounded up to a multiple of ``patch_size``; added and padded frames hold
        the normalised value of 0 (silence in the reference's zero padding) and are True in the mask.
        """
        if padding_mask is None:
            mean = wave.mean(dim=1, keepdim=True)
        else:
            n = valid_lengths(padding_mask).clamp_min(1).unsqueeze(1).to(wave.dtype)
            mean = wave.masked_fill(padding_mask, 0.0).sum(dim=1, keepdim=True) / n
        fb, frame_mask = self.fbank(wave - mean, padding_mask)
        if frame_mask is not None:
            fb = fb.masked_fill(frame_mask.unsqueeze(-1), 0.0)
        extra = (-fb.shape[1]) % self.patch
        if extra:
            fb = F.pad(fb, (0, 0, 0, extra))
            if frame_mask is not None:
                frame_mask = F.pad(frame_mask, (0, extra), value=True)
        fb = (fb - self.config["fbank_mean"]) / (2.0 * self.config["fbank_std"])
        return fb, frame_mask

    def patchify(
        self, fbank: Tensor, frame_padding_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None, tuple[int, int]]:
        """``fbank [B, F, M]`` -> ``(tokens [B, N, D] + positions, token mask [B, N] | None, (n_freq, n_time))``.

        ``N = n_time * n_freq`` time-major (``n_time = F // 16``, ``n_freq = M // 16``); no CLS token.
        """
        x = self.local_encoder(
            fbank.unsqueeze(1).to(self.local_encoder.proj.weight.dtype)
        )  # features are float32; weights may be bf16  # [B, D, n_time, n_freq]
        n_time, n_freq = x.shape[2], x.shape[3]
        x = x.flatten(2).transpose(1, 2)
        x = x + sincos_positions(n_time, n_freq, self.embed_dim, device=x.device).to(x.dtype)
        token_mask = None
        if frame_padding_mask is not None:  # all False when nothing is padded (no host sync)
            t = frame_padding_mask[:, : n_time * self.patch].reshape(-1, n_time, self.patch).all(-1)
            token_mask = t.repeat_interleave(n_freq, dim=1)
        return x, token_mask, (n_freq, n_time)

    def encode_with_ffn(
        self, tokens: Tensor, token_padding_mask: Tensor | None = None
    ) -> tuple[EncoderOutput, list[Tensor]]:
        """Like :meth:`encode`, plus each block's FFN output ``[B, 1 + N, D]`` (CLS first), the pre-residual
        ``mlp(norm1(x))`` that EAT's teacher averages (after instance norm) into targets."""
        b = tokens.shape[0]
        x = torch.cat([self.extra_tokens.expand(b, -1, -1).to(tokens.dtype), tokens], dim=1)
        x = F.dropout(self.pre_norm(x), self.config["dropout"], self.training)
        key_mask = None
        if token_padding_mask is not None:
            keep = F.pad(~token_padding_mask, (1, 0), value=True)  # the CLS token is always real
            key_mask = keep[:, None, None, :]
        hidden, cls, ffn = [], [], []
        for block in self.blocks:
            x, t = block(x, key_mask)
            hidden.append(x[:, 1:])
            cls.append(x[:, 0])
            ffn.append(t)
        out = EncoderOutput(tokens=hidden[-1], hidden_states=hidden, padding_mask=token_padding_mask, cls=cls)
        return out, ffn

    def encode(self, tokens: Tensor, token_padding_mask: Tensor | None = None) -> EncoderOutput:
        """``tokens [B, N, D]`` (positions added; any subset) -> :class:`EncoderOutput` with per-layer CLS."""
        return self.encode_with_ffn(tokens, token_padding_mask)[0]

    def decode(self, tokens: Tensor, grid: tuple[int, int]) -> Tensor:
        """SSL decoder on the full grid: ``tokens [B, n_time * n_freq, D]`` -> ``[B, N, D]``."""
        if self.decoder is None:
            raise ConfigError(
                expected_found(
                    "EAT decoder", "decoder_layers > 0", "decoder_layers=0", "Build with a decoder."
                )
            )
        return self.decoder(tokens, grid)

    def forward(self, wave: Tensor, padding_mask: Tensor | None = None) -> EncoderOutput:
        """``wave [B, T]`` float32 in [-1, 1] at ``sample_rate`` Hz (+ ``padding_mask [B, T]``, True = pad)."""
        tokens, token_mask, _ = self.patchify(*self.frontend(wave, padding_mask))
        return self.encode(tokens, token_mask)

    def set_fast_path(
        self,
        *,
        compile: bool | None = None,
        fullgraph: bool = True,
        mode: str | None = None,
        weights_dtype: torch.dtype | None = None,
    ) -> EAT:
        """``torch.compile`` every block (``nn.Module.compile``: state-dict keys unchanged, ``dynamic=False``).

        ``compile=None`` compiles when the parameters are on CUDA at call time, not on CPU; ``False`` never.
        Attention is already a fused SDPA kernel (flash when no key mask). Cannot be undone; returns ``self``.

        ``weights_dtype`` (e.g. ``torch.bfloat16``, for inference) casts every parameter except the
        fbank's window and mel banks, which stay float32 (the features are computed in float32 and cast
        at the patch embedding): half the weight traffic and no per-call autocast casts. Train in float32
        weights with autocast instead.
        """
        if weights_dtype is not None:  # every parameter but the fbank's float32 window and mel banks
            for name, child in self.named_children():
                if name != "fbank":
                    child.to(weights_dtype)
            self.extra_tokens.data = self.extra_tokens.data.to(weights_dtype)
        if compile is None:
            compile = next(self.parameters()).is_cuda
        if compile:
            for block in self.blocks:
                block.compile(fullgraph=fullgraph, dynamic=False, mode=mode)
        return self


# --- checkpoints -------------------------------------------------------------------------------------
_POSITIONS = "fixed_positional_encoder.positions"


def _check_positions(table: Tensor, dim: int, n_freq: int, where: str) -> None:
    """The checkpoint's fixed table must be EAT's sin-cos (avexlab computes it per clip length)."""
    rows = table.reshape(-1, table.shape[-1])
    n_time = rows.shape[0] // n_freq
    if rows.shape[-1] != dim or n_time == 0:
        raise CheckpointError(
            expected_found(f"{where}: {_POSITIONS}", f"[1, T * {n_freq}, {dim}]", str(tuple(table.shape)), "")
        )
    ours = sincos_positions(n_time, n_freq, dim)
    err = (rows[: n_time * n_freq].float() - ours).abs().max().item()
    if err > 1e-4:
        raise CheckpointError(
            expected_found(
                f"{where}: {_POSITIONS}",
                "EAT's fixed 2-D sin-cos table",
                f"a table differing by up to {err:.3g}",
                "Learned positions are not supported.",
            )
        )


def _arch_from_state(state: Mapping[str, Tensor], base: dict[str, Any], where: str) -> dict[str, Any]:
    cfg = dict(_BASE)
    cfg.update(base)
    if "local_encoder.proj.weight" not in state or "blocks.0.attn.qkv.weight" not in state:
        raise CheckpointError(
            expected_found(
                where,
                "EAT weights ('local_encoder.proj.weight', 'blocks.0.attn.qkv.weight')",
                f"keys such as {sorted(state)[:5]}",
                "Check that the file is an EAT checkpoint.",
            )
        )
    w = state["local_encoder.proj.weight"]
    cfg["embed_dim"], cfg["patch_size"] = int(w.shape[0]), int(w.shape[-1])
    cfg["depth"] = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    cfg["mlp_ratio"] = state["blocks.0.mlp.fc1.weight"].shape[0] / cfg["embed_dim"]
    cfg["qkv_bias"] = "blocks.0.attn.qkv.bias" in state
    dec = sorted({int(k.split(".")[2]) for k in state if k.startswith("decoder.blocks.")})
    cfg["decoder_layers"] = len(dec)
    if dec:
        w0 = state["decoder.blocks.0.0.weight"]
        cfg["decoder_dim"], cfg["decoder_kernel"] = int(w0.shape[0]), int(w0.shape[-1])
        cfg["decoder_groups"] = cfg["embed_dim"] // int(w0.shape[1])
    return cfg


def _build(state: dict[str, Tensor], base: dict[str, Any], where: str) -> EAT:
    for k in [k for k in state if k.startswith(("head.", "fc_norm."))]:
        warnings.warn(f"{where}: fine-tuned EAT; its classifier key {k} is ignored.", stacklevel=3)
        del state[k]
    cfg = _arch_from_state(state, base, where)
    if cfg["embed_dim"] % cfg["num_heads"]:
        raise CheckpointError(
            expected_found(
                f"{where}: num_heads", f"a divisor of embed_dim={cfg['embed_dim']}", str(cfg["num_heads"]), ""
            )
        )
    if _POSITIONS in state:
        _check_positions(
            state.pop(_POSITIONS), cfg["embed_dim"], cfg["num_mel_bins"] // cfg["patch_size"], where
        )
    model = EAT(**cfg)
    load_strict(model, state, where)
    return model


# Pre-training-only parts of a fairseq data2vec-multi checkpoint that an encoder does not hold.
_FAIRSEQ_DROP = ("_ema", "ema.", "cls_proj.", "recon_proj.", "shared_decoder.", "center")


def from_official_checkpoint(ckpt: Mapping[str, Any], source: str = "") -> EAT:
    """Build an :class:`EAT` from an official fairseq checkpoint (``{'cfg': {'model': {...}}, 'model': sd}``).

    Architecture from ``cfg['model']`` (``embed_dim``, ``depth``, ``num_heads``, ``mlp_ratio``,
    ``norm_eps``) checked against the weights; the decoder is kept when present. Dropped: the EMA teacher
    (``_ema``), ``cls_proj``, ``recon_proj``, ``shared_decoder``, ``center`` (pre-training only) and a
    fine-tuned model's classifier (with a warning). Everything else must match exactly.
    """
    where = source or "EAT checkpoint"
    if not isinstance(ckpt, Mapping) or "model" not in ckpt:
        found = f"keys {sorted(ckpt)[:8]}" if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise CheckpointError(expected_found(where, "a fairseq checkpoint with 'model' and 'cfg'", found, ""))
    cfg = ckpt.get("cfg") or {}
    mcfg = dict(cfg.get("model") or {}) if isinstance(cfg, Mapping) else {}
    if mcfg.get("layer_norm_first", False):
        raise CheckpointError(
            expected_found(
                f"{where}: cfg.model.layer_norm_first", "False (post-LN EAT)", "True", "Unsupported."
            )
        )
    state: dict[str, Tensor] = {}
    prefix = "modality_encoders.IMAGE."
    for k, v in dict(ckpt["model"]).items():
        if k.startswith(_FAIRSEQ_DROP):
            continue
        if k.startswith("model."):  # fine-tuned fairseq wrapper
            k = k[len("model.") :]
        if k.startswith(prefix):
            k = k[len(prefix) :]
            k = (
                "pre_norm." + k[len("context_encoder.norm.") :]
                if k.startswith("context_encoder.norm.")
                else k
            )
        state[k] = v
    base = {}
    for key in ("embed_dim", "depth", "num_heads", "mlp_ratio", "norm_eps"):
        if key in mcfg:
            base[key] = mcfg[key]
    if (
        state
        and not any(k.startswith("blocks.") for k in state)
        and any(k.startswith("encoder.") for k in state)
    ):
        raise CheckpointError(
            expected_found(where, "EAT weights", "BEATs-like keys ('encoder.*')", "Use avexlab.models.beats.")
        )
    model = _build(state, base, where)
    for key in ("embed_dim", "depth"):
        if key in mcfg and int(mcfg[key]) != model.config[key]:
            raise CheckpointError(
                expected_found(
                    f"{where}: cfg.model.{key}", f"{model.config[key]} (the weights)", str(mcfg[key]), ""
                )
            )
    return model


def from_hf_state_dict(state_dict: Mapping[str, Tensor], config: dict | None = None, source: str = "") -> EAT:
    """Build an :class:`EAT` from the Hugging Face port's weights (``model.*`` keys, ``config.json`` dict).

    ``config`` supplies ``num_heads`` (not recoverable from shapes), ``norm_eps``, ``mel_bins`` and
    ``patch_size``; without it the base values (12 heads, eps 1e-6, 128 mel) are assumed. The port has no
    decoder, so the model is built with ``decoder_layers=0``.
    """
    where = source or "EAT (Hugging Face) weights"
    state = {(k[len("model.") :] if k.startswith("model.") else k): v for k, v in state_dict.items()}
    config = dict(config or {})
    if config.get("layer_norm_first", False):
        raise CheckpointError(
            expected_found(f"{where}: config.layer_norm_first", "False (post-LN EAT)", "True", "Unsupported.")
        )
    base: dict[str, Any] = {"decoder_layers": 0}
    for ours, theirs in (("num_heads", "num_heads"), ("norm_eps", "norm_eps"), ("num_mel_bins", "mel_bins")):
        if theirs in config:
            base[ours] = config[theirs]
    return _build(state, base, where)


def _is_fairseq_checkpoint(obj: Any) -> bool:
    """fairseq's layout: ``{'cfg': {'model': {...}, ...}, 'model': state_dict}``. Weights are checked when
    loading (a BEATs state dict in this layout is refused there, by name)."""
    if not isinstance(obj, Mapping) or "cfg" not in obj or "model" not in obj:
        return False
    cfg = obj["cfg"]
    return isinstance(cfg, Mapping) and isinstance(cfg.get("model"), Mapping)


@register_checkpoint_reader(
    "an official EAT checkpoint (fairseq: {'cfg': {'model': {...}}, 'model': state dict})",
    recognise=_is_fairseq_checkpoint,
)
def _load_fairseq(obj: Mapping[str, Any], path: Path) -> EAT:
    return from_official_checkpoint(obj, str(path))


HF_CONFIG = "config.json"


def _is_hf_port(path: Path) -> bool:
    """The Hugging Face port's files: a directory holding ``config.json``, that ``config.json`` with one
    ``.safetensors`` beside it, or a ``.safetensors`` file with ``config.json`` beside it."""
    if path.is_dir():
        return (path / HF_CONFIG).is_file()
    if path.name == HF_CONFIG:
        return len(list(path.parent.glob("*.safetensors"))) == 1
    return path.suffix == ".safetensors" and (path.parent / HF_CONFIG).is_file()


@register_checkpoint_reader(
    f"the EAT Hugging Face port ({HF_CONFIG} + model.safetensors)", recognise=_is_hf_port, reads="path"
)
def _load_hf_port(path: Path) -> EAT:
    folder = path if path.is_dir() else path.parent
    weights = (
        [path] if path.is_file() and path.suffix == ".safetensors" else sorted(folder.glob("*.safetensors"))
    )
    if len(weights) != 1:
        found = f"{len(weights)} .safetensors files" if weights else f"{HF_CONFIG} without weights"
        raise CheckpointError(
            expected_found(
                f"{folder}", f"one model.safetensors beside {HF_CONFIG} (Hugging Face port)", found, ""
            )
        )
    config = read_json(folder / HF_CONFIG)
    return from_hf_state_dict(
        read_safetensors(weights[0]), config if isinstance(config, dict) else None, str(weights[0])
    )
