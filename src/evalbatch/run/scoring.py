"""Scoring: every case, epoch and grader gets a Score, from the stored outputs and verdicts.

Pages through the run's cases so memory stays flat; re-scoring replaces the run's scores.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import and_, delete, select
from sqlalchemy.engine import Connection, Engine

from ..graders.base import Grader, ModelGrader
from ..records import Case, Score
from ..store import schema

_PAGE = 1000


def case_from_row(data: str) -> Case:
    raw = orjson.loads(data)
    raw["tags"] = tuple(raw.get("tags") or ())
    return Case(**raw)


def score_run(engine: Engine, run_id: str, graders: Sequence[Grader], epochs: int) -> int:
    """Write the run's scores; returns how many."""
    written = 0
    with engine.begin() as conn:
        conn.execute(delete(schema.scores).where(schema.scores.c.run_id == run_id))
        start = 0
        while True:
            cases = conn.execute(
                select(schema.cases.c.idx, schema.cases.c.data)
                .where(and_(schema.cases.c.run_id == run_id, schema.cases.c.idx >= start))
                .order_by(schema.cases.c.idx)
                .limit(_PAGE)
            ).fetchall()
            if not cases:
                return written
            lo, hi = cases[0].idx, cases[-1].idx
            outputs = _results(conn, run_id, "generate", lo, hi)
            verdicts = _results(conn, run_id, "grade", lo, hi)
            rows = []
            for row in cases:
                case = case_from_row(row.data)
                for epoch in range(epochs):
                    generated = outputs.get((row.idx, epoch, None))
                    for grader in graders:
                        verdict = verdicts.get((row.idx, epoch, grader.name))
                        score = _score(grader, case, generated, verdict)
                        rows.append(_score_row(run_id, row.idx, epoch, case.id, grader, score))
            conn.execute(schema.scores.insert(), rows)
            written += len(rows)
            start = hi + 1


def _results(conn: Connection, run_id: str, step: str, lo: int, hi: int) -> dict[tuple, Any]:
    r, res = schema.requests.c, schema.results.c
    rows = conn.execute(
        select(
            r.case_idx,
            r.epoch,
            r.grader,
            r.status,
            r.last_error,
            res.kind,
            res.text,
            res.error_type,
            res.error_message,
            res.stop_reason,
        )
        .select_from(schema.requests.outerjoin(schema.results, schema.results.c.request_id == r.id))
        .where(and_(r.run_id == run_id, r.step == step, r.case_idx.between(lo, hi)))
    )
    return {(row.case_idx, row.epoch, row.grader): row for row in rows}


def _failure(row: Any) -> str | None:
    if row is None:
        return "no result"
    if row.kind == "succeeded":
        return None
    detail = row.error_message or row.last_error or ""
    return f"{row.kind}{' (' + row.error_type + ')' if row.error_type else ''}: {detail}".strip(
        ": "
    )


def _score(grader: Grader, case: Case, generated: Any, verdict: Any) -> Score:
    failed = _failure(generated)
    if failed is not None:
        return Score(grader=grader.name, error=f"generation {failed}")
    output = generated.text or ""
    if isinstance(grader, ModelGrader):
        failed = _failure(verdict)
        if failed is not None:
            return Score(grader=grader.name, error=f"grading {failed}")
        return grader.parse_verdict(verdict.text or "", case)
    try:
        return grader.grade(output, case)
    except Exception as exc:  # a grader bug is a recorded grader error, never a crash
        return Score(grader=grader.name, error=f"{exc.__class__.__name__}: {exc}")


def _score_row(
    run_id: str, idx: int, epoch: int, case_id: str, grader: Grader, score: Score
) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "case_idx": idx,
        "epoch": epoch,
        "grader": grader.name,
        "case_id": case_id,
        "grader_type": grader.kind,
        "passed": score.passed,
        "value": score.value,
        "explanation": score.explanation,
        "error": score.error,
    }
