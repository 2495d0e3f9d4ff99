"""Paired statistics with known answers: exact McNemar against scipy, Newcombe's published
intervals, bootstrap + Wilcoxon on shifted scores, Benjamini-Hochberg against scipy, verdicts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from scipy import stats as sps

from evalbatch.analysis.stats import (
    PassFailComparison,
    benjamini_hochberg,
    compare_numeric,
    compare_pass_fail,
    verdict,
)


def _pairs(both_pass: int, fixed: int, regressed: int, both_fail: int) -> list[tuple[bool, bool]]:
    return (
        [(True, True)] * both_pass
        + [(False, True)] * fixed
        + [(True, False)] * regressed
        + [(False, False)] * both_fail
    )


def test_twenty_fixed_five_regressed_is_significant() -> None:
    result = compare_pass_fail(_pairs(400, 20, 5, 75))
    assert (result.n, result.fixed, result.regressed) == (500, 20, 5)
    assert (result.both_pass, result.both_fail) == (400, 75)
    assert result.p_value == pytest.approx(sps.binomtest(20, 25, 0.5).pvalue, rel=1e-12)
    assert result.p_value == pytest.approx(0.004, abs=0.0005)
    assert result.base_rate == pytest.approx(405 / 500)
    assert result.new_rate == pytest.approx(420 / 500)
    assert result.diff == pytest.approx(0.03)
    assert 0 < result.ci_low < 0.03 < result.ci_high
    assert verdict(result.diff, result.p_value) == "improved"


def test_three_fixed_two_regressed_is_not_significant() -> None:
    result = compare_pass_fail(_pairs(90, 3, 2, 5))
    assert result.p_value == 1.0
    assert result.ci_low < 0 < result.ci_high
    assert verdict(result.diff, result.p_value) == "no significant change"


def test_no_discordant_pairs_gives_p_one() -> None:
    result = compare_pass_fail(_pairs(60, 0, 0, 40))
    assert (result.p_value, result.diff) == (1.0, 0.0)
    assert result.ci_low < 0 < result.ci_high


def test_no_pairs_at_all_knows_nothing() -> None:
    result = compare_pass_fail([])
    assert (result.n, result.p_value, result.diff) == (0, 1.0, 0.0)
    assert (result.ci_low, result.ci_high) == (-1.0, 1.0)


# Newcombe (1998), Statistics in Medicine 17:2635, Table II, method 10. (e, f, g, h) there is
# (both pass, fixed, regressed, both fail) here: his p1 is our new rate.
@pytest.mark.parametrize(
    ("both_pass", "fixed", "regressed", "both_fail", "low", "high"),
    [
        (36, 12, 2, 0, 0.0569, 0.3404),
        (18, 12, 2, 18, 0.0562, 0.3290),
        (53, 0, 0, 1, -0.0729, 0.0729),
        (0, 30, 0, 0, 0.8395, 1.0),
    ],
)
def test_interval_matches_newcombes_published_values(
    both_pass: int, fixed: int, regressed: int, both_fail: int, low: float, high: float
) -> None:
    result = compare_pass_fail(_pairs(both_pass, fixed, regressed, both_fail))
    assert result.ci_low == pytest.approx(low, abs=5e-5)
    assert result.ci_high == pytest.approx(high, abs=5e-5)


counts = st.integers(min_value=0, max_value=300)


@given(both_pass=counts, fixed=counts, regressed=counts, both_fail=counts)
def test_interval_is_ordered_bounded_and_holds_the_estimate(
    both_pass: int, fixed: int, regressed: int, both_fail: int
) -> None:
    result = compare_pass_fail(_pairs(both_pass, fixed, regressed, both_fail))
    if result.n == 0:
        return
    assert -1.0 <= result.ci_low <= result.diff <= result.ci_high <= 1.0
    assert 0.0 <= result.p_value <= 1.0
    # Swapping base and new mirrors everything.
    mirror = compare_pass_fail(_pairs(both_pass, regressed, fixed, both_fail))
    assert mirror.diff == -result.diff
    assert mirror.p_value == pytest.approx(result.p_value)
    assert (mirror.ci_low, mirror.ci_high) == pytest.approx((-result.ci_high, -result.ci_low))


def test_interval_covers_the_true_difference_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(7)
    cells = [0.55, 0.12, 0.06, 0.27]  # both pass, fixed, regressed, both fail
    true_diff = cells[1] - cells[2]
    covered = 0
    for _ in range(400):
        e, f, g, h = (int(x) for x in rng.multinomial(200, cells))
        result = compare_pass_fail(_pairs(e, f, g, h))
        covered += result.ci_low <= true_diff <= result.ci_high
    assert 0.92 <= covered / 400 <= 0.99


def test_wider_confidence_gives_a_wider_interval_and_bad_levels_are_refused() -> None:
    pairs = _pairs(70, 15, 6, 9)
    narrow = compare_pass_fail(pairs, confidence=0.90)
    wide = compare_pass_fail(pairs, confidence=0.99)
    assert wide.ci_low < narrow.ci_low and narrow.ci_high < wide.ci_high
    with pytest.raises(ValueError, match="confidence"):
        compare_pass_fail(pairs, confidence=95)


def test_large_inputs_as_arrays_count_correctly() -> None:
    rng = np.random.default_rng(1)
    arr = rng.random((100_000, 2)) < np.array([0.80, 0.82])
    result = compare_pass_fail(arr)
    assert result.n == 100_000
    assert result.fixed == int(np.sum(~arr[:, 0] & arr[:, 1]))
    assert result.regressed == int(np.sum(arr[:, 0] & ~arr[:, 1]))
    assert result.base_rate == pytest.approx(arr[:, 0].mean())
    with pytest.raises(ValueError, match="shape"):
        compare_pass_fail([(True, False, True)])


def _shifted(n: int = 200, shift: float = 0.1, seed: int = 3) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0.2, 0.8, n)
    new = base + shift + rng.normal(0.0, 0.02, n)
    return list(zip(base.tolist(), new.tolist(), strict=True))


def test_constant_shift_is_significant_and_the_interval_excludes_zero() -> None:
    pairs = _shifted()
    result = compare_numeric(pairs)
    diffs = np.array([new - base for base, new in pairs])
    assert result.n == 200
    assert result.mean_diff == pytest.approx(diffs.mean())
    assert result.new_mean - result.base_mean == pytest.approx(result.mean_diff)
    assert 0 < result.ci_low < 0.1 < result.ci_high < 0.2
    assert result.p_value == pytest.approx(sps.wilcoxon(diffs).pvalue)
    assert result.p_value < 1e-10
    assert result.test == "wilcoxon signed-rank"
    assert verdict(result.mean_diff, result.p_value) == "improved"


def test_bootstrap_interval_agrees_with_the_normal_approximation() -> None:
    rng = np.random.default_rng(11)
    base = rng.normal(3.0, 1.0, 400)
    new = base + rng.normal(-0.05, 0.5, 400)
    result = compare_numeric(list(zip(base, new, strict=True)))
    diffs = new - base
    half = 1.96 * diffs.std(ddof=1) / np.sqrt(len(diffs))
    assert result.ci_low == pytest.approx(diffs.mean() - half, abs=0.1 * half)
    assert result.ci_high == pytest.approx(diffs.mean() + half, abs=0.1 * half)


def test_identical_runs_have_p_one_and_a_zero_interval() -> None:
    pairs = [(v, v) for v in np.linspace(0.0, 5.0, 50)]
    result = compare_numeric(pairs)
    assert (result.mean_diff, result.ci_low, result.ci_high) == (0.0, 0.0, 0.0)
    assert result.p_value == 1.0
    assert "zero" in result.test
    assert verdict(result.mean_diff, result.p_value) == "no significant change"


def test_bootstrap_is_reproducible_with_the_same_seed() -> None:
    pairs = _shifted(shift=0.0, seed=5)
    first = compare_numeric(pairs, n_resamples=2_000, seed=42)
    assert compare_numeric(pairs, n_resamples=2_000, seed=42) == first
    other = compare_numeric(pairs, n_resamples=2_000, seed=43)
    assert (other.ci_low, other.ci_high) != (first.ci_low, first.ci_high)
    assert other.ci_low == pytest.approx(first.ci_low, abs=0.002)


def test_numeric_refuses_empty_and_non_finite_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        compare_numeric([])
    with pytest.raises(ValueError, match="pair 1 .*not a finite number"):
        compare_numeric([(1.0, 2.0), (float("nan"), 1.0)])


def test_benjamini_hochberg_by_hand() -> None:
    q = benjamini_hochberg([0.01, 0.04, 0.03, 0.5])
    assert q == pytest.approx([0.04, 0.04 * 4 / 3, 0.04 * 4 / 3, 0.5])
    assert benjamini_hochberg([]) == []
    with pytest.raises(ValueError, match=r"p-value 1 is 1\.5"):
        benjamini_hochberg([0.2, 1.5])


p_lists = st.lists(
    st.one_of(st.floats(min_value=0.0, max_value=1.0), st.sampled_from([0.0, 0.05, 1.0])),
    min_size=1,
    max_size=60,
)


@given(p_values=p_lists)
@example(p_values=[0.0, 0.0, 0.8512634359416749])  # p * 3 / 3 rounds one ulp below p
def test_benjamini_hochberg_matches_scipy_and_keeps_the_order(p_values: list[float]) -> None:
    q = benjamini_hochberg(p_values)
    expected = sps.false_discovery_control(p_values, method="bh")
    np.testing.assert_allclose(q, expected, rtol=1e-12, atol=0.0)
    for p_i, q_i in zip(p_values, q, strict=True):
        assert p_i <= q_i <= 1.0
    by_p = [qv for _, qv in sorted(zip(p_values, q, strict=True))]
    assert by_p == sorted(by_p)


@pytest.mark.parametrize(
    ("diff", "p_value", "alpha", "min_effect", "expected"),
    [
        (-0.05, 0.01, 0.05, 0.0, "regressed"),
        (0.05, 0.01, 0.05, 0.0, "improved"),
        (-0.05, 0.20, 0.05, 0.0, "no significant change"),  # not significant
        (-0.05, 0.05, 0.05, 0.0, "no significant change"),  # p must be below alpha
        (-0.05, 0.04, 0.01, 0.0, "no significant change"),  # stricter alpha
        (-0.01, 0.001, 0.05, 0.02, "no significant change"),  # significant but too small
        (-0.02, 0.001, 0.05, 0.02, "no significant change"),  # |diff| must exceed min_effect
        (-0.03, 0.001, 0.05, 0.02, "regressed"),
        (0.03, 0.001, 0.05, 0.02, "improved"),
        (0.0, 0.001, 0.05, 0.0, "no significant change"),  # no direction
    ],
)
def test_verdict(
    diff: float, p_value: float, alpha: float, min_effect: float, expected: str
) -> None:
    assert verdict(diff, p_value, alpha=alpha, min_effect=min_effect) == expected


def test_the_interval_is_scipys_seeded_percentile_bootstrap_exactly() -> None:
    """What docs/compare.md names: 10,000 resamples, percentile method, seed 0 by default."""
    pairs = _shifted(n=60, shift=0.05, seed=8)
    diffs = np.array([new - base for base, new in pairs])

    def scipy_interval(confidence: float, n_resamples: int, seed: int) -> tuple[float, float]:
        ci = sps.bootstrap(
            (diffs,),
            np.mean,
            n_resamples=n_resamples,
            confidence_level=confidence,
            method="percentile",
            random_state=np.random.default_rng(seed),
        ).confidence_interval
        return float(ci.low), float(ci.high)

    result = compare_numeric(pairs)
    assert (result.ci_low, result.ci_high) == scipy_interval(0.95, 10_000, 0)
    narrower = compare_numeric(pairs, confidence=0.8, n_resamples=500, seed=7)
    assert (narrower.ci_low, narrower.ci_high) == scipy_interval(0.8, 500, 7)
    with warnings.catch_warnings():  # scipy's standard error of one resample: a warning only
        warnings.simplefilter("ignore", RuntimeWarning)
        assert compare_numeric(pairs, n_resamples=1).n == 60  # one resample is allowed


def test_a_spread_of_exactly_one_is_resampled_and_a_single_pair_is_its_own_interval() -> None:
    spread = compare_numeric([(1.0, 2.0), (1.0, 1.0), (2.0, 3.0), (3.0, 3.0)] * 5)
    assert spread.ci_low < spread.mean_diff == 0.5 < spread.ci_high
    single = compare_numeric([(1.0, 3.0)])
    assert (single.n, single.mean_diff, single.ci_low, single.ci_high) == (1, 2.0, 2.0, 2.0)
    unchanged = compare_numeric([(1.0, 1.0), (2.0, 2.0)])
    assert (unchanged.p_value, unchanged.test) == (1.0, "none (every difference is zero)")


def test_numeric_input_errors_say_what_is_wrong() -> None:
    with pytest.raises(ValueError) as empty:
        compare_numeric([])
    assert str(empty.value) == "compare_numeric needs at least one (base, new) pair"
    with pytest.raises(ValueError) as triples:
        compare_numeric([(1.0, 2.0, 3.0), (1.0, 2.0, 3.0)])  # type: ignore[list-item]
    assert str(triples.value) == "pairs must be (base_value, new_value) tuples, got shape (2, 3)"
    with pytest.raises(ValueError) as resamples:
        compare_numeric([(1.0, 2.0)], n_resamples=0)
    assert str(resamples.value) == "n_resamples must be at least 1, got 0"


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, -0.1])
def test_confidence_must_lie_strictly_between_0_and_1(level: float) -> None:
    with pytest.raises(ValueError) as bad:
        compare_pass_fail(_pairs(5, 3, 1, 2), confidence=level)
    assert str(bad.value) == f"confidence must be between 0 and 1 (exclusive), got {level!r}"
    with pytest.raises(ValueError, match="confidence must be"):
        compare_numeric([(1.0, 2.0), (2.0, 2.5)], confidence=level)


def test_no_pairs_at_all_is_the_whole_empty_record() -> None:
    assert compare_pass_fail([]) == PassFailComparison(
        n=0,
        both_pass=0,
        both_fail=0,
        fixed=0,
        regressed=0,
        base_rate=0.0,
        new_rate=0.0,
        diff=0.0,
        p_value=1.0,
        ci_low=-1.0,
        ci_high=1.0,
    )


@pytest.mark.parametrize(
    ("both_pass", "fixed", "regressed", "both_fail"),
    [(5, 10, 10, 24), (4, 9, 12, 20), (0, 6, 3, 9)],  # e*h - f*g between 0 and n/2 (or below)
)
def test_weakly_correlated_tables_combine_the_two_wilson_intervals_as_independent(
    both_pass: int, fixed: int, regressed: int, both_fail: int
) -> None:
    """Newcombe's corrected phi is 0 when 0 <= e*h - f*g <= n/2: the interval is then the two
    Wilson intervals (scipy's) combined with no correlation term."""
    n = both_pass + fixed + regressed + both_fail
    cross = both_pass * both_fail - fixed * regressed
    assert cross <= n / 2
    new_ci = sps.binomtest(both_pass + fixed, n).proportion_ci(method="wilson")
    base_ci = sps.binomtest(both_pass + regressed, n).proportion_ci(method="wilson")
    p_new, p_base = (both_pass + fixed) / n, (both_pass + regressed) / n
    d_low = (p_new - new_ci.low) ** 2 + (base_ci.high - p_base) ** 2
    d_high = (p_base - base_ci.low) ** 2 + (new_ci.high - p_new) ** 2
    result = compare_pass_fail(_pairs(both_pass, fixed, regressed, both_fail))
    if cross >= 0:
        assert result.ci_low == pytest.approx(result.diff - d_low**0.5, abs=1e-9)
        assert result.ci_high == pytest.approx(result.diff + d_high**0.5, abs=1e-9)
    else:  # negatively correlated: phi < 0 widens the interval
        assert result.ci_low < result.diff - d_low**0.5
        assert result.ci_high > result.diff + d_high**0.5


@pytest.mark.parametrize("n", [15, 40])
def test_when_every_case_moves_the_interval_stops_at_100_percent(n: int) -> None:
    # Unclamped, Newcombe's bound lands one float step beyond +-1 here: a difference of
    # pass rates can never exceed 100 points, and compare --json would print 1.0000000000000002.
    regressed = compare_pass_fail(_pairs(0, 0, n, 0))
    assert (regressed.diff, regressed.ci_low) == (-1.0, -1.0) and regressed.ci_high < -0.7
    fixed = compare_pass_fail(_pairs(0, n, 0, 0))
    assert (fixed.diff, fixed.ci_high) == (1.0, 1.0) and fixed.ci_low > 0.7
