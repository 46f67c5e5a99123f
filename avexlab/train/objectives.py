"""Training objectives: ``objective.loss(encoder, batch) -> (loss, logs)``.

A batch is a dict: ``wave`` ``[B, T]`` float32 at the encoder's sample rate, ``padding_mask`` ``[B, T]`` bool
(True = padded) or None, ``targets`` ``[B, C]`` float multi-hot (supervised only) and ``generator`` (a CPU
``torch.Generator`` for masks; the trainer reseeds it every step). ``logs`` maps names to 0-d tensors
(detached), so logging costs no device sync until the trainer reads them.

Objectives are ``nn.Module`` s: their own parameters (heads, predictors, decoders, an EMA teacher) are
trained and checkpointed with the encoder. SSL objectives use the transformer hooks documented in
``avexlab.models.beats`` / ``avexlab.models.eat``::

    fbank, frame_mask = encoder.frontend(wave, padding_mask)       # [B, F, M], [B, F]
    tokens, token_mask, (n_freq, n_time) = encoder.patchify(fbank, frame_mask)   # [B, N, D] (time-major)
    out = encoder.encode(tokens_subset, token_mask_subset)        # EncoderOutput
"""

from __future__ import annotations

import abc
import copy
import itertools
import math
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avexlab.errors import ConfigError
from avexlab.models.base import masked_pool

__all__ = [
    "BeatsSSLObjective",
    "EatSSLObjective",
    "Objective",
    "KMeansTokenizer",
    "MaskedSpecObjective",
    "RandomProjectionTokenizer",
    "SupervisedObjective",
    "build_objective",
    "ema_decays",
    "encode_visible",
    "fbank_patches",
    "inverse_block_mask",
    "lloyd_kmeans",
    "random_keep",
]


