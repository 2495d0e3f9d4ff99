"""Agreement between graders (analysis/agreement.py): Cohen's kappa and its large-sample standard
error against statsmodels' `cohens_kappa`, the error against a bootstrap, the confusion matrix,
and Spearman's rho against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from evalbatch.analysis.agreement import Confusion, cohen_kappa, score_agreement

# statsmodels 0.15.0 `statsmodels.stats.inter_rater.cohens_kappa(table)`: (kappa, std_kappa)
STATSMODELS = [
    ([[88, 10], [14, 88]], 0.7600959616153539, 0.04590197477894765),
    ([[40, 5, 3], [6, 30, 4], [2, 3, 7]], 0.6171770972037284, 0.0678911406328067),
    ([[970, 12], [18, 1000]], 0.9699935186000176, 0.005437067170273537),
]


@pytest.mark.parametrize("table,kappa,se", STATSMODELS)
def test_kappa_and_its_standard_error_equal_statsmodels(table, kappa, se) -> None:
    found = cohen_kappa(table)
    assert found is not None
    assert found.value == pytest.approx(kappa, rel=1e-12)
    assert found.se == pytest.approx(se, rel=1e-12)
    assert found.low <= kappa - 1.959963984540054 * se + 1e-12
    assert found.high >= kappa + 1.959963984540054 * se - 1e-12


def test_the_standard_error_matches_a_bootstrap() -> None:
    rng = np.random.default_rng(7)
    ref = rng.random(1500) < 0.6
    cand = np.where(rng.random(1500) < 0.05, ~ref, ref)
    pairs = list(zip(ref.tolist(), cand.tolist(), strict=True))
    found = cohen_kappa(Confusion.of(pairs).table())
    assert found is not None
    boot = []
    for _ in range(400):
        pick = rng.integers(0, len(pairs), len(pairs))
        k = cohen_kappa(Confusion.of([pairs[i] for i in pick]).table())
        assert k is not None
        boot.append(k.value)
    assert found.se == pytest.approx(float(np.std(boot)), rel=0.15)


def test_confusion_counts_and_rates() -> None:
    c = Confusion.of([(True, True), (True, False), (False, True), (False, False), (True, True)])
    assert c.table() == [[2, 1], [1, 1]]
    assert (c.n, c.agreement, c.reference_rate, c.candidate_rate) == (5, 0.6, 0.6, 0.6)
    assert Confusion().agreement is None


def test_kappa_is_undefined_when_both_always_say_the_same() -> None:
    assert cohen_kappa([[10, 0], [0, 0]]) is None
    assert cohen_kappa([[0, 0], [0, 0]]) is None


def test_perfect_agreement_on_few_cases_is_not_a_zero_width_interval() -> None:
    perfect = cohen_kappa([[7, 0], [0, 3]])
    assert perfect is not None and perfect.value == 1.0 and perfect.se == 0.0
    # Wilson's lower bound of 10/10 agreeing is 0.7225; chance agreement is 0.58.
    assert perfect.low == pytest.approx((0.72246 - 0.58) / 0.42, abs=1e-4) and perfect.high == 1.0
    many = cohen_kappa([[700, 0], [0, 300]])
    assert many is not None and many.low > 0.98


def test_on_large_samples_the_interval_is_close_to_the_large_sample_one() -> None:
    found = cohen_kappa([[982, 42], [31, 945]])
    assert found is not None
    assert (found.low, found.high) == pytest.approx(
        (found.value - 1.96 * found.se, found.value + 1.96 * found.se), abs=2.5e-3
    )


def test_score_agreement_against_scipy() -> None:
    pairs = [(1.0, 1.0), (2.0, 3.0), (3.0, 2.0), (4.0, 5.0), (5.0, 5.0)]
    found = score_agreement(pairs)
    assert found is not None
    rho = sps.spearmanr([p[0] for p in pairs], [p[1] for p in pairs]).statistic
    assert found.spearman == pytest.approx(rho)
    assert found.mean_abs_diff == pytest.approx(0.6)
    assert score_agreement([(5.0, 5.0), (5.0, 4.0), (5.0, 1.0)]).spearman is None  # type: ignore[union-attr]
    assert score_agreement([]) is None
