"""The sync path: the same Requests through the async client, bounded concurrency, results
stored as they arrive, retryable failures sent again with adaptive slowing on 429/529."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..plan.requests import stored_body
from ..providers.base import Provider
from ..records import Outcome, Step, custom_id
from ..store.db import Store
from .ingest import IngestContext, record_outcomes

_PAGE = 2000  # requests claimed and in memory at once
_FLUSH_EVERY = 50
_SLOW_ERRORS = ("rate_limit_error", "overloaded_error", "http_429", "http_529")


@dataclass
class SyncPath:
    store: Store
    provider: Provider
    ingest: IngestContext
    ttl: str | None
    concurrency: int
    on_done: Callable[[int], None] = lambda n: None

    @property
    def run_id(self) -> str:
        return self.ingest.run_id

    def run(self, step: Step) -> None:
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

    def _release_stale(self, step: Step) -> None:
        self.store.requests.release_stale_sync(self.run_id, step)

    def _claim(self, step: Step) -> tuple[list[tuple[str, dict[str, Any]]], bool]:
        """The next page of pending requests, marked queued; and whether any is a retry."""
        rows = self.store.requests.claim_pending(self.run_id, step, _PAGE)
        prefixes = self.store.requests.prefixes(self.run_id) if rows else {}
        items = [
            (
                custom_id(self.run_id, step, row.idx),
                stored_body(row, prefixes, self.ttl, self.ingest.catalog),
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
        counts = record_outcomes(self.store, self.ingest, batch)
        self.on_done(counts.stored)
