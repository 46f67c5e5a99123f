"""Saving and loading encoders. Never unpickles code: ``torch.load(weights_only=True)`` or safetensors.

- :func:`save_encoder` writes avexlab's format: ``checkpoint.safetensors`` + ``encoder.json``.
- :func:`load_encoder` reads that and the official formats (BEATs, EAT fairseq and Hugging Face port,
  torchvision/timm EfficientNet-B0), taking the architecture from the file itself.
- :func:`load_strict` loads a state dict requiring exactly the model's keys and shapes.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import pickle
import tempfile
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from avexlab.errors import CheckpointError, DataNotFoundError, expected_found

from .base import Encoder


def load_strict(model: nn.Module, state_dict: Mapping[str, Tensor], source: str | Path) -> None:
    """Load ``state_dict`` into ``model`` requiring exactly the same keys and shapes.

    Raises CheckpointError naming ``source`` and listing missing, unexpected and mis-shaped keys.
    """
    own = model.state_dict()
    missing = sorted(set(own) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(own))
    shapes = sorted(
        f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
        for k in set(own) & set(state_dict)
        if tuple(own[k].shape) != tuple(state_dict[k].shape)
    )
    if missing or unexpected or shapes:

        def show(items: list[str]) -> str:
            return ", ".join(items[:12]) + (f" ... (+{len(items) - 12} more)" if len(items) > 12 else "")

        parts = []
        if missing:
            parts.append(f"{len(missing)} missing key(s): {show(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {show(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es): {show(shapes)}")
        raise CheckpointError(
            f"{source}: the weights do not fit {type(model).__name__}; "
            + "; ".join(parts)
            + ". Check that the file is a checkpoint of this architecture and size."
        )
    with torch.no_grad():
        model.load_state_dict(dict(state_dict), strict=True)


# ---------------------------------------------------------------------------------------------------------
# avexlab's own format: a directory with checkpoint.safetensors + encoder.json.

WEIGHTS_FILE = "checkpoint.safetensors"
CONFIG_FILE = "encoder.json"
FORMAT = "avexlab-encoder"
FORMAT_VERSION = 1
_METADATA_KEY = "avexlab_encoder"  # the same description inside the safetensors header
_HASH_CHUNK = 1 << 20


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes (streamed)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write(target: Path, write: Callable[[Path], None]) -> None:
    """Write through ``write(temp_path)`` into a temporary file beside ``target``, fsync it, then rename it
    over ``target`` (atomic on POSIX: readers see the old file or the new one, never half of one)."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def save_encoder(encoder: Encoder, path: str | Path) -> Path:
    """Save ``encoder`` into the directory ``path`` (created if needed) and return it.

    Writes ``checkpoint.safetensors`` (every state-dict tensor, contiguous, on CPU; the architecture is also
    in the header metadata) and then ``encoder.json``: ``{"format": "avexlab-encoder", "format_version",
    "name", "config", "avexlab_version", "weights_file", "weights_sha256"}``. Each file is written to a
    temporary name and renamed into place; ``encoder.json`` comes last, so a directory with a valid
    ``encoder.json`` always has the weights it describes. Readable without avexlab (safetensors + JSON).
    """
    from safetensors.torch import save_file

    from avexlab import __version__

    if not getattr(encoder, "name", None) or not isinstance(getattr(encoder, "config", None), dict):
        raise CheckpointError(
            expected_found(
                "save_encoder",
                "an avexlab Encoder with a registered name and a config dict",
                type(encoder).__name__,
                "Build encoders with avexlab.models.build_encoder or load_encoder.",
            )
        )
    directory = Path(path)
    directory.mkdir(parents=True, exist_ok=True)
    described = {"name": encoder.name, "config": encoder.config, "avexlab_version": __version__}
    try:
        json.dumps(described)
    except TypeError as err:
        raise CheckpointError(
            f"{directory}: the config of {encoder.name!r} is not JSON-serialisable ({err}). "
            "Encoder configs must hold plain numbers, strings, lists and dicts."
        ) from err
    # clone: tied/shared tensors become separate entries (safetensors refuses shared storage).
    tensors = {k: v.detach().to("cpu", copy=True).contiguous() for k, v in encoder.state_dict().items()}
    weights = directory / WEIGHTS_FILE
    _atomic_write(
        weights, lambda tmp: save_file(tensors, str(tmp), metadata={_METADATA_KEY: json.dumps(described)})
    )
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **described,
        "weights_file": WEIGHTS_FILE,
        "weights_sha256": file_sha256(weights),
    }
    _atomic_write(directory / CONFIG_FILE, lambda tmp: tmp.write_text(json.dumps(record, indent=2) + "\n"))
    return directory


