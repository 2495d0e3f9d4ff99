"""`regrade`: a new run that grades another run's stored generations with other graders. The
generations are copied, not sent again and not billed; the manifest records where they came
from (``generations_from``), so `compare SOURCE NEW` shows only what the graders changed.

A calibration of graders is a regrade of a sample of the cases with the candidate graders
(run/calibrate.py), so both go through `plan_regrade` and `create_regrade`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from ..catalog import Catalog, load_catalog
from ..catalog.pricing import counterfactuals
from ..errors import InputError
from ..graders import build_grader
from ..graders.base import Grader
from ..graders.reference import with_references
from ..plan.requests import plan_grade
from ..plan.routing import Router
from ..records import Case, Mode, Usage
from ..store.db import Store
from ..store.records import NewRun, RunRecord
from ..suite.grade_overrides import graders_from_file, override_grade
from ..suite.manifest import Manifest, build_manifest, manifest_hash
from ..suite.schema import Suite
from ..templates import render
from .budget import Budget
from .create import new_run_id

_PAGE = 1000


@dataclass(frozen=True)
class RegradePlan:
    """A regrade, checked and pinned; nothing is written yet."""

    source: RunRecord
    suite: Suite
    graders: list[Grader]
    manifest: Manifest
    strongest: str
    case_idxs: list[int] | None  # None: every case of the source
    catalog: Catalog


def source_run(store: Store, run_id: str) -> RunRecord:
    """The run whose generations are reused: every generation of it must be final."""
    source = store.runs.get(run_id)
    if source.status in ("generate", "canceling") or store.regrades.unfinished_generations(run_id):
        raise InputError(
            f"run {run_id} is still generating ({source.status}): collect it first "
            f"(evalbatch collect {run_id})"
        )
    return source


def plan_regrade(
    store: Store,
    run_id: str,
    *,
    suite_file: Path | None = None,
    overrides: Sequence[str] = (),
    mode: Mode | None = None,
) -> RegradePlan:
    """The source run's suite with the graders (and gate) of ``suite_file`` and/or ``--set``
    overrides; ``mode`` defaults to batch. SuiteError / InputError before anything is written."""
    source = source_run(store, run_id)
    suite = Suite.model_validate_json(source.suite_json)
    if suite_file is not None:
        suite = graders_from_file(suite, suite_file)
    suite = override_grade(suite, list(overrides))
    return regrade_plan(store, source, suite.model_copy(update={"mode": mode or "batch"}))


def regrade_plan(
    store: Store,
    source: RunRecord,
    suite: Suite,
    case_idxs: list[int] | None = None,
    catalog: Catalog | None = None,
) -> RegradePlan:
    """Pin ``suite`` (the source's, with other graders) over the source's cases (all, or those
    at ``case_idxs``): every grader template must render for every case."""
    catalog = catalog or load_catalog()
    graders = [build_grader(spec, suite.base_dir) for spec in suite.grade]
    count, digest = _check_cases(store, source.id, graders, case_idxs)
    if count == 0:
        raise InputError(f"run {source.id} has no cases to regrade")
    manifest = build_manifest(suite, graders, count, digest, catalog)
    data = {**manifest.data, "generations_from": {"run": source.id, "hash": source.manifest_hash}}
    models = {str(source.options.get("strongest", ""))} - {""}
    for grader in with_references(graders):
        models.update(Router(grader.model, suite.routing, catalog).models())
    return RegradePlan(
        source,
        suite,
        graders,
        Manifest(data, manifest_hash(data)),
        catalog.strongest(sorted(models)),
        case_idxs,
        catalog,
    )


def _check_cases(
    store: Store, run_id: str, graders: list[Grader], case_idxs: list[int] | None
) -> tuple[int, str]:
    """(case count, content hash) of the cases to regrade; every template rendered for each.
    The hash is computed as the suite's case scan computes it, so a whole-run regrade pins the
    same case hash as its source."""
    wanted = None if case_idxs is None else set(case_idxs)
    templates = [(f"grader {g.name}", t) for g in graders for t in g.template_sources()]
    digest = hashlib.sha256()
    count = 0
    for idx, case in _stored_cases(store, run_id):
        if wanted is not None and idx not in wanted:
            continue
        context = case.context()
        for label, template in templates:
            render(template, context, case.where(label))
        digest.update(orjson.dumps(case.content(), option=orjson.OPT_SORT_KEYS))
        digest.update(b"\n")
        count += 1
    return count, digest.hexdigest()


def _stored_cases(store: Store, run_id: str) -> Iterator[tuple[int, Case]]:
    start = 0
    while page := store.runs.cases_page(run_id, start, _PAGE):
        for idx, data in page:
            yield idx, Case.from_json(data)
        start = page[-1][0] + 1


def project_grading(store: Store, plan: RegradePlan) -> float:
    """An upper bound of the grading cost: every grade request at its prompt's tokens and its
    max_tokens of output, without the cache."""
    routers = {
        g.name: Router(g.model, plan.suite.routing, plan.catalog)
        for g in with_references(plan.graders)
    }
    wanted = None if plan.case_idxs is None else set(plan.case_idxs)
    generated = (
        (g.case_idx, Case.from_json(g.case_json), g.epoch, g.text)
        for g in store.results.iter_generated(plan.source.id)
        if wanted is None or g.case_idx in wanted
    )
    total = 0.0
    batch = plan.suite.mode == "batch"
    for req in plan_grade(with_references(plan.graders), routers, generated, lambda *_: ""):
        usage = Usage(input_tokens=req.input_estimate, output_tokens=req.max_tokens)
        total += counterfactuals(
            usage, req.model, batch=batch, strongest=plan.strongest, catalog=plan.catalog
        ).actual
    return total


def create_regrade(
    store: Store,
    plan: RegradePlan,
    options: dict[str, Any],
    *,
    suite_name: str | None = None,
) -> str:
    """Write the regrade run (its cases and the copied generations) in one transaction; the
    engine plans its grading on the first advance. ``options["budget_usd"]`` (else the suite's)
    refuses a regrade projected above it, before anything is written."""
    flag = options.get("budget_usd")
    budget = Budget.of(flag if flag is not None else plan.suite.budget_usd)
    if budget.limit_usd is not None:
        budget.check_projected(project_grading(store, plan))
    run_id = new_run_id()
    count = int(plan.manifest.data["cases"]["count"])
    run = NewRun(
        id=run_id,
        suite_name=suite_name or f"{plan.source.suite_name}.regrade",
        suite_path=plan.source.suite_path,
        mode=plan.suite.mode,
        manifest_hash=plan.manifest.hash,
        manifest=plan.manifest.data,
        suite_json=plan.suite.model_dump_json(),
        options={
            **options,
            "budget_usd": budget.limit_usd,
            "strongest": plan.strongest,
            "generations_from": plan.source.id,
        },
        case_count=count,
    )
    store.regrades.create(run, plan.source.id, plan.case_idxs)
    return run_id
