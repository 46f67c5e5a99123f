"""Order-free randomness: every item draws from its own generator derived from (seed, item key).

Rendering item ``k`` therefore never depends on which other items were rendered before it, in this
process or another, which makes rendering subsets, in any order or in parallel, bit-identical.
"""

from __future__ import annotations

import hashlib

import numpy as np

from avexlab.errors import ConfigError, expected_found


def key_words(key: str) -> list[int]:
    """A stable 128-bit hash of ``key`` as four uint32 words (blake2b: identical on every platform)."""
    digest = hashlib.blake2b(key.encode("utf-8"), digest_size=16).digest()
    return [int.from_bytes(digest[i : i + 4], "little") for i in range(0, 16, 4)]


def rng_for(seed: int, key: str) -> np.random.Generator:
    """The generator of item ``key`` in the world of ``seed``; independent of every other key."""
    if not isinstance(seed, int | np.integer) or seed < 0:
        raise ConfigError(
            expected_found("synth seed", "a non-negative integer", repr(seed), "Pass e.g. seed=0.")
        )
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([int(seed), *key_words(key)])))