# ---------------------------------------------------------------------------------------------------------
# Loading: one entry point that reads the architecture from the file itself.


def load_encoder(
    path: str | Path, map_location: str | torch.device = "cpu", *, allow_pickle: bool = False
) -> Encoder:
    """Load an encoder from any checkpoint avexlab knows, reading the architecture from the file itself.

    Recognised (by content, not by file extension):

    - avexlab's own: a directory holding ``encoder.json`` + ``checkpoint.safetensors``, either of those two
      files, or a ``.safetensors`` whose header carries the avexlab description. The weights' SHA-256 is
      checked against ``encoder.json`` when that file is there.
    - official BEATs (``torch.save`` of ``{'cfg': {...}, 'model': state_dict}``) ->
      ``avexlab.models.beats.from_official_checkpoint``.
    - official EAT (fairseq: ``{'cfg': {'model': {...}, ...}, 'model': state_dict}``) ->
      ``avexlab.models.eat.from_official_checkpoint``.
    - the EAT Hugging Face port: a directory (or its ``.safetensors``) with ``config.json`` beside it ->
      ``avexlab.models.eat.from_hf_state_dict``.
    - EfficientNet-B0 state dicts from torchvision (``features.*``) or timm's ``efficientnet_b0``
      (``conv_stem``, ``blocks.*``), as a ``.pth``/``.pt`` (also under a ``'state_dict'`` key) or
      ``.safetensors`` -> ``efficientnet`` encoder (with its ``classifier`` head when the file has one).

    Never unpickles code: pickled files are read with ``torch.load(weights_only=True)``. A file that needs
    Python classes to unpickle is refused with a CheckpointError; ``allow_pickle=True`` lifts that (with a
    warning) for files you trust, because unpickling can run arbitrary code.

    Args:
        path: file or directory.
        map_location: device for the returned encoder.

    Returns:
        The encoder in eval mode, on ``map_location``.

    Raises:
        DataNotFoundError: nothing at ``path``.
        CheckpointError: naming the file, for anything that is not a loadable checkpoint (random bytes,
            text, truncated or corrupt files, another architecture, missing/unexpected keys, hash mismatch).
    """
    p = Path(path)
    if not p.exists():
        raise DataNotFoundError(
            expected_found(
                "load_encoder",
                "a checkpoint file or directory",
                f"nothing at {p}",
                "Check the path (a run directory holds encoder.json + checkpoint.safetensors).",
            )
        )
    encoder = _load_any(p, allow_pickle)
    return encoder.to(map_location).eval()


def _load_any(p: Path, allow_pickle: bool) -> Encoder:
    if p.is_dir():
        if (p / CONFIG_FILE).is_file():
            return _load_avexlab(p / CONFIG_FILE)
        if (p / "config.json").is_file():
            weights = sorted(p.glob("*.safetensors"))
            if len(weights) == 1:
                return _load_hf_eat(weights[0], p / "config.json")
            found = f"{len(weights)} .safetensors files" if weights else "config.json without weights"
            raise CheckpointError(
                expected_found(
                    f"{p}", "one model.safetensors beside config.json (Hugging Face port)", found, ""
                )
            )
        raise CheckpointError(
            expected_found(
                f"{p}",
                f"a checkpoint directory ({CONFIG_FILE} + {WEIGHTS_FILE}, or config.json + model.safetensors)",
                f"a directory with {sorted(q.name for q in p.iterdir())[:10]}",
                "Point load_encoder at the checkpoint file itself or at a run directory.",
            )
        )
    head = _read_head(p)
    if p.suffix == ".json" or head[:1] == b"{":
        return _load_json(p)
    if _looks_like_safetensors(head, p):
        if (p.parent / CONFIG_FILE).is_file() and _weights_named_in(p.parent / CONFIG_FILE) == p.name:
            return _load_avexlab(p.parent / CONFIG_FILE)
        meta = _safetensors_metadata(p)
        if _METADATA_KEY in meta:
            described = _parse_json(meta[_METADATA_KEY], p)
            return _build_and_load(described, _read_safetensors(p), p)
        if (p.parent / "config.json").is_file():
            return _load_hf_eat(p, p.parent / "config.json")
        return _from_state_dict(_read_safetensors(p), p)
    if head[8:9] == b"{":
        raise CheckpointError(
            f"{p}: a safetensors header of {int.from_bytes(head[:8], 'little')} bytes in a file of "
            f"{p.stat().st_size} bytes: the file is truncated. Copy it again."
        )
    if head[:2] == b"PK" or head[:1] == b"\x80":
        return _from_torch_object(_torch_load(p, allow_pickle), p)
    raise CheckpointError(
        expected_found(
            f"{p}",
            "a checkpoint (safetensors, a torch.save file, or avexlab's encoder.json)",
            f"a file starting with {head[:8]!r} ({p.stat().st_size} bytes)",
            "Check that this is the model file and that it was copied completely.",
        )
    )


