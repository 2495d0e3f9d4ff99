"""The read side of a run for reports: scores per grader, the pass rate, costs by step and
model, outcomes, errors, routes, the prompt cache per prefix, warming, and the case rows.

"A case passes" is defined once here (`case_pass_subquery`): every grader passed it, per epoch;
an error is not a pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Engine, String, and_, case, func, literal_column, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement, Subquery

from ..records import Case
from . import schema
from .records import (
    CaseRow,
    CostLine,
    ErrorLine,
    GraderLine,
    PrefixLine,
    RouteLine,
    ScoreView,
    WarmRequest,
)

_NO_ROUTE: ColumnElement[str] = literal_column(
    "'model'", String
)  # inline, so SELECT and GROUP BY match on PostgreSQL


def case_pass_subquery(run_id: str) -> Subquery:
    """(case_idx, epoch, ok): a case passes when every grader passed it; an error is no pass."""
    s = schema.scores.c
    return (
        select(s.case_idx, s.epoch, func.min(case((s.passed.is_(True), 1), else_=0)).label("ok"))
        .where(s.run_id == run_id)
        .group_by(s.case_idx, s.epoch)
        .subquery()
    )


def case_pass(conn: Connection, run_id: str) -> tuple[int, int]:
    """(cases scored, cases passed), counting each epoch."""
    per_case = case_pass_subquery(run_id)
    row = conn.execute(select(func.count(), func.sum(per_case.c.ok))).one()
    return int(row[0] or 0), int(row[1] or 0)


def _capped(value: ColumnElement[Any], cap: ColumnElement[Any]) -> ColumnElement[Any]:
    return case((value < cap, value), else_=cap)


class Reports:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def grader_lines(self, run_id: str) -> dict[str, GraderLine]:
        s = schema.scores.c
        with self.engine.connect() as conn:
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
        return {
            r[0]: GraderLine(
                r[0],
                r[1],
                int(r[2]),
                int(r[3] or 0),
                int(r[4] or 0),
                int(r[5] or 0),
                None if r[6] is None else float(r[6]),
            )
            for r in rows
        }

    def case_pass(self, run_id: str) -> tuple[int, int]:
        with self.engine.connect() as conn:
            return case_pass(conn, run_id)

    def cost_lines(self, run_id: str) -> list[CostLine]:
        r = schema.results.c
        with self.engine.connect() as conn:
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

    def outcomes(self, run_id: str) -> dict[str, dict[str, int]]:
        """step -> request status -> count."""
        r = schema.requests.c
        out: dict[str, dict[str, int]] = {}
        with self.engine.connect() as conn:
            for step, status, n in conn.execute(
                select(r.step, r.status, func.count())
                .where(r.run_id == run_id)
                .group_by(r.step, r.status)
            ):
                out.setdefault(step, {})[status] = int(n)
        return out

    def errors(self, run_id: str, limit: int = 20) -> list[ErrorLine]:
        r, s = schema.results.c, schema.scores.c
        with self.engine.connect() as conn:
            failed = conn.execute(
                select(r.step, r.case_id, r.grader, r.kind, r.error_type, r.error_message)
                .where(and_(r.run_id == run_id, r.kind != "succeeded"))
                .limit(limit)
            ).fetchall()
            grader_errors = conn.execute(
                select(s.case_id, s.grader, s.error)
                .where(and_(s.run_id == run_id, s.error.is_not(None)))
                .limit(limit)
            ).fetchall()
        return [
            ErrorLine(
                x.step,
                x.case_id,
                x.grader,
                x.kind,
                f"{x.error_type or x.kind}: {x.error_message or ''}".strip(": "),
            )
            for x in failed
        ] + [
            ErrorLine("score", g.case_id, g.grader, "grader_error", g.error) for g in grader_errors
        ]

    def route_lines(self, run_id: str) -> list[RouteLine]:
        r = schema.results.c
        route = func.coalesce(r.route, _NO_ROUTE)
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    r.step,
                    route,
                    r.model,
                    func.count(),
                    func.sum(r.cost_usd),
                    func.sum(r.naive_cost_usd),
                )
                .where(and_(r.run_id == run_id, r.step != "warm"))
                .group_by(r.step, route, r.model)
                .order_by(r.step, r.model)
            ).fetchall()
            passes = self._pass_by_generate_route(conn, run_id)
        lines = []
        for step, route_name, model, n, cost, naive in rows:
            scored, passed = (
                passes.get((route_name, model), (0, 0)) if step == "generate" else (0, 0)
            )
            lines.append(
                RouteLine(
                    step,
                    route_name,
                    model,
                    int(n),
                    float(cost or 0),
                    float(naive or 0),
                    scored,
                    passed,
                )
            )
        return lines

    @staticmethod
    def _pass_by_generate_route(
        conn: Connection, run_id: str
    ) -> dict[tuple[str, str], tuple[int, int]]:
        q = schema.requests.c
        per_case = case_pass_subquery(run_id)
        route = func.coalesce(q.route, _NO_ROUTE)
        rows = conn.execute(
            select(route, q.model, func.count(), func.sum(per_case.c.ok))
            .select_from(
                per_case.join(
                    schema.requests,
                    and_(
                        q.run_id == run_id,
                        q.step == "generate",
                        q.case_idx == per_case.c.case_idx,
                        q.epoch == per_case.c.epoch,
                    ),
                )
            )
            .group_by(route, q.model)
        ).fetchall()
        return {(name, model): (int(n), int(ok or 0)) for name, model, n, ok in rows}

    def prefix_lines(self, run_id: str) -> list[PrefixLine]:
        """The prompt cache per shared prefix and model (no warnings: analysis adds those)."""
        p, q, r = schema.prefixes.c, schema.requests.c, schema.results.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    p.source,
                    p.sha256,
                    p.tokens,
                    q.model,
                    func.count(),
                    func.sum(_capped(r.cache_read, p.tokens)),
                    func.sum(_capped(r.cache_write_5m + r.cache_write_1h, p.tokens)),
                )
                .select_from(
                    schema.prefixes.join(schema.requests, q.prefix_id == p.id).join(
                        schema.results, r.request_id == q.id
                    )
                )
                .where(and_(p.run_id == run_id, q.step != "warm", r.kind == "succeeded"))
                .group_by(p.id, p.source, p.sha256, p.tokens, q.model)
                .order_by(p.source, q.model)
            ).fetchall()
        lines = []
        for source, sha, tokens, model, n, read, written in rows:
            read, written, n = int(read or 0), int(written or 0), int(n)
            uncached = max(0, n * int(tokens) - read - written)
            lines.append(
                PrefixLine(source, sha[:12], model, int(tokens), n, read, written, uncached)
            )
        return lines

    def warm_requests(self, run_id: str) -> tuple[list[WarmRequest], int]:
        """The warm requests (model, cost, prefix tokens), and how many requests of the warmed
        steps still wrote the cache."""
        r, q, p = schema.results.c, schema.requests.c, schema.prefixes.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(r.model, r.cost_usd, p.tokens)
                .select_from(
                    schema.results.join(schema.requests, q.id == r.request_id).join(
                        schema.prefixes, p.id == q.prefix_id
                    )
                )
                .where(and_(r.run_id == run_id, r.step == "warm"))
            ).fetchall()
            writes = conn.execute(
                select(func.count()).where(
                    and_(
                        r.run_id == run_id,
                        r.step != "warm",
                        r.kind == "succeeded",
                        (r.cache_write_5m + r.cache_write_1h) > 0,
                    )
                )
            ).scalar()
        warm = [WarmRequest(row.model, float(row.cost_usd or 0), int(row.tokens)) for row in rows]
        return warm, int(writes or 0)

    def case_rows(self, run_id: str) -> Iterator[CaseRow]:
        """Every case and epoch with its output and scores, in case order."""
        c, r, res, s = schema.cases.c, schema.requests.c, schema.results.c, schema.scores.c
        with self.engine.connect() as conn:
            outputs = {
                (row.case_idx, row.epoch): (row.text or "", row.model, row.kind, row.error_message)
                for row in conn.execute(
                    select(r.case_idx, r.epoch, res.text, res.model, res.kind, res.error_message)
                    .select_from(schema.requests.join(schema.results, res.request_id == r.id))
                    .where(and_(r.run_id == run_id, r.step == "generate"))
                )
            }
            scores: dict[tuple[int, int], list[ScoreView]] = {}
            for row in conn.execute(
                select(schema.scores)
                .where(s.run_id == run_id)
                .order_by(s.case_idx, s.epoch, s.grader)
            ):
                scores.setdefault((row.case_idx, row.epoch), []).append(
                    ScoreView(
                        row.grader,
                        row.grader_type,
                        row.passed,
                        row.value,
                        row.explanation or "",
                        row.error,
                    )
                )
            epochs_of: dict[int, list[int]] = {}
            for idx, epoch in scores:
                epochs_of.setdefault(idx, []).append(epoch)
            for case_row in conn.execute(
                select(c.idx, c.case_id, c.data).where(c.run_id == run_id).order_by(c.idx)
            ):
                case_ = Case.from_json(case_row.data)
                epochs = sorted(epochs_of.get(case_row.idx, [])) or [0]
                for epoch in epochs:
                    text, model, kind, error = outputs.get(
                        (case_row.idx, epoch), ("", "", "", None)
                    )
                    shown = (
                        text if kind == "succeeded" else f"[{kind or 'no result'}] {error or ''}"
                    )
                    yield CaseRow(
                        case_row.case_id,
                        epoch,
                        case_.shown_input(),
                        case_.target,
                        shown,
                        model or "",
                        tuple(scores.get((case_row.idx, epoch), [])),
                    )
