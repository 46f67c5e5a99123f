"""BEATs (iter3 layout) in plain PyTorch, state-dict compatible with Microsoft's official checkpoints.

Pipeline (``forward(wave [B, T] float32 in [-1, 1] at sample_rate Hz, padding_mask [B, T])``)::

    wave x 2^15 -> Kaldi fbank (Povey window, 25 ms / 10 ms, 128 mel)   frontend()  -> [B, F, 128]
    -> (x - 15.41663) / (2 x 6.55582)
    -> Conv2d 16x16 stride 16 (patch_dim ch, no bias) -> time-major tokens  patchify() -> [B, N, D]
    -> LayerNorm(patch_dim) -> Linear(patch_dim -> D)
    -> zero padded tokens, + weight-normed grouped conv positions, LayerNorm  encode()
    -> L post-LN layers (DeepNorm residual scaling alpha = (2L)^0.25, gated relative position bias
       whose bucket table belongs to layer 0 and is shared by all layers)

Token order is time-major: token ``t * n_freq + f`` covers frames ``16t .. 16t+15`` and mel bins
``16f .. 16f+15`` (5 s at 16 kHz -> 498 frames -> 31 x 8 = 248 tokens).

Where avexlab differs from the official code, and why:
- Padding. The official frontend ignores padding (it computes fbank on the padded waveform and maps the
  sample mask to tokens by reshaping, which does not follow the 2-D patch grid). avexlab marks a frame as
  padded when it is not made entirely of real samples and a token as padded when all 16 frames of its time
  patch are padded; padded tokens are zeroed before the positional convolution (as the official encoder
  does) and masked as attention keys. Hence a clip whose frame count is a multiple of 16 embeds the same
  alone or padded inside a batch. Parity with the official code is for unpadded input.
- Attention has two backends that compute the same function (tested against each other), chosen by
  ``attention_backend`` (:meth:`BEATs.set_fast_path`):
  ``"sdpa"``: ``F.scaled_dot_product_attention`` with the gated relative-position bias (and the key
  padding mask) as an additive float mask ``[B, H, N, N]`` built in every layer;
  ``"flex"``: FlexAttention with a ``score_mod`` that adds ``gate[b, h, q] * bias[h, k - q]`` inside the
  kernel, so no ``N x N`` tensor exists (the bias is a ``[H, 2N - 1]`` vector per forward);
  ``"auto"`` (default): flex for CUDA inputs when ``torch.nn.attention.flex_attention`` exists and no
  attention dropout is active, sdpa otherwise (flex has no CPU backward and no attention dropout).
  The official code subtracts the row maximum and scales by 32 for fp16 range; that is the same softmax,
  so results agree to float rounding.
- Relative-position buckets depend only on ``k - q``: they are computed once per sequence length as a
  ``[2N - 1]`` vector (cached), looked up in the shared table once per forward, not per layer.
- No host synchronisation on the forward path (``torch.compile`` friendly): a token padding mask is
  returned whenever a sample padding mask was given, all False when nothing is padded (same numbers as
  None: the attention adds exact zeros and pooling divides by the same count).
- The fbank is batched on the device (:class:`avexlab.audio.fbank.KaldiFbank`), not a per-clip CPU loop.
- Weight norm of the positional convolution is implemented here with parameters ``weight_g`` / ``weight_v``
  so the state-dict keys are the legacy ones on every torch version.
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avexlab.audio.fbank import KaldiFbank
from avexlab.errors import CheckpointError, ConfigError, expected_found

from .base import Encoder, EncoderOutput, check_config_keys
from .checkpoints import load_strict
from .registry import register_checkpoint_reader, register_encoder

__all__ = ["AttentionBackend", "BEATs", "from_official_checkpoint", "relative_position_buckets"]

AttentionBackend = Literal["sdpa", "flex", "auto"]
_BACKENDS = ("sdpa", "flex", "auto")

try:  # FlexAttention: torch >= 2.5
    from torch.nn.attention.flex_attention import flex_attention as _flex_attention
except ImportError:  # pragma: no cover - every torch avexlab supports has it
    _flex_attention = None

_FLEX_COMPILED: Callable[..., Tensor] | None = None


def _flex(q: Tensor, k: Tensor, v: Tensor, score_mod: Callable[..., Tensor]) -> Tensor:
    """FlexAttention: compiled (fused kernel) on CUDA, eager on CPU (unfused; inference only).

    Inside a ``torch.compile`` region the plain function is traced into the surrounding graph.
    """
    global _FLEX_COMPILED
    assert _flex_attention is not None
    if q.is_cuda and not torch.compiler.is_compiling():
        if _FLEX_COMPILED is None:
            _FLEX_COMPILED = torch.compile(_flex_attention, dynamic=False)
        return _FLEX_COMPILED(q, k, v, score_mod=score_mod)
    return _flex_attention(q, k, v, score_mod=score_mod)


class _GradMultiply(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: Tensor, scale: float) -> Tensor:
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad * ctx.scale, None


class WeightNormConv1d(nn.Module):
    """Grouped Conv1d whose weight is ``weight_g * weight_v / ||weight_v||`` (norm over all dims but 2).

    Parameters ``weight_g [1, 1, K]``, ``weight_v [C, C / groups, K]``, ``bias [C]``: the keys torch's legacy
    ``nn.utils.weight_norm(conv, dim=2)`` writes, which the official BEATs checkpoints hold.
    """

    def __init__(self, channels: int, kernel_size: int, groups: int) -> None:
        super().__init__()
        self.padding = kernel_size // 2
        self.groups = groups
        self.weight_v = nn.Parameter(torch.empty(channels, channels // groups, kernel_size))
        self.weight_g = nn.Parameter(torch.empty(1, 1, kernel_size))
        self.bias = nn.Parameter(torch.zeros(channels))
        std = math.sqrt(4.0 / (kernel_size * channels))
        nn.init.normal_(self.weight_v, mean=0.0, std=std)
        with torch.no_grad():
            self.weight_g.copy_(self.weight_v.norm(dim=(0, 1), keepdim=True))

    def weight(self) -> Tensor:
        return self.weight_v * (self.weight_g / self.weight_v.norm(dim=(0, 1), keepdim=True))

    def forward(self, x: Tensor) -> Tensor:
        return F.conv1d(x, self.weight(), self.bias, padding=self.padding, groups=self.groups)


class _SamePad(nn.Module):
    """Drop the last output step of an even-kernel 'same' convolution."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        self.remove = 1 if kernel_size % 2 == 0 else 0

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :, : -self.remove] if self.remove else x


