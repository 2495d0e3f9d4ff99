"""The summary of a run, computed from store queries only: scores per grader, the pass rate,
request outcomes, and cost by step x model x mode with its counterfactuals."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import orjson
from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Engine

from ..catalog.models import load_catalog
from ..run.engine import load_run
from ..store import schema
from .breakdown import (
    PrefixLine,
    RouteLine,
    case_pass_subquery,
    prefix_lines,
    route_lines,
    warming_value,
)


@dataclass
class GraderLine:
    name: str
    type: str
    scored: int
    passed: int
    failed: int
    errors: int
    mean_value: float | None

    @property
    def pass_rate(self) -> float | None:
        decided = self.passed + self.failed
        return self.passed / decided if decided else None


@dataclass
class CostLine:
    step: str
    model: str
    mode: str
    requests: int
    input_tokens: int
    output_tokens: int
    cache_write_tokens: int
    cache_read_tokens: int
    cost: float
    sync_cost: float
    nocache_cost: float
    norouting_cost: float
    naive_cost: float

    @property
    def cache_read_share(self) -> float:
        prompt = self.input_tokens + self.cache_write_tokens + self.cache_read_tokens
        return self.cache_read_tokens / prompt if prompt else 0.0


@dataclass
class RunSummary:
    run: dict[str, Any]
    graders: list[GraderLine]
    cases_scored: int
    cases_passed: int
    costs: list[CostLine]
    outcomes: dict[str, dict[str, int]]
    errors: list[dict[str, Any]] = field(default_factory=list)
    gate: dict[str, Any] = field(default_factory=dict)
    routes: list[RouteLine] = field(default_factory=list)
    prefixes: list[PrefixLine] = field(default_factory=list)
    warming: dict[str, Any] | None = None

    @property
    def pass_rate(self) -> float | None:
        return self.cases_passed / self.cases_scored if self.cases_scored else None

    def total(self, attr: str) -> float:
        return sum(getattr(line, attr) for line in self.costs)

    @property
    def routed(self) -> bool:
        """True when some step sent requests down more than one route (worth a breakdown)."""
        steps = {r.step for r in self.routes}
        return len({(r.step, r.route) for r in self.routes}) > len(steps)

    @property
    def gate_failed(self) -> bool:
        return bool(self.gate.get("failed"))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["pass_rate"] = self.pass_rate
        for grader, raw in zip(self.graders, data["graders"], strict=True):
            raw["pass_rate"] = grader.pass_rate
        for cost, raw in zip(self.costs, data["costs"], strict=True):
            raw["cache_read_share"] = cost.cache_read_share
        for route, raw in zip(self.routes, data["routes"], strict=True):
            raw["pass_rate"] = route.pass_rate
        for prefix, raw in zip(self.prefixes, data["prefixes"], strict=True):
            raw["read_share"] = prefix.read_share
            raw["written_share"] = prefix.written_share
            raw["uncached_share"] = prefix.uncached_share
        data["totals"] = {
            k: self.total(k)
            for k in ("cost", "sync_cost", "nocache_cost", "norouting_cost", "naive_cost")
        }
        return data


def summarize(engine: Engine, run_id: str) -> RunSummary:
    state = load_run(engine, run_id)
    with engine.connect() as conn:
        run = conn.execute(select(schema.runs).where(schema.runs.c.id == run_id)).one()
        graders = _grader_lines(conn, run_id, state.suite)
        scored, passed = _case_pass(conn, run_id)
        costs = _cost_lines(conn, run_id)
        outcomes = _outcomes(conn, run_id)
        errors = _errors(conn, run_id)
        routes = route_lines(conn, run_id)
        catalog = load_catalog()
        prefixes = prefix_lines(conn, run_id, catalog, state.suite.cache.mode == "off")
        warming = warming_value(conn, run_id, catalog)
    info = {
        "id": run.id,
        "suite": run.suite_name,
        "status": run.status,
        "mode": run.mode,
        "created_at": run.created_at,
        "finished_at": run.finished_at,
        "manifest_hash": run.manifest_hash,
        "cases": run.case_count,
        "error": run.error,
        "options": {k: v for k, v in orjson.loads(run.options).items() if k != "api_key"},
    }
    summary = RunSummary(
        info, graders, scored, passed, costs, outcomes, errors, {}, routes, prefixes, warming
    )
    min_rate = state.suite.gate.min_pass_rate
    if min_rate is not None and run.status == "done":
        rate = summary.pass_rate or 0.0
        summary.gate = {"min_pass_rate": min_rate, "pass_rate": rate, "failed": rate < min_rate}
    return summary


def _grader_lines(conn: Any, run_id: str, suite: Any) -> list[GraderLine]:
    s = schema.scores.c
    rows = conn.execute(
        select(
            s.grader,
            s.grader_type,
            func.count(),
            func.sum(case((s.passed.is_(True), 1), else_=0)),
            func.sum(case((s.passed.is_(False), 1), else_=0)),
            func.sum(case((s.error.is_not(None), 1), else_=0)),
            func.avg(s.value),
        )
        .where(s.run_id == run_id)
        .group_by(s.grader, s.grader_type)
    ).fetchall()
    by_name = {r[0]: r for r in rows}
    lines = []
    for spec in suite.grade:
        r = by_name.get(spec.name)
        if r is None:
            lines.append(GraderLine(spec.name, spec.type, 0, 0, 0, 0, None))
            continue
        lines.append(
            GraderLine(
                spec.name,
                spec.type,
                int(r[2]),
                int(r[3] or 0),
                int(r[4] or 0),
                int(r[5] or 0),
                None if r[6] is None else float(r[6]),
            )
        )
    return lines


def _case_pass(conn: Any, run_id: str) -> tuple[int, int]:
    """A case (per epoch) passes when every grader passed it; an error is not a pass."""
    per_case = case_pass_subquery(run_id)
    row = conn.execute(select(func.count(), func.sum(per_case.c.ok))).one()
    return int(row[0] or 0), int(row[1] or 0)


def _cost_lines(conn: Any, run_id: str) -> list[CostLine]:
    r = schema.results.c
    rows = conn.execute(
        select(
            r.step,
            r.model,
            r.mode,
            func.count(),
            func.sum(r.input_tokens),
            func.sum(r.output_tokens),
            func.sum(r.cache_write_5m + r.cache_write_1h),
            func.sum(r.cache_read),
            func.sum(r.cost_usd),
            func.sum(r.sync_cost_usd),
            func.sum(r.nocache_cost_usd),
            func.sum(r.norouting_cost_usd),
            func.sum(r.naive_cost_usd),
        )
        .where(and_(r.run_id == run_id, r.kind == "succeeded"))
        .group_by(r.step, r.model, r.mode)
        .order_by(r.step, r.model)
    ).fetchall()
    return [
        CostLine(
            row[0],
            row[1],
            row[2],
            int(row[3]),
            *(int(v or 0) for v in row[4:8]),
            *(float(v or 0.0) for v in row[8:13]),
        )
        for row in rows
    ]


def _outcomes(conn: Any, run_id: str) -> dict[str, dict[str, int]]:
    r = schema.requests.c
    out: dict[str, dict[str, int]] = {}
    for step, status, n in conn.execute(
        select(r.step, r.status, func.count()).where(r.run_id == run_id).group_by(r.step, r.status)
    ):
        out.setdefault(step, {})[status] = int(n)
    return out


def _errors(conn: Any, run_id: str, limit: int = 20) -> list[dict[str, Any]]:
    r = schema.results.c
    rows = conn.execute(
        select(r.step, r.case_id, r.grader, r.kind, r.error_type, r.error_message)
        .where(and_(r.run_id == run_id, r.kind != "succeeded"))
        .limit(limit)
    ).fetchall()
    s = schema.scores.c
    grader_errors = conn.execute(
        select(s.case_id, s.grader, s.error)
        .where(and_(s.run_id == run_id, s.error.is_not(None)))
        .limit(limit)
    ).fetchall()
    return [
        {
            "step": x.step,
            "case_id": x.case_id,
            "grader": x.grader,
            "kind": x.kind,
            "error": f"{x.error_type or x.kind}: {x.error_message or ''}".strip(": "),
        }
        for x in rows
    ] + [
        {
            "step": "score",
            "case_id": g.case_id,
            "grader": g.grader,
            "kind": "grader_error",
            "error": g.error,
        }
        for g in grader_errors
    ]
