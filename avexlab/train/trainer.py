"""The trainer: one loop, readable top to bottom.

``train(config)`` builds the data, encoder and objective, then runs AdamW with linear warmup + cosine,
gradient accumulation and clipping, bf16 autocast on CUDA (fp32 on CPU), atomic checkpoints every
``runtime.checkpoint_every`` steps and at the end, and resumes EXACTLY from the newest checkpoint of the
run directory (weights, optimiser, scheduler, step/epoch, RNG states).

Determinism: the batch plan is a pure function of (seed, epoch) (:class:`StepPlan`), and every RNG the step
uses (torch's global one, the augmentation and masking generators) is reseeded from (seed, step, rank) at
the start of each step, so step ``k`` computes the same thing whether the run got there in one go or was
killed and resumed. The checkpoint still stores the RNG states for inspection.

Distributed: launched by ``torchrun`` (``WORLD_SIZE`` > 1) the same command uses DistributedDataParallel
with NCCL on CUDA or gloo on CPU; ``optim.batch_size`` is the global batch, split across processes; only
rank 0 writes.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import torch
import torch.distributed as dist
from torch import Tensor, nn

from avexlab.augment import Augmenter
from avexlab.config import RunConfig, config_hash, save_config
from avexlab.errors import CheckpointError, ConfigError, TrainingDivergedError, expected_found
from avexlab.fsutil import atomic_write
from avexlab.train.checkpoint import latest_checkpoint, read_checkpoint, write_checkpoint
from avexlab.train.data import TrainData, build_train_data, multi_hot
from avexlab.train.objectives import Objective, build_objective
from avexlab.train.provenance import provenance
from avexlab.train.sampler import StepPlan, mix_seed

__all__ = ["TrainingDivergedError", "TrainModule", "train"]


class TrainModule(nn.Module):
    """Encoder + objective as one module (what DDP wraps): ``forward(batch) -> (loss, logs)``."""

    def __init__(self, encoder: nn.Module, objective: Objective) -> None:
        super().__init__()
        self.encoder = encoder
        self.objective = objective

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict[str, Tensor]]:
        return self.objective.loss(self.encoder, batch)


def lr_factor(step: int, total: int, warmup: int, schedule: str, min_ratio: float) -> float:
    """Multiplier of the base lr at optimiser step ``step`` (0-based): linear warmup over ``warmup`` steps,
    then cosine from 1 to ``min_ratio`` at ``total`` (or constant 1)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def _setup_distributed(device_pref: str) -> tuple[int, int, torch.device, bool]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    want_cuda = device_pref == "cuda" or (device_pref == "auto" and torch.cuda.is_available())
    if device_pref.startswith("cuda:"):
        want_cuda = True
    if want_cuda:
        device = torch.device("cuda", local if world > 1 else torch.device(device_pref).index or 0)
        torch.cuda.set_device(device)
    else:
        device = torch.device("cpu" if device_pref == "auto" else device_pref)
    owns_group = world > 1 and not dist.is_initialized()
    if owns_group:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return world, rank, device, owns_group


def _seed_step(seed: int, step: int, rank: int, *gens: torch.Generator) -> None:
    s = mix_seed(seed, step, rank)
    torch.manual_seed(s)
    random.seed(s)
    np.random.seed(s % 2**32)
    for i, g in enumerate(gens):
        g.manual_seed(mix_seed(s, i + 1))


def _rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "python": list(random.getstate()[1]),
        "numpy": torch.from_numpy(np.random.get_state()[1].astype(np.int64)),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _param_groups(module: TrainModule, weight_decay: float) -> list[dict[str, Any]]:
    """AdamW groups: backbone / head, each split into decayed (matrices) and non-decayed (biases, norms)."""
    groups = []
    for part, mod in (("backbone", module.encoder), ("head", module.objective)):
        params = [(n, p) for n, p in mod.named_parameters() if p.requires_grad]
        decay = [p for _, p in params if p.ndim >= 2]
        no_decay = [p for _, p in params if p.ndim < 2]
        groups.append({"params": decay, "weight_decay": weight_decay, "part": part})
        groups.append({"params": no_decay, "weight_decay": 0.0, "part": part})
    return [g for g in groups if g["params"]]


