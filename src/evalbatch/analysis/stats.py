"""Paired statistics for comparing two runs on the same cases: exact McNemar with Newcombe's
interval for pass/fail, bootstrap + Wilcoxon for scores, Benjamini-Hochberg, and the verdict."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

Verdict = Literal["regressed", "improved", "no significant change"]

# Bootstrap resamples are drawn in blocks of at most this many indices, so memory stays flat
# whatever the number of pairs (100,000 pairs x 10,000 resamples would be 8 GB at once).
_BOOTSTRAP_BLOCK = 2_000_000


@dataclass(frozen=True)
class PassFailComparison:
    """Paired pass/fail counts of base vs new. ``fixed``: base failed, new passed.

    ``p_value``: exact McNemar (two-sided binomial test of ``fixed`` among the discordant
    pairs at 1/2); 1.0 when there are none. ``ci_low``/``ci_high``: Newcombe's hybrid score
    interval for the paired difference (Newcombe 1998, method 10), within [-1, 1]; with no
    pairs at all it is [-1, 1].
    """

    n: int
    both_pass: int
    both_fail: int
    fixed: int
    regressed: int
    base_rate: float
    new_rate: float
    diff: float  # new_rate - base_rate
    p_value: float
    ci_low: float
    ci_high: float


@dataclass(frozen=True)
class NumericComparison:
    """Paired numeric scores of base vs new; ``mean_diff`` is mean(new - base).

    ``ci_low``/``ci_high``: percentile interval of a seeded paired bootstrap of the mean
    difference. ``p_value``: Wilcoxon signed-rank on the differences (zero differences dropped,
    scipy's default); 1.0 when every difference is zero. ``test`` names what produced it.
    """

    n: int
    base_mean: float
    new_mean: float
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str


def _check_confidence(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence!r}")
    return float(sps.norm.ppf(0.5 + confidence / 2.0))


def _wilson(successes: int, n: int, z: float) -> tuple[float, float]:
    """Wilson score interval for a single proportion."""
    p = successes / n
    z2 = z * z
    centre = 2.0 * n * p + z2
    spread = z * math.sqrt(z2 + 4.0 * n * p * (1.0 - p))
    denominator = 2.0 * (n + z2)
    return (centre - spread) / denominator, (centre + spread) / denominator


def _newcombe_paired(e: int, f: int, g: int, h: int, z: float) -> tuple[float, float]:
    """Newcombe (1998) method 10 for p1 - p2, with p1 = (e+f)/n and p2 = (e+g)/n.

    e: both succeed, f: only the first, g: only the second, h: neither.
    """
    n = e + f + g + h
    p1, p2 = (e + f) / n, (e + g) / n
    diff = (f - g) / n
    l1, u1 = _wilson(e + f, n, z)
    l2, u2 = _wilson(e + g, n, z)
    phi = _corrected_phi(e, f, g, h)
    dl1, du1, dl2, du2 = p1 - l1, u1 - p1, p2 - l2, u2 - p2
    low = diff - math.sqrt(max(0.0, dl1 * dl1 - 2.0 * phi * dl1 * du2 + du2 * du2))
    high = diff + math.sqrt(max(0.0, dl2 * dl2 - 2.0 * phi * dl2 * du1 + du1 * du1))
    return max(-1.0, low), min(1.0, high)


def _corrected_phi(e: int, f: int, g: int, h: int) -> float:
    """The phi correlation of the 2x2 table with Newcombe's continuity correction."""
    product = (e + f) * (g + h) * (e + g) * (f + h)  # Python ints: no overflow at any n
    if product == 0:
        return 0.0
    n = e + f + g + h
    cross = e * h - f * g
    if cross > n / 2:
        numerator = cross - n / 2
    elif cross >= 0:
        numerator = 0.0
    else:
        numerator = float(cross)
    return numerator / math.sqrt(product)


def _count_pairs(pairs: Sequence[tuple[bool, bool]]) -> tuple[int, int, int, int]:
    """(both_pass, both_fail, fixed, regressed), vectorised: this runs on 100,000-case suites."""
    arr = np.asarray(pairs, dtype=bool)
    if arr.size == 0:
        return 0, 0, 0, 0
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"pairs must be (base_passed, new_passed) tuples, got shape {arr.shape}")
    base, new = arr[:, 0], arr[:, 1]
    both_pass = int(np.count_nonzero(base & new))
    fixed = int(np.count_nonzero(new & ~base))
    regressed = int(np.count_nonzero(base & ~new))
    return both_pass, len(arr) - both_pass - fixed - regressed, fixed, regressed


