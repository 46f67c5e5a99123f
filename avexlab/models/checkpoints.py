"""Saving and loading encoders. Never unpickles code: ``torch.load(weights_only=True)`` or safetensors.

- :func:`save_encoder` writes avexlab's format: ``checkpoint.safetensors`` + ``encoder.json``.
- :func:`load_encoder` reads that, and every outside format an architecture module registered a reader for
  (:func:`avexlab.models.registry.register_checkpoint_reader`: official BEATs, EAT fairseq and Hugging Face
  port, torchvision/timm EfficientNet-B0), taking the architecture from the file itself.
- :func:`load_strict` loads a state dict requiring exactly the model's keys and shapes;
  :func:`read_safetensors`, :func:`read_json` and :func:`state_dict_in` are the safe readers those
  architecture readers share (errors name the file).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from avexlab.errors import CheckpointError, DataNotFoundError, expected_found
from avexlab.fsutil import atomic_write

from .base import Encoder
from .registry import CheckpointReader, ReaderInput, checkpoint_readers, encoder_class, list_encoders


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


def save_encoder(encoder: Encoder, path: str | Path) -> Path:
    """Save ``encoder`` into the directory ``path`` (created if needed) and return it.

    Writes ``checkpoint.safetensors`` (every state-dict tensor, contiguous, on CPU; the architecture is also
    in the header metadata) and then ``encoder.json``: ``{"format": "avexlab-encoder", "format_version",
    "name", "config", "avexlab_version", "weights_file", "weights_sha256"}``. Each file is written durably
    (:func:`avexlab.fsutil.atomic_write`: temporary file, fsync, rename, directory fsync); ``encoder.json``
    comes last, so a directory with a valid ``encoder.json`` always has the weights it describes. Readable
    without avexlab (safetensors + JSON).
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
    atomic_write(
        weights, lambda tmp: save_file(tensors, str(tmp), metadata={_METADATA_KEY: json.dumps(described)})
    )
    record = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        **described,
        "weights_file": WEIGHTS_FILE,
        "weights_sha256": file_sha256(weights),
    }
    atomic_write(directory / CONFIG_FILE, json.dumps(record, indent=2) + "\n")
    return directory


# ---------------------------------------------------------------------------------------------------------
# Loading: one entry point that reads the architecture from the file itself.


def load_encoder(
    path: str | Path, map_location: str | torch.device = "cpu", *, allow_pickle: bool = False
) -> Encoder:
    """Load an encoder from any checkpoint avexlab knows, reading the architecture from the file itself.

    Recognised by content, not by file extension. avexlab's own format first: a directory holding
    ``encoder.json`` + ``checkpoint.safetensors``, either of those two files, or a ``.safetensors`` whose
    header carries the avexlab description; the weights' SHA-256 is checked against ``encoder.json`` when
    that file is there. Anything else is offered to the readers the architecture modules register
    (:func:`avexlab.models.registry.register_checkpoint_reader`), first those that read paths, then, for a
    safetensors or torch file, those that read its content; exactly one must recognise it. Registered:

    - official BEATs (``torch.save`` of ``{'cfg': {...}, 'model': state_dict}``): ``avexlab.models.beats``.
    - official EAT (fairseq: ``{'cfg': {'model': {...}, ...}, 'model': state_dict}``) and the EAT Hugging
      Face port (a directory with ``config.json`` + one ``.safetensors``, or either file):
      ``avexlab.models.eat``.
    - EfficientNet-B0 state dicts from torchvision (``features.*``) or timm's ``efficientnet_b0``
      (``conv_stem``, ``blocks.*``), as a ``.pth``/``.pt`` (also under a ``'state_dict'`` key) or
      ``.safetensors``: ``avexlab.models.efficientnet`` (with its ``classifier`` head when the file has one).

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
    """avexlab's own format, else the registered readers: those reading paths, then those reading content."""
    record: Any = None
    head = b""
    if p.is_dir():
        if (p / CONFIG_FILE).is_file():
            return _load_avexlab(p / CONFIG_FILE)
        kind = "directory"
    else:
        head = _read_head(p)
        if p.suffix == ".json" or head[:1] == b"{":
            record = read_json(p)
            if isinstance(record, dict) and record.get("format") == FORMAT:
                return _load_avexlab(p)
            kind = "json"
        elif _looks_like_safetensors(head, p):
            if (p.parent / CONFIG_FILE).is_file() and _weights_named_in(p.parent / CONFIG_FILE) == p.name:
                return _load_avexlab(p.parent / CONFIG_FILE)
            meta = _safetensors_metadata(p)
            if _METADATA_KEY in meta:
                described = _parse_json(meta[_METADATA_KEY], p)
                return _build_and_load(described, read_safetensors(p), p)
            kind = "safetensors"
        elif head[8:9] == b"{":
            raise CheckpointError(
                f"{p}: a safetensors header of {int.from_bytes(head[:8], 'little')} bytes in a file of "
                f"{p.stat().st_size} bytes: the file is truncated. Copy it again."
            )
        else:
            kind = "torch" if head[:2] == b"PK" or head[:1] == b"\x80" else "unknown"
    reader = _recognising("path", p, p)
    if reader is not None:
        return reader.load(p)
    if kind == "safetensors":
        return _load_by_content(read_safetensors(p), p)
    if kind == "torch":
        return _load_by_content(_torch_load(p, allow_pickle), p)
    raise _unrecognised(p, kind, record, head)