def relative_position_buckets(
    n_query: int, n_key: int, num_buckets: int, max_distance: int, device: torch.device | None = None
) -> Tensor:
    """Bidirectional T5-style buckets ``[n_query, n_key]`` int64 of ``key - query`` positions."""
    rel = torch.arange(n_key, device=device)[None, :] - torch.arange(n_query, device=device)[:, None]
    return _buckets_of(rel, num_buckets, max_distance)


def _buckets_of(rel: Tensor, num_buckets: int, max_distance: int) -> Tensor:
    """T5 bucket (int64) of each relative position ``key - query`` in ``rel`` (any shape)."""
    half = num_buckets // 2
    buckets = (rel > 0).long() * half
    rel = rel.abs()
    max_exact = half // 2
    large = (
        max_exact
        + (
            torch.log(rel.float() / max_exact) / math.log(max_distance / max_exact) * (half - max_exact)
        ).long()
    )
    large = large.clamp_max(half - 1)
    return buckets + torch.where(rel < max_exact, rel, large)


class MultiheadAttention(nn.Module):
    """Self-attention with BEATs' gated relative position bias, through ``scaled_dot_product_attention``.

    Keys as the official ``MultiheadAttention``: ``q_proj``, ``k_proj``, ``v_proj``, ``out_proj``,
    ``relative_attention_bias`` (``Embedding(num_buckets, heads)``, layer 0's shared by all layers),
    ``grep_linear`` (``Linear(head_dim, 8)``) and ``grep_a`` (``[1, H, 1, 1]``).
    """

    def __init__(
        self,
        dim: int,
        heads: int,
        *,
        dropout: float,
        has_relative_bias: bool,
        num_buckets: int,
        max_distance: int,
        gru_rel_pos: bool,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(
                expected_found(
                    "encoder_embed_dim", f"a multiple of heads={heads}", str(dim), "Fix the config."
                )
            )
        self.heads, self.head_dim, self.dropout = heads, dim // heads, dropout
        self.num_buckets, self.max_distance = num_buckets, max_distance
        self.k_proj = nn.Linear(dim, dim)
        self.v_proj = nn.Linear(dim, dim)
        self.q_proj = nn.Linear(dim, dim)
        self.out_proj = nn.Linear(dim, dim)
        self.relative_attention_bias = nn.Embedding(num_buckets, heads) if has_relative_bias else None
        self.gru_rel_pos = gru_rel_pos
        if gru_rel_pos:
            self.grep_linear = nn.Linear(self.head_dim, 8)
            self.grep_a = nn.Parameter(torch.ones(1, heads, 1, 1))

    def position_bias(self, n: int, device: torch.device) -> Tensor:
        """Ungated bias ``[H, n, n]`` from this layer's bucket table."""
        rel = self.relative_bias(n, device)
        return rel[:, _relative_index(n, device)]

    def relative_bias(self, n: int, device: torch.device) -> Tensor:
        """Ungated bias per relative position ``[H, 2n - 1]``: column ``n - 1 + (k - q)`` is the bias of key
        ``k`` for query ``q`` (one table lookup per forward; buckets cached per ``n``)."""
        assert self.relative_attention_bias is not None
        buckets = _relative_buckets_1d(n, self.num_buckets, self.max_distance, device)
        return self.relative_attention_bias(buckets).t()

    def _gate(self, q: Tensor) -> Tensor:
        """Per-query gate ``[B, H, N, 1]`` of the relative bias (official ``gru_rel_pos``)."""
        b, _, n, _ = q.shape
        gates = torch.sigmoid(self.grep_linear(q).view(b, self.heads, n, 2, 4).sum(-1))
        gate_a, gate_b = gates.chunk(2, dim=-1)  # [B, H, N, 1] each
        return gate_a * (gate_b * self.grep_a - 1.0) + 2.0

    def forward(
        self,
        x: Tensor,
        key_padding_mask: Tensor | None,
        pos_bias: Tensor | None,
        backend: Literal["sdpa", "flex"] = "sdpa",
    ) -> Tensor:
        """``x [B, N, D]``, ``key_padding_mask [B, N]`` (True = pad) -> ``[B, N, D]``.

        ``pos_bias``: the ungated bias, ``[H, N, N]`` (:meth:`position_bias`) for ``backend="sdpa"``,
        ``[H, 2N - 1]`` (:meth:`relative_bias`) for ``"flex"``; ``backend`` is resolved (not ``"auto"``).
        """
        b, n, d = x.shape
        q = self.q_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, n, self.heads, self.head_dim).transpose(1, 2)
        if backend == "flex":
            out = self._flex_attention(q, k, v, key_padding_mask, pos_bias)
            return self.out_proj(out.transpose(1, 2).reshape(b, n, d))
        mask = None
        if pos_bias is not None:
            mask = pos_bias.unsqueeze(0).to(q.dtype)  # [1, H, N, N]
            if self.gru_rel_pos:
                mask = self._gate(q) * mask
        if key_padding_mask is not None:
            neg = torch.zeros(b, 1, 1, n, dtype=q.dtype, device=x.device)
            neg = neg.masked_fill(key_padding_mask[:, None, None, :], float("-inf"))
            mask = neg if mask is None else mask + neg
        out = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0
        )
        return self.out_proj(out.transpose(1, 2).reshape(b, n, d))

    def _flex_attention(
        self, q: Tensor, k: Tensor, v: Tensor, key_padding_mask: Tensor | None, rel_bias: Tensor | None
    ) -> Tensor:
        """The same attention as the sdpa path, with the gated bias added inside the kernel."""
        if self.training and self.dropout > 0.0:
            raise ConfigError(
                expected_found(
                    "attention_backend='flex'",
                    "attention_dropout == 0 while training (FlexAttention has no attention dropout)",
                    f"attention_dropout={self.dropout}",
                    "Use attention_backend='sdpa' or 'auto' (which picks sdpa here).",
                )
            )
        n = q.shape[2]
        gate = self._gate(q)[..., 0] if (rel_bias is not None and self.gru_rel_pos) else None  # [B, H, N]
        offset = n - 1

        def score_mod(score: Tensor, b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
            if rel_bias is not None:
                bias = rel_bias[h, kv_idx - q_idx + offset]
                score = score + (bias if gate is None else gate[b, h, q_idx] * bias)
            if key_padding_mask is not None:
                score = torch.where(key_padding_mask[b, kv_idx], float("-inf"), score)
            return score

        return _flex(q, k, v, score_mod)


_CACHE_SIZE = 16  # sequence lengths kept per cache (a [N, N] index of 10 s clips is 2 MiB)
_CACHE: OrderedDict[tuple[Any, ...], Tensor] = OrderedDict()


def _cached(key: tuple[Any, ...], make: Callable[[], Tensor]) -> Tensor:
    """``make()`` memoised by ``key`` (least recently used evicted); traced afresh inside torch.compile."""
    if torch.compiler.is_compiling():  # becomes a constant of the graph; no Python-side state
        return make()
    if key in _CACHE:
        _CACHE.move_to_end(key)
    else:
        _CACHE[key] = make()
        if len(_CACHE) > _CACHE_SIZE:
            _CACHE.popitem(last=False)
    return _CACHE[key]


def _relative_buckets_1d(n: int, num_buckets: int, max_distance: int, device: torch.device) -> Tensor:
    """Buckets ``[2n - 1]`` int64 of relative positions ``-(n - 1) .. n - 1``, cached per length/device."""
    return _cached(
        ("buckets", n, num_buckets, max_distance, str(device)),
        lambda: _buckets_of(torch.arange(1 - n, n, device=device), num_buckets, max_distance),
    )


def _relative_index(n: int, device: torch.device) -> Tensor:
    """``[n, n]`` int64 with ``k - q + n - 1`` at ``[q, k]`` (column of :meth:`relative_bias`), cached."""

    def make() -> Tensor:
        ar = torch.arange(n, device=device)
        return ar[None, :] - ar[:, None] + (n - 1)

    return _cached(("index", n, str(device)), make)


class EncoderLayer(nn.Module):
    """Post-LN transformer layer with DeepNorm residual scaling (official ``TransformerSentenceEncoderLayer``)."""

    def __init__(
        self,
        dim: int,
        ffn_dim: int,
        heads: int,
        *,
        deep_norm_alpha: float,
        dropout: float,
        attention_dropout: float,
        activation_dropout: float,
        has_relative_bias: bool,
        num_buckets: int,
        max_distance: int,
        gru_rel_pos: bool,
    ) -> None:
        super().__init__()
        self.self_attn = MultiheadAttention(
            dim,
            heads,
            dropout=attention_dropout,
            has_relative_bias=has_relative_bias,
            num_buckets=num_buckets,
            max_distance=max_distance,
            gru_rel_pos=gru_rel_pos,
        )
        self.self_attn_layer_norm = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, ffn_dim)
        self.fc2 = nn.Linear(ffn_dim, dim)
        self.final_layer_norm = nn.LayerNorm(dim)
        self.alpha = deep_norm_alpha
        self.dropout, self.activation_dropout = dropout, activation_dropout

    def forward(
        self,
        x: Tensor,
        key_padding_mask: Tensor | None,
        pos_bias: Tensor | None,
        backend: Literal["sdpa", "flex"] = "sdpa",
    ) -> Tensor:
        h = F.dropout(self.self_attn(x, key_padding_mask, pos_bias, backend), self.dropout, self.training)
        x = self.self_attn_layer_norm(x * self.alpha + h)
        h = F.dropout(F.gelu(self.fc1(x)), self.activation_dropout, self.training)
        h = F.dropout(self.fc2(h), self.dropout, self.training)
        return self.final_layer_norm(x * self.alpha + h)


