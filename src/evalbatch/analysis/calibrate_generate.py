"""`calibrate --step generate`: per route, is a candidate model non-inferior to the route's
current model? Each sampled case is a pair (passed on the current model in the run, passed on
the candidate), compared one-sided: the candidate is ``non-inferior`` when the lower bound of
Newcombe's paired interval for (candidate - current) at 1 - 2 * alpha (a one-sided 95% bound at
alpha 0.05) is above ``-margin``, ``inferior`` when the upper bound is below it, else
``inconclusive``. The recommendation per route is the cheapest non-inferior model (the current
one counts), and the `routing:` block that adopts them, with the projected cost change.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

import yaml

from ..store.calibration_records import CalibrationRecord, GenerationRoute
from ..store.db import Store
from ..suite.schema import Suite
from .stats import compare_pass_fail

NonInferiority = Literal["non-inferior", "inferior", "inconclusive"]


@dataclass(frozen=True)
class RouteCandidate:
    model: str
    model_id: str
    n: int
    current_rate: float | None
    candidate_rate: float | None
    diff: float | None
    lower_bound: float | None  # one-sided bound of (candidate - current)
    verdict: NonInferiority
    decide_at: int | None
    cost_usd: float | None  # this route's generation per run on the candidate (projected)


@dataclass(frozen=True)
class RouteResult:
    route: str
    model_id: str  # the current model
    model: str  # ... as the suite writes it ("haiku")
    cases: int
    sampled: int
    cost_usd: float  # this route's generation per run now
    candidates: list[RouteCandidate]
    recommended: str  # the model as typed, or the current id when it stays


@dataclass(frozen=True)
class GenerateCalibration:
    calibration: str
    run: str
    calibration_runs: dict[str, str]
    margin: float
    alpha: float
    per_month: int
    routes: list[RouteResult]
    routing: str
    cost_now_usd: float
    cost_after_usd: float

    @property
    def change_per_run(self) -> float:
        return self.cost_after_usd - self.cost_now_usd

    def to_dict(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "step": "generate",
            "margin": self.margin,
            "alpha": self.alpha,
            "routes": [asdict(r) for r in self.routes],
            "routing": self.routing,
            "cost_per_run_usd": {"now": self.cost_now_usd, "after": self.cost_after_usd},
            "cost_change_per_run_usd": self.change_per_run,
            "cost_change_per_month_usd": self.change_per_run * self.per_month,
            "per_month": self.per_month,
            "calibration": self.calibration,
            "calibration_runs": self.calibration_runs,
        }


def generate_calibration(
    store: Store,
    record: CalibrationRecord,
    *,
    margin: float = 0.02,
    alpha: float = 0.05,
    per_month: int = 30,
) -> GenerateCalibration:
    source = store.runs.get(record.run_id)
    suite = Suite.model_validate_json(source.suite_json)
    now_passes = store.calibrations.case_passes(record.run_id)
    # A regrade paid nothing for its generations: their cost is the run they came from.
    paid = (source.manifest.get("generations_from") or {}).get("run")
    costs = {r.case_id: r.cost for r in store.calibrations.routes(paid)} if paid else {}
    routes: dict[str, list[GenerationRoute]] = {}
    for r in store.calibrations.routes(record.run_id):
        r = replace(r, cost=costs.get(r.case_id, r.cost))
        routes.setdefault(r.route, []).append(r)
    tried = {
        name: (store.calibrations.case_passes(run), store.calibrations.routes(run))
        for name, run in record.runs.items()
    }
    ids = {name: model_id for name, model_id in record.settings["candidates"]}
    results = []
    for name in sorted(routes, key=lambda k: (-len(routes[k]), k)):
        cases = routes[name]
        now_cost = sum(r.cost for r in cases) * suite.epochs
        found = []
        for cand, (passes, cand_routes) in tried.items():
            if ids[cand] == cases[0].model:
                continue
            found.append(
                _candidate(cand, ids[cand], cases, now_passes, passes, cand_routes, margin, alpha,
                           suite.epochs)
            )  # fmt: skip
        best = min(
            [c for c in found if c.verdict == "non-inferior" and c.cost_usd is not None],
            key=lambda c: (c.cost_usd or 0.0, c.model),
            default=None,
        )
        keep = best is None or (best.cost_usd or 0.0) >= now_cost
        results.append(
            RouteResult(
                route=name,
                model_id=cases[0].model,
                model=written(suite, name) or cases[0].model,
                cases=len(cases),
                sampled=max((c.n for c in found), default=0),
                cost_usd=now_cost,
                candidates=found,
                recommended=cases[0].model if keep or best is None else best.model,
            )
        )
    after = sum(_cost_after(r) for r in results)
    return GenerateCalibration(
        calibration=record.id,
        run=record.run_id,
        calibration_runs=dict(record.runs),
        margin=margin,
        alpha=alpha,
        per_month=per_month,
        routes=results,
        routing=routing_block(suite, results),
        cost_now_usd=sum(r.cost_usd for r in results),
        cost_after_usd=after,
    )


def _cost_after(route: RouteResult) -> float:
    chosen = next((c for c in route.candidates if c.model == route.recommended), None)
    return chosen.cost_usd if chosen and chosen.cost_usd is not None else route.cost_usd


def _candidate(
    name: str,
    model_id: str,
    cases: list[GenerationRoute],
    now_passes: dict[tuple[str, int], bool],
    passes: dict[tuple[str, int], bool],
    cand_routes: list[GenerationRoute],
    margin: float,
    alpha: float,
    epochs: int,
) -> RouteCandidate:
    ids = {r.case_id for r in cases}
    pairs = [(now_passes.get(k, False), ok) for k, ok in passes.items() if k[0] in ids]
    spent = [r.cost for r in cand_routes if r.case_id in ids]
    per_case = sum(spent) / len(spent) if spent else None
    cost = per_case * len(cases) * epochs if per_case is not None else None
    if not pairs:
        return RouteCandidate(name, model_id, 0, None, None, None, None, "inconclusive", None, cost)
    stats = compare_pass_fail(pairs, confidence=1.0 - 2.0 * alpha)
    if stats.ci_low > -margin:
        verdict: NonInferiority = "non-inferior"
    elif stats.ci_high < -margin:
        verdict = "inferior"
    else:
        verdict = "inconclusive"
    decide_at = None
    if verdict == "inconclusive" and stats.diff != -margin:
        half = (stats.ci_high - stats.ci_low) / 2
        decide_at = math.ceil(len(pairs) * (half / abs(stats.diff + margin)) ** 2)
    return RouteCandidate(
        model=name,
        model_id=model_id,
        n=len(pairs),
        current_rate=stats.base_rate,
        candidate_rate=stats.new_rate,
        diff=stats.diff,
        lower_bound=stats.ci_low,
        verdict=verdict,
        decide_at=decide_at,
        cost_usd=cost,
    )


def written(suite: Suite, route: str) -> str | None:
    """The model a route names, as the suite writes it."""
    if suite.routing is None or route == "model":
        return suite.generate.model if route == "model" else None
    if route == "default":
        return suite.routing.default
    if route.startswith("difficulty="):
        return suite.routing.table.get(route.removeprefix("difficulty="))
    for i, rule in enumerate(suite.routing.rules, start=1):
        if route == f"rule {i}: {rule.when}":
            return rule.model
    return None


def routing_block(suite: Suite, routes: list[RouteResult]) -> str:
    """The suite's `routing:` (or `generate.model`) with each route's recommended model."""
    chosen = {r.route: r.recommended for r in routes if r.recommended != r.model_id}
    if suite.routing is None:
        model = chosen.get("model", suite.generate.model)
        return yaml.safe_dump({"generate": {"model": model}}, sort_keys=False)
    table = {
        label: chosen.get(f"difficulty={label}", m) for label, m in suite.routing.table.items()
    }
    block: dict[str, Any] = {**table, "default": chosen.get("default", suite.routing.default)}
    if suite.routing.rules:
        block["rules"] = [
            {"when": rule.when, "model": chosen.get(f"rule {i}: {rule.when}", rule.model)}
            for i, rule in enumerate(suite.routing.rules, start=1)
        ]
    return yaml.safe_dump({"routing": block}, sort_keys=False, allow_unicode=True)
