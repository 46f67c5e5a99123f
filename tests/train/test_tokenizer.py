"""BEATs' distilled tokenizer: the normed EMA quantizer, the distillation objective, the tokenizer run
directory and its use by iteration-2 SSL (in the trainer, on a real on-disk corpus), exact resume, and clear
errors for a wrong checkpoint before any work."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import polars as pl
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent))
from tiny import make_corpus, tiny_config  # noqa: E402
from tolerance import assert_close_f32, f32_tol  # noqa: E402

from avexlab.config import BeatsTokenizerConfig, load_config, parse_config  # noqa: E402
from avexlab.errors import CheckpointError, ConfigError  # noqa: E402
from avexlab.models.checkpoints import load_encoder, save_encoder  # noqa: E402
from avexlab.models.registry import build_encoder  # noqa: E402
from avexlab.train import train  # noqa: E402
from avexlab.train.objectives import BeatsTokenizerObjective, build_objective  # noqa: E402
from avexlab.train.tokenizer import (  # noqa: E402
    TOKENIZER_FILE,
    NormEMAQuantizer,
    TokenizerInput,
    load_tokenizer,
)

SSL = {"recipe": "ssl", "model.name": "beats", "objective.kind": "beats_ssl", "optim.steps": 2}


def _tok_cfg(teacher: Path, **over: object) -> dict:
    return {
        "recipe": "ssl",
        "model.name": "beats",
        "objective.kind": "beats_tokenizer",
        "optim.steps": 4,
        "objective.tokenizer": {
            "teacher_checkpoint": str(teacher),
            "codebook_size": 16,
            "codebook_dim": 8,
            "kmeans_batches": 2,
            **over,
        },
    }


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def chain(corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Iteration 1 (random-projection SSL) -> a tokenizer distilled from it, both real trainer runs."""
    root = tmp_path_factory.mktemp("chain")
    it1 = train(parse_config(tiny_config(corpus, root / "it1", **SSL)))
    tok = train(parse_config(tiny_config(corpus, root / "tok", **_tok_cfg(it1))))
    return {"it1": it1, "tok": tok, "root": root}


def test_ema_update_moves_used_codes_toward_their_normalised_mean() -> None:
    q = NormEMAQuantizer(embed_dim=4, codebook_size=3, codebook_dim=2, decay=0.75)
    q.codebook.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    q.initialised.fill_(True)
    z = F.normalize(torch.tensor([[1.0, 0.2], [1.0, -0.6], [0.1, 1.0]]), dim=-1)
    codes = q.assign(z)
    assert codes.tolist() == [0, 0, 1]
    before = q.codebook.clone()
    q.ema_update(z, codes)
    mean0 = F.normalize(z[:2].sum(0), dim=0)
    want0 = F.normalize(0.75 * before[0] + 0.25 * mean0, dim=0)
    want1 = F.normalize(0.75 * before[1] + 0.25 * z[2], dim=0)
    # Unit vectors in 2-d: a normalised mean (2-term sum, 2-term norm, square root, division), the EMA (two
    # products and a sum) and a normalisation again: 15 roundings of values at most 1.
    for row, want in ((0, want0), (1, want1)):
        assert_close_f32(q.codebook[row], want, f32_tol(want, ops=15, scale=1.0), what=f"code {row}")
    assert torch.equal(q.codebook[2], before[2])  # unused: untouched
    norms = q.codebook.norm(dim=1)
    assert_close_f32(norms, torch.ones(3), f32_tol(torch.ones(3), ops=15 + 4, sides=1), what="code norms")
    assert "codebook" not in dict(q.named_parameters())  # never trained by gradient


def test_codes_unused_for_n_steps_are_reseeded_from_the_batch_only_when_asked() -> None:
    z = F.normalize(torch.tensor([[1.0, 0.1], [0.1, 1.0], [0.9, -0.2]]), dim=-1)
    books = {}
    for restart in (None, 2):
        q = NormEMAQuantizer(4, 3, 2, decay=0.5, restart_unused_after=restart)
        q.codebook.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
        q.initialised.fill_(True)
        g = torch.Generator().manual_seed(0)
        n = [q.ema_update(z, q.assign(z), g) for _ in range(3)]
        books[restart] = (q.codebook.clone(), n, q.idle_steps.tolist())
    book, n, idle = books[None]
    assert n == [0, 0, 0] and torch.equal(book[2], torch.tensor([-1.0, 0.0]))  # BEATs: a dead code stays
    book, n, idle = books[2]
    assert n == [0, 1, 0] and idle == [0, 0, 0]  # idle after updates 1 and 2, re-seeded at the 2nd
    assert min((book[2] - row).abs().max() for row in z) < 0.5 and book[2][0] > 0  # now among the data