def _check_trainable(model: str | nn.Module) -> None:
    """Refuse a released model that avexlab runs frozen (``Encoder.trainable`` False, e.g. BirdNET through
    LiteRT): it has no torch parameters, so training would silently do nothing."""
    from avexlab.models.registry import encoder_class, list_encoders

    cls = encoder_class(model) if isinstance(model, str) else type(model)
    if getattr(cls, "trainable", True):
        return
    name = getattr(cls, "name", cls.__name__)
    trainable = [n for n in list_encoders() if encoder_class(n).trainable]
    raise ConfigError(
        expected_found(
            "model.name",
            f"a trainable architecture ({', '.join(trainable)})",
            f"{name!r}, a released model that avexlab runs frozen (no torch parameters to train)",
            f"Evaluate it instead (`avexlab evaluate --encoder {name} ...`), or train a probe on its embeddings.",
        )
    )


def _build_encoder(cfg: RunConfig) -> nn.Module:
    from avexlab.models.registry import build_encoder

    encoder = build_encoder(cfg.model.name, size=cfg.model.size, **cfg.model.overrides)
    if cfg.model.init_checkpoint is not None:
        from avexlab.models.checkpoints import load_encoder, load_strict

        init = load_encoder(cfg.model.init_checkpoint)
        if getattr(init, "name", None) != getattr(encoder, "name", None) or init.config != encoder.config:
            raise CheckpointError(
                f"model.init_checkpoint {cfg.model.init_checkpoint}: expected a {cfg.model.name!r} encoder with "
                f"config {encoder.config}, found {getattr(init, 'name', '?')!r} with {init.config}. "
                "Set model.name/size/overrides to the checkpoint's architecture."
            )
        load_strict(encoder, init.state_dict(), cfg.model.init_checkpoint)
    return encoder


def _resolve_rate(cfg: RunConfig, encoder: nn.Module | None) -> RunConfig:
    """``cfg`` with ``data.sample_rate`` set: the config resolves it for registered architectures; for an
    encoder object of another kind (tests, notebooks) it is that encoder's rate."""
    if cfg.data.sample_rate is not None:
        return cfg
    if encoder is None or not hasattr(encoder, "sample_rate"):
        raise ConfigError(
            f"model.name {cfg.model.name!r} is not a registered encoder, so its sample rate is unknown. Use "
            "a registered architecture (avexlab models list), or pass the encoder object to train()."
        )
    resolved = cfg.model_copy(deep=True)
    resolved.data.sample_rate = int(encoder.sample_rate)
    return resolved


def _check_rate(encoder: nn.Module, cfg: RunConfig) -> None:
    """The encoder must read audio at the rate the pool is resampled to (``data.sample_rate``)."""
    rate = int(getattr(encoder, "sample_rate", cfg.data.sample_rate))
    if rate != cfg.data.sample_rate:
        raise ConfigError(
            f"the encoder reads {rate} Hz audio, but data.sample_rate (the rate the pool is resampled to) is "
            f"{cfg.data.sample_rate} Hz. Set data.sample_rate to {rate}, or pass an encoder built for "
            f"{cfg.data.sample_rate} Hz."
        )


def _check_resume(run_dir: Path, chash: str) -> Any:
    """Read the newest checkpoint of ``run_dir`` (None if there is none) and check it is this config's."""
    path = latest_checkpoint(run_dir)
    if path is None:
        return None
    ckpt = read_checkpoint(path)
    if ckpt.state["config_hash"] != chash:
        raise ConfigError(
            f"{run_dir}: expected to resume a run of this config (hash {chash[:12]}), found a checkpoint of "
            f"another config (hash {str(ckpt.state['config_hash'])[:12]}) in {path}. Use a new "
            "runtime.out_dir, or the run's own config.yaml to resume it."
        )
    return ckpt


