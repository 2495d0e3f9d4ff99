"""Case-level rows of a run for the file reports: input, target, output, each grader's verdict."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import and_, select
from sqlalchemy.engine import Engine

from ..store import schema


@dataclass
class CaseRow:
    case_id: str
    epoch: int
    input: Any
    target: Any
    output: str
    model: str
    scores: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if any(s["error"] for s in self.scores):
            return "error"
        return "pass" if all(s["passed"] for s in self.scores) else "fail"


def iter_case_rows(engine: Engine, run_id: str) -> Iterator[CaseRow]:
    """Every case and epoch with its output and scores, in case order."""
    c, r, res, s = schema.cases.c, schema.requests.c, schema.results.c, schema.scores.c
    with engine.connect() as conn:
        outputs = {
            (row.case_idx, row.epoch): (row.text or "", row.model, row.kind, row.error_message)
            for row in conn.execute(
                select(r.case_idx, r.epoch, res.text, res.model, res.kind, res.error_message)
                .select_from(schema.requests.join(schema.results, res.request_id == r.id))
                .where(and_(r.run_id == run_id, r.step == "generate"))
            )
        }
        scores: dict[tuple[int, int], list[dict[str, Any]]] = {}
        for row in conn.execute(
            select(schema.scores).where(s.run_id == run_id).order_by(s.case_idx, s.epoch, s.grader)
        ):
            scores.setdefault((row.case_idx, row.epoch), []).append(
                {
                    "grader": row.grader,
                    "type": row.grader_type,
                    "passed": row.passed,
                    "value": row.value,
                    "explanation": row.explanation or "",
                    "error": row.error,
                }
            )
        for case in conn.execute(
            select(c.idx, c.case_id, c.data).where(c.run_id == run_id).order_by(c.idx)
        ):
            data = orjson.loads(case.data)
            epochs = sorted({e for (i, e) in scores if i == case.idx}) or [0]
            for epoch in epochs:
                text, model, kind, error = outputs.get((case.idx, epoch), ("", "", "", None))
                shown = text if kind == "succeeded" else f"[{kind or 'no result'}] {error or ''}"
                yield CaseRow(
                    case.case_id,
                    epoch,
                    data.get("input") if data.get("input") is not None else data.get("vars"),
                    data.get("target"),
                    shown,
                    model or "",
                    scores.get((case.idx, epoch), []),
                )
