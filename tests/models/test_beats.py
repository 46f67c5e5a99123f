"""BEATs: parity with the official code, token counts, padding invariance, hooks, checkpoint errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from tolerance import (
    assert_close_f32,
    bf16_casts,
    bf16_rel_tol,
    encoder_tol,
    f32_tol,
    kaldi_fbank_tol,
    pooled_tol,
    row_scale,
    transformer_ops,
)

from avexlab.errors import CheckpointError, ConfigError
from avexlab.models import beats
from avexlab.models.registry import build_encoder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "beats"


@pytest.fixture(scope="module")
def official() -> tuple[dict, dict]:
    ckpt = torch.load(FIXTURES / "checkpoint.pt", weights_only=True)
    expected = torch.load(FIXTURES / "expected.pt", weights_only=True)
    return ckpt, expected


@pytest.fixture(scope="module")
def tiny() -> beats.BEATs:
    torch.manual_seed(0)
    return build_encoder("beats", size="tiny").eval()


def _fbank_tol(model: beats.BEATs, wave: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Rounding tolerance ``[F, 128]`` on ``(fbank(wave x 2^15) - 15.41663) / (2 x 6.55582)``: the Kaldi fbank's
    bound (``kaldi_fbank_tol``, from the wave and the reference's values) over the normaliser, plus the
    normalisation's 3 roundings."""
    mean, std = model.config["fbank_mean"], model.config["fbank_std"]
    raw = ref.double() * (2 * std) + mean
    fb = kaldi_fbank_tol(wave, raw, sample_frequency=16000, num_mel_bins=128, gain=32768.0)
    return fb / (2 * std) + f32_tol(ref, ops=3)


def _encoder_tol(ref: torch.Tensor, layer: int) -> torch.Tensor:
    """Rounding tolerance on layer ``layer``'s output ``[N, 48]``, per token scaled by its largest value
    (post-LN outputs). Roundings on the longest path: the 16 x 16 patch convolution, LayerNorm over the 32
    patch channels and the projection to 48, the positional convolution (12 channels per group x 16 taps),
    its GELU and add, LayerNorm, and per layer the relative-bias gate (a 12-term projection, sums, sigmoid)
    and a transformer block (``transformer_ops``)."""
    n = ref.shape[0]
    ops = 256 + (2 * 32 + 6) + 32 + 12 * 16 + 4 + 1 + (2 * 48 + 6)
    ops += (layer + 1) * (12 + 4 + 4 + 3) + transformer_ops(
        dim=48, ffn=96, heads=4, tokens=n, layers=layer + 1
    )
    return f32_tol(ref, ops=ops, scale=row_scale(ref))


def test_parity_with_official_code(official) -> None:
    """Our frontend against the official fbank; our encoder, fed the official fbank (so that it is compared
    on its own rounding alone), against every layer's output and the tokens. That ``forward`` is
    ``frontend -> patchify -> encode`` is test_ssl_hooks_compose_to_forward's claim."""
    ckpt, expected = official
    model = beats.from_official_checkpoint(ckpt, source="fixture").eval()
    assert model.num_layers == 2 and model.embed_dim == 48
    with torch.no_grad():
        for i, wave in enumerate(expected["wave"]):
            fbank, frame_mask = model.frontend(wave.unsqueeze(0))
            assert frame_mask is None
            ref_fbank = expected["fbank"][i]
            assert_close_f32(fbank[0], ref_fbank, _fbank_tol(model, wave, ref_fbank), what=f"clip {i} fbank")
            tokens, token_mask, _ = model.patchify(ref_fbank.unsqueeze(0))
            out = model.encode(tokens, token_mask)
            assert len(out.hidden_states) == 2
            for layer, (ours, ref) in enumerate(
                zip(out.hidden_states, expected["hidden_states"][i], strict=True)
            ):
                assert_close_f32(ours[0], ref, _encoder_tol(ref, layer), what=f"clip {i} layer {layer}")
            tol = _encoder_tol(expected["tokens"][i], 1)
            assert_close_f32(out.tokens[0], expected["tokens"][i], tol, what=f"clip {i} tokens")


def test_official_state_dict_layout(official) -> None:
    ckpt, _ = official
    model = beats.from_official_checkpoint(ckpt)
    keys = set(model.state_dict())
    assert keys == set(ckpt["model"])
    assert {"encoder.pos_conv.0.weight_g", "encoder.pos_conv.0.weight_v"} <= keys
    tables = [layer.self_attn.relative_attention_bias.weight for layer in model.encoder.layers]
    assert all(t is tables[0] for t in tables)  # the layer-0 table is shared by every layer


