"""Deterministic draws: a uniform number from a hash of what is being decided (seed, batch,
custom_id, model, case...), so the answer does not depend on thread, order or tier."""

from __future__ import annotations

import hashlib

_SCALE = float(2**64)


def draw(seed: int, *parts: str | int) -> float:
    """A number in [0, 1) that is the same for the same ``seed`` and ``parts``, every time."""
    key = "\x1f".join([str(seed), *map(str, parts)]).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / _SCALE


def pick(seed: int, count: int, *parts: str | int) -> int:
    """An index in range(count), drawn as ``draw`` draws."""
    return min(count - 1, int(draw(seed, *parts) * count))
