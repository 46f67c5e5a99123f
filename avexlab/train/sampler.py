"""A deterministic, resumable, distributed batch plan.

The plan for epoch ``e`` is a pure function of ``(seed, e)``: a uniform permutation of the pool (the
reference's plain shuffle) or, with per-clip ``weights``, ``n`` draws with replacement proportional to them.
It is cut into optimiser steps of ``batch_size`` clips (the GLOBAL batch; the tail that does not fill a step
is dropped). Within a step, rank ``r`` of ``world_size`` takes the ``r``-th contiguous share and splits it
into ``grad_accum`` micro-batches. So a 1-process run and an N-process run with the same global batch see
exactly the same clips in every step, and resuming at step ``k`` needs only ``(epoch, k)``: no iterator
state to save.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from avexlab.errors import ConfigError, DataNotFoundError

__all__ = ["StepPlan", "mix_seed"]


@dataclass(frozen=True)
class StepPlan:
    """Which clips every process reads at every step.

    Attributes:
        n: clips in the training pool.
        batch_size: global clips per optimiser step.
        world_size, rank: the process group.
        grad_accum: micro-batches per step and process.
        seed: the run seed.
        weights: optional ``[n]`` float sampling weights (None = uniform permutation).
    """

    n: int
    batch_size: int
    world_size: int = 1
    rank: int = 0
    grad_accum: int = 1
    seed: int = 0
    weights: Tensor | None = None

    def __post_init__(self) -> None:
        per = self.world_size * self.grad_accum
        if self.batch_size % per:
            raise ConfigError(
                f"optim.batch_size={self.batch_size} (global clips per step) must be divisible by "
                f"world_size x grad_accum = {self.world_size} x {self.grad_accum} = {per}. "
                "Change optim.batch_size, optim.grad_accum or the number of processes."
            )
        if self.n < self.batch_size:
            raise DataNotFoundError(
                f"training pool: expected at least one global batch ({self.batch_size} clips), found {self.n} "
                "clip(s). Add training clips, pick another data.mix, or lower optim.batch_size."
            )
        if self.weights is not None and self.weights.shape != (self.n,):
            raise ConfigError(
                f"sampling weights: expected shape ({self.n},), found {tuple(self.weights.shape)}."
            )

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.batch_size

    @property
    def micro_batch_size(self) -> int:
        """Clips per forward pass on one process."""
        return self.batch_size // (self.world_size * self.grad_accum)

    def epoch_order(self, epoch: int) -> Tensor:
        """``[steps_per_epoch x batch_size]`` int64 clip indices of epoch ``epoch`` (same on every rank)."""
        g = torch.Generator().manual_seed(mix_seed(self.seed, epoch, 0x5A3E))
        m = self.steps_per_epoch * self.batch_size
        if self.weights is None:
            return torch.randperm(self.n, generator=g)[:m]
        return torch.multinomial(self.weights.double(), m, replacement=True, generator=g)

    def micro_batches(self, epoch: int, start_step: int = 0) -> Iterator[list[int]]:
        """This rank's micro-batches of ``epoch`` from step ``start_step`` (within the epoch) on, in order:
        ``grad_accum`` lists of ``micro_batch_size`` indices per step."""
        order = self.epoch_order(epoch).view(self.steps_per_epoch, self.world_size, self.grad_accum, -1)
        for step in range(start_step, self.steps_per_epoch):
            for micro in order[step, self.rank]:
                yield micro.tolist()


def mix_seed(*parts: int) -> int:
    """A stable 63-bit seed (a non-negative int for ``torch.Generator.manual_seed``) from integers: each part
    (taken mod 2^64) is folded into the state with a SplitMix64-style multiply and shift. The same parts give
    the same seed on every machine, in every process and Python version; other parts, or the same in another
    order, give another seed (a 63-bit hash: collisions are possible but improbable). The trainer derives
    every per-step and per-purpose seed from the run seed with it, e.g. ``mix_seed(seed, step, rank)``."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = (x ^ (int(p) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return x & 0x7FFFFFFFFFFFFFFF
