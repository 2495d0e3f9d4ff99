"""Paired statistics for run-vs-run comparison: exact McNemar for pass/fail, a seeded paired
bootstrap and Wilcoxon signed-rank for numeric scores, Benjamini-Hochberg across graders."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats as sps

Verdict = Literal["regressed", "improved", "no significant change"]


@dataclass(frozen=True)
class PassFailComparison:
    n: int
    both_pass: int
    both_fail: int
    fixed: int  # base failed, new passed
    regressed: int  # base passed, new failed
    base_rate: float
    new_rate: float
    diff: float  # new - base
    p_value: float  # exact McNemar: two-sided binomial test on the discordant pairs
    ci_low: float
    ci_high: float


def _wilson(successes: float, n: float, z: float) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return centre - half, centre + half


def newcombe_paired_ci(
    a: int, b: int, c: int, d: int, confidence: float = 0.95
) -> tuple[float, float]:
    """Newcombe's method 10 (1998) interval for p_new - p_base with paired data.

    a = both pass, b = base pass / new fail, c = base fail / new pass, d = both fail."""
    n = a + b + c + d
    if n == 0:
        return 0.0, 0.0
    z = float(sps.norm.ppf(0.5 + confidence / 2))
    p1, p2 = (a + c) / n, (a + b) / n  # new rate, base rate
    l1, u1 = _wilson(a + c, n, z)
    l2, u2 = _wilson(a + b, n, z)
    diff = p1 - p2
    denom = (a + b) * (c + d) * (a + c) * (b + d)
    phi = 0.0
    if denom > 0:
        num: float = a * d - b * c
        if num > 0:
            num = max(num - n / 2, 0)
        phi = num / math.sqrt(denom)
    dl2 = (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2
    du2 = (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2
    low = diff - math.sqrt(max(dl2, 0.0))
    high = diff + math.sqrt(max(du2, 0.0))
    return max(-1.0, low), min(1.0, high)


def compare_pass_fail(
    pairs: Sequence[tuple[bool, bool]], *, confidence: float = 0.95
) -> PassFailComparison:
    """Pairs of (base passed, new passed) on the same cases."""
    arr = np.asarray(pairs, dtype=bool).reshape(-1, 2)
    base, new = arr[:, 0], arr[:, 1]
    n = int(arr.shape[0])
    both_pass = int(np.sum(base & new))
    both_fail = int(np.sum(~base & ~new))
    regressed = int(np.sum(base & ~new))
    fixed = int(np.sum(~base & new))
    discordant = fixed + regressed
    p_value = (
        1.0
        if discordant == 0
        else float(sps.binomtest(fixed, discordant, 0.5, alternative="two-sided").pvalue)
    )
    base_rate = (both_pass + regressed) / n if n else 0.0
    new_rate = (both_pass + fixed) / n if n else 0.0
    low, high = newcombe_paired_ci(both_pass, regressed, fixed, both_fail, confidence)
    return PassFailComparison(
        n,
        both_pass,
        both_fail,
        fixed,
        regressed,
        base_rate,
        new_rate,
        new_rate - base_rate,
        p_value,
        low,
        high,
    )


@dataclass(frozen=True)
class NumericComparison:
    n: int
    base_mean: float
    new_mean: float
    mean_diff: float
    ci_low: float
    ci_high: float
    p_value: float
    test: str


def compare_numeric(
    pairs: Sequence[tuple[float, float]],
    *,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> NumericComparison:
    """Paired mean difference (new - base): percentile bootstrap interval, Wilcoxon p-value."""
    arr = np.asarray(pairs, dtype=float).reshape(-1, 2)
    n = int(arr.shape[0])
    if n == 0:
        return NumericComparison(0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, "none")
    diffs = arr[:, 1] - arr[:, 0]
    mean_diff = float(diffs.mean())
    rng = np.random.default_rng(seed)
    means = np.empty(n_resamples)
    for start in range(0, n_resamples, 1000):  # bounded memory at any n
        size = min(1000, n_resamples - start)
        idx = rng.integers(0, n, size=(size, n))
        means[start : start + size] = diffs[idx].mean(axis=1)
    alpha = 1 - confidence
    low, high = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    if np.all(diffs == 0):
        p_value, test = 1.0, "wilcoxon (all differences zero)"
    else:
        p_value, test = float(sps.wilcoxon(diffs, zero_method="wilcox").pvalue), "wilcoxon"
    return NumericComparison(
        n,
        float(arr[:, 0].mean()),
        float(arr[:, 1].mean()),
        mean_diff,
        float(low),
        float(high),
        p_value,
        test,
    )


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Adjusted p-values (q-values) in the input order."""
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return []
    order = np.argsort(p)
    ranked = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    return [float(x) for x in out]


def verdict(
    diff: float, p_value: float, *, alpha: float = 0.05, min_effect: float = 0.0
) -> Verdict:
    if p_value < alpha and abs(diff) > min_effect and diff != 0:
        return "regressed" if diff < 0 else "improved"
    return "no significant change"
