"""Copying runs from one store into another (`evalbatch db copy`): a laptop's SQLite store into
the team's PostgreSQL one. Idempotent: a run the destination has is skipped.

Each run goes over in one destination transaction (a copy cut short leaves nothing of that run,
and the next copy does it again), read a page at a time so memory stays flat at any size, with
the store's own row ids (prefixes, requests, batches) numbered anew in the destination. A run
goes with its reference verdicts and calibrations, and a sweep's run with the sweep's row; a
sweep's batches belong to its first run, so the other runs' requests find them by their key
(run, step, seq) in the destination.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, and_, select
from sqlalchemy.engine import Connection

from ..records import CLOSED_RUN
from . import schema
from .db import Store

_PAGE = 2000


@dataclass(frozen=True)
class CopiedRun:
    """One source run: ``copied``, or skipped with the reason (already there, still open)."""

    run_id: str
    suite: str
    status: str
    copied: bool
    note: str | None = None


def copy_runs(source: Store, target: Store, *, include_open: bool = False) -> Iterator[CopiedRun]:
    """Copy every run of ``source`` that ``target`` lacks, oldest first. A run still open
    (being advanced) is left where it is unless ``include_open``: then collect it only from
    the target from now on."""
    runs = schema.runs.c
    with source.engine.connect() as conn:
        listed = conn.execute(
            select(runs.id, runs.suite_name, runs.status).order_by(runs.created_at, runs.id)
        ).all()
    batch_ids: dict[int, int] = {}  # source batch id -> destination id, across runs (sweeps)
    for start in range(0, len(listed), _PAGE):
        page = listed[start : start + _PAGE]
        present = _present(target, [row.id for row in page])
        for row in page:
            if row.id in present:
                yield CopiedRun(row.id, row.suite_name, row.status, False, "already there")
            elif row.status not in CLOSED_RUN and not include_open:
                note = f"open ({row.status}): finish or cancel it first, or pass --include-open"
                yield CopiedRun(row.id, row.suite_name, row.status, False, note)
            else:
                _copy_run(source, target, row.id, batch_ids)
                yield CopiedRun(row.id, row.suite_name, row.status, True)


def _present(target: Store, run_ids: Sequence[str]) -> set[str]:
    runs = schema.runs.c
    with target.engine.connect() as conn:
        return set(conn.execute(select(runs.id).where(runs.id.in_(run_ids))).scalars())


def _copy_run(source: Store, target: Store, run_id: str, batch_ids: dict[int, int]) -> None:
    with source.engine.connect() as src, target.engine.begin() as dst:
        _copy_sweep(src, dst, run_id)
        for table in (schema.runs, schema.cases, schema.steps):
            _copy_rows(src, dst, table, run_id)
        prefix_ids = _copy_numbered(src, dst, schema.prefixes, run_id, {})
        mine = _copy_numbered(src, dst, schema.batches, run_id, {})
        batches = _BatchIds(src, dst, {**batch_ids, **mine})
        _copy_requests(src, dst, run_id, prefix_ids, batches)
        for table in (schema.scores, schema.reference_scores, schema.calibrations):
            _copy_rows(src, dst, table, run_id)
    batch_ids.update(mine)  # once the run's transaction has committed


def _copy_sweep(src: Connection, dst: Connection, run_id: str) -> None:
    """The sweep row of a sweep's run, when the destination has not got it yet."""
    runs, sweeps = schema.runs.c, schema.sweeps
    sweep_id = src.execute(select(runs.sweep_id).where(runs.id == run_id)).scalar()
    if sweep_id is None or dst.execute(select(sweeps.c.id).where(sweeps.c.id == sweep_id)).first():
        return
    row = src.execute(select(sweeps).where(sweeps.c.id == sweep_id)).one()
    dst.execute(sweeps.insert(), [dict(row._mapping)])


class _BatchIds:
    """Source batch id -> destination id: the run's own batches, those of runs copied before,
    and otherwise (a sweep's first run copied by an earlier `db copy`) found by their key."""

    def __init__(self, src: Connection, dst: Connection, known: dict[int, int]) -> None:
        self.src, self.dst, self.known = src, dst, known

    def get(self, old: int | None) -> int | None:
        if old is None:
            return None
        if old not in self.known:
            b = schema.batches.c
            key = self.src.execute(select(b.run_id, b.step, b.seq).where(b.id == old)).one()
            found = self.dst.execute(
                select(b.id).where(
                    and_(b.run_id == key.run_id, b.step == key.step, b.seq == key.seq)
                )
            ).scalar()
            if found is None:
                return None  # its run was not copied (still open): the journal link is dropped
            self.known[old] = int(found)
        return self.known[old]


def _pages(src: Connection, table: Table, run_id: str) -> Iterator[list[dict[str, Any]]]:
    key = "id" if table is schema.runs else "run_id"
    query = select(table).where(table.c[key] == run_id).order_by(*table.primary_key.columns)
    result = src.execution_options(yield_per=_PAGE).execute(query)
    for rows in result.partitions(_PAGE):
        yield [dict(row._mapping) for row in rows]


def _copy_rows(src: Connection, dst: Connection, table: Table, run_id: str) -> None:
    for rows in _pages(src, table, run_id):
        dst.execute(table.insert(), rows)


def _copy_numbered(
    src: Connection,
    dst: Connection,
    table: Table,
    run_id: str,
    maps: dict[str, dict[int, int]],
) -> dict[int, int]:
    """Rows whose id the destination numbers itself: returns old id -> new id (a run has few
    prefixes and batches). ``maps`` renumbers the references they hold."""
    new_ids: dict[int, int] = {}
    for rows in _pages(src, table, run_id):
        for row in rows:
            old = row.pop("id")
            for column, mapping in maps.items():
                if row[column] is not None:
                    row[column] = mapping[row[column]]
            inserted = dst.execute(table.insert().values(**row)).inserted_primary_key
            new_ids[old] = int(inserted[0])  # type: ignore[index]
    return new_ids


def _copy_requests(
    src: Connection,
    dst: Connection,
    run_id: str,
    prefix_ids: dict[int, int],
    batch_ids: _BatchIds,
) -> None:
    """Requests a page at a time, each page followed by its requests' results (renumbered to
    the new request ids), so only one page of ids is ever held."""
    requests, results = schema.requests, schema.results
    insert = requests.insert().returning(requests.c.id, sort_by_parameter_order=True)
    for rows in _pages(src, requests, run_id):
        old_ids = [row.pop("id") for row in rows]
        for row in rows:
            row["prefix_id"] = prefix_ids[row["prefix_id"]] if row["prefix_id"] else None
            row["batch_id"] = batch_ids.get(row["batch_id"])
        new_ids = dst.execute(insert, rows).scalars().all()
        renumber = dict(zip(old_ids, new_ids, strict=True))
        found = [
            dict(row._mapping)
            for row in src.execute(select(results).where(results.c.request_id.in_(old_ids)))
        ]
        for row in found:
            row["request_id"] = renumber[row["request_id"]]
            row["batch_id"] = batch_ids.get(row["batch_id"])
        if found:
            dst.execute(results.insert(), found)
