"""The rows of `export`: one per case x epoch x grader score, with the case, the generation
(its rendered prompt's hash, output, tokens and cost) and the grader's own request, streamed a
window of cases at a time so memory stays flat at any size."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import orjson
from sqlalchemy import String, and_, func, literal, select
from sqlalchemy.engine import Engine, Row
from sqlalchemy.sql import Select

from ..records import GENERATE, GRADE, Case
from . import schema
from .browse_case import prefix_blocks
from .browse_records import ExportRow, prompt_sha256

_NO_ROUTE = "model"
_EXPORT_CASES = 500  # cases per read: a window's rows are cases x epochs x graders


def export_rows(engine: Engine, run_id: str) -> Iterator[ExportRow]:
    """Every case x epoch x grader score with its case, generation and grading, in case
    order, read a window of cases at a time (memory stays flat at any size)."""
    c = schema.cases.c
    with engine.connect() as conn:
        last = conn.execute(select(func.max(c.idx)).where(c.run_id == run_id)).scalar()
        prefixes = prefix_blocks(conn, None, run_id)
    if last is None:
        return
    for start in range(0, int(last) + 1, _EXPORT_CASES):
        with engine.connect() as conn:
            rows = conn.execute(_export_query(run_id, start, start + _EXPORT_CASES)).fetchall()
        hashes: dict[tuple[int, int], str] = {}
        for row in rows:
            yield _export_row(run_id, row, prefixes, hashes)


def _export_query(run_id: str, start: int, stop: int) -> Select[Any]:
    s, c = schema.scores.alias("s"), schema.cases.alias("c")
    g, gr = schema.requests.alias("g"), schema.results.alias("gr")
    q, qr = schema.requests.alias("q"), schema.results.alias("qr")
    same_slot = [g.c.run_id == s.c.run_id, g.c.case_idx == s.c.case_idx, g.c.epoch == s.c.epoch]
    graded = [q.c.run_id == s.c.run_id, q.c.case_idx == s.c.case_idx, q.c.epoch == s.c.epoch]
    return (
        select(
            s.c.case_idx,
            s.c.case_id,
            s.c.epoch,
            s.c.grader,
            s.c.grader_type,
            s.c.passed,
            s.c.value,
            s.c.explanation,
            s.c.error,
            c.c.data,
            g.c.messages,
            g.c.prefix_id,
            g.c.model,
            func.coalesce(g.c.route, literal(_NO_ROUTE, String)).label("route"),
            gr.c.kind,
            gr.c.text,
            gr.c.error_message,
            gr.c.input_tokens,
            gr.c.output_tokens,
            gr.c.cache_read,
            (gr.c.cache_write_5m + gr.c.cache_write_1h).label("cache_write"),
            gr.c.cost_usd,
            q.c.model.label("grade_model"),
            qr.c.input_tokens.label("grade_input_tokens"),
            qr.c.output_tokens.label("grade_output_tokens"),
            qr.c.cost_usd.label("grade_cost_usd"),
        )
        .select_from(
            s.join(c, and_(c.c.run_id == s.c.run_id, c.c.idx == s.c.case_idx))
            .outerjoin(g, and_(*same_slot, g.c.step == GENERATE))
            .outerjoin(gr, gr.c.request_id == g.c.id)
            .outerjoin(q, and_(*graded, q.c.step == GRADE, q.c.grader == s.c.grader))
            .outerjoin(qr, qr.c.request_id == q.c.id)
        )
        .where(and_(s.c.run_id == run_id, s.c.case_idx >= start, s.c.case_idx < stop))
        .order_by(s.c.case_idx, s.c.epoch, s.c.grader)
    )


def _export_row(
    run_id: str,
    row: Row[Any],
    prefixes: dict[int, list[dict[str, Any]]],
    hashes: dict[tuple[int, int], str],
) -> ExportRow:
    case_ = Case.from_json(row.data)
    digest = None
    if row.messages is not None:
        key = (row.case_idx, row.epoch)  # the generation each grader's row shares
        if key not in hashes:
            system = prefixes.get(row.prefix_id) if row.prefix_id else None
            hashes[key] = prompt_sha256(system, orjson.loads(row.messages))
        digest = hashes[key]
    verdict: Literal["pass", "fail", "error"] = (
        "error" if row.error is not None else ("pass" if row.passed is True else "fail")
    )
    succeeded = row.kind == "succeeded"
    return ExportRow(
        run_id=run_id,
        case_id=row.case_id,
        epoch=row.epoch,
        grader=row.grader,
        grader_type=row.grader_type,
        input=case_.shown_input(),
        target=case_.target,
        tags=case_.tags,
        prompt_sha256=digest,
        output=(row.text or "") if succeeded else None,
        outcome=row.kind,
        model=row.model,
        route=row.route if row.messages is not None else None,
        verdict=verdict,
        passed=row.passed,
        score=row.value,
        explanation=row.explanation or "",
        error=row.error,
        input_tokens=int(row.input_tokens or 0),
        output_tokens=int(row.output_tokens or 0),
        cache_read_tokens=int(row.cache_read or 0),
        cache_write_tokens=int(row.cache_write or 0),
        cost_usd=float(row.cost_usd or 0.0),
        grade_model=row.grade_model,
        grade_input_tokens=row.grade_input_tokens,
        grade_output_tokens=row.grade_output_tokens,
        grade_cost_usd=None if row.grade_cost_usd is None else float(row.grade_cost_usd),
    )