class TransformerEncoder(nn.Module):
    """Positional conv + LayerNorm + layers; keys as the official ``encoder.*``."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        super().__init__()
        dim, layers = cfg["encoder_embed_dim"], cfg["encoder_layers"]
        self.pos_conv = nn.Sequential(
            WeightNormConv1d(dim, cfg["conv_pos"], cfg["conv_pos_groups"]),
            _SamePad(cfg["conv_pos"]),
            nn.GELU(),
        )
        alpha = math.pow(2.0 * layers, 0.25) if cfg["deep_norm"] else 1.0
        self.layers = nn.ModuleList(
            EncoderLayer(
                dim,
                cfg["encoder_ffn_embed_dim"],
                cfg["encoder_attention_heads"],
                deep_norm_alpha=alpha,
                dropout=cfg["dropout"],
                attention_dropout=cfg["attention_dropout"],
                activation_dropout=cfg["activation_dropout"],
                has_relative_bias=cfg["relative_position_embedding"],
                num_buckets=cfg["num_buckets"],
                max_distance=cfg["max_distance"],
                gru_rel_pos=cfg["gru_rel_pos"],
            )
            for _ in range(layers)
        )
        if cfg["relative_position_embedding"]:
            shared = self.layers[0].self_attn.relative_attention_bias
            for layer in self.layers[1:]:
                layer.self_attn.relative_attention_bias = shared  # one table, every layer's key (official)
        self.layer_norm = nn.LayerNorm(dim)
        self.dropout = cfg["dropout"]
        self.attention_dropout = float(cfg["attention_dropout"])
        self.grad_decay = float(cfg["layer_wise_gradient_decay_ratio"])
        self.attention_backend: AttentionBackend = "auto"
        self._init(cfg)

    def resolve_backend(self, x: Tensor) -> Literal["sdpa", "flex"]:
        """The backend ``attention_backend`` means for input ``x`` (see the module docstring)."""
        if self.attention_backend == "flex":
            if _flex_attention is None:  # pragma: no cover - torch < 2.5
                raise ConfigError(
                    expected_found(
                        "attention_backend='flex'",
                        "torch >= 2.5 (torch.nn.attention.flex_attention)",
                        f"torch {torch.__version__}",
                        "Use 'sdpa' or 'auto'.",
                    )
                )
            return "flex"
        if self.attention_backend == "sdpa":
            return "sdpa"
        dropout_active = self.training and self.attention_dropout > 0.0
        return "flex" if (x.is_cuda and _flex_attention is not None and not dropout_active) else "sdpa"

    def _init(self, cfg: dict[str, Any]) -> None:
        for m in self.modules():  # BERT init (official init_bert_params)
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Embedding):
                nn.init.normal_(m.weight, std=0.02)
        if cfg["deep_norm"]:
            beta = math.pow(8.0 * cfg["encoder_layers"], -0.25)
            for layer in self.layers:
                a = layer.self_attn
                for lin, gain in ((a.k_proj, 1.0), (a.v_proj, beta), (a.q_proj, 1.0), (a.out_proj, beta)):
                    nn.init.xavier_normal_(lin.weight, gain=gain)
                nn.init.xavier_normal_(layer.fc1.weight, gain=beta)
                nn.init.xavier_normal_(layer.fc2.weight, gain=beta)

    def forward(self, x: Tensor, padding_mask: Tensor | None) -> list[Tensor]:
        """``x [B, N, D]``, ``padding_mask [B, N]`` -> per-layer outputs, each ``[B, N, D]``."""
        if padding_mask is not None:
            x = x.masked_fill(padding_mask.unsqueeze(-1), 0.0)
        x = x + self.pos_conv(x.transpose(1, 2)).transpose(1, 2)
        x = F.dropout(self.layer_norm(x), self.dropout, self.training)
        key_mask = padding_mask
        if key_mask is not None:
            key_mask = key_mask & ~key_mask.all(dim=1, keepdim=True)  # an all-padding clip attends to all
        backend = self.resolve_backend(x)
        pos_bias = None  # ungated, shared by all layers: [H, 2N - 1] for flex, [H, N, N] for sdpa
        first = self.layers[0].self_attn
        if first.relative_attention_bias is not None:
            pos_bias = first.relative_bias(x.shape[1], x.device)
            if backend == "sdpa":
                pos_bias = pos_bias[:, _relative_index(x.shape[1], x.device)]
        out = []
        for layer in self.layers:
            if self.grad_decay != 1.0:
                x = _GradMultiply.apply(x, self.grad_decay)
            x = layer(x, key_mask, pos_bias, backend)
            out.append(x)
        return out


_BASE = {
    "sample_rate": 16000,
    "num_mel_bins": 128,
    "frame_length_ms": 25.0,
    "frame_shift_ms": 10.0,
    "fbank_mean": 15.41663,
    "fbank_std": 6.55582,
    "input_patch_size": 16,
    "patch_dim": 512,
    "conv_bias": False,
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "deep_norm": True,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "relative_position_embedding": True,
    "num_buckets": 320,
    "max_distance": 800,
    "gru_rel_pos": True,
    "layer_wise_gradient_decay_ratio": 1.0,
    "dropout": 0.0,
    "attention_dropout": 0.0,
    "activation_dropout": 0.0,
    "dropout_input": 0.0,
}
# ``tiny``: the CPU workshop size (~0.6 M parameters). 128-d x 4 layers rather than 64-d x 2: at the smaller
# size SSL-only runs stayed level with random init on the quick world (benchmarks/RESULTS.md, "Design
# measurements", tiny transformer presets).
PRESETS: dict[str, dict[str, Any]] = {
    "tiny": {
        **_BASE,
        "patch_dim": 64,
        "encoder_layers": 4,
        "encoder_embed_dim": 128,
        "encoder_ffn_embed_dim": 256,
        "encoder_attention_heads": 4,
        "conv_pos": 16,
        "conv_pos_groups": 4,
    },
    "small": {
        **_BASE,
        "encoder_layers": 6,
        "encoder_embed_dim": 384,
        "encoder_ffn_embed_dim": 1536,
        "encoder_attention_heads": 6,
    },
    "base": dict(_BASE),
}


@register_encoder("beats", presets=PRESETS)
class BEATs(Encoder):
    """BEATs encoder (see the module docstring for the pipeline and where avexlab differs).

    Every keyword is architecture config (``self.config``); ``sample_rate`` also sets the fbank's mel
    range (20 Hz .. sr / 2). Official-checkpoint key names: ``patch_embedding``, ``layer_norm``,
    ``post_extract_proj``, ``encoder.pos_conv.0.weight_g|weight_v|bias``, ``encoder.layer_norm``,
    ``encoder.layers.{i}.self_attn.*|self_attn_layer_norm|fc1|fc2|final_layer_norm``.

    SSL hooks (:class:`avexlab.models.base.SSLEncoder`:
    ``forward(w, m) == encode(*patchify(*frontend(w, m))[:2])``):
    ``frontend`` -> normalised fbank and frame mask, ``patchify`` -> projected tokens (BEATs adds no
    positions before the encoder: its conv positions are inside ``encode``), ``encode`` -> layers.

    Speed: :meth:`set_fast_path` picks the attention backend (default ``"auto"``) and compiles the layers.
    Neither changes the architecture config nor the state dict.
    """

    has_cls = False

    def __init__(self, **cfg: Any) -> None:
        super().__init__()
        check_config_keys("BEATs", cfg, _BASE)
        self.config = dict(cfg)
        self.sample_rate = int(cfg["sample_rate"])
        self.embed_dim = int(cfg["encoder_embed_dim"])
        self.num_layers = int(cfg["encoder_layers"])
        p = int(cfg["input_patch_size"])
        if cfg["num_mel_bins"] < p:
            raise ConfigError(
                expected_found("num_mel_bins", f">= input_patch_size ({p})", str(cfg["num_mel_bins"]), "")
            )
        self.patch = p
        self.fbank = KaldiFbank(
            sample_rate=self.sample_rate,
            num_mel_bins=int(cfg["num_mel_bins"]),
            frame_length_ms=float(cfg["frame_length_ms"]),
            frame_shift_ms=float(cfg["frame_shift_ms"]),
            window_type="povey",
        )
        self.patch_embedding = nn.Conv2d(1, cfg["patch_dim"], kernel_size=p, stride=p, bias=cfg["conv_bias"])
        self.layer_norm = nn.LayerNorm(cfg["patch_dim"])
        self.post_extract_proj = (
            nn.Linear(cfg["patch_dim"], self.embed_dim) if cfg["patch_dim"] != self.embed_dim else None
        )
        self.encoder = TransformerEncoder(cfg)

    # --- SSL hooks ----------------------------------------------------------------------------------
    def frontend(self, wave: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``wave [B, T]`` float in [-1, 1] -> ``(fbank [B, F, M] normalised, frame mask [B, F] | None)``.

        ``F = 1 + (T - 25 ms) // 10 ms`` frames; a frame is padded unless all its samples are real.
        """
        fb, frame_mask = self.fbank(wave * 32768.0, padding_mask)
        fb = (fb - self.config["fbank_mean"]) / (2.0 * self.config["fbank_std"])
        return fb, frame_mask

    def patchify(
        self, fbank: Tensor, frame_padding_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None, tuple[int, int]]:
        """``fbank [B, F, M]`` -> ``(tokens [B, N, D], token mask [B, N] | None, (n_freq, n_time))``.

        ``N = n_time * n_freq`` with ``n_time = F // 16`` and ``n_freq = M // 16``, time-major. Tokens are
        patch conv -> LayerNorm -> Linear (no positions). A token is padded when all frames of its time
        patch are padded; the token mask is None exactly when ``frame_padding_mask`` is None.
        """
        if fbank.shape[1] < self.patch:
            raise ConfigError(
                expected_found(
                    "clip length",
                    f">= {self.patch} fbank frames (about {(self.patch - 1) * 10 + 25} ms)",
                    f"{fbank.shape[1]} frames",
                    "Pad short clips (with a padding mask) before embedding.",
                )
            )
        x = self.patch_embedding(
            fbank.unsqueeze(1).to(self.patch_embedding.weight.dtype)
        )  # features are float32; weights may be bf16  # [B, C, n_time, n_freq]
        n_time, n_freq = x.shape[2], x.shape[3]
        x = self.layer_norm(x.flatten(2).transpose(1, 2))
        if self.post_extract_proj is not None:
            x = self.post_extract_proj(x)
        x = F.dropout(x, self.config["dropout_input"], self.training)
        token_mask = None
        if frame_padding_mask is not None:  # all False when nothing is padded (no host sync)
            t = frame_padding_mask[:, : n_time * self.patch].reshape(-1, n_time, self.patch).all(-1)
            token_mask = t.repeat_interleave(n_freq, dim=1)
        return x, token_mask, (n_freq, n_time)

    def encode(self, tokens: Tensor, token_padding_mask: Tensor | None = None) -> EncoderOutput:
        """``tokens [B, N, D]`` (any subset, in time-major order) -> :class:`EncoderOutput` of every layer."""
        hidden = self.encoder(tokens, token_padding_mask)
        return EncoderOutput(tokens=hidden[-1], hidden_states=hidden, padding_mask=token_padding_mask)

    def forward(self, wave: Tensor, padding_mask: Tensor | None = None) -> EncoderOutput:
        """``wave [B, T]`` float32 in [-1, 1] at ``sample_rate`` Hz (+ ``padding_mask [B, T]``, True = pad)."""
        tokens, token_mask, _ = self.patchify(*self.frontend(wave, padding_mask))
        return self.encode(tokens, token_mask)

    # --- speed --------------------------------------------------------------------------------------
    @property
    def attention_backend(self) -> AttentionBackend:
        """``"sdpa"``, ``"flex"`` or ``"auto"`` (the default; see the module docstring)."""
        return self.encoder.attention_backend

    def set_fast_path(
        self,
        *,
        attention_backend: AttentionBackend = "auto",
        compile: bool | None = None,
        fullgraph: bool = True,
        mode: str | None = None,
        weights_dtype: torch.dtype | None = None,
    ) -> BEATs:
        """Choose the attention backend and (optionally) ``torch.compile`` every transformer layer.

        ``compile=None`` compiles when the parameters are on CUDA at call time (move the model first) and
        not on CPU, where compiling costs more than it saves for short runs; ``compile=False`` never
        compiles. Layers are compiled one by one (``nn.Module.compile``, ``dynamic=False``, ``fullgraph``),
        so the state-dict keys do not change; the frontend stays eager (it is one batched FFT). Compiling
        cannot be undone on this instance. Returns ``self``.

        ``weights_dtype`` (e.g. ``torch.bfloat16``, for inference) casts every parameter except the
        fbank's window and mel banks, which stay float32 (the features are computed in float32 and cast
        at the patch embedding): half the weight traffic and no per-call autocast casts. Train in float32
        weights with autocast instead.
        """
        if attention_backend not in _BACKENDS:
            raise ConfigError(
                expected_found(
                    "attention_backend", f"one of {_BACKENDS}", repr(attention_backend), "Fix the argument."
                )
            )
        self.encoder.attention_backend = attention_backend
        if weights_dtype is not None:  # every parameter but the fbank's float32 window and mel banks
            for name, child in self.named_children():
                if name != "fbank":
                    child.to(weights_dtype)
        if compile is None:
            compile = next(self.parameters()).is_cuda
        if compile:
            for layer in self.encoder.layers:
                layer.compile(fullgraph=fullgraph, dynamic=False, mode=mode)
        return self


