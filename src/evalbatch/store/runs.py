"""Runs, their cases and their steps: creating a run in one transaction, its status, options
and step transitions, and the lookups that find runs (open ones, the latest done one)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Literal, cast

import orjson
from sqlalchemy import Column, Engine, and_, func, select, update
from sqlalchemy.engine import Connection, Row

from ..errors import NotFound
from ..records import (
    CLOSED_RUN,
    GENERATE,
    GRADE,
    TERMINAL_RUN,
    PlannedRequest,
    RunStatus,
)
from . import schema
from .bulk import insert_rows
from .records import NewRun, RunRecord
from .requests import insert_planned

_CASE_CHUNK = 2000


def run_record(row: Row[Any]) -> RunRecord:
    return RunRecord(
        id=row.id,
        suite_name=row.suite_name,
        suite_path=row.suite_path,
        status=cast(RunStatus, row.status),
        mode=row.mode,
        manifest_hash=row.manifest_hash,
        manifest=orjson.loads(row.manifest),
        suite_json=row.suite,
        options=orjson.loads(row.options),
        created_at=row.created_at,
        updated_at=row.updated_at,
        finished_at=row.finished_at,
        error=row.error,
        case_count=row.case_count,
        sweep_id=row.sweep_id,
        variant=row.variant,
    )


def insert_run(
    conn: Connection,
    run: NewRun,
    cases: Iterable[tuple[int, str, str]],
    planned: Iterable[PlannedRequest],
) -> None:
    """A run, its cases and its generate requests, inside the caller's transaction."""
    now = time.time()
    insert_run_row(conn, run, now)
    _insert_cases(conn, run, cases, planned, now)


def insert_run_row(conn: Connection, run: NewRun, now: float) -> None:
    """The run's row, in the generate step (inside the caller's transaction)."""
    conn.execute(
        schema.runs.insert().values(
            id=run.id,
            suite_name=run.suite_name,
            suite_path=run.suite_path,
            created_at=now,
            updated_at=now,
            status=GENERATE,
            mode=run.mode,
            manifest_hash=run.manifest_hash,
            manifest=orjson.dumps(run.manifest).decode(),
            suite=run.suite_json,
            options=orjson.dumps(run.options).decode(),
            case_count=run.case_count,
            sweep_id=run.sweep_id,
            variant=run.variant,
        )
    )


def _insert_cases(
    conn: Connection,
    run: NewRun,
    cases: Iterable[tuple[int, str, str]],
    planned: Iterable[PlannedRequest],
    now: float,
) -> None:
    rows: list[dict[str, Any]] = []
    for idx, case_id, data in cases:
        rows.append({"run_id": run.id, "idx": idx, "case_id": case_id, "data": data})
        if len(rows) >= _CASE_CHUNK:
            insert_rows(conn, schema.cases, rows)
            rows = []
    insert_rows(conn, schema.cases, rows)
    conn.execute(
        schema.steps.insert().values(run_id=run.id, name=GENERATE, status="active", planned_at=now)
    )
    insert_planned(conn, run.id, planned)


def merge_json(conn: Connection, column: Column[Any], row_id: str, changes: dict[str, Any]) -> None:
    """Set ``changes`` in the JSON object stored in ``column`` of the row with this id."""
    table = column.table
    raw = conn.execute(select(column).where(table.c.id == row_id)).scalar()
    merged = {**orjson.loads(raw or "{}"), **changes}
    conn.execute(
        update(table)
        .where(table.c.id == row_id)
        .values({column.name: orjson.dumps(merged).decode()})
    )


def status_values(status: RunStatus, error: str | None) -> dict[str, Any]:
    """The columns a status change writes (a run's or a sweep's)."""
    now = time.time()
    values: dict[str, Any] = {"status": status, "updated_at": now, "error": error}
    if status in TERMINAL_RUN:
        values["finished_at"] = now
    return values