def compare_pass_fail(
    pairs: Sequence[tuple[bool, bool]], *, confidence: float = 0.95
) -> PassFailComparison:
    """Compare paired pass/fail results, one ``(base_passed, new_passed)`` per case."""
    z = _check_confidence(confidence)
    both_pass, both_fail, fixed, regressed = _count_pairs(pairs)
    n = both_pass + both_fail + fixed + regressed
    if n == 0:
        return PassFailComparison(0, 0, 0, 0, 0, 0.0, 0.0, 0.0, 1.0, -1.0, 1.0)
    discordant = fixed + regressed
    p_value = 1.0 if discordant == 0 else float(sps.binomtest(fixed, discordant, 0.5).pvalue)
    low, high = _newcombe_paired(both_pass, fixed, regressed, both_fail, z)
    return PassFailComparison(
        n=n,
        both_pass=both_pass,
        both_fail=both_fail,
        fixed=fixed,
        regressed=regressed,
        base_rate=(both_pass + regressed) / n,
        new_rate=(both_pass + fixed) / n,
        diff=(fixed - regressed) / n,
        p_value=min(1.0, p_value),
        ci_low=low,
        ci_high=high,
    )


def _bootstrap_interval(
    diffs: np.ndarray, confidence: float, n_resamples: int, seed: int
) -> tuple[float, float]:
    """Percentile interval of the mean of ``diffs`` by scipy's bootstrap, seeded, resampled in
    batches so memory stays flat whatever the number of pairs."""
    if np.ptp(diffs) == 0.0:  # every resample has the same mean
        return float(diffs[0]), float(diffs[0])
    result = sps.bootstrap(
        (diffs,),
        np.mean,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        batch=max(1, _BOOTSTRAP_BLOCK // len(diffs)),
        random_state=np.random.default_rng(seed),
    )
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def compare_numeric(
    pairs: Sequence[tuple[float, float]],
    *,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> NumericComparison:
    """Compare paired numeric scores, one ``(base_value, new_value)`` per case.

    ValueError when there are no pairs or a value is not finite: a mean of nothing, or of
    NaN, is not a score anyone should gate on.
    """
    _check_confidence(confidence)
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    arr = np.asarray(pairs, dtype=float)
    if arr.size == 0:
        raise ValueError("compare_numeric needs at least one (base, new) pair")
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise ValueError(f"pairs must be (base_value, new_value) tuples, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        row = int(np.flatnonzero(~np.isfinite(arr).all(axis=1))[0])
        raise ValueError(f"pair {row} has a value that is not a finite number: {arr[row].tolist()}")
    diffs = arr[:, 1] - arr[:, 0]
    low, high = _bootstrap_interval(diffs, confidence, n_resamples, seed)
    if not diffs.any():
        p_value, test = 1.0, "none (every difference is zero)"
    else:
        p_value, test = float(sps.wilcoxon(diffs).pvalue), "wilcoxon signed-rank"
    return NumericComparison(
        n=len(diffs),
        base_mean=float(arr[:, 0].mean()),
        new_mean=float(arr[:, 1].mean()),
        mean_diff=float(diffs.mean()),
        ci_low=float(low),
        ci_high=float(high),
        p_value=p_value,
        test=test,
    )


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the order given, by
    ``scipy.stats.false_discovery_control(method='bh')``; an empty input gives []."""
    p = np.asarray(p_values, dtype=float)
    if p.size == 0:
        return []
    bad = np.flatnonzero(~((p >= 0.0) & (p <= 1.0)))  # also catches NaN
    if bad.size:
        raise ValueError(f"p-value {bad[0]} is {float(p[bad[0]])}; p-values must be within [0, 1]")
    q = sps.false_discovery_control(p, method="bh")
    # q >= p always holds in exact arithmetic; p * m / m can round one ulp below p.
    return [float(v) for v in np.clip(np.maximum(q, p), 0.0, 1.0)]


def verdict(
    diff: float, p_value: float, *, alpha: float = 0.05, min_effect: float = 0.0
) -> Verdict:
    """``regressed`` / ``improved`` only when p < alpha and |diff| > min_effect; the sign of
    ``diff`` (new - base) picks which. Anything else is no significant change."""
    if p_value < alpha and abs(diff) > min_effect:
        if diff < 0:
            return "regressed"
        if diff > 0:
            return "improved"
    return "no significant change"
