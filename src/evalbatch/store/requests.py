"""Requests and their shared prefixes: inserting planned requests (each prefix stored once per
run), counting and paging them by status, and claiming a page for the sync path."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import fields
from typing import Any, cast

import orjson
from sqlalchemy import Engine, and_, func, or_, select, update
from sqlalchemy.engine import Connection, Row

from ..records import PlannedRequest, Prefix, RequestStatus, Step
from . import schema
from .bulk import analyze, insert_rows
from .records import StoredPrefix, StoredRequest

ANALYZE_AFTER = 5_000  # requests written at once, on PostgreSQL

_CHUNK = 2000
_IN_CHUNK = 5000  # ids per IN (...) clause


def insert_planned(
    conn: Connection, run_id: str, planned: Iterable[PlannedRequest], start_idx: int = 0
) -> int:
    """Insert planned requests in chunks; returns how many. Shared prefixes are stored once."""
    p = schema.prefixes.c
    known: dict[str, int] = {
        row.sha256: row.id for row in conn.execute(select(p.sha256, p.id).where(p.run_id == run_id))
    }
    rows: list[dict[str, Any]] = []
    idx = start_idx
    for req in planned:
        prefix_id = _prefix_id(conn, run_id, req, known) if req.prefix else None
        rows.append(
            {
                "run_id": run_id,
                "step": req.step,
                "idx": idx,
                "case_idx": req.case_idx,
                "case_id": req.case_id,
                "epoch": req.epoch,
                "grader": req.grader,
                "model": req.model,
                "route": req.route,
                "prefix_id": prefix_id,
                "messages": orjson.dumps(req.messages).decode(),
                "max_tokens": req.max_tokens,
                "extra": orjson.dumps(req.extra).decode() if req.extra else None,
                "input_estimate": req.input_estimate,
                "status": "pending",
                "attempts": 0,
            }
        )
        idx += 1
        if len(rows) >= _CHUNK:
            insert_rows(conn, schema.requests, rows)
            rows = []
    insert_rows(conn, schema.requests, rows)
    if idx - start_idx >= ANALYZE_AFTER:
        # the step's reads (pending ids, each result chunk's requests) plan on these rows: with
        # them unseen, collecting 100,000 results took the server most of a minute
        analyze(conn, "requests")
    return idx - start_idx


def _prefix_id(conn: Connection, run_id: str, req: PlannedRequest, known: dict[str, int]) -> int:
    prefix = cast(Prefix, req.prefix)
    if prefix.sha256 not in known:
        result = conn.execute(
            schema.prefixes.insert().values(
                run_id=run_id,
                step=req.step,
                source=prefix.source,
                sha256=prefix.sha256,
                system=prefix.canonical().decode(),
                tokens=prefix.tokens,
            )
        )
        known[prefix.sha256] = int(result.inserted_primary_key[0])  # type: ignore[index]
    return known[prefix.sha256]


# StoredRequest's fields, in order: a row of these columns builds one by position (several
# times cheaper than by name, for the 200,000 requests of a 100,000-case run).
REQUEST_COLUMNS = tuple(schema.requests.c[f.name] for f in fields(StoredRequest))


def stored_request(row: Row[Any]) -> StoredRequest:
    """A request from a row selected as ``REQUEST_COLUMNS``."""
    return StoredRequest(*row)  # type: ignore[call-arg]


def mark_queued(conn: Connection, ids: Sequence[int], batch_id: int | None) -> None:
    """The requests left for the provider (a batch, or the sync path when ``batch_id`` is None)."""
    r = schema.requests.c
    for start in range(0, len(ids), _IN_CHUNK):
        conn.execute(
            update(schema.requests)
            .where(r.id.in_(ids[start : start + _IN_CHUNK]))
            .values(status="queued", batch_id=batch_id, attempts=r.attempts + 1)
        )


def requeue_batch(
    conn: Connection, batch_id: int, *, refund_attempt: bool, error: str | None
) -> None:
    """A batch's still-queued requests go back to pending: the provider never saw the batch
    (``refund_attempt``: it does not count as a try), or its results lacked them."""
    r = schema.requests.c
    values: dict[str, Any] = {"status": "pending", "batch_id": None}
    if refund_attempt:
        values["attempts"] = r.attempts - 1
    if error is not None:
        values["last_error"] = error
    conn.execute(
        update(schema.requests)
        .where(and_(r.batch_id == batch_id, r.status == "queued"))
        .values(**values)
    )


class Requests:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def add(self, run_id: str, planned: Iterable[PlannedRequest], start_idx: int) -> int:
        with self.engine.begin() as conn:
            return insert_planned(conn, run_id, planned, start_idx)

    def count(self, run_id: str, step: Step, statuses: Iterable[RequestStatus]) -> int:
        r = schema.requests.c
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(func.count()).where(
                        and_(r.run_id == run_id, r.step == step, r.status.in_(tuple(statuses)))
                    )
                ).scalar()
                or 0
            )

    def pending_ids(self, run_id: str, step: Step, max_attempts: int) -> list[int]:
        """Ids of pending requests that have tries left (at most ``max_attempts`` made), ordered
        so requests sharing a prefix and model sit together."""
        r = schema.requests.c
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(r.id)
                    .where(
                        and_(
                            r.run_id == run_id,
                            r.step == step,
                            r.status == "pending",
                            r.attempts <= max_attempts,
                        )
                    )
                    .order_by(r.prefix_id, r.model, r.idx)
                ).scalars()
            )

    def pending_ids_of(self, max_attempts: Mapping[str, int], step: Step) -> list[int]:
        """Pending requests with tries left of several runs (a sweep's submission), ordered so
        requests sharing a prefix (by content, across runs) and a model sit together."""
        r, p = schema.requests.c, schema.prefixes.c
        tries_left = or_(
            *(and_(r.run_id == run_id, r.attempts <= n) for run_id, n in max_attempts.items())
        )
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(r.id)
                    .select_from(schema.requests.outerjoin(schema.prefixes, p.id == r.prefix_id))
                    .where(and_(r.step == step, r.status == "pending", tries_left))
                    .order_by(p.sha256, r.model, r.run_id, r.idx)
                ).scalars()
            )

    def exhausted(self, run_id: str, step: Step, max_attempts: int) -> tuple[int, str | None]:
        """Pending requests that used their tries (the run needs a person): how many, and the
        last error of one of them."""
        r = schema.requests.c
        where = and_(
            r.run_id == run_id,
            r.step == step,
            r.status == "pending",
            r.attempts > max_attempts,
        )
        with self.engine.connect() as conn:
            count = conn.execute(select(func.count()).where(where)).scalar()
            error = conn.execute(
                select(r.last_error).where(where).order_by(r.idx.desc()).limit(1)
            ).scalar()
        return int(count or 0), error

    def refresh_tries(self, run_id: str) -> int:
        """A person resumed the run: its pending requests get their tries back."""
        r = schema.requests.c
        with self.engine.begin() as conn:
            return int(
                conn.execute(
                    update(schema.requests)
                    .where(and_(r.run_id == run_id, r.status == "pending", r.attempts > 0))
                    .values(attempts=0)
                ).rowcount
            )

    def by_ids(self, ids: Sequence[int], page: int = 1000) -> Iterator[StoredRequest]:
        """The requests with these ids, in the order given, read a page at a time."""
        for start in range(0, len(ids), page):
            wanted = ids[start : start + page]
            with self.engine.connect() as conn:
                found = {
                    row.id: stored_request(row)
                    for row in conn.execute(
                        select(*REQUEST_COLUMNS).where(schema.requests.c.id.in_(wanted))
                    )
                }
            yield from (found[i] for i in wanted)

    def prefixes(self, run_id: str) -> dict[int, StoredPrefix]:
        p = schema.prefixes.c
        with self.engine.connect() as conn:
            return {
                row.id: StoredPrefix(
                    row.id, row.source, row.sha256, orjson.loads(row.system), row.tokens
                )
                for row in conn.execute(select(schema.prefixes).where(p.run_id == run_id))
            }

    def claim_pending(
        self, run_id: str, step: Step, limit: int, max_attempts: int
    ) -> list[StoredRequest]:
        """The next page of pending requests with tries left, marked queued (no batch) with one
        more attempt. Fresh requests come first, so retries are sent together after a back-off."""
        r = schema.requests.c
        with self.engine.begin() as conn:
            rows = [
                stored_request(row)
                for row in conn.execute(
                    select(*REQUEST_COLUMNS)
                    .where(
                        and_(
                            r.run_id == run_id,
                            r.step == step,
                            r.status == "pending",
                            r.attempts <= max_attempts,
                        )
                    )
                    .order_by(r.attempts, r.prefix_id, r.idx)
                    .limit(limit)
                )
            ]
            mark_queued(conn, [row.id for row in rows], None)
        return rows

    def release_stale_sync(self, run_id: str, step: Step) -> None:
        """Queued sync requests (no batch) belong to a process that died: send them again."""
        r = schema.requests.c
        with self.engine.begin() as conn:
            conn.execute(
                update(schema.requests)
                .where(
                    and_(
                        r.run_id == run_id,
                        r.step == step,
                        r.status == "queued",
                        r.batch_id.is_(None),
                    )
                )
                .values(status="pending")
            )

    def batch_of(self, run_id: str, step: Step, idx: int) -> int | None:
        """The journal batch a request was last queued in (reconcile checks ownership)."""
        r = schema.requests.c
        with self.engine.connect() as conn:
            found = conn.execute(
                select(r.batch_id).where(and_(r.run_id == run_id, r.step == step, r.idx == idx))
            ).scalar()
        return None if found is None else int(found)

    def warm_targets(self, run_id: str, step: Step) -> tuple[bool, list[tuple[int, str]], int]:
        """(already warmed?, distinct (prefix id, model) of the step's pending requests, the
        next warm request index)."""
        r = schema.requests.c
        with self.engine.connect() as conn:
            already = conn.execute(
                select(func.count()).where(
                    and_(r.run_id == run_id, r.step == "warm", r.grader == step)
                )
            ).scalar()
            pairs = [
                (int(row.prefix_id), str(row.model))
                for row in conn.execute(
                    select(r.prefix_id, r.model)
                    .where(
                        and_(
                            r.run_id == run_id,
                            r.step == step,
                            r.status == "pending",
                            r.prefix_id.is_not(None),
                        )
                    )
                    .distinct()
                )
            ]
            start = conn.execute(
                select(func.coalesce(func.max(r.idx) + 1, 0)).where(
                    and_(r.run_id == run_id, r.step == "warm")
                )
            ).scalar()
        return bool(already), pairs, int(start or 0)
