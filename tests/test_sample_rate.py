"""The sample rate belongs to the encoder: a run config that disagrees fails before any work with both
values named; training and evaluation resample the audio to the encoder's rate, and what the encoder
sees is what it would see fed audio at its own rate."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).parent / "train"))
from tiny import TinyPatchEncoder, make_corpus, tiny_config  # noqa: E402
from tolerance import assert_close_f32, encoder_tol  # noqa: E402

from avexlab.audio import load_audio  # noqa: E402
from avexlab.config import parse_config  # noqa: E402
from avexlab.data.manifest import write_manifest  # noqa: E402
from avexlab.errors import ConfigError  # noqa: E402
from avexlab.evaluate.embed import extract_embeddings  # noqa: E402
from avexlab.models import build_encoder  # noqa: E402
from avexlab.train import train  # noqa: E402
from avexlab.train.data import build_train_data  # noqa: E402


def test_a_data_rate_that_disagrees_with_the_encoder_names_both_values() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config({"model": {"name": "beats"}, "data": {"sample_rate": 32000}})
    assert "32000" in str(err.value) and "16000" in str(err.value)
    # unset, the resolved config records the encoder's rate (what config.yaml then says)
    assert parse_config({"model": {"name": "beats"}}).data.sample_rate == 16000
    assert parse_config({"data": {"sample_rate": 16000}}).data.sample_rate == 16000
    # an encoder built for another rate takes data at that rate
    cfg = parse_config({"model": {"name": "efficientnet", "overrides": {"sample_rate": 32000}}})
    assert cfg.data.sample_rate == 32000


def test_training_an_encoder_of_another_rate_fails_before_any_work(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus")
    cfg = parse_config(tiny_config(corpus, tmp_path / "run", **{"optim.steps": 1, "model.name": "beats"}))
    with pytest.raises(ConfigError) as err:
        train(cfg, encoder=TinyPatchEncoder(sample_rate=32000))
    assert "32000" in str(err.value) and "16000" in str(err.value)
    assert not (tmp_path / "run").exists()  # nothing written


def _tones(sr: int, seconds: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    f = rng.uniform(300, 3000)
    return (0.4 * np.sin(2 * np.pi * f * t) + 0.02 * rng.standard_normal(t.size)).astype(np.float32)


@pytest.mark.parametrize("file_rate", [22050, 32000, 48000])
def test_evaluation_resamples_to_the_encoders_rate(tmp_path: Path, file_rate: int) -> None:
    """Embeddings of files at another rate are exactly the encoder fed that audio resampled to its rate
    (the loader's resampler; its agreement with torchaudio's is tested in tests/audio)."""
    enc = build_encoder("logmel", size="tiny").eval()
    waves = [_tones(file_rate, 1.0, i) for i in range(3)]
    rows = []
    for i, w in enumerate(waves):
        sf.write(tmp_path / f"c{i}.wav", w, file_rate, subtype="FLOAT")
        rows.append(
            {"clip_id": f"c{i}", "path": f"c{i}.wav", "dataset": "d", "split": "test", "domain": "focal",
             "labels": ["x"]}
        )  # fmt: skip
    manifest = pl.DataFrame(rows)
    write_manifest(manifest, tmp_path / "m.parquet")
    got = extract_embeddings(enc, manifest, root=tmp_path, progress=False).array()
    at_rate = torch.stack(
        [load_audio(tmp_path / f"c{i}.wav", sample_rate=enc.sample_rate)[0] for i in range(3)]
    )
    assert at_rate.shape[1] == enc.sample_rate  # one second at the encoder's rate
    want = enc.embed(at_rate, torch.zeros_like(at_rate, dtype=torch.bool))
    # the same samples through the same encoder; batching may reorder float sums (float32 rounding only)
    tol = encoder_tol(enc, want, samples=at_rate.shape[1], layer=-1)
    assert_close_f32(got, want, tol, what="embeddings of resampled files")
    other = enc.embed(torch.stack([load_audio(tmp_path / f"c{i}.wav")[0] for i in range(3)])[:, ::2])
    assert (torch.from_numpy(got) - other).abs().max() > 100 * tol.max()  # a wrong rate would show


def test_the_training_pool_is_resampled_to_the_encoders_rate(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus", sr=32000)  # files at 32 kHz, encoder at 16 kHz
    cfg = parse_config(tiny_config(corpus, tmp_path / "run", **{"data.crop": "start", "model.name": "beats"}))
    assert cfg.data.sample_rate == 16000
    data = build_train_data(cfg)
    item = data.dataset[0]
    path = corpus.parent / data.dataset.manifest["path"][int(data.dataset.active_rows[0])]
    assert sf.info(path).samplerate == 32000
    at_rate = load_audio(path, sample_rate=16000)[0]
    n = min(item["wave"].shape[0], at_rate.shape[0])
    assert torch.equal(item["wave"][:n], at_rate[:n])  # cropped from the start: the same samples
    assert not item["padding_mask"][:n].any()
