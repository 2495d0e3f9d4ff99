"""Leases: one collector at a time advances a run, however many run on however many hosts.

A lease row per run names its holder (``host:pid:random``), when it was taken and until when
it holds. On PostgreSQL the holder also keeps a session advisory lock on the run on a connection
of its own: the server drops it the moment the holder's session ends (a SIGKILL, an OOM, a lost
host once TCP keepalives give up), so another collector takes the run over at once, whatever
the row says, with no clocks to agree on. On SQLite (one machine) a lease held by a process on
this host that no longer exists is taken over at once. Either way a holder that stays silent
past its expiry (``EVALBATCH_LEASE_S``, default 600 s; `run/drive.py` renews it in the
background) loses the run, and ``fence`` makes its next batch intent fail instead of billing.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field

from sqlalchemy import Engine, and_, delete, func, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from ..errors import RunLeased
from . import schema
from .records import LeaseHolder

# Server-side keepalives of a lease session: a vanished host's lock is dropped in about a minute.
_KEEPALIVE = (
    "SET tcp_keepalives_idle = 20",
    "SET tcp_keepalives_interval = 10",
    "SET tcp_keepalives_count = 3",
)


def lease_seconds() -> float:
    return float(os.environ.get("EVALBATCH_LEASE_S", "600"))


LEASE_S = lease_seconds()


def new_holder() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_process(holder: str) -> str:
    """``host:pid`` of a holder, for messages."""
    host, _, rest = holder.partition(":")
    return f"{host}:{rest.partition(':')[0]}"


def _lock_key(run_id: str) -> int:
    """The run's advisory lock key (a signed 64-bit int)."""
    digest = hashlib.sha256(b"evalbatch-lease:" + run_id.encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass
class _Held:
    """A lease this process holds: its holder, and on PostgreSQL the session holding the lock."""

    holder: str
    conn: Connection | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class Leases:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._pg = engine.dialect.name == "postgresql"
        self._held: dict[str, _Held] = {}

    def acquire(self, run_id: str, holder: str, ttl: float | None = None) -> LeaseHolder | None:
        """Take (or renew) the run's lease; returns None on success, else who holds it."""
        ttl = lease_seconds() if ttl is None else ttl
        mine = self._held.get(run_id)
        if mine is not None and mine.holder == holder:
            if self.renew(run_id, holder, ttl):
                return None
            return self.holder(run_id) or LeaseHolder("another collector", None, 0.0)
        if self._pg:
            return self._acquire_locked(run_id, holder, ttl)
        return self._acquire_row(run_id, holder, ttl)

    def renew(self, run_id: str, holder: str, ttl: float | None = None) -> bool:
        """Extend our lease; False when it was lost (taken over, or our session died)."""
        ttl = lease_seconds() if ttl is None else ttl
        mine = self._held.get(run_id)
        lease = schema.leases.c
        statement = (
            update(schema.leases)
            .where(and_(lease.run_id == run_id, lease.holder == holder))
            .values(expires_at=time.time() + ttl)
        )
        if mine is None or mine.conn is None:
            with self.engine.begin() as conn:
                renewed = conn.execute(statement).rowcount
            if renewed and mine is None:
                self._keep(run_id, _Held(holder))
            return bool(renewed)
        with mine.lock:
            try:
                renewed = mine.conn.execute(statement).rowcount
                mine.conn.commit()
            except SQLAlchemyError:
                return False  # the session is gone, and the lock with it
        return bool(renewed)

    def release(self, run_id: str, holder: str) -> None:
        mine = self._held.pop(run_id, None)
        lease = schema.leases.c
        statement = delete(schema.leases).where(
            and_(lease.run_id == run_id, lease.holder == holder)
        )
        if mine is None or mine.conn is None:
            with self.engine.begin() as conn:
                conn.execute(statement)
            return
        with mine.lock:
            _close_session(mine.conn, statement, run_id)

    def close(self) -> None:
        """Release every lease this process still holds (the Store is closing)."""
        for run_id, mine in list(self._held.items()):
            self.release(run_id, mine.holder)

    def holder(self, run_id: str) -> LeaseHolder | None:
        lease = schema.leases.c
        with self.engine.connect() as conn:
            row = conn.execute(select(schema.leases).where(lease.run_id == run_id)).first()
        if row is None:
            return None
        return LeaseHolder(row.holder, row.acquired_at, row.expires_at)

    def fence(self, conn: Connection, run_id: str) -> None:
        """Inside a write that must not happen twice (a batch intent): if this process took
        the run's lease, it must still hold it, or RunLeased. On PostgreSQL the row is read
        FOR SHARE, so a takeover waits until this transaction is committed (and sees it)."""
        mine = self._held.get(run_id)
        if mine is None:
            return  # not driven under a lease (a library caller advancing a run itself)
        query = select(schema.leases.c.holder).where(schema.leases.c.run_id == run_id)
        if self._pg:
            query = query.with_for_update(read=True)
        current = conn.execute(query).scalar()
        if current != mine.holder:
            self._forget(run_id)
            raise RunLeased(run_id, holder_process(current) if current else "nobody", None)

    # -- PostgreSQL: the session advisory lock decides ------------------------------------
    def _acquire_locked(self, run_id: str, holder: str, ttl: float) -> LeaseHolder | None:
        from sqlalchemy.dialects import postgresql

        conn = self.engine.connect()
        try:
            got = bool(conn.execute(select(func.pg_try_advisory_lock(_lock_key(run_id)))).scalar())
            now = time.time()
            if got:  # any earlier holder's session has ended: the run is ours, whatever its row
                for setting in _KEEPALIVE:
                    conn.exec_driver_sql(setting)
                values = {"holder": holder, "expires_at": now + ttl, "acquired_at": now}
                upsert = postgresql.insert(schema.leases).values(run_id=run_id, **values)
                conn.execute(upsert.on_conflict_do_update(index_elements=["run_id"], set_=values))
                conn.commit()
                self._keep(run_id, _Held(holder, conn))
                return None
            current = self._take_expired(conn, run_id, holder, now, ttl)
            if current is None:
                self._keep(run_id, _Held(holder, conn))
                return None
        except BaseException:
            _discard(conn)
            raise
        conn.close()
        return current

    def _take_expired(
        self, conn: Connection, run_id: str, holder: str, now: float, ttl: float
    ) -> LeaseHolder | None:
        """Another session holds the lock. If its holder let the lease expire (alive but
        silent), take the row: its next intent is fenced off. Else say who holds it."""
        lease = schema.leases.c
        row = conn.execute(select(schema.leases).where(lease.run_id == run_id)).first()
        if row is None:  # it has the lock and is writing its row right now
            conn.rollback()
            return LeaseHolder("another collector", None, now + ttl)
        if row.expires_at >= now:
            conn.rollback()
            return LeaseHolder(row.holder, row.acquired_at, row.expires_at)
        taken = conn.execute(
            update(schema.leases)
            .where(and_(lease.run_id == run_id, lease.holder == row.holder))
            .values(holder=holder, expires_at=now + ttl, acquired_at=now)
        ).rowcount
        conn.commit()
        if taken:
            return None
        return self.holder(run_id) or LeaseHolder("another collector", None, now + ttl)

    # -- SQLite: the row decides ------------------------------------------------------------
    def _acquire_row(self, run_id: str, holder: str, ttl: float) -> LeaseHolder | None:
        now = time.time()
        lease = schema.leases.c
        with self.engine.begin() as conn:
            taken = conn.execute(
                update(schema.leases)
                .where(and_(lease.run_id == run_id, lease.expires_at < now))
                .values(holder=holder, expires_at=now + ttl, acquired_at=now)
            ).rowcount
        if taken:
            self._keep(run_id, _Held(holder))
            return None
        try:
            with self.engine.begin() as conn:
                conn.execute(
                    schema.leases.insert().values(
                        run_id=run_id, holder=holder, expires_at=now + ttl, acquired_at=now
                    )
                )
            self._keep(run_id, _Held(holder))
            return None
        except IntegrityError:
            current = self.holder(run_id)
        if current is None:  # released between our two statements: try once more
            return self._acquire_row(run_id, holder, ttl)
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
                self._keep(run_id, _Held(holder))
                return None
        return current

    def _forget(self, run_id: str) -> None:
        """A lease we lost: drop our session (and the lock, if it still had it)."""
        mine = self._held.pop(run_id, None)
        if mine is not None and mine.conn is not None:
            with mine.lock:
                _discard(mine.conn)

    def _keep(self, run_id: str, held: _Held) -> None:
        """Remember a lease we took; one this process held before under another holder (only
        a test does that) is let go."""
        old = self._held.get(run_id)
        if old is not None and old.conn is not None and old.conn is not held.conn:
            with old.lock:
                _discard(old.conn)
        self._held[run_id] = held


def _close_session(conn: Connection, statement: object, run_id: str) -> None:
    """Delete our row and unlock, then give the connection back; a connection whose unlock
    failed is discarded (closing it ends the session, and the lock with it)."""
    try:
        conn.execute(statement)  # type: ignore[call-overload]
        conn.execute(select(func.pg_advisory_unlock(_lock_key(run_id))))
        conn.commit()
    except SQLAlchemyError:
        _discard(conn)
        return
    conn.close()


def _discard(conn: Connection) -> None:
    with contextlib.suppress(SQLAlchemyError):
        conn.invalidate()
    with contextlib.suppress(SQLAlchemyError):
        conn.close()


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
