"""One registry of encoder architectures and of the checkpoint formats they read.

- ``build_encoder(name, size, **overrides)``, ``list_encoders()``: architectures, registered with
  :func:`register_encoder`.
- :func:`register_checkpoint_reader`: each architecture module registers the outside checkpoint formats it
  reads (official BEATs, EAT fairseq and Hugging Face port, torchvision/timm EfficientNet-B0);
  :func:`avexlab.models.load_encoder` offers every file to all of them and loads with the one that
  recognises it.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from avexlab.errors import ConfigError

from .base import Encoder

_REGISTRY: dict[str, type[Encoder]] = {}
_PRESETS: dict[str, dict[str, dict[str, Any]]] = {}


def register_encoder(
    name: str, presets: dict[str, dict[str, Any]]
) -> Callable[[type[Encoder]], type[Encoder]]:
    """Class decorator: register an architecture under ``name`` with its size presets
    (e.g. ``{"tiny": {...}, "small": {...}, "base": {...}}``; each preset is keyword config).

    Registering a second class under a taken name is an error; re-registering the same class (same module
    and qualified name, as when a notebook reloads the module) replaces the old definition."""

    def deco(cls: type[Encoder]) -> type[Encoder]:
        old = _REGISTRY.get(name)
        if old is not None and (old.__module__, old.__qualname__) != (cls.__module__, cls.__qualname__):
            raise ConfigError(
                f"encoder {name!r} registered twice ({old.__module__}.{old.__qualname__} and "
                f"{cls.__module__}.{cls.__qualname__}). Pick another name for one of them."
            )
        cls.name = name
        _REGISTRY[name] = cls
        _PRESETS[name] = presets
        return cls

    return deco


ARCHITECTURE_MODULES: tuple[str, ...] = ("efficientnet", "logmel", "beats", "eat", "birdnet")


def _ensure_loaded() -> None:
    """Import the architecture modules (importing registers them). A module that is not in the package yet
    is skipped; one that exists but fails to import raises its own error."""
    for module in ARCHITECTURE_MODULES:
        qualified = f"{__package__}.{module}"
        if importlib.util.find_spec(qualified) is not None:
            importlib.import_module(qualified)


ReaderInput = Literal["path", "object"]


@dataclass(frozen=True)
class CheckpointReader:
    """One outside checkpoint format: ``recognise`` is a cheap yes/no test, ``load`` builds the encoder.

    ``reads="path"``: ``recognise(path) -> bool`` and ``load(path) -> Encoder`` get the file or directory
    given to ``load_encoder`` (a Hugging Face model folder, a file in a format torch cannot read).
    ``reads="object"``: ``recognise(obj) -> bool`` and ``load(obj, path) -> Encoder`` get what the file holds:
    the object a torch file unpickles to with ``weights_only=True`` (plain containers and tensors, never
    code) or a safetensors file's ``{name: tensor}``; ``path`` is for messages.
    """

    describes: str  # e.g. "an official BEATs checkpoint ({'cfg', 'model'})", shown when nothing recognises
    reads: ReaderInput
    recognise: Callable[[Any], bool]
    load: Callable[..., Encoder]


_READERS: dict[str, CheckpointReader] = {}


def register_checkpoint_reader(
    describes: str, *, recognise: Callable[[Any], bool], reads: ReaderInput = "object"
) -> Callable[[Callable[..., Encoder]], Callable[..., Encoder]]:
    """Function decorator: register the decorated ``load`` as a reader of one checkpoint format.

    ``describes`` names the format in load_encoder's errors; ``recognise`` and ``reads`` as in
    :class:`CheckpointReader`. ``recognise`` must not claim another reader's files (load_encoder refuses a
    file that two readers recognise) and should look only at structure (keys, file names), leaving the
    checks of shapes and values to ``load``, whose errors then name what is wrong. A new format:

        @register_checkpoint_reader("a BirdNET .tflite model", recognise=is_birdnet, reads="path")
        def _load_birdnet(path: Path) -> Encoder: ...

    The module must be in ``ARCHITECTURE_MODULES`` so that load_encoder imports it. Re-registering the same
    function (a notebook reloading the module) replaces the old reader."""
    if reads not in ("path", "object"):
        raise ConfigError(f"register_checkpoint_reader: expected reads='path' or 'object', found {reads!r}.")

    def deco(load: Callable[..., Encoder]) -> Callable[..., Encoder]:
        _READERS[f"{load.__module__}.{load.__qualname__}"] = CheckpointReader(
            describes, reads, recognise, load
        )
        return load

    return deco


def checkpoint_readers(reads: ReaderInput) -> list[CheckpointReader]:
    """The registered readers taking ``reads`` input, every architecture module imported first."""
    _ensure_loaded()
    return [r for r in _READERS.values() if r.reads == reads]


def list_encoders() -> dict[str, list[str]]:
    """Names of registered architectures and their size presets."""
    _ensure_loaded()
    return {name: list(_PRESETS[name]) for name in sorted(_REGISTRY)}


def encoder_class(name: str) -> type[Encoder]:
    _ensure_loaded()
    if name not in _REGISTRY:
        raise ConfigError(f"unknown encoder {name!r}: expected one of {sorted(_REGISTRY)}.")
    return _REGISTRY[name]


def preset_config(name: str, size: str | None = None, **overrides: Any) -> dict[str, Any]:
    """The keyword config of ``name`` at ``size`` with ``overrides`` applied (unknown keys are errors).
    ``size=None`` is the architecture's first preset: ``tiny`` for the trainable ones, the released
    version for a released model (``birdnet``: ``v2.4``)."""
    cls = encoder_class(name)
    presets = _PRESETS[name]
    if size is None:
        size = next(iter(presets))
    if size not in presets:
        raise ConfigError(f"unknown size {size!r} for encoder {name!r}: expected one of {list(presets)}.")
    cfg = dict(presets[size])
    unknown = sorted(set(overrides) - set(cfg))
    if unknown:
        raise ConfigError(
            f"unknown override(s) {unknown} for encoder {name!r}: expected keys among {sorted(cfg)}."
        )
    cfg.update(overrides)
    del cls
    return cfg


def build_encoder(name: str, size: str | None = None, **overrides: Any) -> Encoder:
    """Build an encoder: a randomly initialised architecture, e.g. ``build_encoder("beats", size="tiny")``
    (``size=None``: ``tiny``), or a released model with its weights, e.g. ``build_encoder("birdnet")``."""
    cfg = preset_config(name, size, **overrides)
    return encoder_class(name)(**cfg)
