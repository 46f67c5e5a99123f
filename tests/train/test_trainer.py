"""The trainer in-process on a real on-disk corpus: run-dir layout, reload, augmentation in the loop,
clear errors before any work, NaN guard, frozen backbone, gradient accumulation, sl-ssl post-training."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import polars as pl
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from tiny import TinyPatchEncoder, make_corpus, tiny_config  # noqa: E402

from avexlab.config import load_config, parse_config  # noqa: E402
from avexlab.errors import CheckpointError, ConfigError, DataNotFoundError  # noqa: E402
from avexlab.models.checkpoints import load_encoder  # noqa: E402
from avexlab.train import TrainingDivergedError, train  # noqa: E402
from avexlab.train.data import build_train_data  # noqa: E402


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def _cfg(corpus: Path, out: Path, **over):
    return parse_config(tiny_config(corpus, out, **over))


def test_run_dir_layout_reload_and_augmented_training(corpus: Path, tmp_path: Path) -> None:
    noise = tmp_path / "noise"
    noise.mkdir()
    sf.write(
        noise / "hiss.wav", (0.1 * np.random.default_rng(0).standard_normal(8000)).astype(np.float32), 16000
    )
    cfg = _cfg(
        corpus,
        tmp_path / "run",
        **{
            "model.name": "beats",
            "optim.steps": 3,
            "augment.noise": {"p": 1.0, "source": "folder", "folder": str(noise)},
            "augment.mixup": {"p": 1.0},
        },
    )
    run = train(cfg)  # the registry builds beats/tiny from the config
    names = {p.name for p in run.iterdir()}
    assert {
        "config.yaml",
        "provenance.json",
        "metrics.parquet",
        "checkpoint.safetensors",
        "encoder.json",
    } <= names
    assert load_config(run / "config.yaml") == cfg
    prov = json.loads((run / "provenance.json").read_text())
    assert prov["seed"] == 0 and prov["device"] == "cpu" and prov["num_classes"] == 7
    assert torch.__version__.startswith(prov["packages"]["torch"].split("+")[0])
    assert list(prov["manifest_hashes"].values())[0] and prov["git"]["commit"]
    m = pl.read_parquet(run / "metrics.parquet")
    assert m["step"].to_list() == [1, 2, 3] and m["loss"].is_finite().all()
    enc = load_encoder(run)
    weights = load_file(str(run / "checkpoints" / "step-00000003" / "weights.safetensors"))
    for k, v in enc.state_dict().items():
        assert torch.equal(v, weights[f"encoder.{k}"]), k


def test_resume_from_another_config_fails_before_any_work(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(_cfg(corpus, out, **{"optim.steps": 2}), encoder=TinyPatchEncoder())
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    with pytest.raises(ConfigError, match="checkpoint of another config"):
        train(_cfg(corpus, out, **{"optim.steps": 2, "optim.lr": 1e-2}), encoder=TinyPatchEncoder())
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_empty_training_pool_fails_before_any_work(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(DataNotFoundError, match="expected clips with split='val'"):
        train(_cfg(corpus, out, **{"data.split": "val"}), encoder=TinyPatchEncoder())
    assert not out.exists()


class _PoisonAfter:
    """Returns NaN audio after ``n`` reads (a corrupt decoder in the middle of a run)."""

    def __init__(self, dataset, n: int) -> None:
        self.dataset, self.n, self.calls = dataset, n, 0

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        self.calls += 1
        item = self.dataset[i]
        if self.calls > self.n:
            item["wave"] = torch.full_like(item["wave"], float("nan"))
        return item


def test_nan_guard_stops_and_keeps_last_good_checkpoint(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    cfg = _cfg(corpus, out, **{"optim.steps": 6, "runtime.checkpoint_every": 2})
    data = build_train_data(cfg)
    data.dataset = _PoisonAfter(data.dataset, n=4 * 3)  # steps 1-3 clean, step 4 NaN
    with pytest.raises(TrainingDivergedError, match="step 3: expected a finite loss"):
        train(cfg, encoder=TinyPatchEncoder(), data=data)
    assert (out / "checkpoints" / "latest").read_text() == "step-00000002"
    w = load_file(str(out / "checkpoints" / "step-00000002" / "weights.safetensors"))
    assert all(torch.isfinite(v).all() for v in w.values())


def test_frozen_backbone_epochs_train_only_the_head(corpus: Path, tmp_path: Path) -> None:
    enc = TinyPatchEncoder()
    init = {k: v.clone() for k, v in enc.state_dict().items()}
    cfg = _cfg(corpus, tmp_path / "run", **{"optim.steps": 5, "optim.frozen_backbone_epochs": 1})
    run = train(cfg, encoder=enc)  # 21 clips / batch 4 = 5 steps per epoch: all frozen
    w = load_file(str(run / "checkpoints" / "step-00000005" / "weights.safetensors"))
    assert all(torch.equal(w[f"encoder.{k}"], v) for k, v in init.items())
    assert pl.read_parquet(run / "metrics.parquet")["frozen_backbone"].all()
    assert w["objective.head.weight"].shape == (7, enc.embed_dim)
    cfg2 = _cfg(corpus, tmp_path / "run2", **{"optim.steps": 6, "optim.frozen_backbone_epochs": 1})
    run2 = train(cfg2, encoder=TinyPatchEncoder())
    w2 = load_file(str(run2 / "checkpoints" / "step-00000006" / "weights.safetensors"))
    assert any(not torch.equal(w2[f"encoder.{k}"], v) for k, v in init.items())  # step 6 is unfrozen


def test_grad_accumulation_matches_the_full_batch(corpus: Path, tmp_path: Path) -> None:
    a = train(_cfg(corpus, tmp_path / "a", **{"optim.steps": 4}), encoder=TinyPatchEncoder())
    b = train(
        _cfg(corpus, tmp_path / "b", **{"optim.steps": 4, "optim.grad_accum": 2}), encoder=TinyPatchEncoder()
    )
    la = torch.tensor(pl.read_parquet(a / "metrics.parquet")["loss"].to_list())
    lb = torch.tensor(pl.read_parquet(b / "metrics.parquet")["loss"].to_list())
    assert (la - lb).abs().max() < 1e-5


@pytest.mark.parametrize(("arch", "kind"), [("beats", "beats_ssl"), ("eat", "masked_spec")])
def test_sl_ssl_post_trains_the_ssl_checkpoint(corpus: Path, tmp_path: Path, arch: str, kind: str) -> None:
    ssl = train(
        _cfg(
            corpus,
            tmp_path / "ssl",
            **{"recipe": "ssl", "model.name": arch, "objective.kind": kind, "optim.steps": 2},
        )
    )
    losses = pl.read_parquet(ssl / "metrics.parquet")["loss"].to_list()
    assert len(losses) == 2 and all(math.isfinite(v) and v > 0 for v in losses)
    ssl_enc = load_encoder(ssl)
    post = train(
        _cfg(
            corpus,
            tmp_path / "post",
            **{
                "recipe": "sl-ssl",
                "model.name": arch,
                "model.init_checkpoint": str(ssl),
                "optim.steps": 1,
                "optim.frozen_backbone_epochs": 1,
            },
        )
    )
    post_enc = load_encoder(post)
    assert all(
        torch.equal(a, b)
        for a, b in zip(ssl_enc.state_dict().values(), post_enc.state_dict().values(), strict=True)
    )
    other = "eat" if arch == "beats" else "beats"
    with pytest.raises(CheckpointError, match=f"expected a '{other}' encoder"):
        train(
            _cfg(
                corpus,
                tmp_path / "bad",
                **{"recipe": "sl-ssl", "model.name": other, "model.init_checkpoint": str(ssl)},
            )
        )


def test_worker_processes_compute_the_same_run(corpus: Path, tmp_path: Path) -> None:
    a = train(_cfg(corpus, tmp_path / "a", **{"optim.steps": 2}), encoder=TinyPatchEncoder())
    b = train(
        _cfg(corpus, tmp_path / "b", **{"optim.steps": 2, "runtime.num_workers": 1}),
        encoder=TinyPatchEncoder(),
    )
    assert (
        pl.read_parquet(a / "metrics.parquet")["loss"].to_list()
        == pl.read_parquet(b / "metrics.parquet")["loss"].to_list()
    )


def test_clips_unreadable_at_decode_time_are_skipped_and_listed(corpus: Path, tmp_path: Path) -> None:
    import shutil

    root = tmp_path / "corpus"
    shutil.copytree(corpus.parent, root)
    victim = pl.read_parquet(root / "manifest.parquet").filter(pl.col("split") == "train")["path"][0]
    x = np.zeros(12000, dtype=np.float32)
    x[100] = np.nan  # the header is fine (scan passes); decoding finds NaN
    sf.write(root / victim, x, 16000, subtype="FLOAT")
    cfg = _cfg(root / "manifest.parquet", tmp_path / "run", **{"optim.steps": 6, "data.on_error": "skip"})
    run = train(cfg, encoder=TinyPatchEncoder())
    prov = json.loads((run / "provenance.json").read_text())
    assert [s["path"].endswith(victim) for s in prov["skipped_clips"]] == [True]
    assert "NaN" in prov["skipped_clips"][0]["reason"] or "finite" in prov["skipped_clips"][0]["reason"]


def test_beats_iteration_two_distils_a_kmeans_tokenizer(corpus: Path, tmp_path: Path) -> None:
    ssl = {"recipe": "ssl", "model.name": "beats", "objective.kind": "beats_ssl", "optim.steps": 2}
    it1 = train(_cfg(corpus, tmp_path / "it1", **ssl))
    beats2 = {
        "tokenizer": "kmeans",
        "tokenizer_checkpoint": str(it1),
        "codebook_size": 8,
        "kmeans_batches": 2,
    }
    it2 = train(_cfg(corpus, tmp_path / "it2", **ssl, **{"objective.beats": beats2}))
    prov = json.loads((it2 / "provenance.json").read_text())
    assert 0 < prov["objective_prepare"]["kmeans_used"] <= 1
    w = load_file(str(it2 / "checkpoints" / "step-00000002" / "weights.safetensors"))
    assert w["objective.tokenizer.fitted"].item() and w["objective.tokenizer.codebook"].abs().sum() > 0
    m = pl.read_parquet(it2 / "metrics.parquet")
    assert m["loss"].is_finite().all() and (m["code_usage"] > 0).all()
