"""The encoder contract every architecture implements.

An encoder takes raw waveforms ``[B, T]`` float32 at ``sample_rate`` Hz (plus an optional padding mask
``[B, T]`` bool, True = padded sample), owns its frontend, and returns an :class:`EncoderOutput`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from avexlab.errors import ConfigError, expected_found

Pooling = Literal["mean", "max", "cls"]


@dataclass
class EncoderOutput:
    """What ``encoder(wave, padding_mask)`` returns.

    Attributes:
        tokens: ``[B, N, D]`` last-layer tokens (a CLS token, where the model has one, is NOT included;
            it is in ``cls``).
        hidden_states: one ``[B, N, D_l]`` tensor per layer, ``len == encoder.num_layers``;
            ``hidden_states[-1] is tokens``.
        padding_mask: ``[B, N]`` bool, True where a token covers only padding; None when no padding mask
            was given (all False when one was given but nothing is padded).
        cls: per-layer CLS tokens ``[B, D]`` (one per layer) for models with a CLS token, else None.
        layer_padding_masks: for models whose layers have different token counts (a CNN's stages: ``[B, N_l]``
            per layer, ``layer_padding_masks[-1] is padding_mask``); None when every layer has the same N and
            ``padding_mask`` applies to all of them (transformers), or when nothing is padded.
    """

    tokens: Tensor
    hidden_states: list[Tensor]
    padding_mask: Tensor | None = None
    cls: list[Tensor] | None = None
    layer_padding_masks: list[Tensor] | None = None

    def mask_of(self, layer: int) -> Tensor | None:
        """The ``[B, N_layer]`` padding mask of ``hidden_states[layer]`` (None when nothing is padded)."""
        if self.layer_padding_masks is not None:
            return self.layer_padding_masks[layer]
        return self.padding_mask


def masked_pool(x: Tensor, padding_mask: Tensor | None, pooling: Literal["mean", "max"]) -> Tensor:
    """Pool ``[B, N, D]`` over N ignoring padded tokens (``padding_mask`` ``[B, N]``, True = pad)."""
    if padding_mask is None:
        return x.mean(dim=1) if pooling == "mean" else x.amax(dim=1)
    keep = (~padding_mask).unsqueeze(-1).to(x.dtype)
    if pooling == "mean":
        return (x * keep).sum(dim=1) / keep.sum(dim=1).clamp_min(1.0)
    neg = torch.finfo(x.dtype).min
    return x.masked_fill(padding_mask.unsqueeze(-1), neg).amax(dim=1)


def check_config_keys(arch: str, cfg: dict[str, Any], expected: dict[str, Any]) -> None:
    """Raise ConfigError unless ``cfg`` has exactly the keys of ``expected`` (an architecture's base preset)."""
    unknown = sorted(set(cfg) - set(expected))
    missing = sorted(set(expected) - set(cfg))
    if unknown or missing:
        raise ConfigError(
            expected_found(
                f"{arch} config",
                f"exactly the keys {sorted(expected)}",
                f"unknown {unknown}, missing {missing}",
                f"Start from a preset: build_encoder({arch.lower()!r}, size=..., **overrides).",
            )
        )


class Encoder(nn.Module, abc.ABC):
    """Base class: subclasses set ``name``, build their modules in ``__init__`` from keyword config, and
    implement ``forward``. ``config`` must hold every keyword needed to rebuild the same architecture."""

    name: ClassVar[str] = "encoder"
    has_cls: ClassVar[bool] = False
    #: False for a released model that avexlab runs as it is (BirdNET through LiteRT): it has no torch
    #: parameters, so the trainer refuses it; it is evaluated frozen like any other encoder.
    trainable: ClassVar[bool] = True

    def __init__(self) -> None:
        super().__init__()
        self.config: dict[str, Any] = {}
        self.sample_rate: int = 16000
        self.embed_dim: int = 0
        self.num_layers: int = 0

    @abc.abstractmethod
    def forward(self, wave: Tensor, padding_mask: Tensor | None = None) -> EncoderOutput:
        """``wave [B, T]`` float32 at ``sample_rate`` Hz (+ padding mask ``[B, T]``, True = pad)."""

    @torch.no_grad()
    def embed(
        self,
        wave: Tensor,
        padding_mask: Tensor | None = None,
        layer: int = -1,
        pooling: Pooling = "mean",
    ) -> Tensor:
        """Clip embeddings ``[B, D_layer]`` from one layer (default the last), pooled over tokens."""
        out = self(wave, padding_mask)
        return self.pool(out, layer=layer, pooling=pooling)

    def pool(self, out: EncoderOutput, layer: int = -1, pooling: Pooling = "mean") -> Tensor:
        n = len(out.hidden_states)
        if not -n <= layer < n:
            raise IndexError(f"layer {layer} out of range: {self.name} has {n} layers (use -{n}..{n - 1}).")
        if pooling == "cls":
            if out.cls is None:
                raise ValueError(
                    f"pooling='cls' needs a CLS token; {self.name} has none. Use 'mean' or 'max'."
                )
            return out.cls[layer]
        if pooling not in ("mean", "max"):
            raise ValueError(f"pooling must be 'mean', 'max' or 'cls', got {pooling!r}.")
        return masked_pool(out.hidden_states[layer], out.mask_of(layer), pooling)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def checkpoint_id(self) -> str | None:
        """What weights this encoder runs when they are not in its state dict (a released model file that
        another package ships), as a readable name with the file's SHA-256; the results table's
        ``checkpoint`` column shows it and the embedding cache keys on it. None (the default): the weights
        are the state dict, identified by its hash."""
        return None

    def flops_per_clip(self, seconds: float = 5.0) -> int:
        """Forward FLOPs (2 x multiply-adds) for one clip of ``seconds``, counted by torch's FLOP counter.

        Attention runs through the math SDPA backend while counting: the fused CPU kernels are invisible
        to the counter (BEATs-base would read 44.8 instead of 47.1 GFLOP per 5 s)."""
        from torch.nn.attention import SDPBackend, sdpa_kernel
        from torch.utils.flop_counter import FlopCounterMode

        tensors = [*self.parameters(), *self.buffers()]
        device = tensors[0].device if tensors else torch.device("cpu")  # a non-learned encoder may hold none
        wave = torch.zeros(1, int(round(seconds * self.sample_rate)), device=device)
        was_training = self.training
        self.eval()
        with torch.no_grad(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
            self(wave)
        self.train(was_training)
        return int(counter.get_total_flops())