class Runs:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- writes -------------------------------------------------------------------------------
    def create(
        self,
        run: NewRun,
        cases: Iterable[tuple[int, str, str]],
        planned: Iterable[PlannedRequest],
    ) -> None:
        """Write the run, its cases (idx, case id, JSON) and its generate requests atomically:
        on any error nothing of the run is left in the store."""
        with self.engine.begin() as conn:
            insert_run(conn, run, cases, planned)

    def set_status(self, run_id: str, status: RunStatus, error: str | None = None) -> None:
        values = status_values(status, error)
        with self.engine.begin() as conn:
            conn.execute(update(schema.runs).where(schema.runs.c.id == run_id).values(**values))

    def set_options(self, run_id: str, **changes: Any) -> None:
        """Change stored run options (a new budget after a budget stop)."""
        with self.engine.begin() as conn:
            merge_json(conn, schema.runs.c.options, run_id, changes)

    def start_grading(
        self, run_id: str, planned: Iterable[PlannedRequest], status: RunStatus
    ) -> None:
        """Generation is done: its grade requests, the step rows and the run's new status in
        one transaction, so a crash leaves either all of it or none."""
        now = time.time()
        st = schema.steps.c
        with self.engine.begin() as conn:
            insert_planned(conn, run_id, planned)
            conn.execute(
                update(schema.steps)
                .where(and_(st.run_id == run_id, st.name == GENERATE))
                .values(status="done", done_at=now)
            )
            conn.execute(
                schema.steps.insert().values(
                    run_id=run_id, name=GRADE, status="active", planned_at=now
                )
            )
            conn.execute(
                update(schema.runs)
                .where(schema.runs.c.id == run_id)
                .values(status=status, updated_at=now)
            )

    # -- reads --------------------------------------------------------------------------------
    def get(self, run_id: str) -> RunRecord:
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.runs).where(schema.runs.c.id == run_id)).first()
        if row is None:
            raise NotFound(f"no run {run_id!r} in the store (see `evalbatch runs`)")
        return run_record(row)

    def status(self, run_id: str) -> RunStatus:
        return self.get(run_id).status

    def active_step(self, run_id: str) -> Literal["generate", "grade"]:
        st = schema.steps.c
        with self.engine.connect() as conn:
            names = set(
                conn.execute(
                    select(st.name).where(and_(st.run_id == run_id, st.status == "active"))
                ).scalars()
            )
        return GRADE if GRADE in names else GENERATE

    def progress_mark(self, run_id: str) -> tuple[str, int, int]:
        """(status, batches, results): changes whenever the run made progress."""
        with self.engine.connect() as conn:
            status = conn.execute(
                select(schema.runs.c.status).where(schema.runs.c.id == run_id)
            ).scalar()
            batches = conn.execute(
                select(func.count()).where(schema.batches.c.run_id == run_id)
            ).scalar()
            results = conn.execute(
                select(func.count()).where(schema.results.c.run_id == run_id)
            ).scalar()
        return str(status), int(batches or 0), int(results or 0)

    def open_ids(self, *, attention: bool = True) -> list[str]:
        """Runs that are not done or canceled, oldest first (without those that need a person
        when ``attention`` is False)."""
        runs = schema.runs.c
        closed = tuple(CLOSED_RUN) if attention else (*CLOSED_RUN, "needs_attention")
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(runs.id)
                    .where(runs.status.not_in(closed))
                    .order_by(runs.created_at, runs.id)
                ).scalars()
            )

    def newest_id(
        self, *, done: bool = False, suite: str | None = None, exclude: str | None = None
    ) -> str | None:
        """The newest run (only done ones with ``done``; of one suite; not ``exclude``)."""
        runs = schema.runs.c
        query = select(runs.id).order_by(runs.created_at.desc(), runs.id.desc()).limit(1)
        if done:
            query = query.where(runs.status == "done")
        if suite is not None:
            query = query.where(runs.suite_name == suite)
        if exclude is not None:
            query = query.where(runs.id != exclude)
        with self.engine.connect() as conn:
            return conn.execute(query).scalar()

    def ids_starting(self, prefix: str, limit: int = 2) -> list[str]:
        """Run ids that start with ``prefix`` (a short id a person typed)."""
        runs = schema.runs.c
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        with self.engine.connect() as conn:
            return list(
                conn.execute(
                    select(runs.id)
                    .where(runs.id.like(f"{escaped}%", escape="\\"))
                    .order_by(runs.id)
                    .limit(limit)
                ).scalars()
            )

    def latest_done(self, run_id: str) -> str | None:
        """The newest completed run of the same suite started before ``run_id``."""
        runs = schema.runs.c
        with self.engine.connect() as conn:
            row = conn.execute(
                select(runs.suite_name, runs.created_at).where(runs.id == run_id)
            ).one()
            return conn.execute(
                select(runs.id)
                .where(
                    and_(
                        runs.suite_name == row.suite_name,
                        runs.status == "done",
                        runs.id != run_id,
                        runs.created_at <= row.created_at,
                    )
                )
                .order_by(runs.created_at.desc(), runs.id.desc())
                .limit(1)
            ).scalar()

    def latest_done_of_manifest(self, manifest_hash: str) -> str | None:
        runs = schema.runs.c
        with self.engine.connect() as conn:
            return conn.execute(
                select(runs.id)
                .where(and_(runs.manifest_hash == manifest_hash, runs.status == "done"))
                .order_by(runs.created_at.desc(), runs.id.desc())
                .limit(1)
            ).scalar()

    def cases_page(self, run_id: str, start: int, limit: int) -> list[tuple[int, str]]:
        """(idx, case JSON) of the run's cases from index ``start``, in order."""
        c = schema.cases.c
        with self.engine.connect() as conn:
            return [
                (row.idx, row.data)
                for row in conn.execute(
                    select(c.idx, c.data)
                    .where(and_(c.run_id == run_id, c.idx >= start))
                    .order_by(c.idx)
                    .limit(limit)
                )
            ]

    def case_contents(self, run_id: str) -> dict[str, tuple[int, dict[str, Any]]]:
        """case id -> (index, stored case data)."""
        c = schema.cases.c
        with self.engine.connect() as conn:
            return {
                row.case_id: (row.idx, orjson.loads(row.data))
                for row in conn.execute(select(c.case_id, c.idx, c.data).where(c.run_id == run_id))
            }
