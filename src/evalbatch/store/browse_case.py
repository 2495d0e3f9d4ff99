"""One case of a run as the viewer's case page shows it: the case, and per epoch its
generation and grading requests (the rendered prompts, as sent) with their results and scores."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import and_, select
from sqlalchemy.engine import Connection, Engine, Row

from ..errors import NotFound
from ..records import GENERATE, GRADE, Case
from . import schema
from .browse_records import (
    CaseDetail,
    CaseStatus,
    EpochDetail,
    RequestDetail,
    ResultDetail,
    prompt_sha256,
)
from .records import ScoreView

_NO_ROUTE = "model"


def score_view(row: Row[Any]) -> ScoreView:
    return ScoreView(
        row.grader, row.grader_type, row.passed, row.value, row.explanation or "", row.error
    )


def prefix_blocks(
    conn: Connection, ids: set[int] | None, run_id: str | None = None
) -> dict[int, list[dict[str, Any]]]:
    p = schema.prefixes.c
    where = p.run_id == run_id if ids is None else p.id.in_(ids or {-1})
    return {
        row.id: orjson.loads(row.system)
        for row in conn.execute(select(p.id, p.system).where(where))
    }


_RESULT_COLUMNS = (
    schema.results.c.kind,
    schema.results.c.mode,
    schema.results.c.text,
    schema.results.c.stop_reason,
    schema.results.c.input_tokens,
    schema.results.c.output_tokens,
    schema.results.c.cache_read,
    (schema.results.c.cache_write_5m + schema.results.c.cache_write_1h).label("cache_write"),
    schema.results.c.cost_usd,
    schema.results.c.latency_ms,
    schema.results.c.error_type,
    schema.results.c.error_message,
)


def case_detail(engine: Engine, run_id: str, case_id: str) -> CaseDetail:
    c, r, x, s = schema.cases.c, schema.requests.c, schema.results.c, schema.scores.c
    with engine.connect() as conn:
        status = conn.execute(
            select(schema.runs.c.status).where(schema.runs.c.id == run_id)
        ).scalar()
        if status is None:
            raise NotFound(f"no run {run_id!r} in the store")
        found = conn.execute(
            select(c.idx, c.data).where(and_(c.run_id == run_id, c.case_id == case_id))
        ).first()
        if found is None:
            raise NotFound(f"run {run_id} has no case {case_id!r}")
        requests = conn.execute(
            select(schema.requests, *_RESULT_COLUMNS)
            .select_from(schema.requests.outerjoin(schema.results, x.request_id == r.id))
            .where(
                and_(
                    r.run_id == run_id,
                    r.case_idx == found.idx,
                    r.step.in_((GENERATE, GRADE)),
                )
            )
            .order_by(r.epoch, r.step, r.grader, r.idx)
        ).fetchall()
        prefixes = prefix_blocks(conn, {q.prefix_id for q in requests if q.prefix_id})
        score_rows = conn.execute(
            select(schema.scores)
            .where(and_(s.run_id == run_id, s.case_idx == found.idx))
            .order_by(s.epoch, s.grader)
        ).fetchall()
    details = [_request_detail(q, prefixes) for q in requests]
    epochs = sorted({d.epoch for d in details} | {row.epoch for row in score_rows})
    return CaseDetail(
        run_id=run_id,
        run_status=status,
        case_idx=found.idx,
        case=Case.from_json(found.data),
        epochs=tuple(
            _epoch_detail(
                epoch,
                [d for d in details if d.epoch == epoch],
                [score_view(row) for row in score_rows if row.epoch == epoch],
            )
            for epoch in epochs
        ),
    )


def _request_detail(row: Row[Any], prefixes: dict[int, list[dict[str, Any]]]) -> RequestDetail:
    system = prefixes.get(row.prefix_id) if row.prefix_id else None
    messages = orjson.loads(row.messages)
    result = None
    if row.kind is not None:
        error = f"{row.error_type or row.kind}: {row.error_message or ''}".strip(": ")
        result = ResultDetail(
            kind=row.kind,
            mode=row.mode,
            text=row.text or "",
            stop_reason=row.stop_reason,
            input_tokens=int(row.input_tokens or 0),
            output_tokens=int(row.output_tokens or 0),
            cache_read_tokens=int(row.cache_read or 0),
            cache_write_tokens=int(row.cache_write or 0),
            cost_usd=float(row.cost_usd or 0.0),
            latency_ms=row.latency_ms,
            error=None if row.kind == "succeeded" else error,
        )
    return RequestDetail(
        step=row.step,
        epoch=row.epoch,
        grader=row.grader,
        model=row.model,
        route=row.route or _NO_ROUTE,
        status=row.status,
        attempts=row.attempts,
        max_tokens=row.max_tokens,
        system=tuple(system) if system else None,
        messages=tuple(messages),
        prompt_sha256=prompt_sha256(system, messages),
        result=result,
    )


def _epoch_detail(
    epoch: int, requests: list[RequestDetail], scores: list[ScoreView]
) -> EpochDetail:
    status: CaseStatus
    if not scores:
        status = "pending"
    elif any(s.error for s in scores):
        status = "error"
    else:
        status = "pass" if all(s.passed is True for s in scores) else "fail"
    generation = next((q for q in requests if q.step == GENERATE), None)
    return EpochDetail(
        epoch=epoch,
        status=status,
        generation=generation,
        grading=tuple(q for q in requests if q.step == GRADE),
        scores=tuple(scores),
    )
