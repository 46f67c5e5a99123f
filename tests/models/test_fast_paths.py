"""Fast paths compute what the eager fp32 path computes: FlexAttention vs SDPA, bf16 autocast, compile,
and no host synchronisation in the forward pass (issue 7)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from tolerance import assert_close_f32, bf16_casts, bf16_rel_tol, encoder_tol, pooled_tol

from avexlab.errors import ConfigError
from avexlab.models import beats
from avexlab.models.registry import build_encoder

SR = 16000


def _tiny(name: str, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_encoder(name, size="tiny", **overrides).eval()
    with torch.no_grad():  # perturb every parameter so biases, gates and the bias table all matter
        g = torch.Generator().manual_seed(1)
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=g))
    return model


@pytest.fixture(scope="module")
def padded_batch(tmp_path_factory) -> tuple[torch.Tensor, torch.Tensor]:
    """Three real clips read back from wav files (1.0, 1.5 and 0.975 s), zero-padded into ``[3, 24000]``."""
    folder = tmp_path_factory.mktemp("clips")
    rng = np.random.default_rng(7)
    lengths = (16000, 24000, 15600)
    waves = []
    for i, n in enumerate(lengths):
        t = np.arange(n) / SR
        clip = 0.3 * np.sin(2 * np.pi * (300 + 900 * t) * t) + 0.05 * rng.standard_normal(n)
        sf.write(folder / f"c{i}.wav", clip.astype(np.float32), SR)
        waves.append(torch.from_numpy(sf.read(folder / f"c{i}.wav", dtype="float32")[0]))
    wave = torch.zeros(3, max(lengths))
    mask = torch.ones(3, max(lengths), dtype=torch.bool)
    for i, w in enumerate(waves):
        wave[i, : len(w)] = w
        mask[i, : len(w)] = False
    return wave, mask


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.float() - b.float()).norm() / b.float().norm())


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
def test_flex_attention_equals_sdpa_with_padding(padded_batch) -> None:
    wave, mask = padded_batch
    model = _tiny("beats")
    with torch.no_grad():
        model.set_fast_path(attention_backend="sdpa", compile=False)
        ref = model(wave, mask)
        model.set_fast_path(attention_backend="flex", compile=False)
        flex = model(wave, mask)
    assert model.attention_backend == "flex"
    n = wave.shape[1]
    for layer, (a, b) in enumerate(zip(flex.hidden_states, ref.hidden_states, strict=True)):
        assert_close_f32(
            a, b, encoder_tol(model, b, samples=n, layer=layer), what=f"layer {layer} flex vs sdpa"
        )
    assert torch.equal(flex.padding_mask, ref.padding_mask)
    # the bias matters: without it the outputs differ by more than the tolerance above
    with torch.no_grad():
        model.encoder.layers[0].self_attn.relative_attention_bias.weight.zero_()
        changed = model(wave, mask)
    tol = encoder_tol(model, ref.tokens, samples=n, layer=-1)
    assert ((changed.tokens - ref.tokens).abs() > tol).any()


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
def test_flex_attention_without_gate_equals_sdpa() -> None:
    model = _tiny("beats", gru_rel_pos=False)
    wave = 0.1 * torch.randn(2, 20000, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        ref = model.set_fast_path(attention_backend="sdpa", compile=False)(wave).tokens
        flex = model.set_fast_path(attention_backend="flex", compile=False)(wave).tokens
    assert_close_f32(
        flex, ref, encoder_tol(model, ref, samples=20000, layer=-1), what="flex vs sdpa, no gate"
    )


def test_auto_backend_is_sdpa_on_cpu_and_bad_backend_raises() -> None:
    model = _tiny("beats")
    assert model.attention_backend == "auto"
    assert model.encoder.resolve_backend(torch.zeros(1, 2, 3)) == "sdpa"
    with pytest.raises(ConfigError, match="attention_backend"):
        model.set_fast_path(attention_backend="xformers", compile=False)


def test_flex_refuses_attention_dropout_while_training() -> None:
    model = _tiny("beats", attention_dropout=0.1).train()
    model.set_fast_path(attention_backend="flex", compile=False)
    with torch.no_grad(), pytest.raises(ConfigError, match="attention_dropout"):
        model(0.1 * torch.randn(1, 16000))
    model.set_fast_path(attention_backend="auto", compile=False)
    assert model.encoder.resolve_backend(torch.zeros(1)) == "sdpa"


def test_cached_relative_bias_equals_the_bucket_table() -> None:
    model = _tiny("beats")
    attn = model.encoder.layers[0].self_attn
    n = 37
    buckets = beats.relative_position_buckets(n, n, attn.num_buckets, attn.max_distance)
    expected = attn.relative_attention_bias.weight[buckets].permute(2, 0, 1)  # [H, N, N]
    torch.testing.assert_close(attn.position_bias(n, torch.device("cpu")), expected, atol=0, rtol=0)
    assert attn.relative_bias(n, torch.device("cpu")).shape == (attn.heads, 2 * n - 1)


@pytest.mark.parametrize(("name", "backend"), [("beats", "sdpa"), ("beats", "flex"), ("eat", None)])
@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
def test_bf16_autocast_within_bf16_tolerance_of_eager_fp32(padded_batch, name: str, backend) -> None:
    wave, mask = padded_batch
    model = _tiny(name)
    with torch.no_grad():
        ref = model(wave, mask)
        if backend is not None:
            model.set_fast_path(attention_backend=backend, compile=False)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fast = model(wave, mask)
            emb = model.embed(wave, mask)
    ref_emb = model.pool(ref)
    tol = bf16_rel_tol(bf16_casts(model))  # the whole network's casts bound every layer's
    for a, b in zip(fast.hidden_states, ref.hidden_states, strict=True):
        assert a.dtype == torch.bfloat16  # autocast really ran the layers in bf16
        assert _rel_err(a, b) < tol
    assert _rel_err(emb, ref_emb) < tol
    # the tolerance is below the distance between different clips' embeddings
    assert _rel_err(ref_emb.roll(1, dims=0), ref_emb) > tol


@pytest.mark.parametrize("name", ["beats", "eat"])
def test_bf16_weights_within_bf16_tolerance_and_fbank_stays_float32(padded_batch, name: str) -> None:
    wave, mask = padded_batch
    model = _tiny(name)
    with torch.no_grad():
        ref = model.embed(wave, mask)
        model.set_fast_path(compile=False, weights_dtype=torch.bfloat16)
        fast = model.embed(wave, mask)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    assert model.fbank.window.dtype == model.fbank.mel_banks.dtype == torch.float32
    assert fast.dtype == torch.bfloat16
    tol = bf16_rel_tol(bf16_casts(model))
    assert _rel_err(fast, ref) < tol
    assert _rel_err(ref.roll(1, dims=0), ref) > tol


@pytest.mark.parametrize("name", ["beats", "eat"])
def test_padding_mask_without_padding_gives_the_same_numbers_as_none(name: str) -> None:
    model = _tiny(name)
    wave = 0.1 * torch.randn(2, 16000, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        plain = model(wave)
        masked = model(wave, torch.zeros(2, 16000, dtype=torch.bool))
    assert plain.padding_mask is None
    assert masked.padding_mask is not None and not masked.padding_mask.any()
    # An all-False mask takes the masked code path (other kernels): the rounding bound, not bit identity.
    for layer, (a, b) in enumerate(zip(masked.hidden_states, plain.hidden_states, strict=True)):
        assert_close_f32(a, b, encoder_tol(model, b, samples=16000, layer=layer), what=f"layer {layer}")
    tol = torch.stack([pooled_tol(t, encoder_tol(model, t, samples=16000, layer=-1)) for t in plain.tokens])
    assert_close_f32(model.pool(masked), model.pool(plain), tol, what="mean pooling")


@pytest.mark.parametrize("name", ["beats", "eat"])
def test_forward_traces_as_one_graph(padded_batch, name: str) -> None:
    """fullgraph tracing fails on any host sync (``bool(tensor)``) or other graph break in the forward."""
    wave, mask = padded_batch
    model = _tiny(name)
    torch._dynamo.reset()
    traced = torch.compile(model, backend="eager", fullgraph=True, dynamic=False)
    with torch.no_grad():
        out = traced(wave, mask)
        ref = model(wave, mask)
    tol = encoder_tol(model, ref.tokens, samples=wave.shape[1], layer=-1)
    assert_close_f32(out.tokens, ref.tokens, tol, what="traced vs eager")
    assert torch.equal(out.padding_mask, ref.padding_mask)


@pytest.mark.filterwarnings("ignore:flex_attention called without torch.compile")
def test_flex_layers_trace_as_one_graph(padded_batch) -> None:
    """Each BEATs layer with the FlexAttention score_mod compiles with fullgraph (what CUDA runs)."""
    wave, mask = padded_batch
    model = _tiny("beats").set_fast_path(attention_backend="flex", compile=False)
    torch._dynamo.reset()
    with torch.no_grad():
        ref = model(wave, mask)
        for layer in model.encoder.layers:
            layer.compile(fullgraph=True, dynamic=False, backend="eager")
        out = model(wave, mask)
    tol = encoder_tol(model, ref.tokens, samples=wave.shape[1], layer=-1)
    assert_close_f32(out.tokens, ref.tokens, tol, what="compiled flex layers vs eager")


@pytest.mark.slow
def test_compiled_layers_equal_eager(padded_batch) -> None:
    """Inductor-compiled EAT blocks (CPU C++ kernels) give the eager numbers."""
    wave, mask = padded_batch
    model = _tiny("eat")
    with torch.no_grad():
        ref = model(wave, mask)
        torch._dynamo.reset()
        model.set_fast_path(compile=True)
        out = model(wave, mask)
    assert model.state_dict().keys() == _tiny("eat").state_dict().keys()  # compile keeps the keys
    for layer, (a, b) in enumerate(zip(out.hidden_states, ref.hidden_states, strict=True)):
        tol = encoder_tol(model, b, samples=wave.shape[1], layer=layer)  # inductor fuses and reorders sums
        assert_close_f32(a, b, tol, what=f"block {layer} compiled vs eager")


def test_gpu_benchmark_script_smoke_runs_on_cpu(tmp_path) -> None:
    """benchmarks/bench_speed_gpu.py --smoke runs end to end and writes a measured row per path."""
    root = Path(__file__).resolve().parents[2]
    out = tmp_path / "speed.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AVEX_PATH": str(tmp_path / "no-avex")}
    proc = subprocess.run(
        [
            sys.executable,
            str(root / "benchmarks" / "bench_speed_gpu.py"),
            "--smoke",
            "--device",
            "cpu",
            "--out",
            str(out),
            "--encoders",
            "beats,eat",
        ],  # fmt: skip
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads(out.read_text())["rows"]
    assert not [r for r in rows if "error" in r], [r["error"] for r in rows if "error" in r]
    measured = {(r["encoder"], r["task"], r["path"]) for r in rows if r.get("clips_per_s", 0) > 0}
    for name in ("beats", "eat"):
        for task in ("train", "embed"):
            assert {(name, task, "avexlab-eager"), (name, task, "avexlab-fast")} <= measured
    numerics = {r["encoder"]: r for r in rows if r["task"] == "numerics"}
    # --smoke runs BEATs tiny: its bfloat16 rounding bound (built with seed 0, as the script does)
    torch.manual_seed(0)
    beats_tiny = build_encoder("beats", size="tiny")
    assert 0 < numerics["beats"]["bf16_embed_rel_err"] < bf16_rel_tol(bf16_casts(beats_tiny))
    assert all(r.get("skipped", "").startswith("avex not importable") for r in rows if r["path"] == "avex")
