"""The sync path: the same Requests through the async client, paced per model from the
provider's rate-limit headers and retry-after, with adaptive concurrency; results stored as
they arrive.

What happens to a failure: a rate limit (429, 529 overloaded) waits and is sent again for as
long as the patience allows, without using a try; a transient failure (5xx, transport) is sent
again at once a couple of times, then goes back to pending as a used try; an auth or endpoint
failure stops the step at once (every further request would fail the same way).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import RunNeedsAttention
from ..plan.requests import stored_body
from ..records import Outcome, Step, custom_id
from ..store.db import Store
from ..store.records import IngestCounts
from .ingest import IngestContext, record_outcomes
from .pacing import AdaptiveLimit, ModelPacer
from .providers import ProviderPool

_PAGE = 2000  # requests claimed and in memory at once
_FLUSH_EVERY = 50
_QUICK_RETRIES = 2  # transient failures sent again at once before they use a try
# A step keeps waiting out rate limits while something got through within this many seconds.
RATE_LIMIT_PATIENCE_S = float(os.environ.get("EVALBATCH_RATE_LIMIT_PATIENCE_S", "900"))

# (custom_id, body, input tokens estimate)
Item = tuple[str, dict[str, Any], int]


@dataclass
class _Round:
    """What one page's workers share."""

    limit: AdaptiveLimit
    buffer: list[Outcome] = field(default_factory=list)
    fatal: Outcome | None = None


@dataclass
class SyncPath:
    store: Store
    providers: ProviderPool  # each request goes to its model's provider
    ingest: IngestContext
    ttl: str | None
    concurrency: int
    on_done: Callable[[IngestCounts], None] = lambda counts: None
    pacers: dict[str, ModelPacer] = field(default_factory=dict)
    last_success: float = field(default_factory=time.monotonic)

    @property
    def run_id(self) -> str:
        return self.ingest.run_id

    def run(self, step: Step) -> None:
        """Send every pending request of ``step`` that has tries left. Raises RunNeedsAttention
        at once when the provider rejects the key or the endpoint."""
        self.store.requests.release_stale_sync(self.run_id, step)
        asyncio.run(self._rounds(step))

    async def _rounds(self, step: Step) -> None:
        retry_round = 0
        try:
            while True:
                items, retrying = self._claim(step)
                if not items:
                    return
                if retrying:  # these failed before: back off before sending them again
                    retry_round += 1
                    await asyncio.sleep(min(2.0**retry_round, 30.0))
                await self._send_page(items)
        finally:
            await self.providers.aclose()

    def _claim(self, step: Step) -> tuple[list[Item], bool]:
        """The next page of pending requests, marked queued; and whether any is a retry."""
        rows = self.store.requests.claim_pending(self.run_id, step, _PAGE, self.ingest.retries)
        prefixes = self.store.requests.prefixes(self.run_id) if rows else {}
        items = [
            (
                custom_id(self.run_id, step, row.idx),
                stored_body(row, prefixes, self.ttl, self.ingest.catalog),
                row.input_estimate,
            )
            for row in rows
        ]
        return items, any(row.attempts for row in rows)

    async def _send_page(self, items: list[Item]) -> None:
        shared = _Round(AdaptiveLimit(self.concurrency))
        try:
            await asyncio.gather(*(self._send(item, shared) for item in items))
        finally:
            self._flush(shared.buffer)
        if shared.fatal is not None:
            raise RunNeedsAttention(
                f"{shared.fatal.error_message} — nothing more was sent; the requests are kept "
                f"pending. Fix it, then: evalbatch collect {self.run_id}"
            )

    async def _send(self, item: Item, shared: _Round) -> None:
        cid, body, estimate = item
        pacer = self.pacers.setdefault(str(body["model"]), ModelPacer())
        quick = 0
        while shared.fatal is None:
            async with shared.limit.slot():
                await pacer.acquire(estimate)
                if shared.fatal is not None:
                    return
                outcome = await self.providers.for_model(str(body["model"])).complete(cid, body)
            pacer.observe(outcome.limits)
            if outcome.error_class == "rate_limit" and self._patient():
                shared.limit.refused()
                pacer.pause(outcome.retry_after if outcome.retry_after is not None else 1.0)
                continue
            if outcome.error_class in ("auth", "endpoint"):
                shared.fatal = shared.fatal or outcome
                return
            if outcome.error_class == "transient" and quick < _QUICK_RETRIES:
                quick += 1
                await asyncio.sleep(0.5 * 2**quick)
                continue
            if outcome.kind == "succeeded":
                shared.limit.succeeded()
                self.last_success = time.monotonic()
            shared.buffer.append(outcome)
            if len(shared.buffer) >= _FLUSH_EVERY:
                self._flush(shared.buffer)
            return

    def _patient(self) -> bool:
        return time.monotonic() - self.last_success < RATE_LIMIT_PATIENCE_S

    def _flush(self, buffer: list[Outcome]) -> None:
        if not buffer:
            return
        batch = list(buffer)
        buffer.clear()
        counts = record_outcomes(self.store, self.ingest, batch)
        self.on_done(counts)