class Objective(nn.Module, abc.ABC):
    """Base class. ``loss`` returns a scalar loss and detached 0-d logs; ``after_step`` runs after each
    optimiser step (EMA updates); ``head_modules`` are the parts trained while the backbone is frozen."""

    @abc.abstractmethod
    def loss(self, encoder: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        """Scalar loss and detached 0-d logs for one batch."""

    def after_step(self, encoder: nn.Module, step: int, total_steps: int) -> dict[str, float]:
        return {}

    def prepare(self, encoder: nn.Module, batches: Any, generator: torch.Generator) -> dict[str, float]:
        """Work before the first step of a fresh run (fit a tokenizer); ``batches`` is an iterable of
        device batches, the same on every rank. Not called on resume (the result is in the checkpoint)."""
        return {}

    def export(self, run_dir: Path) -> None:
        """Write what the objective adds to a run directory (rank 0, at every checkpoint, after the encoder
        export): a tokenizer run writes its quantizer here. Default: nothing."""


def _unwrap(encoder: nn.Module) -> nn.Module:
    return getattr(encoder, "module", encoder)


# ----------------------------------------------------------------------------------------- supervised


class SupervisedObjective(Objective):
    """Multi-hot BCE over the joint label space (species + general-audio classes) with a linear head on the
    mean-pooled last-layer tokens (padding ignored). Logs ``loss`` and ``pos_frac`` (label density)."""

    def __init__(self, embed_dim: int, num_classes: int) -> None:
        super().__init__()
        if num_classes < 1:
            raise ConfigError(
                f"supervised objective: expected a label space with at least one class, found {num_classes}. "
                "The training pool has no labels; use an SSL recipe or a labelled pool."
            )
        self.head = nn.Linear(embed_dim, num_classes)
        if num_classes > 1:
            # Prior init (as RetinaNet's focal-loss head): every class starts at probability 1/C, the label
            # density of a single-label pool, so the first steps need not learn the prior. Without it the
            # tiny transformers' SL runs collapse: the cheapest way down to the prior is a CONSTANT
            # embedding (mean pairwise cosine .998 after 300 steps on the quick world) that never recovers.
            nn.init.constant_(self.head.bias, -math.log(num_classes - 1))

    def loss(self, encoder: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        out = encoder(batch["wave"], batch.get("padding_mask"))
        emb = masked_pool(out.tokens, out.padding_mask, "mean")
        logits = self.head(emb).float()
        targets = batch["targets"].to(logits.dtype)
        loss = F.binary_cross_entropy_with_logits(logits, targets)
        return loss, {"loss": loss.detach(), "pos_frac": targets.mean().detach()}


# --------------------------------------------------------------------------------------- SSL helpers


def fbank_patches(fbank: Tensor, grid: tuple[int, int]) -> Tensor:
    """Cut ``fbank`` ``[B, F, M]`` (frames x mel bins) into the encoder's square patches, time-major like its
    tokens: ``[B, n_time x n_freq, p x p]`` with ``p = M // n_freq``. Frames past ``n_time x p`` (the conv's
    remainder) are dropped as the patch conv drops them."""
    n_freq, n_time = grid
    B, Fr, M = fbank.shape
    p = M // n_freq
    if p * n_freq != M or n_time * p > Fr:
        raise ConfigError(
            f"fbank_patches: grid (n_freq={n_freq}, n_time={n_time}) does not tile an fbank of {Fr} frames x "
            f"{M} bins with square patches. The encoder's patchify hook must report its grid."
        )
    x = fbank[:, : n_time * p, :].reshape(B, n_time, p, n_freq, p)
    return x.permute(0, 1, 3, 2, 4).reshape(B, n_time * n_freq, p * p)


def random_keep(
    n_tokens: int, keep: int, token_mask: Tensor | None, batch: int, generator: torch.Generator | None
) -> Tensor:
    """Indices ``[B, keep]`` (sorted) of tokens kept visible, chosen uniformly among non-padded tokens (a
    padded token is only kept when a clip has fewer than ``keep`` real ones)."""
    noise = torch.rand(batch, n_tokens, generator=generator)
    if token_mask is not None:
        noise = noise + 2.0 * token_mask.cpu().float()
    return noise.argsort(dim=1)[:, :keep].sort(dim=1).values


def inverse_block_mask(
    n_clips: int,
    grid: tuple[int, int],
    keep: int,
    block: int,
    token_mask: Tensor | None,
    generator: torch.Generator | None,
) -> Tensor:
    """EAT's inverse block masking: visible tokens come in ``block x block`` (time x freq) blocks.

    Block centres are drawn so that the blocks cover about ``keep`` tokens, dilated by a max-pool, then
    exactly ``keep`` tokens per clip are taken (covered tokens first, ties broken at random). Returns sorted
    indices ``[n_clips, keep]`` into the time-major token order; padded tokens are kept last."""
    n_freq, n_time = grid
    n = n_freq * n_time
    frac_keep = keep / n
    p_centre = 1.0 - (1.0 - frac_keep) ** (1.0 / (block * block))
    centres = (torch.rand(n_clips, 1, n_time, n_freq, generator=generator) < p_centre).float()
    covered = F.max_pool2d(centres, kernel_size=block, stride=1, padding=block // 2)[:, 0, :n_time, :n_freq]
    score = covered.reshape(n_clips, n) + torch.rand(n_clips, n, generator=generator)
    if token_mask is not None:
        score = score - 4.0 * token_mask.cpu().float()
    return score.argsort(dim=1, descending=True)[:, :keep].sort(dim=1).values


def _gather(x: Tensor, idx: Tensor) -> Tensor:
    """``x`` ``[B, N, ...]`` at ``idx`` ``[B, K]`` -> ``[B, K, ...]``."""
    idx = idx.to(x.device)
    return x.gather(1, idx.view(*idx.shape, *([1] * (x.ndim - 2))).expand(*idx.shape, *x.shape[2:]))


def encode_visible(
    enc: nn.Module, tokens: Tensor, token_mask: Tensor | None, vis: Tensor, mask_emb: Tensor
) -> tuple[Any, Tensor, Tensor, Tensor | None]:
    """The masked-prediction step every SSL objective here shares: the encoder sees only the tokens at
    ``vis`` ``[B, K]`` (sorted indices into ``tokens`` ``[B, N, D]``). Returns ``(out, full, masked,
    vis_mask)``: the encoder's output on the visible tokens; ``full`` ``[B, N, D]`` = its tokens at the visible
    positions and ``mask_emb`` elsewhere (the predictor's / decoder's input); ``masked`` ``[B, N]`` bool = the
    hidden, non-padded positions (where losses are taken); the visible tokens' padding mask."""
    B, N, _ = tokens.shape
    vis_mask = None if token_mask is None else _gather(token_mask, vis)
    out = enc.encode(_gather(tokens, vis), vis_mask)
    h = out.tokens
    full = mask_emb.to(h.dtype).expand(B, N, -1).clone()
    full.scatter_(1, vis.to(h.device)[..., None].expand(-1, -1, h.shape[-1]), h)
    masked = torch.ones(B, N, dtype=torch.bool, device=h.device)
    masked.scatter_(1, vis.to(h.device), False)
    if token_mask is not None:
        masked &= ~token_mask
    return out, full, masked, vis_mask


def _sincos(n: int, dim: int, device: torch.device) -> Tensor:
    pos = torch.arange(n, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32) * (-math.log(10000.0) / dim))
    pe = torch.zeros(n, dim, device=device)
    pe[:, 0::2] = torch.sin(pos * freq)
    pe[:, 1::2] = torch.cos(pos * freq)[:, : dim // 2]
    return pe


@torch.no_grad()
def probe_hooks(enc: nn.Module, seconds: float = 1.0) -> tuple[torch.Size, tuple[int, int]]:
    """Run ``enc``'s frontend and patchify hooks on ``seconds`` of silence (eval mode, then restored):
    the fbank's shape and the token grid ``(n_freq, n_time)``."""
    dev = next(enc.parameters()).device
    was = enc.training
    enc.eval()
    fbank, fmask = enc.frontend(torch.zeros(1, int(enc.sample_rate * seconds), device=dev), None)
    _, _, (n_freq, n_time) = enc.patchify(fbank, fmask)
    enc.train(was)
    return fbank.shape, (int(n_freq), int(n_time))


def _patch_dim(enc: nn.Module) -> int:
    """Values per fbank patch (``p x p``), found by running the hooks on 1 s of silence."""
    shape, (n_freq, _) = probe_hooks(enc)
    p = shape[-1] // n_freq
    return p * p


def _require_hooks(encoder: nn.Module, what: str) -> None:
    enc = _unwrap(encoder)
    missing = [h for h in ("frontend", "patchify", "encode") if not callable(getattr(enc, h, None))]
    if missing:
        raise ConfigError(
            f"{what} needs an encoder with the SSL hooks frontend/patchify/encode; "
            f"{getattr(enc, 'name', type(enc).__name__)!r} lacks {missing}. "
            "Use model.name 'beats' or 'eat', or the 'sl' recipe."
        )


@torch.no_grad()
def lloyd_kmeans(
    x: Tensor, k: int, iters: int, generator: torch.Generator, spherical: bool = False
) -> tuple[Tensor, Tensor]:
    """Lloyd's k-means of ``x`` ``[M, D]`` into ``k`` centroids: they start at random rows; an empty cluster
    is re-seeded with a random row. ``spherical``: centroids are renormalised to unit length after each update
    (rows of ``x`` should be unit vectors; nearest = largest cosine). Deterministic by ``generator`` (CPU).
    Returns the centroids ``[k, D]`` and the assignment ``[M]`` of the last iteration."""
    x = x.float()
    idx = torch.randperm(x.shape[0], generator=generator)[:k]
    if idx.numel() < k:
        idx = torch.randint(x.shape[0], (k,), generator=generator)
    c = x[idx.to(x.device)].clone()
    assign = torch.cdist(x, c).argmin(dim=1)
    for _ in range(iters):
        assign = torch.cdist(x, c).argmin(dim=1)
        sums = torch.zeros_like(c).index_add_(0, assign, x)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        empty = counts == 0
        c = torch.where(empty[:, None], c, sums / counts.clamp_min(1)[:, None])
        if spherical:
            c = F.normalize(c, dim=-1)
        if bool(empty.any()):
            refill = torch.randint(x.shape[0], (int(empty.sum()),), generator=generator).to(x.device)
            c[empty] = x[refill]
    return c, assign


def light_transformer(d: int, layers: int) -> nn.TransformerEncoder:
    """The small pre-LN transformer of SSL heads (BEATs-style predictor, tokenizer estimator): ``d // 64``
    heads (at least 1), FFN ``4 d``, no dropout."""
    layer = nn.TransformerEncoderLayer(
        d, max(1, d // 64), 4 * d, dropout=0.0, batch_first=True, norm_first=True
    )
    return nn.TransformerEncoder(layer, num_layers=layers, enable_nested_tensor=False)


@torch.no_grad()
def code_health(codes: Tensor, codebook_size: int) -> dict[str, Tensor]:
    """``code_usage`` (fraction of the codebook among ``codes``) and ``code_perplexity`` (exp of their
    entropy; 1 = one code, ``codebook_size`` = uniform): a tokenizer that collapses shows it here."""
    counts = torch.bincount(codes.reshape(-1), minlength=codebook_size).float()
    prob = counts / counts.sum().clamp_min(1)
    return {
        "code_usage": (counts > 0).float().mean(),
        "code_perplexity": torch.exp(-(prob * prob.clamp_min(1e-12).log()).sum()),
    }


class _MaskedPrediction(Objective):
    """What BEATs-style token prediction and masked-spectrogram reconstruction share: a learned mask
    embedding, a light transformer over all positions (encoder outputs at the visible ones, the mask embedding
    elsewhere, plus sin-cos positions) and a LayerNorm + Linear head to ``out_dim`` per position."""

    def _build_predictor(self, d: int, out_dim: int, layers: int) -> None:
        self.mask_emb = nn.Parameter(torch.zeros(d))
        nn.init.normal_(self.mask_emb, std=0.02)
        self.predictor = light_transformer(d, layers=layers)
        self.out = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, out_dim))

    def _predict(
        self, enc: nn.Module, tokens: Tensor, token_mask: Tensor | None, vis: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Float predictions ``[B, N, out_dim]`` for every position and the ``masked`` ``[B, N]`` positions
        (hidden, non-padded) where the loss is taken; the encoder sees only ``vis``."""
        _, full, masked, _ = encode_visible(enc, tokens, token_mask, vis, self.mask_emb)
        full = full + _sincos(full.shape[1], full.shape[-1], full.device).to(full.dtype)
        return self.out(self.predictor(full, src_key_padding_mask=token_mask)).float(), masked


# -------------------------------------------------------------------------------------- BEATs-style SSL


class RandomProjectionTokenizer(nn.Module):
    """Iteration-1 BEATs tokenizer, BEST-RQ-like: a frozen random projection of each fbank patch (after
    per-patch standardisation) and the nearest entry (cosine) of a frozen random codebook.

    ``forward(patches [B, N, P]) -> labels [B, N] int64``. Weights are buffers drawn from ``seed`` (saved
    with the checkpoint, never trained)."""

    def __init__(self, patch_dim: int, codebook_size: int, codebook_dim: int, seed: int) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        proj = torch.randn(patch_dim, codebook_dim, generator=g) * math.sqrt(2.0 / (patch_dim + codebook_dim))
        codebook = F.normalize(torch.randn(codebook_size, codebook_dim, generator=g), dim=-1)
        self.register_buffer("proj", proj)
        self.register_buffer("codebook", codebook)

    @torch.no_grad()
    def forward(self, patches: Tensor) -> Tensor:
        x = patches.float()
        x = (x - x.mean(dim=-1, keepdim=True)) / x.std(dim=-1, keepdim=True).clamp_min(1e-5)
        z = F.normalize(x @ self.proj, dim=-1)
        return (z @ self.codebook.t()).argmax(dim=-1)


class KMeansTokenizer(nn.Module):
    """Iteration-2+ tokenizer from the previous iteration, HuBERT-style: a frozen SSL ``teacher`` encoder
    (same architecture) embeds the unmasked clip; each token's label is its nearest centroid (after
    LayerNorm without affine) in a codebook ``[V, D]`` fitted by k-means (:meth:`fit`) before training.
    BEATs' own way is a trained tokenizer (:mod:`avexlab.train.tokenizer`, ``tokenizer: distilled``).

    ``forward(fbank [B, F, M], frame_mask) -> labels [B, N] int64`` (the student's token order)."""

    def __init__(self, teacher: nn.Module, codebook_size: int) -> None:
        super().__init__()
        self.teacher = teacher.eval()
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.register_buffer("codebook", torch.zeros(codebook_size, int(teacher.embed_dim)))
        self.register_buffer("fitted", torch.tensor(False))

    def train(self, mode: bool = True) -> KMeansTokenizer:
        super().train(mode)
        self.teacher.eval()
        return self

    @torch.no_grad()
    def features(self, fbank: Tensor, frame_mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        tokens, token_mask, _ = self.teacher.patchify(fbank, frame_mask)
        h = self.teacher.encode(tokens, token_mask).tokens.float()
        return F.layer_norm(h, h.shape[-1:]), token_mask

    @torch.no_grad()
    def fit(self, feats: Tensor, iters: int, generator: torch.Generator) -> dict[str, float]:
        """Lloyd's k-means (:func:`lloyd_kmeans`) on ``feats`` ``[M, D]``. Returns the final inertia."""
        V = self.codebook.shape[0]
        x = feats.float()
        c, assign = lloyd_kmeans(x, V, iters, generator)
        inertia = torch.cdist(x, c).min(dim=1).values.square().mean()
        self.codebook.copy_(c)
        self.fitted.fill_(True)
        return {
            "kmeans_inertia": float(inertia),
            "kmeans_used": float((torch.bincount(assign, minlength=V) > 0).float().mean()),
        }

    @torch.no_grad()
    def forward(self, fbank: Tensor, frame_mask: Tensor | None) -> Tensor:
        if not bool(self.fitted):
            raise ConfigError(
                "k-means tokenizer: expected a fitted codebook, found none. The trainer fits it before the "
                "first step (Objective.prepare); call prepare() when using the objective by hand."
            )
        h, _ = self.features(fbank, frame_mask)
        return torch.cdist(h, self.codebook.to(h.dtype).expand(h.shape[0], -1, -1)).argmin(dim=-1)


class BeatsSSLObjective(_MaskedPrediction):
    """BEATs-style masked token prediction.

    ``mask_ratio`` of the non-padded patches are masked; the encoder sees only the visible ones
    (``encode(visible)``); a light predictor (2 transformer layers) gets the encoder outputs at the visible
    positions and a learned mask embedding at masked positions (plus sin-cos positions) and predicts each
    masked patch's tokenizer label with cross-entropy. Logs ``loss``, ``acc`` (masked-token accuracy),
    ``code_usage`` (fraction of the codebook used by this batch's targets) and ``code_perplexity``."""

    def __init__(self, encoder: nn.Module, cfg: Any) -> None:
        super().__init__()
        _require_hooks(encoder, "objective 'beats_ssl'")
        enc = _unwrap(encoder)
        d = int(enc.embed_dim)
        self.cfg = cfg
        patch_dim = _patch_dim(enc)
        self.tokenizer: nn.Module
        if cfg.tokenizer == "kmeans":
            from avexlab.models.checkpoints import load_encoder

            teacher = load_encoder(cfg.tokenizer_checkpoint)
            if getattr(teacher, "name", None) != getattr(enc, "name", None):
                raise ConfigError(
                    f"objective.beats.tokenizer_checkpoint {cfg.tokenizer_checkpoint}: expected a "
                    f"{enc.name!r} encoder (the previous iteration of this model), found {teacher.name!r}."
                )
            self.tokenizer = KMeansTokenizer(teacher, cfg.codebook_size)
        elif cfg.tokenizer == "distilled":
            from avexlab.train.tokenizer import _check_same_grid, load_tokenizer

            self.tokenizer = load_tokenizer(cfg.tokenizer_checkpoint)
            what = f"objective.beats.tokenizer_checkpoint {cfg.tokenizer_checkpoint}"
            if self.tokenizer.codebook_size != cfg.codebook_size:
                raise ConfigError(
                    f"{what}: expected a tokenizer with objective.beats.codebook_size={cfg.codebook_size} codes, "
                    f"found {self.tokenizer.codebook_size}. Set objective.beats.codebook_size to "
                    f"{self.tokenizer.codebook_size} (the predictor's output size)."
                )
            _check_same_grid(enc, self.tokenizer.encoder, what)
        else:
            self.tokenizer = RandomProjectionTokenizer(
                patch_dim, cfg.codebook_size, cfg.codebook_dim, cfg.tokenizer_seed
            )
        self._build_predictor(d, cfg.codebook_size, layers=2)

    @torch.no_grad()
    def prepare(self, encoder: nn.Module, batches: Any, generator: torch.Generator) -> dict[str, float]:
        """Fit the k-means tokenizer on the teacher's tokens of ``batches`` (no-op for random projection)."""
        if not isinstance(self.tokenizer, KMeansTokenizer):
            return {}
        enc = _unwrap(encoder)
        feats = []
        for batch in itertools.islice(batches, self.cfg.kmeans_batches):
            fbank, frame_mask = enc.frontend(batch["wave"], batch.get("padding_mask"))
            h, token_mask = self.tokenizer.features(fbank, frame_mask)
            feats.append(h[~token_mask] if token_mask is not None else h.reshape(-1, h.shape[-1]))
        return self.tokenizer.fit(torch.cat(feats), self.cfg.kmeans_iters, generator)

    def loss(self, encoder: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        enc = _unwrap(encoder)
        fbank, frame_mask = enc.frontend(batch["wave"], batch.get("padding_mask"))
        tokens, token_mask, grid = enc.patchify(fbank, frame_mask)
        B, N, _ = tokens.shape
        if isinstance(self.tokenizer, KMeansTokenizer):
            targets = self.tokenizer(fbank, frame_mask)  # [B, N]
        elif isinstance(self.tokenizer, RandomProjectionTokenizer):
            targets = self.tokenizer(fbank_patches(fbank, grid))
        else:  # distilled: the tokenizer reads the clip through its own frontend and encoder
            targets = self.tokenizer(batch["wave"], batch.get("padding_mask"))
        if targets.shape != (B, N):
            raise ConfigError(
                f"beats_ssl: the tokenizer gave labels of shape {tuple(targets.shape)} for {B} clips of {N} "
                "tokens; it must tokenise the clip like the student (same patch size and frontend hop)."
            )
        keep = max(1, round((1.0 - self.cfg.mask_ratio) * N))
        vis = random_keep(N, keep, token_mask, B, batch.get("generator"))
        logits, masked = self._predict(enc, tokens, token_mask, vis)
        targets = targets.to(logits.device)
        ce = F.cross_entropy(logits[masked], targets[masked])
        with torch.no_grad():
            logs = {
                "loss": ce.detach(),
                "acc": (logits[masked].argmax(-1) == targets[masked]).float().mean(),
                **code_health(targets[masked], self.cfg.codebook_size),
            }
        return ce, logs


# ---------------------------------------------------------------------------------------- EAT-style SSL


class ConvDecoder2d(nn.Module):
    """EAT's light decoder for frame targets: ``layers`` x (conv ``k x k`` over the (time, freq) token grid,
    LayerNorm, GELU) with residuals, then a linear projection to the target width.
    ``forward(x [B, N, D_in], grid) -> [B, N, D_out]`` (time-major tokens)."""

    def __init__(self, d_in: int, d_out: int, dim: int, layers: int, kernel: int) -> None:
        super().__init__()
        self.inp = nn.Linear(d_in, dim)
        self.convs = nn.ModuleList(nn.Conv2d(dim, dim, kernel, padding=kernel // 2) for _ in range(layers))
        self.norms = nn.ModuleList(nn.LayerNorm(dim, elementwise_affine=False) for _ in range(layers))
        self.proj = nn.Linear(dim, d_out)

    def forward(self, x: Tensor, grid: tuple[int, int]) -> Tensor:
        n_freq, n_time = grid
        B, N, _ = x.shape
        h = self.inp(x)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            y = h.view(B, n_time, n_freq, -1).permute(0, 3, 1, 2)
            y = conv(y).permute(0, 2, 3, 1).reshape(B, N, -1)
            y = F.gelu(norm(y))
            h = y if i == 0 else h + y
        return self.proj(h)


class EatSSLObjective(Objective):
    """EAT-style teacher-student (data2vec 2.0 family).

    * teacher: an EMA copy of the encoder, fed the full unmasked patches; target per token = mean over the
      top ``average_top_k_layers`` (default all) blocks' FFN outputs (``encode_with_ffn``, as EAT; layer
      outputs for encoders without that hook), each instance-normed over the clip's real tokens; the
      utterance target is the mean of the frame targets over real tokens (EAT LayerNorms the averaged
      layers, ``layer_norm_targets``; without that the mean is zero by construction).
    * student: ``clones`` copies of each clip, each with its own inverse block mask (``mask_ratio`` masked,
      visible tokens in ``block_size`` blocks), encodes only visible tokens; the conv decoder fills masked
      positions (learned mask embedding) and regresses the frame targets there (MSE); the CLS token (mean of
      visible outputs when the encoder has none) regresses the utterance target (MSE weighted
      ``utterance_weight`` x the number of masked copies in the global batch, as EAT's summed loss).
      The decoder is the encoder's own (``encoder.decode``, EAT's Decoder2d) when it has one, else
      :class:`ConvDecoder2d` (then ``decoder_dim/layers/kernel`` of the config apply).
    * EMA decay: linear from ``ema_start`` to ``ema_end`` over ``ema_anneal_frac`` of the run's steps, both
      scaled to the run length (:func:`ema_decays`).
    Logs ``loss``, ``frame_loss``, ``utt_loss``, ``target_var`` (variance of targets over tokens: collapse
    drives it to 0), ``pred_var`` and ``ema_decay``."""

    def __init__(self, encoder: nn.Module, cfg: Any) -> None:
        super().__init__()
        _require_hooks(encoder, "objective 'eat_ssl'")
        enc = _unwrap(encoder)
        d = int(enc.embed_dim)
        self.cfg = cfg
        self.teacher = copy.deepcopy(enc)
        for p in self.teacher.parameters():
            p.requires_grad_(False)
        self.mask_emb = nn.Parameter(torch.zeros(d))
        nn.init.normal_(self.mask_emb, std=0.02)
        # EAT's own decoder (``encoder.decode``) when the encoder has one; otherwise a conv decoder here.
        self.use_encoder_decoder = getattr(enc, "decoder", None) is not None and callable(
            getattr(enc, "decode", None)
        )
        self.decoder = (
            None
            if self.use_encoder_decoder
            else ConvDecoder2d(d, d, cfg.decoder_dim or d, cfg.decoder_layers, cfg.decoder_kernel)
        )
        self.utt_proj = nn.Linear(d, d)
        self.register_buffer("ema_decay", torch.tensor(float(cfg.ema_start), dtype=torch.float64))

    def train(self, mode: bool = True) -> EatSSLObjective:
        super().train(mode)
        self.teacher.eval()  # the teacher never uses dropout
        return self

    @torch.no_grad()
    def _targets(self, fbank: Tensor, frame_mask: Tensor | None) -> tuple[Tensor, Tensor | None]:
        tokens, token_mask, _ = self.teacher.patchify(fbank, frame_mask)
        if callable(getattr(self.teacher, "encode_with_ffn", None)):  # EAT: the blocks' FFN outputs
            out, ffn = self.teacher.encode_with_ffn(tokens, token_mask)
            layers = [f[:, f.shape[1] - tokens.shape[1] :] for f in ffn]  # drop the CLS position
        else:
            layers = self.teacher.encode(tokens, token_mask).hidden_states
        k = self.cfg.average_top_k_layers or len(layers)
        keep = None if token_mask is None else (~token_mask).float()[..., None]
        acc = 0.0
        for h in layers[-k:]:
            h = h.float()
            if keep is None:
                mu, var = h.mean(1, keepdim=True), h.var(1, keepdim=True, unbiased=False)
            else:
                cnt = keep.sum(1, keepdim=True).clamp_min(1)
                mu = (h * keep).sum(1, keepdim=True) / cnt
                var = ((h - mu).square() * keep).sum(1, keepdim=True) / cnt
            acc = acc + (h - mu) / torch.sqrt(var + 1e-5)
        y = acc / k
        if self.cfg.layer_norm_targets:
            y = F.layer_norm(y, y.shape[-1:])
        return y, token_mask

    def loss(self, encoder: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        enc = _unwrap(encoder)
        cfg = self.cfg
        fbank, frame_mask = enc.frontend(batch["wave"], batch.get("padding_mask"))
        target, token_mask = self._targets(fbank, frame_mask)  # [B, N, D]
        tokens, token_mask, grid = enc.patchify(fbank, frame_mask)
        B, N, D = tokens.shape
        C = cfg.clones
        keep = max(1, round((1.0 - cfg.mask_ratio) * N))
        rep = lambda x: None if x is None else x.repeat_interleave(C, dim=0)  # noqa: E731
        tok_c, mask_c, tgt_c = rep(tokens), rep(token_mask), rep(target)
        vis = inverse_block_mask(B * C, grid, keep, cfg.block_size, mask_c, batch.get("generator"))
        out, full, masked, vis_mask = encode_visible(enc, tok_c, mask_c, vis, self.mask_emb)
        h = out.tokens
        pred = (enc.decode(full, grid) if self.use_encoder_decoder else self.decoder(full, grid)).float()
        frame_loss = (pred[masked] - tgt_c[masked]).square().mean()
        if out.cls is not None:
            utt = out.cls[-1]
        else:
            utt = masked_pool(h, vis_mask, "mean")
        real = None if token_mask is None else (~token_mask).float()[..., None]
        utt_target = target.mean(1) if real is None else (target * real).sum(1) / real.sum(1).clamp_min(1)
        utt_loss = (self.utt_proj(utt).float() - rep(utt_target)).square().mean()
        # EAT's fairseq loss sums the utterance errors over the masked copies while the frame errors are a
        # mean per token: the utterance term weighs (clips x clones) times its per-element mean. The count
        # is the GLOBAL one here (EAT's is per GPU), so a run does not depend on how it is split over ranks.
        world = torch.distributed.get_world_size() if torch.distributed.is_initialized() else 1
        loss = frame_loss + cfg.utterance_weight * (B * C * world) * utt_loss
        with torch.no_grad():
            real_tgt = target if token_mask is None else target[~token_mask]
            logs = {
                "loss": loss.detach(),
                "frame_loss": frame_loss.detach(),
                "utt_loss": utt_loss.detach(),
                "target_var": real_tgt.reshape(-1, D).var(0).mean(),
                "pred_var": pred[masked].var(0).mean(),
                "ema_decay": self.ema_decay.float(),
            }
        return loss, logs

    @torch.no_grad()
    def after_step(self, encoder: nn.Module, step: int, total_steps: int) -> dict[str, float]:
        """EMA update of the teacher after optimiser step ``step`` (1-based) of ``total_steps``."""
        cfg = self.cfg
        anneal = max(1, round(cfg.ema_anneal_frac * total_steps))
        frac = min(1.0, step / anneal)
        start, end = ema_decays(cfg, total_steps)
        decay = start + (end - start) * frac
        self.ema_decay.fill_(decay)
        student = _unwrap(encoder)
        t_params = list(self.teacher.parameters())
        s_params = [p.detach() for p in student.parameters()]
        torch._foreach_mul_(t_params, decay)
        torch._foreach_add_(t_params, s_params, alpha=1.0 - decay)
        for tb, sb in zip(self.teacher.buffers(), student.buffers(), strict=True):
            tb.copy_(sb)
        return {"ema_decay": decay}


# ------------------------------------------------------------------------ masked-spectrogram reconstruction


class MaskedSpecObjective(_MaskedPrediction):
    """Masked-spectrogram reconstruction (SSAST / MAE-AST / Audio-MAE's generative objective), the SSL
    baseline without a tokenizer or a teacher: nothing here can collapse, because the targets are the input.

    ``mask_ratio`` of the non-padded fbank patches are hidden (``masking``: uniform, or EAT's inverse blocks);
    the encoder sees only the visible ones; a light transformer (``decoder_layers``, learned mask embedding +
    sin-cos positions) regresses every hidden patch's ``p x p`` fbank values (the encoder's own frontend and
    patch grid, :func:`fbank_patches`), standardised per patch when ``norm_patches``. Loss: MSE over hidden,
    non-padded patches. Logs ``loss``, ``explained_var`` (1 - loss / the targets' variance over those patches;
    0 = predicting the mean patch) and ``pred_var``."""

    def __init__(self, encoder: nn.Module, cfg: Any) -> None:
        super().__init__()
        _require_hooks(encoder, "objective 'masked_spec'")
        enc = _unwrap(encoder)
        d = int(enc.embed_dim)
        self.cfg = cfg
        shape, grid = probe_hooks(enc)
        fbank_patches(torch.zeros(1, *shape[1:]), grid)  # the grid must tile the fbank: clear error now
        self._build_predictor(d, (shape[-1] // grid[0]) ** 2, layers=cfg.decoder_layers)

    def loss(self, encoder: nn.Module, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        enc = _unwrap(encoder)
        cfg = self.cfg
        fbank, frame_mask = enc.frontend(batch["wave"], batch.get("padding_mask"))
        tokens, token_mask, grid = enc.patchify(fbank, frame_mask)
        B, N, _ = tokens.shape
        with torch.no_grad():
            target = fbank_patches(fbank.float(), grid)  # [B, N, p*p]
            if cfg.norm_patches:
                mu, var = target.mean(-1, keepdim=True), target.var(-1, keepdim=True, unbiased=False)
                target = (target - mu) / torch.sqrt(var + 1e-6)
        keep = max(1, round((1.0 - cfg.mask_ratio) * N))
        if cfg.masking == "block":
            vis = inverse_block_mask(B, grid, keep, cfg.block_size, token_mask, batch.get("generator"))
        else:
            vis = random_keep(N, keep, token_mask, B, batch.get("generator"))
        pred, masked = self._predict(enc, tokens, token_mask, vis)
        tgt = target[masked]
        loss = (pred[masked] - tgt).square().mean()
        with torch.no_grad():
            logs = {
                "loss": loss.detach(),
                "explained_var": 1.0 - loss.detach() / tgt.var(0, unbiased=False).mean().clamp_min(1e-12),
                "pred_var": pred[masked].var(0, unbiased=False).mean(),
            }
        return loss, logs


def ema_decays(cfg: Any, total_steps: int) -> tuple[float, float]:
    """The (start, end) EMA decays of an EAT-style run of ``total_steps`` optimiser steps: ``cfg.ema_start``
    / ``cfg.ema_end`` raised to ``cfg.ema_reference_steps / total_steps`` (the teacher's memory stays the
    same fraction of the run; exact at the reference length), or as written when that is None."""
    ref = cfg.ema_reference_steps
    if ref is None:
        return float(cfg.ema_start), float(cfg.ema_end)
    power = ref / max(1, total_steps)
    return float(cfg.ema_start) ** power, float(cfg.ema_end) ** power


def build_objective(cfg: Any, encoder: nn.Module, num_classes: int) -> Objective:
    """The objective of ``cfg.objective.kind`` for ``encoder`` (``num_classes``: joint label space size)."""
    kind = cfg.objective.kind
    enc = _unwrap(encoder)
    if kind == "supervised":
        return SupervisedObjective(int(enc.embed_dim), num_classes)
    if kind == "beats_ssl":
        return BeatsSSLObjective(encoder, cfg.objective.beats)
    if kind == "eat_ssl":
        return EatSSLObjective(encoder, cfg.objective.eat)
    if kind == "masked_spec":
        return MaskedSpecObjective(encoder, cfg.objective.masked_spec)
    if kind == "beats_tokenizer":
        from avexlab.train.tokenizer import BeatsTokenizerObjective

        return BeatsTokenizerObjective(encoder, cfg.objective.tokenizer)
    raise ConfigError(
        f"objective.kind: expected supervised|beats_ssl|eat_ssl|masked_spec|beats_tokenizer, found {kind!r}."
    )
