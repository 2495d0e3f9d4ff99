"""Creating a run: the budget guard against the projection, the pairwise baselines checked,
then the run, its cases and its generate Requests written in one transaction."""

from __future__ import annotations

import secrets
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from ..errors import InputError
from ..graders.rubric import PairwiseGrader
from ..plan.prepare import Prepared
from ..plan.projection import project
from ..plan.requests import plan_generate
from ..records import PlannedRequest
from ..store.db import Store
from ..store.records import NewRun
from ..suite.cases import iter_cases
from .budget import Budget


def new_run_id() -> str:
    """Sortable and readable: UTC time, then random hex."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def budget_of(options: dict[str, Any], prepared: Prepared) -> Budget:
    """The --budget flag when given, else the suite's budget_usd."""
    flag = options.get("budget_usd")
    return Budget.of(flag if flag is not None else prepared.suite.budget_usd)


def check_runs_can_start(store: Store, prepared: Sequence[Prepared], budget: Budget) -> None:
    """Before anything is written: the projection of every run together within the budget,
    and every pairwise grader's baseline run done."""
    if budget.limit_usd is not None:
        budget.check_projected(sum(project(p, store).total("plan") for p in prepared))
    for one in prepared:
        _check_baselines(store, one)


def new_run(
    prepared: Prepared,
    options: dict[str, Any],
    budget: Budget,
    *,
    sweep_id: str | None = None,
    variant: str | None = None,
) -> tuple[NewRun, Iterator[tuple[int, str, str]], Iterator[PlannedRequest]]:
    """What `store.runs.create` (or a sweep) writes for a prepared suite, streamed."""
    suite = prepared.suite
    run = NewRun(
        id=new_run_id(),
        suite_name=suite.name,
        suite_path=str(suite.path),
        mode=suite.mode,
        manifest_hash=prepared.manifest.hash,
        manifest=prepared.manifest.data,
        suite_json=suite.model_copy(update={"sweep": None}).model_dump_json(),
        options={**options, "budget_usd": budget.limit_usd, "strongest": prepared.strongest},
        case_count=prepared.case_count,
        sweep_id=sweep_id,
        variant=variant,
    )
    cases = ((idx, case.id, case.to_json()) for idx, case in enumerate(iter_cases(suite)))
    planned = plan_generate(suite, enumerate(iter_cases(suite)), prepared.router)
    return run, cases, planned


def create_run(store: Store, prepared: Prepared, options: dict[str, Any]) -> str:
    """Write the run, its cases and its generate requests atomically; returns the run id.

    ``options["budget_usd"]`` (else the suite's ``budget_usd``) refuses a run projected above
    it with BudgetExceeded, before anything is written."""
    budget = budget_of(options, prepared)
    check_runs_can_start(store, [prepared], budget)
    run, cases, planned = new_run(prepared, options, budget)
    store.runs.create(run, cases, planned)
    return run.id


def _check_baselines(store: Store, prepared: Prepared) -> None:
    """A pairwise grader compares against a done run's outputs: that run must exist."""
    for grader in prepared.graders:
        if isinstance(grader, PairwiseGrader):
            baseline = store.runs.get(grader.baseline_run)
            if baseline.status != "done":
                raise InputError(
                    f"grader {grader.name}: baseline_run {baseline.id} is {baseline.status}, "
                    "not done: collect it first"
                )
