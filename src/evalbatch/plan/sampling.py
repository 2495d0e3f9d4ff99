"""Seeded, stratified samples of a run's cases for calibration: each stratum (a reference verdict
and a route, say) gets its share of the sample (largest remainders, and at least one case while
the sample has room), and within a stratum the cases are a seeded random draw. The same units,
size and seed always give the same sample; a size at or above the number of units is all of them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Hashable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """The chosen units (in their original order) and, per stratum, (chosen, available)."""

    units: list[int]
    strata: dict[str, tuple[int, int]]
    population: int

    @property
    def whole(self) -> bool:
        return len(self.units) == self.population


def allocate(sizes: dict[str, int], total: int) -> dict[str, int]:
    """Proportional allocation of ``total`` over strata of ``sizes`` by largest remainders, each
    non-empty stratum getting at least one while ``total`` allows, none more than it has."""
    population = sum(sizes.values())
    if total >= population:
        return dict(sizes)
    shares = {k: total * v / population for k, v in sizes.items()}
    out = {k: min(sizes[k], math.floor(s)) for k, s in shares.items()}
    for key in sorted(sizes, key=lambda k: sizes[k]):  # the smallest strata first
        if out[key] == 0 and sizes[key] and sum(out.values()) < total:
            out[key] = 1
    by_remainder = sorted(sizes, key=lambda k: (-(shares[k] - math.floor(shares[k])), k))
    while sum(out.values()) < total:
        grew = False
        for key in by_remainder:
            if sum(out.values()) >= total:
                break
            if out[key] < sizes[key]:
                out[key] += 1
                grew = True
        if not grew:
            break
    while sum(out.values()) > total:  # the minimum of one overshot: trim the largest
        largest = max(out, key=lambda k: (out[k], k))
        out[largest] -= 1
    return out


def stratified_sample(units: Sequence[tuple[int, Hashable]], size: int, seed: int) -> Sample:
    """``units`` are (unit, stratum); returns ``size`` of them (or all), stratified."""
    strata: dict[str, list[int]] = {}
    for unit, stratum in units:
        strata.setdefault(str(stratum), []).append(unit)
    counts = allocate({k: len(v) for k, v in strata.items()}, max(0, size))
    chosen: list[int] = []
    for key in sorted(strata):
        members = sorted(strata[key])
        rng = random.Random(f"{seed}:{key}")
        chosen.extend(rng.sample(members, counts[key]))
    order = {unit: i for i, (unit, _) in enumerate(units)}
    return Sample(
        sorted(chosen, key=order.__getitem__),
        {k: (counts[k], len(strata[k])) for k in sorted(strata)},
        len(units),
    )
