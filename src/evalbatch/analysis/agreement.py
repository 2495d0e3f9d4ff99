"""How far a candidate grader agrees with a reference grader on the same outputs: the confusion
matrix, raw agreement, Cohen's kappa with its large-sample interval, and for numeric scores
Spearman's correlation and the mean absolute difference.

Kappa's standard error is the large-sample (non-null) one of Fleiss, Cohen and Everitt (1969),
the one statsmodels' `cohens_kappa` reports as ``std_kappa``; `tests/test_agreement.py` checks it
against statsmodels' values and against a bootstrap. The interval is kappa ± z * se, widened
where needed to the kappas that the Wilson interval of the raw agreement implies (chance
agreement held at its observed value), and clipped to [-1, 1]: the large-sample error is zero
at perfect agreement, and ten agreeing verdicts must not read as kappa in [1, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class Confusion:
    """Paired pass/fail verdicts: ``pass_pass`` = the reference passed and so did the candidate,
    ``pass_fail`` = the reference passed and the candidate failed, and so on."""

    pass_pass: int = 0
    pass_fail: int = 0
    fail_pass: int = 0
    fail_fail: int = 0

    @classmethod
    def of(cls, pairs: Sequence[tuple[bool, bool]]) -> Confusion:
        """From ``(reference passed, candidate passed)`` pairs."""
        counts = [0, 0, 0, 0]
        for ref, cand in pairs:
            counts[(0 if ref else 2) + (0 if cand else 1)] += 1
        return cls(*counts)

    @property
    def n(self) -> int:
        return self.pass_pass + self.pass_fail + self.fail_pass + self.fail_fail

    @property
    def agreement(self) -> float | None:
        return (self.pass_pass + self.fail_fail) / self.n if self.n else None

    @property
    def reference_rate(self) -> float | None:
        return (self.pass_pass + self.pass_fail) / self.n if self.n else None

    @property
    def candidate_rate(self) -> float | None:
        return (self.pass_pass + self.fail_pass) / self.n if self.n else None

    def table(self) -> list[list[int]]:
        """Rows: the reference (pass, fail); columns: the candidate (pass, fail)."""
        return [[self.pass_pass, self.pass_fail], [self.fail_pass, self.fail_fail]]


@dataclass(frozen=True)
class Kappa:
    value: float
    low: float
    high: float
    se: float


def cohen_kappa(table: Sequence[Sequence[int]], *, confidence: float = 0.95) -> Kappa | None:
    """Cohen's kappa of a k x k table of counts (rows: one rater, columns: the other) with its
    large-sample interval; None when it is undefined (no pairs, or both raters always gave the
    same single category, so chance agreement is 1)."""
    counts = np.asarray(table, dtype=float)
    n = float(counts.sum())
    if n <= 0 or counts.ndim != 2 or counts.shape[0] != counts.shape[1]:
        return None
    p = counts / n
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    p_o = float(np.trace(p))
    p_e = float((rows * cols).sum())
    if p_e >= 1.0:
        return None
    kappa = (p_o - p_e) / (1.0 - p_e)
    se = math.sqrt(max(0.0, _fce_variance(p, rows, cols, kappa, p_e)) / n)
    z = float(sps.norm.ppf(0.5 + confidence / 2.0))
    low, high = _wilson(p_o, n, z)
    return Kappa(
        kappa,
        max(-1.0, min(kappa - z * se, (low - p_e) / (1.0 - p_e))),
        min(1.0, max(kappa + z * se, (high - p_e) / (1.0 - p_e))),
        se,
    )


def _wilson(p: float, n: float, z: float) -> tuple[float, float]:
    centre, spread = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return (centre - spread) / (1 + z * z / n), (centre + spread) / (1 + z * z / n)


def _fce_variance(
    p: np.ndarray, rows: np.ndarray, cols: np.ndarray, kappa: float, p_e: float
) -> float:
    """n x var(kappa), Fleiss, Cohen and Everitt (1969), eq. 13."""
    k = p.shape[0]
    diag = sum(p[i, i] * (1.0 - (rows[i] + cols[i]) * (1.0 - kappa)) ** 2 for i in range(k))
    off = (1.0 - kappa) ** 2 * sum(
        p[i, j] * (cols[i] + rows[j]) ** 2 for i in range(k) for j in range(k) if i != j
    )
    last = (kappa - p_e * (1.0 - kappa)) ** 2
    return float((diag + off - last) / (1.0 - p_e) ** 2)


@dataclass(frozen=True)
class ScoreAgreement:
    """Numeric scores of two graders on the same outputs."""

    n: int
    spearman: float | None
    spearman_p: float | None
    mean_abs_diff: float


def score_agreement(pairs: Sequence[tuple[float, float]]) -> ScoreAgreement | None:
    """Spearman's rho (scipy) and the mean absolute difference of ``(reference, candidate)``
    scores; None without pairs. Rho is None when either side is constant."""
    arr = np.asarray(pairs, dtype=float)
    if arr.size == 0:
        return None
    mad = float(np.abs(arr[:, 1] - arr[:, 0]).mean())
    if len(arr) < 3 or np.ptp(arr[:, 0]) == 0 or np.ptp(arr[:, 1]) == 0:
        return ScoreAgreement(len(arr), None, None, mad)
    result = sps.spearmanr(arr[:, 0], arr[:, 1])
    return ScoreAgreement(len(arr), float(result.statistic), float(result.pvalue), mad)