# Official BEATsConfig field -> avexlab keyword (the rest of the official fields are train-time only).
_OFFICIAL_FIELDS = {
    "input_patch_size": "input_patch_size",
    "embed_dim": "patch_dim",
    "conv_bias": "conv_bias",
    "encoder_layers": "encoder_layers",
    "encoder_embed_dim": "encoder_embed_dim",
    "encoder_ffn_embed_dim": "encoder_ffn_embed_dim",
    "encoder_attention_heads": "encoder_attention_heads",
    "deep_norm": "deep_norm",
    "conv_pos": "conv_pos",
    "conv_pos_groups": "conv_pos_groups",
    "relative_position_embedding": "relative_position_embedding",
    "num_buckets": "num_buckets",
    "relative_position_buckets": "num_buckets",
    "max_distance": "max_distance",
    "gru_rel_pos": "gru_rel_pos",
    "layer_wise_gradient_decay_ratio": "layer_wise_gradient_decay_ratio",
}
# Defaults of the official BEATsConfig, used when a checkpoint's cfg omits a field.
_OFFICIAL_DEFAULTS = {
    "embed_dim": 512,
    "conv_bias": False,
    "encoder_layers": 12,
    "encoder_embed_dim": 768,
    "encoder_ffn_embed_dim": 3072,
    "encoder_attention_heads": 12,
    "deep_norm": False,
    "conv_pos": 128,
    "conv_pos_groups": 16,
    "relative_position_embedding": False,
    "num_buckets": 320,
    "max_distance": 1280,
    "gru_rel_pos": False,
    "layer_wise_gradient_decay_ratio": 1.0,
}


