"""Leases: two collectors never advance the same run at once.

A lease row per run with a holder and an expiry; taking it is one conditional write, so the loser
of a race sees the winner's row and skips the run.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError

from . import schema

LEASE_S = 600.0


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def acquire(engine: Engine, run_id: str, holder: str, ttl: float = LEASE_S) -> str | None:
    """Take the run's lease; returns None on success, else who holds it."""
    now = time.time()
    lease = schema.leases.c
    with engine.begin() as conn:
        taken = conn.execute(
            update(schema.leases)
            .where(
                and_(lease.run_id == run_id, or_(lease.expires_at < now, lease.holder == holder))
            )
            .values(holder=holder, expires_at=now + ttl)
        ).rowcount
        if taken:
            return None
    try:
        with engine.begin() as conn:
            conn.execute(
                schema.leases.insert().values(run_id=run_id, holder=holder, expires_at=now + ttl)
            )
        return None
    except IntegrityError:
        with engine.connect() as conn:
            current = str(conn.execute(select(lease.holder).where(lease.run_id == run_id)).scalar())
    if _is_dead(current):
        # A process on this machine that was killed (SIGKILL, OOM, power) cannot release its
        # lease; it must not lock the run for the lease's lifetime.
        with engine.begin() as conn:
            stolen = conn.execute(
                update(schema.leases)
                .where(and_(lease.run_id == run_id, lease.holder == current))
                .values(holder=holder, expires_at=now + ttl)
            ).rowcount
        if stolen:
            return None
    return current


def _is_dead(holder: str) -> bool:
    """True only when the holder is a process on this host that no longer exists."""
    host, _, rest = holder.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    try:
        os.kill(int(pid_text), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def release(engine: Engine, run_id: str, holder: str) -> None:
    with engine.begin() as conn:
        conn.execute(
            delete(schema.leases).where(
                and_(schema.leases.c.run_id == run_id, schema.leases.c.holder == holder)
            )
        )
