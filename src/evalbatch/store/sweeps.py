"""Sweeps: a sweep row and its variant runs, written in one transaction; the sweep's status;
finding a sweep by id, prefix or any of its runs; reading each case's verdict for the tables."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from typing import Any, cast

import orjson
from sqlalchemy import Engine, and_, select, update
from sqlalchemy.engine import Row

from ..errors import NotFound
from ..records import CLOSED_RUN, PlannedRequest, RunStatus
from . import schema
from .records import NewRun, SweepRecord
from .reports import case_pass_subquery
from .runs import insert_run, merge_json, status_values


def sweep_record(row: Row[Any]) -> SweepRecord:
    return SweepRecord(
        id=row.id,
        suite_name=row.suite_name,
        suite_path=row.suite_path,
        status=cast(RunStatus, row.status),
        mode=row.mode,
        spec=orjson.loads(row.spec),
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        error=row.error,
    )


NewVariant = tuple[NewRun, Iterable[tuple[int, str, str]], Iterable[PlannedRequest]]


class Sweeps:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(
        self,
        sweep_id: str,
        suite_name: str,
        suite_path: str,
        mode: str,
        spec: dict[str, Any],
        variants: Iterable[NewVariant],
    ) -> None:
        """The sweep and every variant run (cases, generate requests) atomically."""
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(
                schema.sweeps.insert().values(
                    id=sweep_id,
                    suite_name=suite_name,
                    suite_path=suite_path,
                    created_at=now,
                    updated_at=now,
                    status="generate",
                    mode=mode,
                    spec=orjson.dumps(spec).decode(),
                )
            )
            for run, cases, planned in variants:
                insert_run(conn, run, cases, planned)

    def set_status(self, sweep_id: str, status: RunStatus, error: str | None = None) -> None:
        values = status_values(status, error)
        with self.engine.begin() as conn:
            conn.execute(
                update(schema.sweeps).where(schema.sweeps.c.id == sweep_id).values(**values)
            )

    def set_spec(self, sweep_id: str, **changes: Any) -> None:
        with self.engine.begin() as conn:
            merge_json(conn, schema.sweeps.c.spec, sweep_id, changes)

    def get(self, sweep_id: str) -> SweepRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.sweeps).where(schema.sweeps.c.id == sweep_id)).first()
        if row is None:
            raise NotFound(f"no sweep {sweep_id!r} in the store (see `evalbatch runs`)")
        return sweep_record(row)

    def run_ids(self, sweep_id: str) -> list[str]:
        """The sweep's variant runs in the order they were planned."""
        r = schema.runs.c
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(r.id).where(r.sweep_id == sweep_id).order_by(r.created_at, r.id)
                ).scalars()
            )

    def of_run(self, run_id: str) -> str | None:
        with self.engine.connect() as conn:
            found = conn.execute(
                select(schema.runs.c.sweep_id).where(schema.runs.c.id == run_id)
            ).scalar()
        return None if found is None else str(found)

    def open_ids(self, *, attention: bool = True) -> list[str]:
        """Sweeps not done or canceled, oldest first (without those that need a person when
        ``attention`` is False)."""
        s = schema.sweeps.c
        closed = tuple(CLOSED_RUN) if attention else (*CLOSED_RUN, "needs_attention")
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(s.id).where(s.status.not_in(closed)).order_by(s.created_at, s.id)
                ).scalars()
            )

    def ids_starting(self, prefix: str, limit: int = 2) -> list[str]:
        s = schema.sweeps.c
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(s.id).where(s.id.startswith(prefix, autoescape=True)).limit(limit)
                ).scalars()
            )

    def listing(self, limit: int = 100) -> list[SweepRecord]:
        """Newest first."""
        s = schema.sweeps.c
        with self.engine.connect() as conn:
            return [
                sweep_record(row)
                for row in conn.execute(
                    select(schema.sweeps).order_by(s.created_at.desc(), s.id.desc()).limit(limit)
                )
            ]

    def newest_id(self) -> str | None:
        s = schema.sweeps.c
        with self.engine.connect() as conn:
            return conn.execute(
                select(s.id).order_by(s.created_at.desc(), s.id.desc()).limit(1)
            ).scalar()

    def case_verdicts(self, run_id: str) -> Iterator[tuple[str, int, bool, tuple[str, ...]]]:
        """(case id, epoch, passed every grader, tags) for each scored case and epoch."""
        c = schema.cases.c
        per_case = case_pass_subquery(run_id)
        query = (
            select(c.case_id, per_case.c.epoch, per_case.c.ok, c.data)
            .select_from(
                per_case.join(schema.cases, and_(c.run_id == run_id, c.idx == per_case.c.case_idx))
            )
            .order_by(c.idx, per_case.c.epoch)
        )
        with self.engine.connect() as conn:
            for row in conn.execution_options(yield_per=2000).execute(query):
                tags = tuple(orjson.loads(row.data).get("tags") or ())
                yield row.case_id, row.epoch, bool(row.ok), tags