@pytest.mark.parametrize(("seconds", "tokens"), [(5.0, 248), (10.0, 496)])
def test_token_counts(tiny, seconds: float, tokens: int) -> None:
    wave = torch.randn(1, int(seconds * 16000)) * 0.1
    with torch.no_grad():
        out = tiny(wave)
    assert out.tokens.shape == (1, tokens, tiny.embed_dim)
    assert out.padding_mask is None
    assert len(out.hidden_states) == tiny.num_layers and out.hidden_states[-1] is out.tokens


def test_padding_invariance_on_real_audio(tmp_path, tiny) -> None:
    # 15,600 samples -> 96 frames = 6 whole time patches; embedded alone and padded inside a batch.
    rng = np.random.default_rng(0)
    paths = []
    for i, n in enumerate((15600, 24000, 20000)):
        path = tmp_path / f"c{i}.wav"
        sf.write(path, (0.2 * rng.standard_normal(n)).astype(np.float32), 16000)
        paths.append(path)
    waves = [torch.from_numpy(sf.read(p, dtype="float32")[0]) for p in paths]
    batch = torch.zeros(3, 24000)
    mask = torch.ones(3, 24000, dtype=torch.bool)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
        mask[i, : len(w)] = False
    with torch.no_grad():
        alone = tiny(waves[0].unsqueeze(0))
        out = tiny(batch, mask)
        assert out.padding_mask is not None
        n = alone.tokens.shape[1]
        assert n == 6 * 8 and int((~out.padding_mask[0]).sum()) == n
        assert not out.padding_mask[1].any()
        for layer, (h_alone, h_batch) in enumerate(zip(alone.hidden_states, out.hidden_states, strict=True)):
            tol = encoder_tol(tiny, h_alone[0], samples=24000, layer=layer)  # the batch's length
            assert_close_f32(h_batch[0, :n], h_alone[0], tol, what=f"layer {layer}, padded vs alone")
        for pooling in ("mean", "max"):
            assert_close_f32(
                tiny.pool(out, pooling=pooling)[0],
                tiny.pool(alone, pooling=pooling)[0],
                pooled_tol(alone.tokens[0], tol),
                what=f"{pooling} pooling",
            )
        # The padding content does not matter.
        noisy = batch.masked_fill(mask, 0.5)
        emb = tiny.embed(batch, mask)
        tol = pooled_tol(out.tokens[0, :n], encoder_tol(tiny, out.tokens[0, :n], samples=24000, layer=-1))
        assert_close_f32(tiny.embed(noisy, mask)[0], emb[0], tol, what="embedding with other padding")


def test_pooling_and_layers(tiny) -> None:
    wave = torch.randn(2, 16000) * 0.1
    out = tiny(wave)  # with autograd on; embed runs under no_grad, which may pick other kernels
    first, last = tiny.embed(wave, layer=0, pooling="max"), tiny.embed(wave)
    for b in range(2):
        h = out.hidden_states[0][b].detach()
        tol = pooled_tol(h, encoder_tol(tiny, h, samples=16000, layer=0))
        assert_close_f32(first[b], h.amax(dim=0), tol, what=f"clip {b} layer 0 max pooling")
        h = out.tokens[b].detach()
        tol = pooled_tol(h, encoder_tol(tiny, h, samples=16000, layer=-1))
        assert_close_f32(last[b], h.mean(dim=0), tol, what=f"clip {b} mean pooling")
    with pytest.raises(ValueError, match="CLS"):
        tiny.embed(wave, pooling="cls")
    with pytest.raises(IndexError):
        tiny.embed(wave, layer=5)


def test_ssl_hooks_compose_to_forward(tiny) -> None:
    wave = torch.randn(2, 20000) * 0.1
    mask = torch.zeros(2, 20000, dtype=torch.bool)
    mask[1, 12000:] = True
    with torch.no_grad():
        fbank, frame_mask = tiny.frontend(wave, mask)
        tokens, token_mask, grid = tiny.patchify(fbank, frame_mask)
        assert fbank.shape == (2, 123, 128) and frame_mask.shape == (2, 123)
        assert grid == (8, 7) and tokens.shape == (2, 56, tiny.embed_dim)
        direct = tiny(wave, mask)
        composed = tiny.encode(tokens, token_mask)
        assert torch.equal(composed.tokens, direct.tokens)  # forward is these hooks: the same computation
        visible = tiny.encode(tokens[:, ::4])  # a subset of tokens, as a masked-prediction objective passes
    assert visible.tokens.shape == (2, 14, tiny.embed_dim)


