"""The batch journal: an intent is written (and its requests queued) before the provider call,
the provider's handle right after; polls, failures, abandonment and collection are recorded
on the same row, so a crash at any point leaves a journal the next `advance` can reconcile."""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from typing import Any, cast

import orjson
from sqlalchemy import Engine, and_, func, select, update
from sqlalchemy.engine import Row

from ..records import OPEN_BATCH, BatchInfo, BatchStatus, Step
from . import schema
from .leases import Leases
from .records import BatchRecord
from .requests import mark_queued, requeue_batch


def batch_record(row: Row[Any]) -> BatchRecord:
    return BatchRecord(
        id=row.id,
        run_id=row.run_id,
        step=row.step,
        seq=row.seq,
        provider=row.provider,
        provider_batch_id=row.provider_batch_id,
        status=cast(BatchStatus, row.status),
        request_count=row.request_count,
        bytes=row.bytes,
        created_at=row.created_at,
        submitted_at=row.submitted_at,
        ended_at=row.ended_at,
        expires_at=row.expires_at,
        counts=orjson.loads(row.counts) if row.counts else {},
        polled_at=row.polled_at,
        poll_failures=row.poll_failures,
        last_error=row.last_error,
        upload_id=row.upload_id,
        released_at=row.released_at,
    )


