"""Calibration runs: what `calibrate` sends, built from what already exists.

- Grading (``--step grade``): a regrade of a seeded, stratified sample of the run's cases (by
  the reference grader's verdict and the generation's route), graded by one copy of the grader
  per candidate model (``rubric@haiku``...), all in one run, so in one batch.
- Generation (``--step generate``): per candidate, a run of the suite on that model over a
  sample of each route's cases (stratified by whether the case passed), for every route the
  candidate is not already on, graded by the run's own graders.

Each is recorded (``store.calibrations``) with a key over what it ran, so running the same
calibration again reuses it (after `collect`, or with other thresholds) instead of paying twice.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from ..catalog import Catalog, load_catalog
from ..catalog.pricing import counterfactuals
from ..errors import ConfigError, InputError
from ..graders import build_grader
from ..plan.requests import plan_generate
from ..plan.routing import Router
from ..plan.sampling import Sample, stratified_sample
from ..records import Case, Mode, Usage
from ..store.calibration_records import CalibrationRecord
from ..store.db import Store
from ..store.records import NewRun, RunRecord
from ..suite.grade_overrides import on_model
from ..suite.load import replace_grade
from ..suite.manifest import build_manifest, manifest_hash
from ..suite.schema import GateSpec, GraderSpec, Suite
from .budget import Budget
from .create import new_run_id
from .regrade import create_regrade, regrade_plan, source_run

CalibrationStep = Literal["grade", "generate"]
GRADE_SAMPLE = 500  # cases in all
GENERATE_SAMPLE = 200  # cases per route


@dataclass(frozen=True)
class Candidate:
    name: str  # as typed: "haiku"
    model: str  # the snapshot id


def parse_candidates(text: str, catalog: Catalog | None = None) -> list[Candidate]:
    catalog = catalog or load_catalog()
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--candidates: a comma-separated list of models, e.g. haiku,sonnet")
    out: list[Candidate] = []
    for name in names:
        if not catalog.is_known(name):
            known = ", ".join(sorted(catalog.aliases))
            raise ConfigError(f"--candidates: unknown model {name!r} (known aliases: {known})")
        model = catalog.resolve(name)
        if any(c.model == model for c in out):
            raise ConfigError(f"--candidates: {name!r} is listed twice")
        out.append(Candidate(name, model))
    return out


def _done_source(store: Store, run_id: str) -> tuple[RunRecord, Suite]:
    source = source_run(store, run_id)
    if source.status != "done":
        raise InputError(f"run {run_id} is {source.status}, not done: collect it first")
    return source, Suite.model_validate_json(source.suite_json)


def _key(settings: dict[str, Any]) -> str:
    return hashlib.sha256(orjson.dumps(settings, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _reuse(store: Store, run_id: str, step: str, key: str) -> CalibrationRecord | None:
    found = store.calibrations.find(run_id, step, key)
    if found is None:
        return None
    for child in found.runs.values():
        store.runs.get(child)  # NotFound if a run was removed: then it is not reusable
    return found


def _record(
    store: Store,
    source: RunRecord,
    step: CalibrationStep,
    key: str,
    settings: dict[str, Any],
    sample: dict[str, Any],
    runs: dict[str, str],
) -> CalibrationRecord:
    record = CalibrationRecord(
        id="cal-" + new_run_id(),
        run_id=source.id,
        step=step,
        key=key,
        created_at=time.time(),
        settings=settings,
        sample=sample,
        runs=runs,
    )
    store.calibrations.create(record)
    return record


def _sample_info(sample: Sample, excluded: int) -> dict[str, Any]:
    return {
        "size": len(sample.units),
        "population": sample.population,
        "whole": sample.whole,
        "excluded": excluded,
        "strata": {k: list(v) for k, v in sample.strata.items()},
    }


# -- grading ------------------------------------------------------------------------------


def model_grader(suite: Suite, name: str | None) -> GraderSpec:
    """The grader to calibrate: ``name``, or the suite's only model-graded grader."""
    graded = [s for s in suite.grade if s.type in ("rubric", "pairwise")]
    if name is not None:
        found = next((s for s in suite.grade if s.name == name), None)
        if found is None or found not in graded:
            names = ", ".join(s.name for s in graded) or "none"
            raise ConfigError(f"--grader: no model-graded grader {name!r} (model graders: {names})")
        return found
    if len(graded) != 1:
        names = ", ".join(s.name for s in graded)
        raise InputError(
            "the run has no model-graded grader to calibrate"
            if not graded
            else f"the run has several model-graded graders ({names}): pass --grader NAME"
        )
    return graded[0]