def test_config_is_complete_and_serialisable(tiny) -> None:
    cfg = json.loads(json.dumps(tiny.config))
    torch.manual_seed(0)
    again = beats.BEATs(**cfg)
    for (k, a), (_, b) in zip(tiny.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), k  # same config + same seed -> same weights
    with pytest.raises(ConfigError, match="unknown override"):
        build_encoder("beats", size="tiny", hidden=3)
    with pytest.raises(ConfigError, match="unknown"):
        beats.BEATs(**{**cfg, "nope": 1})


def test_other_sample_rates_keep_patch_counts() -> None:
    torch.manual_seed(0)
    model = build_encoder("beats", size="tiny", sample_rate=48000).eval()
    assert float(model.fbank.mel_banks[-1].sum()) == 0.0  # Nyquist bin unused, mel range up to 24 kHz
    with torch.no_grad():
        out = model(torch.randn(1, 5 * 48000) * 0.1)
    assert out.tokens.shape[1] == 248


def test_finetuned_predictor_is_ignored_with_a_warning(official) -> None:
    ckpt, _ = official
    model_sd = dict(ckpt["model"])
    model_sd["predictor.weight"] = torch.zeros(5, 48)
    model_sd["predictor.bias"] = torch.zeros(5)
    cfg = {**ckpt["cfg"], "finetuned_model": True, "predictor_class": 5}
    with pytest.warns(UserWarning, match="predictor"):
        model = beats.from_official_checkpoint({"cfg": cfg, "model": model_sd}, source="ft.pt")
    assert "predictor.weight" not in model.state_dict()


def test_checkpoint_errors_name_the_file_and_keys(official) -> None:
    ckpt, _ = official
    missing = {k: v for k, v in ckpt["model"].items() if k != "encoder.layer_norm.bias"}
    with pytest.raises(CheckpointError, match=r"m\.pt.*missing.*encoder\.layer_norm\.bias"):
        beats.from_official_checkpoint({"cfg": ckpt["cfg"], "model": missing}, source="m.pt")
    extra = {**ckpt["model"], "encoder.extra.weight": torch.zeros(1)}
    with pytest.raises(CheckpointError, match=r"x\.pt.*unexpected.*encoder\.extra\.weight"):
        beats.from_official_checkpoint({"cfg": ckpt["cfg"], "model": extra}, source="x.pt")
    bigger = {**ckpt["cfg"], "encoder_layers": 3}
    with pytest.raises(CheckpointError, match="missing"):
        beats.from_official_checkpoint({"cfg": bigger, "model": ckpt["model"]}, source="b.pt")
    eat_like = {
        "blocks.0.attn.qkv.weight": torch.zeros(3, 1),
        "modality_encoders.IMAGE.extra_tokens": torch.zeros(1),
    }
    with pytest.raises(CheckpointError, match="EAT"):
        beats.from_official_checkpoint({"cfg": ckpt["cfg"], "model": eat_like}, source="eat.pt")
    with pytest.raises(CheckpointError, match=r"n\.pt.*'cfg'"):
        beats.from_official_checkpoint({"state_dict": {}}, source="n.pt")
    with pytest.raises(CheckpointError, match="layer_norm_first"):
        beats.from_official_checkpoint(
            {"cfg": {**ckpt["cfg"], "layer_norm_first": True}, "model": ckpt["model"]}
        )


def test_bf16_autocast_stays_close_to_fp32(tiny) -> None:
    wave = torch.randn(2, 24000, generator=torch.Generator().manual_seed(5)) * 0.1
    mask = torch.zeros(2, 24000, dtype=torch.bool)
    mask[1, 15000:] = True
    ref = tiny.embed(wave, mask)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = tiny.embed(wave, mask)
    assert low.dtype == torch.bfloat16
    rel = (low.float() - ref).norm(dim=1) / ref.norm(dim=1)
    assert float(rel.max()) < bf16_rel_tol(bf16_casts(tiny))
