"""Scoped torch intra-op thread counts."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

__all__ = ["torch_threads"]


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads and restore the previous count afterwards (also on
    errors). Float sums depend on the thread count, so code whose results must not depend on the machine
    (probes, bit-for-bit comparisons with a child process) runs under ``torch_threads(1)``."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
