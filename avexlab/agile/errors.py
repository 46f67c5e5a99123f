"""The agile loop's error (its own module: the store, its index and search all raise it)."""

from __future__ import annotations

from avexlab.errors import AvexlabError

__all__ = ["StoreError"]


class StoreError(AvexlabError, ValueError):
    """An embedding store cannot be built, opened or used as asked (another encoder, an incomplete build,
    rows out of range, ...)."""
