"""Recording Outcomes: results priced and stored exactly once, retryable failures re-queued.

Shared by the batch and sync paths. Idempotent: an outcome for a request that already has its
final result, or that comes from a batch the request has since left, is skipped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from sqlalchemy import and_, bindparam, select
from sqlalchemy.engine import Connection, Engine

from ..catalog.models import Catalog
from ..catalog.pricing import counterfactuals
from ..records import Outcome
from ..store import schema
from ..store.requests import parse_custom_id
from . import failpoints

_CHUNK = int(os.environ.get("EVALBATCH_INGEST_CHUNK", "1000"))  # rows per transaction
TERMINAL = frozenset({"succeeded", "errored", "expired", "canceled"})


@dataclass
class IngestCounts:
    stored: int = 0
    requeued: int = 0
    skipped: int = 0
    by_kind: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class IngestContext:
    run_id: str
    mode: str
    retries: int
    strongest: str
    catalog: Catalog


def _chunks(items: Iterable[Outcome]) -> Iterator[list[Outcome]]:
    it = iter(items)
    while chunk := list(islice(it, _CHUNK)):
        yield chunk


def record_outcomes(
    engine: Engine,
    ctx: IngestContext,
    outcomes: Iterable[Outcome],
    batch_row_id: int | None = None,
) -> IngestCounts:
    """Store outcomes in transactions of 1,000; the stream is never held whole in memory."""
    counts = IngestCounts()
    for chunk in _chunks(outcomes):
        with engine.begin() as conn:
            _record_chunk(conn, ctx, chunk, batch_row_id, counts)
        failpoints.hit("collect.mid_stream")
    return counts


def _record_chunk(
    conn: Connection,
    ctx: IngestContext,
    chunk: list[Outcome],
    batch_row_id: int | None,
    counts: IngestCounts,
) -> None:
    by_step: dict[str, dict[int, Outcome]] = {}
    for outcome in chunk:
        parsed = parse_custom_id(outcome.custom_id)
        if parsed is None or parsed[0] != ctx.run_id:
            counts.skipped += 1
            continue
        by_step.setdefault(parsed[1], {})[parsed[2]] = outcome
    now = time.time()
    result_rows: list[dict[str, Any]] = []
    updates: list[dict[str, Any]] = []
    for step, items in by_step.items():
        req = schema.requests.c
        rows = conn.execute(
            select(schema.requests).where(
                and_(req.run_id == ctx.run_id, req.step == step, req.idx.in_(list(items)))
            )
        )
        for row in rows:
            outcome = items[row.idx]
            if row.status in TERMINAL or (
                batch_row_id is not None and row.batch_id != batch_row_id
            ):
                counts.skipped += 1
                continue
            counts.by_kind[outcome.kind] = counts.by_kind.get(outcome.kind, 0) + 1
            if outcome.kind != "succeeded" and outcome.retryable and row.attempts <= ctx.retries:
                updates.append(_update(row.id, "pending", _error_text(outcome)))
                counts.requeued += 1
                continue
            result_rows.append(_result_row(ctx, row, outcome, batch_row_id, now))
            updates.append(_update(row.id, outcome.kind, _error_text(outcome)))
            counts.stored += 1
    if result_rows:
        conn.execute(schema.results.insert(), result_rows)
    if updates:
        conn.execute(
            schema.requests.update()
            .where(schema.requests.c.id == bindparam("rid"))
            .values(status=bindparam("new_status"), last_error=bindparam("err")),
            updates,
        )


def _update(request_id: int, status: str, error: str | None) -> dict[str, Any]:
    return {"rid": request_id, "new_status": status, "err": error}


def _error_text(outcome: Outcome) -> str | None:
    if outcome.kind == "succeeded":
        return None
    if outcome.error_type:
        return f"{outcome.error_type}: {outcome.error_message or ''}".strip()
    return outcome.kind


def _result_row(
    ctx: IngestContext, row: Any, outcome: Outcome, batch_row_id: int | None, now: float
) -> dict[str, Any]:
    usage = outcome.usage
    model = outcome.model if outcome.kind == "succeeded" and outcome.model else row.model
    batch = ctx.mode == "batch"
    if outcome.kind == "succeeded":
        cf = counterfactuals(
            usage, row.model, batch=batch, strongest=ctx.strongest, catalog=ctx.catalog
        )
        costs = (cf.actual, cf.sync, cf.no_cache, cf.no_routing, cf.naive)
    else:  # errored, expired and canceled items are not billed
        costs = (0.0, 0.0, 0.0, 0.0, 0.0)
    return {
        "request_id": row.id,
        "run_id": ctx.run_id,
        "step": row.step,
        "case_id": row.case_id,
        "epoch": row.epoch,
        "grader": row.grader,
        "model": model,
        "mode": ctx.mode,
        "kind": outcome.kind,
        "text": outcome.text if outcome.kind == "succeeded" else None,
        "stop_reason": outcome.stop_reason,
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cache_write_5m": usage.cache_write_5m,
        "cache_write_1h": usage.cache_write_1h,
        "cache_read": usage.cache_read,
        "service_tier": usage.service_tier,
        "cost_usd": costs[0],
        "sync_cost_usd": costs[1],
        "nocache_cost_usd": costs[2],
        "norouting_cost_usd": costs[3],
        "naive_cost_usd": costs[4],
        "route": row.route,
        "error_type": outcome.error_type,
        "error_message": outcome.error_message,
        "latency_ms": outcome.latency_ms,
        "batch_id": batch_row_id,
        "created_at": now,
    }
