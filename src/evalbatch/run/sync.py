"""The sync path: the same Requests through the async client, bounded concurrency, results
stored as they arrive, retryable failures sent again with adaptive slowing on 429/529."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, select, update
from sqlalchemy.engine import Engine

from ..providers.base import Provider
from ..records import Outcome
from ..store import schema
from ..store.requests import build_params, custom_id, load_prefixes
from .ingest import IngestContext, record_outcomes

_PAGE = 2000  # requests claimed and in memory at once
_FLUSH_EVERY = 50
_SLOW_ERRORS = ("rate_limit_error", "overloaded_error", "http_429", "http_529")


@dataclass
class SyncPath:
    engine: Engine
    provider: Provider
    ingest: IngestContext
    ttl: str | None
    concurrency: int
    on_done: Callable[[int], None] = lambda n: None

    @property
    def run_id(self) -> str:
        return self.ingest.run_id

    def pending_count(self, step: str) -> int:
        with self.engine.connect() as conn:
            r = schema.requests.c
            return len(
                conn.execute(
                    select(r.id).where(
                        and_(
                            r.run_id == self.run_id,
                            r.step == step,
                            r.status.in_(("pending", "queued")),
                        )
                    )
                ).fetchall()
            )

    def run(self, step: str) -> None:
        """Send every pending request of ``step``; rounds repeat while retries are due."""
        self._release_stale(step)
        retry_round = 0
        while True:
            rows, retrying = self._claim(step)
            if not rows:
                return
            if retrying:  # these failed before: back off before sending them again
                retry_round += 1
                time.sleep(min(2.0**retry_round, 30.0))
            asyncio.run(self._send_all(rows))

    def _release_stale(self, step: str) -> None:
        """Queued sync requests with no batch belong to a process that died: send again."""
        with self.engine.begin() as conn:
            r = schema.requests.c
            conn.execute(
                update(schema.requests)
                .where(
                    and_(
                        r.run_id == self.run_id,
                        r.step == step,
                        r.status == "queued",
                        r.batch_id.is_(None),
                    )
                )
                .values(status="pending")
            )

    def _claim(self, step: str) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
        """The next page of pending requests, marked queued; and whether any is a retry.
        Fresh requests come first, so retries are sent together after a back-off."""
        with self.engine.begin() as conn:
            prefixes = load_prefixes(conn, self.run_id)
            r = schema.requests.c
            rows = conn.execute(
                select(schema.requests)
                .where(and_(r.run_id == self.run_id, r.step == step, r.status == "pending"))
                .order_by(r.attempts, r.prefix_id, r.idx)
                .limit(_PAGE)
            ).fetchall()
            ids = [row.id for row in rows]
            for start in range(0, len(ids), 5000):
                conn.execute(
                    update(schema.requests)
                    .where(r.id.in_(ids[start : start + 5000]))
                    .values(status="queued", attempts=r.attempts + 1)
                )
        items = [
            (
                custom_id(self.run_id, step, row.idx),
                build_params(row, prefixes, self.ttl, self.ingest.catalog),
            )
            for row in rows
        ]
        return items, any(row.attempts for row in rows)

    async def _send_all(self, items: list[tuple[str, dict[str, Any]]]) -> None:
        limit = max(1, self.concurrency)
        gate = asyncio.Semaphore(limit)
        buffer: list[Outcome] = []
        slow = {"until": 0.0}

        async def one(cid: str, params: dict[str, Any]) -> None:
            async with gate:
                wait = slow["until"] - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                outcome = await self.provider.complete(cid, params)
            if outcome.error_type in _SLOW_ERRORS:
                # Adaptive slowing: everyone waits a little after the provider pushes back.
                slow["until"] = max(slow["until"], time.monotonic() + 1.0)
            buffer.append(outcome)
            if len(buffer) >= _FLUSH_EVERY:
                self._flush(buffer)

        try:
            await asyncio.gather(*(one(cid, params) for cid, params in items))
        finally:
            self._flush(buffer)
            aclose = getattr(self.provider, "aclose", None)
            if aclose is not None:
                await aclose()

    def _flush(self, buffer: list[Outcome]) -> None:
        if not buffer:
            return
        batch = list(buffer)
        buffer.clear()
        counts = record_outcomes(self.engine, self.ingest, batch)
        self.on_done(counts.stored)
