"""Run configuration: pydantic models with ``extra="forbid"``, YAML in/out and ``--set key.sub=value`` overrides.

One file per run (``config.yaml`` in the run directory holds the full resolved config). Presets are composed
in code (``RunConfig(...)`` / ``apply_overrides``), not in a tree of YAML files.

    cfg = load_config("run.yaml", overrides=["optim.lr=1e-3", "model.name=beats"])
    save_config(cfg, "run_dir/config.yaml")

An unknown key, a wrong type or an inconsistent value raises :class:`avexlab.errors.ConfigError` naming the
key, what was expected and what was found.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from avexlab.errors import ConfigError
from avexlab.fsutil import atomic_write

__all__ = [
    "AugmentConfig",
    "BeatsSSLConfig",
    "DataConfig",
    "EatSSLConfig",
    "MixupConfig",
    "ModelConfig",
    "NoiseConfig",
    "ObjectiveConfig",
    "OptimConfig",
    "RunConfig",
    "RuntimeConfig",
    "apply_overrides",
    "config_hash",
    "encoder_sample_rate",
    "load_config",
    "load_run_config",
    "parse_config",
    "save_config",
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelConfig(_Strict):
    """Which encoder to train: ``build_encoder(name, size, **overrides)``, optionally initialised from
    ``init_checkpoint`` (an avexlab run dir / ``checkpoint.safetensors``, read by ``load_encoder``)."""

    name: str = "efficientnet"
    size: str = "tiny"
    overrides: dict[str, Any] = Field(default_factory=dict)
    init_checkpoint: Path | None = None


class DataConfig(_Strict):
    """The training pool.

    Either a synthetic world (``world_preset`` + ``world_seed``; ``world_dir`` caches its rendering) or
    user manifests (``manifests``, paths relative to ``root``); neither = the ``smoke`` world. ``mix`` picks the pool: ``bio`` (animal
    clips), ``general`` (the AudioSet stand-in) or ``all`` (both). ``sampling_weights`` maps a pool name
    (``bio`` / ``general``) or a manifest ``dataset`` value to a relative weight; None = uniform shuffle over
    clips (the reference code's plain concatenation). Clips are cropped to ``clip_s`` seconds
    (shorter ones zero-padded with a padding mask).

    ``sample_rate``: the rate the audio is resampled to, which is the ENCODER's (the rate belongs to the
    encoder: a frontend fed audio at another rate reads it wrong without a word). Leave it unset (null) and
    the resolved config records the encoder's rate; a value that disagrees with the encoder's is a
    ConfigError naming both."""

    world_preset: str | None = None
    world_seed: int = 0
    world_dir: Path | None = None
    manifests: list[Path] = Field(default_factory=list)
    root: Path | None = None
    split: str = "train"
    mix: Literal["bio", "general", "all"] = "all"
    sampling_weights: dict[str, float] | None = None
    clip_s: float = Field(default=10.0, gt=0)
    sample_rate: int | None = Field(default=None, gt=0)
    crop: Literal["random", "start", "centre"] = "random"
    on_error: Literal["raise", "skip"] = "raise"

    @model_validator(mode="after")
    def _one_source(self) -> DataConfig:
        if self.world_preset is not None and self.manifests:
            raise ValueError(
                "data has two sources: data.world_preset and data.manifests are both set; keep one of them"
            )
        if self.world_preset is None and not self.manifests:
            self.world_preset = "smoke"  # recorded in the resolved config.yaml
        if self.sampling_weights is not None:
            bad = {k: v for k, v in self.sampling_weights.items() if not v >= 0}
            if bad or not any(v > 0 for v in self.sampling_weights.values()):
                raise ValueError(
                    f"data.sampling_weights must be >= 0 with one > 0, found {self.sampling_weights}"
                )
        return self


class NoiseConfig(_Strict):
    """Noise injection: with probability ``p`` per clip add background noise at an SNR drawn uniformly from
    ``snr_db`` (dB). The paper's text says (-10, 20); every reference config uses (-5, 20). Noise comes from
    the world's background pool (``source="world"``) or audio files under ``folder``."""

    enabled: bool = True
    p: float = Field(default=0.5, ge=0, le=1)
    snr_db: tuple[float, float] = (-10.0, 20.0)
    source: Literal["world", "folder"] = "world"
    folder: Path | None = None

    @model_validator(mode="after")
    def _check(self) -> NoiseConfig:
        if self.snr_db[0] > self.snr_db[1]:
            raise ValueError(
                f"augment.noise.snr_db must be (low, high) with low <= high, found {self.snr_db}"
            )
        if self.enabled and self.source == "folder" and self.folder is None:
            raise ValueError(
                "augment.noise.source='folder' needs augment.noise.folder (a directory of audio)"
            )
        return self


