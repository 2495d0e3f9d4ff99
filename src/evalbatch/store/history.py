"""Run listings: the scoreboard over time (`runs`) and where a run stands (`status`)."""

from __future__ import annotations

import time
from dataclasses import replace

import orjson
from sqlalchemy import Engine, and_, func, select

from . import schema
from .records import BatchView, RunListing, RunState
from .reports import case_pass

RETENTION_DAYS = 29
WARN_AFTER_DAYS = 25


class History:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def list_runs(self, suite: str | None = None, limit: int = 50) -> list[RunListing]:
        """Newest first; ``manifest_changed`` marks where a suite's manifest moved."""
        runs, res = schema.runs.c, schema.results.c
        query = select(schema.runs).order_by(runs.created_at.desc(), runs.id.desc()).limit(limit)
        if suite:
            query = query.where(runs.suite_name == suite)
        out: list[RunListing] = []
        with self.engine.connect() as conn:
            for row in conn.execute(query).fetchall():
                cost = conn.execute(
                    select(func.coalesce(func.sum(res.cost_usd), 0.0)).where(res.run_id == row.id)
                ).scalar()
                scored, passed = case_pass(conn, row.id)
                out.append(
                    RunListing(
                        id=row.id,
                        suite=row.suite_name,
                        created_at=row.created_at,
                        mode=row.mode,
                        status=row.status,
                        manifest_hash=row.manifest_hash,
                        cases=row.case_count,
                        pass_rate=passed / scored if scored else None,
                        cost_usd=float(cost or 0.0),
                    )
                )
        # Mark where the manifest changed between consecutive runs of a suite (oldest first).
        previous: dict[str, str] = {}
        for i in reversed(range(len(out))):
            before = previous.get(out[i].suite)
            if before is not None and before != out[i].manifest_hash:
                out[i] = replace(out[i], manifest_changed=True)
            previous[out[i].suite] = out[i].manifest_hash
        return out

    def run_state(self, run_id: str) -> RunState:
        """Where a run is: status, request counts per step, its batches with ages and expiry."""
        now = time.time()
        r, b = schema.requests.c, schema.batches.c
        with self.engine.connect() as conn:
            run = conn.execute(select(schema.runs).where(schema.runs.c.id == run_id)).one()
            counts: dict[str, dict[str, int]] = {}
            for step, status, n in conn.execute(
                select(r.step, r.status, func.count())
                .where(r.run_id == run_id)
                .group_by(r.step, r.status)
            ):
                counts.setdefault(step, {})[status] = int(n)
            batches = conn.execute(
                select(schema.batches)
                .where(and_(b.run_id == run_id, b.status != "abandoned"))
                .order_by(b.seq)
            ).fetchall()
        warnings = []
        views = []
        for row in batches:
            age_s = now - (row.submitted_at or row.created_at)
            if row.status != "collected" and age_s > WARN_AFTER_DAYS * 86400:
                warnings.append(
                    f"batch {row.provider_batch_id}: results are deleted "
                    f"{RETENTION_DAYS} days after creation; collect now"
                )
            views.append(
                BatchView(
                    seq=row.seq,
                    step=row.step,
                    provider_batch_id=row.provider_batch_id,
                    status=row.status,
                    requests=row.request_count,
                    counts=orjson.loads(row.counts) if row.counts else {},
                    age_s=age_s,
                    expires_in_s=(row.expires_at - now) if row.expires_at else None,
                    retention_left_s=RETENTION_DAYS * 86400 - age_s,
                    last_error=row.last_error,
                )
            )
        return RunState(
            id=run.id,
            suite=run.suite_name,
            status=run.status,
            mode=run.mode,
            created_at=run.created_at,
            age_s=now - run.created_at,
            error=run.error,
            requests=counts,
            batches=views,
            warnings=warnings,
        )
