"""Subprocess entry for the trainer tests (not a test module): train the tiny encoder on a corpus.

    python run_train.py MANIFEST OUT_DIR [--slow SECONDS] [--registry] [--set key=value ...]

Launched plainly or by ``torchrun`` (DDP). ``--slow`` makes each clip read sleep (so a test can kill the
run mid-epoch); it does not change what is computed. ``--registry``: the config's ``model`` builds the
encoder (default: the tiny test encoder). Under torchrun, ``train`` must destroy the process group it
created; with ``--caller-group`` this script creates the group itself, and ``train`` must leave it alive.
The script exits non-zero when either does not hold.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import torch.distributed as dist  # noqa: E402
from tiny import TinyPatchEncoder, tiny_config  # noqa: E402

from avexlab.config import apply_overrides, parse_config  # noqa: E402
from avexlab.train import train  # noqa: E402
from avexlab.train.data import build_train_data  # noqa: E402


class Slow:
    def __init__(self, dataset, seconds: float) -> None:
        self.dataset, self.seconds = dataset, seconds

    def __len__(self) -> int:
        return len(self.dataset)

    def set_epoch(self, epoch: int) -> None:
        self.dataset.set_epoch(epoch)

    def __getitem__(self, i: int):
        time.sleep(self.seconds)
        return self.dataset[i]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("manifest")
    ap.add_argument("out_dir")
    ap.add_argument("--slow", type=float, default=0.0)
    ap.add_argument("--registry", action="store_true")
    ap.add_argument("--set", action="append", default=[])
    ap.add_argument("--caller-group", action="store_true")
    a = ap.parse_args()
    launched = "WORLD_SIZE" in os.environ
    if a.caller_group:
        dist.init_process_group("gloo")
    cfg = parse_config(apply_overrides(tiny_config(Path(a.manifest), Path(a.out_dir)), a.set))
    data = build_train_data(cfg)
    if a.slow:
        data.dataset = Slow(data.dataset, a.slow)
    train(cfg, encoder=None if a.registry else TinyPatchEncoder(), data=data)
    if a.caller_group:
        if not dist.is_initialized():
            sys.exit("train() destroyed a process group its caller created")
        dist.destroy_process_group()
    elif launched and dist.is_initialized():
        sys.exit("train() left the process group it created alive")


if __name__ == "__main__":
    main()
