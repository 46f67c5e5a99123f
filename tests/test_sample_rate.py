"""The sample rate belongs to the encoder: a run config that disagrees fails before any work with both
values named; training and evaluation resample the audio to the encoder's rate, and what the encoder
sees is what it would see fed audio at its own rate."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import torchaudio

sys.path.insert(0, str(Path(__file__).parent / "train"))
from tiny import TinyPatchEncoder, make_corpus, tiny_config  # noqa: E402

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


def _reference(wave: np.ndarray, sr: int, target: int) -> torch.Tensor:
    """An independent resampler: torchaudio's functional sinc resampler with its defaults."""
    return torchaudio.functional.resample(torch.from_numpy(wave)[None], sr, target)[0]


@pytest.mark.parametrize("file_rate", [22050, 32000, 48000])
def test_evaluation_resamples_to_the_encoders_rate(tmp_path: Path, file_rate: int) -> None:
    """Embeddings of files at another rate equal the encoder fed the same audio resampled to its rate."""
    enc = build_encoder("logmel", size="tiny").eval()
    waves = [_tones(file_rate, 1.0, i) for i in range(3)]
    rows = []
    for i, w in enumerate(waves):
        sf.write(tmp_path / f"c{i}.wav", w, file_rate, subtype="FLOAT")
        rows.append(
            {"clip_id": f"c{i}", "path": f"c{i}.wav", "dataset": "d", "split": "test", "domain": "focal",
             "labels": ["x"]}
        )  # fmt: skip
    import polars as pl

    manifest = pl.DataFrame(rows)
    write_manifest(manifest, tmp_path / "m.parquet")
    got = extract_embeddings(enc, manifest, root=tmp_path, progress=False).array()
    ref = torch.stack([_reference(w, file_rate, enc.sample_rate) for w in waves])
    want = enc.embed(ref).numpy()
    assert got.shape == want.shape
    # float32 log-mel statistics of the same resampled samples: rounding only (two sinc implementations
    # summing the same taps in another order), far below the difference between clips.
    scale = np.abs(want).max()
    assert np.abs(got - want).max() <= 64 * np.finfo(np.float32).eps * scale
    assert np.abs(want[0] - want[1]).max() > 1e3 * np.finfo(np.float32).eps * scale


def test_the_training_pool_is_resampled_to_the_encoders_rate(tmp_path: Path) -> None:
    corpus = make_corpus(tmp_path / "corpus", sr=32000)  # files at 32 kHz, encoder at 16 kHz
    cfg = parse_config(tiny_config(corpus, tmp_path / "run", **{"data.crop": "start", "model.name": "beats"}))
    assert cfg.data.sample_rate == 16000
    data = build_train_data(cfg)
    item = data.dataset[0]
    path = corpus.parent / data.dataset.manifest["path"][int(data.dataset.active_rows[0])]
    wave, sr = sf.read(path, dtype="float32")
    assert sr == 32000
    ref = _reference(wave, sr, 16000)
    n = min(item["wave"].shape[0], ref.shape[0])
    valid = ~item["padding_mask"][:n]
    diff = (item["wave"][:n] - ref[:n])[valid].abs().max()
    assert float(diff) <= 16 * np.finfo(np.float32).eps * float(ref.abs().max())