class MixupConfig(_Strict):
    """Mixup: with probability ``p`` per batch mix ``n_pairs`` disjoint pairs of clips,
    ``x_i <- lam x_i + (1 - lam) x_j`` with ``lam ~ Beta(alpha, alpha)``; labels OR-ed."""

    enabled: bool = True
    p: float = Field(default=0.5, ge=0, le=1)
    n_pairs: int = Field(default=1, ge=1)
    alpha: float = Field(default=0.4, gt=0)


class AugmentConfig(_Strict):
    noise: NoiseConfig = Field(default_factory=NoiseConfig)
    mixup: MixupConfig = Field(default_factory=MixupConfig)


class BeatsSSLConfig(_Strict):
    """BEATs-style masked token prediction.

    ``tokenizer``: where the labels come from.

    * ``random_projection`` (iteration 1): a frozen random projection + codebook, BEST-RQ-like
      (``codebook_dim``, ``tokenizer_seed``).
    * ``distilled`` (iterations 2+, BEATs' way): a tokenizer trained by distillation from the previous
      iteration, i.e. the run directory of an ``objective.kind: beats_tokenizer`` run at
      ``tokenizer_checkpoint`` (:mod:`avexlab.train.tokenizer`); ``codebook_size`` must equal its codebook.
    * ``kmeans`` (iterations 2+, HuBERT-style): the frozen SSL encoder at ``tokenizer_checkpoint`` embeds the
      unmasked clip and a k-means codebook of ``codebook_size`` centroids, fitted on its tokens from
      ``kmeans_batches`` training batches with ``kmeans_iters`` Lloyd iterations before the first step,
      labels each patch."""

    mask_ratio: float = Field(default=0.75, gt=0, lt=1)
    codebook_size: int = Field(default=1024, ge=2)
    codebook_dim: int = Field(default=16, ge=1)
    tokenizer_seed: int = 1234
    tokenizer: Literal["random_projection", "distilled", "kmeans"] = "random_projection"
    tokenizer_checkpoint: Path | None = None
    kmeans_batches: int = Field(default=8, ge=1)
    kmeans_iters: int = Field(default=20, ge=1)

    @model_validator(mode="after")
    def _tokenizer(self) -> BeatsSSLConfig:
        if self.tokenizer == "kmeans" and self.tokenizer_checkpoint is None:
            raise ValueError(
                "objective.beats.tokenizer='kmeans' distils the previous iteration: set "
                "objective.beats.tokenizer_checkpoint (an SSL run directory)"
            )
        if self.tokenizer == "distilled" and self.tokenizer_checkpoint is None:
            raise ValueError(
                "objective.beats.tokenizer='distilled' reads a trained tokenizer: set "
                "objective.beats.tokenizer_checkpoint (the run directory of an objective.kind "
                "'beats_tokenizer' run)"
            )
        return self


class BeatsTokenizerConfig(_Strict):
    """Training a BEATs tokenizer by distillation (``objective.kind: beats_tokenizer``;
    :mod:`avexlab.train.tokenizer`). ``teacher_checkpoint``: the previous SSL iteration (run directory or any
    checkpoint ``load_encoder`` reads) whose last layer the estimator reconstructs. Defaults are BEATs':
    1024 codes of dimension 256, EMA decay 0.99, commitment weight 1, a 3-layer estimator; the codebook is
    initialised by ``kmeans_iters`` spherical k-means iterations on ``kmeans_batches`` batches.
    ``restart_unused_after``: None (BEATs: a code nothing chooses stays where it is) or ``n``: a code no token
    chose for ``n`` consecutive steps is re-seeded with a random token of the batch (codebook expiry, as in
    Jukebox and SoundStream): at small scale BEATs' codebook collapses to a few percent of its codes without
    it (benchmarks/RESULTS.md, "Design measurements")."""

    teacher_checkpoint: Path | None = None
    codebook_size: int = Field(default=1024, ge=2)
    codebook_dim: int = Field(default=256, ge=1)
    ema_decay: float = Field(default=0.99, gt=0, lt=1)
    commitment: float = Field(default=1.0, ge=0)
    estimator_layers: int = Field(default=3, ge=1)
    kmeans_batches: int = Field(default=8, ge=1)
    kmeans_iters: int = Field(default=10, ge=1)
    restart_unused_after: int | None = Field(default=None, ge=1)


