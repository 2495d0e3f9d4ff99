"""Run listings: the scoreboard over time (`runs`) and where open runs stand (`status`)."""

from __future__ import annotations

import time
from typing import Any

import orjson
from sqlalchemy import and_, case, func, select
from sqlalchemy.engine import Engine

from ..store import schema

RETENTION_DAYS = 29
WARN_AFTER_DAYS = 25


def list_runs(engine: Engine, suite: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Newest first: suite, when, mode, status, manifest hash, pass rate, cost."""
    runs = schema.runs.c
    query = select(schema.runs).order_by(runs.created_at.desc(), runs.id.desc()).limit(limit)
    if suite:
        query = query.where(runs.suite_name == suite)
    with engine.connect() as conn:
        rows = conn.execute(query).fetchall()
        out = []
        for row in rows:
            cost = (
                conn.execute(
                    select(func.sum(schema.results.c.cost_usd)).where(
                        schema.results.c.run_id == row.id
                    )
                ).scalar()
                or 0.0
            )
            out.append(
                {
                    "id": row.id,
                    "suite": row.suite_name,
                    "created_at": row.created_at,
                    "mode": row.mode,
                    "status": row.status,
                    "manifest_hash": row.manifest_hash,
                    "cases": row.case_count,
                    "pass_rate": _pass_rate(conn, row.id),
                    "cost_usd": float(cost),
                }
            )
    # Mark where the manifest changed between consecutive runs of the same suite (oldest first).
    previous: dict[str, str] = {}
    for item in reversed(out):
        before = previous.get(item["suite"])
        item["manifest_changed"] = before is not None and before != item["manifest_hash"]
        previous[item["suite"]] = item["manifest_hash"]
    return out


def _pass_rate(conn: Any, run_id: str) -> float | None:
    s = schema.scores.c
    per_case = (
        select(func.min(case((s.passed.is_(True), 1), else_=0)).label("ok"))
        .where(s.run_id == run_id)
        .group_by(s.case_idx, s.epoch)
        .subquery()
    )
    n, ok = conn.execute(select(func.count(), func.sum(per_case.c.ok))).one()
    return (ok or 0) / n if n else None


def open_run_ids(engine: Engine) -> list[str]:
    runs = schema.runs.c
    with engine.connect() as conn:
        return list(
            conn.execute(
                select(runs.id).where(runs.status.not_in(("done", "canceled"))).order_by(runs.id)
            ).scalars()
        )


def run_status(engine: Engine, run_id: str) -> dict[str, Any]:
    """Where a run is: status, request counts per step, its batches with ages and expiry."""
    now = time.time()
    with engine.connect() as conn:
        run = conn.execute(select(schema.runs).where(schema.runs.c.id == run_id)).one()
        r = schema.requests.c
        counts: dict[str, dict[str, int]] = {}
        for step, status, n in conn.execute(
            select(r.step, r.status, func.count())
            .where(r.run_id == run_id)
            .group_by(r.step, r.status)
        ):
            counts.setdefault(step, {})[status] = int(n)
        b = schema.batches.c
        batches = conn.execute(
            select(schema.batches)
            .where(and_(b.run_id == run_id, b.status != "abandoned"))
            .order_by(b.seq)
        ).fetchall()
    warnings = []
    items = []
    for row in batches:
        age_s = now - (row.submitted_at or row.created_at)
        retention_left = RETENTION_DAYS * 86400 - age_s
        if row.status not in ("collected",) and age_s > WARN_AFTER_DAYS * 86400:
            warnings.append(
                f"batch {row.provider_batch_id}: results are deleted "
                f"{RETENTION_DAYS} days after creation; collect now"
            )
        items.append(
            {
                "seq": row.seq,
                "step": row.step,
                "provider_batch_id": row.provider_batch_id,
                "status": row.status,
                "requests": row.request_count,
                "counts": orjson.loads(row.counts) if row.counts else {},
                "age_s": age_s,
                "expires_in_s": (row.expires_at - now) if row.expires_at else None,
                "retention_left_s": retention_left,
                "last_error": row.last_error,
            }
        )
    return {
        "id": run.id,
        "suite": run.suite_name,
        "status": run.status,
        "mode": run.mode,
        "created_at": run.created_at,
        "age_s": now - run.created_at,
        "error": run.error,
        "requests": counts,
        "batches": items,
        "warnings": warnings,
    }