def _read_head(p: Path) -> bytes:
    with open(p, "rb") as f:
        return f.read(16)


def _looks_like_safetensors(head: bytes, p: Path) -> bool:
    """safetensors = 8-byte little-endian header length, then a JSON header starting with ``{``."""
    if len(head) < 9 or head[8:9] != b"{":
        return False
    return int.from_bytes(head[:8], "little") < p.stat().st_size


def _parse_json(text: str, p: Path) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise CheckpointError(
            f"{p}: not valid JSON ({err}). The file is corrupt or not a checkpoint."
        ) from err


def _read_json_file(p: Path) -> Any:
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise CheckpointError(f"{p}: expected a UTF-8 JSON file, found binary data ({err}).") from err
    return _parse_json(text, p)


def _weights_named_in(config_path: Path) -> str | None:
    record = _read_json_file(config_path)
    return record.get("weights_file") if isinstance(record, dict) else None


def _load_json(p: Path) -> Encoder:
    record = _read_json_file(p)
    if isinstance(record, dict) and record.get("format") == FORMAT:
        return _load_avexlab(p)
    if isinstance(record, dict) and p.name == "config.json":
        weights = sorted(p.parent.glob("*.safetensors"))
        if len(weights) == 1:
            return _load_hf_eat(weights[0], p)
    raise CheckpointError(
        expected_found(
            f"{p}",
            f"avexlab's {CONFIG_FILE} (format {FORMAT!r}) or a Hugging Face config.json beside its weights",
            f"JSON {type(record).__name__}"
            + (f" with keys {sorted(record)[:8]}" if isinstance(record, dict) else ""),
            "Point load_encoder at the checkpoint directory.",
        )
    )


def _load_avexlab(config_path: Path) -> Encoder:
    record = _read_json_file(config_path)
    missing = [k for k in ("format", "name", "config", "weights_file", "weights_sha256") if k not in record]
    if missing or record.get("format") != FORMAT:
        raise CheckpointError(
            expected_found(
                f"{config_path}",
                f"an avexlab {CONFIG_FILE} with format {FORMAT!r} and keys name, config, weights_file, "
                "weights_sha256",
                f"format {record.get('format')!r}, missing {missing}",
                "Re-save the encoder with avexlab.models.save_encoder.",
            )
        )
    if int(record.get("format_version", 0)) > FORMAT_VERSION:
        raise CheckpointError(
            expected_found(
                f"{config_path}",
                f"format_version <= {FORMAT_VERSION}",
                str(record["format_version"]),
                f"It was written by a newer avexlab ({record.get('avexlab_version')}); upgrade avexlab.",
            )
        )
    weights = config_path.parent / record["weights_file"]
    if not weights.is_file():
        raise CheckpointError(
            f"{config_path}: names the weights {record['weights_file']!r}, but {weights} does not exist. "
            "Copy the whole checkpoint directory."
        )
    actual = file_sha256(weights)
    if actual != record["weights_sha256"]:
        raise CheckpointError(
            expected_found(
                f"{weights}",
                f"SHA-256 {record['weights_sha256']} (from {config_path.name})",
                f"{actual}",
                "The weights are corrupt, truncated or were replaced; copy the checkpoint again.",
            )
        )
    return _build_and_load(record, _read_safetensors(weights), weights)


def _build_and_load(described: Any, state_dict: Mapping[str, Tensor], source: Path) -> Encoder:
    from .registry import encoder_class, list_encoders

    if (
        not isinstance(described, dict)
        or not isinstance(described.get("config"), dict)
        or "name" not in described
    ):
        raise CheckpointError(
            f"{source}: the avexlab description lacks 'name' or 'config'; the file is corrupt."
        )
    name = described["name"]
    if name not in list_encoders():
        raise CheckpointError(
            expected_found(
                f"{source}",
                f"an encoder this avexlab knows ({sorted(list_encoders())})",
                f"{name!r}",
                "Install the avexlab version that wrote it or add the architecture module.",
            )
        )
    try:
        encoder = encoder_class(name)(**described["config"])
    except TypeError as err:
        raise CheckpointError(
            f"{source}: the saved config of {name!r} does not fit this avexlab's {name} ({err}). "
            f"It was written by avexlab {described.get('avexlab_version')}."
        ) from err
    load_strict(encoder, state_dict, source)
    return encoder


def _safetensors_metadata(p: Path) -> dict[str, str]:
    from safetensors import safe_open

    try:
        with safe_open(str(p), framework="pt") as f:
            return dict(f.metadata() or {})
    except Exception as err:  # safetensors raises its own SafetensorError (not exported stably)
        raise CheckpointError(
            f"{p}: not a readable safetensors file ({err}). It is truncated or corrupt; copy it again."
        ) from err


