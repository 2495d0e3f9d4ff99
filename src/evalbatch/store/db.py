"""Opening the store: where it lives, the engine (SQLite WAL by default), migrations at start,
and the Store handle whose parts (runs, requests, batches...) own every statement.

Where the store is, first match wins: `--db` / `EVALBATCH_DB` (any SQLAlchemy URL); the folder
`EVALBATCH_HOME`; a project's `.evalbatch/` in the current folder or a parent (as git finds
`.git`); else one store per user in the platform's data folder. Failures of the store itself
(no permission, read-only, damaged) are StoreError with what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from ..errors import StoreError
from .batches import Batches
from .browse import Browse
from .bulk import analyze
from .calibrations import Calibrations
from .history import History
from .leases import Leases
from .migrations import apply_migrations, check_migrated, pending_migrations
from .references import References
from .regrades import Regrades
from .reports import Reports
from .requests import Requests
from .results import Results
from .runs import Runs
from .scores import Scores
from .sweeps import Sweeps


def evalbatch_home() -> Path:
    """The folder of the default SQLite store (see the module docstring for the order)."""
    env = os.environ.get("EVALBATCH_HOME")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / ".evalbatch").is_dir():
            return folder / ".evalbatch"
    return Path(platformdirs.user_data_dir("evalbatch"))


def default_url() -> str:
    env = os.environ.get("EVALBATCH_DB")
    if env:
        return env
    return f"sqlite:///{evalbatch_home() / 'evalbatch.db'}"


def driver_url(url: str) -> str:
    """PostgreSQL through psycopg 3 (the `postgres` extra), however the URL names it:
    `postgresql://` (which SQLAlchemy 2.0 maps to psycopg2) and `postgres://` (Heroku's and
    many dashboards' form) included."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url.removeprefix(plain)
    return url


class Store:
    """The one handle on the store. Writes are named operations and reads return typed records
    (``store.records``), grouped by what they touch: ``runs``, ``requests``, ``batches``,
    ``results``, ``scores``, ``leases``, and the read-only ``reports`` and ``history``."""

    def __init__(self, engine: Engine, url: str) -> None:
        self.engine = engine
        self.url = redact(url)
        self.runs = Runs(engine)
        self.requests = Requests(engine)
        self.leases = Leases(engine)
        self.batches = Batches(engine, self.leases)
        self.results = Results(engine)
        self.scores = Scores(engine)
        self.reports = Reports(engine)
        self.history = History(engine)
        self.sweeps = Sweeps(engine)
        self.browse = Browse(engine)
        self.regrades = Regrades(engine)
        self.references = References(engine)
        self.calibrations = Calibrations(engine)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def pending_migrations(self) -> list[str]:
        with self.engine.connect() as conn:
            return pending_migrations(conn)

    def upgrade(self) -> list[str]:
        """Apply the migrations this store has not had; returns their names."""
        try:
            with self.engine.begin() as conn:
                return apply_migrations(conn)
        except SQLAlchemyError as exc:
            raise store_error(exc, self.url) from exc

    def refresh_statistics(self) -> None:
        """After a run is scored: on PostgreSQL, let the planner see the run's new rows. Until
        autovacuum gets to them (after 10% of a table changed), the report's joins over a run's
        requests and scores were planned as nested loops: 14.5 s instead of 0.02 s at 10,000
        cases. ANALYZE reads a fixed sample, so it takes about as long at any size."""
        if self.dialect != "postgresql":
            return
        try:
            with self.engine.begin() as conn:
                analyze(conn, "requests", "results", "scores")
        except SQLAlchemyError as exc:
            raise store_error(exc, self.url) from exc

    def failure(self, exc: BaseException) -> StoreError | None:
        """The StoreError an exception of the database layer means, or None for any other."""
        return store_error(exc, self.url) if isinstance(exc, SQLAlchemyError) else None

    def close(self) -> None:
        self.leases.close()
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _sqlite_pragmas(dbapi_conn: object, _record: object) -> None:
    cur = dbapi_conn.cursor()  # type: ignore[attr-defined]
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    # WAL needs to write the folder (-wal, -shm); a read-only store is read as it is.
    if cur.execute("PRAGMA query_only").fetchone()[0] == 0:
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def sqlite_path(url: str) -> Path | None:
    """The file of an SQLite URL (None for a server, or an in-memory store)."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        return Path(url.removeprefix("sqlite:///").split("?", 1)[0])
    return None


def _read_only(path: Path) -> bool:
    """An existing SQLite file we may read but not write (or whose folder we cannot write)."""
    return path.exists() and not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK))


def open_store(url: str | None = None, *, migrate: bool = True) -> Store:
    """The store at ``url`` (default: see the module docstring), migrated (unless ``migrate``
    is False: `db upgrade` applies them itself). A store we may only read opens read-only:
    reports, `runs` and `status` work; writing is a StoreError."""
    url = url or default_url()
    path = sqlite_path(url)
    engine_url = url
    read_only = False
    if path is not None:
        _make_folder(path.parent)
        if _read_only(path):
            read_only = True
            # immutable: no locks, no -shm to create (a read-only folder cannot hold one)
            engine_url = f"sqlite:///file:{path}?mode=ro&immutable=1&uri=true"
    try:
        engine_url = driver_url(engine_url)
        server = not engine_url.startswith("sqlite")
        # a server may drop an idle connection (a restart, a proxy): check it before use
        engine = create_engine(engine_url, pool_pre_ping=server)
        if engine.dialect.name == "sqlite":
            event.listen(engine, "connect", _sqlite_pragmas)
            if read_only:
                event.listen(engine, "connect", _query_only)
        with engine.begin() as conn:
            if read_only:
                check_migrated(conn, redact(url))
            elif migrate:
                apply_migrations(conn)
    except SQLAlchemyError as exc:
        raise store_error(exc, redact(url)) from exc
    _OPENED[:] = [redact(url)]
    return Store(engine, url)


_OPENED: list[str] = []  # the store this process opened last, for messages


def failure_of(exc: BaseException) -> StoreError | None:
    """For the CLI's last line of defence: a database error as a StoreError, else None."""
    if isinstance(exc, SQLAlchemyError):
        return store_error(exc, _OPENED[0] if _OPENED else "the store")
    return None


def _query_only(dbapi_conn: object, _record: object) -> None:
    dbapi_conn.execute("PRAGMA query_only=1")  # type: ignore[attr-defined]


def _make_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the store folder {folder}: {exc.strerror}; point EVALBATCH_HOME "
            "at a folder you can write, or pass --db URL"
        ) from None


def store_error(exc: BaseException, where: str) -> StoreError:
    """A failure of the store itself, said so a person can act on it."""
    text = str(getattr(exc, "orig", None) or exc).splitlines()[0]
    lowered = text.lower()
    if "malformed" in lowered or "not a database" in lowered or "corrupt" in lowered:
        return StoreError(
            f"the store at {where} is damaged ({text}). Keep a copy of the file, then recover "
            "what SQLite can: sqlite3 BROKEN.db .recover | sqlite3 RECOVERED.db"
        )
    if "readonly" in lowered or "read-only" in lowered or "query_only" in lowered:
        return StoreError(
            f"the store at {where} is read-only: reading works, this command writes. Make it "
            "writable, or point EVALBATCH_HOME / --db at another store"
        )
    if "unable to open" in lowered:
        return StoreError(f"cannot open the store at {where}: {text}")
    return StoreError(f"the store at {where} failed: {exc.__class__.__name__}: {text}")


def redact(url: str) -> str:
    """Drop a password from a database URL before it reaches a message."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        user, secret, _ = creds.partition(":")
        return f"{scheme}://{user}:***@{host}" if secret else f"{scheme}://{user}@{host}"
    return url
