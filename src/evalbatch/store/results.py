"""Results: every request's final Outcome stored exactly once (idempotent under repeated or
stale streams), and the reads that build on results (spend, generations, outputs)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from sqlalchemy import Engine, and_, func, select
from sqlalchemy.engine import Connection

from ..records import FINAL_REQUEST, GENERATE, Outcome, Step, parse_custom_id
from . import schema
from .bulk import insert_rows, update_by_id
from .records import Disposition, Generated, IngestCounts, StepResult, StoredRequest
from .requests import REQUEST_COLUMNS, stored_request

Decide = Callable[[StoredRequest, Outcome], Disposition]


class Results:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record_chunk(
        self,
        run_id: str,
        chunk: Sequence[Outcome],
        batch_id: int | None,
        decide: Decide,
        counts: IngestCounts,
    ) -> None:
        """Store one chunk of outcomes in one transaction. An outcome is skipped when its
        request already has its final result, or when it comes from a batch the request has
        since left; otherwise ``decide`` says what it means (stored, or sent again)."""
        by_step: dict[Step, dict[int, Outcome]] = {}
        for outcome in chunk:
            parsed = parse_custom_id(outcome.custom_id)
            if parsed is None or parsed[0] != run_id:
                counts.skipped += 1
                continue
            by_step.setdefault(parsed[1], {})[parsed[2]] = outcome
        with self.engine.begin() as conn:
            self._record(conn, run_id, by_step, batch_id, decide, counts)

    def _record(
        self,
        conn: Connection,
        run_id: str,
        by_step: dict[Step, dict[int, Outcome]],
        batch_id: int | None,
        decide: Decide,
        counts: IngestCounts,
    ) -> None:
        now = time.time()
        result_rows: list[dict[str, Any]] = []
        updates: list[tuple[str, str | None, int]] = []
        r = schema.requests.c
        for step, items in by_step.items():
            rows = conn.execute(
                select(*REQUEST_COLUMNS).where(
                    and_(r.run_id == run_id, r.step == step, r.idx.in_(list(items)))
                )
            )
            for row in rows:
                request = stored_request(row)
                outcome = items[request.idx]
                if request.status in FINAL_REQUEST or (
                    batch_id is not None and request.batch_id != batch_id
                ):
                    counts.skipped += 1
                    continue
                counts.by_kind[outcome.kind] = counts.by_kind.get(outcome.kind, 0) + 1
                disposition = decide(request, outcome)
                updates.append((disposition.status, disposition.error, request.id))
                if disposition.result is None:
                    counts.requeued += 1
                    continue
                result_rows.append(
                    {
                        **disposition.result.__dict__,
                        "request_id": request.id,
                        "run_id": run_id,
                        "step": request.step,
                        "case_id": request.case_id,
                        "epoch": request.epoch,
                        "grader": request.grader,
                        "route": request.route,
                        "batch_id": batch_id,
                        "created_at": now,
                    }
                )
                counts.stored += 1
        insert_rows(conn, schema.results, result_rows)
        update_by_id(conn, schema.requests, updates, ("status", "last_error"))

    # -- reads --------------------------------------------------------------------------------
    def count(self, run_id: str) -> int:
        """How many results the run has stored (each request's final outcome, once)."""
        res = schema.results.c
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).where(res.run_id == run_id)).scalar() or 0)

    def spent(self, run_id: str) -> float:
        res = schema.results.c
        with self.engine.connect() as conn:
            return float(
                conn.execute(
                    select(func.coalesce(func.sum(res.cost_usd), 0.0)).where(res.run_id == run_id)
                ).scalar()
                or 0.0
            )

    def iter_generated(self, run_id: str) -> Iterator[Generated]:
        """The run's successful generations in request order, streamed."""
        r, res, c = schema.requests.c, schema.results.c, schema.cases.c
        query = (
            select(r.case_idx, r.epoch, res.text, c.data)
            .select_from(
                schema.requests.join(schema.results, res.request_id == r.id).join(
                    schema.cases, and_(c.run_id == r.run_id, c.idx == r.case_idx)
                )
            )
            .where(and_(r.run_id == run_id, r.step == GENERATE, res.kind == "succeeded"))
            .order_by(r.idx)
        )
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=1000).execute(query):
                yield Generated(row.case_idx, row.data, row.epoch, row.text or "")

    def step_results(
        self, run_id: str, step: Step, lo: int, hi: int
    ) -> dict[tuple[int, int, str | None], StepResult]:
        """(case idx, epoch, grader) -> the request's status and result, for cases lo..hi."""
        r, res = schema.requests.c, schema.results.c
        with self.engine.connect() as conn:
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
                )
                .select_from(schema.requests.outerjoin(schema.results, res.request_id == r.id))
                .where(and_(r.run_id == run_id, r.step == step, r.case_idx.between(lo, hi)))
            )
            return {
                (row.case_idx, row.epoch, row.grader): StepResult(
                    row.status,
                    row.last_error,
                    row.kind,
                    row.text,
                    row.error_type,
                    row.error_message,
                )
                for row in rows
            }

    def outputs(
        self, run_id: str, keys: set[tuple[str, int]] | None = None
    ) -> dict[tuple[str, int], str]:
        """(case id, epoch) -> generated text (all of them, or only ``keys``)."""
        res = schema.results.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(res.case_id, res.epoch, res.text).where(
                    and_(res.run_id == run_id, res.step == GENERATE, res.kind == "succeeded")
                )
            )
            return {
                (x.case_id, x.epoch): x.text or ""
                for x in rows
                if keys is None or (x.case_id, x.epoch) in keys
            }

    def token_history(self, run_id: str) -> dict[tuple[str, str, int, str | None], tuple[int, str]]:
        """(step, case id, epoch, grader) -> (output tokens, text) of a run's results."""
        res = schema.results.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                select(
                    res.step, res.case_id, res.epoch, res.grader, res.output_tokens, res.text
                ).where(and_(res.run_id == run_id, res.kind == "succeeded"))
            )
            return {
                (r.step, r.case_id, r.epoch, r.grader): (r.output_tokens, r.text or "")
                for r in rows
            }
