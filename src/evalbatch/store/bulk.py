"""Writing many rows at once: on SQLite straight through the driver's executemany, elsewhere
through SQLAlchemy (whose insertmanyvalues batches them on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Table, bindparam, update
from sqlalchemy.engine import Connection


def insert_rows(conn: Connection, table: Table, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ``rows`` (dicts with the same keys) into ``table``. SQLAlchemy's per-row parameter
    processing costs more than SQLite's own insert (a 100,000-case run writes ~900,000 rows),
    and these tables' columns need none: plain text, numbers and booleans."""
    if not rows:
        return
    names = list(rows[0])
    defaulted = [c for c in table.columns if c.name not in names and c.default is not None]
    if conn.dialect.name != "sqlite" or defaulted:
        conn.execute(table.insert(), list(rows))
        return
    sql = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
    conn.exec_driver_sql(sql, [tuple(row[n] for n in names) for row in rows])


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
            {**{f"_{n}": v for n, v in zip(columns, row[:-1], strict=True)}, "_id": row[-1]}
            for row in rows
        ],
    )