class EatSSLConfig(_Strict):
    """EAT-style teacher-student: EMA teacher, inverse block masking, ``clones`` masked copies per clip,
    frame (decoder) + utterance (CLS) regression.

    EMA: ``ema_start`` / ``ema_end`` are EAT's decays (0.9998 -> 0.99999) for a run of
    ``ema_reference_steps`` optimiser steps (EAT's AS-2M run: 400,000). A run of T steps uses
    ``decay ** (ema_reference_steps / T)``: the teacher then averages the same FRACTION of the run as in EAT
    (at 1,000 steps: 0.923 -> 0.996; unscaled, a 1,000-step teacher would keep ~90% of its random init).
    ``ema_reference_steps: null`` uses the decays as written. The decay goes linearly from start to end over
    ``ema_anneal_frac`` of the run. ``layer_norm_targets``: LayerNorm over channels of the averaged
    instance-normed layers, as EAT's config (without it the utterance target, the mean over tokens of
    features instance-normed over those same tokens, is identically zero)."""

    mask_ratio: float = Field(default=0.8, gt=0, lt=1)
    clones: int = Field(default=16, ge=1)
    block_size: int = Field(default=5, ge=1)
    ema_start: float = Field(default=0.9998, ge=0, le=1)
    ema_end: float = Field(default=0.99999, ge=0, le=1)
    ema_reference_steps: int | None = Field(default=400_000, ge=1)
    ema_anneal_frac: float = Field(default=1.0, gt=0, le=1)
    average_top_k_layers: int | None = None
    layer_norm_targets: bool = True
    utterance_weight: float = Field(default=1.0, ge=0)
    decoder_dim: int | None = None
    decoder_layers: int = Field(default=6, ge=1)
    decoder_kernel: int = Field(default=3, ge=1)


class MaskedSpecConfig(_Strict):
    """Masked-spectrogram reconstruction (``objective.kind: masked_spec``), the generative SSL baseline of
    SSAST / MAE-AST / Audio-MAE: ``mask_ratio`` of the encoder's fbank patches are hidden, the encoder sees only
    the visible ones, and a light transformer (``decoder_layers``) with a learned mask embedding regresses the
    hidden patches' fbank values (MSE on masked, non-padded patches only). ``masking``: ``random`` (uniform over
    patches, as MAE) or ``block`` (EAT's inverse block masking, visible patches in ``block_size`` blocks: harder,
    a patch cannot be copied from its neighbours). ``norm_patches``: targets standardised per patch
    (MAE's ``norm_pix_loss``; the loss then measures shape, not loudness). Needs the SSL hooks
    (``beats`` / ``eat``). Logs ``loss``, ``explained_var`` (1 - loss / target variance: 0 = predicting the
    mean patch, 1 = perfect) and ``pred_var``. It did worse than the paradigms' own objectives in every grid
    cell measured (benchmarks/RESULTS.md, "Design measurements"), so the grid keeps those
    (``avexlab grid --set beats/ssl:objective.kind=masked_spec`` swaps it in)."""

    mask_ratio: float = Field(default=0.75, gt=0, lt=1)
    masking: Literal["random", "block"] = "random"
    block_size: int = Field(default=5, ge=1)
    norm_patches: bool = True
    decoder_layers: int = Field(default=2, ge=1)


class ObjectiveConfig(_Strict):
    """``kind``: ``supervised`` (multi-hot BCE over the joint label space, linear head), ``beats_ssl``,
    ``eat_ssl``, ``masked_spec`` (masked-spectrogram reconstruction, section ``masked_spec``) or
    ``beats_tokenizer`` (train a BEATs tokenizer from a teacher; section ``tokenizer``). Each kind reads only its
    own section."""

    kind: Literal["supervised", "beats_ssl", "eat_ssl", "masked_spec", "beats_tokenizer"] = "supervised"
    beats: BeatsSSLConfig = Field(default_factory=BeatsSSLConfig)
    eat: EatSSLConfig = Field(default_factory=EatSSLConfig)
    masked_spec: MaskedSpecConfig = Field(default_factory=MaskedSpecConfig)
    tokenizer: BeatsTokenizerConfig = Field(default_factory=BeatsTokenizerConfig)

    @model_validator(mode="after")
    def _teacher(self) -> ObjectiveConfig:
        if self.kind == "beats_tokenizer" and self.tokenizer.teacher_checkpoint is None:
            raise ValueError(
                "objective.kind='beats_tokenizer' distils a teacher: set objective.tokenizer.teacher_checkpoint "
                "(the previous SSL iteration's run directory)"
            )
        return self


