"""Named, numbered migrations, applied once each at start-up and recorded in `_migrations`.

Each migration is a small function taking a connection. Never edit one that has landed: add the
next. m001 creates the tables as they were when it landed (`m001_schema.py`, frozen); each later
schema change comes with an m00N that ALTERs, and `tests/test_store.py` pins the result.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from sqlalchemy import Column, Float, MetaData, String, Table, func, inspect, select, text
from sqlalchemy.engine import Connection

from ..errors import StoreError
from . import m001_schema, m005_schema

_meta = MetaData()
_migrations_table = Table(
    "_migrations",
    _meta,
    Column("name", String(100), primary_key=True),
    Column("applied_at", Float, nullable=False),
)


def m001_initial(conn: Connection) -> None:
    m001_schema.metadata.create_all(conn)


def m002_lease_acquired_at(conn: Connection) -> None:
    """When a collector took a run's lease, for "being collected by host:pid since ..."."""
    conn.execute(text("ALTER TABLE leases ADD COLUMN acquired_at FLOAT"))


def m003_view_indexes(conn: Connection) -> None:
    """The viewer's lookups: a case by its id, and a case's requests (both steps, every epoch)."""
    conn.execute(text("CREATE INDEX ix_cases_case_id ON cases (run_id, case_id)"))
    conn.execute(text("CREATE INDEX ix_requests_case ON requests (run_id, case_idx)"))


def m004_sweeps(conn: Connection) -> None:
    """Sweeps: variants of a suite run as linked runs whose batches are submitted together."""
    conn.execute(
        text(
            "CREATE TABLE sweeps ("
            "id VARCHAR(48) PRIMARY KEY, "
            "suite_name VARCHAR(200) NOT NULL, "
            "suite_path TEXT NOT NULL, "
            "created_at FLOAT NOT NULL, "
            "updated_at FLOAT NOT NULL, "
            "finished_at FLOAT, "
            "status VARCHAR(32) NOT NULL, "
            "mode VARCHAR(8) NOT NULL, "
            "spec TEXT NOT NULL, "
            "error TEXT)"
        )
    )
    conn.execute(text("ALTER TABLE runs ADD COLUMN sweep_id VARCHAR(48)"))
    conn.execute(text("ALTER TABLE runs ADD COLUMN variant VARCHAR(200)"))
    conn.execute(text("ALTER TABLE batches ADD COLUMN sweep_id VARCHAR(48)"))
    conn.execute(text("CREATE INDEX ix_runs_sweep ON runs (sweep_id)"))
    conn.execute(text("CREATE INDEX ix_batches_sweep ON batches (sweep_id, status)"))


def m005_reference_scores(conn: Connection) -> None:
    """The reference grader's verdicts on its sample (reference-sampled grading)."""
    m005_schema.reference_scores.create(conn)


def m006_calibrations(conn: Connection) -> None:
    """What a calibration ran (its sample, settings and runs), so its report can be rebuilt."""
    m005_schema.calibrations.create(conn)  # with its index


def m007_batch_uploads(conn: Connection) -> None:
    """Two-step providers (OpenAI): the batch's uploaded input file, journaled between the
    upload and the create call, and when the provider's files of the batch were deleted."""
    conn.execute(text("ALTER TABLE batches ADD COLUMN upload_id VARCHAR(100)"))
    conn.execute(text("ALTER TABLE batches ADD COLUMN released_at FLOAT"))


MIGRATIONS: list[Callable[[Connection], None]] = [
    m001_initial,
    m002_lease_acquired_at,
    m003_view_indexes,
    m004_sweeps,
    m005_reference_scores,
    m006_calibrations,
    m007_batch_uploads,
]


# Collectors starting together on a new PostgreSQL store migrate one at a time.
_MIGRATION_LOCK = 0x65766D6967  # "evmig"


def apply_migrations(conn: Connection) -> list[str]:
    """Apply every migration not yet recorded; returns the names applied now. On PostgreSQL
    a transaction-level advisory lock serialises processes migrating the same store."""
    if not pending_migrations(conn):
        return []
    if conn.dialect.name == "postgresql":
        conn.execute(select(func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
    _meta.create_all(conn)
    done = set(conn.execute(select(_migrations_table.c.name)).scalars())
    applied = []
    for migration in MIGRATIONS:
        if migration.__name__ in done:
            continue
        migration(conn)
        conn.execute(
            _migrations_table.insert().values(name=migration.__name__, applied_at=time.time())
        )
        applied.append(migration.__name__)
    return applied


def pending_migrations(conn: Connection) -> list[str]:
    """Names of the migrations this store has not had yet."""
    if not inspect(conn).has_table("_migrations"):
        return [m.__name__ for m in MIGRATIONS]
    done = set(conn.execute(select(_migrations_table.c.name)).scalars())
    return [m.__name__ for m in MIGRATIONS if m.__name__ not in done]


def check_migrated(conn: Connection, where: str) -> None:
    """A read-only store can be read only if it is up to date."""
    missing = pending_migrations(conn)
    if missing:
        raise StoreError(
            f"the store at {where} is read-only and older than this evalbatch "
            f"({len(missing)} migration(s) to apply): make it writable once, or use "
            "`evalbatch db upgrade` where it is"
        )


def table_columns(conn: Connection) -> dict[str, list[str]]:
    """Every table's column names, for the schema-pinning test."""
    insp = inspect(conn)
    return {t: [c["name"] for c in insp.get_columns(t)] for t in sorted(insp.get_table_names())}
