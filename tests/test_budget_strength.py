"""The budget guard as docs/costs.md promises it: a run projected above the budget is refused
before anything is written, and once actual spend has *reached* the budget nothing more is
submitted: the run stops in needs_attention, says what was held back and how to go on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evalbatch.errors import BudgetExceeded, RunNeedsAttention
from evalbatch.run.budget import Budget
from evalbatch.sandbox.prompts import last_user_text

from .lab import Lab, lab_in, write_suite

# Four cases with the same text: every generation costs the same, so the generate step's spend
# is one exact float whatever order the store sums it in.
CASES = [
    {"id": f"c{i}", "input": "Name the capital of France.", "target": "Paris"} for i in range(4)
]
RUBRIC = {"rubric": {"model": "haiku", "rubric": "Is the answer right?", "pass": ">= 4"}}


def answer(params: dict[str, Any]) -> str:
    if "<output>" in last_user_text(params):  # the rubric grader
        return json.dumps({"score": 5, "reasoning": "right"})
    return "Paris"


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    yield from lab_in(tmp_path, answer)


def _suite(lab: Lab, name: str) -> Path:
    return write_suite(lab.root / name, CASES, grade=[{"contains": "{{ target }}"}, RUBRIC])


def _generate_spend(lab: Lab) -> float:
    """What the generate step of this suite costs, measured on a first run of it."""
    first = lab.run(_suite(lab, "first"))
    assert lab.store.runs.status(first) == "done"
    (line,) = [x for x in lab.store.reports.cost_lines(first) if x.step == "generate"]
    assert line.requests == 4 and line.cost > 0
    return line.cost


def test_spend_that_reaches_the_budget_stops_grading_from_being_submitted(lab: Lab) -> None:
    spent = _generate_spend(lab)
    run_id = lab.create(_suite(lab, "second"))
    lab.drive(run_id, detach=True)  # generation submitted; the budget is set afterwards
    before = lab.batches_created()

    stopped = lab.collect(run_id, budget_usd=spent)  # `evalbatch collect RUN --budget USD`

    assert stopped.status == "needs_attention"
    assert stopped.note is not None
    assert f"budget ${spent:,.2f} reached (spent ${spent:,.2f})" in stopped.note
    assert "4 grade request(s) not submitted" in stopped.note
    assert f"evalbatch collect {run_id} --budget USD" in stopped.note
    assert lab.batches_created() == before  # no grading batch reached the provider
    assert lab.store.results.spent(run_id) == spent
    assert lab.store.runs.get(run_id).status == "needs_attention"

    resumed = lab.collect(run_id, budget_usd=spent * 3)  # a higher budget: grading goes out
    assert (resumed.status, resumed.note) == ("grade", None)
    assert lab.drive(run_id) == "done"
    assert lab.batches_created() == before + 1  # the grading batch, once


def test_spend_just_below_the_budget_goes_on(lab: Lab) -> None:
    spent = _generate_spend(lab)
    run_id = lab.create(_suite(lab, "second"))
    lab.drive(run_id, detach=True)
    going = lab.collect(run_id, budget_usd=spent * 1.0001)
    assert (going.status, going.note) == ("grade", None)
    assert lab.drive(run_id) == "done"
    assert lab.store.results.spent(run_id) > spent  # grading was bought too


def test_check_spent_at_and_below_the_limit() -> None:
    budget = Budget.of("0.50")
    assert budget.limit_usd == 0.5
    budget.check_spent(0.4999, 3, step="grade", run_id="r1")  # below: goes on
    with pytest.raises(RunNeedsAttention) as stop:
        budget.check_spent(0.5, 3, step="generate", run_id="r1")
    assert str(stop.value) == (
        "budget $0.50 reached (spent $0.50); 3 generate request(s) not submitted. "
        "To go on: evalbatch collect r1 --budget USD"
    )
    Budget.of(None).check_spent(1e9, 3, step="grade", run_id="r1")  # no budget, no stop


def test_check_projected_refuses_only_above_the_limit() -> None:
    Budget.of(2).check_projected(2.0)  # exactly at the budget is allowed
    with pytest.raises(BudgetExceeded) as refused:
        Budget.of(2).check_projected(2.01)
    assert (refused.value.projected_usd, refused.value.budget_usd) == (2.01, 2.0)
    Budget.of(None).check_projected(1e9)


def test_a_run_projected_above_its_budget_writes_nothing(lab: Lab) -> None:
    suite = _suite(lab, "tight")
    with pytest.raises(BudgetExceeded):
        lab.create(suite, budget_usd=1e-9)
    assert lab.store.history.list_runs("lab") == []
    assert lab.batches_created() == 0
