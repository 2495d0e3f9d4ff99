"""Reading a test's store directly, whichever database it is: ``rows(url, sql, *params)`` with
``?`` placeholders (turned into psycopg's ``%s`` on PostgreSQL)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine
from sqlalchemy.pool import NullPool

_ENGINES: dict[str, Engine] = {}


def engine(url: str) -> Engine:
    if url not in _ENGINES:
        _ENGINES[url] = create_engine(url, poolclass=NullPool)
    return _ENGINES[url]


def rows(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Every row of ``sql`` as plain tuples (booleans as 0/1 on both databases)."""
    eng = engine(url)
    if eng.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    with eng.connect() as conn:
        return [
            tuple(int(v) if isinstance(v, bool) else v for v in row)
            for row in conn.exec_driver_sql(sql, tuple(params))
        ]


def dicts(url: str, sql: str, *params: Any) -> list[dict[str, Any]]:
    """Every row of ``sql`` as a dict of column name to value."""
    eng = engine(url)
    if eng.dialect.name == "postgresql":
        sql = sql.replace("?", "%s")
    with eng.connect() as conn:
        return [dict(row._mapping) for row in conn.exec_driver_sql(sql, tuple(params))]


def scalar(url: str, sql: str, *params: Any) -> Any:
    return rows(url, sql, *params)[0][0]
