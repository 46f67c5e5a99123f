"""Encoders: one registry, one loader, one contract.

``build_encoder(name, size="tiny", **overrides)`` builds a randomly initialised encoder (or, for a
released model such as ``build_encoder("birdnet")``, that model with its weights),
``list_encoders()`` names the architectures and sizes, ``load_encoder(path)`` reads any supported
checkpoint and ``save_encoder(encoder, directory)`` writes avexlab's own. Every encoder is an
:class:`Encoder` returning an :class:`EncoderOutput`.

Names are resolved lazily (PEP 562): ``import avexlab.models`` imports neither torch nor any architecture
until one of them is used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .base import Encoder, EncoderOutput
    from .checkpoints import load_encoder, save_encoder
    from .registry import build_encoder, list_encoders

_EXPORTS: dict[str, str] = {
    "build_encoder": "registry",
    "list_encoders": "registry",
    "load_encoder": "checkpoints",
    "save_encoder": "checkpoints",
    "Encoder": "base",
    "EncoderOutput": "base",
}

__all__ = ["Encoder", "EncoderOutput", "build_encoder", "list_encoders", "load_encoder", "save_encoder"]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