class OptimConfig(_Strict):
    """AdamW with linear warmup then cosine (or constant) decay to ``min_lr_ratio x lr``.

    ``batch_size`` is the GLOBAL number of clips per optimiser step; each of ``world_size`` processes runs
    ``grad_accum`` micro-batches of ``batch_size / (world_size x grad_accum)`` clips. Set at most one of
    ``epochs`` and ``steps`` (neither = 1 epoch, written into the resolved config). ``frozen_backbone_epochs``: the encoder is frozen (only the head trains) for
    that many epochs first, as the reference's SL post-training does."""

    lr: float = Field(default=5e-4, gt=0)
    weight_decay: float = Field(default=0.01, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = Field(default=0, ge=0)
    schedule: Literal["cosine", "constant"] = "cosine"
    min_lr_ratio: float = Field(default=0.0, ge=0, le=1)
    epochs: int | None = Field(default=None, ge=1)
    steps: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=8, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    clip_norm: float | None = Field(default=1.0, gt=0)
    frozen_backbone_epochs: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _length(self) -> OptimConfig:
        if self.epochs is not None and self.steps is not None:
            raise ValueError(
                f"optim needs at most one of epochs and steps, found epochs={self.epochs}, steps={self.steps}; "
                "set the other to null"
            )
        if self.epochs is None and self.steps is None:
            self.epochs = 1  # recorded in the resolved config.yaml
        return self


class RuntimeConfig(_Strict):
    """Where and how the run executes. ``device="auto"`` = CUDA when available; ``precision="auto"`` = bf16
    autocast on CUDA, fp32 on CPU. ``checkpoint_every`` in optimiser steps (0 = only at the end).
    ``deterministic`` turns on ``torch.use_deterministic_algorithms`` (exact resume on CPU)."""

    seed: int = 0
    device: str = "auto"
    precision: Literal["auto", "bf16", "fp32"] = "auto"
    compile: bool = False
    num_workers: int = Field(default=0, ge=0)
    checkpoint_every: int = Field(default=0, ge=0)
    log_every: int = Field(default=1, ge=1)
    out_dir: Path = Path("runs/train")
    progress: bool = True
    deterministic: bool = False


class RunConfig(_Strict):
    """The full, resolved configuration of one training run (``config.yaml`` in the run directory).

    ``recipe``: ``sl`` (supervised from scratch or ``model.init_checkpoint``), ``ssl`` (self-supervised,
    objective ``beats_ssl`` / ``eat_ssl`` / ``masked_spec``, or a BEATs tokenizer: ``beats_tokenizer``), ``sl-ssl`` (supervised post-training of an SSL checkpoint:
    ``model.init_checkpoint`` required)."""

    recipe: Literal["sl", "ssl", "sl-ssl"] = "sl"
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: DataConfig = Field(default_factory=DataConfig)
    augment: AugmentConfig = Field(default_factory=AugmentConfig)
    objective: ObjectiveConfig = Field(default_factory=ObjectiveConfig)
    optim: OptimConfig = Field(default_factory=OptimConfig)
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig)

    @model_validator(mode="after")
    def _recipe(self) -> RunConfig:
        ssl = self.objective.kind != "supervised"
        if self.recipe == "ssl" and not ssl:
            raise ValueError(
                "recipe 'ssl' needs objective.kind 'beats_ssl', 'eat_ssl', 'masked_spec' or 'beats_tokenizer', "
                "found 'supervised'"
            )
        if self.recipe in ("sl", "sl-ssl") and ssl:
            raise ValueError(
                f"recipe {self.recipe!r} needs objective.kind 'supervised', found {self.objective.kind!r}"
            )
        if self.recipe == "sl-ssl" and self.model.init_checkpoint is None:
            raise ValueError("recipe 'sl-ssl' post-trains an SSL checkpoint: set model.init_checkpoint")
        rate = encoder_sample_rate(self.model)
        if rate is None:  # not a registered architecture: the encoder passed to train() sets the rate
            return self
        if self.data.sample_rate is None:
            self.data.sample_rate = rate  # recorded in the resolved config.yaml
        elif self.data.sample_rate != rate:
            raise ValueError(
                f"data.sample_rate is {self.data.sample_rate} Hz, but the encoder (model.name="
                f"{self.model.name!r}, size {self.model.size!r}) reads {rate} Hz audio: the data is resampled "
                f"to the encoder's rate. Remove data.sample_rate (or set it to {rate}), or build the encoder "
                f"for {self.data.sample_rate} Hz with model.overrides.sample_rate={self.data.sample_rate} "
                "where the architecture supports it"
            )
        return self