def train(
    config: RunConfig,
    *,
    encoder: nn.Module | None = None,
    data: TrainData | None = None,
) -> Path:
    """Train ``config`` and return the run directory (``runtime.out_dir``).

    ``data``: the training pool (:func:`avexlab.train.data.build_train_data`); default: the pool of
    ``data.manifests``. A synthetic world's pool is built by :mod:`avexlab.experiments`
    (``experiments.train_run``): the trainer never opens a world. ``encoder`` replaces the one the config
    would build (for notebooks and tests; its sample rate must be ``data.sample_rate``); the config still
    describes the run. Resumes automatically from ``out_dir/checkpoints/latest`` when present. Everything
    that can be checked (config, resume compatibility, data pool, objective vs encoder) is checked before
    the first step.
    """
    world, rank, device, owns_group = _setup_distributed(config.runtime.device)
    try:
        return _train(config, encoder, data, world, rank, device)
    finally:
        # A process group left to the interpreter's exit tears gloo's threads down in no set order and the
        # process can die of SIGABRT ("terminate called without an active exception") after a finished
        # run; one the caller created is the caller's to destroy.
        if owns_group:
            dist.destroy_process_group()


def _train(
    config: RunConfig,
    encoder: nn.Module | None,
    data: TrainData | None,
    world: int,
    rank: int,
    device: torch.device,
) -> Path:
    cfg = _resolve_rate(config, encoder)
    run_dir = Path(cfg.runtime.out_dir)
    chash = config_hash(cfg)
    is_main = rank == 0
    if cfg.runtime.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
    use_bf16 = cfg.runtime.precision == "bf16" or (cfg.runtime.precision == "auto" and device.type == "cuda")

    # ---- checks and setup (no training work before this block has passed) ----
    _check_trainable(cfg.model.name if encoder is None else encoder)
    ckpt = _check_resume(run_dir, chash)
    if encoder is not None:
        _check_rate(encoder, cfg)
    data = data if data is not None else build_train_data(cfg)
    plan = StepPlan(
        n=len(data.dataset),
        batch_size=cfg.optim.batch_size,
        world_size=world,
        rank=rank,
        grad_accum=cfg.optim.grad_accum,
        seed=cfg.runtime.seed,
        weights=data.weights,
    )
    spe = plan.steps_per_epoch
    total_steps = cfg.optim.steps or cfg.optim.epochs * spe
    frozen_steps = cfg.optim.frozen_backbone_epochs * spe
    torch.manual_seed(cfg.runtime.seed)  # the initialisation is a function of the seed alone
    encoder = encoder if encoder is not None else _build_encoder(cfg)
    _check_rate(encoder, cfg)
    objective = build_objective(cfg, encoder, data.num_classes)
    augmenter = Augmenter(cfg.augment, data.noise_bank)
    module = TrainModule(encoder, objective).to(device)
    prepared: dict[str, float] = {}
    if ckpt is None:  # fresh run: objective set-up (tokenizer fit) on batches every rank draws alike
        # GLOBAL batches (no gradient is kept): the set-up sees the same clips whatever the number of ranks
        prep = StepPlan(n=plan.n, batch_size=cfg.optim.batch_size, seed=mix_seed(cfg.runtime.seed, 0xF17))
        prep_batches = (
            _to_device(b, device, 0)
            for b in _epoch_batches(data, prep, 0, 0, cfg.runtime.num_workers, set_epoch=False)
        )
        prepared = objective.prepare(
            encoder, prep_batches, torch.Generator().manual_seed(mix_seed(cfg.runtime.seed, 0xF18))
        )
    if cfg.runtime.compile:
        module.encoder = torch.compile(module.encoder)  # type: ignore[assignment]
    model: nn.Module = module
    if world > 1:
        # find_unused_parameters: some encoders carry modules an objective does not use (EAT's SSL decoder
        # in supervised training); DDP must not wait for their gradients.
        model = nn.parallel.DistributedDataParallel(
            module, device_ids=[device.index] if device.type == "cuda" else None, find_unused_parameters=True
        )
    opt = torch.optim.AdamW(
        _param_groups(module, cfg.optim.weight_decay),
        lr=cfg.optim.lr,
        betas=cfg.optim.betas,
        fused=device.type == "cuda",
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: lr_factor(
            s, total_steps, cfg.optim.warmup_steps, cfg.optim.schedule, cfg.optim.min_lr_ratio
        ),
    )
    metrics: list[dict[str, Any]] = []
    step = 0
    if ckpt is not None:
        module.load_state_dict(ckpt.weights, strict=True)
        opt.load_state_dict(ckpt.state["optimizer"])
        sched.load_state_dict(ckpt.state["scheduler"])
        step = ckpt.step
        if (run_dir / "metrics.parquet").is_file():
            metrics = pl.read_parquet(run_dir / "metrics.parquet").filter(pl.col("step") <= step).to_dicts()
    aug_gen, mask_gen = torch.Generator(), torch.Generator()
    skipped: list[dict[str, Any]] = []  # this rank's clips dropped by collate (unreadable at decode time)
    if is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        save_config(cfg, run_dir / "config.yaml")
        prov = provenance(cfg, chash, data, device, world, previous=run_dir / "provenance.json", step=step)
        if prepared:
            prov = json.dumps({**json.loads(prov), "objective_prepare": prepared}, indent=2)
        atomic_write(run_dir / "provenance.json", prov.encode())

    def save(step: int) -> None:
        if not is_main:
            return
        weights = dict(module.state_dict())
        state = {
            "step": step,
            "epoch": step // spe,
            "step_in_epoch": step % spe,
            "config_hash": chash,
            "optimizer": opt.state_dict(),
            "scheduler": sched.state_dict(),
            "rng": _rng_state(),
            "world_size": world,
        }
        write_checkpoint(run_dir, step, weights, state)
        atomic_write(run_dir / "metrics.parquet", _parquet_bytes(metrics))
        _export_encoder(module.encoder, run_dir)
        module.objective.export(run_dir)
        prov = json.loads((run_dir / "provenance.json").read_text())
        if skipped:  # clips that failed while decoding (on_error="skip"): listed in provenance.json
            known = {(s["clip_id"], s["reason"]) for s in prov["skipped_clips"]}
            prov["skipped_clips"] += [s for s in skipped if (s["clip_id"], s["reason"]) not in known]
        # what the run cost: examples seen, wall time of its sessions up to this checkpoint, throughput
        session = time.perf_counter() - t_session
        prov["training"] = {
            "examples_seen": step * cfg.optim.batch_size,
            "wall_s": round(wall_before + session, 3),
            "clips_per_s": round((step - step_start) * cfg.optim.batch_size / session, 3)
            if session > 0
            else None,
        }
        atomic_write(run_dir / "provenance.json", json.dumps(prov, indent=2, default=str).encode())

    # ---- the loop ----
    step_start, t_session = step, time.perf_counter()
    wall_before = 0.0
    if is_main and step > 0:
        wall_before = float(
            json.loads((run_dir / "provenance.json").read_text()).get("training", {}).get("wall_s", 0)
        )
    bar = _progress(cfg.runtime.progress and is_main, total_steps, step)
    t0 = time.perf_counter()
    model.train()
    batches = None
    while step < total_steps:
        epoch, in_epoch = divmod(step, spe)
        if batches is None or in_epoch == 0:  # a new epoch (or the resumed one): its batch plan from here
            batches = _epoch_batches(data, plan, epoch, in_epoch, cfg.runtime.num_workers)
        _seed_step(cfg.runtime.seed, step, rank, aug_gen, mask_gen)
        frozen = step < frozen_steps
        logs_sum: dict[str, Tensor] = {}
        for micro in range(cfg.optim.grad_accum):
            raw = next(batches)
            skipped.extend(raw.get("skipped") or [])
            batch = _to_device(raw, device, data.num_classes)
            if augmenter.active:
                res = augmenter(batch["wave"], batch["padding_mask"], batch.get("targets"), generator=aug_gen)
                batch.update(wave=res.wave, padding_mask=res.padding_mask, targets=res.targets)
            batch["generator"] = mask_gen
            last = micro == cfg.optim.grad_accum - 1
            sync = contextlib.nullcontext() if (last or world == 1) else model.no_sync()
            with sync, torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss, logs = model(batch)
                (loss / cfg.optim.grad_accum).backward()
            for k, v in logs.items():
                logs_sum[k] = logs_sum.get(k, 0.0) + v.float() / cfg.optim.grad_accum
        if frozen:  # backbone frozen: no update, no weight decay, no optimiser state for it
            for p in module.encoder.parameters():
                p.grad = None
        params = [p for g in opt.param_groups for p in g["params"] if p.grad is not None]
        max_norm = cfg.optim.clip_norm if cfg.optim.clip_norm is not None else float("inf")
        grad_norm = torch.nn.utils.clip_grad_norm_(params, max_norm)
        logs_vec = torch.stack([logs_sum["loss"], grad_norm.float().to(device)])
        if world > 1:
            dist.all_reduce(logs_vec)
            logs_vec /= world
        if not bool(torch.isfinite(logs_vec).all()):
            raise TrainingDivergedError(
                f"step {step}: expected a finite loss and gradient norm, found loss={logs_vec[0].item()} "
                f"grad_norm={logs_vec[1].item()}. The last good checkpoint is kept in {run_dir}/checkpoints. "
                "Lower optim.lr, raise optim.warmup_steps, or use runtime.precision=fp32."
            )
        lr = float(opt.param_groups[0]["lr"])  # the lr this step used
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        extra = objective.after_step(module.encoder, step + 1, total_steps)
        if (step + 1) % cfg.runtime.log_every == 0 or step + 1 == total_steps:
            row = {k: float(v) for k, v in logs_sum.items()}
            row.update(
                step=step + 1,
                epoch=epoch,
                loss=float(logs_vec[0]),
                grad_norm=float(logs_vec[1]),
                lr=lr,
                frozen_backbone=frozen,
                elapsed_s=time.perf_counter() - t0,
                **extra,
            )
            metrics.append(row)
            bar.set_postfix(loss=f"{row['loss']:.4f}", lr=f"{row['lr']:.2e}")
        bar.update(1)
        if cfg.runtime.checkpoint_every and (step + 1) % cfg.runtime.checkpoint_every == 0:
            save(step + 1)
        step += 1
    bar.close()
    save(total_steps)
    if world > 1:
        dist.barrier()
    return run_dir


