"""Write the BEATs / EAT parity fixtures under tests/fixtures/ by running the REFERENCE implementations.

The reference code is never part of avexlab: fetch it yourself and pass its folders on the command line.

    python tools/make_parity_fixtures.py \\
        --beats-src /tmp/ref/beats          # microsoft/unilm beats/ (BEATs.py, backbone.py, modules.py)
        --eat-src /tmp/ref                  # a folder holding the package eat_hf/ (the Hugging Face port's
                                            # eat_model.py + model_core.py, with an empty __init__.py)
        --extra-path /tmp/ref/pylib         # where timm is installed (the HF port imports it)
        --out tests/fixtures

Small random models (fixed seeds, every parameter perturbed so that biases, norms and gates all matter)
run on fixed synthetic clips; the checkpoints (official layouts), inputs and expected outputs are saved
with ``torch.save`` as plain tensors / dicts (loadable with ``weights_only=True``).
"""

from __future__ import annotations

import argparse
import math
import sys
import types
from pathlib import Path

import torch
import torchaudio.compliance.kaldi as ta_kaldi

SR = 16000


def clips() -> list[torch.Tensor]:
    """Two fixed clips in [-1, 1]: 1.00 s (6 whole BEATs time patches) and 1.37 s."""
    g = torch.Generator().manual_seed(1234)
    out = []
    for seconds, f0 in ((1.0, 440.0), (1.37, 1800.0)):
        n = int(seconds * SR)
        t = torch.arange(n) / SR
        chirp = torch.sin(2 * math.pi * (f0 + 600 * t) * t)
        out.append((0.3 * chirp + 0.05 * torch.randn(n, generator=g)).float())
    return out


def perturb(model: torch.nn.Module, seed: int, scale: float = 0.05) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not p.requires_grad:  # EAT's fixed sin-cos table is a frozen parameter: keep it exact
                continue
            p.add_(torch.randn(p.shape, generator=g) * scale)


def beats(src: Path, out: Path) -> None:
    sys.path.insert(0, str(src))
    from BEATs import BEATs, BEATsConfig  # the official code, from the path given

    cfg = {
        "input_patch_size": 16,
        "embed_dim": 32,
        "conv_bias": False,
        "encoder_layers": 2,
        "encoder_embed_dim": 48,
        "encoder_ffn_embed_dim": 96,
        "encoder_attention_heads": 4,
        "activation_fn": "gelu",
        "layer_wise_gradient_decay_ratio": 0.6,
        "layer_norm_first": False,
        "deep_norm": True,
        "dropout": 0.0,
        "attention_dropout": 0.0,
        "activation_dropout": 0.0,
        "encoder_layerdrop": 0.0,
        "dropout_input": 0.0,
        "conv_pos": 16,
        "conv_pos_groups": 4,
        "relative_position_embedding": True,
        "num_buckets": 320,
        "max_distance": 800,
        "gru_rel_pos": True,
        "finetuned_model": False,
    }
    torch.manual_seed(0)
    model = BEATs(BEATsConfig(cfg)).eval()
    perturb(model, 1)
    layers: list[torch.Tensor] = []
    for layer in model.encoder.layers:
        layer.register_forward_hook(lambda _m, _i, o: layers.append(o[0].transpose(0, 1).clone()))
    record: dict[str, list[torch.Tensor]] = {"wave": [], "fbank": [], "hidden_states": [], "tokens": []}
    with torch.no_grad():
        for wave in clips():
            layers.clear()
            x, _ = model.extract_features(wave.unsqueeze(0))
            record["wave"].append(wave)
            record["fbank"].append(model.preprocess(wave.unsqueeze(0))[0])
            record["hidden_states"].append(torch.stack([h[0] for h in layers]))
            record["tokens"].append(x[0].clone())
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    (out / "beats").mkdir(parents=True, exist_ok=True)
    torch.save({"cfg": cfg, "model": state}, out / "beats" / "checkpoint.pt")
    torch.save(record, out / "beats" / "expected.pt")


def eat(src: Path, out: Path) -> None:
    sys.path.insert(0, str(src))
    from eat_hf.eat_model import EAT  # the Hugging Face port (worstchan/EAT-*), from the path given

    config = {
        "embed_dim": 48,
        "depth": 2,
        "num_heads": 4,
        "patch_size": 16,
        "stride": 16,
        "in_chans": 1,
        "mel_bins": 128,
        "max_length": 16,
        "num_classes": 5,
        "model_variant": "pretrain",
        "mlp_ratio": 2.0,
        "qkv_bias": True,
        "drop_rate": 0.0,
        "attn_drop_rate": 0.0,
        "activation_dropout": 0.0,
        "post_mlp_drop": 0.0,
        "start_drop_path_rate": 0.0,
        "end_drop_path_rate": 0.0,
        "layer_norm_first": False,
        "norm_eps": 1e-6,
        "norm_affine": True,
        "fixed_positions": True,
        "img_size": [1024, 128],
    }
    torch.manual_seed(0)
    model = EAT(types.SimpleNamespace(**config)).eval()
    perturb(model, 2)
    layers: list[torch.Tensor] = []
    for block in model.blocks:
        block.register_forward_hook(lambda _m, _i, o: layers.append(o[0].clone()))
    record: dict[str, list[torch.Tensor]] = {"wave": [], "fbank": [], "hidden_states": []}
    with torch.no_grad():
        for wave in clips():
            # The reference recipe (EAT feature_extract.py): remove the mean, Kaldi fbank, zero-pad the
            # frames to the target length (here: the next multiple of 16), normalise.
            w = wave - wave.mean()
            mel = ta_kaldi.fbank(
                w.unsqueeze(0),
                htk_compat=True,
                sample_frequency=SR,
                use_energy=False,
                window_type="hanning",
                num_mel_bins=128,
                dither=0.0,
                frame_shift=10,
            )
            target = -(-mel.shape[0] // 16) * 16
            mel = torch.nn.functional.pad(mel, (0, 0, 0, target - mel.shape[0]))
            mel = (mel - (-4.268)) / (4.569 * 2)
            layers.clear()
            model.extract_features(mel[None, None])
            record["wave"].append(wave)
            record["fbank"].append(mel)
            record["hidden_states"].append(torch.stack([h[0] for h in layers]))  # [L, 1 + N, D], CLS first
    state = {f"model.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    (out / "eat").mkdir(parents=True, exist_ok=True)
    torch.save({"config": config, "state_dict": state}, out / "eat" / "hf_checkpoint.pt")
    torch.save(record, out / "eat" / "expected.pt")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--beats-src", type=Path, required=True)
    ap.add_argument("--eat-src", type=Path, required=True)
    ap.add_argument("--extra-path", type=Path, action="append", default=[])
    ap.add_argument("--out", type=Path, default=Path("tests/fixtures"))
    args = ap.parse_args()
    for p in args.extra_path:
        sys.path.insert(0, str(p))
    torch.set_num_threads(1)
    beats(args.beats_src, args.out)
    eat(args.eat_src, args.out)


if __name__ == "__main__":
    main()
