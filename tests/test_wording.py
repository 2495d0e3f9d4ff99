"""How money and the savings headline read: a tiny run's figures still explain its percentage."""

from __future__ import annotations

from dataclasses import replace

import pytest

from evalbatch.analysis.compare import Comparison, FlakyCase, GraderComparison
from evalbatch.analysis.reference import PassEstimate, ReferenceLine
from evalbatch.analysis.summary import MinPassRate, RunInfo, RunSummary
from evalbatch.report.wording import (
    gate_rate,
    headline,
    numeric_lines,
    p_value,
    pct,
    reference_compare_lines,
    reference_lines,
    saved_share,
    scope_notes,
    usd,
)
from evalbatch.store.records import CostLine


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (0.0, "$0.00"),
        (12.345, "$12.35"),
        (1234.5, "$1,234.50"),
        (0.01, "$0.01"),
        (0.0099, "$0.0099"),
        (0.000012, "$0.000012"),
        (0.0000246, "$0.000025"),
        (0.5, "$0.50"),
    ],
)
def test_usd(value: float, shown: str) -> None:
    assert usd(value) == shown


def _summary(cost: float, naive: float) -> RunSummary:
    run = RunInfo("r", "s", "done", "batch", 0.0, 1.0, "h" * 64, 1, None, {})
    line = CostLine("generate", "m", "batch", 1, 10, 5, 0, 0, cost, 2 * cost, cost, cost, naive)
    return RunSummary(run, [], 1, 1, [line], {})


def test_a_tiny_runs_headline_explains_its_percentage() -> None:
    assert headline(_summary(0.0000123, 0.0000246)) == (
        "cost $0.000012 — naive $0.000025 — saved 50%"
    )


def test_the_headline_saves_the_share_of_naive_not_the_ratio() -> None:
    assert headline(_summary(25.0, 100.0)) == "cost $25.00 — naive $100.00 — saved 75%"
    assert saved_share(25.0, 100.0) == pytest.approx(0.75)
    assert saved_share(1.0, 0.0) == 0.0  # nothing to compare with: no saving claimed


@pytest.mark.parametrize(
    ("value", "shown"),
    [(0.0, "<0.001"), (0.000999, "<0.001"), (0.001, "0.001"), (0.03125, "0.031"), (1.0, "1.000")],
)
def test_p_values_read_with_three_decimals_and_tiny_ones_as_below_a_thousandth(
    value: float, shown: str
) -> None:
    assert p_value(value) == shown


def test_percentages_have_one_decimal_and_none_is_a_dash() -> None:
    assert (pct(0.256), pct(1.0), pct(0.0), pct(None)) == ("25.6%", "100.0%", "0.0%", "-")


def _comparison(**fields: object) -> Comparison:
    empty: dict[str, object] = {
        "base": {"id": "b"},
        "new": {"id": "n"},
        "comparable": False,
        "changes": [],
        "common_cases": 3,
        "only_base": [],
        "only_new": [],
        "changed_cases": [],
        "graders": [],
        "skipped_graders": [],
    }
    return Comparison(**{**empty, **fields})  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("fields", "note"),
    [
        ({"only_base": ["a"]}, "compared on common cases only: 1 removed, 0 added, 0 changed"),
        ({"only_new": ["a", "b"]}, "compared on common cases only: 0 removed, 2 added, 0 changed"),
        ({"changed_cases": ["c"]}, "compared on common cases only: 0 removed, 0 added, 1 changed"),
        (
            {"skipped_graders": ["rubric", "regex"]},
            "graders not in both runs (not compared): rubric, regex",
        ),
        (
            {"flaky": [FlakyCase("c", "contains", "1/2", "2/2")]},
            "1 flaky case(s) (verdict varies across epochs), reported apart from regressions",
        ),
    ],
)
def test_a_comparison_says_what_it_left_out(fields: dict[str, object], note: str) -> None:
    assert scope_notes(_comparison(**fields)) == [note]
    assert scope_notes(_comparison(comparable=True)) == []


def test_numeric_lines_name_the_mean_change_interval_and_test() -> None:
    numeric = {
        "n": 8,
        "base_mean": 5.0,
        "new_mean": 2.75,
        "mean_diff": -2.25,
        "ci_low": -3.0,
        "ci_high": -1.125,
        "p_value": 0.03125,
        "test": "wilcoxon signed-rank",
    }
    graders = [
        GraderComparison(*[0] * 11, grader="contains"),  # type: ignore[arg-type]
        GraderComparison(*[0] * 11, grader="rubric", numeric=numeric),  # type: ignore[arg-type]
        GraderComparison(*[0] * 11, grader="rubric_2", numeric={**numeric, "p_value": 0.0001}),  # type: ignore[arg-type]
    ]
    assert numeric_lines(_comparison(graders=graders)) == [
        "rubric: mean score 5.00 -> 2.75 (-2.25, 95% bootstrap CI [-3.00, -1.12], "
        "p=0.031 by wilcoxon signed-rank, n=8)",
        "rubric_2: mean score 5.00 -> 2.75 (-2.25, 95% bootstrap CI [-3.00, -1.12], "
        "p=<0.001 by wilcoxon signed-rank, n=8)",
    ]