def config_from_official(cfg: Mapping[str, Any], source: str = "") -> dict[str, Any]:
    """avexlab BEATs keywords from an official ``BEATsConfig`` dict (16 kHz frontend, dropouts off)."""
    where = source or "BEATs checkpoint"
    if "input_patch_size" not in cfg:
        raise CheckpointError(
            expected_found(
                f"{where}: cfg", "a BEATsConfig with 'input_patch_size'", f"keys {sorted(cfg)[:12]}", ""
            )
        )
    for key, ok in (("layer_norm_first", False), ("activation_fn", "gelu")):
        if key in cfg and cfg[key] != ok:
            raise CheckpointError(
                expected_found(
                    f"{where}: cfg[{key!r}]",
                    repr(ok) + " (the iter3 layout avexlab implements)",
                    repr(cfg[key]),
                    "This BEATs variant is not supported.",
                )
            )
    out = dict(_BASE)
    for field, key in _OFFICIAL_FIELDS.items():
        if field in cfg:
            out[key] = cfg[field]
        elif field in _OFFICIAL_DEFAULTS:
            out[key] = _OFFICIAL_DEFAULTS[field]
    for key in ("conv_bias", "deep_norm", "relative_position_embedding", "gru_rel_pos"):
        out[key] = bool(out[key])
    out["layer_wise_gradient_decay_ratio"] = float(out["layer_wise_gradient_decay_ratio"])
    return out


