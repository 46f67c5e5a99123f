"""EAT: parity with the reference (Hugging Face port), fairseq and HF layouts, padding, hooks, errors."""

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
from avexlab.models import eat
from avexlab.models.registry import build_encoder

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "eat"


@pytest.fixture(scope="module")
def reference() -> tuple[dict, dict]:
    ckpt = torch.load(FIXTURES / "hf_checkpoint.pt", weights_only=True)
    expected = torch.load(FIXTURES / "expected.pt", weights_only=True)
    return ckpt, expected


@pytest.fixture(scope="module")
def tiny() -> eat.EAT:
    torch.manual_seed(0)
    return build_encoder("eat", size="tiny").eval()


def _fbank_tol(model: eat.EAT, wave: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Rounding tolerance ``[F, 128]`` on the normalised fbank ``(fbank + 4.268) / (2 x 4.569)``.

    Real frames: the Kaldi fbank's bound (``kaldi_fbank_tol``: FFT, filter weights, filter product, log,
    from the wave and the reference's own values) divided by the normaliser, plus the normalisation's 3
    roundings; frames added as padding hold ``(0 + 4.268) / 9.138``: 3 roundings.
    """
    mean, std = model.config["fbank_mean"], model.config["fbank_std"]
    frames = 1 + (wave.shape[0] - 400) // 160
    raw = ref[:frames].double() * (2 * std) + mean
    tol = f32_tol(ref, ops=3)
    # The clip's mean removal does not change the bound: Kaldi removes each frame's mean anyway.
    fb = kaldi_fbank_tol(wave, raw, sample_frequency=16000, num_mel_bins=128)
    tol[:frames] += fb / (2 * std)
    return tol


def _encoder_tol(ref: torch.Tensor, layer: int) -> torch.Tensor:
    """Rounding tolerance on block ``layer``'s output ``[1 + N, 48]`` (CLS first): per token, the rounding
    count of the patch embedding (a 16 x 16 convolution, the positions' add), the first LayerNorm and
    ``layer + 1`` blocks (``transformer_ops``), scaled by the token's largest value (post-LN outputs)."""
    ops = (
        256
        + 2
        + (2 * 48 + 6)
        + transformer_ops(dim=48, ffn=96, heads=4, tokens=ref.shape[0], layers=layer + 1)
    )
    return f32_tol(ref, ops=ops, scale=row_scale(ref))


def _assert_matches(model: eat.EAT, expected: dict) -> None:
    """Our frontend against the reference's fbank, and our encoder, fed the reference's own fbank (so that
    it is compared on its own rounding alone), against every block's output. That ``forward`` is
    ``frontend -> patchify -> encode`` is test_ssl_hooks' claim."""
    with torch.no_grad():
        for i, wave in enumerate(expected["wave"]):
            fbank, _ = model.frontend(wave.unsqueeze(0))
            ref_fbank = expected["fbank"][i]
            assert_close_f32(fbank[0], ref_fbank, _fbank_tol(model, wave, ref_fbank), what=f"clip {i} fbank")
            tokens, token_mask, _ = model.patchify(ref_fbank.unsqueeze(0))
            out = model.encode(tokens, token_mask)
            ref = expected["hidden_states"][i]  # [L, 1 + N, D], CLS first
            assert len(out.hidden_states) == len(out.cls) == ref.shape[0]
            for layer in range(ref.shape[0]):
                ours = torch.cat([out.cls[layer], out.hidden_states[layer][0]])
                tol = _encoder_tol(ref[layer], layer)
                assert_close_f32(ours, ref[layer], tol, what=f"clip {i} block {layer} (CLS first)")


def test_parity_with_hf_port(reference) -> None:
    ckpt, expected = reference
    model = eat.from_hf_state_dict(ckpt["state_dict"], ckpt["config"], source="hf fixture").eval()
    assert model.decoder is None and model.num_layers == 2
    _assert_matches(model, expected)


def _fairseq_layout(hf: dict, decoder: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    sd: dict[str, torch.Tensor] = {}
    for k, v in hf.items():
        k = k[len("model.") :]
        if k.startswith("pre_norm."):
            sd["modality_encoders.IMAGE.context_encoder.norm." + k[len("pre_norm.") :]] = v
        elif k.startswith("blocks."):
            sd[k] = v
        else:
            sd["modality_encoders.IMAGE." + k] = v
    for k, v in decoder.items():
        sd["modality_encoders.IMAGE." + k] = v
    sd["_ema"] = {"blocks.0.norm1.weight": torch.ones(48)}  # the EMA teacher's fp32 copy
    sd["cls_proj.weight"] = torch.zeros(48, 48)
    sd["cls_proj.bias"] = torch.zeros(48)
    return sd


def test_fairseq_layout_keeps_decoder_and_matches(reference) -> None:
    ckpt, expected = reference
    torch.manual_seed(3)
    dec = eat.Decoder2d(48, 48, 3, 16, 3)
    decoder = {f"decoder.{k}": v for k, v in dec.state_dict().items()}
    fairseq = {
        "cfg": {"model": {"embed_dim": 48, "depth": 2, "num_heads": 4, "mlp_ratio": 2.0, "norm_eps": 1e-6}},
        "model": _fairseq_layout(ckpt["state_dict"], decoder),
    }
    model = eat.from_official_checkpoint(fairseq, source="eat.pt").eval()
    assert model.config["decoder_layers"] == 3 and model.config["decoder_groups"] == 16
    assert torch.equal(model.decoder.proj.weight, dec.proj.weight)  # loaded, not recomputed
    _assert_matches(model, expected)
    wrong = {**fairseq, "cfg": {"model": {**fairseq["cfg"]["model"], "depth": 4}}}
    with pytest.raises(CheckpointError, match="depth"):
        eat.from_official_checkpoint(wrong, source="eat.pt")


@pytest.mark.parametrize(("seconds", "tokens"), [(5.0, 32 * 8), (10.0, 63 * 8)])
def test_token_counts(tiny, seconds: float, tokens: int) -> None:
    with torch.no_grad():
        out = tiny(torch.randn(1, int(seconds * 16000)) * 0.1)
    assert out.tokens.shape == (1, tokens, tiny.embed_dim)
    assert len(out.hidden_states) == tiny.num_layers and out.hidden_states[-1] is out.tokens
    assert len(out.cls) == tiny.num_layers and out.cls[0].shape == (1, tiny.embed_dim)


def test_padding_invariance_on_real_audio(tmp_path, tiny) -> None:
    rng = np.random.default_rng(1)
    lengths = (21920, 32000)  # 1.37 s (not a whole number of patches) and 2 s
    waves = []
    for i, n in enumerate(lengths):
        path = tmp_path / f"c{i}.flac"
        sf.write(path, (0.2 * rng.standard_normal(n) + 0.05).astype(np.float32), 16000)
        waves.append(torch.from_numpy(sf.read(path, dtype="float32")[0]))
    batch = torch.zeros(2, 32000)
    mask = torch.ones(2, 32000, dtype=torch.bool)
    for i, w in enumerate(waves):
        batch[i, : len(w)] = w
        mask[i, : len(w)] = False
    with torch.no_grad():
        alone = tiny(waves[0].unsqueeze(0))
        out = tiny(batch, mask)
    n = alone.tokens.shape[1]
    assert int((~out.padding_mask[0]).sum()) == n
    for layer in range(tiny.num_layers):
        # CLS first, as the block computes it; the batch's 32000 samples bound the attention's length
        ref = torch.cat([alone.cls[layer], alone.hidden_states[layer][0]])
        tol = encoder_tol(tiny, ref, samples=32000, layer=layer)
        ours = torch.cat([out.cls[layer][:1], out.hidden_states[layer][0, :n]])
        assert_close_f32(ours, ref, tol, what=f"block {layer}, padded vs alone (CLS first)")
    tol = encoder_tol(tiny, alone.hidden_states[-1][0], samples=32000, layer=-1)
    for pooling in ("mean", "max"):
        assert_close_f32(
            tiny.pool(out, pooling=pooling)[0],
            tiny.pool(alone, pooling=pooling)[0],
            pooled_tol(alone.hidden_states[-1][0], tol),
            what=f"{pooling} pooling",
        )
    cls_tol = encoder_tol(tiny, alone.cls[-1], samples=32000, layer=-1)
    assert_close_f32(
        tiny.pool(out, pooling="cls")[0], tiny.pool(alone, pooling="cls")[0], cls_tol[0], what="cls"
    )


def test_ssl_hooks(tiny) -> None:
    wave = torch.randn(2, 20000) * 0.1
    mask = torch.zeros(2, 20000, dtype=torch.bool)
    mask[0, 9000:] = True
    with torch.no_grad():
        fbank, frame_mask = tiny.frontend(wave, mask)
        assert fbank.shape[1] % 16 == 0 and frame_mask.shape == fbank.shape[:2]
        tokens, token_mask, grid = tiny.patchify(fbank, frame_mask)
        assert grid == (8, fbank.shape[1] // 16)
        # forward is frontend -> patchify -> encode: the very same computation, bit for bit
        assert torch.equal(tiny.encode(tokens, token_mask).tokens, tiny(wave, mask).tokens)
        out, ffn = tiny.encode_with_ffn(tokens[:, ::5])  # visible tokens only
        assert out.tokens.shape == (2, tokens[:, ::5].shape[1], tiny.embed_dim)
        assert len(ffn) == tiny.num_layers and ffn[0].shape == (
            2,
            1 + tokens[:, ::5].shape[1],
            tiny.embed_dim,
        )
        decoded = tiny.decode(out.tokens.new_zeros(tokens.shape), grid)
    assert decoded.shape == tokens.shape
    with pytest.raises(ConfigError, match="full grid"):
        tiny.decode(tokens[:, :-1], grid)
    no_dec = build_encoder("eat", size="tiny", decoder_layers=0)
    with pytest.raises(ConfigError, match="decoder_layers"):
        no_dec.decode(tokens, grid)


def test_positions_put_frequency_first() -> None:
    pos = eat.sincos_positions(3, 8, 16)
    assert pos.shape == (24, 16)
    # Token 1 is (time 0, freq 1): the first half changes, the second half (time) equals token 0's.
    assert not torch.allclose(pos[1, :8], pos[0, :8])
    assert torch.equal(pos[1, 8:], pos[0, 8:])  # the same position index through the same formula
    assert torch.equal(pos[8, :8], pos[0, :8])  # token 8 is (time 1, freq 0)


def test_config_round_trip(tiny) -> None:
    cfg = json.loads(json.dumps(tiny.config))
    torch.manual_seed(0)
    again = eat.EAT(**cfg)
    for (k, a), (_, b) in zip(tiny.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), k


def test_checkpoint_errors(reference) -> None:
    ckpt, _ = reference
    sd = dict(ckpt["state_dict"])
    del sd["model.blocks.1.norm2.bias"]
    with pytest.raises(CheckpointError, match=r"hf\.safetensors.*missing.*blocks\.1\.norm2\.bias"):
        eat.from_hf_state_dict(sd, ckpt["config"], source="hf.safetensors")
    sd = {**ckpt["state_dict"], "model.blocks.0.attn.extra": torch.zeros(1)}
    with pytest.raises(CheckpointError, match="unexpected.*blocks.0.attn.extra"):
        eat.from_hf_state_dict(sd, ckpt["config"], source="hf.safetensors")
    sd = dict(ckpt["state_dict"])
    sd["model.fixed_positional_encoder.positions"] = torch.randn_like(
        sd["model.fixed_positional_encoder.positions"]
    )
    with pytest.raises(CheckpointError, match="sin-cos"):
        eat.from_hf_state_dict(sd, ckpt["config"], source="learned.pt")
    with pytest.raises(CheckpointError, match="num_heads"):
        eat.from_hf_state_dict(ckpt["state_dict"], {**ckpt["config"], "num_heads": 5}, source="h.pt")
    beats_ckpt = torch.load(FIXTURES.parent / "beats" / "checkpoint.pt", weights_only=True)
    with pytest.raises(CheckpointError, match="BEATs"):
        eat.from_official_checkpoint(beats_ckpt, source="beats.pt")
    with pytest.raises(CheckpointError, match="EAT weights"):
        eat.from_hf_state_dict({"foo": torch.zeros(1)}, None, source="foo.pt")


def test_finetuned_head_is_ignored_with_a_warning(reference) -> None:
    ckpt, _ = reference
    sd = {**ckpt["state_dict"], "model.head.weight": torch.zeros(5, 48), "model.head.bias": torch.zeros(5)}
    with pytest.warns(UserWarning, match="head"):
        model = eat.from_hf_state_dict(sd, ckpt["config"], source="ft")
    assert not any(k.startswith("head.") for k in model.state_dict())


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
