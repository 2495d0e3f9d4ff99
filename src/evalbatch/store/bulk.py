"""Writing many rows at once: on SQLite straight through the driver's executemany, on
PostgreSQL (psycopg 3) with COPY, elsewhere through SQLAlchemy (insertmanyvalues)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, update
from sqlalchemy.engine import Connection

# PostgreSQL's text cannot hold NUL (a model's output can): it is stored as U+FFFD, the
# replacement character, where SQLite keeps it.
NUL_REPLACEMENT = "\ufffd"


def pg_value(value: Any) -> Any:
    """A value PostgreSQL's text accepts."""
    if isinstance(value, str) and "\x00" in value:
        return value.replace("\x00", NUL_REPLACEMENT)
    return value


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table``. SQLAlchemy's per-row parameter
    processing costs more than SQLite's own insert (a 100,000-case run writes ~900,000 rows),
    and these tables' columns need none: plain text, numbers and booleans."""
    if not rows:
        return
    names = list(rows[0])
    defaulted = [c for c in table.columns if c.name not in names and c.default is not None]
    postgres = conn.dialect.name == "postgresql"
    if postgres and not defaulted:
        _copy(conn, table.name, names, rows)
        return
    if defaulted or conn.dialect.name != "sqlite":
        values = [{k: pg_value(v) for k, v in r.items()} for r in rows] if postgres else rows
        conn.execute(table.insert(), list(values))
        return
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    conn.exec_driver_sql(sql, [tuple(row[n] for n in names) for row in rows])


def _copy(conn: Connection, name: str, names: list[str], rows: Sequence[dict[str, Any]]) -> None:
    """COPY the rows in, on the transaction's own connection (so they commit or roll back with
    it). The table and column names are the schema's, never a user's."""
    driver = conn.connection.driver_connection
    assert driver is not None
    sql = f"COPY {name} ({', '.join(names)}) FROM STDIN"
    with driver.cursor() as cursor, cursor.copy(sql) as copy:
        for row in rows:
            copy.write_row(tuple(pg_value(row[n]) for n in names))


def update_by_id(
    conn: Connection, table: Table, rows: Sequence[tuple[Any, ...]], columns: Sequence[str]
) -> None:
    """Set ``columns`` of the rows whose ``id`` is each tuple's last value (the others are the
    new values, in order)."""
    if not rows:
        return
    if conn.dialect.name == "sqlite":
        sets = ", ".join(f"{name} = ?" for name in columns)
        conn.exec_driver_sql(f"UPDATE {table.name} SET {sets} WHERE id = ?", list(rows))
        return
    statement = (
        update(table)
        .where(table.c.id == bindparam("_id"))
        .values(**{name: bindparam(f"_{name}") for name in columns})
    )
    conn.execute(
        statement,
        [
            {
                **{f"_{n}": pg_value(v) for n, v in zip(columns, row[:-1], strict=True)},
                "_id": row[-1],
            }
            for row in rows
        ],
    )


def analyze(conn: Connection, *tables: str) -> None:
    """On PostgreSQL, refresh the planner's statistics of ``tables`` (a fixed sample: about as
    quick at any size). Until autovacuum gets to new rows (after 10% of a table changed),
    queries over them are planned as if they were not there."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(f"ANALYZE {', '.join(tables)}")