def test_spherical_kmeans_init_finds_the_directions_and_assign_needs_it() -> None:
    g = torch.Generator().manual_seed(0)
    dirs = torch.eye(4, 6)
    z = F.normalize(dirs.repeat_interleave(40, 0) + 0.05 * torch.randn(160, 6, generator=g), dim=-1)
    q = NormEMAQuantizer(embed_dim=6, codebook_size=4, codebook_dim=6, decay=0.9)
    with pytest.raises(ConfigError, match="initialised codebook"):
        q.assign(z)
    logs = q.fit_kmeans(z, iters=10, generator=torch.Generator().manual_seed(1))
    assert logs["tokenizer_kmeans_used"] == 1.0
    cos = dirs @ q.codebook.t()
    assert sorted(cos.argmax(1).tolist()) == [0, 1, 2, 3] and cos.max(1).values.min() > 0.99


def test_tokenizer_objective_learns_to_reconstruct_the_teacher(tmp_path: Path) -> None:
    torch.manual_seed(0)
    teacher_dir = save_encoder(build_encoder("beats", "tiny"), tmp_path / "teacher")
    enc = build_encoder("beats", "tiny")
    # commitment 0: every gradient below comes from the estimator's loss, through the straight-through codes
    cfg = BeatsTokenizerConfig(
        teacher_checkpoint=teacher_dir, codebook_size=8, codebook_dim=8, commitment=0.0
    )
    obj = BeatsTokenizerObjective(enc, cfg)
    g = torch.Generator().manual_seed(0)
    batch = {"wave": 0.1 * torch.randn(2, 16000, generator=g), "padding_mask": None}
    obj.prepare(enc, [batch], torch.Generator().manual_seed(0))
    params = [*enc.parameters(), *(p for p in obj.parameters() if p.requires_grad)]
    opt = torch.optim.Adam(params, lr=3e-3)
    teacher_before = {k: v.clone() for k, v in obj.teacher.state_dict().items()}
    code_before = obj.quantizer.codebook.clone()
    losses = []
    for _ in range(12):
        loss, logs = obj.loss(enc, batch)
        opt.zero_grad()
        loss.backward()
        if not losses:  # straight-through: the estimator's loss reaches the encoder and the projection
            assert enc.patch_embedding.weight.grad.abs().sum() > 0
            assert obj.quantizer.proj[0].weight.grad.abs().sum() > 0
        opt.step()
        losses.append(logs["cos_loss"].item())
    assert losses[-1] < 0.5 * losses[0], losses
    assert all(p.grad is None for p in obj.teacher.parameters())
    assert all(torch.equal(v, teacher_before[k]) for k, v in obj.teacher.state_dict().items())
    assert not torch.equal(obj.quantizer.codebook, code_before)  # moved by EMA
    assert 0 < logs["code_usage"] <= 1 and 1 <= logs["code_perplexity"] <= 8


def test_iteration_two_predicts_the_distilled_tokenizer_labels(chain: dict[str, Path], corpus: Path) -> None:
    tok = chain["tok"]
    assert (tok / TOKENIZER_FILE).is_file() and load_encoder(tok).name == "beats"
    prov = json.loads((tok / "provenance.json").read_text())
    assert 0 < prov["objective_prepare"]["tokenizer_kmeans_used"] <= 1
    m = pl.read_parquet(tok / "metrics.parquet")
    assert m["cos_loss"].is_finite().all() and (m["code_usage"] > 0).all()
    # the exported tokenizer is the trained one: encoder + quantizer of the last checkpoint
    w = load_file(str(tok / "checkpoints" / "step-00000004" / "weights.safetensors"))
    tokenizer = load_tokenizer(tok)
    for k, v in tokenizer.quantizer.state_dict().items():
        assert torch.equal(v, w[f"objective.quantizer.{k}"]), k
    for k, v in tokenizer.encoder.state_dict().items():
        assert torch.equal(v, w[f"encoder.{k}"]), k

    beats2 = {"tokenizer": "distilled", "tokenizer_checkpoint": str(tok), "codebook_size": 16}
    it2 = train(
        parse_config(tiny_config(corpus, chain["root"] / "it2", **SSL, **{"objective.beats": beats2}))
    )
    m2 = pl.read_parquet(it2 / "metrics.parquet")
    assert m2["loss"].is_finite().all() and (m2["code_usage"] > 0).all()
    # the SSL run's targets come from that tokenizer, frozen (its weights are in the run's checkpoint)
    w2 = load_file(str(it2 / "checkpoints" / "step-00000002" / "weights.safetensors"))
    for k, v in tokenizer.state_dict().items():
        assert torch.equal(v, w2[f"objective.tokenizer.{k}"]), k
    wave = 0.1 * torch.randn(2, 12800, generator=torch.Generator().manual_seed(3))
    cfg2 = load_config(it2 / "config.yaml")
    student = load_encoder(it2)
    obj = build_objective(cfg2, student, 0)
    assert torch.equal(obj.tokenizer(wave, None), tokenizer(wave, None))
    fbank, fmask = student.frontend(wave, None)
    tokens, _, grid = student.patchify(fbank, fmask)
    labels = obj.tokenizer.labels(TokenizerInput(wave, None, fbank, fmask, grid))  # what the objective calls
    assert torch.equal(labels, tokenizer(wave, None)) and labels.shape == tokens.shape[:2]
    assert (
        obj.tokenizer.prepare(student, iter([]), torch.Generator()) == {}
    )  # trained already: nothing to fit


