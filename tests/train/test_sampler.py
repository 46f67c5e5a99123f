"""The step plan: deterministic by (seed, epoch), rank shares partition the global batch, resumable,
weighted sampling; clear errors for an empty pool or an indivisible batch."""

from __future__ import annotations

import polars as pl
import pytest
import torch
from tolerance import assert_close_f32, f64_tol

from avexlab.errors import ConfigError, DataNotFoundError
from avexlab.train.data import multi_hot, pool_weights, select_pool
from avexlab.train.sampler import StepPlan


def test_ranks_partition_the_one_process_plan() -> None:
    one = StepPlan(n=50, batch_size=8, grad_accum=1, seed=3)
    ranks = [StepPlan(n=50, batch_size=8, world_size=2, rank=r, grad_accum=2, seed=3) for r in range(2)]
    full = list(one.micro_batches(epoch=1))
    parts = [list(p.micro_batches(epoch=1)) for p in ranks]
    assert len(full) == one.steps_per_epoch == 6
    for s in range(6):
        joined = [i for r in range(2) for m in parts[r][2 * s : 2 * s + 2] for i in m]
        assert joined == full[s]
    assert ranks[0].micro_batch_size == 2


def test_epochs_differ_and_resume_skips_exactly() -> None:
    plan = StepPlan(n=40, batch_size=4, seed=0)
    e0, e1 = list(plan.micro_batches(0)), list(plan.micro_batches(1))
    assert e0 != e1 and sorted(i for b in e0 for i in b) == list(range(40))
    assert list(plan.micro_batches(0, start_step=7)) == e0[7:]
    assert list(StepPlan(n=40, batch_size=4, seed=0).micro_batches(1)) == e1


def test_weighted_plan_follows_weights() -> None:
    w = torch.tensor([0.0] * 10 + [1.0] * 10)
    plan = StepPlan(n=20, batch_size=4, seed=0, weights=w)
    drawn = torch.tensor(
        [i for b in plan.micro_batches(0) for i in b] + [i for b in plan.micro_batches(1) for i in b]
    )
    assert (drawn >= 10).all()


def test_pool_weights_balance_pools_and_name_bad_keys() -> None:
    df = pl.DataFrame(
        {"dataset": ["a"] * 6 + ["g"] * 2, "domain": ["focal"] * 6 + ["general"] * 2, "split": ["train"] * 8}
    )
    # float64 weights: a pool's weight over its count (1 rounding each), then 6 (or 2) of them summed
    w = pool_weights(df, {"bio": 1.0, "general": 1.0})
    assert_close_f32(w[:6].sum(), w[6:].sum(), f64_tol(w[6:].sum(), ops=6 + 1), what="pools balanced")
    w = pool_weights(df, {"a": 3.0, "general": 1.0})
    assert_close_f32(w[:6].sum(), 3 * w[6:].sum(), f64_tol(3 * w[6:].sum(), ops=6 + 2), what="pool a x3")
    with pytest.raises(ConfigError, match="unknown key"):
        pool_weights(df, {"nope": 1.0, "bio": 1.0, "general": 1.0})
    with pytest.raises(ConfigError, match="no weight for \\['general'\\]"):
        pool_weights(df, {"bio": 1.0})
    assert select_pool(df, "bio").height == 6 and select_pool(df, "general").height == 2


def test_empty_pool_and_bad_batch_are_clear_errors() -> None:
    with pytest.raises(DataNotFoundError, match="at least one global batch"):
        StepPlan(n=3, batch_size=4)
    with pytest.raises(ConfigError, match="divisible by world_size x grad_accum"):
        StepPlan(n=30, batch_size=6, world_size=2, grad_accum=2)


def test_multi_hot_from_sparse_labels() -> None:
    t = multi_hot([[0, 3], [], [2]], 5)
    assert t.tolist() == [[1, 0, 0, 1, 0], [0, 0, 0, 0, 0], [0, 0, 1, 0, 0]]
    with pytest.raises(ConfigError, match="expected class indices"):
        multi_hot([[5]], 5)


def test_world_noise_bank_holds_each_background_type() -> None:
    from avexlab.experiments import world_noise_bank
    from avexlab.synth import render_world

    world = render_world("smoke", 0)  # in memory: manifests only, nothing rendered up front
    bank = world_noise_bank(world, 16000, 1.5)
    assert bank.shape == (len(world.config.background), 24000)
    assert (bank.square().mean(dim=1) > 0).all()
    assert torch.equal(bank, world_noise_bank(world, 16000, 1.5))
    spectra = torch.fft.rfft(bank).abs()
    assert not torch.allclose(spectra[0], spectra[1], rtol=0.5)  # distinct types, not one noise repeated