def _epoch_batches(
    data: TrainData, plan: StepPlan, epoch: int, start: int, workers: int, set_epoch: bool = True
) -> Any:
    """An iterator over this rank's micro-batches of ``epoch`` from step ``start`` (within the epoch)."""
    if set_epoch and hasattr(data.dataset, "set_epoch"):
        data.dataset.set_epoch(epoch)
    loader = torch.utils.data.DataLoader(
        data.dataset,
        batch_sampler=list(plan.micro_batches(epoch, start)),
        collate_fn=data.collate,
        num_workers=workers,
    )
    return iter(loader)


def _to_device(batch: dict[str, Any], device: torch.device, num_classes: int) -> dict[str, Any]:
    out = {
        "wave": batch["wave"].to(device, non_blocking=True),
        "padding_mask": None if batch.get("padding_mask") is None else batch["padding_mask"].to(device),
        "clip_id": batch.get("clip_id"),
    }
    if num_classes > 0:
        out["targets"] = multi_hot(batch["label_idx"], num_classes, device)
    return out


def _parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
    import io

    buf = io.BytesIO()
    pl.DataFrame(rows).write_parquet(buf)
    return buf.getvalue()


def _export_encoder(encoder: nn.Module, run_dir: Path) -> None:
    """``checkpoint.safetensors`` + ``encoder.json`` (readable by ``avexlab.models.load_encoder``)."""
    from avexlab.models.checkpoints import save_encoder

    save_encoder(getattr(encoder, "_orig_mod", encoder), run_dir)


class _NoBar:
    def update(self, n: int) -> None: ...
    def set_postfix(self, **kw: Any) -> None: ...
    def close(self) -> None: ...


def _progress(enabled: bool, total: int, initial: int) -> Any:
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc="train", unit="step", dynamic_ncols=True)