def test_tokenizer_run_resumes_exactly(chain: dict[str, Path], corpus: Path, tmp_path: Path) -> None:
    over = {"runtime.checkpoint_every": 2, "runtime.deterministic": True}
    cfg = parse_config(tiny_config(corpus, tmp_path / "run", **_tok_cfg(chain["it1"]), **over))
    run = train(cfg)
    full = load_file(str(run / "checkpoints" / "step-00000004" / "weights.safetensors"))
    # back to the step-2 checkpoint, as if the run had died after it; the codebook EMA state must come back
    shutil.rmtree(run / "checkpoints" / "step-00000004")
    (run / "checkpoints" / "latest").write_text("step-00000002")
    train(cfg)
    again = load_file(str(run / "checkpoints" / "step-00000004" / "weights.safetensors"))
    assert full.keys() == again.keys()
    for k in full:
        assert torch.equal(full[k], again[k]), k
    assert json.loads((run / "provenance.json").read_text())["objective_prepare"]  # k-means ran once, kept


def test_wrong_tokenizer_checkpoints_fail_before_any_work(
    chain: dict[str, Path], corpus: Path, tmp_path: Path
) -> None:
    def it2(ckpt: Path, size: int = 16) -> Path:
        out = tmp_path / f"it2-{ckpt.name}-{size}"
        beats2 = {"tokenizer": "distilled", "tokenizer_checkpoint": str(ckpt), "codebook_size": size}
        train(parse_config(tiny_config(corpus, out, **SSL, **{"objective.beats": beats2})))
        return out

    with pytest.raises(CheckpointError, match="tokenizer run directory.*TEACHER of a tokenizer"):
        it2(chain["it1"])  # an SSL run is not a tokenizer
    assert not (tmp_path / "it2-it1-16").exists()
    with pytest.raises(ConfigError, match="codebook_size=8 codes, found 16"):
        it2(chain["tok"], size=8)
    # encoder and quantizer from different steps (a run stopped between the two writes, or files copied)
    mixed = tmp_path / "mixed"
    shutil.copytree(chain["tok"], mixed)
    enc = load_encoder(mixed)
    with torch.no_grad():
        enc.patch_embedding.weight.add_(1.0)
    save_encoder(enc, mixed)
    with pytest.raises(CheckpointError, match="different steps"):
        load_tokenizer(mixed)
    with pytest.raises(ConfigError, match="tokenizer_checkpoint"):
        load_config(None, ["recipe=ssl", "objective.kind=beats_ssl", "objective.beats.tokenizer=distilled"])
    with pytest.raises(ConfigError, match="teacher_checkpoint"):
        load_config(None, ["recipe=ssl", "objective.kind=beats_tokenizer"])


def test_a_teacher_that_tokenises_differently_is_refused(tmp_path: Path) -> None:
    enc = build_encoder("beats", "tiny")
    other = save_encoder(build_encoder("beats", "tiny", input_patch_size=8), tmp_path / "p8")
    with pytest.raises(ConfigError, match=r"tokens line up.*\(n_freq, n_time\)"):
        BeatsTokenizerObjective(enc, BeatsTokenizerConfig(teacher_checkpoint=other))
    eff = save_encoder(build_encoder("efficientnet", "tiny"), tmp_path / "eff")
    with pytest.raises(ConfigError, match="SSL hooks"):
        BeatsTokenizerObjective(enc, BeatsTokenizerConfig(teacher_checkpoint=eff))
