"""EfficientNet-B0: torchvision parity and key layout, timm key mapping, padding, channels_last, presets."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch
import torchvision
from tolerance import (
    assert_close_f32,
    bf16_casts,
    bf16_rel_tol,
    encoder_ops,
    encoder_tol,
    f32_tol,
    linear_tol,
    pooled_tol,
    row_scale,
)

from avexlab.errors import CheckpointError, ConfigError
from avexlab.models.checkpoints import load_strict
from avexlab.models.efficientnet import (
    EfficientNetEncoder,
    config_from_state_dict,
    timm_to_torchvision,
    torchvision_to_timm,
)
from avexlab.models.registry import build_encoder


def _randomise_batchnorm(model: torch.nn.Module, seed: int) -> None:
    """Non-trivial running statistics and affine parameters, so eval-mode BatchNorm is tested."""
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.rand(m.running_mean.shape, generator=g) * 0.2 - 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
            m.bias.data.copy_(torch.rand(m.bias.shape, generator=g) * 0.2 - 0.1)


@pytest.fixture(scope="module")
def torchvision_b0() -> torchvision.models.EfficientNet:
    torch.manual_seed(1234)
    model = torchvision.models.efficientnet_b0(weights=None)
    _randomise_batchnorm(model, 1)
    return model.eval()


@pytest.fixture(scope="module")
def wave(tmp_path_factory) -> torch.Tensor:
    """Two 1.5 s clips (a chirp and noise) written to disk with soundfile and read back."""
    sr = 16000
    t = np.arange(int(1.5 * sr)) / sr
    rng = np.random.default_rng(0)
    clips = [0.5 * np.sin(2 * np.pi * (500 * t + 1500 * t**2)), 0.3 * rng.standard_normal(t.size)]
    out = []
    for i, y in enumerate(clips):
        path = tmp_path_factory.mktemp("audio") / f"clip{i}.wav"
        sf.write(path, y.astype(np.float32), sr, subtype="FLOAT")
        out.append(torch.from_numpy(sf.read(path, dtype="float32")[0]))
    return torch.stack(out)


def test_torchvision_state_dict_loads_and_matches_every_stage(torchvision_b0, wave):
    enc = build_encoder("efficientnet", "base", num_classes=1000).eval()
    assert set(enc.state_dict()) == set(torchvision_b0.state_dict())
    load_strict(enc, torchvision_b0.state_dict(), "torchvision efficientnet_b0")
    image, _ = enc.image(wave)
    assert image.shape == (2, 3, 128, wave.shape[1] // 160 + 1)
    captured: list[torch.Tensor] = []
    hooks = [s.register_forward_hook(lambda m, i, o: captured.append(o)) for s in torchvision_b0.features]
    with torch.no_grad():
        logits_ref = torchvision_b0(image)
    for h in hooks:
        h.remove()
    out = enc(wave)
    assert len(out.hidden_states) == enc.num_layers == 9
    n = wave.shape[1]
    for layer, (ref, ours) in enumerate(zip(captured, out.hidden_states, strict=True)):
        ref = ref.mean(dim=2).transpose(1, 2)
        assert_close_f32(ours, ref, encoder_tol(enc, ref, samples=n, layer=layer), what=f"stage {layer}")
    gap = torch.flatten(torchvision_b0.avgpool(captured[-1]), 1)
    last = out.hidden_states[-1].detach()
    gap_tol = torch.stack([pooled_tol(t, encoder_tol(enc, t, samples=n, layer=-1)) for t in last])
    assert_close_f32(enc.embed(wave), gap, gap_tol, what="global average pool")
    with torch.no_grad():
        head = torchvision_b0.classifier[1]
        tol = linear_tol(head.weight, gap, gap_tol, head.bias)
        assert_close_f32(enc.classify(wave), logits_ref, tol, what="logits")


def test_backbone_without_head_rejects_classifier_keys_and_counts_params(torchvision_b0):
    enc = build_encoder("efficientnet", "base")
    backbone = {k: v for k, v in torchvision_b0.state_dict().items() if not k.startswith("classifier.")}
    load_strict(enc, backbone, "backbone")
    with pytest.raises(CheckpointError, match=r"unexpected key\(s\): classifier.1.bias, classifier.1.weight"):
        load_strict(enc, torchvision_b0.state_dict(), "full.pt")
    assert enc.num_parameters() == sum(p.numel() for p in torchvision_b0.features.parameters())
    assert 4.0e6 < enc.num_parameters() < 4.1e6
    assert enc.embed_dim == 1280
    with pytest.raises(ConfigError, match="num_classes"):
        enc.classify(torch.zeros(1, 16000))
    assert config_from_state_dict(torchvision_b0.state_dict())["num_classes"] == 1000
    assert config_from_state_dict(backbone)["num_classes"] is None
    small = build_encoder("efficientnet", "small").state_dict()
    with pytest.raises(CheckpointError, match="EfficientNet-B0"):
        config_from_state_dict(small, "small.pt")


def test_timm_names_round_trip(torchvision_b0):
    tv = torchvision_b0.state_dict()
    timm_named = torchvision_to_timm(tv)
    assert "conv_stem.weight" in timm_named and "blocks.0.0.conv_dw.weight" in timm_named
    assert "blocks.1.0.conv_pwl.weight" in timm_named and "classifier.weight" in timm_named
    assert not any(k.startswith("features.") for k in timm_named)
    back = timm_to_torchvision(timm_named)
    assert back.keys() == tv.keys()
    assert all(back[k] is tv[k] for k in tv)
    with pytest.raises(CheckpointError, match="bogus.weight"):
        timm_to_torchvision({**timm_named, "bogus.weight": torch.zeros(1)}, "weights.pth")


def test_real_timm_efficientnet_b0_matches(wave):
    timm = pytest.importorskip("timm")
    torch.manual_seed(7)
    model = timm.create_model("efficientnet_b0", pretrained=False, num_classes=10)
    _randomise_batchnorm(model, 2)
    model.eval()
    sd = model.state_dict()
    assert torchvision_to_timm(timm_to_torchvision(sd)).keys() == sd.keys()
    enc = build_encoder("efficientnet", "base", num_classes=10).eval()
    load_strict(enc, timm_to_torchvision(sd, "timm"), "timm efficientnet_b0")
    image, _ = enc.image(wave)
    with torch.no_grad():
        ref = model.forward_features(image)
        maps, _ = enc.feature_maps(wave)
        # [B, C, H, W]: every position's channel vector scaled by its largest value
        ops = encoder_ops(enc, samples=wave.shape[1], layer=-1)
        tol = f32_tol(ref, ops=ops, scale=row_scale(ref, dim=1))
        assert_close_f32(maps[-1], ref, tol, what="last feature map")
        gap = ref.mean(dim=(2, 3))
        gap_tol = tol.amax(dim=(2, 3)) + f32_tol(
            ref.abs().mean(dim=(2, 3)), ops=ref.shape[2] * ref.shape[3] + 1
        )
        tol = linear_tol(model.classifier.weight, gap, gap_tol, model.classifier.bias)
        assert_close_f32(enc.classify(wave), model(image), tol, what="logits")


def test_padding_masks_per_layer_and_exact_alone_vs_batch():
    torch.manual_seed(0)
    enc = build_encoder("efficientnet", "tiny").eval()
    _randomise_batchnorm(enc, 3)
    lengths = [8000, 11111, 20000]
    T = max(lengths)
    g = torch.Generator().manual_seed(0)
    mask = torch.arange(T)[None, :] >= torch.tensor(lengths)[:, None]
    wave = torch.randn(3, T, generator=g).masked_fill(mask, 0.0)
    out = enc(wave, mask)
    assert out.layer_padding_masks is not None and out.layer_padding_masks[-1] is out.padding_mask
    for i, n in enumerate(lengths):
        alone = enc(wave[i : i + 1, :n])
        assert alone.padding_mask is None
        for layer in range(enc.num_layers):
            valid = alone.hidden_states[layer].shape[1]
            layer_mask = out.layer_padding_masks[layer][i]
            assert int((~layer_mask).sum()) == valid and not layer_mask[:valid].any()
            ref = alone.hidden_states[layer][0]
            tol = encoder_tol(enc, ref, samples=T, layer=layer)  # the batch's width bounds the means' length
            assert_close_f32(out.hidden_states[layer][i, :valid], ref, tol, what=f"clip {i} stage {layer}")
            for pooling in ("mean", "max"):
                assert_close_f32(
                    enc.pool(out, layer, pooling)[i],
                    enc.pool(alone, layer, pooling)[0],
                    pooled_tol(ref, tol),
                    what=f"clip {i} stage {layer} {pooling} pooling",
                )


def test_channels_last_same_numbers_and_same_keys():
    torch.manual_seed(3)
    a = build_encoder("efficientnet", "tiny").eval()
    b = build_encoder("efficientnet", "tiny", channels_last=True).eval()
    load_strict(b, a.state_dict(), "a")
    assert b.features[0][0].weight.is_contiguous(memory_format=torch.channels_last)
    wave = torch.randn(2, 16000, generator=torch.Generator().manual_seed(1))
    tokens = a(wave).tokens.detach()
    tol = torch.stack([pooled_tol(t, encoder_tol(a, t, samples=16000, layer=-1)) for t in tokens])
    assert_close_f32(b.embed(wave), a.embed(wave), tol, what="channels_last embedding")


@pytest.mark.parametrize("sample_rate", [32000, 48000])
def test_higher_sample_rates_keep_the_token_rate(sample_rate):
    enc = build_encoder("efficientnet", "tiny", sample_rate=sample_rate).eval()
    ref = build_encoder("efficientnet", "tiny").eval()
    out = enc(torch.randn(1, sample_rate))
    assert enc.frontend.hop_length == sample_rate // 100
    assert out.tokens.shape == ref(torch.randn(1, 16000)).tokens.shape


def test_seeded_build_is_deterministic_and_trains():
    torch.manual_seed(5)
    a = build_encoder("efficientnet", "tiny", num_classes=3)
    torch.manual_seed(5)
    b = build_encoder("efficientnet", "tiny", num_classes=3)
    assert all(torch.equal(a.state_dict()[k], v) for k, v in b.state_dict().items())
    a.train()
    logits = a.classify(torch.randn(2, 16000))
    logits.square().mean().backward()
    grads = [p.grad for p in a.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    with pytest.raises(ConfigError, match="positive multipliers"):
        EfficientNetEncoder(width_mult=0.0)


def test_bf16_autocast_stays_within_bf16_tolerance_of_fp32():
    torch.manual_seed(9)
    enc = build_encoder("efficientnet", "tiny").eval()
    _randomise_batchnorm(enc, 4)
    wave = 0.1 * torch.randn(2, 16000, generator=torch.Generator().manual_seed(5))
    ref = enc.embed(wave)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = enc.embed(wave)
    assert low.dtype == torch.bfloat16
    rel = (low.float() - ref).norm() / ref.norm()
    assert 0 < rel < bf16_rel_tol(bf16_casts(enc))  # bf16 keeps 8 bits of mantissa: u = 2^-8 per rounding


def test_fast_path_folds_batchnorm_in_eval_only_and_never_goes_stale():
    torch.manual_seed(11)
    ref = build_encoder("efficientnet", "tiny").eval()
    _randomise_batchnorm(ref, 5)
    fast = build_encoder("efficientnet", "tiny").eval()
    load_strict(fast, ref.state_dict(), "ref")
    fast.set_fast_path()
    assert fast.channels_last and all(
        m.fold_batchnorm for m in fast.modules() if type(m).__name__ == "ConvBN"
    )
    assert fast.state_dict().keys() == ref.state_dict().keys()
    lengths = [12000, 16000]
    mask = torch.arange(16000)[None, :] >= torch.tensor(lengths)[:, None]
    wave = torch.randn(2, 16000, generator=torch.Generator().manual_seed(2)).masked_fill(mask, 0.0)
    # The fold replaces each BatchNorm's 6 roundings by about 4 (the scaled weight and bias), so the unfolded
    # network's rounding count (encoder_tol) bounds both.
    for m in (None, mask):  # padded batches too: the fold happens before the masks are applied
        a, b = ref(wave, m), fast(wave, m)
        for layer, (ha, hb) in enumerate(zip(a.hidden_states, b.hidden_states, strict=True)):
            tol = encoder_tol(ref, ha.detach(), samples=16000, layer=layer)
            assert_close_f32(hb, ha, tol, what=f"stage {layer}, folded vs not, mask {m is not None}")
    # The fold is computed from the current parameters: new weights are used at once.
    _randomise_batchnorm(ref, 6)
    load_strict(fast, ref.state_dict(), "ref")
    tokens = ref(wave).tokens.detach()
    tol = torch.stack([pooled_tol(t, encoder_tol(ref, t, samples=16000, layer=-1)) for t in tokens])
    assert_close_f32(fast.embed(wave), ref.embed(wave), tol, what="embedding after new weights")
    # Training mode runs Conv -> BN with batch statistics, exactly as without the fold (same memory
    # format on both sides, so the same kernels: identical outputs).
    ref.set_fast_path(fold_batchnorm=False, channels_last=True, compile=False)
    before = ref.features[0][1].running_mean.clone()
    ref.train()
    fast.train()
    torch.manual_seed(0)
    out_ref = ref(wave).tokens
    torch.manual_seed(0)
    out_fast = fast(wave).tokens
    assert torch.equal(out_fast, out_ref)
    assert not torch.equal(fast.features[0][1].running_mean, before)  # batch statistics were used
    assert torch.equal(fast.features[0][1].running_mean, ref.features[0][1].running_mean)  # same kernels


@pytest.mark.parametrize("p", [0.0, 0.2, 0.5, 1.0])
def test_drop_path_is_torchvisions_row_stochastic_depth_bit_for_bit(p: float) -> None:
    from torchvision.ops import stochastic_depth

    from avexlab.models.efficientnet import drop_path

    x = torch.randn(64, 3, 5, 7)
    for seed in range(3):
        torch.manual_seed(seed)
        ours = drop_path(x, p, training=True)
        after_ours = torch.rand(1)
        torch.manual_seed(seed)
        theirs = stochastic_depth(x, p, "row", True)
        assert torch.equal(ours, theirs) and torch.equal(torch.rand(1), after_ours)  # same RNG use
    assert torch.equal(drop_path(x, p, training=False), x)
    if 0.0 < p < 1.0:  # whole rows are dropped, the rest rescaled
        y = drop_path(x, p, training=True)
        dropped = (y == 0).flatten(1).all(1)
        assert dropped.any() and (~dropped).any()
        expected = x[~dropped] / (1 - p)  # one rounding; drop_path multiplies by a rounded 1 / (1 - p): two
        assert_close_f32(y[~dropped], expected, f32_tol(expected, ops=2), what="kept rows")


def test_encoders_build_without_importing_torchvision() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from avexlab.models import build_encoder; "
        "[build_encoder(n, 'tiny') for n in ('efficientnet', 'beats', 'eat')]; "
        "print('torchvision' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
