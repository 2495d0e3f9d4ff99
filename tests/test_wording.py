"""How money and the savings headline read: a tiny run's figures still explain its percentage."""

from __future__ import annotations

import pytest

from evalbatch.analysis.summary import RunInfo, RunSummary
from evalbatch.report.wording import headline, saved_share, usd
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
