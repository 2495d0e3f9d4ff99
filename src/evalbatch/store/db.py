"""Opening the store: where it lives, the engine (SQLite WAL by default), migrations at start,
and the Store handle whose parts (runs, requests, batches...) own every statement.

Every piece of run state lives here; `EVALBATCH_HOME` (default ./.evalbatch) holds the SQLite file.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from ..errors import StoreError
from .batches import Batches
from .browse import Browse
from .history import History
from .leases import Leases
from .migrations import apply_migrations
from .reports import Reports
from .requests import Requests
from .results import Results
from .runs import Runs
from .scores import Scores


def evalbatch_home() -> Path:
    return Path(os.environ.get("EVALBATCH_HOME", ".evalbatch")).resolve()


def default_url() -> str:
    env = os.environ.get("EVALBATCH_DB")
    if env:
        return env
    return f"sqlite:///{evalbatch_home() / 'evalbatch.db'}"


class Store:
    """The one handle on the store. Writes are named operations and reads return typed records
    (``store.records``), grouped by what they touch: ``runs``, ``requests``, ``batches``,
    ``results``, ``scores``, ``leases``, and the read-only ``reports`` and ``history``."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = redact(url)
        self.runs = Runs(engine)
        self.requests = Requests(engine)
        self.batches = Batches(engine)
        self.results = Results(engine)
        self.scores = Scores(engine)
        self.leases = Leases(engine)
        self.reports = Reports(engine)
        self.history = History(engine)
        self.browse = Browse(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def close(self) -> None:
        self.engine.dispose()


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def open_store(url: str | None = None) -> Store:
    """The store at ``url`` (default: EVALBATCH_DB or the SQLite file), migrated."""
    url = url or default_url()
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    try:
        engine = create_engine(url)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
        with engine.begin() as conn:
            apply_migrations(conn)
    except SQLAlchemyError as exc:
        raise StoreError(
            f"cannot open the store at {redact(url)}: {exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0]}"
        ) from exc
    return Store(engine, url)


def redact(url: str) -> str:
    """Drop a password from a database URL before it reaches a message."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user = creds.split(":", 1)[0]
        return f"{scheme}://{user}:***@{host}"
    return url
