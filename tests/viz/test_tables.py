from __future__ import annotations

import numpy as np
import pytest
import torch

from avexlab.errors import ConfigError
from avexlab.viz.tables import augmentation_summary


def _preview(noise: bool, mix: bool, seed: int = 0) -> dict:
    from avexlab.augment import preview
    from avexlab.config import AugmentConfig, MixupConfig, NoiseConfig

    cfg = AugmentConfig(noise=NoiseConfig(enabled=noise, p=1.0), mixup=MixupConfig(enabled=mix, p=1.0))
    wave = torch.randn(4, 800, generator=torch.Generator().manual_seed(1))
    return preview(wave, bank=torch.randn(2, 800), targets=torch.eye(4), cfg=cfg, seed=seed)


def test_summary_reports_draws_and_or_ed_labels() -> None:
    res = _preview(noise=True, mix=True)
    table = augmentation_summary(res, ["a", "b", "c", "d"], ["A", "B", "C", "D"])
    assert table["labels before"].to_list() == ["A", "B", "C", "D"]
    (i, j) = res["mixup_pairs"][0]
    row = table.row(int(i), named=True)
    assert row["mixed with"] == "abcd"[int(j)]
    assert row["lam"] == float(res["mixup_lambda"][0])  # the drawn value, copied into the table
    assert row["labels after"] == ", ".join(sorted({"ABCD"[int(i)], "ABCD"[int(j)]}))
    assert table["noise"].to_list() == [True] * 4
    np.testing.assert_array_equal(table["SNR (dB)"].to_numpy(), res["snr_db"])  # copied
    assert table["mixed with"].null_count() == 3


def test_summary_without_augmentations_and_shape_check() -> None:
    table = augmentation_summary(_preview(noise=False, mix=False), list("abcd"), list("ABCD"))
    assert table["noise"].to_list() == [False] * 4
    assert table["SNR (dB)"].null_count() == 4 and table["mixed with"].null_count() == 4
    assert table["labels after"].to_list() == table["labels before"].to_list()
    with pytest.raises(ConfigError, match="clips x labels"):
        augmentation_summary(_preview(noise=False, mix=False), list("abc"), list("ABCD"))
