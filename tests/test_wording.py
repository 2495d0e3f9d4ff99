"""How money and the savings headline read: a tiny run's figures still explain its percentage."""

from __future__ import annotations

import pytest

from evalbatch.analysis.compare import Comparison, FlakyCase, GraderComparison
from evalbatch.analysis.summary import RunInfo, RunSummary
from evalbatch.report.wording import (
    headline,
    numeric_lines,
    p_value,
    pct,
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
