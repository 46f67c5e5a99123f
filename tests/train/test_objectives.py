"""Objectives: supervised BCE, BEATs-style masked token prediction, EAT-style teacher-student; masks and
tokenizer properties; SSL health logs; the SSL-hook protocol and clear errors for encoders without it."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from tiny import TinyPatchEncoder  # noqa: E402
from tolerance import assert_close_f32, f32_tol, f64_tol  # noqa: E402

from avexlab.config import BeatsSSLConfig, EatSSLConfig, MaskedSpecConfig, load_config  # noqa: E402
from avexlab.errors import ConfigError  # noqa: E402
from avexlab.models.base import SSL_HOOKS, SSLEncoder, fbank_patches, masked_pool  # noqa: E402
from avexlab.models.registry import build_encoder  # noqa: E402
from avexlab.train.objectives import (  # noqa: E402
    BeatsSSLObjective,
    EatSSLObjective,
    MaskedSpecObjective,
    SupervisedObjective,
    build_objective,
    inverse_block_mask,
    random_keep,
)
from avexlab.train.tokenizer import (  # noqa: E402
    KMeansTokenizer,
    RandomProjectionTokenizer,
    Tokenizer,
    TokenizerInput,
)


def _batch(B: int = 3, T: int = 16000, seed: int = 0) -> dict:
    g = torch.Generator().manual_seed(seed)
    wave = 0.1 * torch.randn(B, T, generator=g)
    mask = torch.zeros(B, T, dtype=torch.bool)
    mask[1, T // 2 :] = True
    wave[mask] = 0
    return {"wave": wave, "padding_mask": mask, "generator": torch.Generator().manual_seed(seed)}


def _fit_one_batch(obj, enc, steps: int) -> tuple[list[float], dict]:
    """``steps`` Adam steps of ``obj`` on one batch with the same mask every step (so the loss must go down):
    the losses and the last step's logs."""
    opt = torch.optim.Adam([*enc.parameters(), *obj.parameters()], lr=3e-3)
    batch = _batch(B=2)
    losses = []
    for _ in range(steps):
        batch["generator"].manual_seed(0)
        loss, logs = obj.loss(enc, batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses, logs


def test_fbank_patches_follow_the_patch_conv_token_order() -> None:
    # A conv whose output channel c copies pixel c of its patch gives exactly the patches, in token order.
    p, fb = 8, torch.randn(2, 50, 32)
    conv = torch.nn.Conv2d(1, p * p, p, stride=p, bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        conv.weight.view(p * p, p * p)[torch.arange(p * p), torch.arange(p * p)] = 1.0
    x = conv(fb.unsqueeze(1))  # [B, p*p, n_time, n_freq]
    want = x.flatten(2).transpose(1, 2)
    got = fbank_patches(fb, (x.shape[3], x.shape[2]))
    assert torch.equal(got, want)


def test_random_keep_avoids_padding_and_is_seeded() -> None:
    mask = torch.zeros(4, 20, dtype=torch.bool)
    mask[1, 10:] = True
    a = random_keep(20, 5, mask, 4, torch.Generator().manual_seed(0))
    b = random_keep(20, 5, mask, 4, torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and a.shape == (4, 5)
    assert (a[1] < 10).all()
    assert (a.diff(dim=1) > 0).all()  # sorted, distinct
    c = random_keep(20, 12, mask, 4, torch.Generator().manual_seed(0))
    assert int((c[1] >= 10).sum()) == 2  # only 10 real tokens: 2 padded ones must fill the quota


def test_inverse_block_mask_keeps_exact_count_in_blocks() -> None:
    grid = (8, 30)  # n_freq, n_time
    n = grid[0] * grid[1]
    keep = int(0.2 * n)
    g = torch.Generator().manual_seed(0)
    vis = inverse_block_mask(64, grid, keep, 5, None, g)
    assert vis.shape == (64, keep) and (vis.diff(dim=1) > 0).all()
    vis_map = torch.zeros(64, n)
    vis_map.scatter_(1, vis, 1.0)
    rnd = random_keep(n, keep, None, 64, torch.Generator().manual_seed(1))
    rnd_map = torch.zeros(64, n).scatter_(1, rnd, 1.0)

    def neighbours(m: torch.Tensor) -> float:  # visible tokens with a visible time-neighbour
        m = m.view(64, grid[1], grid[0])
        both = (m[:, 1:] * m[:, :-1]).sum()
        return float(both / m.sum())

    assert neighbours(vis_map) > 2 * neighbours(rnd_map)


def test_tokenizer_is_frozen_deterministic_and_scale_invariant() -> None:
    tok = RandomProjectionTokenizer(64, 32, 8, seed=3)
    x = torch.randn(2, 10, 64)
    labels = tok(x)
    assert labels.shape == (2, 10) and labels.max() < 32 and labels.min() >= 0
    assert torch.equal(labels, RandomProjectionTokenizer(64, 32, 8, seed=3)(x))
    assert torch.equal(labels, tok(3.0 * x + 1.0))  # per-patch standardisation
    assert not any(p.requires_grad for p in tok.parameters())
    assert not torch.equal(labels, RandomProjectionTokenizer(64, 32, 8, seed=4)(x))


def test_supervised_loss_is_bce_of_linear_head_on_mean_pool() -> None:
    enc = TinyPatchEncoder()
    obj = SupervisedObjective(enc.embed_dim, 5)
    batch = _batch()
    targets = torch.zeros(3, 5)
    targets[0, 1] = targets[2, [0, 4]] = 1
    batch["targets"] = targets
    loss, logs = obj.loss(enc, batch)
    out = enc(batch["wave"], batch["padding_mask"])
    want = F.binary_cross_entropy_with_logits(
        obj.head(masked_pool(out.tokens, out.padding_mask, "mean")), targets
    )
    assert torch.equal(loss, want)  # the same encoder, pooling, head and loss on the same batch
    assert torch.equal(logs["pos_frac"], targets.mean())


def test_supervised_head_starts_at_the_single_label_prior() -> None:
    # Every class starts at probability 1/C (bias log(1/(C-1))); the weights keep nn.Linear's init.
    for c in (2, 5, 48):
        obj = SupervisedObjective(16, c)
        # sigmoid(log(1 / (C - 1))): a log, an exp and a division, and the bias' own rounding carried
        # with the sigmoid's condition number |x| (1 - sigmoid(x)) <= log(C - 1)
        want = torch.full((c,), 1.0 / c)
        tol = f32_tol(want, ops=4 + math.log(c - 1))
        assert_close_f32(torch.sigmoid(obj.head.bias), want, tol, what=f"prior of {c} classes")
        assert obj.head.weight.abs().max() <= 1 / 16**0.5 and obj.head.weight.std() > 0
    assert SupervisedObjective(16, 1).head.bias.abs().max() <= 1 / 16**0.5  # one class: no prior to set


@pytest.mark.parametrize("arch", ["tiny", "beats", "eat"])
def test_beats_ssl_learns_and_logs_codebook_health(arch: str) -> None:
    torch.manual_seed(0)
    enc = TinyPatchEncoder() if arch == "tiny" else build_encoder(arch, "tiny")
    obj = BeatsSSLObjective(enc, BeatsSSLConfig(codebook_size=16, codebook_dim=8))
    losses, logs = _fit_one_batch(obj, enc, steps=8)
    assert losses[-1] < losses[0]
    assert 0 < logs["code_usage"] <= 1 and 1 <= logs["code_perplexity"] <= 16
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in enc.parameters())


@pytest.mark.parametrize("arch", ["tiny", "eat"])
def test_eat_ssl_teacher_is_an_ema_of_the_student(arch: str) -> None:
    torch.manual_seed(0)
    enc = TinyPatchEncoder() if arch == "tiny" else build_encoder(arch, "tiny")
    cfg = EatSSLConfig(clones=2, ema_start=0.9, ema_end=0.99, ema_anneal_frac=0.5, ema_reference_steps=None)
    obj = EatSSLObjective(enc, cfg)
    assert obj.use_encoder_decoder == (arch == "eat")
    loss, logs = obj.loss(enc, _batch())
    loss.backward()
    assert all(p.grad is None for p in obj.teacher.parameters())
    assert logs["target_var"] > 0.1 and torch.isfinite(loss)
    before = [p.clone() for p in obj.teacher.parameters()]
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(0.01)
    out = obj.after_step(enc, 5, 20)  # 5 of 10 annealing steps -> halfway
    # start + (end - start) x frac in float64: 3 roundings of at most start + (end - start)
    assert_close_f32(out["ema_decay"], 0.945, f64_tol(0.945, ops=3, scale=1.0), what="decay halfway")
    for t0, t1, s in zip(before, obj.teacher.parameters(), enc.parameters(), strict=True):
        # float32 d t + (1 - d) s: the two decays' roundings to float32, two products, a sum
        want = 0.945 * t0 + 0.055 * s
        tol = f32_tol(want, ops=5, scale=0.945 * t0.abs() + 0.055 * s.abs())
        assert_close_f32(t1, want, tol, what="teacher EMA step")
    assert_close_f32(
        obj.after_step(enc, 15, 20)["ema_decay"], 0.99, f64_tol(0.99, ops=3, scale=1.0), what="end"
    )


def test_objectives_name_what_is_missing() -> None:
    eff = build_encoder("efficientnet", "tiny")
    cfg = load_config(None, ["recipe=ssl", "objective.kind=eat_ssl"])
    with pytest.raises(ConfigError, match=r"SSL hooks.*lacks \['patchify', 'encode'\]"):
        build_objective(cfg, eff, 0)
    with pytest.raises(ConfigError, match="at least one class"):
        build_objective(load_config(None), eff, 0)


def test_ssl_hooks_are_a_protocol_the_transformers_implement() -> None:
    assert SSL_HOOKS == ("frontend", "patchify", "encode")
    for arch in ("beats", "eat"):
        assert isinstance(build_encoder(arch, "tiny"), SSLEncoder)
    assert isinstance(TinyPatchEncoder(), SSLEncoder)
    assert not isinstance(build_encoder("efficientnet", "tiny"), SSLEncoder)
    # the error lists exactly the hooks a module lacks
    no_encode = TinyPatchEncoder()
    no_encode.encode = None
    with pytest.raises(ConfigError, match=r"'tinytest', which lacks \['encode'\]"):
        BeatsSSLObjective(no_encode, BeatsSSLConfig(codebook_size=16, codebook_dim=8))
    with pytest.raises(ConfigError, match=r"lacks \['frontend', 'patchify', 'encode'\]. Use model.name"):
        MaskedSpecObjective(torch.nn.Linear(2, 2), MaskedSpecConfig())


def test_kmeans_tokenizer_recovers_separated_clusters() -> None:
    g = torch.Generator().manual_seed(0)
    centres = 10 * torch.eye(4, 8)
    x = (centres.repeat_interleave(50, 0) + 0.1 * torch.randn(200, 8, generator=g))[
        torch.randperm(200, generator=g)
    ]
    tok = KMeansTokenizer(TinyPatchEncoder(dim=8), codebook_size=4, kmeans_batches=1, kmeans_iters=10)
    with pytest.raises(ConfigError, match="fitted codebook"):
        tok(torch.zeros(1, 100, 32), None)
    logs = tok.fit(x, generator=torch.Generator().manual_seed(1))
    assert logs["kmeans_used"] == 1.0
    # every true centre has exactly one centroid next to it
    d = torch.cdist(centres, tok.codebook)
    assert sorted(d.argmin(1).tolist()) == [0, 1, 2, 3] and d.min(1).values.max() < 0.5


def test_every_tokenizer_labels_the_students_tokens_through_one_interface() -> None:
    torch.manual_seed(0)
    student = TinyPatchEncoder()
    batch = _batch(B=3)
    fbank, fmask = student.frontend(batch["wave"], batch["padding_mask"])
    tokens, _, grid = student.patchify(fbank, fmask)
    clips = TokenizerInput(batch["wave"], batch["padding_mask"], fbank, fmask, grid)
    rp = RandomProjectionTokenizer(64, 16, 8, seed=0)
    km = KMeansTokenizer(TinyPatchEncoder(seed=1), codebook_size=8, kmeans_batches=2, kmeans_iters=3)
    read: list[int] = []

    def batches():
        for seed in range(5):
            read.append(seed)
            yield _batch(B=2, seed=seed)

    # prepare reads what it needs: nothing for the random projection, kmeans_batches batches for k-means
    assert rp.prepare(student, batches(), torch.Generator()) == {} and read == []
    assert km.prepare(student, batches(), torch.Generator().manual_seed(0))["kmeans_used"] > 0
    assert read == [0, 1]
    for tok, native in ((rp, rp(fbank_patches(fbank, grid))), (km, km(fbank, fmask))):
        assert isinstance(tok, Tokenizer)
        labels = tok.labels(clips)
        assert labels.dtype == torch.int64 and labels.shape == tokens.shape[:2]
        assert 0 <= labels.min() and labels.max() < tok.codebook_size
        assert torch.equal(labels, native)


def test_beats_ssl_predicts_whatever_tokenizer_it_holds() -> None:
    class Constant(Tokenizer):  # every token is label 3 (or one label short of the student's tokens)
        codebook_size = 16

        def __init__(self, short: bool = False) -> None:
            super().__init__()
            self.short = short

        def labels(self, clips: TokenizerInput) -> torch.Tensor:
            n_freq, n_time = clips.grid
            return torch.full((clips.wave.shape[0], n_freq * n_time - self.short), 3)

    torch.manual_seed(0)
    enc = TinyPatchEncoder()
    obj = BeatsSSLObjective(enc, BeatsSSLConfig(codebook_size=16, codebook_dim=8))
    obj.tokenizer = Constant()
    _, logs = obj.loss(enc, _batch())
    assert logs["code_usage"].item() == 1 / 16 and logs["code_perplexity"].item() == pytest.approx(1.0)
    obj.tokenizer = Constant(short=True)
    with pytest.raises(ConfigError, match="tokenizer gave labels of shape"):
        obj.loss(enc, _batch())


def test_eat_ema_decays_scale_to_the_run_length() -> None:
    from avexlab.train.objectives import ema_decays

    cfg = EatSSLConfig()  # EAT's 0.9998 -> 0.99999 for its 400,000-step run
    assert ema_decays(cfg, 400_000) == (0.9998, 0.99999)  # power 400000 / 400000 = 1.0 exactly
    start, end = ema_decays(cfg, 1000)
    assert start == 0.9998**400 and end == 0.99999**400  # power 400.0 exactly: the same pow call
    # the teacher's memory is the same fraction of the run: the weight left on step-0 weights after the
    # first 1% of the run (at the start decay) is the same for both lengths; pow's rounding of start
    # (1 ulp) is raised to the 10th power, plus the two pows' own
    want = 0.9998**4000
    assert_close_f32(start**10, want, f64_tol(want, ops=10 + 2), what="memory after 1 % of the run")
    assert ema_decays(EatSSLConfig(ema_reference_steps=None), 1000) == (0.9998, 0.99999)
    # and the objective uses them
    enc = TinyPatchEncoder()
    obj = EatSSLObjective(enc, EatSSLConfig(clones=1))
    got = obj.after_step(enc, 1000, 1000)["ema_decay"]
    assert_close_f32(got, end, f64_tol(end, ops=2, scale=start + abs(end - start)), what="decay at the end")


@pytest.mark.parametrize("arch", ["tiny", "eat"])
def test_eat_utterance_target_is_not_constant(arch: str) -> None:
    # EAT LayerNorms the average of the instance-normed layers (layer_norm_targets). Without it the
    # utterance target (mean over the clip's tokens) is zero for every clip: instance norm removes it.
    torch.manual_seed(0)
    enc = TinyPatchEncoder() if arch == "tiny" else build_encoder(arch, "tiny")
    batch = _batch()
    batch["wave"][0] *= 5.0  # clips that differ
    fbank, fmask = enc.frontend(batch["wave"], batch["padding_mask"])
    utt = {}
    for ln in (True, False):
        obj = EatSSLObjective(enc, EatSSLConfig(clones=1, layer_norm_targets=ln))
        y, tmask = obj._targets(fbank, fmask)
        real = (~tmask).float()[..., None] if tmask is not None else torch.ones_like(y[..., :1])
        utt[ln] = (y * real).sum(1) / real.sum(1)
        n, d = y.shape[1], y.shape[-1]
        if ln:  # a LayerNorm'd vector's mean (over d) is zero up to the LayerNorm's and the mean's rounding
            tol = f32_tol(torch.zeros(y.shape[:-1]), ops=2 * d + 6 + d, scale=y.abs().mean(-1))
            assert_close_f32(y.mean(-1), torch.zeros(y.shape[:-1]), tol, what="mean of LayerNorm'd targets")
        else:  # instance norm over the n tokens, averaged over layers: the token mean is zero up to rounding
            scale = (y.abs() * real).sum(1) / real.sum(1)
            tol = f32_tol(torch.zeros_like(utt[ln]), ops=2 * n + 6 + n, scale=scale)
            assert_close_f32(utt[ln], torch.zeros_like(utt[ln]), tol, what="utterance target without LN")
    # small (a mean of unit-variance tokens) but clip-specific: EAT weighs it by the copies per batch
    assert utt[True].abs().mean() > 1e-2 and (utt[True][0] - utt[True][2]).abs().mean() > 1e-2


def test_eat_loss_weighs_the_utterance_term_by_the_masked_copies() -> None:
    # EAT sums utterance errors over the clips x clones of the batch but averages frame errors per token.
    torch.manual_seed(0)
    enc = TinyPatchEncoder()
    for clones, weight in ((1, 1.0), (2, 0.5)):
        obj = EatSSLObjective(enc, EatSSLConfig(clones=clones, utterance_weight=weight))
        loss, logs = obj.loss(enc, _batch(B=3))
        utt = weight * 3 * clones * logs["utt_loss"]
        want = logs["frame_loss"] + utt
        tol = f32_tol(want, ops=3, scale=logs["frame_loss"].abs() + utt.abs())  # a product chain and a sum
        assert_close_f32(loss.detach(), want, tol, what=f"loss with {clones} clones")
        assert logs["utt_loss"] > 0


def _capture_predictions(obj: MaskedSpecObjective) -> list[torch.Tensor]:
    seen: list[torch.Tensor] = []
    obj.out.register_forward_hook(lambda _m, _i, out: seen.append(out.detach().float()))
    return seen


@pytest.mark.parametrize("arch", ["tiny", "beats", "eat"])
@pytest.mark.parametrize("norm", [True, False])
def test_masked_spec_regresses_exactly_the_hidden_patches(arch: str, norm: bool) -> None:
    # The loss is the MSE between the decoder's output and the encoder's own fbank patches (per-patch
    # standardised when norm_patches), over the hidden, non-padded patches only: recomputed here from the
    # same mask draw. Taking it over all patches, or over the visible ones, or without/with the patch
    # normalisation, gives another number.
    torch.manual_seed(0)
    enc = TinyPatchEncoder() if arch == "tiny" else build_encoder(arch, "tiny")
    obj = MaskedSpecObjective(enc, MaskedSpecConfig(norm_patches=norm, mask_ratio=0.6))
    preds = _capture_predictions(obj)
    batch = _batch(B=3, T=24000)
    loss, logs = obj.loss(enc, batch)
    with torch.no_grad():
        fbank, fmask = enc.frontend(batch["wave"], batch["padding_mask"])
        _, tmask, grid = enc.patchify(fbank, fmask)
        target = fbank_patches(fbank, grid)
        if norm:
            target = (target - target.mean(-1, keepdim=True)) / torch.sqrt(
                target.var(-1, keepdim=True, unbiased=False) + 1e-6
            )
        B, N = target.shape[:2]
        vis = random_keep(N, round(0.4 * N), tmask, B, torch.Generator().manual_seed(0))
        hidden = torch.ones(B, N, dtype=torch.bool)
        hidden.scatter_(1, vis, False)
        if tmask is not None:
            hidden &= ~tmask
    assert tmask is not None and bool(tmask.any())  # the padded clip is exercised
    diff = preds[0][hidden] - target[hidden]
    want = diff.square().mean()
    # The target recomputed here: copied fbank values (exact), or standardised per patch of P values (two
    # P-term sums, a square root and a division: relative to the patch's largest value). The loss is a
    # mean of M squares: a target error dt moves each by 2 |d| dt, plus the mean's own M-term sum.
    p = target.shape[-1]
    t_tol = f32_tol(target, ops=2 * p + 8, scale=target.abs().amax(-1, keepdim=True)) if norm else 0 * target
    m = int(hidden.sum())
    tol = (2 * diff.abs().double() * t_tol[hidden]).mean() + f32_tol(want, ops=m + 2)
    assert_close_f32(loss.detach(), want, tol, what="masked-patch MSE")
    assert preds[0].shape == target.shape
    # explained variance 1 - loss / var: both errors relative to var, plus the variance's own M-term sums
    var = target[hidden].var(0, unbiased=False).mean()
    dev = (target[hidden] - target[hidden].mean(0)).abs().double()
    var_tol = f32_tol(var, ops=2 * m + p + 2) + (2 * dev * t_tol[hidden]).mean()
    ev = 1 - want / var
    ev_tol = tol / var + want / var * var_tol / var + f32_tol(ev, ops=2, scale=1 + want / var)
    assert_close_f32(logs["explained_var"], ev, ev_tol, what="explained variance")


@pytest.mark.parametrize("arch", ["tiny", "beats", "eat"])
@pytest.mark.parametrize("masking", ["random", "block"])
def test_masked_spec_learns_through_the_encoder(arch: str, masking: str) -> None:
    torch.manual_seed(0)
    enc = TinyPatchEncoder() if arch == "tiny" else build_encoder(arch, "tiny")
    obj = MaskedSpecObjective(enc, MaskedSpecConfig(masking=masking, block_size=2))
    n_visible: list[int] = []
    enc.encode = (lambda f: lambda t, m=None: (n_visible.append(t.shape[1]), f(t, m))[1])(enc.encode)
    first = obj.loss(enc, _batch(B=2))[1]["explained_var"].item()
    losses, logs = _fit_one_batch(obj, enc, steps=10)
    assert losses[-1] < 0.8 * losses[0] and logs["explained_var"].item() > first
    batch = _batch(B=2)
    _, _, (n_freq, n_time) = enc.patchify(*enc.frontend(batch["wave"], batch["padding_mask"]))
    assert set(n_visible) == {round(0.25 * n_freq * n_time)}  # the encoder saw only the visible quarter
    grads = [p.grad for p in enc.parameters() if p.grad is not None]
    assert grads and sum(float(g.abs().sum()) for g in grads) > 0


def test_masked_spec_needs_the_ssl_hooks_and_a_tiling_patch_grid() -> None:
    with pytest.raises(ConfigError, match="masked_spec.*SSL hooks"):
        MaskedSpecObjective(build_encoder("efficientnet", "tiny"), MaskedSpecConfig())
    cfg = load_config(None, ["recipe=ssl", "objective.kind=masked_spec", "model.name=beats"])
    assert isinstance(build_objective(cfg, build_encoder("beats", "tiny"), 0), MaskedSpecObjective)
    with pytest.raises(ConfigError, match="masking"):
        load_config(None, ["recipe=ssl", "objective.kind=masked_spec", "objective.masked_spec.masking=grid"])