def from_official_checkpoint(ckpt: Mapping[str, Any], source: str = "") -> BEATs:
    """Build a :class:`BEATs` from an official checkpoint ``{'cfg': {...}, 'model': state_dict}``.

    Any size the cfg describes. A fine-tuned checkpoint's ``predictor.*`` head is dropped with a warning
    (avexlab encoders return tokens, not AudioSet logits). Keys are matched strictly otherwise.
    Raises CheckpointError naming ``source`` for files of another architecture or with wrong keys.
    """
    where = source or "BEATs checkpoint"
    if not isinstance(ckpt, Mapping) or "model" not in ckpt or "cfg" not in ckpt:
        found = f"keys {sorted(ckpt)[:8]}" if isinstance(ckpt, Mapping) else type(ckpt).__name__
        raise CheckpointError(
            expected_found(where, "an official BEATs checkpoint {'cfg': ..., 'model': ...}", found, "")
        )
    state = dict(ckpt["model"])
    cfg = ckpt["cfg"]
    if not isinstance(cfg, Mapping):
        cfg = dict(getattr(cfg, "__dict__", {}))
    if not any(k.startswith("encoder.layers.") for k in state):
        hint = ""
        if any(k.startswith(("modality_encoders.", "blocks.", "model.blocks.")) for k in state):
            hint = " It looks like an EAT checkpoint: use avexlab.models.eat."
        elif any(k.startswith("quantize") for k in state):
            hint = " It looks like a BEATs tokenizer, not the encoder."
        raise CheckpointError(
            expected_found(
                where, "BEATs weights ('encoder.layers.*')", f"keys such as {sorted(state)[:5]}", hint.strip()
            )
        )
    head = [k for k in state if k.startswith("predictor.")]
    if head:
        warnings.warn(
            f"{where}: fine-tuned BEATs; its predictor head ({', '.join(sorted(head))}) is ignored.",
            stacklevel=2,
        )
        for k in head:
            del state[k]
    model = BEATs(**config_from_official(cfg, source))
    load_strict(model, state, where)
    return model


def _is_official_checkpoint(obj: Any) -> bool:
    """BEATs' layout: ``{'cfg', 'model'}`` with the BEATsConfig fields at the top of ``cfg`` (fairseq
    checkpoints, EAT's among them, nest theirs under ``cfg['model']``). Weights are checked when loading."""
    if not isinstance(obj, Mapping) or "cfg" not in obj or "model" not in obj:
        return False
    cfg = obj["cfg"]
    return not (isinstance(cfg, Mapping) and isinstance(cfg.get("model"), Mapping))


@register_checkpoint_reader(
    "an official BEATs checkpoint ({'cfg': BEATsConfig fields, 'model': state dict})",
    recognise=_is_official_checkpoint,
)
def _load_official(obj: Mapping[str, Any], path: Path) -> BEATs:
    return from_official_checkpoint(obj, str(path))