@pytest.mark.parametrize(
    ("new", "base"), [({"generations_from": "b"}, {}), ({}, {"generations_from": "n"})]
)
def test_a_regrade_says_whose_generations_it_grades(
    new: dict[str, str], base: dict[str, str]
) -> None:
    regrade, source = ("n", "b") if new else ("b", "n")
    cmp = _comparison(base={"id": "b", **base}, new={"id": "n", **new})
    assert scope_notes(cmp) == [
        f"{regrade} grades the generations of {source}: the outputs are identical, "
        "only the graders differ"
    ]


def test_a_reference_graders_comparison_also_gives_the_graders_own_difference() -> None:
    reference = {
        "labeled_pairs": 40,
        "pairs": 1200,
        "grader": {"diff": -0.05, "ci_low": -0.1, "ci_high": -0.0125, "p_value": 0.0123},
    }
    graders = [
        GraderComparison(*[0] * 11, grader="contains"),  # type: ignore[arg-type]
        GraderComparison(*[0] * 11, grader="judge", reference=reference),  # type: ignore[arg-type]
    ]
    assert reference_compare_lines(_comparison(graders=graders)) == [
        "judge: base, new, diff, CI and p are prediction-powered estimates of the reference "
        "grader's verdicts (40 reference-graded pairs of 1200); the grader itself: -5.0pp "
        "[-10.0, -1.2], p=0.012"
    ]
    assert reference_compare_lines(_comparison(graders=graders[:1])) == []


def _reference(**fields: object) -> ReferenceLine:
    line: dict[str, object] = {
        "grader": "judge",
        "reference_model": "big-model",
        "sample": 0.05,
        "cases": 1200,
        "labeled": 60,
        "cheap_rate": 0.8125,
        "reference_rate": 0.75,
        "cheap_rate_on_sample": 0.8,
        "agreement": 0.9,
        "kappa": 0.6,
        "kappa_low": 0.4125,
        "kappa_high": 0.7875,
        "estimate": 0.7625,
        "ci_low": 0.7,
        "ci_high": 0.825,
        "sample_only_low": 0.625,
        "sample_only_high": 0.85,
        "lam": 0.5,
        "reference_errors": 0,
        "cost": 1.5,
        "reference_cost": 0.75,
        "all_reference_cost": 15.0,
    }
    return ReferenceLine(**{**line, **fields})  # type: ignore[arg-type]


def test_reference_lines_give_rates_agreement_estimate_and_cost() -> None:
    summary = replace(
        _summary(2.25, 4.5),
        references=[_reference()],
        reference_pass=PassEstimate(0.6875, 0.625, 0.75, 60, 1200),
    )
    assert reference_lines(summary) == [
        "judge: 1,200 cases graded, pass rate 81.2%; the reference big-model graded 60 of them "
        "(sample 0.05): 75.0% (the grader: 80.0% on those), agreement 90.0%, "
        "kappa 0.600 [0.412, 0.787]",
        "judge: big-model's pass rate on all 1,200 cases, prediction-powered estimate: 76.2% "
        "[70.0, 82.5] (95%; the reference sample alone: [62.5, 85.0])",
        "judge: cost $1.50 + reference $0.75 = $2.25, against $15.00 grading every case on "
        "big-model",
        "cases passing every grader, reference-estimated (PPI): 68.8% [62.5, 75.0] "
        "(60 reference-graded of 1,200)",
    ]


def test_reference_lines_without_kappa_estimate_or_projection_say_so() -> None:
    summary = replace(
        _summary(1.0, 2.0),
        references=[
            _reference(
                labeled=0,
                reference_rate=None,
                cheap_rate_on_sample=None,
                agreement=None,
                kappa=None,
                kappa_low=None,
                kappa_high=None,
                estimate=None,
                ci_low=None,
                ci_high=None,
                sample_only_low=None,
                sample_only_high=None,
                reference_cost=0.0,
                all_reference_cost=None,
            )
        ],
    )
    assert reference_lines(summary) == [
        "judge: 1,200 cases graded, pass rate 81.2%; the reference big-model graded 0 of them "
        "(sample 0.05): - (the grader: - on those), agreement -, kappa -",
        "judge: cost $1.50 + reference $0.00 = $1.50, against - grading every case on big-model",
    ]
    assert reference_lines(_summary(1.0, 2.0)) == []


def test_an_estimate_without_both_bounds_shows_no_interval() -> None:
    summary = replace(
        _summary(1.0, 2.0), references=[_reference(ci_low=None, sample_only_high=None)]
    )
    assert reference_lines(summary)[1] == (
        "judge: big-model's pass rate on all 1,200 cases, prediction-powered estimate: 76.2% - "
        "(95%; the reference sample alone: -)"
    )


def test_the_gate_rate_says_when_it_is_reference_estimated() -> None:
    summary = _summary(1.0, 2.0)
    assert gate_rate(summary) == "-"
    assert gate_rate(replace(summary, gate=MinPassRate(0.9, 0.875, True))) == "87.5%"
    estimated = MinPassRate(0.9, 0.875, True, estimated=True)
    assert gate_rate(replace(summary, gate=estimated)) == "87.5% (reference-estimated)"
