"""The encoder contract every architecture implements.

An encoder takes raw waveforms ``[B, T]`` float32 at ``sample_rate`` Hz (plus an optional padding mask
``[B, T]`` bool, True = padded sample), owns its frontend, and returns an :class:`EncoderOutput`. Encoders
that can be trained by the SSL objectives also implement the three steps of ``forward`` apart
(:class:`SSLEncoder`).
"""

from __future__ import annotations

import abc
import inspect
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

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


@runtime_checkable
class SSLEncoder(Protocol):
    """The hooks an encoder provides so that the SSL objectives (``avexlab.train.objectives``) can hide tokens
    from it: its ``forward`` cut into three steps,
    ``forward(w, m) == encode(*patchify(*frontend(w, m))[:2])``::

        fbank, frame_mask = enc.frontend(wave, padding_mask)                     # [B, F, M], [B, F] | None
        tokens, token_mask, (n_freq, n_time) = enc.patchify(fbank, frame_mask)   # [B, N, D], [B, N] | None
        out = enc.encode(tokens_subset, token_mask_subset)                       # EncoderOutput

    BEATs and EAT implement it; EfficientNet does not (its convolutions see the whole spectrogram, so there is
    no token to hide before the encoder). ``isinstance(module, SSLEncoder)`` checks that the members exist;
    :func:`missing_ssl_hooks` names the hooks a module lacks.

    Two optional hooks are used when present (EAT has both): ``encode_with_ffn(tokens, token_mask) ->
    (EncoderOutput, [B, 1 + N, D] per block)``, every block's FFN output (CLS first) for EAT-style teacher
    targets; ``decode(tokens [B, N, D], grid) -> [B, N, D]`` with a ``decoder`` attribute that is not None,
    the encoder's own SSL decoder over the full token grid.

    Attributes:
        sample_rate: Hz of the waveforms ``frontend`` expects.
        embed_dim: ``D``, the width of the tokens ``patchify`` returns and ``encode`` takes.
    """

    sample_rate: int
    embed_dim: int

    def frontend(self, wave: Tensor, padding_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """``wave [B, T]`` float32 in [-1, 1] at ``sample_rate`` Hz (+ ``padding_mask [B, T]``, True = pad)
        -> ``(fbank [B, F, M], frame_mask [B, F] | None)``: ``F`` frames x ``M`` mel bins as the patch
        embedding reads them (normalised), a frame True when it is padding; None exactly when
        ``padding_mask`` is None."""
        ...

    def patchify(
        self, fbank: Tensor, frame_padding_mask: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None, tuple[int, int]]:
        """``fbank [B, F, M]`` (+ frame mask) -> ``(tokens [B, N, D], token_mask [B, N] | None, (n_freq,
        n_time))``: one token per square ``p x p`` fbank patch, ``N = n_time x n_freq``, TIME-MAJOR (token
        ``t x n_freq + f`` covers frames ``p t .. p t + p - 1`` and bins ``p f .. p f + p - 1``; see
        :func:`fbank_patches`), with whatever positions the encoder adds before its layers. A token is True in
        the mask when all its frames are padding."""
        ...

    def encode(self, tokens: Tensor, token_padding_mask: Tensor | None = None) -> EncoderOutput:
        """Any subset of ``patchify``'s tokens ``[B, K, D]`` (in their time-major order; SSL objectives pass
        the visible ones) + their mask ``[B, K]`` -> the :class:`EncoderOutput` of every layer over them."""
        ...


SSL_HOOKS: tuple[str, ...] = tuple(
    name for name, value in vars(SSLEncoder).items() if inspect.isfunction(value) and not name.startswith("_")
)
"""The methods of :class:`SSLEncoder`: ``("frontend", "patchify", "encode")``."""


def missing_ssl_hooks(module: object) -> list[str]:
    """The :data:`SSL_HOOKS` that ``module`` lacks (not present or not callable); empty for an SSL encoder."""
    return [name for name in SSL_HOOKS if not callable(getattr(module, name, None))]


def fbank_patches(fbank: Tensor, grid: tuple[int, int]) -> Tensor:
    """The fbank values under each of an :class:`SSLEncoder`'s tokens: ``fbank`` ``[B, F, M]`` (frames x mel
    bins) cut into the square patches of the token grid ``(n_freq, n_time)`` that ``patchify`` reported,
    time-major like its tokens: ``[B, n_time x n_freq, p x p]`` with ``p = M // n_freq``. Frames past
    ``n_time x p`` (the patch conv's remainder) are dropped as the patch conv drops them."""
    n_freq, n_time = grid
    B, Fr, M = fbank.shape
    p = M // n_freq
    if p * n_freq != M or n_time * p > Fr:
        raise ConfigError(
            f"fbank_patches: grid (n_freq={n_freq}, n_time={n_time}) does not tile an fbank of {Fr} frames x "
            f"{M} bins with square patches. The encoder's patchify hook must report its grid."
        )
    x = fbank[:, : n_time * p, :].reshape(B, n_time, p, n_freq, p)
    return x.permute(0, 1, 3, 2, 4).reshape(B, n_time * n_freq, p * p)


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