def _read_safetensors(p: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(p), device="cpu")
    except Exception as err:  # SafetensorError on bad headers, truncated data, etc.
        raise CheckpointError(
            f"{p}: not a readable safetensors file ({err}). It is truncated or corrupt; copy it again."
        ) from err


def _torch_load(p: Path, allow_pickle: bool) -> Any:
    if allow_pickle:
        warnings.warn(
            f"load_encoder({p}, allow_pickle=True): unpickling can run arbitrary code; only do this for "
            "files you trust.",
            stacklevel=3,
        )
        try:
            return torch.load(p, map_location="cpu", weights_only=False)
        except Exception as err:
            raise CheckpointError(f"{p}: torch.load failed ({type(err).__name__}: {err}).") from err
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        text = str(err)
        if "weights only" in text.lower() or "weights_only" in text.lower():
            detail = next((line.strip() for line in text.splitlines() if "Unsupported global" in line), "")
            needs = (
                detail.split("GLOBAL ", 1)[-1].split(" ", 1)[0] if "GLOBAL " in detail else "Python classes"
            )
            raise CheckpointError(
                f"{p}: the file pickles {needs} besides tensors and plain containers, and unpickling it could "
                "run code, so avexlab refuses it by default (torch.load(weights_only=True)). If you trust the "
                "file, pass allow_pickle=True; better, re-save it as plain tensors and dicts."
            ) from err
        raise CheckpointError(f"{p}: not a readable torch checkpoint ({err}); the file is corrupt.") from err
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        raise CheckpointError(
            f"{p}: not a readable torch checkpoint ({type(err).__name__}: {str(err).splitlines()[0]}). "
            "The file is truncated or corrupt; copy it again."
        ) from err


def _is_state_dict(obj: Any) -> bool:
    return (
        isinstance(obj, Mapping)
        and len(obj) > 0
        and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items())
    )


def _from_torch_object(obj: Any, p: Path) -> Encoder:
    source = str(p)
    if isinstance(obj, Mapping) and "cfg" in obj and "model" in obj:
        cfg = obj["cfg"]
        if isinstance(cfg, Mapping) and isinstance(cfg.get("model"), Mapping):
            return _architecture_module("eat", p).from_official_checkpoint(obj, source)
        return _architecture_module("beats", p).from_official_checkpoint(obj, source)
    if isinstance(obj, Mapping) and _is_state_dict(obj.get("state_dict")):
        return _from_state_dict(obj["state_dict"], p)
    if _is_state_dict(obj):
        return _from_state_dict(obj, p)
    found = (
        f"a dict with keys {sorted(map(str, obj))[:8]}" if isinstance(obj, Mapping) else type(obj).__name__
    )
    raise CheckpointError(
        expected_found(
            source,
            "an official BEATs/EAT checkpoint ({'cfg', 'model'}) or an EfficientNet-B0 state dict",
            found,
            "See avexlab.models.load_encoder for the formats it reads.",
        )
    )


def _from_state_dict(state_dict: Mapping[str, Tensor], p: Path) -> Encoder:
    from .efficientnet import EfficientNetEncoder, config_from_state_dict, timm_to_torchvision

    keys = set(state_dict)
    if "conv_stem.weight" in keys:
        state_dict = timm_to_torchvision(state_dict, str(p))
    elif "features.0.0.weight" not in keys:
        raise CheckpointError(
            expected_found(
                f"{p}",
                "a known architecture: EfficientNet-B0 weights (torchvision features.* or timm conv_stem/blocks.*), "
                "an official BEATs/EAT checkpoint, or an avexlab checkpoint",
                f"a state dict of another architecture (keys such as {sorted(keys)[:5]})",
                "Load it with the code that wrote it and re-save with avexlab.models.save_encoder.",
            )
        )
    encoder = EfficientNetEncoder(**config_from_state_dict(state_dict, str(p)))
    load_strict(encoder, state_dict, p)
    return encoder


def _load_hf_eat(weights: Path, config_path: Path) -> Encoder:
    config = _read_json_file(config_path)
    return _architecture_module("eat", weights).from_hf_state_dict(
        _read_safetensors(weights), config if isinstance(config, dict) else None, str(weights)
    )


def _architecture_module(name: str, p: Path) -> Any:
    qualified = f"{__package__}.{name}"
    if importlib.util.find_spec(qualified) is None:
        raise CheckpointError(
            f"{p}: looks like an official {name.upper()} checkpoint, but this avexlab has no {qualified} "
            "module. Update avexlab."
        )
    return importlib.import_module(qualified)