# ---------------------------------------------------------------------------------------------------------
# The registered readers of outside formats.


def _recognising(reads: ReaderInput, subject: Any, p: Path) -> CheckpointReader | None:
    """The one registered reader of ``reads`` input that recognises ``subject``; None when none does."""
    found = [r for r in checkpoint_readers(reads) if r.recognise(subject)]
    if len(found) > 1:
        raise CheckpointError(
            expected_found(
                f"{p}",
                "one checkpoint reader to recognise the file",
                f"{len(found)}: " + "; ".join(r.describes for r in found),
                "Two architecture modules claim the same files: make one reader's recognise() stricter.",
            )
        )
    return found[0] if found else None


def _load_by_content(obj: Any, p: Path) -> Encoder:
    reader = _recognising("object", obj, p)
    if reader is not None:
        return reader.load(obj, p)
    state_dict = state_dict_in(obj)
    if state_dict is not None:
        found = f"a state dict of another architecture (keys such as {sorted(state_dict)[:5]})"
        todo = "Load it with the code that wrote it and re-save with avexlab.models.save_encoder."
    else:
        found = (
            f"a dict with keys {sorted(map(str, obj))[:8]}"
            if isinstance(obj, Mapping)
            else type(obj).__name__
        )
        todo = "See avexlab.models.load_encoder for the formats it reads."
    known = "; ".join(r.describes for r in checkpoint_readers("object"))
    raise CheckpointError(expected_found(f"{p}", f"a known architecture ({known})", found, todo))


def _unrecognised(p: Path, kind: str, record: Any, head: bytes) -> CheckpointError:
    """The error for a directory or file that is not avexlab's format and that no path reader recognises."""
    others = "".join(f"; or {r.describes}" for r in checkpoint_readers("path"))
    if kind == "directory":
        expected = f"a checkpoint directory ({CONFIG_FILE} + {WEIGHTS_FILE}{others})"
        found = f"a directory with {sorted(q.name for q in p.iterdir())[:10]}"
        todo = "Point load_encoder at the checkpoint file itself or at a run directory."
    elif kind == "json":
        expected = f"avexlab's {CONFIG_FILE} (format {FORMAT!r}){others}"
        found = f"JSON {type(record).__name__}" + (
            f" with keys {sorted(record)[:8]}" if isinstance(record, dict) else ""
        )
        todo = "Point load_encoder at the checkpoint directory."
    else:
        expected = f"a checkpoint (safetensors, a torch.save file, or avexlab's {CONFIG_FILE}{others})"
        found = f"a file starting with {head[:8]!r} ({p.stat().st_size} bytes)"
        todo = "Check that this is the model file and that it was copied completely."
    return CheckpointError(expected_found(f"{p}", expected, found, todo))


# ---------------------------------------------------------------------------------------------------------
# Reading files safely (also for the registered readers) and avexlab's own format. Errors name the file.


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


def read_json(p: Path) -> Any:
    """The JSON document in file ``p``; CheckpointError naming it when it is binary or not JSON."""
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise CheckpointError(f"{p}: expected a UTF-8 JSON file, found binary data ({err}).") from err
    return _parse_json(text, p)


def _weights_named_in(config_path: Path) -> str | None:
    record = read_json(config_path)
    return record.get("weights_file") if isinstance(record, dict) else None


def _load_avexlab(config_path: Path) -> Encoder:
    record = read_json(config_path)
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
            "Copy the whole checkpoint directory"
            + (
                ", or, for a grid run kept without its weights (the committed results/grid keeps those of its "
                "first training seed only), run `avexlab grid` with that folder's profile and seeds to train "
                "it again."
                if (config_path.parent / "config.yaml").is_file()
                else "."
            )
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
    return _build_and_load(record, read_safetensors(weights), weights)


def _build_and_load(described: Any, state_dict: Mapping[str, Tensor], source: Path) -> Encoder:
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


def read_safetensors(p: Path) -> dict[str, Tensor]:
    """All tensors of the safetensors file ``p``, on the CPU; CheckpointError naming it when it is truncated
    or corrupt."""
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


def state_dict_in(obj: Any) -> Mapping[str, Tensor] | None:
    """The flat ``{name: tensor}`` state dict ``obj`` is, or holds under ``'state_dict'`` (timm's and
    Lightning's training checkpoints); None when it is neither."""

    def flat(x: Any) -> bool:
        return (
            isinstance(x, Mapping)
            and len(x) > 0
            and all(isinstance(k, str) and isinstance(v, Tensor) for k, v in x.items())
        )

    if isinstance(obj, Mapping) and flat(obj.get("state_dict")):
        return obj["state_dict"]
    return obj if flat(obj) else None
