"""Every registered encoder and size: builds, embeds padded variable-length batches exactly, every layer and
pooling works, and reports parameters and FLOPs per 5 s clip consistent with its architecture."""

from __future__ import annotations

import functools

import pytest
import torch
from tolerance import assert_close_f32, encoder_tol, pooled_tol

from avexlab.errors import ConfigError
from avexlab.models import Encoder, build_encoder, list_encoders
from avexlab.models.registry import preset_config

ENCODERS = [(name, size) for name, sizes in list_encoders().items() for size in sizes]
TRANSFORMERS = {"beats", "eat"}
SR = 16000


def aligned_samples(name: str, frames_multiple: int = 16, patches: int = 6) -> int:
    """A clip length that is a whole number of the encoder's time units: for the transformers, a Kaldi
    fbank (25 ms window, 10 ms shift, no edge padding) with ``patches`` x 16 frames; for the mel encoders,
    a whole number of 10 ms hops."""
    if name in TRANSFORMERS:
        frames = frames_multiple * patches
        return 400 + 160 * (frames - 1)
    return SR


@functools.cache
def built(name: str, size: str) -> Encoder:
    torch.manual_seed(0)
    return build_encoder(name, size).eval()


@pytest.mark.parametrize(("name", "size"), ENCODERS)
def test_padded_batch_equals_clips_alone_for_every_layer_and_pooling(name, size):
    enc = built(name, size)
    n = aligned_samples(name)
    lengths = [n, n + 7 * 1600 + 123, n + 16000]
    T = max(lengths)
    g = torch.Generator().manual_seed(1)
    mask = torch.arange(T)[None, :] >= torch.tensor(lengths)[:, None]
    wave = (0.1 * torch.randn(len(lengths), T, generator=g)).masked_fill(mask, 0.0)
    with torch.no_grad():
        out = enc(wave, mask)
        alone = enc(wave[:1, :n])
    assert out.tokens.ndim == 3 and out.tokens.shape[0] == len(lengths)
    assert out.tokens.shape[-1] == enc.embed_dim
    assert len(out.hidden_states) == enc.num_layers >= 1
    assert out.hidden_states[-1] is out.tokens
    if out.padding_mask is not None:
        assert out.padding_mask.shape == out.tokens.shape[:2] and out.padding_mask.dtype == torch.bool
        assert not out.padding_mask[:, 0].any()  # every clip's first token is real
    poolings = ["mean", "max"] + (["cls"] if enc.has_cls else [])
    for layer in range(-enc.num_layers, enc.num_layers):
        # Rounding tolerance of the clip's tokens (the batch's length T bounds every sum), then of pooling.
        ref = alone.hidden_states[layer][0]
        tol = encoder_tol(enc, ref, samples=T, layer=layer)
        for pooling in poolings:
            batch = enc.pool(out, layer=layer, pooling=pooling)
            assert batch.shape[0] == len(lengths) and torch.isfinite(batch).all()
            if pooling == "cls":
                pool_tol = encoder_tol(enc, alone.cls[layer][0], samples=T, layer=layer)
            else:
                pool_tol = pooled_tol(ref, tol)
            expected = enc.pool(alone, layer=layer, pooling=pooling)[0]
            assert_close_f32(batch[0], expected, pool_tol, what=f"{name} {size} layer {layer} {pooling}")
    # a clip's embedding does not depend on which other clips share its batch
    assert_close_f32(
        enc.embed(wave[:2], mask[:2])[0],
        enc.embed(wave, mask)[0],
        pooled_tol(alone.tokens[0], encoder_tol(enc, alone.tokens[0], samples=T, layer=-1)),
        what=f"{name} {size} embedding in a batch of 2 vs 3",
    )
    if not enc.has_cls:
        with pytest.raises(ValueError, match="CLS"):
            enc.pool(out, pooling="cls")
    with pytest.raises(IndexError, match="out of range"):
        enc.pool(out, layer=enc.num_layers)


@pytest.mark.parametrize(("name", "size"), ENCODERS)
def test_preset_config_round_trips_and_rejects_unknown_keys(name, size):
    cfg = preset_config(name, size)
    enc = built(name, size)
    assert {k: enc.config[k] for k in cfg} == cfg  # config rebuilds the same architecture
    assert enc.sample_rate == {"birdnet": 48000}.get(name, SR) and enc.embed_dim > 0
    with pytest.raises(ConfigError, match="unknown override"):
        build_encoder(name, size, no_such_option=1)


def test_unknown_names_and_sizes():
    with pytest.raises(ConfigError, match="unknown encoder"):
        build_encoder("resnet")
    with pytest.raises(ConfigError, match="unknown size"):
        build_encoder("efficientnet", "huge")


