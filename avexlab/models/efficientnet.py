"""EfficientNet-B0 on the reference mel frontend, in plain PyTorch, with torchvision's state-dict layout.

The backbone's parameter and buffer names are exactly torchvision's ``efficientnet_b0``:
``features.0`` (stem conv 3x3/2 + BN + SiLU), ``features.1`` .. ``features.7`` (MBConv stages),
``features.8`` (1x1 head conv to 1280 + BN + SiLU) and, only when ``num_classes`` is set,
``classifier.1`` (``Linear(1280, num_classes)`` after dropout). A torchvision state dict therefore loads
with :func:`avexlab.models.checkpoints.load_strict`; :func:`timm_to_torchvision` and
:func:`torchvision_to_timm` translate timm's ``efficientnet_b0`` names (``conv_stem``, ``bn1``,
``blocks.i.j.*``, ``conv_head``, ``bn2``, ``classifier``).

Input: ``wave`` ``[B, T]`` float32 at ``sample_rate`` Hz -> :class:`avexlab.audio.mel.MelFrontend`
(128 mel x 100 frames/s, min-max to [0, 1]) -> the same image in 3 channels ``[B, 3, 128, F]``
(frequency = height, time = width) -> backbone (total stride 32 in both axes).

Tokens: the last feature map ``[B, 1280, 4, F / 32]`` averaged over frequency -> ``[B, ceil(F / 32), 1280]``
(one token per 320 ms). ``hidden_states[l]`` is stage ``features.l`` averaged over frequency (9 layers;
their widths and token rates differ, so each has its own mask in ``layer_padding_masks``).
Mean pooling of the last layer without padding equals torchvision's global average pool.

Padding: with a padding mask, every spatial operation (the stem and depthwise convolutions, the
squeeze-excitation means) sees zeros beyond each clip's valid frames, exactly like the zero padding the
clip gets when it is run alone, so a clip embeds the same alone or padded inside a batch (eval mode;
in training mode BatchNorm's batch statistics include padded positions, as in the reference).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from avexlab.audio.mel import MelFrontend
from avexlab.errors import CheckpointError, ConfigError, expected_found

from .base import Encoder, EncoderOutput
from .checkpoints import load_strict, state_dict_in
from .registry import register_checkpoint_reader, register_encoder


@dataclass(frozen=True)
class StageSpec:
    """One MBConv stage of EfficientNet-B0 before width/depth scaling."""

    expand_ratio: int
    kernel: int
    stride: int
    in_channels: int
    out_channels: int
    num_blocks: int


def drop_path(x: Tensor, p: float, training: bool) -> Tensor:
    """Stochastic depth per sample (Huang et al. 2016): in training each row of ``x`` is zeroed with
    probability ``p`` and the kept rows are scaled by ``1 / (1 - p)``; identity in eval or at ``p = 0``.
    Draws one Bernoulli per row from the global RNG, like ``torchvision.ops.stochastic_depth(x, p, "row")``,
    so training is bit-identical to it (tested), without importing torchvision with every encoder (1.3 s
    of each process start: 3.8 -> 2.5 s to build an EfficientNet here)."""
    if not training or p == 0.0:
        return x
    keep = 1.0 - p
    mask = torch.empty((x.shape[0],) + (1,) * (x.ndim - 1), dtype=x.dtype, device=x.device).bernoulli_(keep)
    if keep > 0.0:
        mask.div_(keep)
    return x * mask


# EfficientNet-B0 (Tan & Le 2019, table 1), the configuration torchvision builds.
B0_STAGES: tuple[StageSpec, ...] = (
    StageSpec(1, 3, 1, 32, 16, 1),
    StageSpec(6, 3, 2, 16, 24, 2),
    StageSpec(6, 5, 2, 24, 40, 2),
    StageSpec(6, 3, 2, 40, 80, 3),
    StageSpec(6, 5, 1, 80, 112, 3),
    StageSpec(6, 5, 2, 112, 192, 4),
    StageSpec(6, 3, 1, 192, 320, 1),
)


def round_channels(channels: float, divisor: int = 8) -> int:
    """Channel count rounded to a multiple of ``divisor`` (never below it, never more than 10% down);
    the rule torchvision and the original TensorFlow code use for width scaling."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


