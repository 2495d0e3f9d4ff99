"""Creating a run: the budget guard against the projection, the pairwise baselines checked,
then the run, its cases and its generate Requests written in one transaction."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from ..errors import InputError
from ..graders.rubric import PairwiseGrader
from ..plan.prepare import Prepared
from ..plan.projection import project
from ..plan.requests import plan_generate
from ..store.db import Store
from ..store.records import NewRun
from ..suite.cases import iter_cases
from .budget import Budget


def new_run_id() -> str:
    """Sortable and readable: UTC time, then random hex."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


def create_run(store: Store, prepared: Prepared, options: dict[str, Any]) -> str:
    """Write the run, its cases and its generate requests atomically; returns the run id.

    ``options["budget_usd"]`` (else the suite's ``budget_usd``) refuses a run projected above
    it with BudgetExceeded, before anything is written."""
    suite = prepared.suite
    flag = options.get("budget_usd")
    budget = Budget.of(flag if flag is not None else suite.budget_usd)
    if budget.limit_usd is not None:
        budget.check_projected(project(prepared, store).total("plan"))
    _check_baselines(store, prepared)
    run_id = new_run_id()
    run = NewRun(
        id=run_id,
        suite_name=suite.name,
        suite_path=str(suite.path),
        mode=suite.mode,
        manifest_hash=prepared.manifest.hash,
        manifest=prepared.manifest.data,
        suite_json=suite.model_dump_json(),
        options={**options, "budget_usd": budget.limit_usd, "strongest": prepared.strongest},
        case_count=prepared.case_count,
    )
    cases = ((idx, case.id, case.to_json()) for idx, case in enumerate(iter_cases(suite)))
    planned = plan_generate(suite, enumerate(iter_cases(suite)), prepared.router)
    store.runs.create(run, cases, planned)
    return run_id


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
