"""Leases: two collectors never advance the same run at once.

A lease row per run with a holder and an expiry; taking it is one conditional write, so the loser
of a race sees the winner's row and skips the run. A holder is ``host:pid:random``; a lease held
by a process on this host that no longer exists is taken over at once.
"""

from __future__ import annotations

import os
import socket
import time
import uuid

from sqlalchemy import Engine, and_, delete, select, update
from sqlalchemy.exc import IntegrityError

from . import schema
from .records import LeaseHolder

LEASE_S = 600.0


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_process(holder: str) -> str:
    """``host:pid`` of a holder, for messages."""
    host, _, rest = holder.partition(":")
    return f"{host}:{rest.partition(':')[0]}"


class Leases:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def acquire(self, run_id: str, holder: str, ttl: float = LEASE_S) -> LeaseHolder | None:
        """Take (or renew) the run's lease; returns None on success, else who holds it."""
        now = time.time()
        lease = schema.leases.c
        with self.engine.begin() as conn:
            renewed = conn.execute(
                update(schema.leases)
                .where(and_(lease.run_id == run_id, lease.holder == holder))
                .values(expires_at=now + ttl)
            ).rowcount
            if renewed:
                return None
            taken = conn.execute(
                update(schema.leases)
                .where(and_(lease.run_id == run_id, lease.expires_at < now))
                .values(holder=holder, expires_at=now + ttl, acquired_at=now)
            ).rowcount
            if taken:
                return None
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    schema.leases.insert().values(
                        run_id=run_id, holder=holder, expires_at=now + ttl, acquired_at=now
                    )
                )
            return None
        except IntegrityError:
            current = self.holder(run_id)
        if current is None:  # released between our two statements: try once more
            return self.acquire(run_id, holder, ttl)
        if _is_dead(current.holder):
            # A process on this machine that was killed (SIGKILL, OOM, power) cannot release
            # its lease; it must not lock the run for the lease's lifetime.
            with self.engine.begin() as conn:
                stolen = conn.execute(
                    update(schema.leases)
                    .where(and_(lease.run_id == run_id, lease.holder == current.holder))
                    .values(holder=holder, expires_at=now + ttl, acquired_at=now)
                ).rowcount
            if stolen:
                return None
        return current

    def holder(self, run_id: str) -> LeaseHolder | None:
        lease = schema.leases.c
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.leases).where(lease.run_id == run_id)).first()
        if row is None:
            return None
        return LeaseHolder(row.holder, row.acquired_at, row.expires_at)

    def release(self, run_id: str, holder: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                delete(schema.leases).where(
                    and_(schema.leases.c.run_id == run_id, schema.leases.c.holder == holder)
                )
            )


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