def _valid_after(lengths: Tensor | None, conv: nn.Conv2d) -> Tensor | None:
    """Valid widths after ``conv`` along time: ``(n + 2p - k) // s + 1`` (zero-padded convolution)."""
    if lengths is None:
        return None
    k, s, p = conv.kernel_size[1], conv.stride[1], conv.padding[1]
    return (lengths + 2 * p - k).div(s, rounding_mode="floor") + 1


def _keep(lengths: Tensor, width: int, dtype: torch.dtype) -> Tensor:
    """``[B, 1, 1, width]`` with 1 on each clip's valid time positions and 0 beyond."""
    return (torch.arange(width, device=lengths.device)[None, :] < lengths[:, None]).to(dtype)[
        :, None, None, :
    ]


class ConvBN(nn.Sequential):
    """``Conv2d`` (no bias, "same" padding) at index 0, ``BatchNorm2d`` at 1, optional SiLU at 2
    (torchvision's ``Conv2dNormActivation`` key layout).

    ``fold_batchnorm`` (set by :meth:`EfficientNetEncoder.set_fast_path`): in eval mode the BatchNorm is
    folded into the convolution at call time (``w * gamma / sqrt(var + eps)``, bias
    ``beta - mean * gamma / sqrt(var + eps)``): one pass over the activations instead of two. The fold
    is recomputed from the current parameters on every call (a few thousand multiplies per layer), so
    it can never be stale after training or loading weights; training mode always runs Conv -> BN."""

    fold_batchnorm: bool = False

    def __init__(self, cin: int, cout: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True):
        layers: list[nn.Module] = [
            nn.Conv2d(cin, cout, kernel, stride, padding=(kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
        ]
        if act:
            layers.append(nn.SiLU(inplace=True))
        super().__init__(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if not self.fold_batchnorm or self.training:
            return super().forward(x)
        conv, bn = self[0], self[1]
        scale = bn.weight * torch.rsqrt(bn.running_var + bn.eps)
        bias = bn.bias - bn.running_mean * scale
        out = nn.functional.conv2d(
            x,
            conv.weight * scale[:, None, None, None],
            bias,
            conv.stride,
            conv.padding,
            conv.dilation,
            conv.groups,
        )
        return self[2](out) if len(self) > 2 else out


class SqueezeExcite(nn.Module):
    """Channel gating: masked mean over (frequency, valid time) -> 1x1 conv -> SiLU -> 1x1 conv -> sigmoid."""

    def __init__(self, channels: int, squeeze: int) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(channels, squeeze, 1)
        self.fc2 = nn.Conv2d(squeeze, channels, 1)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        if lengths is None:
            s = x.mean(dim=(2, 3), keepdim=True)
        else:
            keep = _keep(lengths, x.shape[-1], x.dtype)
            s = (x * keep).sum(dim=(2, 3), keepdim=True) / (keep.sum(dim=-1, keepdim=True) * x.shape[2])
        s = self.fc2(nn.functional.silu(self.fc1(s)))
        return x * torch.sigmoid(s)


class MBConv(nn.Module):
    """Inverted residual block: [1x1 expand] -> kxk depthwise (stride s) -> squeeze-excite -> 1x1 project,
    plus a residual (with stochastic depth in training) when stride is 1 and widths match."""

    def __init__(self, cin: int, cout: int, expand: int, kernel: int, stride: int, drop_prob: float) -> None:
        super().__init__()
        hidden = round_channels(cin * expand)
        layers: list[nn.Module] = []
        if hidden != cin:
            layers.append(ConvBN(cin, hidden, 1))
        layers.append(ConvBN(hidden, hidden, kernel, stride, groups=hidden))
        layers.append(SqueezeExcite(hidden, max(1, cin // 4)))
        layers.append(ConvBN(hidden, cout, 1, act=False))
        self.block = nn.Sequential(*layers)
        self.depthwise_index = len(layers) - 3
        self.use_residual = stride == 1 and cin == cout
        self.drop_prob = drop_prob

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``x`` ``[B, C, H, W]``; ``lengths`` ``[B]`` valid widths (None = all valid). Returns the output
        and its valid widths."""
        out = x
        for i, layer in enumerate(self.block):
            if i == self.depthwise_index:
                if lengths is not None:
                    out = out * _keep(lengths, out.shape[-1], out.dtype)
                out = layer(out)
                lengths = _valid_after(lengths, layer[0])
            elif isinstance(layer, SqueezeExcite):
                out = layer(out, lengths)
            else:
                out = layer(out)
        if self.use_residual:
            out = drop_path(out, self.drop_prob, self.training) + x
        return out, lengths


@register_encoder(
    "efficientnet",
    presets={
        "tiny": {
            "sample_rate": 16000,
            "n_mels": 128,
            "width_mult": 0.25,
            "depth_mult": 0.25,
            "num_classes": None,
            "dropout": 0.2,
            "stochastic_depth_prob": 0.2,
            "channels_last": False,
        },
        "small": {
            "sample_rate": 16000,
            "n_mels": 128,
            "width_mult": 0.5,
            "depth_mult": 0.5,
            "num_classes": None,
            "dropout": 0.2,
            "stochastic_depth_prob": 0.2,
            "channels_last": False,
        },
        "base": {
            "sample_rate": 16000,
            "n_mels": 128,
            "width_mult": 1.0,
            "depth_mult": 1.0,
            "num_classes": None,
            "dropout": 0.2,
            "stochastic_depth_prob": 0.2,
            "channels_last": False,
        },
    },
)
class EfficientNetEncoder(Encoder):
    """EfficientNet (B0 at ``width_mult = depth_mult = 1``) on the reference mel frontend.

    Args:
        sample_rate: input rate in Hz (16000, 32000 or 48000; the frontend keeps 50 ms / 10 ms frames).
        n_mels: mel bins = image height (128 in the reference).
        width_mult: channel multiplier (channels rounded to multiples of 8; 1.0 = B0, head 1280).
        depth_mult: block-count multiplier (``ceil(blocks * depth_mult)`` per stage; 1.0 = B0, 16 blocks).
        num_classes: when set, adds torchvision's head ``classifier = [Dropout, Linear(embed_dim, C)]``
            used by :meth:`classify`; None (default) = backbone only.
        dropout: dropout before the classifier.
        stochastic_depth_prob: drop probability of the last block's residual branch in training
            (linearly increasing from 0 over blocks, as torchvision).
        channels_last: run the backbone in ``torch.channels_last`` memory format (faster on GPU; same
            numerics up to float rounding; the state dict is unchanged).
    """

    def __init__(
        self,
        sample_rate: int = 16000,
        n_mels: int = 128,
        width_mult: float = 1.0,
        depth_mult: float = 1.0,
        num_classes: int | None = None,
        dropout: float = 0.2,
        stochastic_depth_prob: float = 0.2,
        channels_last: bool = False,
    ) -> None:
        super().__init__()
        if width_mult <= 0 or depth_mult <= 0:
            raise ConfigError(
                expected_found(
                    "efficientnet width_mult/depth_mult",
                    "positive multipliers",
                    f"{width_mult}/{depth_mult}",
                    "Use 1.0 for B0.",
                )
            )
        if num_classes is not None and num_classes <= 0:
            raise ConfigError(
                expected_found(
                    "efficientnet num_classes", "None or a positive integer", repr(num_classes), ""
                )
            )
        self.config = {
            "sample_rate": int(sample_rate),
            "n_mels": int(n_mels),
            "width_mult": float(width_mult),
            "depth_mult": float(depth_mult),
            "num_classes": None if num_classes is None else int(num_classes),
            "dropout": float(dropout),
            "stochastic_depth_prob": float(stochastic_depth_prob),
            "channels_last": bool(channels_last),
        }
        self.sample_rate = int(sample_rate)
        self.frontend = MelFrontend(sample_rate, n_mels)

        stages = [
            StageSpec(
                s.expand_ratio,
                s.kernel,
                s.stride,
                round_channels(s.in_channels * width_mult),
                round_channels(s.out_channels * width_mult),
                int(math.ceil(s.num_blocks * depth_mult)),
            )
            for s in B0_STAGES
        ]
        total_blocks = sum(s.num_blocks for s in stages)
        layers: list[nn.Module] = [ConvBN(3, stages[0].in_channels, 3, stride=2)]
        block_id = 0
        for s in stages:
            blocks = []
            for j in range(s.num_blocks):
                blocks.append(
                    MBConv(
                        s.in_channels if j == 0 else s.out_channels,
                        s.out_channels,
                        s.expand_ratio,
                        s.kernel,
                        s.stride if j == 0 else 1,
                        stochastic_depth_prob * block_id / total_blocks,
                    )
                )
                block_id += 1
            layers.append(nn.Sequential(*blocks))
        head = 4 * stages[-1].out_channels
        layers.append(ConvBN(stages[-1].out_channels, head, 1))
        self.features = nn.Sequential(*layers)
        self.classifier = (
            nn.Sequential(nn.Dropout(dropout, inplace=True), nn.Linear(head, num_classes))
            if num_classes is not None
            else None
        )
        self.layer_dims = [stages[0].in_channels, *(s.out_channels for s in stages), head]
        self.embed_dim = head
        self.num_layers = len(self.layer_dims)
        self.channels_last = bool(channels_last)
        self.reset_parameters()
        if self.channels_last:
            self.features.to(memory_format=torch.channels_last)

    def reset_parameters(self) -> None:
        """torchvision's initialisation: Kaiming-normal (fan_out) convolutions, unit BatchNorm, uniform
        ``+-1/sqrt(C)`` classifier. Deterministic under ``torch.manual_seed``."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                bound = 1.0 / math.sqrt(m.out_features)
                nn.init.uniform_(m.weight, -bound, bound)
                nn.init.zeros_(m.bias)

    def set_fast_path(
        self, *, fold_batchnorm: bool = True, channels_last: bool = True, compile: bool | None = None
    ) -> EfficientNetEncoder:
        """Inference speed-ups that keep the state dict (keys and values) unchanged.

        ``fold_batchnorm``: in eval mode fold every BatchNorm into its convolution at call time (see
        :class:`ConvBN`; training mode is unaffected). ``channels_last``: run the backbone in
        ``torch.channels_last`` (with the fold it is the fast CPU path; without it, channels_last alone is
        slower on CPU: benchmarks/RESULTS.md). ``compile``:
        ``torch.compile`` each stage (``None``: only when the parameters are on CUDA). Embeddings equal
        the eager path's to float32 rounding (relative 1e-6). Returns ``self``.
        """
        for m in self.modules():
            if isinstance(m, ConvBN):
                m.fold_batchnorm = bool(fold_batchnorm)
        self.channels_last = bool(channels_last)
        self.features.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        if compile is None:
            compile = next(self.parameters()).is_cuda
        if compile:
            for stage in self.features:
                stage.compile(dynamic=False)
        return self

    def image(self, wave: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """The backbone input ``[B, 3, n_mels, F]`` (the min-max log-mel repeated on 3 channels) and the
        valid frames per clip ``[B]`` (None without a padding mask)."""
        spec, frame_mask = self.frontend(wave, padding_mask)
        x = spec[:, None].expand(-1, 3, -1, -1)
        x = x.contiguous(memory_format=torch.channels_last) if self.channels_last else x.contiguous()
        lengths = None if frame_mask is None else (~frame_mask).sum(dim=1)
        return x, lengths

    def feature_maps(
        self, wave: Tensor, padding_mask: Tensor | None = None
    ) -> tuple[list[Tensor], list[Tensor | None]]:
        """Each stage's output ``[B, C_l, H_l, W_l]`` and its valid widths ``[B]`` (None when unpadded)."""
        x, lengths = self.image(wave, padding_mask)
        maps: list[Tensor] = []
        valid: list[Tensor | None] = []
        last = len(self.features) - 1
        for i, stage in enumerate(self.features):
            if i == 0 or i == last:  # stem (its input is 0 at padded frames) and the pointwise head conv
                x = stage(x)
                lengths = _valid_after(lengths, stage[0])
            else:
                for block in stage:
                    x, lengths = block(x, lengths)
            maps.append(x)
            valid.append(lengths)
        return maps, valid

    def forward(self, wave: Tensor, padding_mask: Tensor | None = None) -> EncoderOutput:
        """``wave`` ``[B, T]`` float32 at ``sample_rate`` Hz, ``padding_mask`` ``[B, T]`` bool (True = padded,
        trailing only). Tokens ``[B, ceil((T // hop + 1) / 32), embed_dim]``, one per 320 ms."""
        maps, valid = self.feature_maps(wave, padding_mask)
        hidden = [m.mean(dim=2).transpose(1, 2) for m in maps]  # [B, W_l, C_l]
        masks: list[Tensor] | None = None
        if valid[-1] is not None:
            masks = [
                torch.arange(h.shape[1], device=h.device)[None, :] >= n[:, None]
                for h, n in zip(hidden, valid, strict=True)
            ]
        return EncoderOutput(
            tokens=hidden[-1],
            hidden_states=hidden,
            padding_mask=None if masks is None else masks[-1],
            layer_padding_masks=masks,
        )

    def classify(self, wave: Tensor, padding_mask: Tensor | None = None) -> Tensor:
        """Logits ``[B, num_classes]`` from the global average pool (padding ignored) and the classifier."""
        if self.classifier is None:
            raise ConfigError(
                expected_found(
                    "EfficientNetEncoder.classify",
                    "an encoder built with num_classes",
                    "num_classes=None",
                    "Build with build_encoder('efficientnet', num_classes=C) or put a probe on embed().",
                )
            )
        out = self(wave, padding_mask)
        return self.classifier(self.pool(out, layer=-1, pooling="mean"))


# ---------------------------------------------------------------------------------------------------------
# timm <-> torchvision key names (timm's ``efficientnet_b0``; not the ``tf_`` variants, whose convolutions use
# TensorFlow's asymmetric "same" padding and give different outputs with the same weights).

_TIMM_BLOCK = re.compile(r"^blocks\.(\d+)\.(\d+)\.(.+)$")
_TV_BLOCK = re.compile(r"^features\.([1-7])\.(\d+)\.block\.(\d+)\.(.+)$")
# timm name inside a block -> (torchvision sub-module index within ``block``, remainder), for blocks
# without an expansion conv (timm DepthwiseSeparableConv) and with one (timm InvertedResidual).
_DS = {"conv_dw": (0, "0"), "bn1": (0, "1"), "se.conv_reduce": (1, "fc1"), "se.conv_expand": (1, "fc2"),
       "conv_pw": (2, "0"), "bn2": (2, "1")}  # fmt: skip
_IR = {"conv_pw": (0, "0"), "bn1": (0, "1"), "conv_dw": (1, "0"), "bn2": (1, "1"), "se.conv_reduce": (2, "fc1"),
       "se.conv_expand": (2, "fc2"), "conv_pwl": (3, "0"), "bn3": (3, "1")}  # fmt: skip
_TOP = {"conv_stem": "features.0.0", "bn1": "features.0.1", "conv_head": "features.8.0", "bn2": "features.8.1",
        "classifier": "classifier.1"}  # fmt: skip


def _has_expansion(keys: set[str], prefix: str) -> bool:
    return any(k.startswith(prefix + "conv_pwl.") for k in keys)


def timm_to_torchvision(state_dict: Mapping[str, Tensor], source: str = "state dict") -> dict[str, Tensor]:
    """Rename a timm ``efficientnet_b0``-style state dict to torchvision's layout (tensors are shared).

    Raises CheckpointError naming ``source`` for a key that has no torchvision counterpart.
    """
    keys = set(state_dict)
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        new = None
        m = _TIMM_BLOCK.match(key)
        if m:
            stage, block, rest = m.groups()
            table = _IR if _has_expansion(keys, f"blocks.{stage}.{block}.") else _DS
            for name, (index, tv_name) in table.items():
                if rest.startswith(name + "."):
                    new = f"features.{int(stage) + 1}.{block}.block.{index}.{tv_name}{rest[len(name) :]}"
                    break
        else:
            top, _, rest = key.partition(".")
            if top in _TOP and rest:
                new = f"{_TOP[top]}.{rest}"
        if new is None:
            raise CheckpointError(
                expected_found(
                    f"{source}: timm EfficientNet key {key!r}",
                    "a key of timm's efficientnet_b0 (conv_stem, bn1, blocks.i.j.*, conv_head, bn2, classifier)",
                    "a name with no torchvision counterpart",
                    "Check that the file is an EfficientNet-B0 checkpoint from timm.",
                )
            )
        out[new] = value
    return out


def torchvision_to_timm(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Rename a torchvision-layout EfficientNet state dict to timm's ``efficientnet_b0`` names."""
    keys = set(state_dict)
    top = {v: k for k, v in _TOP.items()}
    out: dict[str, Tensor] = {}
    for key, value in state_dict.items():
        m = _TV_BLOCK.match(key)
        if m:
            stage, block, index, rest = m.groups()
            prefix = f"features.{stage}.{block}.block."
            expanded = any(k.startswith(prefix + "3.") for k in keys)
            table = _IR if expanded else _DS
            sub, _, tail = rest.partition(".")
            name = next(n for n, (i, tv) in table.items() if i == int(index) and tv == sub)
            out[f"blocks.{int(stage) - 1}.{block}.{name}.{tail}"] = value
        else:
            head, _, tail = key.rpartition(".")
            if head not in top:
                raise CheckpointError(
                    expected_found(
                        f"torchvision EfficientNet key {key!r}",
                        "features.0..8.* or classifier.1.*",
                        "a name outside torchvision's layout",
                        "Pass a torchvision-layout state dict.",
                    )
                )
            out[f"{top[head]}.{tail}"] = value
    return out


def config_from_state_dict(state_dict: Mapping[str, Tensor], source: str = "state dict") -> dict[str, Any]:
    """The ``EfficientNetEncoder`` config that fits a torchvision-layout B0 state dict (``num_classes``
    read from ``classifier.1.weight`` when present). Raises CheckpointError when it is not B0-shaped."""
    stem = state_dict.get("features.0.0.weight")
    head = state_dict.get("features.8.0.weight")
    if stem is None or head is None or tuple(stem.shape) != (32, 3, 3, 3) or head.shape[0] != 1280:
        found = (
            "no stem/head convolution"
            if stem is None or head is None
            else (f"stem {tuple(stem.shape)}, head {tuple(head.shape)}")
        )
        raise CheckpointError(
            expected_found(
                f"{source}: EfficientNet-B0 weights",
                "stem conv (32, 3, 3, 3) and head conv to 1280 channels",
                found,
                "Only EfficientNet-B0 (torchvision or timm efficientnet_b0) state dicts are read this way; "
                "avexlab's own checkpoints carry their config in encoder.json.",
            )
        )
    cls = state_dict.get("classifier.1.weight")
    return {"width_mult": 1.0, "depth_mult": 1.0, "num_classes": None if cls is None else int(cls.shape[0])}


def _is_b0_state_dict(obj: Any) -> bool:
    state_dict = state_dict_in(obj)
    return state_dict is not None and (
        "features.0.0.weight" in state_dict or "conv_stem.weight" in state_dict
    )


@register_checkpoint_reader(
    "EfficientNet-B0 weights (torchvision features.* or timm conv_stem/blocks.*, also under 'state_dict')",
    recognise=_is_b0_state_dict,
)
def _load_b0_state_dict(obj: Any, path: Path) -> EfficientNetEncoder:
    """A torchvision or timm EfficientNet-B0 state dict -> encoder (with ``classifier`` when it has one)."""
    state_dict = state_dict_in(obj) or {}
    if "conv_stem.weight" in state_dict:
        state_dict = timm_to_torchvision(state_dict, str(path))
    encoder = EfficientNetEncoder(**config_from_state_dict(state_dict, str(path)))
    load_strict(encoder, state_dict, path)
    return encoder