class Batches:
    def __init__(self, engine: Engine, leases: Leases | None = None) -> None:
        self.engine = engine
        self.leases = leases or Leases(engine)

    # -- the journal --------------------------------------------------------------------------
    def record_intent(
        self,
        run_id: str,
        step: Step,
        provider: str,
        request_ids: Sequence[int],
        size: int,
        sweep_id: str | None = None,
    ) -> int:
        """Before the provider call: the batch row (status intent) and its requests queued on
        it, in one transaction. Returns the batch row id. A sweep's batch carries its first
        run's id and the sweep's id, and may hold requests of every run of the sweep. Raises
        RunLeased when this process drove the run under a lease it has since lost (nothing is
        written, nothing sent)."""
        b = schema.batches.c
        with self.engine.begin() as conn:
            self.leases.fence(conn, run_id)
            seq = int(conn.execute(select(func.max(b.seq)).where(b.run_id == run_id)).scalar() or 0)
            batch_id = int(
                conn.execute(
                    schema.batches.insert().values(
                        run_id=run_id,
                        step=step,
                        seq=seq + 1,
                        provider=provider,
                        status="intent",
                        request_count=len(request_ids),
                        bytes=size,
                        created_at=time.time(),
                        poll_failures=0,
                        sweep_id=sweep_id,
                    )
                ).inserted_primary_key[0]  # type: ignore[index]
            )
            mark_queued(conn, request_ids, batch_id)
        return batch_id

    def record_upload(self, batch_id: int, upload_id: str) -> None:
        """A two-step provider took the intent's input file: its id, before the create call."""
        with self.engine.begin() as conn:
            conn.execute(
                update(schema.batches)
                .where(schema.batches.c.id == batch_id)
                .values(upload_id=upload_id)
            )

    def record_handle(self, batch_id: int, info: BatchInfo) -> None:
        """Right after the provider call (or when reconcile finds the batch it made). A batch
        created from an input file keeps that file's id, to delete it after collection."""
        b = schema.batches.c
        values: dict[str, Any] = {
            "provider_batch_id": info.id,
            "status": info.status,
            "submitted_at": time.time(),
            "expires_at": info.expires_at,
            "counts": orjson.dumps(info.counts).decode(),
        }
        if info.upload_id is not None:
            values["upload_id"] = func.coalesce(b.upload_id, info.upload_id)
        with self.engine.begin() as conn:
            conn.execute(update(schema.batches).where(b.id == batch_id).values(**values))

    def record_release(self, batch_id: int) -> None:
        """The provider's files of this batch are deleted."""
        with self.engine.begin() as conn:
            conn.execute(
                update(schema.batches)
                .where(schema.batches.c.id == batch_id)
                .values(released_at=time.time())
            )

    def abandon(self, batch_id: int) -> None:
        """The provider never saw this intent: its requests go back to pending, untried."""
        with self.engine.begin() as conn:
            requeue_batch(conn, batch_id, refund_attempt=True, error=None)
            conn.execute(
                update(schema.batches)
                .where(schema.batches.c.id == batch_id)
                .values(status="abandoned")
            )

    def record_poll(self, batch_id: int, info: BatchInfo) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(schema.batches)
                .where(schema.batches.c.id == batch_id)
                .values(
                    status=info.status,
                    counts=orjson.dumps(info.counts).decode(),
                    polled_at=time.time(),
                    ended_at=info.ended_at,
                    poll_failures=0,
                    last_error=None,
                )
            )

    def record_poll_failure(self, batch_id: int, error: str) -> None:
        b = schema.batches.c
        with self.engine.begin() as conn:
            conn.execute(
                update(schema.batches)
                .where(b.id == batch_id)
                .values(poll_failures=b.poll_failures + 1, last_error=error)
            )

    def set_status(self, batch_id: int, status: BatchStatus, info: BatchInfo | None = None) -> None:
        values: dict[str, Any] = {"status": status}
        if info is not None:
            values["counts"] = orjson.dumps(info.counts).decode()
        with self.engine.begin() as conn:
            conn.execute(
                update(schema.batches).where(schema.batches.c.id == batch_id).values(**values)
            )

    def finish_collect(self, batch_id: int) -> None:
        """The whole results stream was stored: a request it lacked is sent again."""
        with self.engine.begin() as conn:
            requeue_batch(
                conn, batch_id, refund_attempt=False, error="missing from the batch results"
            )
            conn.execute(
                update(schema.batches)
                .where(schema.batches.c.id == batch_id)
                .values(status="collected")
            )

    # -- reads --------------------------------------------------------------------------------
    def of_run(
        self,
        run_id: str,
        statuses: Iterable[BatchStatus],
        step: Step | None = None,
        sweep_id: str | None = None,
    ) -> list[BatchRecord]:
        """A run's own batches, or (with ``sweep_id``) the sweep's shared ones."""
        b = schema.batches.c
        owner = (
            b.sweep_id == sweep_id if sweep_id else and_(b.run_id == run_id, b.sweep_id.is_(None))
        )
        where = and_(owner, b.status.in_(tuple(statuses)))
        if step is not None:
            where = and_(where, b.step == step)
        with self.engine.connect() as conn:
            return [
                batch_record(row)
                for row in conn.execute(select(schema.batches).where(where).order_by(b.seq))
            ]

    def open(
        self, run_id: str, step: Step | None = None, sweep_id: str | None = None
    ) -> list[BatchRecord]:
        """Batches that may still deliver results: of ``step``, or of every step."""
        return self.of_run(run_id, OPEN_BATCH, step, sweep_id)

    def intents(self, run_id: str, sweep_id: str | None = None) -> list[BatchRecord]:
        return self.of_run(run_id, ("intent",), sweep_id=sweep_id)

    def alike_intents(self, intent_id: int, request_count: int, since: float) -> bool:
        """Is there another unconfirmed intent in the store (any run) with this many requests,
        written since ``since``? Then a listed batch of that size may be either's."""
        b = schema.batches.c
        with self.engine.connect() as conn:
            found = conn.execute(
                select(b.id)
                .where(
                    and_(
                        b.status == "intent",
                        b.id != intent_id,
                        b.request_count == request_count,
                        b.created_at >= since,
                    )
                )
                .limit(1)
            ).first()
        return found is not None

    def unreleased(self, run_id: str, sweep_id: str | None = None) -> list[BatchRecord]:
        """Collected or abandoned batches whose uploaded files the provider still keeps (a
        crash came between the collection and the delete)."""
        b = schema.batches.c
        owner = (
            b.sweep_id == sweep_id if sweep_id else and_(b.run_id == run_id, b.sweep_id.is_(None))
        )
        where = and_(
            owner,
            b.status.in_(("collected", "abandoned")),
            b.upload_id.is_not(None),
            b.released_at.is_(None),
        )
        with self.engine.connect() as conn:
            return [
                batch_record(row)
                for row in conn.execute(select(schema.batches).where(where).order_by(b.seq))
            ]

    def known_provider_ids(self) -> set[str]:
        """Every provider batch id any run of this store has adopted."""
        b = schema.batches.c
        with self.engine.connect() as conn:
            return set(
                conn.execute(
                    select(b.provider_batch_id).where(b.provider_batch_id.is_not(None))
                ).scalars()
            )