def encoder_sample_rate(model: ModelConfig) -> int | None:
    """The input rate (Hz) of the encoder ``model`` describes: its size preset's ``sample_rate`` with
    ``model.overrides`` applied (the registry's presets all name one). None when ``model.name`` is not a
    registered architecture (an encoder object given to the trainer then sets the rate; building one by
    that name fails with the registry's error)."""
    from avexlab.models.registry import list_encoders, preset_config

    if model.name not in list_encoders():
        return None
    try:
        cfg = preset_config(model.name, model.size, **model.overrides)
    except ConfigError as err:
        raise ValueError(str(err)) from None
    if "sample_rate" not in cfg:
        raise ValueError(
            f"model {model.name!r} (size {model.size!r}) names no sample_rate in its preset; add one to its "
            "registered presets"
        )
    return int(cfg["sample_rate"])


# --------------------------------------------------------------------------------------------- helpers


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str] | None:
    """The field names allowed at the parent of ``loc`` (for 'unknown key' messages)."""
    cls: Any = model
    for part in loc[:-1]:
        field = getattr(cls, "model_fields", {}).get(part)
        if field is None:
            return None
        cls = field.annotation
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)):
            return None
    return sorted(cls.model_fields) if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _config_error(err: ValidationError, source: str) -> ConfigError:
    lines = []
    for e in err.errors():
        loc = tuple(e["loc"])
        key = ".".join(str(p) for p in loc) or "<root>"
        if e["type"] == "extra_forbidden":
            allowed = _allowed_keys(RunConfig, loc)
            lines.append(f"unknown key {key!r}: expected one of {allowed}")
        else:
            found = e.get("input")
            found_s = repr(found) if not isinstance(found, dict) else "a mapping"
            lines.append(f"{key}: {e['msg']} (found {found_s[:80]})")
    return ConfigError(f"{source}: invalid run config:\n  " + "\n  ".join(lines) + "\nFix the key(s) above.")


def parse_config(data: dict[str, Any], source: str = "config") -> RunConfig:
    """Validate a plain mapping into a :class:`RunConfig` (ConfigError naming every bad key)."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, found {type(data).__name__}.")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise _config_error(err, source) from None


def parse_override_value(text: str) -> Any:
    # YAML scalars: 1, 1.5, true, null, [1, 2], {a: 1}; YAML 1.1 reads '1e-3' as a string, pydantic casts it.
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` overrides to a plain mapping (a copy is returned; the value is a YAML scalar
    or flow collection). Unknown keys are caught when the result is validated by :func:`parse_config`;
    a path that walks into a non-mapping is a ConfigError here."""
    out = json.loads(json.dumps(data, default=str))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected 'key.sub=value', found no '='.")
        key, value = item.split("=", 1)
        parts = key.strip().split(".")
        if not all(parts):
            raise ConfigError(f"override {item!r}: expected a dotted key like 'optim.lr', found {key!r}.")
        node = out
        for i, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"override {item!r}: {'.'.join(parts[: i + 1])!r} is a value ({child!r}), not a section."
                )
            node = child
        node[parts[-1]] = parse_override_value(value)
    return out


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a YAML run config (or the defaults when ``path`` is None) and apply ``overrides``."""
    data: dict[str, Any] = {}
    source = "defaults"
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file {p}: expected an existing YAML file, found nothing there.")
        source = str(p)
        try:
            data = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{p}: expected YAML, could not parse it ({err}).") from None
    if overrides:
        data = apply_overrides(data, overrides)
    return parse_config(data, source)


load_run_config = load_config  # the name the CLI uses


def config_to_dict(cfg: RunConfig) -> dict[str, Any]:
    """The config as plain JSON-able data (paths as strings, tuples as lists)."""
    return cfg.model_dump(mode="json")


def save_config(cfg: RunConfig, path: str | Path) -> Path:
    """Write the full resolved config as YAML, atomically and durably (:func:`avexlab.fsutil.atomic_write`)."""
    return atomic_write(path, yaml.safe_dump(config_to_dict(cfg), sort_keys=False))


# Fields that never change what a run computes (where it writes, how it reports progress).
_NOT_HASHED = {"runtime": {"out_dir", "progress", "num_workers", "log_every", "checkpoint_every"}}


def config_hash(cfg: RunConfig) -> str:
    """sha256 of the result-affecting part of the config (everything but output location and reporting).
    Two runs with the same hash (and data) compute the same thing; resume requires equal hashes."""
    data = config_to_dict(cfg)
    for section, keys in _NOT_HASHED.items():
        for k in keys:
            data[section].pop(k, None)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
