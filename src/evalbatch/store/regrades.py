"""Runs that reuse another run's generations (regrade, calibration samples): the new run, its
cases and a copy of the source's generate requests and results written in one transaction.

The copied results keep the outputs, their route and model, and cost nothing in the new run's
ledger (no tokens, no dollars): the new run did not pay for them. The copied requests point at
no prefix and no batch, so the new run's cache and batch tables show only its own traffic.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, and_, func, literal, select
from sqlalchemy.engine import Connection
from sqlalchemy.sql import ColumnElement

from ..records import FINAL_REQUEST, GENERATE
from . import schema
from .records import NewRun
from .runs import insert_run_row

_IDX_CHUNK = 500  # case indexes per statement (SQLite's bound-parameter limit)
_ZEROED = (
    "input_tokens",
    "output_tokens",
    "cache_write_5m",
    "cache_write_1h",
    "cache_read",
    "cost_usd",
    "sync_cost_usd",
    "nocache_cost_usd",
    "norouting_cost_usd",
    "naive_cost_usd",
)


class Regrades:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def unfinished_generations(self, run_id: str) -> int:
        """Generate requests of the run without a final result (pending, queued)."""
        r = schema.requests.c
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        and_(
                            r.run_id == run_id,
                            r.step == GENERATE,
                            r.status.not_in(tuple(FINAL_REQUEST)),
                        )
                    )
                ).scalar()
                or 0
            )

    def create(self, run: NewRun, source_id: str, case_idxs: Sequence[int] | None = None) -> None:
        """Write ``run`` with the cases of ``source_id`` (all, or those at ``case_idxs``) and a
        copy of their generations; its generate step is then complete, so the engine's next
        advance plans grading. All of it or nothing."""
        now = time.time()
        chunks: list[Sequence[int] | None] = (
            [None]
            if case_idxs is None
            else [case_idxs[i : i + _IDX_CHUNK] for i in range(0, len(case_idxs), _IDX_CHUNK)]
        )
        with self.engine.begin() as conn:
            insert_run_row(conn, run, now)
            for chunk in chunks:
                _copy_cases(conn, run.id, source_id, chunk)
                _copy_requests(conn, run.id, source_id, chunk)
            _copy_results(conn, run.id, source_id, now)
            conn.execute(
                schema.steps.insert().values(
                    run_id=run.id, name=GENERATE, status="active", planned_at=now
                )
            )


def _only(column: Any, idxs: Sequence[int] | None) -> ColumnElement[bool]:
    return column.in_(list(idxs)) if idxs is not None else literal(True)


def _copy_cases(conn: Connection, new_id: str, source_id: str, idxs: Sequence[int] | None) -> None:
    c = schema.cases.c
    query = select(literal(new_id), c.idx, c.case_id, c.data).where(
        and_(c.run_id == source_id, _only(c.idx, idxs))
    )
    conn.execute(schema.cases.insert().from_select(["run_id", "idx", "case_id", "data"], query))


def _copy_requests(
    conn: Connection, new_id: str, source_id: str, idxs: Sequence[int] | None
) -> None:
    r = schema.requests.c
    kept = (
        "step",
        "idx",
        "case_idx",
        "case_id",
        "epoch",
        "grader",
        "model",
        "route",
        "messages",
        "max_tokens",
        "extra",
        "input_estimate",
        "status",
        "attempts",
        "last_error",
    )
    query = select(literal(new_id), *(r[name] for name in kept)).where(
        and_(r.run_id == source_id, r.step == GENERATE, _only(r.case_idx, idxs))
    )
    conn.execute(schema.requests.insert().from_select(["run_id", *kept], query))


def _copy_results(conn: Connection, new_id: str, source_id: str, now: float) -> None:
    """Each copied request gets its source request's result, priced at zero."""
    new, old, res = (
        schema.requests.alias("new_req"),
        schema.requests.alias("old_req"),
        schema.results.c,
    )
    kept = (
        "step",
        "case_id",
        "epoch",
        "grader",
        "model",
        "mode",
        "kind",
        "text",
        "stop_reason",
        "service_tier",
        "route",
        "error_type",
        "error_message",
        "latency_ms",
    )
    query = (
        select(
            new.c.id,
            literal(new_id),
            *(res[name] for name in kept),
            *(literal(0) for _ in _ZEROED),
            literal(now),
        )
        .select_from(
            new.join(
                old,
                and_(
                    old.c.run_id == source_id,
                    old.c.step == GENERATE,
                    old.c.idx == new.c.idx,
                ),
            ).join(schema.results, res.request_id == old.c.id)
        )
        .where(and_(new.c.run_id == new_id, new.c.step == GENERATE))
    )
    columns = ["request_id", "run_id", *kept, *_ZEROED, "created_at"]
    conn.execute(schema.results.insert().from_select(columns, query))