def test_parameters_and_flops_per_5s_clip_table():
    rows = []
    for name, size in ENCODERS:
        slow = name in TRANSFORMERS and size == "base" and not torch.cuda.is_available()
        enc = built(name, size)
        params = enc.num_parameters()
        # a released model run outside torch (BirdNET in LiteRT) has no torch FLOP count
        flops = None if slow or not enc.trainable else enc.flops_per_clip(5.0)
        rows.append((name, size, params, flops, enc.embed_dim, enc.num_layers))
    print("\n| encoder | size | parameters | GFLOP / 5 s clip | embed dim | layers |")
    print("|---|---|---:|---:|---:|---:|")
    for name, size, params, flops, dim, layers in rows:
        gf = "n/a" if flops is None else f"{flops / 1e9:.3f}"
        print(f"| {name} | {size} | {params:,} | {gf} | {dim} | {layers} |")
    table = {(r[0], r[1]): r for r in rows}
    for name, sizes in list_encoders().items():
        counted = [table[(name, s)] for s in sizes]
        if name == "logmel":
            assert all(r[2] == 0 for r in counted)  # nothing learned
        else:
            assert all(r[2] > 0 for r in counted)
            params = [r[2] for r in counted]
            assert params == sorted(params) and len(set(params)) == len(params)  # tiny < small < base
        flops = [r[3] for r in counted if r[3] is not None]
        assert all(f > 0 for f in flops) and flops == sorted(flops)
    # EfficientNet-B0: 4.0-4.1 M backbone parameters (torchvision's features), about 0.39 GMAC per 224x224
    # image, so about 2 x 0.39 x (128 x 501) / (224 x 224) = 1.0 GFLOP for the 128 x 501 mel image of 5 s.
    _, _, params, flops, dim, layers = table[("efficientnet", "base")]
    assert 4.0e6 < params < 4.1e6 and dim == 1280 and layers == 9
    assert 0.9e9 < flops < 1.2e9
    enc = built("efficientnet", "base")
    assert enc.flops_per_clip(10.0) == pytest.approx(2 * flops, rel=0.05)  # a CNN is linear in length
    if ("beats", "base") in table:
        assert 85e6 < table[("beats", "base")][2] < 95e6  # the paper: about 90.3 M


@pytest.mark.parametrize("name", sorted(list_encoders()))
def test_every_architecture_saves_and_loads_through_its_config(tmp_path, name):
    from avexlab.models import load_encoder, save_encoder

    enc = built(name, list_encoders()[name][0])  # tiny, or a released model's version
    wave = 0.1 * torch.randn(2, SR, generator=torch.Generator().manual_seed(2))
    loaded = load_encoder(save_encoder(enc, tmp_path / name))
    assert type(loaded).__qualname__ == type(enc).__qualname__ and loaded.config == enc.config
    torch.testing.assert_close(loaded.embed(wave), enc.embed(wave), atol=0, rtol=0)


def test_logmel_baseline_is_the_log_mel_statistics():
    from avexlab.audio.mel import log_mel_statistics

    enc = built("logmel", "base")
    lengths = [12000, 16000]
    mask = torch.arange(16000)[None, :] >= torch.tensor(lengths)[:, None]
    wave = (0.1 * torch.randn(2, 16000, generator=torch.Generator().manual_seed(4))).masked_fill(mask, 0.0)
    out = enc(wave, mask)
    assert out.tokens.shape == (2, 1, 256) and out.padding_mask is None
    torch.testing.assert_close(enc.embed(wave, mask), log_mel_statistics(wave, SR, mask), atol=0, rtol=0)
    assert list(enc.parameters()) == [] and enc.state_dict() == {}
    assert built("logmel", "tiny").embed(wave).shape == (2, 128)


def test_registering_a_name_twice_is_an_error_but_reloading_is_not():
    import importlib

    from avexlab.models import logmel
    from avexlab.models.registry import encoder_class, register_encoder

    with pytest.raises(ConfigError, match="registered twice"):

        @register_encoder("efficientnet", presets={"tiny": {}})
        class Impostor(Encoder):
            pass

    reloaded = importlib.reload(logmel)
    assert encoder_class("logmel") is reloaded.LogMelStatistics
    assert type(build_encoder("logmel", "tiny")) is reloaded.LogMelStatistics


def test_package_import_is_lazy():
    import subprocess
    import sys

    code = (
        "import sys, avexlab.models as m; assert 'torch' not in sys.modules, 'torch imported eagerly'; "
        "m.build_encoder; assert 'torch' in sys.modules; print(sorted(m.__all__))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "load_encoder" in done.stdout and "EncoderOutput" in done.stdout


def test_an_encoder_without_forward_cannot_be_built():
    class NoForward(Encoder):
        pass

    with pytest.raises(TypeError, match="abstract"):
        NoForward()
