"""The batch path: submit pending Requests as journaled Batches, reconcile, poll, collect.

Journal: a batch row is committed as an *intent* before the provider call and gets the
provider's handle right after. An intent without a handle (a crash in between) is reconciled on
the next advance by listing the provider's batches; only when none matches is it resubmitted.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import and_, func, select, update
from sqlalchemy.engine import Engine

from ..catalog.models import Catalog
from ..errors import ProviderError, RunNeedsAttention
from ..providers.base import BatchInfo, Provider
from ..store import schema
from ..store.requests import build_params, custom_id, load_prefixes, parse_custom_id
from . import failpoints
from .ingest import IngestContext, record_outcomes

OPEN = ("in_progress", "canceling", "ended")
# A batch the provider has not answered for about at least this long (and at least 3 polls in a
# row) puts the run in needs_attention instead of polling forever.
UNREACHABLE_S = float(os.environ.get("EVALBATCH_UNREACHABLE_S", "3600"))
MIN_POLL_FAILURES = 3
# Reconcile: a provider batch created this long before our intent was written cannot be ours.
CLOCK_SLACK_S = 120.0


@dataclass(frozen=True)
class BatchLimits:
    max_requests: int
    max_bytes: int

    @classmethod
    def from_catalog(cls, catalog: Catalog) -> BatchLimits:
        limits = catalog.limits.get("anthropic", {})
        provider_max = int(limits.get("batch_max_requests", 100_000))
        chunk = int(limits.get("batch_chunk_requests", provider_max))
        return cls(min(provider_max, chunk), int(limits.get("batch_max_bytes", 256_000_000)))


@dataclass
class BatchPath:
    engine: Engine
    provider: Provider
    ingest: IngestContext
    ttl: str | None
    limits: BatchLimits

    @property
    def run_id(self) -> str:
        return self.ingest.run_id

    # -- submit ---------------------------------------------------------------------------
    def submit_pending(self, step: str) -> int:
        """Submit every pending request of ``step``; returns the number of batches created."""
        submitted = 0
        for chunk in self._pending_chunks(step):
            self._submit_chunk(step, chunk)
            submitted += 1
        return submitted

    def _pending_chunks(self, step: str) -> Iterator[list[tuple[int, str, dict[str, Any], int]]]:
        """Pending requests as chunks within the provider's limits, shared prefixes together."""
        r = schema.requests.c
        with self.engine.connect() as conn:
            prefixes = load_prefixes(conn, self.run_id)
            # Only the ids in order: the rows themselves are read a page at a time below, so
            # memory stays flat however many requests are pending.
            ids = list(
                conn.execute(
                    select(r.id)
                    .where(and_(r.run_id == self.run_id, r.step == step, r.status == "pending"))
                    .order_by(r.prefix_id, r.model, r.idx)
                ).scalars()
            )
        chunk: list[tuple[int, str, dict[str, Any], int]] = []
        size = 0
        envelope = len(b'{"requests":[]}')
        for row in self._rows_by_id(ids):
            params = build_params(row, prefixes, self.ttl, self.ingest.catalog)
            cid = custom_id(self.run_id, step, row.idx)
            item_bytes = len(orjson.dumps({"custom_id": cid, "params": params})) + 1
            if item_bytes + envelope > self.limits.max_bytes:
                raise ProviderError(
                    f"request {cid} (case {row.case_id!r}) is {item_bytes:,} bytes, above the "
                    f"batch limit of {self.limits.max_bytes:,}"
                )
            if chunk and (
                len(chunk) >= self.limits.max_requests
                or size + item_bytes + envelope > self.limits.max_bytes
            ):
                yield chunk
                chunk, size = [], 0
            chunk.append((row.id, cid, params, item_bytes))
            size += item_bytes
        if chunk:
            yield chunk

    def _rows_by_id(self, ids: list[int], page: int = 1000) -> Iterator[Any]:
        for start in range(0, len(ids), page):
            wanted = ids[start : start + page]
            with self.engine.connect() as conn:
                found = {
                    row.id: row
                    for row in conn.execute(
                        select(schema.requests).where(schema.requests.c.id.in_(wanted))
                    )
                }
            yield from (found[i] for i in wanted)

    def _submit_chunk(self, step: str, chunk: list[tuple[int, str, dict[str, Any], int]]) -> None:
        ids = [rid for rid, *_ in chunk]
        now = time.time()
        with self.engine.begin() as conn:
            seq = (
                conn.execute(
                    select(func.max(schema.batches.c.seq)).where(
                        schema.batches.c.run_id == self.run_id
                    )
                ).scalar()
                or 0
            ) + 1
            batch_row_id = conn.execute(
                schema.batches.insert().values(
                    run_id=self.run_id,
                    step=step,
                    seq=seq,
                    provider=self.provider.name,
                    status="intent",
                    request_count=len(chunk),
                    bytes=sum(b for *_, b in chunk),
                    created_at=now,
                    poll_failures=0,
                )
            ).inserted_primary_key[0]  # type: ignore[index]
            for start in range(0, len(ids), 5000):
                conn.execute(
                    update(schema.requests)
                    .where(schema.requests.c.id.in_(ids[start : start + 5000]))
                    .values(
                        status="queued",
                        batch_id=batch_row_id,
                        attempts=schema.requests.c.attempts + 1,
                    )
                )
        failpoints.hit("submit.after_intent", step)
        info = self.provider.submit_batch([(cid, params) for _, cid, params, _ in chunk])
        failpoints.hit("submit.after_create", step)
        self._record_handle(batch_row_id, info)
        failpoints.hit("submit.after_handle", step)

    def _record_handle(self, batch_row_id: int, info: BatchInfo) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(schema.batches)
                .where(schema.batches.c.id == batch_row_id)
                .values(
                    provider_batch_id=info.id,
                    status=info.status,
                    submitted_at=time.time(),
                    expires_at=info.expires_at,
                    counts=orjson.dumps(info.counts).decode(),
                )
            )

    # -- reconcile ------------------------------------------------------------------------
    def reconcile_intents(self) -> None:
        """Adopt the provider batch each unconfirmed intent created, or resubmit it."""
        with self.engine.connect() as conn:
            intents = conn.execute(
                select(schema.batches).where(
                    and_(
                        schema.batches.c.run_id == self.run_id, schema.batches.c.status == "intent"
                    )
                )
            ).fetchall()
            if not intents:
                return
            known = set(
                conn.execute(
                    select(schema.batches.c.provider_batch_id).where(
                        schema.batches.c.provider_batch_id.is_not(None)
                    )
                ).scalars()
            )
        oldest = min(row.created_at for row in intents) - CLOCK_SLACK_S
        candidates = [
            b for b in self.provider.list_batches(created_after=oldest) if b.id not in known
        ]
        for intent in sorted(intents, key=lambda r: r.seq):
            match = self._match(intent, candidates)
            if match is not None:
                candidates.remove(match)
                self._record_handle(intent.id, match)
            else:
                self._abandon(intent.id)

    def _match(self, intent: Any, candidates: list[BatchInfo]) -> BatchInfo | None:
        for info in sorted(candidates, key=lambda b: b.created_at):
            if info.request_count != intent.request_count:
                continue
            if info.created_at < intent.created_at - CLOCK_SLACK_S:
                continue
            if info.status == "ended":
                ids = self.provider.batch_custom_ids(info.id)
                if not ids or not all(self._is_ours(cid, intent.id) for cid in ids):
                    continue
            return info
        return None

    def _is_ours(self, cid: str, batch_row_id: int) -> bool:
        parsed = parse_custom_id(cid)
        if parsed is None or parsed[0] != self.run_id:
            return False
        with self.engine.connect() as conn:
            r = schema.requests.c
            found = conn.execute(
                select(r.batch_id).where(
                    and_(r.run_id == self.run_id, r.step == parsed[1], r.idx == parsed[2])
                )
            ).scalar()
        return bool(found == batch_row_id)

    def _abandon(self, batch_row_id: int) -> None:
        """The provider never saw this intent: its requests go back to pending."""
        with self.engine.begin() as conn:
            conn.execute(
                update(schema.requests)
                .where(
                    and_(
                        schema.requests.c.batch_id == batch_row_id,
                        schema.requests.c.status == "queued",
                    )
                )
                .values(status="pending", batch_id=None, attempts=schema.requests.c.attempts - 1)
            )
            conn.execute(
                update(schema.batches)
                .where(schema.batches.c.id == batch_row_id)
                .values(status="abandoned")
            )

    # -- poll and collect ------------------------------------------------------------------
    def open_batches(self, step: str | None = None) -> Sequence[Any]:
        """Batches that may still deliver results: of ``step``, or of every step."""
        b = schema.batches.c
        where = and_(b.run_id == self.run_id, b.status.in_(OPEN))
        if step is not None:
            where = and_(where, b.step == step)
        with self.engine.connect() as conn:
            return conn.execute(select(schema.batches).where(where).order_by(b.seq)).fetchall()

    def poll(self, step: str) -> list[BatchInfo]:
        """Poll every open batch of ``step`` once and collect the ones that ended."""
        seen, failed = [], []
        for row in self.open_batches(step):
            info = self._poll_one(row)
            if info is None:
                failed.append(row.provider_batch_id)
                continue
            seen.append(info)
            if info.status == "ended":
                self.collect(row.id, info.id)
        if failed:
            # Recorded on the batch rows; say so rather than report a quiet "still running".
            raise ProviderError(
                f"could not poll {len(failed)} batch(es) ({', '.join(failed[:3])}); "
                "their handles are kept",
                retryable=True,
            )
        return seen

    def _poll_one(self, row: Any) -> BatchInfo | None:
        try:
            info = self.provider.get_batch(row.provider_batch_id)
        except ProviderError as exc:
            with self.engine.begin() as conn:
                conn.execute(
                    update(schema.batches)
                    .where(schema.batches.c.id == row.id)
                    .values(poll_failures=schema.batches.c.poll_failures + 1, last_error=str(exc))
                )
            silent_s = time.time() - (row.polled_at or row.submitted_at or row.created_at)
            if row.poll_failures + 1 >= MIN_POLL_FAILURES and silent_s >= UNREACHABLE_S:
                raise RunNeedsAttention(
                    f"batch {row.provider_batch_id} unreachable for {silent_s / 60:.0f} min "
                    f"({row.poll_failures + 1} polls failed; last: {exc}). Nothing is lost: "
                    "fix the cause and run `evalbatch collect`."
                ) from exc
            return None
        with self.engine.begin() as conn:
            conn.execute(
                update(schema.batches)
                .where(schema.batches.c.id == row.id)
                .values(
                    status=info.status,
                    counts=orjson.dumps(info.counts).decode(),
                    polled_at=time.time(),
                    ended_at=info.ended_at,
                    poll_failures=0,
                    last_error=None,
                )
            )
        return info

    def collect(self, batch_row_id: int, provider_batch_id: str) -> None:
        """Stream an ended batch's results into the store; safe to repeat after a cut."""
        record_outcomes(
            self.engine, self.ingest, self.provider.iter_results(provider_batch_id), batch_row_id
        )
        with self.engine.begin() as conn:
            # A complete stream that lacked an item: send that request again.
            conn.execute(
                update(schema.requests)
                .where(
                    and_(
                        schema.requests.c.batch_id == batch_row_id,
                        schema.requests.c.status == "queued",
                    )
                )
                .values(status="pending", last_error="missing from the batch results")
            )
            conn.execute(
                update(schema.batches)
                .where(schema.batches.c.id == batch_row_id)
                .values(status="collected")
            )

    def cancel(self) -> int:
        canceled = 0
        with self.engine.connect() as conn:
            b = schema.batches.c
            rows = conn.execute(
                select(schema.batches).where(
                    and_(b.run_id == self.run_id, b.status.in_(("in_progress",)))
                )
            ).fetchall()
        for row in rows:
            try:
                info = self.provider.cancel_batch(row.provider_batch_id)
                canceled += 1
            except ProviderError as exc:
                if exc.retryable:
                    raise
                # It ended before the cancel reached it (a race, not an error): its results
                # are collected like any other.
                info = self.provider.get_batch(row.provider_batch_id)
                if info.status != "ended":
                    raise
            with self.engine.begin() as conn:
                conn.execute(
                    update(schema.batches)
                    .where(schema.batches.c.id == row.id)
                    .values(status=info.status)
                )
        return canceled