def reference_model(spec: GraderSpec, catalog: Catalog) -> str:
    model = str((spec.params or {}).get("model", "opus"))
    return model if model == "route" else catalog.resolve(model)


def calibrate_grade(
    store: Store,
    run_id: str,
    candidates: Sequence[Candidate],
    *,
    grader: str | None = None,
    sample: int = GRADE_SAMPLE,
    seed: int = 0,
    mode: Mode | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[CalibrationRecord, bool]:
    """The calibration of ``run_id``'s grader against ``candidates``: (its record, whether it
    was created now). Nothing is written when the same calibration exists."""
    catalog = load_catalog()
    source, suite = _done_source(store, run_id)
    spec = model_grader(suite, grader)
    reference = reference_model(spec, catalog)
    kept = [c for c in candidates if c.model != reference]
    if not kept:
        raise ConfigError(f"--candidates: only {reference}, which is the grader's own model")
    settings = {
        "grader": spec.name,
        "reference": reference,
        "candidates": [[c.name, c.model] for c in kept],
        "sample": sample,
        "seed": seed,
        "mode": mode or "batch",
    }
    key = _key({"step": "grade", **settings})
    if (found := _reuse(store, source.id, "grade", key)) is not None:
        return found, False
    units, excluded = _grade_units(store, source.id, spec.name)
    if not units:
        raise InputError(f"run {source.id}: no case has a verdict from {spec.name} to compare with")
    picked = stratified_sample(units, sample, seed)
    entries = [on_model(spec, c.name, f"{spec.name}@{c.name}") for c in kept]
    calibrating = replace_grade(
        suite.model_copy(update={"gate": GateSpec(min_pass_rate=None), "mode": mode or "batch"}),
        entries,
        "--candidates",
    )
    plan = regrade_plan(store, source, calibrating, picked.units, catalog)
    child = create_regrade(
        store, plan, {**(options or {})}, suite_name=f"{source.suite_name}.calibrate"
    )
    info = _sample_info(picked, excluded)
    return _record(store, source, "grade", key, settings, info, {"grade": child}), True


def _grade_units(store: Store, run_id: str, grader: str) -> tuple[list[tuple[int, str]], int]:
    """(case idx, "verdict|route") for each case the grader decided (epoch 0), and how many
    cases it did not (grader errors, failed generations): those cannot be compared."""
    scores = store.scores.of_run(run_id)
    units, excluded = [], 0
    for route in store.calibrations.routes(run_id):
        score = scores.get((route.case_id, 0, grader))
        if score is None or score.error or score.passed is None:
            excluded += 1
            continue
        verdict = "pass" if score.passed else "fail"
        units.append((route.case_idx, f"{verdict}|{route.route}"))
    return units, excluded


# -- generation ---------------------------------------------------------------------------


def calibrate_generate(
    store: Store,
    run_id: str,
    candidates: Sequence[Candidate],
    *,
    sample: int = GENERATE_SAMPLE,
    seed: int = 0,
    mode: Mode | None = None,
    options: dict[str, Any] | None = None,
) -> tuple[CalibrationRecord, bool]:
    """Per candidate, one run over the sampled cases of each route it is not on already."""
    catalog = load_catalog()
    source, suite = _done_source(store, run_id)
    settings = {
        "candidates": [[c.name, c.model] for c in candidates],
        "sample": sample,
        "seed": seed,
        "mode": mode or "batch",
    }
    key = _key({"step": "generate", **settings})
    if (found := _reuse(store, source.id, "generate", key)) is not None:
        return found, False
    routes = store.calibrations.routes(source.id)
    passes = store.calibrations.case_passes(source.id)
    by_route: dict[str, list[tuple[int, str]]] = {}
    models: dict[str, str] = {}
    for r in routes:
        verdict = "pass" if passes.get((r.case_id, 0)) else "fail"
        by_route.setdefault(r.route, []).append((r.case_idx, verdict))
        models[r.route] = r.model
    picked = {name: stratified_sample(units, sample, seed) for name, units in by_route.items()}
    runs: dict[str, str] = {}
    budget = Budget.of((options or {}).get("budget_usd"))
    for cand in candidates:
        idxs = sorted(
            i for name, s in picked.items() if models[name] != cand.model for i in s.units
        )
        if not idxs:
            continue
        runs[cand.name] = _create_candidate_run(
            store, source, suite, cand, idxs, mode or "batch", options or {}, budget, catalog
        )
    if not runs:
        raise ConfigError("--candidates: every route already uses these models; nothing to try")
    info = {
        "routes": {
            name: {"model": models[name], **_sample_info(s, 0)} for name, s in picked.items()
        }
    }
    return _record(store, source, "generate", key, settings, info, runs), True


def _create_candidate_run(
    store: Store,
    source: RunRecord,
    suite: Suite,
    cand: Candidate,
    idxs: list[int],
    mode: Mode,
    options: dict[str, Any],
    budget: Budget,
    catalog: Catalog,
) -> str:
    """The suite on ``cand`` for the source's cases at ``idxs``, graded as the source was."""
    gen = suite.generate.model_copy(update={"model": cand.name})
    suite = suite.model_copy(
        update={"generate": gen, "mode": mode, "gate": GateSpec(min_pass_rate=None)}
    )
    graders = [build_grader(spec, suite.base_dir) for spec in suite.grade]
    wanted = set(idxs)
    cases = [(idx, c) for idx, c in _cases(store, source.id) if idx in wanted]
    digest = hashlib.sha256()
    for _, case in cases:
        digest.update(orjson.dumps(case.content(), option=orjson.OPT_SORT_KEYS) + b"\n")
    manifest = build_manifest(suite, graders, len(cases), digest.hexdigest(), catalog)
    data = {**manifest.data, "calibrates": {"run": source.id, "hash": source.manifest_hash}}
    router = Router(cand.model, None, catalog)
    strongest = catalog.strongest(sorted({cand.model, str(source.options.get("strongest"))}))
    planned = list(plan_generate(suite, cases, router))
    if budget.limit_usd is not None:
        budget.check_projected(_project(planned, mode, strongest, catalog))
    run_id = new_run_id()
    run = NewRun(
        id=run_id,
        suite_name=f"{source.suite_name}.calibrate",
        suite_path=source.suite_path,
        mode=mode,
        manifest_hash=manifest_hash(data),
        manifest=data,
        suite_json=suite.model_dump_json(),
        options={**options, "budget_usd": budget.limit_usd, "strongest": strongest},
        case_count=len(cases),
    )
    store.runs.create(run, ((i, c.id, c.to_json()) for i, c in cases), planned)
    return run_id


def _project(planned: list[Any], mode: Mode, strongest: str, catalog: Catalog) -> float:
    """An upper bound of the generation: each prompt's tokens and max_tokens of output."""
    return sum(
        counterfactuals(
            Usage(input_tokens=r.input_estimate, output_tokens=r.max_tokens),
            r.model,
            batch=mode == "batch",
            strongest=strongest,
            catalog=catalog,
        ).actual
        for r in planned
    )


def _cases(store: Store, run_id: str) -> list[tuple[int, Case]]:
    out: list[tuple[int, Case]] = []
    start = 0
    while page := store.runs.cases_page(run_id, start, 1000):
        out.extend((idx, Case.from_json(data)) for idx, data in page)
        start = page[-1][0] + 1
    return out
