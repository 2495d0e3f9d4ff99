"""Prediction-powered inference (PPI++) for a mean: a cheap grader's verdicts on every case plus
a reference grader's verdicts on a random sample estimate the reference's rate on all cases.

The estimator and its interval are those of `ppi_py.ppi_mean_ci` with power tuning (Angelopoulos,
Duchi and Zrnic, "PPI++: Efficient Prediction-Powered Inference", 2023; Angelopoulos et al.,
"Prediction-powered inference", Science 2023), written over numpy and scipy because ppi-python
pulls numba, pandas, statsmodels, scikit-learn and gdown; `tests/test_ppi.py` holds values the
package computed. With ``lam`` the tuning parameter (0: the reference sample alone; 1: plain
PPI), for ``n`` reference labels ``Y`` with the cheap verdicts ``Yhat`` on the same cases, and
the cheap verdicts ``Yhat_all`` on all ``N`` cases:

    estimate = lam * mean(Yhat_all) + mean(Y - lam * Yhat)
    se       = sqrt(var(lam * Yhat_all) / N + var(Y - lam * Yhat) / n)     (ddof 0, as ppi_py)
    lam      = cov(Y, Yhat) / ((1 + n / N) * var([Yhat, Yhat_all])), clipped to [0, 1]

The interval is estimate ± z * se (a normal approximation: with few labels, or rates at 0 or 1,
it is too narrow; `few_labels` says when to distrust it).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

Values = Sequence[float] | np.ndarray
FEW_LABELS = 30  # below this many reference labels the normal interval is not to be trusted


@dataclass(frozen=True)
class MeanInterval:
    """A mean with its two-sided interval and standard error."""

    estimate: float
    low: float
    high: float
    se: float

    @property
    def width(self) -> float:
        return self.high - self.low


@dataclass(frozen=True)
class PpiEstimate:
    """The prediction-powered estimate of the reference's mean on all ``N`` cases, and, for
    comparison, the interval of the ``n`` reference labels alone (the classical estimate)."""

    ppi: MeanInterval
    classical: MeanInterval
    lam: float
    n: int
    N: int
    confidence: float

    @property
    def few_labels(self) -> bool:
        return self.n < FEW_LABELS


def _z(confidence: float) -> float:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be between 0 and 1 (exclusive), got {confidence!r}")
    return float(sps.norm.ppf(0.5 + confidence / 2.0))


def _arrays(*values: Values) -> list[np.ndarray]:
    out = [np.asarray(v, dtype=float) for v in values]
    for arr in out:
        if arr.ndim != 1 or not np.isfinite(arr).all():
            raise ValueError("PPI needs one-dimensional arrays of finite numbers")
    return out


def tuned_lambda(y: np.ndarray, yhat: np.ndarray, yhat_all: np.ndarray) -> float:
    """The power-tuning parameter that minimises the estimate's variance (ppi_py's
    `_calc_lam_glm` for a mean, clipped to [0, 1]); 0 when the cheap verdicts never vary."""
    n, big_n = len(y), len(yhat_all)
    centre = float(yhat_all.mean() + (y - yhat).mean())  # the plain PPI estimate (lam = 1)
    grads, grads_hat = y - centre, yhat - centre
    cov = 2.0 * float(((grads - grads.mean()) * (grads_hat - grads_hat.mean())).sum()) / n
    pooled = np.concatenate([yhat, yhat_all]) - centre
    var = float(pooled.var(ddof=1)) if len(pooled) > 1 else 0.0
    denominator = 2.0 * (1.0 + n / big_n) * var
    if denominator <= 0.0:
        return 0.0
    return float(np.clip(cov / denominator, 0.0, 1.0))


def ppi_mean(
    y: Values,
    yhat: Values,
    yhat_all: Values,
    *,
    confidence: float = 0.95,
    lam: float | None = None,
) -> PpiEstimate:
    """PPI++ estimate of the mean of ``y`` over the population ``yhat_all`` describes.

    ``y[i]`` and ``yhat[i]`` are the reference's and the cheap grader's verdicts (0/1, or
    scores) on the same labeled case; ``yhat_all`` is the cheap grader on every case. ValueError
    with fewer than two labels, or when ``y`` and ``yhat`` differ in length."""
    z = _z(confidence)
    y_arr, yhat_arr, all_arr = _arrays(y, yhat, yhat_all)
    n, big_n = len(y_arr), len(all_arr)
    if n != len(yhat_arr):
        raise ValueError(f"{n} reference labels but {len(yhat_arr)} cheap verdicts for them")
    if n < 2 or big_n < 1:
        raise ValueError("PPI needs at least two reference labels and one case")
    if lam is None:
        lam = tuned_lambda(y_arr, yhat_arr, all_arr)
    estimate = float(lam * all_arr.mean() + (y_arr - lam * yhat_arr).mean())
    se = math.sqrt(
        float((lam * all_arr).std()) ** 2 / big_n + float((y_arr - lam * yhat_arr).std()) ** 2 / n
    )
    return PpiEstimate(
        ppi=MeanInterval(estimate, estimate - z * se, estimate + z * se, se),
        classical=classical_mean(y_arr, confidence=confidence),
        lam=float(lam),
        n=n,
        N=big_n,
        confidence=confidence,
    )


def classical_mean(y: Values, *, confidence: float = 0.95) -> MeanInterval:
    """The reference sample alone: mean ± z * std / sqrt(n) (ppi_py's `classical_mean_ci`)."""
    z = _z(confidence)
    (arr,) = _arrays(y)
    if len(arr) < 1:
        raise ValueError("a mean of nothing")
    mean = float(arr.mean())
    se = float(arr.std()) / math.sqrt(len(arr))
    return MeanInterval(mean, mean - z * se, mean + z * se, se)


def p_value_zero(interval: MeanInterval) -> float:
    """Two-sided p-value of "the mean is 0" under the interval's normal approximation."""
    if interval.se == 0.0:
        return 1.0 if interval.estimate == 0.0 else 0.0
    return float(2.0 * sps.norm.sf(abs(interval.estimate) / interval.se))
